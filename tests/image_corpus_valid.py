"""Awkward but valid image files for ``test_bad_inputs``: each must load, and its ``check`` compares
the decoded colours, orientation and size with what was drawn (CMYK, 16-bit gray and RGB, palette and
alpha transparency, 1-bit, EXIF rotation, animated GIF/WebP, BMP, upper-case and wrong extensions,
a non-ASCII name). Registered into ``image_corpus.CASES`` on import.
"""

from __future__ import annotations

import struct

import numpy as np
from image_corpus import BLACK, BLUE, GREEN, RED, WHITE, assert_color, case, png_bytes, solid
from PIL import Image


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
