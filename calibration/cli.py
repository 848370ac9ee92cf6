"""``harmony-eval calibrate``: fit the evaluator to human labels and report how well it agrees.

Registered by ``harmony_eval.cli`` (``WORKFLOW_COMMANDS``); also callable as ``run_calibration(...)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def run_calibration(
    images: str | Path,
    labels: str | Path,
    out: str | Path,
    *,
    cv: int | None = None,
    backend: str = "auto",
    emotions: str | list[str] | None = None,
    ignore_unknown: bool = False,
    method: str = "auto",
    model: str = "auto",
    prior: str = "balanced",
    C: float = 0.5,
    bootstrap: int = 1000,
    seed: int = 0,
    workers: int = 1,
    detectors: list[str] | None = None,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Score the labelled images, fit ``OUT/calibration.json`` on all of them, evaluate out of sample
    (``cv`` folds or a 25 % hold-out) and write the report. Returns the ``report.json`` content."""
    from harmony_eval.resources import resolve_emotions

    from .evaluate import Dataset, build_calibration, evaluate
    from .features import score_images
    from .fit import FitOptions
    from .labels import read_labels
    from .report import figures, write_report

    opts = FitOptions(method=method, model=model, prior=prior, C=C, seed=seed)  # checked before the slow part
    if bootstrap < 0:
        raise ValueError(f"--bootstrap {bootstrap}: expected 0 (no intervals) or more resamples")
    vocab = resolve_emotions(emotions)
    lab = read_labels(labels, images, vocab, ignore_unknown)
    files = [str(r["file"]) for r in lab.rows]
    scorer, items = score_images(
        files,
        backend=backend,
        emotions=vocab,
        detectors=detectors,
        workers=workers,
        progress=progress,
        **options,
    )
    ds = Dataset(lab, items, scorer, vocab)
    results = evaluate(ds, opts, cv)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    idx = [i for i, s in enumerate(items) if s.row.get("status") in ("ok", "no_face")]
    cal = build_calibration(ds, idx, opts)
    cal.training.update(images=str(images), cv=cv, n_images=len(idx))
    cal_path = cal.save(out_dir / "calibration.json")
    status = [s.row.get("status") for s in items]
    summary = {
        "n": len(idx), "cv": cv, "evaluation": f"{cv}-fold" if cv else "holdout-25%",
        "backend": scorer.backend_name, "emotions": vocab, "labels": str(labels), "images": str(images),
        "n_labelled": len(lab.rows), "n_dropped": len(lab.dropped), "n_no_face": status.count("no_face"),
        "n_error": status.count("error"), "calibration_file": str(cal_path),
        "verdict_thresholds": cal.verdict_thresholds,
        "models": {r: m.summary for r, m in cal.models.items()},
    }  # fmt: skip
    figs = figures(results, bootstrap, seed)
    write_report(out_dir, summary, results, figs)
    return {**summary, **figs}


def calibrate(
    images: Annotated[Path, typer.Option("--images", help="Folder of the labelled images.")],
    labels: Annotated[
        Path,
        typer.Option("--labels", help="CSV (file + emotion/eyes/brows/mouth/verdict) or Label Studio JSON."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for calibration.json and the report.")],
    cv: Annotated[
        int | None, typer.Option("--cv", help="K-fold cross-validated figures (default: a 25% hold-out).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="auto | anatomy | clip: whose features to calibrate.")
    ] = "auto",
    emotions: Annotated[str | None, typer.Option(help="Vocabulary, comma separated.")] = None,
    ignore_unknown: Annotated[
        bool, typer.Option("--ignore-unknown", help="Drop rows whose labels are outside the vocabulary.")
    ] = False,
    method: Annotated[
        str,
        typer.Option(
            help="Probability calibration: auto (lowest CV log loss) | sigmoid | temperature | none."
        ),
    ] = "auto",
    model: Annotated[
        str,
        typer.Option(
            help="auto | scaling (recalibrate the backend's reading) | full (classifier on features)."
        ),
    ] = "auto",
    prior: Annotated[
        str,
        typer.Option(help="Class prior of the probabilities: balanced (every emotion alike) | empirical."),
    ] = "balanced",
    c: Annotated[float, typer.Option("--C", help="Inverse L2 strength of the logistic regression.")] = 0.5,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of folds and bootstrap.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes for loading + detection.")] = 1,
    detectors: Annotated[str | None, typer.Option(help="Detector cascade, comma separated.")] = None,
    mediapipe_model: Annotated[Path | None, typer.Option(help="MediaPipe face_landmarker.task.")] = None,
    clip_model: Annotated[str | None, typer.Option(help="CLIP model (see `score`).")] = None,
    clip_pretrained: Annotated[str | None, typer.Option(help="CLIP pretrained tag or checkpoint.")] = None,
    clip_loader: Annotated[str | None, typer.Option(help="open_clip | transformers")] = None,
    clip_embed_cache: Annotated[
        Path | None, typer.Option(help="Folder caching CLIP crop embeddings.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> int:
    """Fit calibrated region classifiers (and verdict thresholds) to human labels; write
    OUT/calibration.json (for `score --calibration`) and OUT/report.{md,html,json} with plots."""
    options = {
        "mediapipe_model": str(mediapipe_model) if mediapipe_model else None,
        "clip_model": clip_model, "clip_pretrained": clip_pretrained, "clip_loader": clip_loader,
        "clip_embed_cache": str(clip_embed_cache) if clip_embed_cache else None,
    }  # fmt: skip
    rep = run_calibration(
        images, labels, out, cv=cv, backend=backend, emotions=emotions, ignore_unknown=ignore_unknown,
        method=method, model=model, prior=prior, C=c, bootstrap=bootstrap, seed=seed, workers=workers,
        detectors=detectors.split(",") if detectors else None, progress=progress and sys.stderr.isatty(),
        **{k: v for k, v in options.items() if v is not None},
    )  # fmt: skip
    parts = [
        f"{t} bal.acc {rep[t]['balanced_accuracy']} kappa {rep[t]['kappa']}"
        for t in ("face", "eyes", "brows", "mouth", "verdict") if t in rep
    ]  # fmt: skip
    typer.echo(f"{rep['n']} labelled images; " + "; ".join(parts) + f". Report: {Path(out) / 'report.md'}")
    return 0
