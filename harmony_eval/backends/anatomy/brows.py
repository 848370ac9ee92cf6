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
"""

from __future__ import annotations

import cv2
import numpy as np

from ...types import Box
from .common import Canvas, bend, ramp

FEATURES: list[str] = ["visible", "inner_drop", "arch", "gap"]
_ABSENT = {"visible": 0.0, "inner_drop": 0.0, "arch": 0.05, "gap": 0.35}


def brow_box_from_eye(eye: Box) -> Box:
    """A band above an eye box where its brow is drawn: as wide as the eye plus 20 %, from 1.1 eye
    heights above the eye down to its upper quarter (anime brows sit 0.2-1 eye height above)."""
    x0, y0, x1, y1 = eye
    w, h = x1 - x0, y1 - y0
    return (int(x0 - 0.1 * w), int(y0 - 1.1 * h), int(x1 + 0.1 * w), int(y0 + 0.25 * h))


def measure_brow(
    cv: Canvas,
    box: tuple[float, float, float, float],
    inner_is_right: bool,
    eye_top: float | None,
    eye_w: float | None,
    eye_mask: np.ndarray | None = None,
) -> tuple[dict[str, float], dict]:
    """Measure one brow in canvas box ``box``. ``eye_top`` / ``eye_w`` (canvas px) place the eye below
    it (from the eye measurement); ``None`` uses the bottom / width of ``box``. ``eye_mask`` (canvas
    sized, bool) holds the strokes already taken as eyes: never a brow."""
    # Wide sides: a slanted brow (the angry V, the raised inner ends of sadness) often runs past the
    # band placed over the eye box.
    win = cv.window(box, 0.3, 0.3, 0.3, 0.05, min_pad=3)
    x0, y0, x1, y1 = win
    bh = cv.blackhat[y0:y1, x0:x1]
    t = max(8.0, 0.5 * cv.t_dark)
    mask = (bh > t).astype(np.uint8)
    if eye_mask is not None:
        # The upper lash line is the longest, darkest near-horizontal stroke in the band; taken for the
        # brow it made drooping sad lids read as an angry V on the dev full-body sprites.
        taken = cv2.dilate(eye_mask[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8))
        mask[taken.astype(bool)] = 0
    # A 1x7 horizontal opening cuts steep strokes (hair strands, which a brow drawn over a fringe
    # crosses and would otherwise merge with) and keeps brows up to ~50 deg steep.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    debug = {"window": win, "mask": np.zeros_like(mask)}
    bw_box = max(4.0, box[2] - box[0])
    best, best_score, best_info = -1, 0.0, None
    cx = 0.5 * (box[0] + box[2]) - x0
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if w < 0.25 * bw_box or area < 8 or y == 0:
            continue  # a brow lies inside its band; strokes crossing its top are hair strands
        side = x == 0 or x + w >= mask.shape[1]  # a long brow may run out of a side; hair does too
        ys, xs = np.nonzero(labels == i)
        slope, icept = np.polyfit(xs.astype(float), ys.astype(float), 1)
        angle = abs(np.degrees(np.arctan(slope)))
        thick = area / w
        if angle > 40 or thick > 0.35 * w or h > 0.6 * w:
            continue  # hair strands run steep or meet in a peak; blobs (eyes, hair mass) are thick
        contrast = float(bh[labels == i].mean())
        central = np.exp(-0.5 * ((x + 0.5 * w - cx) / (0.6 * bw_box)) ** 2)
        score = w * min(contrast / t, 3.0) * central * (1 - angle / 60) * (0.5 if side else 1.0)
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
        "visible": ramp(length / bw_box, 0.3, 0.6) * ramp(contrast / t, 1.0, 2.0),
        "inner_drop": float(np.clip(inner_drop, -0.7, 0.7)),
        "arch": float(np.clip(-sag, -0.3, 0.4)),
        "gap": float(np.clip((top - brow_y) / ew, -0.2, 1.5)),
    }
    return feats, debug
