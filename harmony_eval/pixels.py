"""Decoded pixels -> RGB ``uint8 (H, W, 3)``: the conversions every image goes through before scoring.

A Pillow image of any mode (EXIF orientation applied; alpha, LA, PA, palette or single-colour
transparency composited on white; CMYK, grayscale and 1-bit converted; 16-bit and 32-bit samples
scaled, not clipped) or a numpy array of any common shape and dtype becomes plain 8-bit RGB, so
later stages only ever see one kind of image. Reading files (headers, limits, metadata) is
``harmony_eval.imageio``; it uses :func:`pil_to_rgb` and :func:`apply_orientation` from here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def apply_orientation(im: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip by the EXIF Orientation tag (values 2-8), so pixels are as a viewer sees them."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF: keep the pixels as stored rather than fail the image
        return im
    if orientation in range(2, 9):
        im = ImageOps.exif_transpose(im)
        notes.append(f"EXIF orientation {orientation} applied")
    return im


def scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """Integer or float samples -> uint8 by their nominal range (not their min/max, so a dark
    16-bit image stays dark): uint8 as is; 16-bit 0..65535 -> round(v * 255 / 65535); floats 0..1;
    32-bit integers judged by their maximum (<=255: 8-bit data, <=65535: 16-bit data)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image has NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"float image values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                "divide by 255 (or by the maximum of your range) first"
            )
        return np.rint(a * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        a64 = a.astype(np.int64)
        lo, hi = int(a64.min()), int(a64.max())
        if lo < 0:
            raise ValueError(f"integer image values must be >= 0, got a minimum of {lo}")
        if (a.dtype.kind == "u" and a.dtype.itemsize == 2) or 255 < hi <= 65535:
            return ((a64 * 255 + 32767) // 65535).astype(np.uint8)
        if hi <= 255:
            return a64.astype(np.uint8)
        raise ValueError(f"integer image values must be <= 65535, got a maximum of {hi}")
    raise ValueError(f"unsupported pixel dtype {a.dtype}")


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb (H, W, 3)`` and ``alpha (H, W)`` uint8 -> RGB over white, rounded."""
    c = rgb.astype(np.uint32)
    a = alpha.astype(np.uint32)[..., None]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def pil_to_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im)
        if mode == "F":  # float TIFFs come as 0..1, 0..255 or 0..65535: guess the range from the max
            a = np.nan_to_num(a, nan=0.0)
            hi = float(a.max(initial=0.0))
            a = np.clip(a / (1.0 if hi <= 1 else 255.0 if hi <= 255 else 65535.0), 0.0, 1.0)
        gray = scale_to_uint8(a)
        notes.append(f"{mode} samples scaled to 8 bit")
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"))
        if mode != "RGBA" or (rgba[..., 3] < 255).any():
            notes.append("alpha composited on white")
        return np.ascontiguousarray(composite_on_white(rgba[..., :3], rgba[..., 3]))
    if mode != "RGB":
        notes.append(f"{mode} converted to RGB")
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def to_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """An in-memory image -> RGB ``uint8 (H, W, 3)``, for the Python API.

    Accepts a PIL image (any mode; EXIF orientation applied, alpha over white) or a numpy array of
    shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA), dtype uint8, bool,
    uint16 (0..65535) or float (0..1). Arrays are taken as RGB, not OpenCV's BGR.
    """
    if isinstance(image, Image.Image):
        image.load()
        return pil_to_rgb(apply_orientation(image, []), [])
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"`image` must be a PIL.Image.Image or a numpy array, got {type(image).__name__}; "
            "pass a file path to load_image instead"
        )
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"`image` array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"`image` array is empty, shape {a.shape}")
    a = scale_to_uint8(a)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 4:
        a = composite_on_white(a[..., :3], a[..., 3])
    return np.ascontiguousarray(a)
