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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Face
from ._geometry import clip_box

#: Working width in px: eyes of a tight crop are then ~15-40 px wide, well above the 3 px opening.
WORK_WIDTH = 128
#: Upper bound of the score of a crop face (animeface reports 0.5-1.0 likelihoods).
MAX_SCORE = 0.35


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
        min_aspect, max_aspect: accepted width / height range.
    """

    name = "crop"

    def __init__(self, min_aspect: float = 0.6, max_aspect: float = 1.7) -> None:
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect

    def detect(self, image: np.ndarray) -> list[Face]:
        """At most one face for an RGB ``uint8 (H, W, 3)`` image, boxes in its pixels."""
        import cv2

        h, w = image.shape[:2]
        if not self.min_aspect <= w / h <= self.max_aspect:
            return []
        s = WORK_WIDTH / w
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        g = cv2.resize(gray, (WORK_WIDTH, max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        if float(g.std()) < 12.0:  # blank or nearly uniform
            return []
        grad = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
        if float((grad < 24.0).mean()) < 0.35:  # busy texture (noise, photo detail), not cel shading
            return []
        found = _find_eyes(g)
        if found is None:
            return []
        left, right, quality = found
        return [_face_from_eyes(g, left, right, quality, 1.0 / s, image.shape, self.name)]


def _response(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye evidence maps of ``g`` (uint8 ``(H, 128)``): black-hat ``bh`` and its blurred density ``dens``.

    black-hat = closing - image: how much darker a pixel is than its surroundings at a 31 px scale
    (~1/4 of the width, an eye of a tight crop); hair masses bigger than that give little response.
    A 3x3 opening then removes 1-2 px lines (hair strands, outlines), and a Gaussian (sigma 4 px)
    turns the filled irises into the strongest peaks. Replicated borders keep the image edge from
    looking like a dark frame.
    """
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))
    bh = cv2.morphologyEx(g, cv2.MORPH_BLACKHAT, k, borderType=cv2.BORDER_REPLICATE)
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    bh = cv2.morphologyEx(bh, cv2.MORPH_OPEN, k3, borderType=cv2.BORDER_REPLICATE)
    dens = cv2.GaussianBlur(bh.astype(np.float32), (0, 0), 4.0, borderType=cv2.BORDER_REPLICATE)
    return bh, dens


def _peaks(dens: np.ndarray, radius: int) -> list[tuple[float, int, int]]:
    """Local maxima ``(value, x, y)`` of ``dens``, at least ``radius`` px apart, strongest first."""
    import cv2

    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    is_max = (cv2.dilate(dens, k) <= dens) & (dens > 0.2 * float(dens.max()))
    ys, xs = np.nonzero(is_max)
    return sorted(((float(dens[y, x]), int(x), int(y)) for y, x in zip(ys, xs, strict=True)), reverse=True)


def _blob_at(bh: np.ndarray, x: int, y: int, radius: int) -> _Blob | None:
    """The dark blob around peak ``(x, y)``: the connected part of ``bh`` above half its local
    maximum, inside a window of ``radius`` px."""
    import cv2

    H, W = bh.shape
    x0, y0, x1, y1 = max(0, x - radius), max(0, y - radius), min(W, x + radius + 1), min(H, y + radius + 1)
    win = bh[y0:y1, x0:x1]
    mask = (win > 0.5 * float(win.max())).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    # the component nearest the peak (the peak of the blurred map may fall between iris pixels)
    d = [(cents[i][0] - (x - x0)) ** 2 + (cents[i][1] - (y - y0)) ** 2 for i in range(1, n)]
    i = 1 + int(np.argmin(d))
    bx, by, bw, bhh, area = (int(v) for v in stats[i])
    return _Blob(x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bhh, area, x0 + cents[i][0], y0 + cents[i][1])


def _find_eyes(g: np.ndarray) -> tuple[_Blob, _Blob, float] | None:
    """The best eye pair (viewer-left, viewer-right, quality in [0, 1]) or ``None``."""
    H, W = g.shape
    bh, dens = _response(g)
    peaks = [p for p in _peaks(dens, radius=int(0.1 * W)) if 0.12 * H <= p[2] <= 0.72 * H]
    # eyes of a tight crop are the darkest compact marks: text, a pattern or foliage give weaker or
    # many equal peaks (text peaks ~35 vs eyes 100-200 on the dev crops)
    peaks = [p for p in peaks[:6] if p[0] >= 50.0]
    best: tuple[float, _Blob, _Blob] | None = None
    for i, pa in enumerate(peaks):
        for pb in peaks[i + 1 :]:
            (va, xa, ya), (vb, xb, yb) = sorted((pa, pb), key=lambda p: p[1])
            dx, dy, mid = xb - xa, abs(yb - ya), (xa + xb) / 2
            if not (0.2 * W <= dx <= 0.7 * W and dy <= 0.12 * H and 0.25 * W <= mid <= 0.75 * W):
                continue
            weaker = min(va, vb)
            others = [p[0] for p in peaks if p is not pa and p is not pb]
            # both eyes among the strongest marks: hair clumps and the odd border can be as dark,
            # but an eye weaker than half the strongest peak is a blush line or a shadow
            if weaker < 0.5 * peaks[0][0]:
                continue
            left, right = _blob_at(bh, xa, ya, int(0.2 * W)), _blob_at(bh, xb, yb, int(0.2 * W))
            if left is None or right is None or not (_eye_shaped(left, W, H) and _eye_shaped(right, W, H)):
                continue
            if max(left.area, right.area) > 3.5 * max(1, min(left.area, right.area)):
                continue
            if not _drawn_eyes(g, bh, left, right):
                continue
            if not _clear_gap(g, dens, left, right, weaker):
                continue
            if not _light_between_and_below(g, left, right) or not _has_face_detail(g, left, right):
                continue
            margin = max(0.0, 1.0 - (max(others) / weaker if others else 0.0))
            q = 0.5 + 0.5 * margin - 0.15 * dy / (0.12 * H)
            if best is None or q > best[0]:
                best = (q, left, right)
    if best is None:
        return None
    return best[1], best[2], float(min(1.0, max(0.0, best[0])))


def _clear_gap(g: np.ndarray, dens: np.ndarray, left: _Blob, right: _Blob, weaker: float) -> bool:
    """Between the eyes lies the nose bridge: no mark as strong as 0.8 of the weaker eye and few
    lines (<= 20 % edge pixels; hair strands or a glasses bridge cross it on 3 of the dev crops).
    This rejects two letters of a text line or two disks with others between them."""
    import cv2

    y0, y1 = min(left.y0, right.y0), max(left.y1, right.y1)
    x0, x1 = left.x1, right.x0
    if x1 - x0 < 3:
        return False
    # the blurred map spills ~1 sigma past each eye: look at the middle 60 % of the gap only
    m0, m1 = x0 + int(0.2 * (x1 - x0)), x1 - int(0.2 * (x1 - x0))
    if float(dens[y0:y1, m0:m1].max()) >= 0.8 * weaker:
        return False
    edges = cv2.Canny(g[y0:y1, x0:x1], 60, 120) > 0
    return float(edges.mean()) <= 0.2


def _eye_detail(g: np.ndarray, bh: np.ndarray, b: _Blob) -> tuple[float, float]:
    """``(contrast, holes)`` of one eye blob: luminance p97 - p10 inside its convex hull, and the
    share of the hull that is not dark (catch-lights, the lighter lower iris, sclera between lashes).

    Drawn anime eyes: contrast 65-230 (most 140+) and holes 0.15-0.5 on the dev crops; a filled
    disk: holes 0.01-0.1 (only where another disk overlaps it).
    """
    import cv2

    win = bh[b.y0 : b.y1, b.x0 : b.x1]
    mask = (win > 0.5 * float(win.max())).astype(np.uint8)
    cnts, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return 0.0, 0.0
    hull = np.zeros_like(mask)
    cv2.drawContours(hull, [cv2.convexHull(max(cnts, key=cv2.contourArea))], -1, 1, -1)
    inside = g[b.y0 : b.y1, b.x0 : b.x1][hull > 0]
    contrast = float(np.percentile(inside, 97) - np.percentile(inside, 10))
    holes = float(((hull > 0) & (mask == 0)).sum()) / max(1, int(hull.sum()))
    return contrast, holes


def _drawn_eyes(g: np.ndarray, bh: np.ndarray, left: _Blob, right: _Blob) -> bool:
    """Both blobs look like drawn eyes (light marks inside a dark iris), not filled disks or letters."""
    (c1, h1), (c2, h2) = _eye_detail(g, bh, left), _eye_detail(g, bh, right)
    return min(c1, c2) >= 60.0 and max(h1, h2) >= 0.12 and (h1 + h2) / 2 >= 0.15


def _eye_shaped(b: _Blob, W: int, H: int) -> bool:
    """An iris-and-lashes blob: 6-42 % of the width, not a line, not a hair band."""
    return (
        0.06 * W <= b.w <= 0.42 * W
        and 0.04 * H <= b.h <= 0.45 * H
        and 0.25 <= b.h / b.w <= 2.0
        and b.area >= 0.2 * b.w * b.h
    )


def _has_face_detail(g: np.ndarray, left: _Blob, right: _Blob) -> bool:
    """Some drawn lines outside the eyes (hair, outline, nose, mouth): two dots alone are no face."""
    import cv2

    edges = cv2.Canny(g, 60, 120) > 0
    for b in (left, right):
        edges[b.y0 : b.y1, b.x0 : b.x1] = False
    return float(edges.mean()) >= 0.01


def _light_between_and_below(g: np.ndarray, left: _Blob, right: _Blob) -> bool:
    """Nose bridge between the eyes and cheeks below them are light, flat skin."""
    H, W = g.shape
    eye_lum = float(np.median(np.concatenate([_region(g, left).ravel(), _region(g, right).ravel()])))
    y0, y1 = int(min(left.y0, right.y0)), int(max(left.y1, right.y1))
    gap = g[y0:y1, left.x1 : right.x0]
    if gap.size and float(np.median(gap)) < eye_lum + 25:
        return False
    d = right.cx - left.cx
    cy0, cy1 = y1, int(min(H, y1 + 0.3 * d))
    cheeks = g[cy0:cy1, int(left.x0) : int(right.x1)]
    if cheeks.size < 16:
        return False
    return float(np.median(cheeks)) >= max(100.0, eye_lum + 35)


def _region(g: np.ndarray, b: _Blob) -> np.ndarray:
    return g[b.y0 : b.y1, b.x0 : b.x1]


def _face_from_eyes(
    g: np.ndarray, left: _Blob, right: _Blob, quality: float, k: float, shape: tuple, name: str
) -> Face:
    """Face, eye and mouth boxes in image pixels (``k`` = image px per working px)."""
    d = right.cx - left.cx
    mx, ey = (left.cx + right.cx) / 2, (left.cy + right.cy) / 2
    # the black-hat blob is the dark iris and lashes; the drawn eye (white sclera, lower lid) extends
    # ~25 % further each side and ~35 % further up and down on the dev crops
    parts = {}
    for nm, b in (("left_eye", left), ("right_eye", right)):
        ex, eyy = 0.25 * b.w, 0.35 * b.h
        parts[nm] = clip_box(((b.x0 - ex) * k, (b.y0 - eyy) * k, (b.x1 + ex) * k, (b.y1 + eyy) * k), shape)
    mouth = _find_mouth(g, mx, max(left.y1, right.y1), d)
    parts["mouth"] = clip_box(tuple(v * k for v in mouth), shape)
    # a tight crop: face = the anime head proportions around the eyes (face ~2.3 d wide, forehead
    # ~1.1 d above the eye line, chin ~1.3 d below), clipped to the image, which usually is all of it
    face = clip_box(((mx - 1.15 * d) * k, (ey - 1.1 * d) * k, (mx + 1.15 * d) * k, (ey + 1.3 * d) * k), shape)
    parts = {n: b for n, b in parts.items() if b is not None}
    return Face(box=face, score=MAX_SCORE * (0.5 + 0.5 * quality), detector=name, parts=parts)


def _find_mouth(g: np.ndarray, mx: float, eye_bottom: float, d: float) -> tuple[float, float, float, float]:
    """Mouth box in working px: the darkest mark in the window below the eyes, else the typical spot."""
    import cv2

    H, W = g.shape
    x0, x1 = int(max(0, mx - 0.4 * d)), int(min(W, mx + 0.4 * d))
    y0, y1 = int(min(H, eye_bottom + 0.25 * d)), int(min(H, eye_bottom + 0.95 * d))
    win = g[y0:y1, x0:x1]
    if win.size >= 16:
        bh = cv2.morphologyEx(win, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
        ys, xs = np.nonzero(bh > max(30.0, 0.5 * float(bh.max())))
        if len(xs) >= 4:
            bx0, bx1 = np.percentile(xs, [2, 98])
            by0, by1 = np.percentile(ys, [2, 98])
            pad = 0.08 * d
            return (x0 + bx0 - pad, y0 + by0 - pad, x0 + bx1 + pad, y0 + by1 + pad)
    cy = eye_bottom + 0.55 * d
    return (mx - 0.25 * d, cy - 0.15 * d, mx + 0.25 * d, cy + 0.15 * d)
