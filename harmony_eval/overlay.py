"""Overlays: an image with its face and region boxes drawn in emotion colours and labelled with each
region's top reading ("mouth: happy 0.81"), plus a legend strip; used by the HTML report.

A lone small face (full-body sprite) is shown zoomed in; collages keep the whole image.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

EMOTION_COLOURS = {"neutral": "#8d99a6", "happy": "#f0a202", "sad": "#3a7bd5", "angry": "#e03e36",
                   "surprised": "#9b5de5"}  # fmt: skip
_EXTRA_COLOURS = ("#17becf", "#8c564b", "#e377c2", "#bcbd22", "#2ca02c", "#7f7f7f")
_DRAWN = ("face", "brows", "left_eye", "right_eye", "eyes", "mouth")  # drawing order: big boxes first
_MAX_SIDE, _STRIP = 512, 22  # overlay side limit (px) and the legend strip below the image
_OVERLAY_VERSION = 3  # part of every overlay name: bump when the drawing changes, so old ones are redrawn


def emotion_colour(emotion: str | None) -> str:
    """Hex colour of an emotion: fixed for the known five, a stable pick from a palette otherwise."""
    if not emotion:
        return "#b0b5bb"
    if emotion in EMOTION_COLOURS:
        return EMOTION_COLOURS[emotion]
    return _EXTRA_COLOURS[int(hashlib.sha1(emotion.encode()).hexdigest(), 16) % len(_EXTRA_COLOURS)]


def top_reading(probs: Any) -> tuple[str, float] | None:
    if not isinstance(probs, dict) or not probs:
        return None
    e = max(probs, key=lambda k: probs[k] if isinstance(probs[k], (int, float)) else -1)
    return (e, float(probs[e])) if isinstance(probs[e], (int, float)) else None


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _region_items(row: dict) -> list[tuple[str, list[float], tuple[str, float] | None, str]]:
    """(region, box, top reading, label) for each region box to draw; eyes as two boxes, one label."""
    regions = row.get("regions") if isinstance(row.get("regions"), dict) else {}
    box = {r: (regions.get(r) or {}).get("box") for r in _DRAWN}
    probs = {r: (regions.get(r) or {}).get("probs") for r in _DRAWN}
    probs["face"] = probs["face"] or row.get("probs")
    items, eyes_labelled = [], False
    for r in _DRAWN:
        b = box[r]
        if (
            not (isinstance(b, (list, tuple)) and len(b) == 4)
            or r == "eyes"
            and (box["left_eye"] or box["right_eye"])
        ):
            continue
        top = top_reading(probs[r]) or (top_reading(probs["eyes"]) if r.endswith("_eye") else None)
        name = "eyes" if r.endswith("eye") else r
        # the one eyes label shows the pooled eyes reading, as the card does (it showed the left
        # eye's: "eyes: neutral 0.38" beside a card saying "eyes happy 0.49"); each box keeps its colour
        shown = (top_reading(probs["eyes"]) or top) if name == "eyes" else top
        label = (
            ""
            if name == "eyes" and eyes_labelled
            else f"{name}: {shown[0]} {shown[1]:.2f}"
            if shown
            else f"{name}: n/a"
        )
        eyes_labelled |= name == "eyes"
        items.append((r, [float(v) for v in b], top, label))
    return items


def draw_overlay(
    image: Image.Image, row: dict, max_side: int = _MAX_SIDE, emotions: list[str] | None = None
) -> Image.Image:
    """``image`` (the one the row was scored on) downscaled to at most ``max_side`` px with the row's
    face and region boxes drawn in emotion colours, labels "region: emotion p" and a legend strip of
    ``emotions`` (default: the row's vocabulary)."""
    image = image.convert("RGB")
    zoom = _zoom_box(image.size, row)
    ox, oy = (zoom[0], zoom[1]) if zoom else (0, 0)
    if zoom:
        image = image.crop(zoom)
    w, h = image.size
    s = min(2.0 if zoom else 1.0, max_side / w, (max_side - _STRIP) / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    canvas = Image.new("RGB", (size[0], size[1] + _STRIP), (255, 255, 255))
    canvas.paste(image.resize(size, Image.LANCZOS) if s != 1 else image, (0, 0))
    d, font = ImageDraw.Draw(canvas), _font(13)
    placed: list[tuple[float, float, float, float]] = []
    for region, b, top, label in _region_items(row):
        x0, y0, x1, y1 = ((v - o) * s for v, o in zip(b, (ox, oy, ox, oy), strict=True))
        colour = _rgb(emotion_colour(top[0] if top else None))
        d.rectangle([x0, y0, x1, y1], outline=(255, 255, 255), width=4 if region == "face" else 3)
        d.rectangle([x0, y0, x1, y1], outline=colour, width=2 if region == "face" else 1)
        if not label:
            continue
        tw, th = d.textbbox((0, 0), label, font=font)[2:]
        w, h = tw + 6, th + 4
        above, below, inside = (x0, y0 - h - 1), (x0, y1 + 1), (x0 + 2, y0 + 2)
        tries = {"face": [below, above, inside], "brows": [above, (x1 - w, y0 - h - 1), below]}.get(
            region, [below, above]
        ) + [(x1 + 2, y0), (x0 - w - 2, y0)]  # then beside the box
        best = None
        for tx, ty in tries:  # first free spot, else the least covered one
            tx, ty = min(max(0.0, tx), size[0] - w), min(max(0.0, ty), size[1] - h)
            rect = (tx, ty, tx + w, ty + h)
            cover = sum(max(0, min(rect[2], q[2]) - max(rect[0], q[0])) * max(0, min(rect[3], q[3]) - max(rect[1], q[1]))
                        for q in placed)  # fmt: skip
            if best is None or cover < best[0]:
                best = (cover, rect)
            if cover == 0:
                break
        rect = best[1]
        tx, ty = rect[0], rect[1]
        placed.append(rect)
        light = sum(c * k for c, k in zip(colour, (0.299, 0.587, 0.114), strict=True)) > 150
        d.rectangle(rect, fill=colour)
        d.text((tx + 3, ty + 1), label, fill=(20, 20, 20) if light else (255, 255, 255), font=font)
    x = 4  # legend: the vocabulary's colours (from the row's probabilities)
    if emotions is None:
        emotions = list(row["probs"]) if isinstance(row.get("probs"), dict) else list(EMOTION_COLOURS)
    for e in emotions:
        d.rectangle([x, size[1] + 6, x + 10, size[1] + 16], fill=_rgb(emotion_colour(e)))
        d.text((x + 13, size[1] + 4), e, fill=(40, 40, 40), font=font)
        x += 20 + d.textbbox((0, 0), e, font=font)[2]
    return canvas


def _zoom_box(size: tuple[int, int], row: dict) -> tuple[int, int, int, int] | None:
    """Crop around a lone small face (full-body sprites): its labels would overlap at thumbnail size.
    The face box grows by 80% of its size on each side; ``None`` keeps the whole image (no face,
    several faces, or a face already filling a third of the image)."""
    face = ((row.get("regions") or {}).get("face") or {}).get("box") if isinstance(row, dict) else None
    if not face or (row.get("n_faces") or 0) > 1:
        return None
    w, h = size
    fx0, fy0, fx1, fy1 = face
    fw, fh = fx1 - fx0, fy1 - fy0
    if fw >= w / 3 and fh >= h / 3:
        return None
    m = 0.8 * max(fw, fh)
    return (max(0, int(fx0 - m)), max(0, int(fy0 - m)), min(w, int(fx1 + m)), min(h, int(fy1 + m)))


def _overlay_name(row: dict) -> str:
    """Stable file name: readable stem + hash of the path and of everything the overlay shows."""
    path = str(row.get("path", ""))
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:40] or "image"
    drawn = json.dumps(
        [_OVERLAY_VERSION, path, row.get("regions"), row.get("probs")], sort_keys=True, default=str
    )
    return f"{stem}-{hashlib.sha1(drawn.encode()).hexdigest()[:12]}.png"


def ensure_overlay(
    row: dict, overlays: Path, emotions: list[str]
) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """(overlay file name, its size, problem) for one row; the overlay is drawn only when missing or
    older than the image."""
    src = Path(str(row.get("path", "")))
    if not src.is_file():
        return None, None, "image file not found"
    out = overlays / _overlay_name(row)
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        with Image.open(out) as im:
            return out.name, im.size, None
    from .imageio import load_image  # same decoding (orientation, alpha) as the scoring run

    try:
        img = Image.fromarray(load_image(src, max_pixels=None).rgb)
    except Exception as e:  # any unreadable file: list the row without an overlay
        return None, None, f"image not readable: {e}"
    ov = draw_overlay(img, row, emotions=emotions)
    # 256-colour PNG: 23 KiB instead of 86 KiB per 512 px overlay of the bundled examples (73 vs 250 KiB
    # on a diffusion-style sprite) and no visible change at thumbnail size; 2,000 rows -> ~50 MB, not 176
    ov.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(out)
    return out.name, ov.size, None
