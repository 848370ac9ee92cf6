"""Image sets drawn with ``harmony_eval.testing.render``: collages, contact sheets and the bundled examples.

``make_examples('examples')`` rewrites the repository's ``examples/`` folder (16 PNGs + targets.csv).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .render import EYES, random_style, render_face, render_scenery


def render_collage(n: int = 4, size: int = 512, seed: int = 0) -> Image.Image:
    """``n`` faces (different emotions and styles) in a near-square grid on one ``size`` px image:
    the "collage" failure of image generators (several characters where one was asked for)."""
    if n < 2:
        raise ValueError(f"`n` must be at least 2 for a collage, got {n}.")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tile = size // cols
    out = Image.new("RGB", (size, size), random_style(seed)["bg"])
    names = list(EYES)
    for i in range(n):
        emo = names[(seed + i) % len(names)]
        face = render_face(emo, emo, emo, size=tile, seed=seed * 100 + i)
        out.paste(face, ((i % cols) * tile, (size - rows * tile) // 2 + (i // cols) * tile))
    return out


def render_sheet(
    emotions: list[str] | None = None, seeds: tuple[int, ...] = (0, 1, 2), tile: int = 256
) -> Image.Image:
    """Coherent faces in a grid, one column per emotion, one row per seed (for looking at)."""
    emotions = list(EYES) if emotions is None else emotions
    out = Image.new("RGB", (tile * len(emotions), tile * len(seeds)), (255, 255, 255))
    for c, emo in enumerate(emotions):
        for r, seed in enumerate(seeds):
            out.paste(render_face(emo, emo, emo, size=tile, seed=seed), (c * tile, r * tile))
        ImageDraw.Draw(out).text((c * tile + 6, 4), emo, fill=(0, 0, 0))
    return out


# The bundled example set: (file, target emotion or None, how to draw it). File names carry exactly
# one emotion word (the target) or none, so `--targets` can also be read from the names.
_EXAMPLES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("neutral_01.png", "neutral", {"face": ("neutral",) * 3, "seed": 1}),
    ("neutral_02.png", "neutral", {"face": ("neutral",) * 3, "seed": 19}),
    ("happy_01.png", "happy", {"face": ("happy",) * 3, "seed": 2}),
    ("happy_02.png", "happy", {"face": ("happy",) * 3, "seed": 9}),
    ("sad_01.png", "sad", {"face": ("sad",) * 3, "seed": 3}),
    ("sad_02.png", "sad", {"face": ("sad",) * 3, "seed": 5, "mouth_shape": "wavy"}),
    ("angry_01.png", "angry", {"face": ("angry",) * 3, "seed": 7}),
    ("angry_02.png", "angry", {"face": ("angry",) * 3, "seed": 8}),
    # regions that disagree: the checklist's failures
    ("happy_mismatch_01.png", "happy", {"face": ("angry", "angry", "happy"), "seed": 10}),
    ("sad_mismatch_01.png", "sad", {"face": ("sad", "sad", "happy"), "seed": 11}),
    ("angry_mismatch_01.png", "angry", {"face": ("happy", "angry", "happy"), "seed": 12}),
    ("happy_wrong_01.png", "happy", {"face": ("neutral",) * 3, "seed": 13}),  # a neutral face, target happy
    ("happy_blurry_01.png", "happy", {"face": ("happy",) * 3, "seed": 14, "blur": 6.0}),
    ("sad_nomouth_01.png", "sad", {"face": ("sad",) * 3, "seed": 15, "draw_mouth": False}),
    ("collage_01.png", None, {"collage": 4, "seed": 0}),
    ("scenery_01.png", None, {"scenery": True, "seed": 0}),
]


def make_examples(out_dir: str | Path, size: int = 512) -> list[Path]:
    """Write the bundled example PNGs and ``targets.csv`` (file, emotion; rows only for images
    that have a target) into ``out_dir``; returns the image paths in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, _target, spec in _EXAMPLES:
        spec = dict(spec)
        seed = spec.pop("seed")
        if spec.pop("collage", 0):
            img = render_collage(4, size=size, seed=seed)
        elif spec.pop("scenery", False):
            img = render_scenery(size=size, seed=seed)
        else:
            img = render_face(*spec.pop("face"), size=size, seed=seed, **spec)
        img.save(out / name, optimize=True)
        paths.append(out / name)
    with open(out / "targets.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "emotion"])
        w.writerows([name, t] for name, t, _ in _EXAMPLES if t)
    return paths


def write_labelled_faces(folder: str | Path, emotions: list[str], seeds: int = 2, size: int = 224) -> Path:
    """Draw ``seeds`` coherent faces per emotion into ``folder`` as ``<emotion>_<seed>.png`` and write
    ``labels.csv`` (``file,emotion``) beside them: a labelled set for ``calibrate`` tests."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in emotions:
        for seed in range(seeds):
            render_face(e, e, e, size=size, seed=seed).save(folder / f"{e}_{seed}.png")
            rows.append({"file": f"{e}_{seed}.png", "emotion": e})
    write_labels_csv(folder / "labels.csv", rows)
    return folder


def write_labels_csv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """``rows`` as a labels CSV (``columns``, default the first row's keys; others ignored)."""
    p = Path(path)
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns or list(rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return p
