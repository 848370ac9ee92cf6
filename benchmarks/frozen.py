"""The project's own regression set: faces drawn by ``harmony_eval.testing.render``, scored, and checked
against the committed ``benchmarks/baseline.json`` so that any change that moves the evaluator's
scores is seen in CI.

    python -m benchmarks.frozen --check            # build + score + check (exit 0 / 1 / 2)
    python -m benchmarks.frozen --write-baseline   # after an intended change: rewrite the baseline

The set is data (:data:`FROZEN`): harmonious faces of each emotion, faces with one region drawn in
another emotion, and drawing defects (blur, a missing mouth or eyes). Same code, same pixels: the
renderer is deterministic for given arguments. Scoring is pinned to what needs no downloaded file:
the ``anatomy`` backend and the ``animeface`` + ``crop`` detectors (MediaPipe needs a model file that
CI machines may not have, and "auto" would switch to CLIP wherever its weights happen to be cached).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BASELINE = Path(__file__).resolve().parent / "baseline.json"
SIZE = 256  # px: large enough for every drawn part to be measured, small enough to score in seconds
#: Scoring options of the gate (see module docstring for why each is pinned).
SCORE_OPTIONS = {"backend": "anatomy", "detectors": ["animeface", "crop"]}
#: Tolerances of the self-check: tight, because the set and the code are both fixed. 0.01 is
#: above float noise across platforms (rows are rounded to 4 decimals) and below any real change.
MAX_DROP = 0.01
MAX_IMAGE_DELTA = 0.01
METRICS = ("harmony", "perfect_rate", "target_match")


@dataclass(frozen=True)
class FrozenFace:
    """One image: region expressions, renderer seed and options, the target and a category."""

    name: str
    eyes: str
    brows: str
    mouth: str
    seed: int
    target: str
    kind: str  # harmonious | mixed | defect (the "archetype" column in summaries)
    blur: float = 0.0
    draw_eyes: bool = True
    draw_mouth: bool = True


_EMOTIONS = ("neutral", "happy", "sad", "angry")
# One region against the rest, chosen as the seed's typical failures: a smile under sad eyes,
# angry brows over a happy face, a frown on a neutral face, a smile on an angry face.
_MIXED = (("happy", "happy", "sad"), ("happy", "angry", "happy"), ("neutral", "neutral", "sad"),
          ("angry", "angry", "happy"), ("sad", "sad", "happy"), ("sad", "happy", "sad"),
          ("angry", "neutral", "angry"), ("neutral", "happy", "angry"))  # fmt: skip

FROZEN: tuple[FrozenFace, ...] = (
    *(FrozenFace(f"{e}_s{s}", e, e, e, s, e, "harmonious") for e in _EMOTIONS for s in (0, 1, 2)),
    *(
        FrozenFace(f"mixed_{i}_e-{a}_b-{b}_m-{c}", a, b, c, 10 + i, a, "mixed")
        for i, (a, b, c) in enumerate(_MIXED)
    ),
    FrozenFace("defect_blur_happy", "happy", "happy", "happy", 20, "happy", "defect", blur=6.0),
    FrozenFace("defect_blur_sad", "sad", "sad", "sad", 21, "sad", "defect", blur=6.0),
    FrozenFace(
        "defect_no_mouth_neutral", "neutral", "neutral", "neutral", 22, "neutral", "defect", draw_mouth=False
    ),
    FrozenFace("defect_no_eyes_angry", "angry", "angry", "angry", 23, "angry", "defect", draw_eyes=False),
)


def build(folder: str | Path, size: int = SIZE) -> Path:
    """Draw the set into ``folder/images/*.png`` with ``folder/manifest.jsonl`` (targets); returns folder."""
    from harmony_eval.testing.render import render_face

    out = Path(folder)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for f in FROZEN:
        img = render_face(f.eyes, f.brows, f.mouth, size=size, seed=f.seed, blur=f.blur, draw_eyes=f.draw_eyes,
                          draw_mouth=f.draw_mouth)  # fmt: skip
        file = f"images/{f.name}.png"
        img.save(out / file)
        rows.append({
            "file": file, "prompt": f"eyes={f.eyes} brows={f.brows} mouth={f.mouth} blur={f.blur:g}"
            f"{'' if f.draw_eyes else ' no-eyes'}{'' if f.draw_mouth else ' no-mouth'}",
            "negative": "", "archetype": f.kind, "emotion": f.target, "cfg": None, "seed": f.seed, "steps": None,
            "scheduler": None, "model": "harmony_eval.testing.render", "lora": None, "lora_scale": None,
            "width": size, "height": size,
        })  # fmt: skip
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return out


def score(folder: str | Path, workers: int = 1, progress: bool = False) -> Path:
    """Score ``folder/images`` into ``folder`` (results.jsonl beside the manifest); returns folder."""
    from harmony_eval.runner import score_folder

    out = Path(folder)
    stale = out / "results.jsonl"
    if stale.exists():  # score_folder would resume from it: a check must score this code afresh
        print(f"removing the previous {stale} to score afresh", file=sys.stderr)
        stale.unlink()
    score_folder(out / "images", out, workers=workers, progress=progress, report=False,
                 manifest=out / "manifest.jsonl", argv=["benchmarks.frozen"], **SCORE_OPTIONS)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """``--check`` (default) or ``--write-baseline``; ``--out DIR`` keeps the scored run for a look."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frozen", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check against the baseline (default)")
    mode.add_argument("--write-baseline", action="store_true", help="rewrite the baseline from this code")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help=f"baseline JSON (default {BASELINE})")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the run here (default: a temporary folder)"
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)

    from harmony_eval.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        run = score(
            build(args.out or Path(tmp) / "frozen"), workers=args.workers, progress=sys.stderr.isatty()
        )
        if args.write_baseline:
            return cli_main(["check", str(run), "--baseline", str(args.baseline), "--write-baseline"])
        metrics = [x for m in METRICS for x in ("--metric", m)]
        return cli_main(["check", str(run), "--baseline", str(args.baseline), *metrics,
                         "--max-drop", str(MAX_DROP), "--max-image-delta", str(MAX_IMAGE_DELTA)])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
