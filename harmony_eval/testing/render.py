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
and downsampled with a Lanczos filter for clean anti-aliased edges.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..types import Box

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


def _shade(c: tuple, f: float) -> tuple[int, int, int]:
    """``f`` < 1 darkens towards black, > 1 lightens towards white."""
    if f <= 1:
        return tuple(int(v * f) for v in c[:3])
    return tuple(int(v + (255 - v) * (f - 1)) for v in c[:3])


def _bez(*pts: tuple[float, float], n: int = 24) -> list[tuple[float, float]]:
    """Points of the Bezier curve with control points ``pts`` (any degree), ``n + 1`` samples."""
    p = np.array(pts, dtype=float)
    out = []
    for t in np.linspace(0.0, 1.0, n + 1):
        q = p.copy()
        while len(q) > 1:
            q = (1 - t) * q[:-1] + t * q[1:]
        out.append((float(q[0, 0]), float(q[0, 1])))
    return out


class _Pen:
    """ImageDraw in canvas units; records the bounding box of what each named part drew."""

    def __init__(self, img: Image.Image):
        self.img, self.s = img, img.size[0]
        self.d = ImageDraw.Draw(img)
        self.boxes: dict[str, list[float]] = {}

    def _px(self, pts, part):
        px = [(x * self.s, y * self.s) for x, y in pts]
        if part:
            xs, ys = [p[0] for p in px], [p[1] for p in px]
            b = self.boxes.setdefault(part, [math.inf, math.inf, -math.inf, -math.inf])
            b[:] = [min(b[0], *xs), min(b[1], *ys), max(b[2], *xs), max(b[3], *ys)]
        return px

    def poly(self, pts, fill, part=None, outline=None, width=0.004):
        px = self._px(pts, part)
        self.d.polygon(px, fill=fill)
        if outline is not None:
            self.d.line(px + px[:1], fill=outline, width=max(1, round(width * self.s)), joint="curve")

    def line(self, pts, fill, width, part=None):
        self.d.line(self._px(pts, part), fill=fill, width=max(1, round(width * self.s)), joint="curve")

    def ellipse(self, cx, cy, rx, ry, fill, part=None):
        (x0, y0), (x1, y1) = self._px([(cx - rx, cy - ry), (cx + rx, cy + ry)], part)
        self.d.ellipse([x0, y0, x1, y1], fill=fill)

    def clipped(self, clip_pts, paint) -> None:
        """Run ``paint(pen)`` on a copy and keep it only inside polygon ``clip_pts``."""
        layer = self.img.copy()
        paint(_Pen(layer))
        mask = Image.new("L", self.img.size, 0)
        ImageDraw.Draw(mask).polygon([(x * self.s, y * self.s) for x, y in clip_pts], fill=255)
        self.img.paste(layer, (0, 0), mask)


def _tapered(pts, w0, w1):
    """Polygon of a stroke along ``pts`` whose width goes from ``w0`` to ``w1`` (canvas units)."""
    p = np.array(pts)
    tang = np.gradient(p, axis=0)
    norm = np.stack([-tang[:, 1], tang[:, 0]], 1) / (np.linalg.norm(tang, axis=1, keepdims=True) + 1e-9)
    w = np.linspace(w0, w1, len(p))[:, None] / 2
    return [tuple(v) for v in p + norm * w] + [tuple(v) for v in (p - norm * w)[::-1]]


def _face_outline(cx, fw):
    top = [(cx + fw * math.cos(a), 0.44 + 0.30 * math.sin(a)) for a in np.linspace(math.pi, 2 * math.pi, 30)]
    right = _bez((cx + fw, 0.44), (cx + fw * 1.01, 0.58), (cx + 0.45 * fw, 0.72), (cx, 0.765))
    left = [(2 * cx - x, y) for x, y in reversed(right)]
    return top + right[1:] + left[1:]


def _draw_hair_back(pen, st, cx, fw):
    hair, line = _shade(st["hair"], 0.82), _shade(st["hair"], 0.45)
    bottom, w = (0.95, fw * 1.45) if st["long_hair"] else (0.64, fw * 1.3)
    pts = _bez((cx - w * 1.05, bottom), (cx - w * 1.25, 0.40), (cx - w * 1.1, 0.06), (cx, 0.07), n=30)
    pts += [(2 * cx - x, y) for x, y in reversed(pts)][1:]
    pen.poly(pts, hair, outline=line)


def _draw_fringe(pen, st, cx, fw):
    hair, line, light = st["hair"], _shade(st["hair"], 0.45), _shade(st["hair"], 1.4)
    w, n = fw * 1.18, st["fringe"]
    xs = np.linspace(cx - w * 0.92, cx + w * 0.92, n + 1)
    edge = _bez((cx - w * 1.02, 0.52), (cx - w * 1.1, 0.30), (xs[0], 0.27), n=10)
    for i in range(n):  # strands: curved points between raised gaps, longest near the middle
        mid = (xs[i] + xs[i + 1]) / 2 + 0.012 * ((i * 5) % 3 - 1)
        tip = 0.345 + 0.02 * math.cos((mid - cx) / w * math.pi / 2) - 0.012 * ((i * 7) % 3 == 0)
        gap = 0.27 + 0.02 * ((i * 3) % 2)
        edge += _bez((xs[i], gap), (mid - 0.004, (gap + tip) / 2), (mid, tip), n=8)[1:]
        edge += _bez((mid, tip), (mid + 0.012, (gap + tip) / 2), (xs[i + 1], 0.27), n=8)[1:]
    edge += _bez((xs[-1], 0.27), (cx + w * 1.1, 0.30), (cx + w * 1.02, 0.52), n=10)[1:]
    edge += _bez((cx + w * 1.02, 0.52), (cx + w * 1.3, 0.0), (cx - w * 1.3, 0.0), (cx - w * 1.02, 0.52))
    for side in (-1, 1):  # side locks framing the cheeks: wide at the temple, curling to a point
        x0 = cx + side * fw
        lock = _bez((x0 - side * 0.04, 0.26), (x0 - side * 0.03, 0.52), (x0 - side * 0.005, 0.70), n=16)
        lock += _bez(
            (x0 - side * 0.005, 0.70),
            (x0 + side * 0.035, 0.55),
            (x0 + side * 0.045, 0.30),
            (x0 + side * 0.02, 0.24),
            n=16,
        )[1:]
        pen.poly(lock, hair, outline=line)
        pen.line(_bez((x0 - side * 0.01, 0.34), (x0, 0.50), (x0 + side * 0.002, 0.62)), line, 0.003)
    pen.poly(edge, hair, outline=line)
    for a, b in ((0.55, 0.2), (0.35, 0.17)):  # angel-ring highlight
        pen.line(_bez((cx - w * a, b + 0.01), (cx, b - 0.03), (cx + w * a, b + 0.01)), light, 0.014)


def _draw_eye(pen, p, st, side, cx, ey):
    """One eye; ``side`` -1 = viewer's left. Returns nothing, records part ``*_eye``."""
    part = "left_eye" if side < 0 else "right_eye"
    k = st["eye_size"]
    ew, eh = 0.062 * k, 0.068 * k * max(p["eye_open"], 0.0)
    xi, xo = cx + side * 0.03, cx + side * (0.03 + 2 * ew)  # inner / outer corner x
    xm = (xi + xo) / 2
    slant = p["lid_slant"] * 0.035 * k  # > 0: inner corner lower than outer (glare)
    yi, yo = ey + slant / 2, ey - slant / 2
    ink, lw = (45, 30, 35), 0.011 * p["lid_weight"]
    if p["eye_open"] <= 0.05:  # closed: ^^ arcs (happy) or u-u (sleepy/sad)
        c = p["closed_curve"] * 0.045 * k
        pen.line(_bez((xi, ey + 0.008), (xm, ey + 0.008 - 2 * c), (xo, ey + 0.008)), ink, 0.011, part)
        return
    top = ey - 1.1 * eh
    upper = _bez((xi, yi), (xi + side * 0.2 * ew, top), (xo - side * 0.1 * ew, top + 0.2 * eh), (xo, yo))
    lower_y = ey + 0.9 * eh - p["lower_lid"] * 1.1 * eh
    lower = _bez(
        (xo, yo),
        (xo - side * 0.4 * ew, lower_y + 0.4 * eh),
        (xi + side * 0.4 * ew, lower_y + 0.3 * eh),
        (xi, yi),
    )
    opening = upper + lower[1:]
    pen.poly(opening, (252, 252, 255), part)
    ir = 0.66 * ew * p["iris"]
    ix, iy = xm + side * 0.05 * ew, (top + lower_y) / 2 + 0.1 * eh + p["gaze_y"] * eh
    iris = st["iris"]

    def paint(q):
        q.ellipse(ix, iy, ir, ir * 1.3, _shade(iris, 0.55))
        q.ellipse(ix, iy + 0.2 * ir, ir * 0.85, ir * 1.05, iris)
        q.ellipse(ix, iy + 0.55 * ir, ir * 0.6, ir * 0.5, _shade(iris, 1.4))
        q.ellipse(ix, iy + 0.05 * ir, ir * 0.42 * p["pupil"], ir * 0.6 * p["pupil"], _shade(iris, 0.25))
        q.ellipse(ix - 0.35 * ir, iy - 0.45 * ir, ir * 0.3, ir * 0.36, (255, 255, 255))
        q.ellipse(ix + 0.35 * ir, iy + 0.5 * ir, ir * 0.13, ir * 0.13, (255, 255, 255))
        if p["sparkle"] or p["tears"]:  # wet or sparkling eyes: extra highlights
            q.ellipse(ix + 0.3 * ir, iy - 0.1 * ir, ir * 0.12, ir * 0.12, (255, 255, 255))
        q.line(upper, _shade(iris, 0.3), 0.02)  # lid shadow on the eyeball

    pen.clipped(opening, paint)
    pen.poly(_tapered(upper, lw * 0.6, lw * 1.5), ink, part)
    pen.line([(xo, yo), (xo + side * 0.018, yo - 0.012)], ink, lw * 0.9, part)  # outer lash flick
    if p["lower_lid"] > 0:  # raised lower lid of a smile: a short upward curve
        pen.line(lower[:14], ink, 0.006, part)
    else:
        pen.line(lower[:9], ink, 0.005, part)
    pen.line(
        _bez((xi + side * 0.1 * ew, top - 0.012), (xm, top - 0.024), (xo, yo - 0.02)),
        _shade(st["skin"], 0.8),
        0.004,
    )  # double-eyelid crease
    if p["tears"] > 0:
        blue = (150, 200, 245)
        pen.line(lower[:16], blue, 0.007 * p["tears"])
        tx = xo - side * 0.2 * ew
        pen.poly(
            _bez((tx - 0.008, lower_y + 0.03), (tx, lower_y - 0.01), (tx + 0.008, lower_y + 0.03))
            + _bez(
                (tx + 0.008, lower_y + 0.03),
                (tx, lower_y + 0.05 + 0.03 * p["tears"]),
                (tx - 0.008, lower_y + 0.03),
            ),
            blue,
        )


def _draw_brow(pen, p, st, side, cx, ey):
    part = "left_brow" if side < 0 else "right_brow"
    k = st["eye_size"]
    gap = 0.02 + 0.028 * p["brow_height"]
    base = ey - 0.075 * k - gap
    xi, xo = cx + side * 0.03, cx + side * (0.035 + 0.13 * k)
    rise = math.tan(math.radians(p["brow_angle"])) * abs(xo - xi)  # inner end higher by this
    yi, yo = base - rise / 2, base + rise / 2
    arch = 0.02 * p["brow_curve"]
    pts = _bez((xi, yi), ((xi + xo) / 2, (yi + yo) / 2 - arch), (xo, yo + 0.006))
    color = _shade(st["hair"], 0.45)
    pen.poly(_tapered(pts, 0.012 * p["brow_weight"], 0.004), color, part)


def _draw_mouth(pen, p, cx, my):
    w = 0.042 * p["mouth_width"]
    c, o, shape = p["mouth_curve"], p["mouth_open"], p["mouth_shape"]
    lift = -c * 0.022  # corner y offset; negative y is up
    ink, inside, tongue = (110, 40, 45), (150, 45, 55), (235, 120, 125)
    lc, rc = (cx - w, my + lift), (cx + w, my + lift)
    if shape == "auto":
        shape = "open" if o > 0.08 else "line"
    if shape == "o":
        rx, ry = 0.016 + 0.008 * o, 0.012 + 0.026 * o
        pen.ellipse(cx, my, rx, ry, ink, "mouth")
        pen.ellipse(cx, my, rx * 0.72, ry * 0.78, inside)
    elif shape == "line":
        pen.line(_bez(lc, (cx, my - lift * 1.2), rc), ink, 0.008, "mouth")
    elif shape == "wavy":
        xs = np.linspace(cx - w, cx + w, 25)
        pen.line(
            [(x, my + 0.004 * math.sin((x - cx) / w * 3 * math.pi) + lift * ((x - cx) / w) ** 2) for x in xs],
            ink,
            0.006,
            "mouth",
        )
    else:  # open: upper edge follows the corners, lower edge sags by the opening
        h = 0.012 + 0.045 * o
        if c >= 0:  # smile: a D on its side, flat-ish top, deep round bottom
            up = _bez(lc, (cx, my - lift * 0.5 - 0.004), rc)
            low = _bez(rc, (cx + w * 0.4, my + 1.2 * h), (cx - w * 0.4, my + 1.2 * h), lc)
        else:  # frown / shout: the top arches up and both corners are pulled down
            up = _bez(lc, (cx - w * 0.5, my - 0.6 * h), (cx + w * 0.5, my - 0.6 * h), rc)
            low = _bez(
                rc, (cx + w * 0.5, my + lift * 0.3 + 0.4 * h), (cx - w * 0.5, my + lift * 0.3 + 0.4 * h), lc
            )
        outline = up + low[1:]
        pen.poly(outline, inside, "mouth")
        if shape == "teeth":  # gritted teeth fill the opening, split by a line

            def paint(q):
                q.poly(outline, (250, 250, 250))
                q.line(_bez(lc, (cx, my + h * 0.35), rc), (150, 150, 160), 0.004)
                for t in (-0.5, 0.0, 0.5):
                    q.line([(cx + t * w, my - h), (cx + t * w, my + h * 1.2)], (180, 180, 190), 0.003)

            pen.clipped(outline, paint)
        else:
            pen.clipped(outline, lambda q: q.ellipse(cx, my + h * 1.1, w * 0.6, h * 0.55, tongue))
        pen.line(outline + [outline[0]], ink, 0.005)


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
    """Like :func:`render_face`, also returning the drawn boxes in image pixels:
    face, eyes, left_eye, right_eye, brows, left_brow, right_brow, mouth (missing parts left out)."""
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
    pen = _Pen(img)
    cx, fw = 0.5, 0.2 * st["face_width"]
    skin, cloth = st["skin"], st["cloth"]
    _draw_hair_back(pen, st, cx, fw)
    pen.poly(
        [(cx - 0.05, 0.66), (cx + 0.05, 0.66), (cx + 0.055, 0.86), (cx - 0.055, 0.86)],
        skin,
        outline=_shade(skin, 0.6),
    )  # neck
    pen.poly(_bez((0.04, 1.02), (0.08, 0.80), (0.92, 0.80), (0.96, 1.02)), cloth, outline=_shade(cloth, 0.5))
    pen.poly([(cx - 0.062, 0.815), (cx, 0.91), (cx + 0.062, 0.815)], skin)  # V neckline
    pen.line([(cx - 0.062, 0.815), (cx, 0.91), (cx + 0.062, 0.815)], _shade(cloth, 0.5), 0.005)
    pen.poly([(cx - 0.05, 0.73), (cx + 0.05, 0.73), (cx, 0.79)], _shade(skin, 0.88))  # chin shadow
    pen.poly(_face_outline(cx, fw), skin, "face", outline=_shade(skin, 0.6))
    ey, my = 0.50, 0.665
    if p["blush"] > 0:
        for side in (-1, 1):
            pen.clipped(
                _face_outline(cx, fw),
                lambda q, s=side: q.ellipse(
                    cx + s * 0.12, 0.575, 0.045, 0.018, _shade((245, 150, 160), 1 + 0.4 * (1 - p["blush"]))
                ),
            )
    _draw_fringe(pen, st, cx, fw)
    pen.line([(cx + 0.004, 0.59), (cx - 0.002, 0.597)], _shade(skin, 0.75), 0.006)  # nose
    for side in (-1, 1):
        if draw_eyes:
            _draw_eye(pen, p, st, side, cx, ey)
        _draw_brow(pen, p, st, side, cx, ey)
    if draw_mouth:
        _draw_mouth(pen, p, cx, my)
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
) -> Image.Image:
    """Draw one anime head and shoulders, ``size`` x ``size`` RGB.

    ``eyes``/``brows``/``mouth`` each name an emotion of :data:`EYES`/:data:`BROWS`/:data:`MOUTH`
    (neutral, happy, sad, angry, surprised); regions may disagree on purpose. ``overrides`` replace
    single parameters of :data:`DEFAULTS` (e.g. ``mouth_curve=0.5``). ``style`` overrides keys of
    :func:`random_style` (``{"rotation": 0}`` for an upright face). ``blur`` is a Gaussian radius in
    pixels at 512 px. ``draw_eyes``/``draw_mouth=False`` leave that region out.

    >>> render_face("happy", "happy", "happy", size=128).size
    (128, 128)
    """
    return render_face_info(
        eyes,
        brows,
        mouth,
        size=size,
        seed=seed,
        style=style,
        blur=blur,
        draw_eyes=draw_eyes,
        draw_mouth=draw_mouth,
        **overrides,
    )[0]


def render_scenery(size: int = 512, seed: int = 0) -> Image.Image:
    """A landscape with no face in it (sky, sun, hills, trees): a known negative for detectors."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size * _SS, size * _SS))
    pen = _Pen(img)
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
