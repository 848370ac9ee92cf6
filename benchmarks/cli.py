"""Workflow commands ``benchmark``, ``summarize``, ``compare`` and ``check`` (registered by harmony_eval.cli).

Plain typer-annotated functions: each sets its exit code with ``typer.Exit`` (0 ok, 1 check failed /
some images failed, 2 bad input) and prints errors that name the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from generation.cli import (
    ArchetypesOpt,
    ArchOpt,
    CfgsOpt,
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    EmotionsOpt,
    HeightOpt,
    LoraOpt,
    LoraScaleOpt,
    LoraScalesOpt,
    ModelOpt,
    NegativeOpt,
    SafetyOpt,
    SchedulerOpt,
    SeedsOpt,
    StepsOpt,
    TemplateOpt,
    WidthOpt,
    split_list,
)

from .runs import RunError

_METRIC_HELP = "harmony | perfect_rate | target_match | broken_rate | acceptable_rate (repeatable)."


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(2)


def summarize(
    run: Annotated[Path, typer.Argument(help="Run folder holding results.jsonl (+ manifest.jsonl).")],
    out: Annotated[Path | None, typer.Option(help="Folder for the summary files (default: RUN).")] = None,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples per interval.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed (same seed, same numbers).")] = 0,
) -> None:
    """Summarize a run: verdict rates, target match and harmony with 95% bootstrap intervals.

    Overall and by archetype / emotion / CFG / LoRA scale, flag counts and per-region confusion against
    the target. Writes summary.md/.csv/.json/.png/.html into RUN (or --out); prints the table."""
    from .report import write_summary
    from .runs import load_run
    from .summary import summarize as summarize_run
    from .summary import to_markdown

    try:
        loaded = load_run(run)
    except RunError as e:
        raise _fail(e) from None
    s = summarize_run(loaded, n_boot=n_boot, seed=seed)
    files = write_summary(loaded, s, out)
    typer.echo(to_markdown(s, matrices=False))
    typer.echo(f"confusion matrices per region: {files['md']}", err=True)
    typer.echo(f"wrote {', '.join(str(p) for p in files.values())}", err=True)


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders; the first is the reference.")],
    out: Annotated[
        Path | None, typer.Option(help="Write compare.md and compare.json here (default: print only).")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the paired tests.")] = 0.05,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Compare runs: tables side by side and paired tests of every run against the first.

    Images pair on the same prompt + seed (+ CFG); McNemar on perfect / broken / target match, paired
    bootstrap on harmony; one sentence per metric says which run is better and if it is significant."""
    from .compare import compare_runs, to_markdown
    from .runs import load_run

    if len(runs) < 2:
        raise _fail(ValueError(f"compare needs at least two run folders, got {len(runs)}"))
    if not 0 < alpha < 1:
        raise _fail(ValueError(f"--alpha must be in (0, 1), got {alpha}"))
    try:
        loaded = [load_run(r) for r in runs]
    except RunError as e:
        raise _fail(e) from None
    result = compare_runs(loaded, alpha=alpha, n_boot=n_boot, seed=seed)
    text = to_markdown(result)
    typer.echo(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text, encoding="utf-8")
        (out / "compare.json").write_text(
            json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        typer.echo(f"wrote {out / 'compare.md'} and {out / 'compare.json'}", err=True)


def check(
    run: Annotated[Path, typer.Argument(help="Run folder holding results.jsonl (from score or benchmark).")],
    baseline: Annotated[Path, typer.Option(help="Baseline JSON (written by --write-baseline).")],
    max_drop: Annotated[
        float, typer.Option(help="Largest allowed drop of a metric (absolute, metrics in [0, 1]).")
    ] = 0.05,
    metric: Annotated[list[str] | None, typer.Option(help=_METRIC_HELP)] = None,
    max_image_delta: Annotated[
        float | None,
        typer.Option(
            help="Strict: also fail when any image's harmony moved more than this (either way), "
            "its verdict changed, or it is missing."
        ),
    ] = None,
    max_changed: Annotated[
        int | None,
        typer.Option(
            help="Fail when more than K images changed: verdict, harmony beyond --max-image-delta "
            "(else --max-drop), or lost their score."
        ),
    ] = None,
    max_coverage_drop: Annotated[
        int, typer.Option(help="Images scored / faces read the run may lose against the baseline.")
    ] = 0,
    write_baseline: Annotated[
        bool, typer.Option("--write-baseline", help="Write BASELINE from RUN instead of checking.")
    ] = False,
    per_image: Annotated[bool, typer.Option(help="Store per-image harmony in a written baseline.")] = True,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also fail on warnings: another scoring config_hash than the baseline's, a metric "
            "the baseline lacks for an emotion.",
        ),
    ] = False,
) -> None:
    """Regression gate: compare RUN with a baseline; exit 1 with a table when a metric regressed.

    Every --metric (default harmony, perfect_rate, broken_rate) is checked overall and per target
    emotion over the baseline's images: an image the run lost counts as harmony 0 and broken, and
    fewer images scored or faces read than the baseline fails on its own. Exit 0 when within
    --max-drop of the baseline, 1 when something regressed, 2 on bad input. --write-baseline writes
    BASELINE instead."""
    from .gate import DEFAULT_METRICS, format_result, read_baseline
    from .gate import check as run_check
    from .gate import write_baseline as write
    from .runs import load_run
    from .summary import METRICS

    metrics = metric or list(DEFAULT_METRICS)
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise _fail(ValueError(f"--metric {bad[0]!r} is not a metric; choose from {list(METRICS)}"))
    if max_drop < 0 or (max_image_delta is not None and max_image_delta < 0):
        raise _fail(
            ValueError(f"--max-drop / --max-image-delta must be >= 0, got {max_drop} / {max_image_delta}")
        )
    if (max_changed is not None and max_changed < 0) or max_coverage_drop < 0:
        raise _fail(
            ValueError(
                f"--max-changed / --max-coverage-drop must be >= 0, got {max_changed} / {max_coverage_drop}"
            )
        )
    try:
        loaded = load_run(run)
        if write_baseline:
            b = write(loaded, baseline, per_image=per_image)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in b["metrics"].items() if v is not None)
            typer.echo(f"wrote baseline {baseline} from {run} ({b['n']} images): {shown}")
            return
        result = run_check(read_baseline(baseline), loaded, metrics, max_drop, max_image_delta,
                           max_changed=max_changed, max_coverage_drop=max_coverage_drop, strict=strict)  # fmt: skip
    except RunError as e:
        raise _fail(e) from None
    typer.echo(f"check {run} against {baseline} (max drop {max_drop})")
    typer.echo(format_result(result))
    if not result.passed:
        raise typer.Exit(1)


def benchmark(
    model: ModelOpt,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder: images/, manifest.jsonl, results.jsonl, summary.*"),
    ],
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
    backend: Annotated[str, typer.Option(help="Scoring backend: auto | anatomy | clip")] = "auto",
    calibration: Annotated[Path | None, typer.Option(help="Calibration JSON for scoring.")] = None,
    mediapipe_model: Annotated[
        Path | None, typer.Option(help="Path of MediaPipe's face_landmarker.task.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Scoring worker processes (0 = automatic).")] = 0,
    engine: Annotated[str, typer.Option(help="Scoring engine: local | ray (Ray Data actors).")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: cluster to join (auto: `ray start`'s); default local.")
    ] = None,
    summary: Annotated[bool, typer.Option(help="Write summary.* and print the table.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars (on a terminal).")] = True,
) -> None:
    """Generate the prompt grid with MODEL, score it and summarize it into one run folder.

    OUT gets images/, manifest.jsonl (targets), results.jsonl, run.json and summary.*; reruns resume.
    Generation options are those of `generate`."""
    from generation.run import run_generation
    from harmony_eval.resources import default_emotions
    from harmony_eval.runner import score_folder

    show = progress and _stderr_tty()
    if engine not in ("local", "ray"):
        raise _fail(ValueError(f"--engine {engine!r} is not an engine; choose local or ray."))
    if engine == "ray":  # before generating: a missing Ray must not cost a generation run
        from harmony_eval.cli_support import require_extra

        try:
            require_extra("ray", "--engine ray", ("ray",))
        except ImportError as e:
            raise _fail(e) from None
    try:
        gen_emotions = split_list(emotions, str, "--emotions")
        scales = split_list(lora_scales, float, "--lora-scales") or ([lora_scale] if lora else None)
        gen = run_generation(
            out, model, archetypes=split_list(archetypes, str, "--archetypes"), emotions=gen_emotions,
            cfgs=split_list(cfgs, float, "--cfgs"), seeds=split_list(seeds, int, "--seeds"), template=template,
            negative=negative, scheduler=scheduler, steps=steps, width=width, height=height, lora=lora,
            lora_scales=scales, device=device, dtype=dtype, arch=arch, config=config,
            safety_checker=safety_checker, progress=show,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        raise _fail(e) from None
    # Score with the default vocabulary plus any target outside it (e.g. surprised), so every target
    # can be matched.
    vocab = default_emotions()
    extra = [e for e in (gen_emotions or []) if e not in vocab]
    options = {"mediapipe_model": str(mediapipe_model)} if mediapipe_model else {}
    scored = score_folder(
        out / "images", out, workers=workers, engine=engine, ray_address=ray_address, progress=show,
        manifest=out / "manifest.jsonl",
        backend=backend, emotions=vocab + extra if extra else None, calibration=calibration,
        argv=sys.argv, **options,
    )  # fmt: skip
    typer.echo(
        f"{gen['total']} image(s) in {out} ({gen['generated']} generated now, {gen['seconds']:.1f} s; "
        f"{scored.n_scored} scored now, {scored.seconds:.1f} s, {scored.n_errors} error(s))",
        err=True,
    )
    if summary:
        from .report import write_summary
        from .runs import load_run
        from .summary import summarize as summarize_run
        from .summary import to_markdown

        loaded = load_run(out)
        s = summarize_run(loaded)
        write_summary(loaded, s)
        typer.echo(to_markdown(s, matrices=False))
    raise typer.Exit(scored.exit_code)


def _stderr_tty() -> bool:
    return sys.stderr.isatty()
