"""A corpus of awkward and broken image files, made here, and what loading each one must give.

Every case is either decoded correctly (colours, orientation and size checked against what was
drawn) or refused with an ImageLoadError whose message names the file and the problem. The same
corpus is scored end to end through the runner and the CLI: one bad file must never stop a run.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval.imageio import ImageLoadError, LoadedImage, list_images, load_image

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def png_bytes(w: int, h: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand (not by Pillow), so 16-bit and lying headers are exactly as we say.
    ``color_type``: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA; ``rows`` are raw big-endian samples."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + r for r in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def solid(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, color)


def assert_color(img: LoadedImage, xy: tuple[int, int], color: tuple[int, ...], tol: int = 0) -> None:
    x, y = xy
    got = img.rgb[y, x].astype(int)
    assert np.abs(got - np.array(color)).max() <= tol, f"{img.path.name} pixel {xy}: {got} vs {color}"


@dataclass
class Case:
    """One corpus entry: ``make(folder)`` writes it and returns its path; ``problem`` is a
    lower-case piece of the expected error message, or ``None`` when it must load and pass ``check``."""

    name: str
    make: Callable[[Path], Path]
    problem: str | None = None
    check: Callable[[LoadedImage], None] | None = None
    skip: str | None = None


CASES: list[Case] = []


def case(name: str, problem: str | None = None, skip: str | None = None):
    def deco(make):
        c = Case(name, lambda d: make(d / name), problem, None, skip)
        CASES.append(c)

        def check_of(fn):
            c.check = fn
            return fn

        make.check = check_of
        return make

    return deco


# ------------------------------------------------------------------------------------ broken files


@case("truncated.png", problem="truncated")
def _(p):
    solid(RED).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


@case("truncated_header.png", problem="truncated")
def _(p):  # cut inside IHDR: Pillow cannot even identify it, the message must still say why
    solid(RED).save(p)
    p.write_bytes(p.read_bytes()[:30])
    return p


@case("truncated.jpg", problem="truncated")
def _(p):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


@case("zero_bytes.png", problem="empty")
def _(p):
    p.write_bytes(b"")
    return p


@case("text_named.png", problem="holds text")
def _(p):
    p.write_text("this is a note, not a picture\n", encoding="utf-8")
    return p


@case("html_error_page.jpg", problem="holds text")
def _(p):  # what a scraper saves when the server answers 404
    p.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>", encoding="utf-8")
    return p


@case("bomb_30000x30000.png", problem="30000x30000 = 900 mpx, over the 64 mpx limit")
def _(p):  # header claims 900 Mpx (2.7 GB as RGB); the file itself is tiny
    p.write_bytes(png_bytes(30000, 30000, 8, 2, []))
    return p


@case("bomb_10000x10000.png", problem="10000x10000 = 100 mpx")
def _(p):  # under Pillow's own error threshold (179 Mpx): only our limit stops it
    p.write_bytes(png_bytes(10000, 10000, 8, 2, []))
    return p


@case("one_pixel.png", problem="too small to hold a face")
def _(p):
    solid(RED, (1, 1)).save(p)
    return p


@case("thin_10x200.png", problem="10x200 px, too small")
def _(p):
    solid(RED, (10, 200)).save(p)
    return p


@case("folder_named.jpg", problem="is a folder")
def _(p):
    p.mkdir()
    return p


@case("broken_link.png", problem="broken symlink")
def _(p):
    p.symlink_to(p.parent / "does_not_exist.png")
    return p


@case(
    "unreadable.png",
    problem="permission denied",
    skip="running as root: root reads any file" if IS_ROOT else None,
)
def _(p):
    solid(RED).save(p)
    p.chmod(0)
    return p


@case("named_pipe.png", problem="not a regular file")
def _(p):  # unreadable even for root; reading it naively would block forever
    os.mkfifo(p)
    return p


@case("socket.png", problem="not a regular file")
def _(p):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


# ----------------------------------------------------------------------------- awkward but valid


@case("cmyk.jpg")
def cmyk(p):
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    return p


@cmyk.check
def _(img):
    assert img.mode == "CMYK"
    assert_color(img, (32, 32), RED, tol=4)


@case("gray16.png")
def gray16(p):  # three vertical bands: 0, half, full scale in 16 bit
    row = struct.pack(">" + "H" * 48, *([0] * 16 + [32896] * 16 + [65535] * 16))
    p.write_bytes(png_bytes(48, 32, 16, 0, [row] * 32))
    return p


@gray16.check
def _(img):
    # scaled, not clipped: clipping would turn 32896 into 255 and the middle band white
    assert_color(img, (8, 5), BLACK)
    assert_color(img, (24, 5), (128, 128, 128))
    assert_color(img, (40, 5), WHITE)


@case("rgb16.png")
def rgb16(p):
    row = struct.pack(">" + "HHH" * 32, *([65535, 30000, 0] * 32))
    p.write_bytes(png_bytes(32, 32, 16, 2, [row] * 32))
    return p


@rgb16.check
def _(img):
    assert_color(img, (3, 3), (255, round(30000 * 255 / 65535), 0), tol=1)


@case("gray16.tif")
def gray16_tif(p):
    a = np.zeros((32, 32), np.uint16)
    a[:, 16:] = 65535
    a[:16, :16] = 257 * 64
    Image.fromarray(a).save(p)  # mode I;16
    return p


@gray16_tif.check
def _(img):
    assert img.mode.startswith("I;16")
    assert_color(img, (4, 4), (64, 64, 64))  # 257*64 / 65535 * 255 = 64
    assert_color(img, (4, 20), BLACK)
    assert_color(img, (20, 4), WHITE)


@case("palette_transparent.png")
def palette(p):
    im = Image.new("P", (64, 64), 0)
    im.putpalette([0, 0, 0] + list(BLUE) + [0, 0, 0] * 254)
    im.paste(1, (32, 0, 64, 64))
    im.save(p, transparency=0)  # index 0 (black) is transparent
    return p


@palette.check
def _(img):
    assert img.mode == "P"
    assert_color(img, (5, 5), WHITE)  # transparent black must show as white, not black
    assert_color(img, (50, 5), BLUE)


@case("rgba_half_alpha.png")
def rgba(p):
    a = np.zeros((32, 32, 4), np.uint8)
    a[..., 0] = 255
    a[..., 3] = 128
    Image.fromarray(a).save(p)
    return p


@rgba.check
def _(img):
    assert_color(img, (3, 3), (255, 127, 127), tol=1)  # half red over white


@case("gray_alpha_LA.png")
def la(p):
    a = np.zeros((32, 32, 2), np.uint8)  # black everywhere, opaque on the right half only
    a[:, 16:, 1] = 255
    Image.fromarray(a).save(p)
    return p


@la.check
def _(img):
    assert img.mode == "LA"
    assert_color(img, (4, 4), WHITE)
    assert_color(img, (24, 4), BLACK)


@case("bitmap_1bit.png")
def onebit(p):
    im = Image.new("1", (32, 32), 0)
    im.paste(1, (0, 0, 16, 32))
    im.save(p)
    return p


@onebit.check
def _(img):
    assert_color(img, (4, 4), WHITE)
    assert_color(img, (24, 4), BLACK)


@case("exif_rotated.jpg")
def rotated(p):
    # stored 64 wide x 32 high, red marker in the stored top-left corner; orientation 6 says
    # "rotate 90 degrees clockwise to display", which moves that corner to the top-right.
    im = solid(WHITE, (64, 32))
    im.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(p, quality=95, exif=exif)
    return p


@rotated.check
def _(img):
    assert img.size == (32, 64), img.size  # portrait once rotated
    assert_color(img, (32 - 8, 8), RED, tol=8)
    assert_color(img, (8, 8), WHITE, tol=8)
    assert any("orientation 6" in n for n in img.notes)


@case("animated.gif")
def gif(p):
    frames = [solid(c) for c in (RED, GREEN, BLUE)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return p


@gif.check
def _(img):
    assert_color(img, (5, 5), RED)
    assert "first of 3 frames" in img.metadata["animated"]


@case("transparent.gif")
def gif_t(p):
    im = Image.new("P", (32, 32), 1)
    im.putpalette([0, 0, 0] + list(GREEN) + [0, 0, 0] * 254)
    im.paste(0, (0, 0, 16, 32))
    im.save(p, transparency=0)
    return p


@gif_t.check
def _(img):
    assert_color(img, (4, 4), WHITE)
    assert_color(img, (24, 4), GREEN)


@case("animated.webp")
def awebp(p):
    frames = [solid(c) for c in (BLUE, RED)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    return p


@awebp.check
def _(img):
    assert_color(img, (5, 5), BLUE)
    assert "first of 2 frames" in img.metadata["animated"]


@case("lossless.webp")
def webp(p):
    im = solid(GREEN)
    im.paste(BLUE, (0, 0, 32, 64))
    im.save(p, lossless=True)
    return p


@webp.check
def _(img):
    assert img.format == "WEBP"
    assert_color(img, (4, 4), BLUE)
    assert_color(img, (50, 4), GREEN)


@case("plain.bmp")
def bmp(p):
    im = solid(RED)
    im.paste(GREEN, (0, 32, 64, 64))
    im.save(p)
    return p


@bmp.check
def _(img):
    assert img.format == "BMP"
    assert_color(img, (4, 4), RED)
    assert_color(img, (4, 50), GREEN)


@case("UPPER_CASE.JPG")
def upper(p):
    solid(BLUE).save(p, format="JPEG", quality=95)
    return p


@upper.check
def _(img):
    assert_color(img, (30, 30), BLUE, tol=6)


@case("jpeg_inside.png")
def wrong_ext(p):  # content decides, not the extension
    solid(GREEN).save(p, format="JPEG", quality=95)
    return p


@wrong_ext.check
def _(img):
    assert img.format == "JPEG"
    assert_color(img, (30, 30), GREEN, tol=6)


@case("ハッピー 笑顔 ü.png")
def uni(p):
    solid(RED).save(p)
    return p


@uni.check
def _(img):
    assert img.path.name == "ハッピー 笑顔 ü.png"
    assert_color(img, (30, 30), RED)


# ------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_corpus")
    for c in CASES:
        if not c.skip:
            c.make(d)
    yield d
    for c in CASES:  # let pytest's tmp cleanup remove the unreadable file later
        if not c.skip and c.name == "unreadable.png":
            (d / c.name).chmod(0o644)


def test_corpus_has_at_least_15_kinds_of_bad_input():
    assert len([c for c in CASES if c.problem]) >= 15
    assert len(CASES) >= 30


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_load_image_on_corpus(corpus: Path, c: Case):
    if c.skip:
        pytest.skip(c.skip)
    path = corpus / c.name
    if c.problem is None:
        img = load_image(path)
        assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
        assert img.size == (img.rgb.shape[1], img.rgb.shape[0])
        assert len(img.key) == 64  # sha256 hex of the file bytes
        c.check(img)
        return
    with pytest.raises(ImageLoadError) as ei:
        load_image(path)
    msg = str(ei.value)
    assert msg.startswith(str(path)), msg  # names the file
    assert c.problem in msg.lower(), msg  # and says what is wrong


def test_bomb_is_refused_before_decoding(corpus: Path):
    """100 Mpx would be 300 MB as RGB; refusing from the header keeps the peak memory flat."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for _ in range(3):
        with pytest.raises(ImageLoadError):
            load_image(corpus / "bomb_10000x10000.png")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, f"peak memory grew {grown_mib:.0f} MiB: the image was decoded"


def test_pixel_limit_is_configurable(corpus: Path):
    with pytest.raises(ImageLoadError, match="48x32 = 1,536 px, over the 1,000 px limit"):
        load_image(corpus / "gray16.png", max_pixels=1000)
    assert load_image(corpus / "plain.bmp", max_pixels=64 * 64).size == (64, 64)  # exactly at the limit


def test_list_images_keeps_every_corpus_entry(corpus: Path):
    """Folder listing must keep bad entries (folder named .jpg, broken link, pipe) so the run
    reports them instead of silently dropping them."""
    names = {p.name for p in list_images(corpus)}
    expected = {c.name for c in CASES if not c.skip}
    assert expected <= names, sorted(expected - names)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks/FIFOs are POSIX cases")
def test_listing_is_deterministic(corpus: Path):
    assert list_images(corpus) == list_images(str(corpus))


# ------------------------------------------------------------------------------------- end to end


def _rows_by_name(rows: list[dict]) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in rows}


#: Readable images too small to hold a face: ``load_image`` refuses them (its ``min_side``), but the
#: pipeline reads them and reports no face: they are not broken files (exit code 0, not 1).
TOO_SMALL = {"one_pixel.png", "thin_10x200.png"}


def _check_rows(rows: list[dict]) -> None:
    by_name = _rows_by_name(rows)
    expected = {c.name: c for c in CASES if not c.skip}
    assert sorted(by_name) == sorted(expected), "one row per corpus entry, none lost, none extra"
    assert len(rows) == len(expected)
    for name, c in expected.items():
        row = by_name[name]
        if c.problem is None:
            assert row["status"] in ("ok", "no_face"), (name, row["status"], row["error"])
        elif name in TOO_SMALL:
            assert row["status"] == "no_face" and row["error"] is None, (name, row["status"])
            assert c.problem in row["reason"].lower() and row["verdict"] == "broken", row["reason"]
        else:
            assert row["status"] == "error", (name, row["status"])
            assert c.problem in row["error"].lower(), (name, row["error"])  # names the problem
            assert name in row["error"], row["error"]  # and the file
            assert row["verdict"] is None


def test_score_folder_survives_the_whole_corpus(corpus: Path, tmp_path: Path):
    runner = pytest.importorskip("harmony_eval.runner", reason="the runner is not written yet")
    summary = runner.score_folder(corpus, tmp_path / "out", workers=1, progress=False)
    _check_rows(summary.rows)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "ハッピー 笑顔 ü.png" in html and "broken_link.png" in html  # error rows and odd names reported
    assert summary.n_errors == len([c for c in CASES if c.problem and not c.skip and c.name not in TOO_SMALL])
    assert summary.exit_code == 1  # some files failed
    on_disk = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    _check_rows(on_disk)


@pytest.mark.slow
def test_cli_returns_1_when_some_files_failed(corpus: Path, tmp_path: Path, capsys):
    cli = pytest.importorskip("harmony_eval.cli", reason="the CLI is not written yet")
    out = tmp_path / "cli_out"
    # default workers: 30+ files -> a process pool, so error rows must also cross process boundaries
    code = cli.main(["score", str(corpus), "--out", str(out), "--no-report", "--no-progress"])
    assert code == 1, capsys.readouterr()
    _check_rows([json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()])
    assert "could not be scored" in capsys.readouterr().err
