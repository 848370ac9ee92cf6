"""Mouth measurements: what an artist changes in a mouth to show an emotion.

- ``open``: height of the filled mouth shape (an outlined opening counts as filled) over the face
  width. A closed mouth is a line (0.01-0.03); a laugh or a shout 0.06-0.25.
- ``curve``: bend of the mouth's middle line (parabola fit, see ``common.bend``); corners up = smile
  (> 0), corners down = frown (< 0). Units: sag depth / mouth width.
- ``corner``: the corner tips' height against the mouth's centre: corners lifted (> 0) or dropped.
- ``width``: mouth width / face width (smiles and shouts stretch the mouth).
- ``teeth``: share of the opening that is bright (teeth, or an outlined white opening).
- ``round``: O shape: an open, tall, round opening whose upper lip arches as the lower sags (surprise).
- ``wavy``: residual of the middle line around its parabola, for closed mouths (pout / grumble).
- ``visible``: whether a mouth is drawn at all: ``quality.width_visibility`` of the part found.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...quality import width_visibility
from .common import Canvas, bend, column_profile, fill_holes, grow, pick_components, ramp, region_mask

FEATURES: list[str] = ["visible", "open", "curve", "corner", "width", "teeth", "round", "wavy"]
#: Values for a mouth that is not drawn: a closed flat line, so the features stay NaN-free.
_ABSENT = {
    "visible": 0.0,
    "open": 0.02,
    "curve": 0.0,
    "corner": 0.0,
    "width": 0.12,
    "teeth": 0.0,
    "round": 0.0,
    "wavy": 0.0,
}


def mouth_window(cv: Canvas, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Where to look for the mouth (canvas px): the box widened to at least +-20 % of the face width
    around its centre (wide smiles and open mouths reach 35 %), from a little above it to well below it. Detector mouth boxes on real art sit
    on the mouth or above it: on the tight TV crops animeface's box was up to one box height above a
    small mouth drawn near the chin. Stops above the chin line unless the face box is a crop edge."""
    face_w = cv.face[2] - cv.face[0]
    bx0, by0, bx1, by1 = box
    bw, bh = max(1.0, bx1 - bx0), max(1.0, by1 - by0)
    cx = 0.5 * (bx0 + bx1)
    half = min(max(bw, 0.2 * face_w), 0.3 * face_w)
    hh, ww = cv.lab.shape[:2]
    x0, x1 = int(max(0, cx - half)), int(min(ww, cx + half))
    y0 = int(max(0, by0 - max(min(0.6 * bh, 0.1 * face_w), 0.06 * face_w)))
    y1 = int(min(hh, by1 + max(min(0.8 * bh, 0.12 * face_w), 0.08 * face_w)))
    if not cv.cut_bottom:  # the face box ends at the chin line, which a loose window would reach
        fy0, fy1 = cv.face[1], cv.face[3]
        y1 = int(min(y1, fy1 - 0.04 * (fy1 - fy0)))
    return x0, y0, max(x0 + 4, x1), max(y0 + 4, y1)


def mouth_mask(cv: Canvas, win: tuple[int, int, int, int]) -> np.ndarray:
    """Candidate mouth pixels (uint8 0/1) in canvas window ``win``, by hysteresis: seeds are clear
    strokes (dark or coloured shapes; lines darker than what is around them by >= 0.35x the ink
    threshold; soft-painted openings), grown along anything >= 3 L* darker than its surroundings.
    Resting mouths in soft-shaded art are faint short lines (black-hat 8-30 along a dev sprite's
    closed mouths against 0-1 on bare skin) whose darkest bit is often one end."""
    x0, y0, x1, y1 = win
    bh = cv.blackhat[y0:y1, x0:x1]
    lab = cv.lab[y0:y1, x0:x1]
    seed = region_mask(cv, win, colour=True).astype(bool) | (bh > max(6.0, 0.35 * cv.t_dark))
    # Soft-painted open mouths (AI art): a light outline around a pink inside, each only a little off
    # the skin; together (L*a*b* distance) they stand out. Needs some hue change (dc > 8), so grayscale
    # shading is not taken for a mouth (a 3x3 closing to join broken outlines cost 0.06-0.09 balanced
    # accuracy on the grayscale TV crops: it merged mouths with nearby shading).
    dist = np.sqrt(((lab - cv.skin) ** 2).sum(axis=2))
    dc = np.hypot(lab[:, :, 1] - cv.skin[1], lab[:, :, 2] - cv.skin[2])
    seed |= (dist > max(14.0, 0.7 * cv.t_dark)) & (lab[:, :, 0] < cv.skin[0] - 3) & (dc > 8)
    # Weak: 3 L* darker than the surroundings, or more where the skin itself is noisy (grainy frames);
    # or clearly darker than skin at any size: the flat inside of an open mouth (mid grey in TV frames),
    # reached through its outline.
    weak = bh > max(3.0, 3.0 * float(np.percentile(bh, 75)))
    weak |= cv.skin[0] - lab[:, :, 0] > max(6.0, 0.3 * cv.t_dark)
    return grow(seed, weak)


def measure_mouth(cv: Canvas, box: tuple[float, float, float, float]) -> tuple[dict[str, float], dict]:
    """Measure the mouth around canvas box ``box`` (searched in ``mouth_window``, since boxes are loose).

    Returns ``(features, debug)``: ``features`` maps every name in ``FEATURES`` to a float;
    ``debug`` holds the window and part mask for inspection.
    """
    win = mouth_window(cv, box)
    x0, y0, x1, y1 = win
    mask = mouth_mask(cv, win)
    lab = cv.lab[y0:y1, x0:x1]
    bx0, by0, bx1, by1 = box
    face_w = cv.face[2] - cv.face[0]
    # Expected centre a little below the box's (boxes sit on or above the mouth), wide in x.
    centre = (0.5 * (bx0 + bx1) - x0, 0.5 * (by0 + by1) + 0.15 * (by1 - by0) - y0)
    sigma = (max(0.06 * face_w, 0.5 * (bx1 - bx0)), max(0.05 * face_w, 0.7 * (by1 - by0)))
    part = pick_components(mask, centre, sigma, min_area=4, join=(0.5, 0.8), edge=0.05, span=0.3)
    debug = {"window": win, "mask": part}
    if part.sum() < 4:
        return dict(_ABSENT), debug
    ys, xs = np.nonzero(part)
    w = float(xs.max() - xs.min() + 1)
    visible = width_visibility(w, 0.06 * face_w)
    hp, wp = part.shape
    # A mouth off-centre in a loose box may run out of one side of the window, a wide open one out of
    # both; a part crossing it from top to bottom, or leaving by the bottom and a side, is the face
    # outline, the chin or hair passing through. The picture's own edge (a crop cut through an open
    # mouth) does not count.
    at_bottom = ys.max() == hp - 1 and y1 < cv.lab.shape[0]
    sides = int(xs.min() == 0) + int(xs.max() == wp - 1)
    if at_bottom and (ys.min() == 0 or sides):
        visible *= 0.15
    elif sides + int(ys.min() == 0) + int(at_bottom) >= 2:
        visible *= 0.6
    elif sides or ys.min() == 0 or at_bottom:
        visible *= 0.8
    filled = fill_holes(part)
    xcol, top, bot, _ = column_profile(filled)
    ext = bot - top + 1
    centre_cols = np.abs(xcol - xcol.mean()) <= 0.3 * w
    # Openness against the face, not the mouth: a resting mouth is a 1-3 %-of-face-wide stroke however
    # short it is (tiny afc mouths of 6 px read 0.5 as height/width); open mouths are 5-25 %.
    height = float(np.percentile(ext[centre_cols], 75)) if centre_cols.any() else 1.0
    # ... but a line-like stroke (its thickest point, the inscribed circle's diameter, under 0.35x its
    # width) is only as tall as its stroke: a thick pout line crossed by a steep tick at one end
    # (a layered dev character's grumble: 0.04-0.06 of the face tall in the tick's columns) is a 0.03 stroke. The
    # stroke's width is the median over columns of each column's thickest point (the crossing is a
    # few columns), with 20 % slack. An opening's inscribed diameter is its height: it keeps it.
    # Only for plain strokes: an outlined opening (filling its holes adds area: teeth, a tongue) is
    # an opening however flat.
    dist = cv2.distanceTransform(filled, cv2.DIST_L2, 3)
    if 2.0 * float(dist.max()) < 0.35 * w and filled.sum() <= 1.05 * part.sum():
        stroke = 2.0 * float(np.median(dist[:, xcol.astype(int)].max(axis=0)))
        height = min(height, 1.2 * stroke)
    open_ = height / face_w
    aspect = height / w
    mid = 0.5 * (top + bot)
    # A closed mouth is judged by its middle line; an open one by both lips: the average bend of the
    # upper and lower edges (a D-shaped laugh has a flat top and a deep U bottom: net corners up).
    curve_mid, wavy = bend(xcol, mid, w)
    curve_top, _ = bend(xcol, top, w)
    curve_bot, _ = bend(xcol, bot, w)
    is_open = ramp(open_, 0.035, 0.065)
    curve = (1 - is_open) * curve_mid + is_open * (0.25 * curve_top + 0.75 * curve_bot)
    # A closed line that a parabola does not fit (wavy residual over 0.04 mouth widths: a grumbling
    # squiggle or a pout stroke with a tick; the w-shaped cat smile is 0.03) has no one bend: its
    # curve and corners say little, so they shrink towards flat and the waviness speaks.
    unbent = 1.0 - (1 - is_open) * ramp(wavy, 0.04, 0.08)
    curve *= unbent
    # Corner tips: outer 15 % of columns against the central 30 %.
    tips = np.abs(xcol - xcol.mean()) >= 0.35 * w
    corner = unbent * (
        float((mid[centre_cols].mean() - mid[tips].mean()) / w) if tips.any() and centre_cols.any() else 0.0
    )
    # Teeth / white inside the opening: enclosed pixels at least as bright as skin with little colour.
    inner = filled.astype(bool) & ~part.astype(bool)
    bright = (lab[:, :, 0] >= cv.skin[0] - 8) & (np.hypot(lab[:, :, 1], lab[:, :, 2]) < 18)
    area = float(filled.sum())
    teeth = float((inner & bright).sum()) / area if area else 0.0
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    per = max((cv2.arcLength(c, True) for c in contours), default=0.0)
    circ = float(np.clip(4 * np.pi * area / per**2, 0, 1)) if per > 0 else 0.0
    # O shape: an open mouth whose upper lip arches up as its lower lip sags, and tall for its width.
    # A D-shaped laugh (flat top) or a triangle (flat bottom) is not round.
    roundness = is_open * circ * ramp(min(-curve_top, curve_bot), 0.0, 0.1) * ramp(aspect, 0.4, 0.8)
    feats = {
        "visible": visible,
        "open": float(np.clip(open_, 0, 0.5)),
        "curve": float(np.clip(curve, -0.5, 0.5)),
        "corner": float(np.clip(corner, -0.5, 0.5)),
        "width": float(np.clip(w / face_w, 0, 1)),
        "teeth": float(np.clip(teeth * is_open, 0, 1)),
        "round": float(roundness),
        "wavy": float(np.clip(wavy * (1 - is_open), 0, 0.3)),
    }
    return feats, debug
