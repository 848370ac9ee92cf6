"""Brow measurements: slope, arch and height of the brow stroke above an eye.

- ``inner_drop``: inner end (towards the nose) lower than the outer end, over brow length: > 0 is
  the angry V, < 0 the raised inner ends of worry and sadness. The viewer-left brow's inner end is
  its right end in the image.
- ``arch``: how arched the brow is (sag / length, > 0 = arched up): lifted surprised brows arch.
- ``gap``: height of the brow above the eye's top, over the eye's width: high = surprised, low and
  pressed down = angry.
- ``visible``: how clearly a brow-like stroke is there (long, roughly horizontal, darker than what
  is around it). Brows hidden under a fringe read ~0; the backend then flattens the brow reading
  instead of trusting noise.

Brows are found on the canvas's black-hat image (local darkness), so a brow drawn over hair is
found as well as one on skin.

Tried and dropped, judged leave-one-source-out: where no component passes, trace the best path
through the black-hat that moves at most one row per column (it crosses steep strands, cannot
follow them; a small cost per row step, smooth within 0.03 of its length, above the eye's top).
It finds the layered dev character's brows drawn across its fringe, but brow readings right
(default / learned reader; afc, permissive, seraphina, zundamon) went 26/66, 13/41, 15/33, 17/27
and 26/66, 12/41, 12/33, 17/27 -> 23, 12, 15, 9 and 22, 20, 13, 9: the found brows sit high above
the eyes and the mapping reads them happy or surprised.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...types import Box
from .common import Canvas, bend, ramp

FEATURES: list[str] = ["visible", "inner_drop", "arch", "gap"]
_ABSENT = {"visible": 0.0, "inner_drop": 0.0, "arch": 0.05, "gap": 0.35}


@dataclass(frozen=True)
class Params:
    """The brow measurement's constants. ``box`` is the brow band (``brow_box_from_eye``), ``ink`` the
    canvas's ink threshold (``Canvas.t_dark``, L*). Pairs ``(lo, hi)`` are :func:`~.common.ramp` ends.
    Vary with ``dataclasses.replace(PARAMS, ...)`` and pass it as ``measure_brow(..., p=...)``.

    - ``band_side`` / ``band_up`` / ``band_down``: the band above an eye box: the eye's width plus
      ``band_side`` of it each side, from ``band_up`` eye heights above the eye's top down to
      ``band_down`` of its height (anime brows sit 0.2-1 eye height above the eye).
    - ``win_side`` / ``win_up`` / ``win_down`` / ``win_min``: the search window around the band, in
      band widths each side (a slanted brow, the angry V or the raised inner ends of sadness, often
      runs past the band), band heights up / down, and at least ``win_min`` px.
    - ``bh_min`` / ``bh_ink``: a brow pixel is darker than what is around it (black-hat) by at least
      ``max(bh_min, bh_ink * ink)``; that line is also the contrast unit ``t`` below.
    - ``eye_guard``: side (px) of the square by which the eye strokes are grown before they are taken
      out of the brow mask (the upper lash line, taken for a brow, made drooping sad lids read as an
      angry V on the dev full-body sprites).
    - ``open_len``: length (px) of the horizontal opening that cuts steep strokes (hair strands,
      which a brow drawn over a fringe crosses) and keeps brows up to ~50 deg steep.
    - ``min_len`` / ``min_area``: a candidate is at least ``min_len`` band widths long and
      ``min_area`` px.
    - ``max_angle`` (deg) / ``max_thick`` / ``max_tall``: hair strands run steep or meet in a peak,
      blobs (eyes, hair mass) are thick: a candidate's mean thickness is under ``max_thick`` and its
      height under ``max_tall`` times its length.
    - ``centre_sigma``: width (band widths) of the Gaussian that favours strokes centred on the band.
    - ``contrast_cap``: contrast (in ``t``) above which a darker stroke scores no better.
    - ``angle_zero`` (deg): the score falls linearly with the stroke's angle, to 0 at this angle.
    - ``side_factor``: score factor of a stroke leaving the window by a side (a long brow may, hair
      does too).
    - ``vis_len`` / ``vis_contrast``: ``visible`` ramps with length (band widths) and contrast (``t``).
    - ``max_drop`` / ``arch_range`` / ``gap_range``: clips of ``inner_drop`` (+-), ``arch`` and ``gap``.
    """

    band_side: float = 0.1
    band_up: float = 1.1
    band_down: float = 0.25
    win_side: float = 0.3
    win_up: float = 0.3
    win_down: float = 0.05
    win_min: float = 3.0
    bh_min: float = 8.0
    bh_ink: float = 0.5
    eye_guard: int = 5
    open_len: int = 7
    min_len: float = 0.25
    min_area: int = 8
    max_angle: float = 40.0
    max_thick: float = 0.35
    max_tall: float = 0.6
    centre_sigma: float = 0.6
    contrast_cap: float = 3.0
    angle_zero: float = 60.0
    side_factor: float = 0.5
    vis_len: tuple[float, float] = (0.3, 0.6)
    vis_contrast: tuple[float, float] = (1.0, 2.0)
    max_drop: float = 0.7
    arch_range: tuple[float, float] = (-0.3, 0.4)
    gap_range: tuple[float, float] = (-0.2, 1.5)


PARAMS = Params()


def brow_box_from_eye(eye: Box, p: Params = PARAMS) -> Box:
    """A band above an eye box where its brow is drawn (see :class:`Params`: ``band_*``)."""
    x0, y0, x1, y1 = eye
    w, h = x1 - x0, y1 - y0
    return (
        int(x0 - p.band_side * w),
        int(y0 - p.band_up * h),
        int(x1 + p.band_side * w),
        int(y0 + p.band_down * h),
    )


def measure_brow(
    cv: Canvas,
    box: tuple[float, float, float, float],
    inner_is_right: bool,
    eye_top: float | None,
    eye_w: float | None,
    eye_mask: np.ndarray | None = None,
    p: Params = PARAMS,
) -> tuple[dict[str, float], dict]:
    """Measure one brow in canvas box ``box``. ``eye_top`` / ``eye_w`` (canvas px) place the eye below
    it (from the eye measurement); ``None`` uses the bottom / width of ``box``. ``eye_mask`` (canvas
    sized, bool) holds the strokes already taken as eyes: never a brow."""
    # Wide sides: a slanted brow often runs past the band placed over the eye box.
    win = cv.window(box, p.win_side, p.win_up, p.win_side, p.win_down, min_pad=p.win_min)
    x0, y0, x1, y1 = win
    bh = cv.blackhat[y0:y1, x0:x1]
    t = max(p.bh_min, p.bh_ink * cv.t_dark)
    mask = (bh > t).astype(np.uint8)
    if eye_mask is not None:
        # The upper lash line is the longest, darkest near-horizontal stroke in the band.
        guard = np.ones((p.eye_guard, p.eye_guard), np.uint8)
        taken = cv2.dilate(eye_mask[y0:y1, x0:x1].astype(np.uint8), guard)
        mask[taken.astype(bool)] = 0
    # A horizontal opening cuts steep strokes (hair strands a brow drawn over a fringe crosses).
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, p.open_len), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    debug = {"window": win, "mask": np.zeros_like(mask)}
    bw_box = max(4.0, box[2] - box[0])
    best, best_score, best_info = -1, 0.0, None
    cx = 0.5 * (box[0] + box[2]) - x0
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if w < p.min_len * bw_box or area < p.min_area or y == 0:
            continue  # a brow lies inside its band; strokes crossing its top are hair strands
        side = x == 0 or x + w >= mask.shape[1]  # a long brow may run out of a side; hair does too
        ys, xs = np.nonzero(labels == i)
        slope, icept = np.polyfit(xs.astype(float), ys.astype(float), 1)
        angle = abs(np.degrees(np.arctan(slope)))
        thick = area / w
        if angle > p.max_angle or thick > p.max_thick * w or h > p.max_tall * w:
            continue  # hair strands run steep or meet in a peak; blobs (eyes, hair mass) are thick
        contrast = float(bh[labels == i].mean())
        central = np.exp(-0.5 * ((x + 0.5 * w - cx) / (p.centre_sigma * bw_box)) ** 2)
        score = (
            w
            * min(contrast / t, p.contrast_cap)
            * central
            * (1 - angle / p.angle_zero)
            * (p.side_factor if side else 1.0)
        )
        if score > best_score:
            best, best_score, best_info = i, score, (xs, ys, slope, contrast, w)
    if best < 0:
        return dict(_ABSENT), debug
    xs, ys, slope, contrast, w = best_info
    part = (labels == best).astype(np.uint8)
    debug["mask"] = part
    length = float(w)
    inner_drop = float(slope if inner_is_right else -slope)
    # Arch from the brow's centre line (mean y per column); bend > 0 means a U, so an arch is -bend.
    cols = np.unique(xs)
    centre_y = np.array([ys[xs == c].mean() for c in cols])
    sag, _ = bend(cols.astype(float), centre_y, length)
    brow_y = float(centre_y.mean()) + y0
    top = eye_top if eye_top is not None else box[3]
    ew = eye_w if eye_w is not None and eye_w > 0 else bw_box
    feats = {
        "visible": ramp(length / bw_box, *p.vis_len) * ramp(contrast / t, *p.vis_contrast),
        "inner_drop": float(np.clip(inner_drop, -p.max_drop, p.max_drop)),
        "arch": float(np.clip(-sag, *p.arch_range)),
        "gap": float(np.clip((top - brow_y) / ew, *p.gap_range)),
    }
    return feats, debug
