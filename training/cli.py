"""``harmony-eval train``, ``captions`` and ``dataset-check``: LoRA training with the evaluator in the loop.

Plain typer-annotated functions; ``harmony_eval.cli`` registers them as subcommands.
``train`` reads ``--config FILE.yaml`` (keys of :class:`training.config.TrainConfig`); every flag
given replaces its key. Exit codes: 0 = done; 1 = dataset-check found problems; 2 = bad arguments,
data or model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option
# list keys: comma-separated on the command line, YAML lists in the file
_LISTS = {
    "target_modules": str, "text_encoder_target_modules": str, "validation_archetypes": str,
    "validation_emotions": str, "validation_cfgs": float, "validation_seeds": int,
}  # fmt: skip


def parse_set(items: list[str]) -> dict:
    """``["lr=1e-4", "validation-cfgs=[5, 7]"]`` -> ``{"lr": 1e-4, "validation_cfgs": [5, 7]}`` (YAML values)."""
    import yaml

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set validation_size=128")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    return out


def train(
    config: Annotated[Path | None, Opt(help="YAML file of training keys (flags override them).")] = None,
    model: Annotated[
        str | None, Opt(help="Base: Hub id, diffusers folder, .safetensors (SD 1.5/SDXL), tiny-random.")
    ] = None,
    data: Annotated[
        str | None, Opt(help="Images with captions: .txt sidecars, metadata.jsonl or manifest.jsonl.")
    ] = None,
    out: Annotated[
        str | None, Opt("--out", "-o", help="Output folder (LoRA files, checkpoints, validation).")
    ] = None,
    resume: Annotated[bool, Opt(help="Continue from the newest OUT/checkpoint-N.")] = False,
    check_data: Annotated[
        bool, Opt(help="Run dataset-check first; refuse to train if it lists problems.")
    ] = False,
    rank: Annotated[int | None, Opt(help="LoRA rank (default 4).")] = None,
    alpha: Annotated[float | None, Opt(help="LoRA alpha (default: = rank).")] = None,
    dropout: Annotated[float | None, Opt(help="LoRA dropout (default 0).")] = None,
    target_modules: Annotated[
        str | None, Opt(help="UNet modules, comma separated (default to_q,to_k,to_v,to_out.0).")
    ] = None,
    text_encoder_lora: Annotated[
        bool | None, Opt("--text-encoder-lora/--no-text-encoder-lora", help="Train text-encoder LoRA too.")
    ] = None,
    text_encoder_lr: Annotated[float | None, Opt(help="Text-encoder learning rate (default: --lr).")] = None,
    lr: Annotated[float | None, Opt(help="AdamW learning rate (default 1e-4).")] = None,
    lr_scheduler: Annotated[
        str | None,
        Opt(help="constant | constant_with_warmup | linear | cosine | cosine_with_restarts | polynomial"),
    ] = None,
    warmup_steps: Annotated[int | None, Opt(help="Learning-rate warm-up steps.")] = None,
    steps: Annotated[int | None, Opt(help="Optimiser steps (or --epochs; default 500).")] = None,
    epochs: Annotated[int | None, Opt(help="Passes over the data (instead of --steps).")] = None,
    batch_size: Annotated[int | None, Opt(help="Images per micro-batch.")] = None,
    gradient_accumulation: Annotated[int | None, Opt(help="Micro-batches per optimiser step.")] = None,
    mixed_precision: Annotated[str | None, Opt(help="no | fp16 (CUDA) | bf16")] = None,
    seed: Annotated[int | None, Opt(help="Seed for LoRA init, data order, noise and timesteps.")] = None,
    resolution: Annotated[int | None, Opt(help="Training size in px (divisible by 8; default 512).")] = None,
    center_crop: Annotated[
        bool | None, Opt("--center-crop/--random-crop", help="Crop at the centre or at random.")
    ] = None,
    random_flip: Annotated[
        bool | None, Opt("--random-flip/--no-random-flip", help="Mirror half the images.")
    ] = None,
    aspect_buckets: Annotated[
        bool | None, Opt("--aspect-buckets/--no-aspect-buckets", help="Batch by aspect ratio.")
    ] = None,
    noise_offset: Annotated[float | None, Opt(help="Offset noise strength (e.g. 0.05).")] = None,
    snr_gamma: Annotated[float | None, Opt(help="Min-SNR loss weighting gamma (e.g. 5).")] = None,
    checkpoint_every: Annotated[
        int | None, Opt(help="Checkpoint every N steps (0 = only at the end).")
    ] = None,
    keep_last: Annotated[int | None, Opt(help="Keep the K newest checkpoints.")] = None,
    validate_every: Annotated[
        int | None, Opt(help="Draw + score the validation grid every N steps (0 = off).")
    ] = None,
    trigger: Annotated[str | None, Opt(help="Trigger word prepended to validation prompts.")] = None,
    validation_archetypes: Annotated[
        str | None, Opt(help="Validation archetypes, comma separated (default all).")
    ] = None,
    validation_emotions: Annotated[
        str | None, Opt(help="Validation emotions, comma separated (default active).")
    ] = None,
    validation_cfgs: Annotated[str | None, Opt(help="Validation CFG scales (default 7).")] = None,
    validation_seeds: Annotated[str | None, Opt(help="Validation seeds (default 0).")] = None,
    validation_steps: Annotated[
        int | None, Opt(help="Denoising steps per validation image (default 20).")
    ] = None,
    best_metric: Annotated[
        str | None, Opt(help="harmony | perfect_rate | acceptable_rate | broken_rate | target_match")
    ] = None,
    keep_best: Annotated[
        bool | None, Opt("--keep-best/--no-keep-best", help="Keep the best validation's LoRA in OUT/best.")
    ] = None,
    early_stop_patience: Annotated[
        int | None, Opt(help="Stop after N validations without a better best metric.")
    ] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda | cuda:N | mps")] = None,
    arch: Annotated[str | None, Opt(help="Single-file checkpoints: auto | sd15 | sdxl")] = None,
    model_config: Annotated[
        str | None, Opt(help="Single-file checkpoints: local diffusers folder with the configs.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        Opt("--set", help="Any config key: --set validation_size=128 (repeatable; YAML value)."),
    ] = None,
    progress: Annotated[bool, Opt(help="Show a progress bar (on a terminal).")] = True,
) -> None:
    """Train a LoRA (peft) on captioned images, scoring a validation grid with harmony_eval as it goes.

    Writes OUT/pytorch_lora_weights.safetensors (diffusers), OUT/<name>_kohya.safetensors (A1111),
    OUT/model_card.json, OUT/validation.csv + validation.png, OUT/checkpoint-N/.

    Use the result with `harmony-eval generate --lora OUT`."""
    flags = dict(locals())  # first statement: exactly the parameters
    from generation.cli import fail, split_list
    from generation.pipeline import ModelLoadError, limit_torch_threads, load_pipeline
    from generation.tiny import TINY_MODELS

    from .config import load_config
    from .data import find_captioned_images
    from .lora import train_lora

    given = {
        k: v for k, v in flags.items() if k not in ("config", "resume", "check_data", "progress", "set_")
    }
    try:
        overrides = parse_set(set_ or [])
        for k, v in given.items():
            if k in _LISTS and v is not None:
                v = split_list(v, _LISTS[k], f"--{k.replace('_', '-')}")
            if v is not None or k not in overrides:
                overrides[k] = v  # an explicit flag beats --set
        cfg = load_config(config, overrides)
        cfg.require_paths()
        records = find_captioned_images(cfg.data)
        if check_data:
            from .check import check_dataset, format_report

            report = check_dataset(cfg.data, progress=progress)
            if report["n_problems"]:
                typer.echo(format_report(report), err=True)
                raise ValueError(
                    f"--check-data: {report['n_problems']} problem(s) in {cfg.data} (listed above); fix or "
                    "remove those images, or train without --check-data"
                )
        dtype = {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}[cfg.mixed_precision]
        pipe = load_pipeline(str(cfg.model), cfg.device, dtype, arch=cfg.arch, config=cfg.model_config,
                             safety_checker=False)  # fmt: skip
        meta = {"model": cfg.model, "data": cfg.data}
        with limit_torch_threads(1 if cfg.model in TINY_MODELS else None):
            s = train_lora(pipe, records, cfg, resume=resume, progress=None if progress else False, meta=meta)
    except (ValueError, FileNotFoundError, ModelLoadError) as e:
        raise fail(str(e)) from None
    val = s["validation"] or {}
    best = val.get("best")
    typer.echo(
        f"trained {s['steps']} steps on {s['n_images']} image(s) in {s['seconds']:.1f} s: loss "
        f"{s['loss_first']:.4f} -> {s['loss_mean_last10']:.4f} (mean of last 10)"
        + (f"; {s['stopped']}" if s["stopped"] else "")
        + (f"; best {best['metric']} {best['value']} at step {best['step']}" if best else "")
        + f". LoRA: {s.get('lora_file')} (kohya: {s.get('kohya_file')})"
    )


def captions(
    folder: Annotated[Path, typer.Argument(help="Image folder laid out as <archetype>/<emotion>/image.png.")],
    trigger: Annotated[str | None, Opt(help="Trigger word put first in every caption.")] = None,
    tagger: Annotated[
        bool, Opt(help="Append the image tagger's tags (needs the tagger extra + model).")
    ] = False,
    tagger_model: Annotated[
        str | None, Opt(help="Tagger model (folder or id; default: the tagger's).")
    ] = None,
    tagger_threshold: Annotated[float, Opt(help="Tag probability cut-off.")] = 0.35,
    overwrite: Annotated[bool, Opt(help="Replace existing .txt captions (default: keep them).")] = False,
) -> None:
    """Write a .txt caption beside each image from its folder names (archetype / emotion prompt phrases)."""
    from generation.cli import fail

    from .captions import write_captions

    try:
        r = write_captions(folder, trigger, tagger=tagger, tagger_model=tagger_model,
                           tagger_threshold=tagger_threshold, overwrite=overwrite)  # fmt: skip
    except (ValueError, FileNotFoundError, ImportError) as e:
        raise fail(str(e)) from None
    typer.echo(
        f"{r['written']} caption(s) written, {r['kept']} existing kept ({r['n_images']} images in {folder})"
    )
    for path, text in r["examples"]:
        typer.echo(f"  {path}: {text}")
    if r["without_emotion"]:
        typer.echo(f"warning: {len(r['without_emotion'])} image(s) name no emotion in their folders or file "
                   f"name, first: {r['without_emotion'][0]}", err=True)  # fmt: skip
    if r["metadata_jsonl_present"]:
        typer.echo(f"warning: {folder} has a metadata.jsonl/manifest.jsonl, which training reads before .txt "
                   "captions; remove it to train on these captions", err=True)  # fmt: skip


def dataset_check(
    folder: Annotated[Path, typer.Argument(help="Training folder to check.")],
    report: Annotated[Path | None, Opt(help="Also write the problems to this CSV.")] = None,
    score: Annotated[
        bool, Opt(help="Score images with harmony_eval (anatomy backend) to find broken ones.")
    ] = True,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
) -> None:
    """List unreadable images, images without caption, and images harmony_eval scores broken."""
    from generation.cli import fail

    from .check import check_dataset, format_report, write_report_csv

    try:
        r = check_dataset(folder, score=score, progress=progress)
    except (ValueError, FileNotFoundError) as e:
        raise fail(str(e)) from None
    typer.echo(format_report(r))
    if report:
        write_report_csv(r, report)
    raise typer.Exit(1 if r["n_problems"] else 0)
