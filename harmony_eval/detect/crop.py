"""Fallback "detector" for images that already are a tight face crop (e.g. 350x350 TV-anime crops).

animeface misses about 1 in 7 tight crops even with padding (12 of 88 dev crops; the face touches all
four sides, the chin and the top of the head are cut off) and MediaPipe, trained on photos, finds
few. Such an image still has the unmistakable anime layout: two large dark eyes side by side in the
upper-middle band of a light, flat-shaded face. :class:`CropDetector` tests exactly that, on a
128 px wide grayscale copy (~2-4 ms), and returns one face covering the crop, or nothing:

1. roughly square (aspect 0.6-1.7) - a tight crop, not a full-body sprite or a banner;
2. not blank (luminance std >= 12) and drawn in flat cel shading (>= 35 % of pixels with a small
   gradient) - uniform noise fails this;
3. eye candidates: the strongest peaks (>= 50, at most 6) of a blurred black-hat map (how much
   darker than the surroundings at the eye scale, 1-2 px lines removed) in the band 12-72 % of the
   height; text peaks at ~35, drawn irises at 100-200;
4. a pair 20-70 % of the width apart, level (<= 12 % of the height), centred (25-75 %), the weaker
   at least half the strongest peak, both blobs eye-sized and of similar area;
5. both look like *drawn* eyes: dark iris with light marks inside (catch-lights, sclera), which a
   filled disk (a tree, a dot, a letter) lacks;
6. the gap between them is a nose bridge (no mark as strong as 0.8 of an eye, <= 20 % edge pixels),
   the cheeks below are light, and there are lines beyond the eyes (two dots alone are no face).

On the 88 dev crops this alone accepts 51 (4 of the 12 that animeface misses) and it accepts none
of 396 synthetic negatives (blank, noise, gradients, text, landscapes, checkerboards, two dots; 1 of
36 random-disk collages) nor of 56 sprite-body and 157 screenshot-background windows. It is meant
for tight crops only: on 30 rendered head-and-shoulder portraits it fires on 8, on the drawn eyes in
7 and on the hair strands either side of the face in 1. The cascade runs it last, when animeface
and MediaPipe found nothing, so such a portrait never reaches it in practice.

Parts come from the eye blobs (measured) and from anime face proportions (estimated): with ``d`` the
distance between eye centres, the mouth sits ~0.55-0.9 d below the eye line (measured on dev crops)
and is looked for as a dark mark in that window, else placed at 0.7 d. Scores are low (<= 0.35) so
that a real detector's face always ranks above a crop guess.

Every number above is a field of :class:`Params` (these are its defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Face
from ._geometry import clip_box
from .crop_params import PARAMS, Params

__all__ = ["MAX_SCORE", "PARAMS", "WORK_WIDTH", "CropDetector", "Params"]


#: Kept for readers of the old names.
WORK_WIDTH, MAX_SCORE = PARAMS.work_width, PARAMS.max_score


@dataclass
class _Blob:
    x0: int
    y0: int
    x1: int
    y1: int
    area: int
    cx: float
    cy: float

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0


class CropDetector:
    """Says "this whole image is one anime face" when the eye layout test passes (see module doc).

    Args:
        min_aspect, max_aspect: accepted width / height range (default: ``params``').
        params: the test's measured constants (:class:`Params`).
    """

    name = "crop"

    def __init__(
        self, min_aspect: float | None = None, max_aspect: float | None = None, params: Params = PARAMS
    ) -> None:
        self.min_aspect = params.min_aspect if min_aspect is None else min_aspect
        self.max_aspect = params.max_aspect if max_aspect is None else max_aspect
        self.params = params

    def detect(self, image: np.ndarray) -> list[Face]:
        """At most one face for an RGB ``uint8 (H, W, 3)`` image, boxes in its pixels."""
        import cv2

        p = self.params
        h, w = image.shape[:2]
        if not self.min_aspect <= w / h <= self.max_aspect:
            return []
        s = p.work_width / w
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        g = cv2.resize(gray, (p.work_width, max(p.min_work_h, round(h * s))), interpolation=cv2.INTER_AREA)
        if float(g.std()) < p.min_std:  # blank or nearly uniform
            return []
        k = p.sobel_ksize
        grad = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=k), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=k))
        if float((grad < p.flat_grad).mean()) < p.min_flat:  # busy texture, not cel shading
            return []
        found = _find_eyes(g, p)
        if found is None:
            return []
        left, right, quality = found
        return [_face_from_eyes(g, left, right, quality, 1.0 / s, image.shape, self.name, p)]


def _response(g: np.ndarray, p: Params = PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """Eye evidence maps of ``g`` (uint8 ``(H, W)``): black-hat ``bh`` and its blurred density ``dens``.

    black-hat = closing - image: how much darker a pixel is than its surroundings at the eye scale
    (``p.eye_kernel``). An opening then removes thin lines, and a Gaussian turns the filled irises
    into the strongest peaks. Replicated borders keep the image edge from looking like a dark frame.
    """
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.eye_kernel, p.eye_kernel))
    bh = cv2.morphologyEx(g, cv2.MORPH_BLACKHAT, k, borderType=cv2.BORDER_REPLICATE)
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.line_open, p.line_open))
    bh = cv2.morphologyEx(bh, cv2.MORPH_OPEN, k3, borderType=cv2.BORDER_REPLICATE)
    dens = cv2.GaussianBlur(bh.astype(np.float32), (0, 0), p.dens_sigma, borderType=cv2.BORDER_REPLICATE)
    return bh, dens


def _peaks(dens: np.ndarray, radius: int, p: Params = PARAMS) -> list[tuple[float, int, int]]:
    """Local maxima ``(value, x, y)`` of ``dens``, at least ``radius`` px apart, strongest first."""
    import cv2

    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    is_max = (cv2.dilate(dens, k) <= dens) & (dens > p.peak_rel * float(dens.max()))
    ys, xs = np.nonzero(is_max)
    return sorted(((float(dens[y, x]), int(x), int(y)) for y, x in zip(ys, xs, strict=True)), reverse=True)


def _blob_at(bh: np.ndarray, x: int, y: int, radius: int, p: Params = PARAMS) -> _Blob | None:
    """The dark blob around peak ``(x, y)``: the connected part of ``bh`` above ``p.blob_rel`` of
    its local maximum, inside a window of ``radius`` px."""
    import cv2

    H, W = bh.shape
    x0, y0, x1, y1 = max(0, x - radius), max(0, y - radius), min(W, x + radius + 1), min(H, y + radius + 1)
    win = bh[y0:y1, x0:x1]
    mask = (win > p.blob_rel * float(win.max())).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    # the component nearest the peak (the peak of the blurred map may fall between iris pixels)
    d = [(cents[i][0] - (x - x0)) ** 2 + (cents[i][1] - (y - y0)) ** 2 for i in range(1, n)]
    i = 1 + int(np.argmin(d))
    bx, by, bw, bhh, area = (int(v) for v in stats[i])
    return _Blob(x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bhh, area, x0 + cents[i][0], y0 + cents[i][1])


def _find_eyes(g: np.ndarray, p: Params = PARAMS) -> tuple[_Blob, _Blob, float] | None:
    """The best eye pair (viewer-left, viewer-right, quality in [0, 1]) or ``None``."""
    H, W = g.shape
    bh, dens = _response(g, p)
    band_lo, band_hi = p.eye_band
    peaks = [pk for pk in _peaks(dens, int(p.peak_sep * W), p) if band_lo * H <= pk[2] <= band_hi * H]
    # eyes of a tight crop are the darkest compact marks: text, a pattern or foliage give weaker or
    # many equal peaks
    peaks = [pk for pk in peaks[: p.max_peaks] if pk[0] >= p.min_peak]
    (dx_lo, dx_hi), (mid_lo, mid_hi) = p.pair_dx, p.pair_mid
    radius = int(p.blob_radius * W)
    best: tuple[float, _Blob, _Blob] | None = None
    for i, pa in enumerate(peaks):
        for pb in peaks[i + 1 :]:
            (va, xa, ya), (vb, xb, yb) = sorted((pa, pb), key=lambda pk: pk[1])
            dx, dy, mid = xb - xa, abs(yb - ya), (xa + xb) / 2
            if not (dx_lo * W <= dx <= dx_hi * W and dy <= p.pair_dy * H and mid_lo * W <= mid <= mid_hi * W):
                continue
            weaker = min(va, vb)
            others = [pk[0] for pk in peaks if pk is not pa and pk is not pb]
            # both eyes among the strongest marks: hair clumps and the odd border can be as dark,
            # but an eye much weaker than the strongest peak is a blush line or a shadow
            if weaker < p.pair_weaker * peaks[0][0]:
                continue
            left, right = _blob_at(bh, xa, ya, radius, p), _blob_at(bh, xb, yb, radius, p)
            if left is None or right is None:
                continue
            if not (_eye_shaped(left, W, H, p) and _eye_shaped(right, W, H, p)):
                continue
            if max(left.area, right.area) > p.max_area_ratio * max(1, min(left.area, right.area)):
                continue
            if not _drawn_eyes(g, bh, left, right, p):
                continue
            if not _clear_gap(g, dens, left, right, weaker, p):
                continue
            if not _light_between_and_below(g, left, right, p) or not _has_face_detail(g, left, right, p):
                continue
            margin = max(0.0, 1.0 - (max(others) / weaker if others else 0.0))
            q = p.q_base + p.q_margin * margin - p.q_tilt * dy / (p.pair_dy * H)
            if best is None or q > best[0]:
                best = (q, left, right)
    if best is None:
        return None
    return best[1], best[2], float(min(1.0, max(0.0, best[0])))


def _clear_gap(
    g: np.ndarray, dens: np.ndarray, left: _Blob, right: _Blob, weaker: float, p: Params = PARAMS
) -> bool:
    """Between the eyes lies the nose bridge: no mark as strong as ``p.gap_mark`` of the weaker eye
    and few lines (``p.gap_edges``). This rejects two letters of a text line or two disks with
    others between them."""
    import cv2

    y0, y1 = min(left.y0, right.y0), max(left.y1, right.y1)
    x0, x1 = left.x1, right.x0
    if x1 - x0 < p.min_gap:
        return False
    # the blurred map spills ~1 sigma past each eye: look at the middle of the gap only
    m0, m1 = x0 + int(p.gap_trim * (x1 - x0)), x1 - int(p.gap_trim * (x1 - x0))
    if float(dens[y0:y1, m0:m1].max()) >= p.gap_mark * weaker:
        return False
    edges = cv2.Canny(g[y0:y1, x0:x1], *p.canny) > 0
    return float(edges.mean()) <= p.gap_edges


def _eye_detail(g: np.ndarray, bh: np.ndarray, b: _Blob, p: Params = PARAMS) -> tuple[float, float]:
    """``(contrast, holes)`` of one eye blob: luminance percentile spread (``p.contrast_pct``) inside
    its convex hull, and the share of the hull that is not dark (catch-lights, the lighter lower
    iris, sclera between lashes)."""
    import cv2

    win = bh[b.y0 : b.y1, b.x0 : b.x1]
    mask = (win > p.blob_rel * float(win.max())).astype(np.uint8)
    cnts, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return 0.0, 0.0
    hull = np.zeros_like(mask)
    cv2.drawContours(hull, [cv2.convexHull(max(cnts, key=cv2.contourArea))], -1, 1, -1)
    inside = g[b.y0 : b.y1, b.x0 : b.x1][hull > 0]
    lo, hi = p.contrast_pct
    contrast = float(np.percentile(inside, hi) - np.percentile(inside, lo))
    holes = float(((hull > 0) & (mask == 0)).sum()) / max(1, int(hull.sum()))
    return contrast, holes


def _drawn_eyes(g: np.ndarray, bh: np.ndarray, left: _Blob, right: _Blob, p: Params = PARAMS) -> bool:
    """Both blobs look like drawn eyes (light marks inside a dark iris), not filled disks or letters."""
    (c1, h1), (c2, h2) = _eye_detail(g, bh, left, p), _eye_detail(g, bh, right, p)
    holes_ok = max(h1, h2) >= p.eye_holes_max and (h1 + h2) / 2 >= p.eye_holes_mean
    return min(c1, c2) >= p.eye_contrast and holes_ok


def _eye_shaped(b: _Blob, W: int, H: int, p: Params = PARAMS) -> bool:
    """An iris-and-lashes blob of eye size, not a line, not a hair band."""
    (w_lo, w_hi), (h_lo, h_hi), (a_lo, a_hi) = p.eye_w, p.eye_h, p.eye_aspect
    return (
        w_lo * W <= b.w <= w_hi * W
        and h_lo * H <= b.h <= h_hi * H
        and a_lo <= b.h / b.w <= a_hi
        and b.area >= p.eye_fill * b.w * b.h
    )


def _has_face_detail(g: np.ndarray, left: _Blob, right: _Blob, p: Params = PARAMS) -> bool:
    """Some drawn lines outside the eyes (hair, outline, nose, mouth): two dots alone are no face."""
    import cv2

    edges = cv2.Canny(g, *p.canny) > 0
    for b in (left, right):
        edges[b.y0 : b.y1, b.x0 : b.x1] = False
    return float(edges.mean()) >= p.min_detail


def _light_between_and_below(g: np.ndarray, left: _Blob, right: _Blob, p: Params = PARAMS) -> bool:
    """Nose bridge between the eyes and cheeks below them are light, flat skin."""
    H, W = g.shape
    eye_lum = float(np.median(np.concatenate([_region(g, left).ravel(), _region(g, right).ravel()])))
    y0, y1 = int(min(left.y0, right.y0)), int(max(left.y1, right.y1))
    gap = g[y0:y1, left.x1 : right.x0]
    if gap.size and float(np.median(gap)) < eye_lum + p.gap_lighter:
        return False
    d = right.cx - left.cx
    cy0, cy1 = y1, int(min(H, y1 + p.cheek_depth * d))
    cheeks = g[cy0:cy1, int(left.x0) : int(right.x1)]
    if cheeks.size < p.min_cheek_px:
        return False
    return float(np.median(cheeks)) >= max(p.cheek_min, eye_lum + p.cheek_lighter)


def _region(g: np.ndarray, b: _Blob) -> np.ndarray:
    return g[b.y0 : b.y1, b.x0 : b.x1]


def _face_from_eyes(
    g: np.ndarray,
    left: _Blob,
    right: _Blob,
    quality: float,
    k: float,
    shape: tuple,
    name: str,
    p: Params = PARAMS,
) -> Face:
    """Face, eye and mouth boxes in image pixels (``k`` = image px per working px)."""
    d = right.cx - left.cx
    mx, ey = (left.cx + right.cx) / 2, (left.cy + right.cy) / 2
    # the black-hat blob is the dark iris and lashes; the drawn eye extends further (``p.eye_grow``)
    parts = {}
    gx, gy = p.eye_grow
    for nm, b in (("left_eye", left), ("right_eye", right)):
        ex, eyy = gx * b.w, gy * b.h
        parts[nm] = clip_box(((b.x0 - ex) * k, (b.y0 - eyy) * k, (b.x1 + ex) * k, (b.y1 + eyy) * k), shape)
    mouth = _find_mouth(g, mx, max(left.y1, right.y1), d, p)
    parts["mouth"] = clip_box(tuple(v * k for v in mouth), shape)
    # a tight crop: face = the anime head proportions around the eyes, clipped to the image, which
    # usually is all of it
    hw, up, down = p.face_half_w * d, p.face_up * d, p.face_down * d
    face = clip_box(((mx - hw) * k, (ey - up) * k, (mx + hw) * k, (ey + down) * k), shape)
    parts = {n: b for n, b in parts.items() if b is not None}
    score = p.max_score * (p.score_base + (1 - p.score_base) * quality)
    return Face(box=face, score=score, detector=name, parts=parts)


def _find_mouth(
    g: np.ndarray, mx: float, eye_bottom: float, d: float, p: Params = PARAMS
) -> tuple[float, float, float, float]:
    """Mouth box in working px: the darkest mark in the window below the eyes, else the typical spot."""
    import cv2

    H, W = g.shape
    x0, x1 = int(max(0, mx - p.mouth_half_w * d)), int(min(W, mx + p.mouth_half_w * d))
    top, bottom = p.mouth_win
    y0, y1 = int(min(H, eye_bottom + top * d)), int(min(H, eye_bottom + bottom * d))
    win = g[y0:y1, x0:x1]
    if win.size >= p.min_mouth_win:
        kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.mouth_kernel, p.mouth_kernel))
        bh = cv2.morphologyEx(win, cv2.MORPH_BLACKHAT, kern)
        ys, xs = np.nonzero(bh > max(p.mouth_dark, p.mouth_rel * float(bh.max())))
        if len(xs) >= p.min_mouth_px:
            bx0, bx1 = np.percentile(xs, p.mouth_pct)
            by0, by1 = np.percentile(ys, p.mouth_pct)
            pad = p.mouth_pad * d
            return (x0 + bx0 - pad, y0 + by0 - pad, x0 + bx1 + pad, y0 + by1 + pad)
    cy = eye_bottom + p.mouth_guess_below * d
    hx, hy = p.mouth_guess_half
    return (mx - hx * d, cy - hy * d, mx + hx * d, cy + hy * d)
