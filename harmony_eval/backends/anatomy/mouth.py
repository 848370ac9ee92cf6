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

``teeth`` misses teeth shaded a little darker than the skin: the part mask's hysteresis takes them
in, so they are no hole of it. Tried and dropped, judged leave-one-source-out (mouth region
readings right, default / learned ``anatomy`` reader, afc / permissive / seraphina / zundamon; the
same before the change: 46/64, 22/40, 11/33, 19/33 and 30/64, 21/40, 22/33, 5/33): white rows
*inside* the filled mouth (eroded 1 px) within half the ink threshold of the skin, colourless,
at least a quarter of the mouth wide. It lifts grins' teeth (0.05 -> 0.09, 0.36 -> 0.46 on
permissive sprites) but moves no reading there, and on the grey TV crops it takes light-grey
insides for teeth: afc 45/64 and 29/64, nothing else moved. Requiring grey-art teeth to be as light
as the skin: afc 46/64 and 29/64, permissive learned 19/40. Neither rises anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Params:
    """The mouth measurement's constants. Lengths are fractions of the face width (``face``), of the
    detector's mouth box (``box``) or of the mouth's own width; darkness in L* units; ``ink`` is the
    canvas's ink threshold (``Canvas.t_dark``). Pairs ``(lo, hi)`` are :func:`~.common.ramp` ends.
    Vary with ``dataclasses.replace(PARAMS, ...)`` and pass it as ``measure_mouth(..., p=...)``.

    Search window (:func:`mouth_window`):

    - ``win_half``: half width of the window around the box centre, at least / at most these shares
      of the face (wide smiles and open mouths reach 35 % of the face width).
    - ``win_up_box`` / ``win_up``: reach above the box: ``win_up_box`` box heights, clamped to the
      ``win_up`` (least, most) shares of the face. ``win_down_box`` / ``win_down`` the same below:
      detector boxes sit on the mouth or above it (on tight TV crops up to a box height above a small
      mouth drawn near the chin).
    - ``chin_gap``: unless the face box is a crop edge, the window stops this share of the face height
      above its bottom (the chin line).
    - ``win_min``: least window side (px).

    Candidate pixels (:func:`mouth_mask`, hysteresis: seeds grown along weak pixels):

    - ``seed_bh`` / ``seed_bh_ink``: a seed is a line darker than what is around it (black-hat) by
      at least ``max(seed_bh, seed_bh_ink * ink)``. Resting mouths in soft-shaded art are faint
      short lines (black-hat 8-30 along a dev sprite's closed mouths, 0-1 on bare skin).
    - ``soft_dist`` / ``soft_dist_ink`` / ``soft_darker`` / ``soft_hue``: soft-painted openings (AI
      art: a light outline around a pink inside, each only a little off the skin) seed where the
      L*a*b* distance to skin exceeds ``max(soft_dist, soft_dist_ink * ink)``, L* is ``soft_darker``
      under the skin's and the hue moves by over ``soft_hue`` (so grey shading is not a mouth).
    - ``weak_bh`` / ``weak_noise`` / ``weak_noise_pct``: weak pixels are ``weak_bh`` darker than
      their surroundings, or ``weak_noise`` x the window's ``weak_noise_pct`` black-hat percentile
      where the skin itself is noisy (grainy frames).
    - ``weak_dark`` / ``weak_dark_ink``: ... or darker than skin by ``max(weak_dark, weak_dark_ink *
      ink)`` at any size: the flat inside of an open mouth (mid grey in TV frames).

    Picking the part (:func:`~.common.pick_components`):

    - ``centre_drop``: the expected centre sits this many box heights below the box's centre.
    - ``sigma_face`` / ``sigma_box``: the centrality Gaussian's (x, y) sigma: the larger of these
      face shares and box shares.
    - ``min_area`` (px), ``join``, ``edge``, ``span``: passed to ``pick_components``.
    - ``visible_w``: a mouth this share of the face wide is fully visible (``width_visibility``).
    - ``edge_through`` / ``edge_two`` / ``edge_one``: visibility factors for a part crossing the
      window (top to bottom, or out by the bottom and a side: the face outline, the chin, hair),
      leaving by two of its sides, or by one.

    Shape:

    - ``centre_cols``: columns within this share of the mouth width of its centre are its middle.
    - ``open_pct``: the opening's height is this percentile of its middle columns' heights.
    - ``line_thick``: a plain stroke whose inscribed diameter is under this share of its width is a
      line, only ``stroke_slack`` x its median stroke width tall; ``fill_slack``: filling holes may
      add this much area and it is still a plain stroke (an outlined opening is never a line).
    - ``open_ramp``: openness (face shares) from closed to open: a closed mouth is a line of
      0.01-0.03, a laugh or a shout 0.06-0.25.
    - ``lower_lip``: weight of the lower edge's bend in an open mouth's curve (a D-shaped laugh has a
      flat top and a deep U bottom: net corners up); the upper edge gets the rest.
    - ``wavy_ramp``: wavy residual (mouth widths) over which a closed line loses its bend (a
      grumbling squiggle; the w-shaped cat smile is 0.03).
    - ``tips``: corner tips are the columns beyond this share of the width from the centre.
    - ``teeth_dark`` / ``teeth_chroma``: an enclosed pixel is white (teeth) when its L* is at most
      ``teeth_dark`` under the skin's and its chroma under ``teeth_chroma``.
    - ``round_bend`` / ``round_aspect``: an O shape's upper lip arches and lower lip sags by
      ``min(-top bend, bottom bend)`` over this ramp, and it is tall (height / width) over this one.
    - ``max_open`` / ``max_bend`` / ``max_wavy``: clips of ``open``, ``curve`` and ``corner``, and
      ``wavy``.
    """

    win_half: tuple[float, float] = (0.2, 0.3)
    win_up_box: float = 0.6
    win_up: tuple[float, float] = (0.06, 0.1)
    win_down_box: float = 0.8
    win_down: tuple[float, float] = (0.08, 0.12)
    chin_gap: float = 0.04
    win_min: int = 4
    seed_bh: float = 6.0
    seed_bh_ink: float = 0.35
    soft_dist: float = 14.0
    soft_dist_ink: float = 0.7
    soft_darker: float = 3.0
    soft_hue: float = 8.0
    weak_bh: float = 3.0
    weak_noise: float = 3.0
    weak_noise_pct: float = 75.0
    weak_dark: float = 6.0
    weak_dark_ink: float = 0.3
    centre_drop: float = 0.15
    sigma_face: tuple[float, float] = (0.06, 0.05)
    sigma_box: tuple[float, float] = (0.5, 0.7)
    min_area: int = 4
    join: tuple[float, float] = (0.5, 0.8)
    edge: float = 0.05
    span: float = 0.3
    visible_w: float = 0.06
    edge_through: float = 0.15
    edge_two: float = 0.6
    edge_one: float = 0.8
    centre_cols: float = 0.3
    open_pct: float = 75.0
    line_thick: float = 0.35
    fill_slack: float = 1.05
    stroke_slack: float = 1.2
    open_ramp: tuple[float, float] = (0.035, 0.065)
    lower_lip: float = 0.75
    wavy_ramp: tuple[float, float] = (0.04, 0.08)
    tips: float = 0.35
    teeth_dark: float = 8.0
    teeth_chroma: float = 18.0
    round_bend: tuple[float, float] = (0.0, 0.1)
    round_aspect: tuple[float, float] = (0.4, 0.8)
    max_open: float = 0.5
    max_bend: float = 0.5
    max_wavy: float = 0.3


PARAMS = Params()


def mouth_window(
    cv: Canvas, box: tuple[float, float, float, float], p: Params = PARAMS
) -> tuple[int, int, int, int]:
    """Where to look for the mouth (canvas px): the box widened to at least ``p.win_half`` of the face
    width around its centre, from a little above it to well below it (see :class:`Params`). Stops
    above the chin line unless the face box is a crop edge."""
    face_w = cv.face[2] - cv.face[0]
    bx0, by0, bx1, by1 = box
    bw, bh = max(1.0, bx1 - bx0), max(1.0, by1 - by0)
    cx = 0.5 * (bx0 + bx1)
    half = min(max(bw, p.win_half[0] * face_w), p.win_half[1] * face_w)
    hh, ww = cv.lab.shape[:2]
    x0, x1 = int(max(0, cx - half)), int(min(ww, cx + half))
    y0 = int(max(0, by0 - max(min(p.win_up_box * bh, p.win_up[1] * face_w), p.win_up[0] * face_w)))
    y1 = int(min(hh, by1 + max(min(p.win_down_box * bh, p.win_down[1] * face_w), p.win_down[0] * face_w)))
    if not cv.cut_bottom:  # the face box ends at the chin line, which a loose window would reach
        fy0, fy1 = cv.face[1], cv.face[3]
        y1 = int(min(y1, fy1 - p.chin_gap * (fy1 - fy0)))
    return x0, y0, max(x0 + p.win_min, x1), max(y0 + p.win_min, y1)


def mouth_mask(cv: Canvas, win: tuple[int, int, int, int], p: Params = PARAMS) -> np.ndarray:
    """Candidate mouth pixels (uint8 0/1) in canvas window ``win``, by hysteresis: seeds are clear
    strokes (dark or coloured shapes; lines clearly darker than what is around them; soft-painted
    openings), grown along anything a little darker than its surroundings (see :class:`Params`).
    Resting mouths in soft-shaded art are faint short lines whose darkest bit is often one end."""
    x0, y0, x1, y1 = win
    bh = cv.blackhat[y0:y1, x0:x1]
    lab = cv.lab[y0:y1, x0:x1]
    seed = region_mask(cv, win, colour=True).astype(bool) | (bh > max(p.seed_bh, p.seed_bh_ink * cv.t_dark))
    # Soft-painted open mouths: together (L*a*b* distance) outline and inside stand out. Needs some
    # hue change, so grayscale shading is not taken for a mouth (a 3x3 closing to join broken outlines
    # cost 0.06-0.09 balanced accuracy on the grayscale TV crops: it merged mouths with nearby shading).
    dist = np.sqrt(((lab - cv.skin) ** 2).sum(axis=2))
    dc = np.hypot(lab[:, :, 1] - cv.skin[1], lab[:, :, 2] - cv.skin[2])
    soft = dist > max(p.soft_dist, p.soft_dist_ink * cv.t_dark)
    seed |= soft & (lab[:, :, 0] < cv.skin[0] - p.soft_darker) & (dc > p.soft_hue)
    # Weak: a little darker than the surroundings, or more where the skin itself is noisy; or clearly
    # darker than skin at any size: the flat inside of an open mouth, reached through its outline.
    weak = bh > max(p.weak_bh, p.weak_noise * float(np.percentile(bh, p.weak_noise_pct)))
    weak |= cv.skin[0] - lab[:, :, 0] > max(p.weak_dark, p.weak_dark_ink * cv.t_dark)
    return grow(seed, weak)


def measure_mouth(
    cv: Canvas, box: tuple[float, float, float, float], p: Params = PARAMS
) -> tuple[dict[str, float], dict]:
    """Measure the mouth around canvas box ``box`` (searched in ``mouth_window``, since boxes are loose).

    Returns ``(features, debug)``: ``features`` maps every name in ``FEATURES`` to a float;
    ``debug`` holds the window and part mask for inspection.
    """
    win = mouth_window(cv, box, p)
    x0, y0, x1, y1 = win
    mask = mouth_mask(cv, win, p)
    lab = cv.lab[y0:y1, x0:x1]
    bx0, by0, bx1, by1 = box
    face_w = cv.face[2] - cv.face[0]
    # Expected centre a little below the box's (boxes sit on or above the mouth), wide in x.
    centre = (0.5 * (bx0 + bx1) - x0, 0.5 * (by0 + by1) + p.centre_drop * (by1 - by0) - y0)
    sigma = (
        max(p.sigma_face[0] * face_w, p.sigma_box[0] * (bx1 - bx0)),
        max(p.sigma_face[1] * face_w, p.sigma_box[1] * (by1 - by0)),
    )
    part = pick_components(
        mask, centre, sigma, min_area=p.min_area, join=p.join, edge=p.edge, span=p.span, p=cv.params
    )
    debug = {"window": win, "mask": part}
    if part.sum() < p.min_area:
        return dict(_ABSENT), debug
    ys, xs = np.nonzero(part)
    w = float(xs.max() - xs.min() + 1)
    visible = width_visibility(w, p.visible_w * face_w, p=cv.quality)
    hp, wp = part.shape
    # A mouth off-centre in a loose box may run out of one side of the window, a wide open one out of
    # both; a part crossing it from top to bottom, or leaving by the bottom and a side, is the face
    # outline, the chin or hair passing through. The picture's own edge (a crop cut through an open
    # mouth) does not count.
    at_bottom = ys.max() == hp - 1 and y1 < cv.lab.shape[0]
    sides = int(xs.min() == 0) + int(xs.max() == wp - 1)
    if at_bottom and (ys.min() == 0 or sides):
        visible *= p.edge_through
    elif sides + int(ys.min() == 0) + int(at_bottom) >= 2:
        visible *= p.edge_two
    elif sides or ys.min() == 0 or at_bottom:
        visible *= p.edge_one
    filled = fill_holes(part)
    xcol, top, bot, _ = column_profile(filled)
    ext = bot - top + 1
    centre_cols = np.abs(xcol - xcol.mean()) <= p.centre_cols * w
    # Openness against the face, not the mouth: a resting mouth is a 1-3 %-of-face-wide stroke however
    # short it is (tiny afc mouths of 6 px read 0.5 as height/width); open mouths are 5-25 %.
    height = float(np.percentile(ext[centre_cols], p.open_pct)) if centre_cols.any() else 1.0
    # ... but a line-like stroke (its thickest point, the inscribed circle's diameter, thin for its
    # width) is only as tall as its stroke: a thick pout line crossed by a steep tick at one end
    # (a layered dev character's grumble: 0.04-0.06 of the face tall in the tick's columns) is a 0.03
    # stroke. The stroke's width is the median over columns of each column's thickest point (the
    # crossing is a few columns), with some slack. An opening's inscribed diameter is its height: it
    # keeps it. Only for plain strokes: an outlined opening (filling its holes adds area: teeth, a
    # tongue) is an opening however flat.
    dist = cv2.distanceTransform(filled, cv2.DIST_L2, 3)
    if 2.0 * float(dist.max()) < p.line_thick * w and filled.sum() <= p.fill_slack * part.sum():
        stroke = 2.0 * float(np.median(dist[:, xcol.astype(int)].max(axis=0)))
        height = min(height, p.stroke_slack * stroke)
    open_ = height / face_w
    aspect = height / w
    mid = 0.5 * (top + bot)
    # A closed mouth is judged by its middle line; an open one by both lips.
    curve_mid, wavy = bend(xcol, mid, w)
    curve_top, _ = bend(xcol, top, w)
    curve_bot, _ = bend(xcol, bot, w)
    is_open = ramp(open_, *p.open_ramp)
    curve = (1 - is_open) * curve_mid + is_open * ((1 - p.lower_lip) * curve_top + p.lower_lip * curve_bot)
    # A closed line that a parabola does not fit (a grumbling squiggle or a pout stroke with a tick)
    # has no one bend: its curve and corners say little, so they shrink towards flat and the waviness
    # speaks.
    unbent = 1.0 - (1 - is_open) * ramp(wavy, *p.wavy_ramp)
    curve *= unbent
    # Corner tips: the outer columns against the middle ones.
    tips = np.abs(xcol - xcol.mean()) >= p.tips * w
    corner = unbent * (
        float((mid[centre_cols].mean() - mid[tips].mean()) / w) if tips.any() and centre_cols.any() else 0.0
    )
    # Teeth / white inside the opening: enclosed pixels at least as bright as skin with little colour.
    inner = filled.astype(bool) & ~part.astype(bool)
    bright = (lab[:, :, 0] >= cv.skin[0] - p.teeth_dark) & (
        np.hypot(lab[:, :, 1], lab[:, :, 2]) < p.teeth_chroma
    )
    area = float(filled.sum())
    teeth = float((inner & bright).sum()) / area if area else 0.0
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    per = max((cv2.arcLength(c, True) for c in contours), default=0.0)
    circ = float(np.clip(4 * np.pi * area / per**2, 0, 1)) if per > 0 else 0.0
    # O shape: an open mouth whose upper lip arches up as its lower lip sags, and tall for its width.
    # A D-shaped laugh (flat top) or a triangle (flat bottom) is not round.
    roundness = (
        is_open * circ * ramp(min(-curve_top, curve_bot), *p.round_bend) * ramp(aspect, *p.round_aspect)
    )
    feats = {
        "visible": visible,
        "open": float(np.clip(open_, 0, p.max_open)),
        "curve": float(np.clip(curve, -p.max_bend, p.max_bend)),
        "corner": float(np.clip(corner, -p.max_bend, p.max_bend)),
        "width": float(np.clip(w / face_w, 0, 1)),
        "teeth": float(np.clip(teeth * is_open, 0, 1)),
        "round": float(roundness),
        "wavy": float(np.clip(wavy * (1 - is_open), 0, p.max_wavy)),
    }
    return feats, debug
