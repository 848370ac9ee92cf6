"""Listing inputs, reading generator metadata, content keys and in-memory conversion (to_rgb)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from harmony_eval.imageio import ImageLoadError, list_images, load_image, to_rgb


def save(path: Path, color=(10, 20, 30), size=(32, 32), **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, **kw)
    return path


# ------------------------------------------------------------------------------------------ listing


def test_list_images_walks_sorted_and_skips_hidden_non_images_and_output(tmp_path):
    root = tmp_path / "in"
    for rel in ["b.png", "a/z.JPG", "a/y.webp", "c.jpeg", ".hidden/x.png", "a/.x.png", "out/r.png"]:
        save(root / rel, format="PNG")
    (root / "notes.txt").write_text("hi")
    (root / "a" / "cache.npy").write_bytes(b"")
    got = [p.relative_to(root).as_posix() for p in list_images(root, exclude=root / "out")]
    # folder order: a/ before b.png (path parts compared), upper-case extensions kept
    assert got == ["a/y.webp", "a/z.JPG", "b.png", "c.jpeg"]
    flat = [p.relative_to(root).as_posix() for p in list_images(root, exclude=root / "out", recursive=False)]
    assert flat == ["b.png", "c.jpeg"]  # the folder's own images, none of its subfolders'


def test_list_images_keeps_explicit_files_and_drops_duplicates(tmp_path):
    a = save(tmp_path / "a.png")
    odd = tmp_path / "weird.dat"
    odd.write_bytes(b"x")
    got = list_images([a, tmp_path, str(odd)])
    assert got[0] == a  # given first, stays first
    assert got.count(a) == 1  # the folder walk finds a.png again: not listed twice
    assert odd in got  # named explicitly: kept whatever its extension, the loader will judge it


def test_list_images_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        list_images([tmp_path, tmp_path / "nothere"])


def test_list_images_of_an_empty_folder_is_empty(tmp_path):
    assert list_images(tmp_path) == []


# --------------------------------------------------------------------------------------- metadata


def test_png_text_chunks_are_returned(tmp_path):
    info = PngInfo()
    info.add_text("parameters", "1girl, smiling\nNegative prompt: bad hands\nSteps: 20")
    info.add_itxt("Comment", "ünïcode comment")
    p = save(tmp_path / "a.png", pnginfo=info)
    meta = load_image(p).metadata
    assert meta["parameters"].startswith("1girl, smiling\nNegative prompt:")
    assert meta["Comment"] == "ünïcode comment"


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_exif_user_comment_as_a1111_writes_it(tmp_path, encoding):
    # A1111 saves JPEG/WebP parameters with piexif: b"UNICODE\0" + UTF-16 text in Exif UserComment
    text = "sad girl, tears\nNegative prompt: smile"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode(encoding)
    p = save(tmp_path / "a.jpg", exif=exif)
    assert load_image(p).metadata["UserComment"] == text


def test_jpeg_comment(tmp_path):
    p = save(tmp_path / "c.jpg", comment=b"made by hand")
    assert load_image(p).metadata["comment"] == "made by hand"


def test_key_is_sha256_of_the_file_bytes(tmp_path):
    a = save(tmp_path / "a.png", color=(1, 2, 3))
    b = save(tmp_path / "b.png", color=(1, 2, 4))
    ka, kb = load_image(a).key, load_image(b).key
    assert ka == hashlib.sha256(a.read_bytes()).hexdigest()
    assert ka != kb  # one pixel value apart: different content, different cache key


def test_min_side_is_configurable(tmp_path):
    p = save(tmp_path / "s.png", size=(20, 20))
    assert load_image(p).size == (20, 20)
    with pytest.raises(ImageLoadError, match="20x20 px, too small"):
        load_image(p, min_side=24)


def test_no_pixel_limit_when_none(tmp_path):
    p = save(tmp_path / "m.png", size=(300, 200))
    assert load_image(p, max_pixels=None).size == (300, 200)


# ------------------------------------------------------------------------------------------ to_rgb


def test_to_rgb_arrays():
    g = np.array([[0, 128], [255, 7]], np.uint8)
    assert to_rgb(g).shape == (2, 2, 3) and (to_rgb(g)[..., 1] == g).all()  # gray -> 3 equal channels
    assert (to_rgb(g[..., None]) == to_rgb(g)).all()
    f = np.full((2, 2, 3), 0.5, np.float32)
    assert (to_rgb(f) == 128).all()  # 0.5 * 255 = 127.5 rounds to 128
    u16 = np.full((2, 2, 3), 65535, np.uint16)
    assert (to_rgb(u16) == 255).all()  # 16-bit full scale -> 255, not clipped garbage
    assert (to_rgb(np.array([[True, False]]))[0, :, 0] == [255, 0]).all()
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 1] = (0, 0, 0, 255)
    assert to_rgb(rgba)[0].tolist() == [[255, 255, 255], [0, 0, 0]]  # transparent -> white
    big = np.arange(12, dtype=np.int64).reshape(2, 2, 3) * 20
    assert (to_rgb(big) == big).all()  # int arrays within 0..255 are 8-bit data


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.full((2, 2), 2.0), r"must lie in \[0, 1\], got \[2, 2\]; divide by 255"),
        (np.full((2, 2), np.nan), "NaN"),
        (np.zeros((2, 2, 2), np.uint8), r"got \(2, 2, 2\)"),
        (np.full((2, 2), -3, np.int32), ">= 0"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_to_rgb_rejects_bad_arrays_with_the_fix(arr, message):
    with pytest.raises(ValueError, match=message):
        to_rgb(arr)


def test_to_rgb_pil_images():
    im = Image.new("RGBA", (4, 2), (255, 0, 0, 0))
    assert (to_rgb(im) == 255).all()  # fully transparent red composites to white
    assert to_rgb(Image.new("L", (3, 2), 9)).tolist() == [[[9, 9, 9]] * 3] * 2
    with pytest.raises(TypeError, match="PIL.Image.Image or a numpy array, got str"):
        to_rgb("face.png")


def test_to_rgb_pil_applies_exif_orientation():
    im = Image.new("RGB", (8, 4), (255, 255, 255))
    im.paste((255, 0, 0), (0, 0, 2, 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "PNG", exif=exif)
    out = to_rgb(Image.open(buf))
    assert out.shape == (8, 4, 3)  # rotated to portrait
    assert out[0, 3].tolist() == [255, 0, 0]  # stored top-left marker is now top-right
