"""Captioned image folders for LoRA training.

Three layouts are read, first match wins:

1. ``metadata.jsonl``: one ``{"file_name" | "file": path, "text": caption}`` per line (the Hugging
   Face ``imagefolder`` convention);
2. ``manifest.jsonl`` from ``harmony-eval generate``: ``file`` + ``prompt`` (train on a curated run);
3. a caption ``.txt`` beside each image with the same stem (``a.png`` + ``a.txt``; kohya style).

Paths are relative to the folder. Images are returned as float tensors ``(3, R, R)`` in ``[-1, 1]``
(the VAE's input range), resized so the short side is ``R`` then cropped.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{path}:{n}: not valid JSON ({e.msg}); one JSON object per line expected"
            ) from None
    return rows


def _from_jsonl(folder: Path, name: str, file_keys: tuple[str, ...], text_key: str) -> list[tuple[Path, str]]:
    path = folder / name
    records = []
    for n, row in enumerate(_read_jsonl(path), 1):
        file = next((row[k] for k in file_keys if k in row), None)
        text = row.get(text_key)
        if not isinstance(file, str) or not isinstance(text, str):
            raise ValueError(
                f"{path}:{n}: expected string keys {' or '.join(file_keys)} and {text_key!r}, got {sorted(row)}"
            )
        records.append((folder / file, text))
    missing = [str(p) for p, _ in records if not p.is_file()]
    if missing:
        raise ValueError(f"{path}: {len(missing)} listed image(s) not found, first: {missing[0]}")
    return records


def find_captioned_images(folder: str | Path) -> list[tuple[Path, str]]:
    """``[(image path, caption)]`` for a training folder, sorted by path (see module docstring).

    Raises ValueError naming the folder when nothing usable is found, or when some images have no
    caption (silently training on a subset would hide a broken dataset).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--data {folder}: not a folder")
    if (root / "metadata.jsonl").is_file():
        records = _from_jsonl(root, "metadata.jsonl", ("file_name", "file"), "text")
    elif (root / "manifest.jsonl").is_file():
        records = _from_jsonl(root, "manifest.jsonl", ("file",), "prompt")
    else:
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not images:
            raise ValueError(
                f"--data {folder}: no images ({', '.join(sorted(IMAGE_EXTS))}) and no metadata.jsonl/manifest.jsonl"
            )
        uncaptioned = [p for p in images if not p.with_suffix(".txt").is_file()]
        if uncaptioned:
            raise ValueError(
                f"--data {folder}: {len(uncaptioned)} of {len(images)} images have no caption file "
                f"(first: {uncaptioned[0].name} needs {uncaptioned[0].with_suffix('.txt').name}); add a .txt "
                "beside each image or a metadata.jsonl with file + text"
            )
        records = [(p, p.with_suffix(".txt").read_text(encoding="utf-8").strip()) for p in images]
    if not records:
        raise ValueError(f"--data {folder}: the caption file lists no images")
    return sorted(records, key=lambda r: str(r[0]))


def load_image(
    path: Path,
    resolution: int,
    center_crop: bool = True,
    flip: bool = False,
    rng: random.Random | None = None,
) -> Any:
    """One training image as a ``(3, resolution, resolution)`` float32 tensor in ``[-1, 1]``.

    Short side resized to ``resolution`` (bicubic), then a centre crop (or a random crop from
    ``rng``), optionally mirrored. Transparent pixels are composited on white, EXIF rotation applied.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    rng = rng or random.Random(0)
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("RGB")
    w, h = im.size
    s = resolution / min(w, h)
    im = im.resize((max(resolution, round(w * s)), max(resolution, round(h * s))), Image.Resampling.BICUBIC)
    w, h = im.size
    if center_crop:
        x, y = (w - resolution) // 2, (h - resolution) // 2
    else:
        x, y = rng.randint(0, w - resolution), rng.randint(0, h - resolution)
    im = im.crop((x, y, x + resolution, y + resolution))
    if flip and rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class CaptionDataset:
    """Map-style dataset (works with ``torch.utils.data.DataLoader``) over ``(path, caption)`` records;
    items are ``{"pixel_values": (3, R, R) tensor, "caption": str}``."""

    def __init__(
        self,
        records: list[tuple[Path, str]],
        resolution: int = 512,
        center_crop: bool = True,
        random_flip: bool = False,
        seed: int = 0,
    ) -> None:
        if resolution % 8:
            raise ValueError(f"`resolution` has to be divisible by 8 but is {resolution}")
        self.records = records
        self.resolution = resolution
        self.center_crop = center_crop
        self.random_flip = random_flip
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        path, caption = self.records[i]
        try:
            pixels = load_image(path, self.resolution, self.center_crop, self.random_flip, self.rng)
        except OSError as e:
            raise ValueError(f"{path}: cannot read training image ({e}); fix or remove it") from e
        return {"pixel_values": pixels, "caption": caption}
