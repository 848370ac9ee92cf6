"""``harmony-eval train``: fine-tune a LoRA on a captioned image folder.

A plain typer-annotated function; ``harmony_eval.cli`` registers it as a subcommand.
Exit codes: 0 = trained and saved; 2 = bad arguments, data or model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    model: Annotated[
        str,
        typer.Option(
            help="SD 1.x/2.x base: Hugging Face id, local diffusers folder, .safetensors, or tiny-random."
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(help="Image folder with captions: metadata.jsonl, manifest.jsonl or a .txt per image."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the LoRA and checkpoints.")],
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 4,
    alpha: Annotated[float | None, typer.Option(help="LoRA alpha (default: = rank).")] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 500,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 1,
    resolution: Annotated[int, typer.Option(help="Training size in px (square crop, divisible by 8).")] = 512,
    checkpoint_every: Annotated[int, typer.Option(help="Save a checkpoint every N steps (0 = none).")] = 500,
    seed: Annotated[int, typer.Option(help="Seed for LoRA init, noise, timesteps and shuffling.")] = 0,
    center_crop: Annotated[bool, typer.Option(help="Centre crop (else random crop).")] = True,
    random_flip: Annotated[bool, typer.Option(help="Mirror half the images at random.")] = False,
    warmup_steps: Annotated[int, typer.Option(help="Linear learning-rate warm-up steps.")] = 0,
    mixed_precision: Annotated[str, typer.Option(help="no | fp16 (CUDA) | bf16")] = "no",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    arch: Annotated[str, typer.Option(help="Single-file checkpoints: auto | sd15")] = "auto",
    config: Annotated[
        str | None, typer.Option(help="Single-file checkpoints: local diffusers folder with the configs.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
) -> None:
    """Train a UNet LoRA (peft; to_q/to_k/to_v/to_out.0) on the captioned images in DATA.

    Saves OUT/pytorch_lora_weights.safetensors, OUT/checkpoint-N/ and OUT/train_summary.json.

    Use the result with `harmony-eval generate --lora OUT`."""
    from generation.cli import fail
    from generation.pipeline import ModelLoadError, limit_torch_threads, load_pipeline
    from generation.tiny import TINY_MODELS

    from .data import find_captioned_images
    from .lora import TrainConfig, train_lora

    cfg = TrainConfig(
        rank=rank,
        alpha=alpha,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        resolution=resolution,
        checkpoint_every=checkpoint_every,
        seed=seed,
        center_crop=center_crop,
        random_flip=random_flip,
        warmup_steps=warmup_steps,
        mixed_precision=mixed_precision,
    )
    try:
        cfg.validate()
        records = find_captioned_images(data)
        dtype = {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}[mixed_precision]
        pipe = load_pipeline(model, device, dtype, arch=arch, config=config, safety_checker=False)
        meta = {"model": model, "data": str(data)}
        with limit_torch_threads(1 if model in TINY_MODELS else None):
            summary = train_lora(pipe, records, out, cfg, progress=None if progress else False, meta=meta)
    except (ValueError, FileNotFoundError, ModelLoadError) as e:
        raise fail(str(e)) from None
    typer.echo(
        f"trained {summary['steps']} steps on {summary['n_images']} image(s) in {summary['seconds']:.1f} s: "
        f"loss {summary['loss_first']:.4f} -> {summary['loss_mean_last10']:.4f} (mean of last 10). "
        f"LoRA: {summary['lora_file']}"
    )
