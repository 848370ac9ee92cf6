"""Stage 1, load: any common image file or in-memory image -> RGB ``uint8`` array ``(H, W, 3)``.

Everything a generator, an editor or a scraper may hand us is normalised here, so later stages only
ever see plain 8-bit RGB: EXIF orientation applied; alpha (RGBA, LA, PA, palette or single-colour
transparency) composited on white; palette, CMYK, grayscale and 1-bit converted; 16-bit and 32-bit
samples scaled (not clipped) to 8 bit; animated GIF/WebP/APNG reduced to their first frame. The pixel
count is checked from the file header *before* decoding, so a decompression bomb never allocates.
Every failure is an :class:`ImageLoadError` naming the file and the problem.

This module finds and reads files (listing, header, size limits, text metadata, the file key); the
conversion of decoded pixels to RGB is ``harmony_eval.pixels``, whose :func:`to_rgb` (in-memory
images for the Python API) is re-exported here.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .pixels import apply_orientation, pil_to_rgb, to_rgb

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "LoadedImage",
    "image_key",
    "list_images",
    "load_image",
    "to_rgb",
]

#: File extensions (lower case, no dot) that folder inputs pick up.
IMAGE_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")

#: Default pixel-count limit: 64 Mpx is an 8000x8000 image, 4x the largest SDXL upscale we expect,
#: and decodes to 192 MB of RGB, a bound we can afford per worker on a 2-core, shared machine.
DEFAULT_MAX_PIXELS = 64_000_000
#: Smallest side that can hold a face with eyes and a mouth a detector can find (animeface needs
#: roughly 20 px faces); anything under 16 px is an icon or a broken file, not a face.
DEFAULT_MIN_SIDE = 16

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"RIFF", "WEBP"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_NOT_TEXT_INFO = {"compression"}  # str-valued im.info entries that are codec details, not text
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286


class ImageLoadError(ValueError):
    """An input could not be turned into an RGB image. The message starts with the path."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class LoadedImage:
    """A decoded image and what we learnt while loading it.

    ``rgb`` is ``uint8 (H, W, 3)`` after orientation; ``size`` is ``(W, H)`` of ``rgb``; ``mode`` and
    ``format`` are the file's own (e.g. ``"I;16"``, ``"PNG"``); ``metadata`` holds text found in the
    file (PNG text chunks such as A1111's ``parameters``, EXIF ``UserComment``, JPEG ``comment``, and
    ``animated`` when a frame was picked); ``key`` is the sha256 of the file bytes; ``notes`` lists
    the conversions applied, for reports.
    """

    rgb: np.ndarray
    path: Path
    size: tuple[int, int]
    mode: str
    format: str
    metadata: dict[str, str] = field(default_factory=dict)
    key: str = ""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- listing


def _is_image_name(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS if "." in name else False


def list_images(
    inputs: str | os.PathLike | list[str | os.PathLike],
    *,
    exclude: str | os.PathLike | list[str | os.PathLike] | None = None,
    recursive: bool = True,
) -> list[Path]:
    """Expand files and folders into a deterministic list of image paths.

    Folders are walked recursively (symlinked folders are not followed, so a loop cannot hang the
    walk); entries with an image extension (:data:`IMAGE_EXTENSIONS`, any case) are kept, sorted by
    their path inside the folder; hidden files and folders (``.name``) and the folders and files in
    ``exclude`` (e.g. the run's own output folder) are skipped. Entries with an image name that are not regular
    files (a folder called ``x.jpg`` inside a walked folder, a broken symlink) are kept, so that the
    run reports them as errors instead of silently dropping them. Folders named directly are always
    walked; files named directly are kept as given, whatever their extension. Duplicates are dropped,
    first occurrence wins.

    ``recursive=False``: a folder's own entries only, not its subfolders'.

    Raises ``FileNotFoundError`` naming any input path that does not exist.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    excl = [exclude] if isinstance(exclude, (str, os.PathLike)) else list(exclude or [])
    excluded = {os.path.realpath(e) for e in excl}
    missing = [str(p) for p in items if not os.path.lexists(p)]
    if missing:
        raise FileNotFoundError(
            f"Input path(s) not found: {', '.join(missing)}. Pass existing image files or folders."
        )
    out: list[Path] = []
    seen: set[str] = set()
    for item in items:
        p = Path(item)
        found = _walk(p, excluded, recursive) if p.is_dir() else [p]
        for f in found:
            k = os.path.abspath(f)
            if k not in seen:
                seen.add(k)
                out.append(f)
    return out


def _walk(root: Path, excluded: set[str], recursive: bool = True) -> list[Path]:
    found: list[Path] = []

    def onerror(err: OSError) -> None:
        warnings.warn(f"{err.filename}: cannot list folder ({err.strerror}); skipped", stacklevel=3)

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if d.startswith(".") or os.path.realpath(full) in excluded:
                continue
            if _is_image_name(d):  # a folder named like an image: report it, and look inside
                found.append(Path(full))
            keep.append(d)
        dirnames[:] = keep if recursive else []
        real = os.path.realpath(dirpath)  # excluded files too: a run's summary.png beside its inputs
        found += [
            Path(dirpath, f)
            for f in filenames
            if not f.startswith(".") and _is_image_name(f) and os.path.join(real, f) not in excluded
        ]
    return sorted(found, key=lambda f: f.relative_to(root).parts)


# --------------------------------------------------------------------------------------------- loading


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> LoadedImage:
    """Read one image file as RGB ``uint8 (H, W, 3)``; see the module docstring for what is handled.

    ``max_pixels`` (``None`` = no limit) is checked against the size in the file header before any
    pixel is decoded; ``min_side`` rejects images too small to hold a face. Any failure raises
    :class:`ImageLoadError` ("<path>: <problem>").
    """
    p = Path(path)
    data = _read_bytes(p)
    if not data:
        raise ImageLoadError(p, "file is empty (0 bytes)")
    im = _open_header(p, data)
    fmt, mode = im.format or "unknown", im.mode
    w, h = im.size
    _check_size(p, w, h, max_pixels, min_side)
    meta: dict[str, str] = {}
    notes: list[str] = []
    try:
        n_frames = getattr(im, "n_frames", 1)  # counting GIF frames reads the file: may fail
        im.load()  # first frame; a truncated or corrupt file fails here
        if n_frames > 1:
            meta["animated"] = f"first of {n_frames} frames used"
            notes.append(meta["animated"])
        meta.update(_text_metadata(im))
        im = apply_orientation(im, notes)
        rgb = pil_to_rgb(im, notes)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError) as e:
        raise ImageLoadError(p, f"cannot decode {fmt} data ({_describe(e)})") from None
    return LoadedImage(
        rgb=rgb,
        path=p,
        size=(rgb.shape[1], rgb.shape[0]),
        mode=mode,
        format=fmt,
        metadata=meta,
        key=hashlib.sha256(data).hexdigest(),
        notes=notes,
    )


def _describe(e: BaseException) -> str:
    msg = str(e)
    if "truncated" in msg.lower() or isinstance(e, EOFError):
        return f"file is truncated or corrupt: {msg}" if msg else "file is truncated or corrupt"
    return msg or type(e).__name__


def _read_bytes(p: Path) -> bytes:
    if p.is_symlink() and not p.exists():
        raise ImageLoadError(p, f"broken symlink (points to {os.readlink(p)}, which does not exist)")
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ImageLoadError(p, "is a folder, not an image file")
        if not stat.S_ISREG(st.st_mode):  # reading a FIFO would block the run forever
            raise ImageLoadError(p, "is not a regular file (a pipe, socket or device), cannot read it")
        return p.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(p, "file not found") from None
    except PermissionError:
        raise ImageLoadError(p, "permission denied: cannot read the file (check its permissions)") from None
    except OSError as e:
        raise ImageLoadError(p, f"cannot read the file ({e.strerror or e})") from None


def _open_header(p: Path, data: bytes) -> Image.Image:
    """Identify the file and read its header only. Pillow's own bomb check (an error above
    2 x ``Image.MAX_IMAGE_PIXELS``) is bypassed, so that ``max_pixels`` alone decides and its
    message can give the declared size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            return _open_unchecked(p, data)
        except UnidentifiedImageError:
            raise ImageLoadError(p, _not_an_image(p, data)) from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
            raise ImageLoadError(p, f"cannot read the image header ({_describe(e)})") from None


def _open_unchecked(p: Path, data: bytes) -> Image.Image:
    # Same plugin loop as PIL.Image.open, minus _decompression_bomb_check: header only, no pixels.
    Image.init()
    prefix = data[:16]
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        if accept and accept(prefix) is not True:
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise ImageLoadError(p, _not_an_image(p, data))


def _not_an_image(p: Path, data: bytes) -> str:
    """Say what the file holds instead, when that is easy to tell (an HTML error page saved as
    .jpg by a scraper, a text file renamed .png)."""
    # Text first: "BM..." or "GIF8..." could open a plain text file; a real header soon turns binary.
    text = data[:64].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\ufffd")
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"not an image: the file holds text (starts {text[:40]!r})"
    for magic, name in _MAGIC:
        if data.startswith(magic) and (name != "WEBP" or data[8:12] == b"WEBP"):
            return f"starts like a {name} file but its header is incomplete or corrupt (truncated file?)"
    ext = p.suffix.lower() or "(no extension)"
    return f"not a recognised image format (extension {ext}; readable: {', '.join(IMAGE_EXTENSIONS)})"


def _fmt_px(n: int) -> str:
    """900000000 -> '900 Mpx', 1500000 -> '1.5 Mpx', 1536 -> '1,536 px'."""
    if n >= 10_000_000:
        return f"{n / 1e6:.0f} Mpx"
    return f"{n / 1e6:.1f} Mpx" if n >= 1_000_000 else f"{n:,} px"


def _check_size(p: Path, w: int, h: int, max_pixels: int | None, min_side: int) -> None:
    if max_pixels is not None and w * h > max_pixels:
        raise ImageLoadError(
            p,
            f"image is {w}x{h} = {_fmt_px(w * h)}, over the {_fmt_px(max_pixels)} limit "
            "(a possible decompression bomb; raise --max-pixels if the image is genuine)",
        )
    if min(w, h) < min_side:
        raise ImageLoadError(p, f"image is {w}x{h} px, too small to hold a face (need >= {min_side} px)")


def _text_metadata(im: Image.Image) -> dict[str, str]:
    """Text a generator may have left: PNG tEXt/iTXt/zTXt (A1111 ``parameters``, ComfyUI ``prompt``),
    EXIF UserComment (A1111 JPEG/WebP), JPEG/GIF ``comment``."""
    out = {
        k: v
        for k, v in im.info.items()
        if isinstance(k, str) and isinstance(v, str) and k not in _NOT_TEXT_INFO
    }
    comment = im.info.get("comment")
    if isinstance(comment, bytes):
        out["comment"] = comment.decode("utf-8", "replace")
    try:
        uc = im.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception:  # a malformed EXIF block must not fail the image
        uc = None
    if isinstance(uc, bytes):
        uc = _decode_user_comment(uc)
    if isinstance(uc, str) and uc.strip("\x00 "):
        out["UserComment"] = uc.strip("\x00")
    return out


def _decode_user_comment(raw: bytes) -> str:
    # EXIF 2.3 section 4.6.5: 8-byte charset code, then the text. A1111 (piexif) writes UNICODE as
    # UTF-16 big-endian; some tools write little-endian, which shows as a zero in the second byte.
    head, body = raw[:8], raw[8:]
    if head.startswith(b"UNICODE"):
        enc = "utf-16-le" if len(body) > 1 and body[1] == 0 and body[0] != 0 else "utf-16-be"
        return body.decode(enc, "replace")
    if head.startswith(b"ASCII") or head == b"\x00" * 8:
        return body.decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def image_key(image: np.ndarray) -> str:
    """The content key of decoded pixels: sha256 of the ``uint8 (H, W, 3)`` bytes. Files are keyed by
    their bytes instead (``LoadedImage.key``); this is the key of an in-memory image, and the one
    cache key both the pipeline and the CLIP backend use for it."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
