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
        images = list_images(root)
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


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def caption_table(folder: str | Path) -> tuple[str, dict[Path, str | None]]:
    """``(caption source, {image: caption or None})`` without raising for missing captions: for the
    dataset check. Images on disk that a metadata.jsonl / manifest.jsonl does not list get None (they
    would not be trained on); listed files that do not exist are included (the check reports them)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{folder}: not a folder")
    table: dict[Path, str | None] = {}
    for name, file_keys, text_key in (
        ("metadata.jsonl", ("file_name", "file"), "text"),
        ("manifest.jsonl", ("file",), "prompt"),
    ):
        if (root / name).is_file():
            for row in _read_jsonl(root / name):
                file = next((row[k] for k in file_keys if k in row), None)
                if isinstance(file, str):
                    text = row.get(text_key)
                    table[root / file] = text.strip() if isinstance(text, str) and text.strip() else None
            for p in list_images(root):
                table.setdefault(p, None)
            return name, dict(sorted(table.items()))
    for p in list_images(root):
        txt = p.with_suffix(".txt")
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        table[p] = text or None
    return ".txt sidecars", table


def load_image(
    path: Path,
    resolution: int,
    center_crop: bool = True,
    flip: bool = False,
    rng: random.Random | None = None,
) -> Any:
    """One square training image as a ``(3, resolution, resolution)`` float32 tensor in ``[-1, 1]``
    (see :func:`crop_image`)."""
    return crop_image(path, resolution, resolution, center_crop, flip, rng)[0]


def crop_image(
    path: Path,
    width: int,
    height: int,
    center_crop: bool = True,
    flip: bool = False,
    rng: random.Random | None = None,
) -> tuple[Any, tuple[int, int], tuple[int, int]]:
    """``(pixels, (orig_h, orig_w), (crop_top, crop_left))``: pixels a ``(3, height, width)`` float32
    tensor in ``[-1, 1]``; the sizes are SDXL's size/crop conditioning.

    Resized (bicubic) so the image covers ``width x height``, then a centre crop (or a random crop
    from ``rng``), optionally mirrored. Transparent pixels are composited on white, EXIF rotation
    applied. Raises ValueError naming the file when it cannot be read.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    rng = rng or random.Random(0)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
    except OSError as e:
        raise ValueError(f"{path}: cannot read training image ({e}); fix or remove it") from e
    w0, h0 = im.size
    s = max(width / w0, height / h0)
    im = im.resize((max(width, round(w0 * s)), max(height, round(h0 * s))), Image.Resampling.BICUBIC)
    w, h = im.size
    if center_crop:
        x, y = (w - width) // 2, (h - height) // 2
    else:
        x, y = rng.randint(0, w - width), rng.randint(0, h - height)
    im = im.crop((x, y, x + width, y + height))
    if flip and rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), (h0, w0), (y, x)
