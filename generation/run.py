"""The generation loop: grid items -> PNGs with A1111 ``parameters`` metadata + ``RUN/manifest.jsonl``.

Run folder layout::

    RUN/images/<archetype>_<emotion>_cfg<cfg>_seed<seed>[_lora<scale>].png
    RUN/manifest.jsonl      one row per image, keys MANIFEST_KEYS (COMMON.md contract)
    RUN/generation.json     resolved settings, versions, timings of the last run

Resuming: each PNG is written to a temporary name and renamed, then its manifest row is appended and
flushed, so a killed run leaves at most one image without a row. A rerun skips every image whose PNG
exists; a PNG with no row gets its row back (after checking its metadata matches) instead of being
redrawn; a row is never written twice. A rerun with different settings for an existing file
(other steps, model, prompt...) is refused before anything is drawn.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .grid import DEFAULT_CFGS, DEFAULT_SEEDS, GridItem, build_grid
from .pipeline import (
    check_scheduler,
    check_size,
    default_size,
    limit_torch_threads,
    load_lora,
    load_pipeline,
    resolve_lora_file,
    sampler_name,
    set_lora_scale,
)
from .tiny import TINY_MODEL_ID, TINY_MODELS

MANIFEST_KEYS = (
    "file", "prompt", "negative", "archetype", "emotion", "cfg", "seed", "steps",
    "scheduler", "model", "lora", "lora_scale", "width", "height",
)  # fmt: skip


def manifest_row(
    item: GridItem, *, steps: int, scheduler: str, model: str, lora: str | None, width: int, height: int
) -> dict:
    """The manifest row of one grid item (``emotion`` = the target emotion of the prompt)."""
    return {
        "file": item.file,
        "prompt": item.prompt,
        "negative": item.negative,
        "archetype": item.archetype,
        "emotion": item.emotion,
        "cfg": item.cfg,
        "seed": item.seed,
        "steps": steps,
        "scheduler": scheduler,
        "model": model,
        "lora": lora,
        "lora_scale": item.lora_scale,
        "width": width,
        "height": height,
    }


def a1111_parameters(row: dict) -> str:
    """The ``parameters`` PNG text chunk as AUTOMATIC1111's web UI writes it (so A1111's "PNG info",
    civitai and the scorer's metadata reader all parse it), plus Archetype / Emotion keys."""
    lines = [row["prompt"]]
    if row["negative"]:
        lines.append(f"Negative prompt: {row['negative']}")
    fields = [
        f"Steps: {row['steps']}",
        f"Sampler: {row['scheduler']}",
        f"CFG scale: {row['cfg']}",
        f"Seed: {row['seed']}",
        f"Size: {row['width']}x{row['height']}",
        f"Model: {row['model']}",
    ]
    if row["lora"]:
        fields += [f"Lora: {lora_name(row['lora'])}", f"Lora scale: {row['lora_scale']:g}"]
    fields += [f"Archetype: {row['archetype']}", f"Emotion: {row['emotion']}"]
    lines.append(", ".join(fields))
    return "\n".join(lines)


def lora_name(lora: str) -> str:
    """A LoRA's display name: the file stem, or the folder name for diffusers' generic file name."""
    p = Path(lora)
    if p.suffix == ".safetensors":
        return p.parent.name if p.stem == "pytorch_lora_weights" and p.parent.name else p.stem
    return p.name


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a manifest; a torn last line (run killed mid-write) is dropped from the file."""
    p = Path(path)
    if not p.is_file():
        return []
    raw = p.read_bytes()
    rows, good_end = [], 0
    for line in raw.splitlines(keepends=True):
        try:
            if line.strip():
                rows.append(json.loads(line))
            if line.endswith(b"\n"):
                good_end += len(line)
        except json.JSONDecodeError:
            break
    if good_end < len(raw):  # only ever the tail: rows are appended whole and flushed one by one
        with open(p, "r+b") as f:
            f.truncate(good_end)
    return rows


def png_parameters(path: str | Path) -> str | None:
    """The ``parameters`` text of a PNG, or None when absent/unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.info.get("parameters")
    except OSError:
        return None


def _save_png(image: Any, path: Path, parameters: str) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written PNG under the real name


def generate_images(
    pipe: Any,
    items: Sequence[GridItem],
    out_dir: str | Path,
    *,
    steps: int,
    width: int,
    height: int,
    model: str,
    scheduler: str,
    lora: str | None = None,
    progress: bool | None = None,
) -> dict:
    """Draw every item not already in ``out_dir``; returns counts
    ``{total, generated, skipped, nsfw_flagged, seconds}``.

    One image per pipeline call with its own ``torch.Generator("cpu").manual_seed(seed)``: the initial
    latents (shape ``(1, 4, height/f, width/f)``, f = VAE scale factor) depend only on the seed, on every
    device, so the same seed gives the same picture whatever else is in the grid.
    """
    import torch

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    done = {r["file"]: r for r in read_manifest(manifest)}
    rows = [
        manifest_row(it, steps=steps, scheduler=scheduler, model=model, lora=lora, width=width, height=height)
        for it in items
    ]
    for row in rows:  # refuse mixed settings before drawing anything
        old = done.get(row["file"])
        if old is not None and old != row:
            diff = {k: (old.get(k), row[k]) for k in MANIFEST_KEYS if old.get(k) != row[k]}
            raise ValueError(
                f"{manifest}: {row['file']} was made with other settings "
                + ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
                + "; use a new --out folder, or delete that folder to redo it"
            )

    show = sys.stderr.isatty() if progress is None else progress
    counts = {"total": len(rows), "generated": 0, "skipped": 0, "nsfw_flagged": 0}
    t0 = time.perf_counter()
    with (
        open(manifest, "a", encoding="utf-8") as mf,
        tqdm(total=len(rows), desc="generate", unit="img", disable=not show) as bar,
    ):
        for item, row in zip(items, rows, strict=True):
            path = out / row["file"]
            params = a1111_parameters(row)
            if path.is_file() and (row["file"] in done or png_parameters(path) == params):
                counts["skipped"] += 1
            else:
                if lora is not None:
                    set_lora_scale(pipe, item.lora_scale if item.lora_scale is not None else 1.0)
                result = pipe(
                    prompt=item.prompt,
                    negative_prompt=item.negative or None,
                    num_inference_steps=steps,
                    guidance_scale=item.cfg,
                    width=width,
                    height=height,
                    generator=torch.Generator("cpu").manual_seed(item.seed),
                )
                # SD 1.x's NSFW checker returns a black image for what it flags; count them so the
                # user learns why some images score no_face.
                counts["nsfw_flagged"] += bool((getattr(result, "nsfw_content_detected", None) or [False])[0])
                _save_png(result.images[0], path, params)
                counts["generated"] += 1
            if row["file"] not in done:
                mf.write(json.dumps(row, ensure_ascii=False) + "\n")
                mf.flush()
                done[row["file"]] = row
            bar.update(1)
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    return counts


def run_generation(
    out: str | Path,
    model: str = TINY_MODEL_ID,
    *,
    archetypes: Sequence[str] | None = None,
    emotions: Sequence[str] | None = None,
    cfgs: Sequence[float] | None = DEFAULT_CFGS,
    seeds: Sequence[int] | None = DEFAULT_SEEDS,
    template: int | str = 0,
    negative: str | None = None,
    scheduler: str | None = None,
    steps: int = 20,
    width: int | None = None,
    height: int | None = None,
    lora: str | None = None,
    lora_scales: Sequence[float] | None = None,
    device: str = "auto",
    dtype: str = "auto",
    arch: str = "auto",
    config: str | None = None,
    safety_checker: bool = True,
    progress: bool | None = None,
    pipe: Any = None,
) -> dict:
    """Build the grid, load the model and draw the images into ``out`` (see module docstring).

    Arguments are validated before the model is loaded; ``cfgs``/``seeds`` None = the defaults. ``lora_scales`` defaults to ``[1.0]`` when
    ``lora`` is given; ``width``/``height`` default to the model's native size. ``pipe`` reuses an
    already loaded pipeline (its scheduler/LoRA are then set here). Returns the dict also written to
    ``RUN/generation.json``: settings, counts, seconds, versions.
    """
    if steps < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}")
    check_size(width, height)
    check_scheduler(scheduler)
    lora_file = str(resolve_lora_file(lora)) if lora else None
    if lora_scales is not None and not lora:
        raise ValueError("`lora_scales` given without `lora`; pass --lora PATH too")
    scales = (list(lora_scales) if lora_scales is not None else [1.0]) if lora else None
    cfgs = DEFAULT_CFGS if cfgs is None else cfgs
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    items = build_grid(archetypes, emotions, cfgs, seeds, template, negative, scales)

    t0 = time.perf_counter()
    if pipe is None:
        pipe = load_pipeline(model, device, dtype, scheduler, arch, config, safety_checker)
    elif scheduler is not None:
        from .pipeline import set_scheduler

        set_scheduler(pipe, scheduler)
    if lora_file:
        load_lora(pipe, lora_file)
    load_s = time.perf_counter() - t0
    w0, h0 = default_size(pipe)
    width, height = width or w0, height or h0
    with limit_torch_threads(1 if model in TINY_MODELS else None):
        counts = generate_images(
            pipe, items, out, steps=steps, width=width, height=height, model=model,
            scheduler=sampler_name(pipe, scheduler), lora=lora, progress=progress,
        )  # fmt: skip

    summary = {
        "model": model,
        "pipeline": type(pipe).__name__,
        "device": str(pipe.device),
        "dtype": str(pipe.unet.dtype).replace("torch.", ""),
        "scheduler": sampler_name(pipe, scheduler),
        "steps": steps,
        "width": width,
        "height": height,
        "lora": lora,
        "lora_file": lora_file,
        "lora_scales": scales,
        "n_archetypes": len({i.archetype for i in items}),
        "n_emotions": len({i.emotion for i in items}),
        "cfgs": sorted({i.cfg for i in items}),
        "seeds": sorted({i.seed for i in items}),
        **counts,
        "load_seconds": round(load_s, 3),
        "images_per_second": round(counts["generated"] / counts["seconds"], 3)
        if counts["generated"]
        else None,
        "versions": _versions(),
    }
    Path(out, "generation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "diffusers", "transformers", "peft", "harmony-eval"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out
