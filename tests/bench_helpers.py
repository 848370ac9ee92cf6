"""Hand-made benchmark runs for the summarize / compare / check tests (no scoring, no generation).

``grid_rows`` follows one written-down rule, so every count a test expects can be derived by hand:

- verdict: ``broken`` if cfg == 9 or (emotion == sad and cfg == 5); else ``perfect`` if cfg == 7 and
  emotion != angry; else ``acceptable``  ->  overall 12 perfect, 16 acceptable, 20 broken of 48;
- detected emotion = target unless broken (then ``sad`` for an angry target, else ``angry``);
- harmony: perfect 0.8, acceptable 0.6, broken 0.3, plus 0.001 x the image's grid index;
- flags: broken -> wrong_emotion; cfg 9 also mixed_signals;
- regions: eyes say the target, mouth the detected emotion, brows are missing for Stoic faces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ARCHETYPES = ("Soft", "Stoic", "Energetic", "Melancholic")
EMOTIONS = ("neutral", "happy", "sad", "angry")
CFGS = (5.0, 7.0, 9.0)
HARMONY = {"perfect": 0.8, "acceptable": 0.6, "broken": 0.3}


def verdict_rule(emotion: str, cfg: float) -> str:
    if cfg == 9.0 or (emotion == "sad" and cfg == 5.0):
        return "broken"
    if cfg == 7.0 and emotion != "angry":
        return "perfect"
    return "acceptable"


def one_hot(emotion: str | None) -> dict[str, float] | None:
    if emotion is None:
        return None
    return {e: (0.85 if e == emotion else 0.05) for e in EMOTIONS}


def grid_rows() -> list[dict[str, Any]]:
    """48 ``(manifest row, results row)`` pairs following the module rule, in grid order."""
    out = []
    for i, (arch, emo, cfg) in enumerate((a, e, c) for a in ARCHETYPES for e in EMOTIONS for c in CFGS):
        verdict = verdict_rule(emo, cfg)
        detected = emo if verdict != "broken" else ("sad" if emo == "angry" else "angry")
        file = f"images/{arch.lower()}_{emo}_cfg{cfg:g}_seed0.png"
        flags = (["wrong_emotion"] if verdict == "broken" else []) + (["mixed_signals"] if cfg == 9.0 else [])
        manifest = {
            "file": file,
            "prompt": f"anime girl, {arch}, {emo}",
            "negative": "collage",
            "archetype": arch,
            "emotion": emo,
            "cfg": cfg,
            "seed": 0,
            "steps": 2,
            "scheduler": "euler",
            "model": "hand",
            "lora": None,
            "lora_scale": None,
            "width": 32,
            "height": 32,
        }
        result = {
            "path": file,
            "status": "ok",
            "error": None,
            "n_faces": 1,
            "target": emo,
            "emotion": detected,
            "probs": one_hot(detected),
            "regions": {
                "eyes": {"box": [1, 1, 5, 3], "probs": one_hot(emo)},
                "brows": {
                    "box": None if arch == "Stoic" else [1, 0, 5, 1],
                    "probs": None if arch == "Stoic" else one_hot(emo),
                },
                "mouth": {"box": [2, 5, 4, 6], "probs": one_hot(detected)},
            },
            "scores": {"eyes_mouth": 0.5, "brows_tension": 0.5, "coherence": 0.5, "target_match": 0.5},
            "harmony": round(HARMONY[verdict] + 0.001 * i, 4),
            "verdict": verdict,
            "flags": flags,
            "reason": f"rule {verdict}",
            "backend": "hand",
            "detector": "hand",
        }
        out.append((manifest, result))
    return out


def write_run(
    folder: Path, pairs: list[tuple[dict, dict]], manifest: bool = True, images: bool = True
) -> Path:
    """Write ``results.jsonl`` (+ ``manifest.jsonl`` and 8x8 PNGs) into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.jsonl", "w", encoding="utf-8") as f:
        for _, r in pairs:
            f.write(json.dumps(r) + "\n")
    if manifest:
        with open(folder / "manifest.jsonl", "w", encoding="utf-8") as f:
            for m, _ in pairs:
                f.write(json.dumps(m) + "\n")
    if images:
        for i, (m, _) in enumerate(pairs):
            p = folder / m["file"]
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), i * 5 % 256, np.uint8)).save(p)
    return folder


def reference_ci(values: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap written out the slow, obvious way (one resample per loop)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(values, dtype=float)
    means = [x[rng.integers(0, len(x), size=len(x))].mean() for _ in range(n_boot)]
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)
