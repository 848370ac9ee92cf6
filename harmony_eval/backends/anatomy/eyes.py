"""Eye measurements: what an artist changes in an eye to show an emotion.

- ``open``: height of the drawn eye (upper lash line to lower line, per column) over its width. Open
  anime eyes are 0.6-1.2; half-lidded / glaring 0.3-0.5; closed arcs 0.05-0.25.
- ``closed``: 1 when only a thin line is drawn (``open`` <= 0.22), 0 from 0.4 up.
- ``arc_up`` / ``arc_down``: for closed eyes, how strongly the line arcs up (^^, happy) or down
  (u u, sleepy / sad / serene). ``closed`` times the bend of the line (sag / width).
- ``narrow``: an open eye squeezed to a slit (glare): 1 at ``open`` <= 0.4, 0 from 0.55.
- ``lid_arch``: how arched the upper lid is (an angry flat lid ~0, a relaxed or wide eye > 0.1).
- ``tilt``: outer corner higher than inner (> 0, sharp upturned eyes) or drooping (< 0, sad).
- ``white``: share of the eye's inside that is white: wide eyes with small pupils, blank shock.
- ``tears``: light-blue or white drops/streaks under the eye (share of an eye-sized area).
- ``height``: the eye's height over the face width: unlike ``open`` it does not grow when a turned
  head narrows the far eye. Labelled dev faces: neutral 0.25-0.29, happy and angry 0.21-0.26, sad
  0.17-0.20 (heavy, lowered lids), smiling closed arcs ~0.08.
- ``visible``: whether an eye is drawn at all: ``quality.width_visibility`` of the part found.

Every number of the measurement is a field of :class:`Params` (the lines above are its defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...quality import width_visibility
from .common import Canvas, bend, column_profile, fill_holes, pick_components, ramp, region_mask

FEATURES: list[str] = [
    "visible",
    "open",
    "closed",
    "arc_up",
    "arc_down",
    "narrow",
    "lid_arch",
    "tilt",
    "white",
    "tears",
    "height",
]
#: Values for an eye that is not drawn: a relaxed open eye, so the features stay NaN-free.
_ABSENT = {
    "visible": 0.0,
    "open": 0.75,
    "closed": 0.0,
    "arc_up": 0.0,
    "arc_down": 0.0,
    "narrow": 0.0,
    "lid_arch": 0.1,
    "tilt": 0.0,
    "white": 0.2,
    "tears": 0.0,
    "height": 0.24,
}


@dataclass(frozen=True)
class Params:
    """The eye measurement's constants. Lengths are shares of the detector's eye box (``box``), of the
    eye's own width (``w``) or of the face width; darkness in L* units, chroma as ``hypot(a*, b*)``.
    Pairs ``(lo, hi)`` are :func:`~.common.ramp` ends. Vary with ``dataclasses.replace(PARAMS, ...)``
    and pass it as ``measure_eye(..., p=...)``."""

    # Search window around the detector's box (``Canvas.window``).
    #: Left / right padding (box widths): eye corners and lashes reach past detector boxes.
    win_side: float = 0.2
    #: Top padding (box heights): the upper lash line; more would take in the brow.
    win_up: float = 0.1
    #: Bottom padding (box heights): the lower lid line.
    win_down: float = 0.2
    #: Least padding (canvas px): 1.5 % of the 256 px canvas face, for tiny detector boxes.
    win_min_pad: float = 0.015 * 256

    # Stroke mask and the part.
    #: Ink threshold multiplier: only the darkest strokes (lash lines, pupils, iris rims: ~1.4x the
    #: ink threshold, i.e. half-way from skin to the darkest line colour). Hair in mid tones that
    #: touches the eye stays out; on the dev full-body sprites a 0.8x threshold merged the pink hair
    #: into 10 of 12 eyes.
    ink_scale: float = 1.4
    #: Length (px) of the 1 x n horizontal opening: removes thin steep strokes (hair strands over the
    #: eye, the face outline) and keeps lids, lash lines, irises and closed arcs up to ~50 deg steep.
    open_len: int = 5
    #: Centrality Gaussian's (x, y) sigma: this share of the box's width / height ...
    sigma_box: float = 0.45
    #: ... and at least this many px, so a tight detector box does not drop the lashes.
    sigma_min: float = 6.0
    #: ``pick_components``: least component area (px), joining reach (part width, height): broken
    #: lash lines and an iris apart from its lid; an edge-touching component (hair, outline) counts
    #: ``edge`` times, one spanning the window ``span * edge``.
    min_area: int = 6
    join: tuple[float, float] = (0.3, 0.5)
    edge: float = 0.3
    span: float = 0.2
    #: A part of fewer px is no eye drawn (the ``_ABSENT`` values are returned).
    min_px: int = 6
    #: An eye this share of the face wide is fully visible (``quality.width_visibility``).
    visible_w: float = 0.10

    # Shape.
    #: Columns within this share of the eye's width from its centre are its middle (corners taper).
    centre_cols: float = 0.3
    #: The eye's height is this percentile of its middle columns' heights: the open part, not a lash.
    open_pct: float = 80
    #: ``open`` from closed to open: closed arcs are 0.05-0.25, half-lidded / glaring eyes 0.3-0.5.
    closed_ramp: tuple[float, float] = (0.22, 0.4)
    #: ``open`` over which an open eye stops being a slit (``narrow``: glare at 0.4 and under).
    narrow_ramp: tuple[float, float] = (0.4, 0.55)
    #: Least occupied columns for a tilt line fit (fewer: tilt 0).
    tilt_min_cols: int = 3

    # White (sclera) inside the eye: bright, low-chroma pixels between the lid lines.
    #: Least L* of white: at most this far under the skin's L* (sclera is drawn as light as skin or lighter).
    white_dark: float = 6
    #: Chroma under which a pixel is white.
    white_chroma: float = 15

    # Tears: drops and streaks painted light blue or white (brighter than skin) with an outline, from
    # the eye's lower line to below it, wider than the eye, outside the eye itself (its highlights
    # are white too).
    #: Widening of the tear area each side (w).
    tear_widen: float = 0.15
    #: Tear area top above the eye's lower line (w).
    tear_up: float = 0.05
    #: Tear area bottom below the eye's lower line (w).
    tear_down: float = 0.5
    #: Tear blue is saturated: b* under ``min(tear_blue_b, skin b* - tear_blue_skin)``; pale
    #: blue-grey backgrounds and hair are about -6 to -10.
    tear_blue_b: float = -15.0
    tear_blue_skin: float = 30
    #: Least L* of tear blue (dark blue hair or clothes are no tears).
    tear_blue_l: float = 55
    #: White drops are this much lighter than the skin (L*) ...
    tear_pale_l: float = 2.5
    #: ... with chroma under this.
    tear_pale_chroma: float = 12
    #: White drops only this far (w) below the eye's lower line: above it, white is the eye's sclera.
    tear_pale_below: float = 0.08
    #: Dilation (px, square) of the filled eye that is left out of the tear area (its outline).
    tear_eye_dilate: int = 5

    # Clips of the features (their ranges on drawn eyes; beyond is a measuring slip).
    max_open: float = 1.6
    max_arc: float = 0.5
    lid_clip: tuple[float, float] = (-0.3, 0.5)
    max_tilt: float = 0.6
    max_tears: float = 0.5
    max_height: float = 0.6


PARAMS = Params()


def measure_eye(
    cv: Canvas, box: tuple[float, float, float, float], inner_is_right: bool, p: Params = PARAMS
) -> tuple[dict[str, float], dict]:
    """Measure one eye inside canvas box ``box``; ``inner_is_right`` tells which end faces the nose
    (True for the viewer-left eye). Returns ``(features, debug)`` like ``mouth.measure_mouth``."""
    win = cv.window(box, p.win_side, p.win_up, p.win_side, p.win_down, min_pad=p.win_min_pad)
    x0, y0, x1, y1 = win
    # only the darkest strokes, then thin steep strokes removed (``p.ink_scale``, ``p.open_len``)
    mask = region_mask(cv, win, colour=False, scale=p.ink_scale)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, p.open_len), np.uint8))
    bx0, by0, bx1, by1 = box
    centre = (0.5 * (bx0 + bx1) - x0, 0.5 * (by0 + by1) - y0)
    sigma = (max(p.sigma_min, p.sigma_box * (bx1 - bx0)), max(p.sigma_min, p.sigma_box * (by1 - by0)))
    part = pick_components(
        mask, centre, sigma, min_area=p.min_area, join=p.join, edge=p.edge, span=p.span, p=cv.params
    )
    face_w = cv.face[2] - cv.face[0]
    debug = {"window": win, "mask": part}
    if part.sum() < p.min_px:
        return dict(_ABSENT), debug
    xcol, top, bot, count = column_profile(part)
    w = float(xcol.max() - xcol.min() + 1)
    visible = width_visibility(w, p.visible_w * face_w, p=cv.quality)
    ext = bot - top + 1
    central = np.abs(xcol - xcol.mean()) <= p.centre_cols * w
    height = float(np.percentile(ext[central], p.open_pct))
    open_ = height / w
    closed = 1.0 - ramp(open_, *p.closed_ramp)
    mid = 0.5 * (top + bot)
    sag, _ = bend(xcol, mid, w)  # > 0: ends higher than middle (u); < 0: middle higher (^)
    lid, _ = bend(xcol, top, w)
    # Tilt: straight-line slope of the middle line, sign set so that outer-end-up is positive.
    slope = float(np.polyfit(xcol - xcol.mean(), mid, 1)[0]) if xcol.size >= p.tilt_min_cols else 0.0
    tilt = slope if inner_is_right else -slope  # image y grows downwards
    # Inside the eye (between the lid lines, central columns): bright low-chroma pixels are white.
    lab = cv.lab[y0:y1, x0:x1]
    chroma_in = np.hypot(lab[:, :, 1], lab[:, :, 2])
    white_px = (lab[:, :, 0] >= cv.skin[0] - p.white_dark) & (chroma_in < p.white_chroma)
    inside = np.zeros(part.shape, bool)
    for x, t, b in zip(
        xcol[central].astype(int), top[central].astype(int), bot[central].astype(int), strict=True
    ):
        inside[t : b + 1, x] = True
    n_in = float(inside.sum())
    white = float((white_px & inside & ~part.astype(bool)).sum()) / n_in if n_in else 0.0
    # Tears: light blue or white drops below the eye, outside the eye itself (``p.tear_*``).
    hh, ww = cv.lab.shape[:2]
    tw, lower = p.tear_widen * w, y0 + np.median(bot)
    ex0, ex1 = int(max(0, x0 + xcol.min() - tw)), int(min(ww, x0 + xcol.max() + tw))
    ty0, ty1 = int(lower - p.tear_up * w), int(min(hh, lower + p.tear_down * w))
    tears = 0.0
    if ex1 > ex0 and ty1 > ty0:
        region = cv.lab[ty0:ty1, ex0:ex1]
        chroma = np.hypot(region[:, :, 1], region[:, :, 2])
        blue_b = min(p.tear_blue_b, cv.skin[2] - p.tear_blue_skin)
        blue = (region[:, :, 2] < blue_b) & (region[:, :, 0] > p.tear_blue_l)
        pale = (region[:, :, 0] > cv.skin[0] + p.tear_pale_l) & (chroma < p.tear_pale_chroma)
        pale[: int(max(0, lower + p.tear_pale_below * w - ty0))] = False  # above: the eye's sclera
        drop = blue | pale
        eye = np.zeros(cv.lab.shape[:2], bool)
        k = np.ones((p.tear_eye_dilate, p.tear_eye_dilate), np.uint8)
        eye[y0:y1, x0:x1] = cv2.dilate(fill_holes(part), k).astype(bool)
        drop &= ~eye[ty0:ty1, ex0:ex1]
        tears = float(drop.sum()) / (w * w)
    feats = {
        "visible": visible,
        "open": float(np.clip(open_, 0, p.max_open)),
        "closed": closed,
        "arc_up": float(closed * np.clip(-sag, 0, p.max_arc)),
        "arc_down": float(closed * np.clip(sag, 0, p.max_arc)),
        "narrow": float((1 - closed) * (1 - ramp(open_, *p.narrow_ramp))),
        "lid_arch": float((1 - closed) * np.clip(-lid, *p.lid_clip)),
        "tilt": float(np.clip(tilt, -p.max_tilt, p.max_tilt)),
        "white": float(np.clip(white, 0, 1)),
        "tears": float(np.clip(tears, 0, p.max_tears)),
        "height": float(np.clip(height / face_w, 0, p.max_height)),
    }
    return feats, debug
