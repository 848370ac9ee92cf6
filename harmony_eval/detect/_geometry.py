"""Box helpers shared by the detectors: IoU, non-maximum suppression, resize/pad with box mapping.

Boxes are ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive, as in :mod:`harmony_eval.types`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..types import Box, Face

#: cv2 border modes by name; "edge" repeats the outermost pixel row, which keeps a tight crop's skin
#: and hair colours around the face (see animeface.py for the measured effect of each).
BORDERS = ("edge", "reflect", "white")


@dataclass(frozen=True)
class Params:
    """The box helpers' measured constants; an argument a caller passes overrides its field (``None``
    = this). Vary with ``dataclasses.replace(PARAMS, ...)`` and pass it as ``p=``."""

    # Non-maximum suppression (:func:`nms`).
    #: IoU at or above which two boxes are the same face.
    nms_iou: float = 0.4
    #: A box with this share of its area inside a kept, higher-scoring box is a part of that face: a
    #: detector run at several scales sometimes returns an eye-and-fringe box inside the face box,
    #: whose IoU with it is small.
    nms_inside: float = 0.7

    # Flat shading (:func:`flat_share`).
    #: Sobel gradient (grey levels, 3x3 kernel) under which a pixel is flat: flat-shaded drawings are
    #: mostly flat (>= 0.26 in every detector view of the dev and permissive art), pixel noise almost
    #: nowhere (<= 0.11).
    flat_grad: float = 24.0
    #: Sobel kernel size the ``flat_grad`` line was measured with.
    sobel_ksize: int = 3

    # Drawn content (:func:`content_box`).
    #: A pixel differing from the edge colour by more than this (0-255, any channel) is drawn:
    #: above JPEG noise on a flat background.
    content_tol: int = 12

    # Contrast stretch (:func:`stretch_contrast`, :func:`needs_stretch`).
    #: Percentiles mapped to 0 and 255: 1-99 ignores stray specks (TV frames: p1-p99 spans 140-210
    #: of 255 on the 88 dev crops).
    stretch_low: float = 1.0
    stretch_high: float = 99.0
    #: A p1-p99 range under this is a blank image, not blown up into noise.
    stretch_flat: float = 16.0
    #: A p1-p99 range of this or more is full range already: the image comes back unchanged.
    stretch_full: float = 235.0

    # Views (:func:`make_view`).
    #: A scale within this of 1 keeps the pixels as they are (no resampling).
    same_scale: float = 1e-3


PARAMS = Params()


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(faces: list[Face], iou_max: float | None = None, p: Params = PARAMS) -> list[Face]:
    """Greedy non-maximum suppression: keep the highest-scoring face of each overlapping group
    (IoU at least ``iou_max``, default ``p.nms_iou``).

    Also drops a face whose box lies mostly (``p.nms_inside``) inside a kept, higher-scoring one.
    """
    iou_max = p.nms_iou if iou_max is None else iou_max
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if all(iou(f.box, k.box) < iou_max and _inside(f.box, k.box) < p.nms_inside for k in kept):
            kept.append(f)
    return kept


def _inside(a: Box, b: Box) -> float:
    """Fraction of box ``a``'s area that lies inside box ``b``."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max(1, (a[2] - a[0]) * (a[3] - a[1]))
    return ix * iy / area


def clip_box(box: Sequence[float], shape: tuple[int, ...]) -> Box | None:
    """Round and clip a float box to an image of ``shape`` ``(H, W, ...)``; ``None`` if empty."""
    h, w = shape[:2]
    x0 = int(round(min(max(box[0], 0), w)))
    y0 = int(round(min(max(box[1], 0), h)))
    x1 = int(round(min(max(box[2], 0), w)))
    y1 = int(round(min(max(box[3], 0), h)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1)


def union_box(boxes: Sequence[Box | None]) -> Box | None:
    """Smallest box holding every non-``None`` box; ``None`` when there is none."""
    bs = [b for b in boxes if b is not None]
    if not bs:
        return None
    return (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))


@dataclass(frozen=True)
class View:
    """An image resized by ``scale`` and padded by ``pad`` pixels on every side.

    ``to_image`` maps a box in view pixels back to original image pixels: ``(v - pad) / scale``.
    """

    pixels: np.ndarray
    scale: float
    pad: int

    def to_image(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        s, p = self.scale, self.pad
        return ((box[0] - p) / s, (box[1] - p) / s, (box[2] - p) / s, (box[3] - p) / s)


def flat_share(image: np.ndarray, grad: float | None = None, p: Params = PARAMS) -> float:
    """Share of the pixels of an RGB ``uint8`` image whose grey-level Sobel gradient is under
    ``grad`` (default ``p.flat_grad``, which gives the measured spread of drawings and noise)."""
    import cv2

    grad = p.flat_grad if grad is None else grad
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    k = p.sobel_ksize
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=k), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=k))
    return float((mag < grad).mean())


def background_colour(image: np.ndarray) -> np.ndarray:
    """``(3,)`` float: the median colour of an RGB image's top, left and right edges, i.e. a sprite's
    background (its feet or the bust may touch the bottom edge, so that one is left out)."""
    return np.median(np.concatenate([image[0], image[:, 0], image[:, -1]]), axis=0)


def content_box(image: np.ndarray, tol: int | None = None, p: Params = PARAMS) -> Box | None:
    """Bounding box of what is drawn on an RGB ``uint8`` image: pixels that differ from the median
    colour of its top, left and right edges (a sprite's background; its feet or the bust may touch
    the bottom) by more than ``tol`` (default ``p.content_tol``) in some channel. ``None`` when
    nothing is."""
    tol = p.content_tol if tol is None else tol
    ref = background_colour(image)
    drawn = (np.abs(image.astype(np.int16) - ref.astype(np.int16)) > tol).any(axis=2)
    ys, xs = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    if ys.size == 0:
        return None
    return (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)


def needs_stretch(lo: float, hi: float, p: Params = PARAMS) -> bool:
    """Whether a p1-p99 value range ``lo``-``hi`` is narrow enough to stretch (and not flat)."""
    return p.stretch_flat <= hi - lo < p.stretch_full


def stretch_contrast(
    image: np.ndarray, low: float | None = None, high: float | None = None, p: Params = PARAMS
) -> np.ndarray:
    """``image`` (uint8) with its ``low``-``high`` percentile range of values (default
    ``p.stretch_low``-``p.stretch_high``) mapped to 0-255: TV frames (washed-out greys) get the line
    contrast animeface's cascade was trained on. Nearly full-range images come back unchanged."""
    low = p.stretch_low if low is None else low
    high = p.stretch_high if high is None else high
    lo, hi = (float(v) for v in np.percentile(image, (low, high)))
    if not needs_stretch(lo, hi, p):
        return image
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return lut[image]


def make_view(
    image: np.ndarray, long_side: int, pad_frac: float = 0.0, border: str = "edge", p: Params = PARAMS
) -> View:
    """Resize ``image`` ``(H, W, 3)`` so its long side is ``long_side`` px, then pad every side by
    ``pad_frac`` x the new long side with ``border`` (one of :data:`BORDERS`)."""
    import cv2

    if border not in BORDERS:
        raise ValueError(f"`border` must be one of {BORDERS}, got {border!r}.")
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    out = image
    if abs(scale - 1.0) > p.same_scale:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # INTER_AREA when shrinking avoids aliasing thin line art into noise; bilinear when enlarging
        out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad = int(round(pad_frac * long_side))
    if pad > 0:
        if border == "white":
            out = cv2.copyMakeBorder(out, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        else:
            mode = cv2.BORDER_REPLICATE if border == "edge" else cv2.BORDER_REFLECT
            out = cv2.copyMakeBorder(out, pad, pad, pad, pad, mode)
    return View(np.ascontiguousarray(out), scale, pad)
