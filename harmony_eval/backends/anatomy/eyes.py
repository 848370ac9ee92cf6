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
"""

from __future__ import annotations

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


def measure_eye(
    cv: Canvas, box: tuple[float, float, float, float], inner_is_right: bool
) -> tuple[dict[str, float], dict]:
    """Measure one eye inside canvas box ``box``; ``inner_is_right`` tells which end faces the nose
    (True for the viewer-left eye). Returns ``(features, debug)`` like ``mouth.measure_mouth``."""
    win = cv.window(box, 0.2, 0.1, 0.2, 0.2, min_pad=0.015 * 256)
    x0, y0, x1, y1 = win
    # Only the darkest strokes (lash lines, pupils, iris rims: ~1.4x the ink threshold, i.e. half-way
    # from skin to the darkest line colour). Hair in mid tones that touches the eye stays out; on the
    # dev full-body sprites a 0.8x threshold merged the pink hair into 10 of 12 eyes.
    mask = region_mask(cv, win, colour=False, scale=1.4)
    # A 1x5 horizontal opening removes thin steep strokes (hair strands falling over the eye, the face
    # outline) and keeps lids, lash lines, irises and closed arcs up to ~50 deg steep.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, 5), np.uint8))
    bx0, by0, bx1, by1 = box
    centre = (0.5 * (bx0 + bx1) - x0, 0.5 * (by0 + by1) - y0)
    sigma = (max(6.0, 0.45 * (bx1 - bx0)), max(6.0, 0.45 * (by1 - by0)))
    part = pick_components(mask, centre, sigma, min_area=6, join=(0.3, 0.5))
    face_w = cv.face[2] - cv.face[0]
    debug = {"window": win, "mask": part}
    if part.sum() < 6:
        return dict(_ABSENT), debug
    xcol, top, bot, count = column_profile(part)
    w = float(xcol.max() - xcol.min() + 1)
    visible = width_visibility(w, 0.10 * face_w)
    ext = bot - top + 1
    central = np.abs(xcol - xcol.mean()) <= 0.3 * w
    height = float(np.percentile(ext[central], 80))
    open_ = height / w
    closed = 1.0 - ramp(open_, 0.22, 0.4)
    mid = 0.5 * (top + bot)
    sag, _ = bend(xcol, mid, w)  # > 0: ends higher than middle (u); < 0: middle higher (^)
    lid, _ = bend(xcol, top, w)
    # Tilt: straight-line slope of the middle line, sign set so that outer-end-up is positive.
    slope = float(np.polyfit(xcol - xcol.mean(), mid, 1)[0]) if xcol.size >= 3 else 0.0
    tilt = slope if inner_is_right else -slope  # image y grows downwards
    # Inside the eye (between the lid lines, central columns): bright low-chroma pixels are white.
    lab = cv.lab[y0:y1, x0:x1]
    white_px = (lab[:, :, 0] >= cv.skin[0] - 6) & (np.hypot(lab[:, :, 1], lab[:, :, 2]) < 15)
    inside = np.zeros(part.shape, bool)
    for x, t, b in zip(
        xcol[central].astype(int), top[central].astype(int), bot[central].astype(int), strict=True
    ):
        inside[t : b + 1, x] = True
    n_in = float(inside.sum())
    white = float((white_px & inside & ~part.astype(bool)).sum()) / n_in if n_in else 0.0
    # Tears: drops and streaks are painted light blue or white (brighter than skin) with an outline.
    # Look from the eye's middle down to 0.5 eye-widths below it, 15 % wider than the eye, outside the
    # eye itself (its highlights are white too).
    hh, ww = cv.lab.shape[:2]
    ex0, ex1 = int(max(0, x0 + xcol.min() - 0.15 * w)), int(min(ww, x0 + xcol.max() + 0.15 * w))
    ty0, ty1 = int(y0 + np.median(bot) - 0.05 * w), int(min(hh, y0 + np.median(bot) + 0.5 * w))
    tears = 0.0
    if ex1 > ex0 and ty1 > ty0:
        region = cv.lab[ty0:ty1, ex0:ex1]
        chroma = np.hypot(region[:, :, 1], region[:, :, 2])
        # Tear blue is saturated (b* < -15); pale blue-grey backgrounds and hair are about -6 to -10.
        blue = (region[:, :, 2] < min(-15.0, cv.skin[2] - 30)) & (region[:, :, 0] > 55)
        # White drops only below the eye's lower line: above it, white is the eye's own sclera.
        pale = (region[:, :, 0] > cv.skin[0] + 2.5) & (chroma < 12)
        pale[: int(max(0, y0 + np.median(bot) + 0.08 * w - ty0))] = False
        drop = blue | pale
        eye = np.zeros(cv.lab.shape[:2], bool)
        eye[y0:y1, x0:x1] = cv2.dilate(fill_holes(part), np.ones((5, 5), np.uint8)).astype(bool)
        drop &= ~eye[ty0:ty1, ex0:ex1]
        tears = float(drop.sum()) / (w * w)
    feats = {
        "visible": visible,
        "open": float(np.clip(open_, 0, 1.6)),
        "closed": closed,
        "arc_up": float(closed * np.clip(-sag, 0, 0.5)),
        "arc_down": float(closed * np.clip(sag, 0, 0.5)),
        "narrow": float((1 - closed) * (1 - ramp(open_, 0.4, 0.55))),
        "lid_arch": float((1 - closed) * np.clip(-lid, -0.3, 0.5)),
        "tilt": float(np.clip(tilt, -0.6, 0.6)),
        "white": float(np.clip(white, 0, 1)),
        "tears": float(np.clip(tears, 0, 0.5)),
        "height": float(np.clip(height / face_w, 0, 0.6)),
    }
    return feats, debug
