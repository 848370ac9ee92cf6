"""Speed of the scoring pipeline; prints numbers (a benchmark, not a timed test).

    python benchmarks/speed.py --backend anatomy --workers 2 --json
    python -m benchmarks.speed --sprites 150 --rss-at 1000     # real-sized images: speed_sprites.py
    python benchmarks/speed.py --backend clip --clip-model ViT-B-32 --random-init --json

``anatomy``: ``images_per_s`` of ``harmony_eval.score`` over the bundled ``examples/`` (repeated
``--repeat`` times so that worker start-up is amortised as in a real folder). Goal: >= 5 img/s on two
cores with ``--workers 2``.

``clip`` (one JSON object):

- ``encoder_crops_per_s``: the bare image encoder on the very crops the pipeline cuts, already
  preprocessed, at the backend's batch size;
- ``pipeline_crops_per_s``: the same crops through ``harmony_eval.score`` end to end (load, detect,
  crop, encode, agree, verdict) with an empty embedding cache; ``ratio`` = pipeline / encoder (goal
  >= 0.8: the pipeline adds little around the encoder);
- ``rescore_speedup``: the region stage (``ClipBackend.predict``: crops -> embeddings -> zero-shot
  probabilities) run again from the embedding cache, vs the first run (goal >= 50);
- ``rescore_pipeline_speedup``: the same for a whole second ``score`` call (it repeats detection).

The model is loaded and the prompts encoded once before timing (a warm-up call); ``--random-init``
times the architecture without downloading weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _images(folder: Path, repeat: int) -> list[str]:
    from harmony_eval.imageio import list_images

    files = [str(p) for p in list_images([str(folder)])]
    if not files:
        raise FileNotFoundError(f"--images {folder}: no images found")
    return files * max(1, repeat)


def anatomy_speed(images: Path, workers: int = 2, repeat: int = 3) -> dict[str, Any]:
    """Images per second of the offline pipeline, end to end (worker start-up included)."""
    import harmony_eval

    files = _images(images, repeat)
    harmony_eval.score(files[:1], backend="anatomy")  # imports and first-use set-up, not per image
    t0 = time.perf_counter()
    df = harmony_eval.score(files, backend="anatomy", workers=workers)
    dt = time.perf_counter() - t0
    return {
        "backend": "anatomy", "images": len(files), "workers": workers, "cpus": os.cpu_count(),
        "seconds": round(dt, 3), "images_per_s": round(len(files) / dt, 2),
        "ok": int((df["status"] == "ok").sum()),
    }  # fmt: skip


def _prepared_inputs(files: list[str], scorer) -> list:
    from harmony_eval.types import FaceInput

    out = []
    for f in files:
        p = scorer.prepare(f, f)
        if p.error is None and p.faces:
            out.append(FaceInput(p.image, p.faces[0], p.regions, p.key))
    return out


def clip_speed(
    images: Path, repeat: int = 1, workers: int = 1, batch_size: int = 64, trials: int = 5, **clip: Any
) -> dict[str, Any]:
    """The ``clip`` figures of the module docstring. Each timing is the fastest of ``trials`` runs,
    encoder and pipeline alternating: on a shared machine one pass swung the ratio from 0.95 to
    1.27 between two runs as other jobs came and went."""
    import numpy as np
    import torch

    import harmony_eval
    from harmony_eval.backends.clip import ClipBackend, crop_square
    from harmony_eval.pipeline import Scorer
    from harmony_eval.types import REGIONS

    files = _images(images, repeat)
    tmp = Path(tempfile.mkdtemp(prefix="harmony_speed_"))
    opts = {**clip, "clip_batch_size": batch_size}
    harmony_eval.score(files[:1], backend="clip", clip_embed_cache=str(tmp / "warm"), **opts)  # warm-up

    # the crops the pipeline cuts, prepared outside the clock, for the bare encoder
    scorer = Scorer(backend="clip", **opts)
    inputs = _prepared_inputs(files, scorer)
    backend: ClipBackend = scorer.backend
    lc = backend.clip
    crops = [
        crop_square(inp.image, inp.face.box if r == "face" else inp.regions[r], backend.margin, lc.image_size)
        for inp in inputs for r in REGIONS if (inp.face.box if r == "face" else inp.regions.get(r)) is not None
    ]  # fmt: skip
    # batches built exactly as ClipBackend._encode_crops builds them (same tensor layout), untimed
    mean, std = torch.tensor(lc.mean).view(1, 3, 1, 1), torch.tensor(lc.std).view(1, 3, 1, 1)
    batches = [
        (torch.from_numpy(np.stack(crops[i : i + batch_size])).permute(0, 3, 1, 2).float() / 255.0 - mean)
        / std
        for i in range(0, len(crops), batch_size)
    ]
    lc.encode_image(batches[0][:2])  # first-call allocations

    def encoder() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for b in batches:
            lc.encode_image(b)
        if lc.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0

    def pipeline(cache: Path) -> tuple[float, float, Any]:
        t0, c0 = time.perf_counter(), time.process_time()
        df = harmony_eval.score(files, backend="clip", workers=workers, clip_embed_cache=str(cache), **opts)
        return time.perf_counter() - t0, time.process_time() - c0, df

    def stage(cache: Path) -> tuple[float, ClipBackend]:
        b = ClipBackend(**{**opts, "clip_embed_cache": str(cache)})  # new backend: nothing in memory
        t0 = time.perf_counter()
        b.predict(inputs, scorer.emotions)
        return time.perf_counter() - t0, b

    t_enc, t_pipe, t_again, t_stage, t_stage_again, cpu_enc, cpu_pipe = [], [], [], [], [], [], []
    for k in range(trials):
        t, c = encoder()
        t_enc.append(t), cpu_enc.append(c)
        t, c, df = pipeline(tmp / f"pipe{k}")  # empty embedding cache
        t_pipe.append(t), cpu_pipe.append(c)
        t_again.append(pipeline(tmp / f"pipe{k}")[0])  # everything from the cache
        t_stage.append(stage(tmp / f"stage{k}")[0])
        t, warm = stage(tmp / f"stage{k}")
        t_stage_again.append(t)
        assert warm.stats["crops_encoded"] == 0, "the second run must come from the cache"
    n_crops = sum(
        1 for _, row in df.iterrows() if row["status"] == "ok" for r in REGIONS if row["regions"][r]["box"] is not None
    )  # fmt: skip
    enc_rate, pipe_rate = len(crops) / min(t_enc), n_crops / min(t_pipe)
    return {
        "backend": "clip", "model": lc.model_id, "device": str(lc.device), "images": len(files),
        "faces": len(inputs), "crops": n_crops, "batch_size": batch_size, "workers": workers, "trials": trials,
        "encoder_crops_per_s": round(enc_rate, 2), "pipeline_crops_per_s": round(pipe_rate, 2),
        "ratio": round(pipe_rate / enc_rate, 3),
        # the same ratio in CPU seconds of this process: what other jobs on the machine do not move
        # (valid with workers=1, where all the work is in this process)
        "ratio_cpu_time": round(min(cpu_enc) / min(cpu_pipe) * n_crops / len(crops), 3),
        "rescore_speedup": round(min(t_stage) / min(t_stage_again), 1),
        "rescore_pipeline_speedup": round(min(t_pipe) / min(t_again), 2),
        "seconds": {
            "pipeline": round(min(t_pipe), 3), "pipeline_rescore": round(min(t_again), 3),
            "encoder": round(min(t_enc), 3), "region_stage": round(min(t_stage), 3),
            "region_stage_rescore": round(min(t_stage_again), 4),
        },
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["anatomy", "clip"], default="anatomy")
    ap.add_argument("--images", type=Path, default=ROOT / "examples")
    ap.add_argument("--workers", type=int, default=None, help="default: 2 (anatomy), 1 (clip)")
    ap.add_argument("--repeat", type=int, default=None, help="pass over the images this many times")
    ap.add_argument("--clip-model", default="ViT-B-32")
    ap.add_argument("--clip-pretrained", default="laion2b_s34b_b79k")
    ap.add_argument("--clip-loader", default="open_clip")
    ap.add_argument("--clip-device", default="auto")
    ap.add_argument("--clip-precision", default="auto")
    ap.add_argument("--random-init", action="store_true", help="random weights: time without downloading")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--trials", type=int, default=5, help="clip: best of this many timed runs")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--sprites", type=int, default=None,
                    help="anatomy: score N real-sized images (benchmarks/speed_sprites.py), 1 vs 2 workers")  # fmt: skip
    ap.add_argument("--side", type=int, default=600, help="--sprites: longest image side in px")
    ap.add_argument("--rss-at", default="", help="--sprites: peak RSS at these image counts, e.g. 1000,10000")
    a = ap.parse_args(argv)
    if a.sprites:
        from benchmarks.speed_sprites import sprite_speed

        rss = tuple(int(x) for x in a.rss_at.split(",") if x.strip())
        out = sprite_speed(a.images, n=a.sprites, side=a.side, rss_at=rss)
    elif a.backend == "anatomy":
        out = anatomy_speed(a.images, workers=a.workers or 2, repeat=a.repeat or 3)
    else:
        out = clip_speed(
            a.images, repeat=a.repeat or 1, workers=a.workers or 1, batch_size=a.batch_size, trials=a.trials,
            clip_model=a.clip_model, clip_pretrained=a.clip_pretrained, clip_loader=a.clip_loader,
            clip_device=a.clip_device, clip_precision=a.clip_precision, clip_random_init=a.random_init,
        )  # fmt: skip
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>26}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
