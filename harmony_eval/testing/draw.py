"""How the renderer draws: strokes in canvas units and the painters of each part of a face.

:class:`Pen` wraps ``ImageDraw`` in canvas units (1.0 = image side) and records the bounding box of
every named part it draws (the renderer's ground truth). ``paint_hair_back``, ``paint_fringe``,
``paint_eye``, ``paint_brow`` and ``paint_mouth`` paint one part from the parameter dict ``p`` (the
renderer's ``DEFAULTS`` with the expression presets and overrides applied) and the style ``st``
(``render.random_style``). What to draw, where, and the composition of a whole face live in
``render``; this module knows only how each part looks.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def shade(c: tuple, f: float) -> tuple[int, int, int]:
    """``f`` < 1 darkens towards black, > 1 lightens towards white."""
    if f <= 1:
        return tuple(int(v * f) for v in c[:3])
    return tuple(int(v + (255 - v) * (f - 1)) for v in c[:3])


def bez(*pts: tuple[float, float], n: int = 24) -> list[tuple[float, float]]:
    """Points of the Bezier curve with control points ``pts`` (any degree), ``n + 1`` samples."""
    p = np.array(pts, dtype=float)
    out = []
    for t in np.linspace(0.0, 1.0, n + 1):
        q = p.copy()
        while len(q) > 1:
            q = (1 - t) * q[:-1] + t * q[1:]
        out.append((float(q[0, 0]), float(q[0, 1])))
    return out


class Pen:
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
        paint(Pen(layer))
        mask = Image.new("L", self.img.size, 0)
        ImageDraw.Draw(mask).polygon([(x * self.s, y * self.s) for x, y in clip_pts], fill=255)
        self.img.paste(layer, (0, 0), mask)


def tapered(pts, w0, w1):
    """Polygon of a stroke along ``pts`` whose width goes from ``w0`` to ``w1`` (canvas units)."""
    p = np.array(pts)
    tang = np.gradient(p, axis=0)
    norm = np.stack([-tang[:, 1], tang[:, 0]], 1) / (np.linalg.norm(tang, axis=1, keepdims=True) + 1e-9)
    w = np.linspace(w0, w1, len(p))[:, None] / 2
    return [tuple(v) for v in p + norm * w] + [tuple(v) for v in (p - norm * w)[::-1]]


def face_outline(cx, fw):
    top = [(cx + fw * math.cos(a), 0.44 + 0.30 * math.sin(a)) for a in np.linspace(math.pi, 2 * math.pi, 30)]
    right = bez((cx + fw, 0.44), (cx + fw * 1.01, 0.58), (cx + 0.45 * fw, 0.72), (cx, 0.765))
    left = [(2 * cx - x, y) for x, y in reversed(right)]
    return top + right[1:] + left[1:]


def paint_hair_back(pen, st, cx, fw):
    hair, line = shade(st["hair"], 0.82), shade(st["hair"], 0.45)
    bottom, w = (0.95, fw * 1.45) if st["long_hair"] else (0.64, fw * 1.3)
    pts = bez((cx - w * 1.05, bottom), (cx - w * 1.25, 0.40), (cx - w * 1.1, 0.06), (cx, 0.07), n=30)
    pts += [(2 * cx - x, y) for x, y in reversed(pts)][1:]
    pen.poly(pts, hair, outline=line)


def paint_fringe(pen, st, cx, fw):
    hair, line, light = st["hair"], shade(st["hair"], 0.45), shade(st["hair"], 1.4)
    w, n = fw * 1.18, st["fringe"]
    xs = np.linspace(cx - w * 0.92, cx + w * 0.92, n + 1)
    edge = bez((cx - w * 1.02, 0.52), (cx - w * 1.1, 0.30), (xs[0], 0.27), n=10)
    for i in range(n):  # strands: curved points between raised gaps, longest near the middle
        mid = (xs[i] + xs[i + 1]) / 2 + 0.012 * ((i * 5) % 3 - 1)
        tip = 0.345 + 0.02 * math.cos((mid - cx) / w * math.pi / 2) - 0.012 * ((i * 7) % 3 == 0)
        gap = 0.27 + 0.02 * ((i * 3) % 2)
        edge += bez((xs[i], gap), (mid - 0.004, (gap + tip) / 2), (mid, tip), n=8)[1:]
        edge += bez((mid, tip), (mid + 0.012, (gap + tip) / 2), (xs[i + 1], 0.27), n=8)[1:]
    edge += bez((xs[-1], 0.27), (cx + w * 1.1, 0.30), (cx + w * 1.02, 0.52), n=10)[1:]
    edge += bez((cx + w * 1.02, 0.52), (cx + w * 1.3, 0.0), (cx - w * 1.3, 0.0), (cx - w * 1.02, 0.52))
    for side in (-1, 1):  # side locks framing the cheeks: wide at the temple, curling to a point
        x0 = cx + side * fw
        lock = bez((x0 - side * 0.04, 0.26), (x0 - side * 0.03, 0.52), (x0 - side * 0.005, 0.70), n=16)
        lock += bez(
            (x0 - side * 0.005, 0.70),
            (x0 + side * 0.035, 0.55),
            (x0 + side * 0.045, 0.30),
            (x0 + side * 0.02, 0.24),
            n=16,
        )[1:]
        pen.poly(lock, hair, outline=line)
        pen.line(bez((x0 - side * 0.01, 0.34), (x0, 0.50), (x0 + side * 0.002, 0.62)), line, 0.003)
    pen.poly(edge, hair, outline=line)
    for a, b in ((0.55, 0.2), (0.35, 0.17)):  # angel-ring highlight
        pen.line(bez((cx - w * a, b + 0.01), (cx, b - 0.03), (cx + w * a, b + 0.01)), light, 0.014)


def paint_eye(pen, p, st, side, cx, ey):
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
        pen.line(bez((xi, ey + 0.008), (xm, ey + 0.008 - 2 * c), (xo, ey + 0.008)), ink, 0.011, part)
        return
    top = ey - 1.1 * eh
    upper = bez((xi, yi), (xi + side * 0.2 * ew, top), (xo - side * 0.1 * ew, top + 0.2 * eh), (xo, yo))
    lower_y = ey + 0.9 * eh - p["lower_lid"] * 1.1 * eh
    lower = bez(
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
        q.ellipse(ix, iy, ir, ir * 1.3, shade(iris, 0.55))
        q.ellipse(ix, iy + 0.2 * ir, ir * 0.85, ir * 1.05, iris)
        q.ellipse(ix, iy + 0.55 * ir, ir * 0.6, ir * 0.5, shade(iris, 1.4))
        q.ellipse(ix, iy + 0.05 * ir, ir * 0.42 * p["pupil"], ir * 0.6 * p["pupil"], shade(iris, 0.25))
        q.ellipse(ix - 0.35 * ir, iy - 0.45 * ir, ir * 0.3, ir * 0.36, (255, 255, 255))
        q.ellipse(ix + 0.35 * ir, iy + 0.5 * ir, ir * 0.13, ir * 0.13, (255, 255, 255))
        if p["sparkle"] or p["tears"]:  # wet or sparkling eyes: extra highlights
            q.ellipse(ix + 0.3 * ir, iy - 0.1 * ir, ir * 0.12, ir * 0.12, (255, 255, 255))
        q.line(upper, shade(iris, 0.3), 0.02)  # lid shadow on the eyeball

    pen.clipped(opening, paint)
    pen.poly(tapered(upper, lw * 0.6, lw * 1.5), ink, part)
    pen.line([(xo, yo), (xo + side * 0.018, yo - 0.012)], ink, lw * 0.9, part)  # outer lash flick
    if p["lower_lid"] > 0:  # raised lower lid of a smile: a short upward curve
        pen.line(lower[:14], ink, 0.006, part)
    else:
        pen.line(lower[:9], ink, 0.005, part)
    pen.line(
        bez((xi + side * 0.1 * ew, top - 0.012), (xm, top - 0.024), (xo, yo - 0.02)),
        shade(st["skin"], 0.8),
        0.004,
    )  # double-eyelid crease
    if p["tears"] > 0:
        blue = (150, 200, 245)
        pen.line(lower[:16], blue, 0.007 * p["tears"])
        tx = xo - side * 0.2 * ew
        pen.poly(
            bez((tx - 0.008, lower_y + 0.03), (tx, lower_y - 0.01), (tx + 0.008, lower_y + 0.03))
            + bez(
                (tx + 0.008, lower_y + 0.03),
                (tx, lower_y + 0.05 + 0.03 * p["tears"]),
                (tx - 0.008, lower_y + 0.03),
            ),
            blue,
        )


def paint_brow(pen, p, st, side, cx, ey):
    part = "left_brow" if side < 0 else "right_brow"
    k = st["eye_size"]
    gap = 0.02 + 0.028 * p["brow_height"]
    base = ey - 0.075 * k - gap
    xi, xo = cx + side * 0.03, cx + side * (0.035 + 0.13 * k)
    rise = math.tan(math.radians(p["brow_angle"])) * abs(xo - xi)  # inner end higher by this
    yi, yo = base - rise / 2, base + rise / 2
    arch = 0.02 * p["brow_curve"]
    pts = bez((xi, yi), ((xi + xo) / 2, (yi + yo) / 2 - arch), (xo, yo + 0.006))
    color = shade(st["hair"], 0.45)
    pen.poly(tapered(pts, 0.012 * p["brow_weight"], 0.004), color, part)


def paint_mouth(pen, p, cx, my):
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
        pen.line(bez(lc, (cx, my - lift * 1.2), rc), ink, 0.008, "mouth")
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
            up = bez(lc, (cx, my - lift * 0.5 - 0.004), rc)
            low = bez(rc, (cx + w * 0.4, my + 1.2 * h), (cx - w * 0.4, my + 1.2 * h), lc)
        else:  # frown / shout: the top arches up and both corners are pulled down
            up = bez(lc, (cx - w * 0.5, my - 0.6 * h), (cx + w * 0.5, my - 0.6 * h), rc)
            low = bez(
                rc, (cx + w * 0.5, my + lift * 0.3 + 0.4 * h), (cx - w * 0.5, my + lift * 0.3 + 0.4 * h), lc
            )
        outline = up + low[1:]
        pen.poly(outline, inside, "mouth")
        if shape == "teeth":  # gritted teeth fill the opening, split by a line

            def paint(q):
                q.poly(outline, (250, 250, 250))
                q.line(bez(lc, (cx, my + h * 0.35), rc), (150, 150, 160), 0.004)
                for t in (-0.5, 0.0, 0.5):
                    q.line([(cx + t * w, my - h), (cx + t * w, my + h * 1.2)], (180, 180, 190), 0.003)

            pen.clipped(outline, paint)
        else:
            pen.clipped(outline, lambda q: q.ellipse(cx, my + h * 1.1, w * 0.6, h * 0.55, tongue))
        pen.line(outline + [outline[0]], ink, 0.005)
