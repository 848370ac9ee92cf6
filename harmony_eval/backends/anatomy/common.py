"""Shared helpers of the anatomy measurements: a face canvas at a fixed scale, stroke masks relative
to the face's skin, component picking and curve fitting.

All measurements run on the canvas: the face box (plus a margin) resized so the face is
``Params.face_px`` wide. Lengths in the features are then fractions of the face width or of the
part's own width, so a 64 px thumbnail and a 1024 px render give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...quality import PARAMS as QUALITY_PARAMS
from ...quality import Params as QualityParams
from ...quality import ink_threshold, skin_colour, stroke_mask, to_lab
from ...types import Box

_UPSCALE = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class Params:
    """The canvas's and the shared helpers' constants. The per-part constants (thresholds, windows,
    which components to join) live in each part's module (``eyes.Params``, ...). Vary with
    ``dataclasses.replace(PARAMS, ...)`` and pass it as ``p=``."""

    # Canvas (:func:`make_canvas`).
    #: Width (px) of the face box on the canvas. 256 keeps a 5 px stroke of a 512 px face ~2.5 px wide
    #: and all measurements of one face under ~10 ms on one core.
    face_px: int = 256
    #: Resampling when a face smaller than ``face_px`` is enlarged onto the canvas (``"linear"`` or
    #: ``"cubic"``; shrinking is always area-averaged). Judged label-free by
    #: ``benchmarks.scale_consistency`` (87 faces of 5 sources shrunk to 96 / 72 / 56 / 40 px): bicubic
    #: moved the pooled reading's distance from the full-size one 0.10 / 0.18 / 0.21 / 0.27 -> 0.10 /
    #: 0.16 / 0.20 / 0.26, but was worse on dialogic and renpy at 56 px (0.15 -> 0.17, 0.21 -> 0.26) and
    #: left held-out accuracy unmoved: not the default.
    upscale: str = "linear"
    #: Canvas margin around the face box (share of the face size): brows and part boxes can stick out.
    margin: float = 0.25
    #: A face box narrower or shorter than this (image px) has nothing to measure: an error.
    min_face_px: int = 4
    #: Least canvas side (px), so the morphology below has pixels to work on.
    min_canvas_px: int = 8
    #: Black-hat kernel (px, ellipse): strokes up to ~8 px thick that are darker than their
    #: surroundings, on skin or on hair alike (brows drawn over a fringe).
    blackhat_kernel: int = 9
    #: A face box ending this close (image px) to the image's bottom edge was cut there (a tight crop).
    cut_bottom_px: int = 2

    # Component picking (:func:`pick_components`).
    #: Least reach (px) for joining pieces: a 1-2 px break in a thin stroke is always bridged.
    join_min_px: float = 2.0

    def __post_init__(self) -> None:
        if self.upscale not in _UPSCALE:
            raise ValueError(
                f"anatomy common.Params.upscale={self.upscale!r}: expected one of {sorted(_UPSCALE)}"
            )


PARAMS = Params()
#: Kept for readers of the old name.
FACE_PX = PARAMS.face_px


@dataclass
class Canvas:
    """A face normalised to ``Params.face_px`` width. ``lab`` is ``(H, W, 3)`` float32 L*a*b*; ``skin`` the
    skin colour; ``t_dark`` the ink threshold (L* units); ``face`` the face box in canvas px."""

    lab: np.ndarray
    scale: float
    origin: tuple[float, float]
    face: tuple[float, float, float, float]
    skin: np.ndarray
    t_dark: float
    blackhat: np.ndarray  # (H, W) float32: how much darker than the local background (thin strokes)
    #: Whether the face box reaches the image's bottom edge: then its bottom is where the picture was
    #: cut (a tight crop), not the chin line, and a mouth may sit right at it.
    cut_bottom: bool = False
    #: The constants it was made with, for the helpers that read it (``region_mask``, the parts'
    #: ``pick_components`` and ``width_visibility`` calls): a run's overrides reach every read.
    params: Params = PARAMS
    quality: QualityParams = QUALITY_PARAMS

    def to_canvas(self, box: Box) -> tuple[float, float, float, float]:
        ox, oy = self.origin
        s = self.scale
        return ((box[0] - ox) * s, (box[1] - oy) * s, (box[2] - ox) * s, (box[3] - oy) * s)

    def window(
        self,
        box: tuple[float, float, float, float],
        left: float,
        top: float,
        right: float,
        bottom: float,
        min_pad: float = 0.0,
    ) -> tuple[int, int, int, int]:
        """Integer window around a canvas box, padded by fractions of its width (left/right) and height
        (top/bottom), at least ``min_pad`` px each side, clipped to the canvas."""
        x0, y0, x1, y1 = box
        w, h = max(1.0, x1 - x0), max(1.0, y1 - y0)
        hh, ww = self.lab.shape[:2]
        return (
            int(np.clip(x0 - max(left * w, min_pad), 0, ww - 1)),
            int(np.clip(y0 - max(top * h, min_pad), 0, hh - 1)),
            int(np.clip(x1 + max(right * w, min_pad), 1, ww)),
            int(np.clip(y1 + max(bottom * h, min_pad), 1, hh)),
        )


def make_canvas(
    image: np.ndarray, face_box: Box, p: Params = PARAMS, q: QualityParams = QUALITY_PARAMS
) -> Canvas:
    """Cut ``face_box`` (plus ``p.margin``) out of ``image`` (uint8 RGB ``(H, W, 3)`` or gray ``(H, W)``)
    and resize it so the face is ``p.face_px`` wide; ``q``: the quality measures' constants (skin, ink)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    fx0, fy0, fx1, fy1 = (float(v) for v in face_box)
    fw, fh = fx1 - fx0, fy1 - fy0
    if fw < p.min_face_px or fh < p.min_face_px:
        raise ValueError(
            f"`face_box` {face_box} is smaller than {p.min_face_px} px; expected (x0, y0, x1, y1) with x1 > x0"
        )
    h, w = image.shape[:2]
    cx0, cy0 = int(max(0, fx0 - p.margin * fw)), int(max(0, fy0 - p.margin * fh))
    cx1, cy1 = int(min(w, fx1 + p.margin * fw)), int(min(h, fy1 + p.margin * fh))
    s = p.face_px / fw
    crop = image[cy0:cy1, cx0:cx1, :3]
    out_w, out_h = max(p.min_canvas_px, round((cx1 - cx0) * s)), max(p.min_canvas_px, round((cy1 - cy0) * s))
    interp = cv2.INTER_AREA if s < 1 else _UPSCALE[p.upscale]
    lab = to_lab(cv2.resize(crop, (out_w, out_h), interpolation=interp))
    face = ((fx0 - cx0) * s, (fy0 - cy0) * s, (fx1 - cx0) * s, (fy1 - cy0) * s)
    fi = [int(round(v)) for v in face]
    face_lab = lab[max(0, fi[1]) : fi[3], max(0, fi[0]) : fi[2]]
    skin = skin_colour(face_lab if face_lab.size else lab, p=q)
    lum = lab[:, :, 0]
    # Black-hat (closing minus image): thin strokes darker than their surroundings (``p.blackhat_kernel``)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.blackhat_kernel, p.blackhat_kernel))
    blackhat = cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, kernel)
    t_dark = ink_threshold(face_lab if face_lab.size else lab, skin, p=q)
    cut = fy1 >= h - p.cut_bottom_px
    return Canvas(lab, s, (cx0, cy0), face, skin, t_dark, blackhat, cut_bottom=cut, params=p, quality=q)


def region_mask(
    cv: Canvas, win: tuple[int, int, int, int], colour: bool = True, scale: float = 1.0
) -> np.ndarray:
    """Stroke mask (uint8 0/1) of a canvas window; ``scale`` multiplies the darkness threshold."""
    x0, y0, x1, y1 = win
    mask = stroke_mask(cv.lab[y0:y1, x0:x1], cv.skin, cv.t_dark * scale, colour, p=cv.quality)
    return mask.astype(np.uint8)


def pick_components(
    mask: np.ndarray,
    centre: tuple[float, float],
    sigma: tuple[float, float],
    *,
    min_area: int,
    join: tuple[float, float],
    edge: float,
    span: float,
    p: Params = PARAMS,
) -> np.ndarray:
    """The drawn part nearest ``centre``: the component with the best ``area * centrality`` (Gaussian
    in distance, ``sigma`` px), plus components within ``join`` (fractions of its width, height) of
    its box (broken strokes, lashes, a w-shaped mouth) that do not touch the window's edge. Components
    touching the window's edge (face outline, hair, a neighbouring part) count ``edge`` times, those
    spanning it ``span * edge`` times (``span=0`` never picks them). Components under ``min_area`` px
    are noise. The caller gives these four: each part has its own (``eyes.Params``, ``mouth.Params``).
    Returns a uint8 0/1 mask, all zero when nothing is drawn.
    """
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    h, w = mask.shape
    best, best_score = -1, 0.0
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < min_area:
            continue
        d = ((cents[i][0] - centre[0]) / sigma[0]) ** 2 + ((cents[i][1] - centre[1]) / sigma[1]) ** 2
        score = area * np.exp(-0.5 * d)
        if bw >= w - 1 or bh >= h - 1:
            score *= span * edge
        elif x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            score *= edge
        if score > best_score:
            best, best_score = i, score
    if best < 0:
        return np.zeros_like(mask)
    bx, by, bw, bh, _ = stats[best]
    jx, jy = max(p.join_min_px, join[0] * bw), max(p.join_min_px, join[1] * bh)
    keep = [best]
    for i in range(1, n):
        x, y, cw, ch, area = stats[i]
        if i == best or area < min_area or x == 0 or y == 0 or x + cw >= w or y + ch >= h:
            continue  # only the chosen part may touch the window's edge: joined pieces lie inside
        if x <= bx + bw + jx and x + cw >= bx - jx and y <= by + bh + jy and y + ch >= by - jy:
            keep.append(i)
    return np.isin(labels, keep).astype(np.uint8)


def grow(seed: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Hysteresis: the pixels of ``weak`` 8-connected to ``seed`` (plus ``seed``), uint8 0/1. A faint
    stroke whose darkest bits are the seed is followed along its whole length."""
    both = (seed.astype(bool) | weak.astype(bool)).astype(np.uint8)
    n, labels = cv2.connectedComponents(both, connectivity=8)
    keep = np.unique(labels[seed.astype(bool)])
    return np.isin(labels, keep[keep > 0]).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Mask with enclosed background filled (an outlined open mouth becomes a solid blob)."""
    h, w = mask.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = mask
    flood = pad.copy()
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (mask.astype(bool) | holes).astype(np.uint8)


def column_profile(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per occupied column: ``x``, top ``y``, bottom ``y`` and pixel count (all float arrays)."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        e = np.zeros(0)
        return e, e, e, e
    sub = mask[:, cols].astype(bool)
    top = sub.argmax(axis=0).astype(float)
    bot = (mask.shape[0] - 1 - sub[::-1].argmax(axis=0)).astype(float)
    return cols.astype(float), top, bot, sub.sum(axis=0).astype(float)


def bend(x: np.ndarray, y: np.ndarray, width: float) -> tuple[float, float]:
    """Fit ``y = a u^2 + b u + c`` with ``u`` in [-1, 1] across the part; return ``(-a / width,
    rms residual / width)``. Positive bend = the ends sit higher in the image than the middle (a U,
    corners up); the residual measures waviness."""
    if x.size < 4 or width <= 0:
        return 0.0, 0.0
    u = (x - 0.5 * (x.min() + x.max())) / max(1.0, 0.5 * (x.max() - x.min()))
    coef = np.polyfit(u, y, 2)
    resid = y - np.polyval(coef, u)
    return float(-coef[0] / width), float(np.sqrt(np.mean(resid**2)) / width)


def ramp(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, linear between."""
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))
