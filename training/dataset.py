"""Batches for training: aspect-ratio buckets and a deterministic, resumable stream of micro-batches.

Micro-batch ``k`` is a pure function of ``(records, config, k)``: epoch ``k // batches_per_epoch``
is shuffled with ``random.Random(f"{seed}:{epoch}")`` and each image's random crop / flip with
``random.Random(f"{seed}:{epoch}:{index}")``. So a resumed run needs only the step count to continue
with exactly the batches an uninterrupted run would have drawn (no sampler state to save).

Buckets (``aspect_buckets: true``): sizes ``(w, h)``, multiples of ``bucket_step``, with
``w x h <= resolution^2`` and aspect ratio at most 2:1; each image goes to the bucket whose aspect
ratio is nearest its own (in log scale) and is resized to cover it, then cropped. A batch holds
images of one bucket only. Without buckets every image is cropped to ``resolution x resolution``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .data import crop_image

MAX_RATIO = 2.0  # kohya's default bucket range: 1:2 to 2:1


def make_buckets(resolution: int, step: int, max_ratio: float = MAX_RATIO) -> list[tuple[int, int]]:
    """``[(w, h)]`` sorted by aspect ratio: for each width, the largest height (multiple of ``step``)
    that keeps the area within ``resolution^2``."""
    out = set()
    w = step
    while w <= resolution * max_ratio:
        h = (resolution * resolution // w) // step * step
        if h >= step and max(w / h, h / w) <= max_ratio:
            out.add((w, h))
        w += step
    return sorted(out, key=lambda b: b[0] / b[1])


def image_size(path: Path) -> tuple[int, int]:
    """``(w, h)`` from the file header (EXIF rotation applied); ValueError naming the file."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            w, h = im.size
            if ImageOps.exif_transpose(im, in_place=False).size != (w, h):
                w, h = h, w
    except OSError as e:
        raise ValueError(f"{path}: cannot read training image ({e}); fix or remove it") from e
    return w, h


def nearest_bucket(size: tuple[int, int], buckets: list[tuple[int, int]]) -> tuple[int, int]:
    ratio = math.log(size[0] / size[1])
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - ratio))


class BatchStream:
    """Deterministic micro-batches over ``[(image, caption)]`` records (see the module docstring).

    ``batch(k)`` -> ``{"pixel_values": (B, 3, h, w), "caption": [str], "original_size": [(h, w)],
    "crop_top_left": [(top, left)]}``.
    """

    def __init__(self, records: list[tuple[Path, str]], cfg: TrainConfig) -> None:
        if not records:
            raise ValueError("no training images")
        self.records = records
        self.cfg = cfg
        if cfg.aspect_buckets:
            buckets = make_buckets(cfg.resolution, cfg.bucket_step)
            self.sizes = [nearest_bucket(image_size(p), buckets) for p, _ in records]
        else:
            self.sizes = [(cfg.resolution, cfg.resolution)] * len(records)
        by_bucket: dict[tuple[int, int], list[int]] = {}
        for i, b in enumerate(self.sizes):
            by_bucket.setdefault(b, []).append(i)
        self.buckets = dict(sorted(by_bucket.items()))
        # incomplete last batches are kept: a 10-image set at batch size 4 must not lose 2 images
        self.batches_per_epoch = sum(-(-len(v) // cfg.batch_size) for v in self.buckets.values())
        self._epoch: tuple[int, list[list[int]]] | None = None

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Index lists of one epoch: each bucket shuffled and chunked, then the chunks shuffled."""
        if self._epoch is not None and self._epoch[0] == epoch:
            return self._epoch[1]
        rng = random.Random(f"{self.cfg.seed}:{epoch}")
        batches = []
        for idx in self.buckets.values():
            idx = list(idx)
            rng.shuffle(idx)
            batches += [idx[i : i + self.cfg.batch_size] for i in range(0, len(idx), self.cfg.batch_size)]
        rng.shuffle(batches)
        self._epoch = (epoch, batches)
        return batches

    def batch(self, k: int) -> dict[str, Any]:
        import torch

        epoch, j = divmod(k, self.batches_per_epoch)
        pixels, captions, orig, crops = [], [], [], []
        for i in self.epoch_batches(epoch)[j]:
            path, caption = self.records[i]
            w, h = self.sizes[i]
            rng = random.Random(f"{self.cfg.seed}:{epoch}:{i}")
            px, o, c = crop_image(path, w, h, self.cfg.center_crop, self.cfg.random_flip, rng)
            pixels.append(px)
            captions.append(caption)
            orig.append(o)
            crops.append(c)
        return {
            "pixel_values": torch.stack(pixels),
            "caption": captions,
            "original_size": orig,
            "crop_top_left": crops,
        }
