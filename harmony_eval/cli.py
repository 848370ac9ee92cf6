"""``harmony-eval``: the command line. Thin: parses options, calls the library, sets the exit code.

Exit codes: 0 = everything scored / check passed; 1 = some files failed / check regressed;
2 = bad input or usage.

``import harmony_eval`` never imports the workflow packages; only this entry point registers their
commands (generate, train, benchmark, summarize, compare, check, calibrate).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli_support import (
    ClickException,
    MissingExtraError,
    PlainHelpCommand,
    command_of,
    missing_extra_message,
    require_extra,
)
from .params import MODULES as PARAM_MODULES

app = typer.Typer(
    name="harmony-eval",
    help="Score facial-expression harmony (eyes, brows, mouth agreeing) in anime face images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: command name -> "module:function" of a workflow package; registered when that module imports.
WORKFLOW_COMMANDS = {
    "generate": "generation.cli:generate",
    "train": "training.cli:train",
    "captions": "training.cli:captions",
    "dataset-check": "training.cli:dataset_check",
    "benchmark": "benchmarks.cli:benchmark",
    "summarize": "benchmarks.cli:summarize",
    "compare": "benchmarks.cli:compare",
    "check": "benchmarks.cli:check",
    "calibrate": "calibration.cli:calibrate",
    "review": "harmony_eval.review.cli:review",  # library subpackage; needs the review extra to run
}


@app.command(cls=PlainHelpCommand)
def score(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder for results.jsonl, report.html, ...")
    ] = Path("harmony_out"),
    backend: Annotated[str, typer.Option(help="auto | anatomy | clip | tagger")] = "auto",
    emotions: Annotated[
        str | None, typer.Option(help="Vocabulary, comma separated (default: emotions.yaml's active ones).")
    ] = None,
    targets: Annotated[Path | None, typer.Option(help="CSV with columns file,emotion.")] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="A generation manifest.jsonl (default: one beside the images).")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="Calibration JSON from `harmony-eval calibrate`.")
    ] = None,
    detectors: Annotated[
        str | None, typer.Option(help="Detector cascade, comma separated (default animeface,mediapipe,crop).")
    ] = None,
    mediapipe_model: Annotated[
        Path | None, typer.Option(help="Path of MediaPipe's face_landmarker.task.")
    ] = None,
    face_from_siblings: Annotated[
        bool,
        typer.Option(
            help="A face no detector finds takes the box of its sibling images (same folder and "
            "canvas, same pixels outside the face; row flag face_from_siblings; --engine local)."
        ),
    ] = True,
    clip_model: Annotated[
        str, typer.Option(help="open_clip model name, hf-hub:org/repo, or a local folder.")
    ] = "ViT-B-32",
    clip_pretrained: Annotated[
        str, typer.Option(help="open_clip pretrained tag or checkpoint path.")
    ] = "laion2b_s34b_b79k",
    clip_cache_dir: Annotated[Path | None, typer.Option(help="Where CLIP weights are cached.")] = None,
    clip_device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps")] = "auto",
    clip_loader: Annotated[
        str, typer.Option(help="open_clip | transformers (Hugging Face CLIPModel folders).")
    ] = "open_clip",
    clip_precision: Annotated[
        str, typer.Option(help="auto | fp32 | fp16 | bf16 (auto: fp16 on GPU, fp32 on CPU).")
    ] = "auto",
    clip_embed_cache: Annotated[
        Path | None, typer.Option(help="Folder caching crop embeddings: rescoring skips the image encoder.")
    ] = None,
    clip_random_init: Annotated[
        bool, typer.Option(help="Random CLIP weights (smoke tests, speed checks).")
    ] = False,
    tagger_model: Annotated[
        str | None,
        typer.Option(help="WD tagger: Hugging Face repo id or a folder with model.onnx + selected_tags.csv."),
    ] = None,
    tagger_device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda (tagger's onnxruntime).")
    ] = None,
    raters: Annotated[
        str | None,
        typer.Option(help="Read every region with several backends, e.g. anatomy,clip or anatomy,tagger."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0 = one per core for larger jobs).")] = 0,
    engine: Annotated[str, typer.Option(help="local (worker processes) | ray (Ray Data actors).")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: cluster to join (auto: `ray start`'s); default local.")
    ] = None,
    max_pixels: Annotated[int, typer.Option(help="Refuse images with more pixels than this.")] = 64_000_000,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="MODULE.FIELD=VALUE",
            help="Set a measurement or detector constant, e.g. mouth.teeth_dark=10 (repeatable; "
            f"modules: {', '.join(PARAM_MODULES)}).",
        ),
    ] = None,
    param_file: Annotated[
        Path | None,
        typer.Option(help='JSON of measurement constants, {"mouth.teeth_dark": 10, ...}; --param wins.'),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Score every image under INPUTS into OUT (results.jsonl/csv/parquet, run.json, report.html).

    Re-running with the same --out resumes: images that already have a row are skipped."""
    from .runner import score_folder

    rater_names = [r.strip() for r in raters.split(",") if r.strip()] if raters else []
    if rater_names:
        backend = "raters"  # every region read by each rater; see backends/raters.py
    # say which packages are missing before anything asks for weights
    if backend == "clip" or "clip" in rater_names:
        require_extra("clip", "--backend clip", ("torch", "open_clip"))
    if backend == "tagger" or "tagger" in rater_names:
        require_extra("tagger", "--backend tagger", ("onnxruntime", "huggingface_hub"))
    if engine == "ray":
        require_extra("ray", "--engine ray", ("ray",))
    options = {"mediapipe_model": str(mediapipe_model) if mediapipe_model else None}
    if not face_from_siblings:
        options["face_from_siblings"] = False
    if rater_names:
        options["raters"] = ",".join(rater_names)
    if backend == "tagger" or "tagger" in rater_names:
        options.update(tagger_model=tagger_model, tagger_device=tagger_device)
    if backend in ("clip", "auto") or "clip" in rater_names:
        options.update(
            clip_model=clip_model,
            clip_pretrained=clip_pretrained,
            clip_device=clip_device,
            clip_cache_dir=str(clip_cache_dir) if clip_cache_dir else None,
            clip_loader=clip_loader,
            clip_precision=clip_precision,
            clip_embed_cache=str(clip_embed_cache) if clip_embed_cache else None,
            clip_random_init=clip_random_init or None,
        )
    options = {k: v for k, v in options.items() if v is not None}
    if param or param_file:  # checked here, so a bad name is a one-line --param error (exit 2)
        from .params import cli_overrides

        options["params"] = cli_overrides(param, param_file)
    summary = score_folder(
        [str(p) for p in inputs] if len(inputs) > 1 else str(inputs[0]),
        out,
        workers=workers,
        engine=engine,
        ray_address=ray_address,
        progress=progress and sys.stderr.isatty(),
        report=report,
        targets_csv=targets,
        manifest=manifest,
        backend=backend,
        emotions=emotions,
        detectors=detectors.split(",") if detectors else None,
        calibration=calibration,
        max_pixels=max_pixels,
        **options,
    )
    counts = {
        v: sum(r.get("verdict") == v for r in summary.rows) for v in ("perfect", "acceptable", "broken")
    }
    typer.echo(
        f"{summary.n_total} image(s) in {out}/results.jsonl ({summary.n_scored} scored now, "
        f"{summary.n_errors} error(s)): perfect {counts['perfect']}, acceptable {counts['acceptable']}, "
        f"broken {counts['broken']}." + (f" Report: {out / 'report.html'}" if report else "")
    )
    if summary.n_errors:
        typer.echo(f"{summary.n_errors} file(s) could not be scored; see rows with status 'error'.", err=True)
    if summary.reader:  # the last line: what the verdicts above are worth
        from .reader_info import summary_line

        typer.echo(summary_line(summary.reader))
    raise typer.Exit(summary.exit_code)


@app.command(cls=PlainHelpCommand)
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


def _import_workflow(module: str):
    """A workflow module: an installed wheel keeps the workflow packages in ``harmony_eval.workflows``
    (see hatch_build.py: no generic top-level ``calibration`` in site-packages); a source checkout
    has them as top-level folders."""
    top = module.partition(".")[0]
    if top in ("generation", "training", "benchmarks", "calibration"):
        try:
            return importlib.import_module(f"harmony_eval.workflows.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"harmony_eval.workflows.{top}":
                raise  # the installed copy exists but lacks a dependency: say that, do not fall back
    return importlib.import_module(module)


def _register_workflows() -> None:
    """Add the workflow commands whose packages are importable (they are optional)."""
    for name, target in WORKFLOW_COMMANDS.items():
        module, _, attr = target.partition(":")
        try:
            func = getattr(_import_workflow(module), attr)
        except (ImportError, AttributeError) as e:
            logging.getLogger(__name__).debug("command %s unavailable: %s", name, e)
            continue
        app.command(name, cls=PlainHelpCommand)(func)


_register_workflows()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (callable from tests)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = app(args=args, prog_name="harmony-eval", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        code = e.exit_code
    except SystemExit as e:  # a library that calls sys.exit
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except ClickException as e:  # typer's usage errors (no command, typo, bad value): its own message
        e.show()
        return 2 if e.exit_code == 1 else e.exit_code  # usage and bad input share code 2 here
    except typer.Abort:
        return 1
    except MissingExtraError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    except ModuleNotFoundError as e:  # an optional dependency a command needs is not installed
        typer.echo(f"error: {missing_extra_message(command_of(args), e.name)}", err=True)
        return 2
    except (FileNotFoundError, ValueError) as e:  # bad input: say what and where, no traceback
        typer.echo(f"error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer turns KeyboardInterrupt into Exit(130) before it reaches us
        typer.echo("interrupted; rerun the same command to resume", err=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
