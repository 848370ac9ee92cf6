"""The image corpus of ``test_bad_inputs``: its registry, the helpers that write files by hand, and
the broken files that loading must refuse.

Each entry is a :class:`Case` registered with ``@case(name, problem=...)``: its function writes the
file into a folder. ``problem`` is a lower-case piece of the expected error message; ``None`` means
the file must load and pass the ``check`` attached with ``@maker.check``. The awkward but valid
files are registered by ``image_corpus_valid``; import both to have the whole corpus in
:data:`CASES` (broken files first).
"""

from __future__ import annotations

import os
import socket
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harmony_eval.imageio import LoadedImage

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
