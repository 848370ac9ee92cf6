"""Parametric anime-face renderer: bundled example images and test images with known answers.

``render_face(eyes, brows, mouth)`` draws a head and shoulders on a plain background, each region
in the expression of its own emotion, the way anime artists draw it (see ``prompts/emotions.yaml``).
Continuous overrides (``mouth_curve``, ``brow_angle``, ``eye_open``, ...) let a test sweep one
parameter; ``seed`` varies skin, hair, eyes, face width and a small rotation. Same arguments give
identical pixels. ``render_face_info`` also returns the drawn region boxes (ground truth).

Python ``animeface`` (the first face detector) finds the face in 150 of 150 coherent renders (five
emotions x seeds 0-29), its eye boxes centred on the drawn eyes in all of them. It does not find
closed ^^ eyes (``eye_open=0``) or faces under a blur of 1.5 px or more (at 512 px).

Geometry is in canvas units (1.0 = image side); everything is drawn at ``_SS`` times the size
and downsampled with a Lanczos filter for clean anti-aliased edges. This module holds what is drawn
(expression presets, styles, the layout of a face, the ground-truth boxes); how each part is
stroked lives in ``draw``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..types import Box
from .draw import (
    Pen,
    bez,
    face_outline,
    paint_brow,
    paint_eye,
    paint_fringe,
    paint_hair_back,
    paint_mouth,
    shade,
)

_SS = 3  # supersampling factor: 3x keeps 1-2 px lines smooth at 512 px

# Region expression presets, one emotion per region. Values are the overrides below.
EYES: dict[str, dict[str, Any]] = {
    "neutral": {},
    "happy": {"lower_lid": 0.45, "eye_open": 0.85, "sparkle": 1.0},
    "sad": {"lid_slant": -0.35, "eye_open": 0.8, "gaze_y": 0.25, "tears": 1.0},
    "angry": {"lid_slant": 0.5, "eye_open": 0.6, "pupil": 0.75, "lid_weight": 1.6},
    "surprised": {"eye_open": 1.15, "pupil": 0.45, "iris": 0.8},
}
BROWS: dict[str, dict[str, Any]] = {
    "neutral": {},
    "happy": {"brow_height": 1.15, "brow_curve": 0.6},
    "sad": {"brow_angle": 20.0, "brow_height": 1.1, "brow_curve": -0.2},
    "angry": {"brow_angle": -24.0, "brow_height": 0.55, "brow_weight": 1.4},
    "surprised": {"brow_height": 1.9, "brow_curve": 1.0},
}
MOUTH: dict[str, dict[str, Any]] = {
    "neutral": {},
    "happy": {"mouth_curve": 0.8, "mouth_open": 0.7, "mouth_width": 1.25, "blush": 0.6},
    "sad": {"mouth_curve": -0.7, "mouth_width": 0.9},
    "angry": {"mouth_curve": -0.7, "mouth_open": 0.45, "mouth_shape": "teeth", "mouth_width": 1.25},
    "surprised": {"mouth_open": 0.8, "mouth_shape": "o"},
}
# fmt: off
DEFAULTS: dict[str, Any] = {
    # eyes: eye_open 1 = relaxed open, 0 = closed (closed_curve > 0 draws ^^ arcs, < 0 sleepy u-u);
    # lid_slant > 0 lowers the inner corners (glare), < 0 droops the outer ones; lower_lid raises
    # the lower lid (smiling eyes); pupil/iris scale; gaze_y > 0 looks down; tears in [0, 1]
    "eye_open": 1.0, "lid_slant": 0.0, "lower_lid": 0.0, "pupil": 1.0, "iris": 1.0, "gaze_y": 0.0,
    "lid_weight": 1.0, "sparkle": 0.0, "closed_curve": 1.0, "tears": 0.0,
    # brows: angle in degrees, > 0 raises the inner ends (sad), < 0 lowers them (angry V);
    # height 1 = resting gap above the eye; curve > 0 arches the brow
    "brow_angle": 0.0, "brow_height": 1.0, "brow_curve": 0.25, "brow_weight": 1.0,
    # mouth: curve in [-1, 1] (> 0 corners up), open in [0, 1], width factor,
    # shape auto | line | open | o | teeth | wavy; blush in [0, 1]
    "mouth_curve": 0.0, "mouth_open": 0.0, "mouth_width": 1.0, "mouth_shape": "auto", "blush": 0.0,
}
_SKIN = [(255, 231, 214), (250, 222, 200), (255, 236, 226), (241, 206, 180), (226, 186, 156)]
_HAIR = [(60, 45, 50), (236, 170, 180), (120, 80, 55), (245, 222, 150), (70, 90, 160), (150, 160, 175),
         (180, 60, 70), (110, 170, 140)]
_IRIS = [(70, 120, 200), (160, 90, 50), (90, 160, 90), (170, 60, 70), (130, 80, 170), (200, 150, 40)]
_BG = [(226, 234, 244), (240, 232, 226), (230, 242, 232), (238, 232, 244), (244, 242, 228)]
_CLOTH = [(60, 70, 110), (240, 240, 245), (150, 50, 60), (70, 110, 80), (40, 40, 45)]
# fmt: on


def random_style(seed: int = 0) -> dict[str, Any]:
    """Colours and proportions drawn from ``seed`` (keys: skin, hair, iris, bg, cloth, face_width,
    eye_size, rotation (degrees), long_hair, fringe (strand count))."""
    rng = np.random.default_rng(seed)
    pick = lambda seq: tuple(int(v) for v in seq[int(rng.integers(len(seq)))])  # noqa: E731
    skin = pick(_SKIN)
    # hair must stand out from the skin: animeface missed every expression of a face with blond hair
    # (245, 222, 150) on tan skin (226, 186, 156), RGB distance 41; the closest kept pair is 73 apart
    hairs = [h for h in _HAIR if math.dist(h, skin) > 60]
    return {
        "skin": skin,
        "hair": pick(hairs),
        "iris": pick(_IRIS),
        "bg": pick(_BG),
        "cloth": pick(_CLOTH),
        "face_width": float(rng.uniform(0.93, 1.07)),
        "eye_size": float(rng.uniform(0.92, 1.08)),
        "rotation": float(rng.uniform(-5, 5)),
        "long_hair": bool(rng.integers(2)),
        "fringe": int(rng.integers(5, 8)),
    }


def render_face_info(
    eyes: str = "neutral",
    brows: str = "neutral",
    mouth: str = "neutral",
    *,
    size: int = 512,
    seed: int = 0,
    style: dict | None = None,
    blur: float = 0.0,
    draw_eyes: bool = True,
    draw_mouth: bool = True,
    **overrides: Any,
) -> tuple[Image.Image, dict[str, Box]]:
    """Draw one anime head and shoulders, ``size`` x ``size`` RGB, and return it with the drawn boxes
    in image pixels: face, eyes, left_eye, right_eye, brows, left_brow, right_brow, mouth (missing
    parts left out).

    ``eyes``/``brows``/``mouth`` each name an emotion of :data:`EYES`/:data:`BROWS`/:data:`MOUTH`
    (neutral, happy, sad, angry, surprised); regions may disagree on purpose. ``overrides`` replace
    single parameters of :data:`DEFAULTS` (e.g. ``mouth_curve=0.5``). ``style`` overrides keys of
    :func:`random_style` (``{"rotation": 0}`` for an upright face). ``blur`` is a Gaussian radius in
    pixels at 512 px. ``draw_eyes``/``draw_mouth=False`` leave that region out.
    """
    for name, value, table in (("eyes", eyes, EYES), ("brows", brows, BROWS), ("mouth", mouth, MOUTH)):
        if value not in table:
            raise ValueError(f"`{name}`={value!r} is not a drawable expression; choose one of {list(table)}.")
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown override(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    if size < 64:
        raise ValueError(f"`size` must be at least 64 px, got {size}.")
    p = {**DEFAULTS, **EYES[eyes], **BROWS[brows], **MOUTH[mouth], **overrides}
    st = random_style(seed)
    if set(style or {}) - set(st):
        raise ValueError(f"Unknown `style` key(s) {sorted(set(style) - set(st))}; known: {sorted(st)}.")
    st.update(style or {})
    img = Image.new("RGB", (size * _SS, size * _SS), st["bg"])
    pen = Pen(img)
    cx, fw = 0.5, 0.2 * st["face_width"]
    skin, cloth = st["skin"], st["cloth"]
    paint_hair_back(pen, st, cx, fw)
    pen.poly(
        [(cx - 0.05, 0.66), (cx + 0.05, 0.66), (cx + 0.055, 0.86), (cx - 0.055, 0.86)],
        skin,
        outline=shade(skin, 0.6),
    )  # neck
    pen.poly(bez((0.04, 1.02), (0.08, 0.80), (0.92, 0.80), (0.96, 1.02)), cloth, outline=shade(cloth, 0.5))
    pen.poly([(cx - 0.062, 0.815), (cx, 0.91), (cx + 0.062, 0.815)], skin)  # V neckline
    pen.line([(cx - 0.062, 0.815), (cx, 0.91), (cx + 0.062, 0.815)], shade(cloth, 0.5), 0.005)
    pen.poly([(cx - 0.05, 0.73), (cx + 0.05, 0.73), (cx, 0.79)], shade(skin, 0.88))  # chin shadow
    pen.poly(face_outline(cx, fw), skin, "face", outline=shade(skin, 0.6))
    ey, my = 0.50, 0.665
    if p["blush"] > 0:
        for side in (-1, 1):
            pen.clipped(
                face_outline(cx, fw),
                lambda q, s=side: q.ellipse(
                    cx + s * 0.12, 0.575, 0.045, 0.018, shade((245, 150, 160), 1 + 0.4 * (1 - p["blush"]))
                ),
            )
    paint_fringe(pen, st, cx, fw)
    pen.line([(cx + 0.004, 0.59), (cx - 0.002, 0.597)], shade(skin, 0.75), 0.006)  # nose
    for side in (-1, 1):
        if draw_eyes:
            paint_eye(pen, p, st, side, cx, ey)
        paint_brow(pen, p, st, side, cx, ey)
    if draw_mouth:
        paint_mouth(pen, p, cx, my)
    boxes = {k: list(v) for k, v in pen.boxes.items()}
    for group, parts in (("eyes", ("left_eye", "right_eye")), ("brows", ("left_brow", "right_brow"))):
        have = [boxes[q] for q in parts if q in boxes]
        if have:
            boxes[group] = [
                min(b[0] for b in have),
                min(b[1] for b in have),
                max(b[2] for b in have),
                max(b[3] for b in have),
            ]
    if st["rotation"]:  # rotate about the face centre; boxes follow their corners
        pivot = (cx * img.size[0], 0.5 * img.size[1])
        img = img.rotate(st["rotation"], resample=Image.BICUBIC, center=pivot, fillcolor=st["bg"])
        a = math.radians(st["rotation"])
        for k, (x0, y0, x1, y1) in boxes.items():
            pts = [(x - pivot[0], y - pivot[1]) for x in (x0, x1) for y in (y0, y1)]
            xs = [pivot[0] + x * math.cos(a) + y * math.sin(a) for x, y in pts]
            ys = [pivot[1] - x * math.sin(a) + y * math.cos(a) for x, y in pts]
            boxes[k] = [min(xs), min(ys), max(xs), max(ys)]
    img = img.resize((size, size), Image.LANCZOS)
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur * size / 512))
    out = {
        k: (math.floor(b[0] / _SS), math.floor(b[1] / _SS), math.ceil(b[2] / _SS), math.ceil(b[3] / _SS))
        for k, b in boxes.items()
    }
    return img, out


def render_face(
    eyes: str = "neutral", brows: str = "neutral", mouth: str = "neutral", **kwargs: Any
) -> Image.Image:
    """The image of :func:`render_face_info` (same arguments, documented there), without the boxes.

    >>> render_face("happy", "happy", "happy", size=128).size
    (128, 128)
    """
    return render_face_info(eyes, brows, mouth, **kwargs)[0]


def render_scenery(size: int = 512, seed: int = 0) -> Image.Image:
    """A landscape with no face in it (sky, sun, hills, trees): a known negative for detectors."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size * _SS, size * _SS))
    pen = Pen(img)
    for i in range(40):  # sky gradient, light at the horizon
        t = i / 39
        pen.poly(
            [(0, 0.6 * t), (1, 0.6 * t), (1, 0.6 * t + 0.02), (0, 0.6 * t + 0.02)],
            (int(120 + 110 * t), int(170 + 70 * t), int(235 + 15 * t)),
        )
    pen.ellipse(float(rng.uniform(0.6, 0.85)), 0.18, 0.07, 0.07, (255, 236, 150))
    for k, (y, col) in enumerate(((0.55, (120, 170, 110)), (0.66, (90, 150, 90)), (0.78, (70, 125, 70)))):
        xs = np.linspace(0, 1, 30)
        ph = float(rng.uniform(0, 6.28))
        pen.poly([(0, 1.01)] + [(x, y + 0.04 * math.sin(6 * x + ph + k)) for x in xs] + [(1, 1.01)], col)
    for x in rng.uniform(0.05, 0.95, 4):  # trees: trunk and two stacked triangles
        x = float(x)
        pen.poly([(x - 0.008, 0.86), (x + 0.008, 0.86), (x + 0.008, 0.80), (x - 0.008, 0.80)], (100, 70, 45))
        for top, half in ((0.66, 0.045), (0.70, 0.055)):
            pen.poly([(x, top), (x + half, top + 0.12), (x - half, top + 0.12)], (50, 105, 60))
    return img.resize((size, size), Image.LANCZOS)
