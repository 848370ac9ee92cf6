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

from .runs import RunError

_METRIC_HELP = "harmony | perfect_rate | target_match | broken_rate | acceptable_rate (repeatable)."


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(2)


def summarize(
    run: Annotated[Path, typer.Argument(help="Run folder holding results.jsonl (+ manifest.jsonl).")],
    out: Annotated[Path | None, typer.Option(help="Folder for the summary files (default: RUN).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed (same seed, same numbers).")] = 0,
) -> None:
    """Verdict rates, target match and harmony overall and by archetype / emotion / CFG / LoRA scale,
    with 95% bootstrap intervals. Writes summary.md/.csv/.json/.png/.html; prints the table."""
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
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Side-by-side tables and paired tests (McNemar on perfect/broken/target match, paired bootstrap on
    harmony) of every run against the first, over images with the same prompt + seed."""
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
        typer.Option(help="Also fail when any image's harmony moved more than this (either way)."),
    ] = None,
    write_baseline: Annotated[
        bool, typer.Option("--write-baseline", help="Write BASELINE from RUN instead of checking.")
    ] = False,
    per_image: Annotated[bool, typer.Option(help="Store per-image harmony in a written baseline.")] = True,
) -> None:
    """Regression gate: exit 0 when every metric (overall and per emotion) is within --max-drop of the
    baseline, 1 with a table of what regressed, 2 on bad input."""
    from .gate import check as run_check
    from .gate import format_result, read_baseline
    from .gate import write_baseline as write
    from .runs import load_run
    from .summary import METRICS

    metrics = metric or ["harmony"]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise _fail(ValueError(f"--metric {bad[0]!r} is not a metric; choose from {list(METRICS)}"))
    if max_drop < 0 or (max_image_delta is not None and max_image_delta < 0):
        raise _fail(
            ValueError(f"--max-drop / --max-image-delta must be >= 0, got {max_drop} / {max_image_delta}")
        )
    try:
        loaded = load_run(run)
        if write_baseline:
            b = write(loaded, baseline, per_image=per_image)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in b["metrics"].items() if v is not None)
            typer.echo(f"wrote baseline {baseline} from {run} ({b['n']} images): {shown}")
            return
        result = run_check(read_baseline(baseline), loaded, metrics, max_drop, max_image_delta)
    except RunError as e:
        raise _fail(e) from None
    typer.echo(f"check {run} against {baseline} (max drop {max_drop})")
    typer.echo(format_result(result))
    if not result.passed:
        raise typer.Exit(1)


def benchmark(
    model: Annotated[
        str,
        typer.Option(help="diffusers model: Hugging Face id, local folder, .safetensors, or tiny-random."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder: images/, manifest.jsonl, results.jsonl, summary.*"),
    ],
) -> None:  # pragma: no cover - replaced below once generation's API is wired in
    """Generate the prompt grid with MODEL and score it into one run folder (then summarize it)."""
    raise typer.Exit(2)


def _stderr_tty() -> bool:
    return sys.stderr.isatty()
