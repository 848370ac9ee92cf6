"""``harmony-eval generate``: draw the prompt grid with a diffusers model into a run folder.

A plain typer-annotated function; ``harmony_eval.cli`` registers it as a subcommand.
Exit codes: 0 = done (images drawn or already there); 2 = bad arguments or model not loadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def split_list(text: str | None, cast: type, option: str) -> list | None:
    """``"5,7,9"`` -> ``[5.0, 7.0, 9.0]``; None/empty -> None. Errors name the option."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return [cast(p) for p in parts]
    except ValueError:
        kind = "numbers" if cast is float else "integers" if cast is int else "values"
        raise ValueError(f"`{option}` expects comma-separated {kind} (e.g. 5,7,9), got {text!r}") from None


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit-2 exception to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


# Options shared with `harmony-eval benchmark` (benchmarks/cli.py imports these): one definition each.
ModelOpt = Annotated[
    str,
    typer.Option(
        help="Hugging Face id, local diffusers folder, single .safetensors checkpoint, or tiny-random[-xl]."
    ),
]
ArchetypesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated archetypes (default: all in archetypes.yaml).")
]
EmotionsOpt = Annotated[str | None, typer.Option(help="Comma-separated emotions (default: the active ones).")]
CfgsOpt = Annotated[str, typer.Option(help="Comma-separated CFG scales.")]
SeedsOpt = Annotated[str, typer.Option(help="Comma-separated seeds (one image per seed per cell).")]
TemplateOpt = Annotated[int, typer.Option(help="Index of the prompt template in templates.txt.")]
NegativeOpt = Annotated[
    str | None, typer.Option(help='Negative prompt (default: prompts/negative.txt; "" for none).')
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(help="euler, euler_a, dpm++, dpm++_karras, dpm++_sde, ddim, pndm, lms, heun, unipc, deis."),
]
StepsOpt = Annotated[int, typer.Option(help="Denoising steps.")]
WidthOpt = Annotated[int | None, typer.Option(help="Width in px, divisible by 8 (default: model's).")]
HeightOpt = Annotated[int | None, typer.Option(help="Height in px, divisible by 8 (default: model's).")]
LoraOpt = Annotated[
    str | None, typer.Option(help="LoRA .safetensors file or folder (e.g. from harmony-eval train).")
]
LoraScaleOpt = Annotated[float, typer.Option(help="LoRA strength (0 = base model).")]
LoraScalesOpt = Annotated[
    str | None,
    typer.Option(help="Sweep: comma-separated LoRA scales, e.g. 0,0.5,1 (overrides --lora-scale)."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")]
DtypeOpt = Annotated[str, typer.Option(help="auto | float32 | float16 | bfloat16")]
ArchOpt = Annotated[str, typer.Option(help="Single-file checkpoints: auto | sd15 | sdxl")]
ConfigOpt = Annotated[
    str | None, typer.Option(help="Single-file checkpoints: local diffusers folder with the configs.")
]
SafetyOpt = Annotated[bool, typer.Option(help="Keep the model's NSFW safety checker, if it has one.")]


def generate(
    model: ModelOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (images/, manifest.jsonl).")],
    archetypes: ArchetypesOpt = None,
    emotions: EmotionsOpt = None,
    cfgs: CfgsOpt = "5,7,9",
    seeds: SeedsOpt = "0",
    template: TemplateOpt = 0,
    negative: NegativeOpt = None,
    scheduler: SchedulerOpt = None,
    steps: StepsOpt = 20,
    width: WidthOpt = None,
    height: HeightOpt = None,
    lora: LoraOpt = None,
    lora_scale: LoraScaleOpt = 1.0,
    lora_scales: LoraScalesOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    arch: ArchOpt = "auto",
    config: ConfigOpt = None,
    safety_checker: SafetyOpt = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
) -> None:
    """Generate archetypes x emotions x CFG scales x seeds (x LoRA scales) portraits into OUT.

    Each image is a PNG with A1111-style `parameters` metadata; OUT/manifest.jsonl has one row per image.

    Rerunning with the same OUT skips images already there."""
    from .pipeline import ModelLoadError
    from .run import run_generation

    try:
        scales = split_list(lora_scales, float, "--lora-scales") or ([lora_scale] if lora else None)
        summary = run_generation(
            out,
            model,
            archetypes=split_list(archetypes, str, "--archetypes"),
            emotions=split_list(emotions, str, "--emotions"),
            cfgs=split_list(cfgs, float, "--cfgs") or [],
            seeds=split_list(seeds, int, "--seeds") or [],
            template=template,
            negative=negative,
            scheduler=scheduler,
            steps=steps,
            width=width,
            height=height,
            lora=lora,
            lora_scales=scales,
            device=device,
            dtype=dtype,
            arch=arch,
            config=config,
            safety_checker=safety_checker,
            progress=None if progress else False,
        )
    except (ValueError, FileNotFoundError, ModelLoadError) as e:
        raise fail(str(e)) from None
    rate = f", {summary['images_per_second']:.2f} img/s" if summary["images_per_second"] else ""
    typer.echo(
        f"{summary['total']} image(s) in {out / 'manifest.jsonl'}: {summary['generated']} generated, "
        f"{summary['skipped']} already there ({summary['seconds']:.1f} s{rate}; "
        f"{summary['pipeline']} on {summary['device']}, {summary['dtype']})"
    )
    if summary["nsfw_flagged"]:
        typer.echo(
            f"warning: the model's safety checker blacked out {summary['nsfw_flagged']} image(s); "
            "delete them and rerun with --no-safety-checker to keep what it drew",
            err=True,
        )
