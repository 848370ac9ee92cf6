"""``harmony-eval calibrate``: fit the evaluator to human labels and report how well it agrees.

Registered by ``harmony_eval.cli`` (``WORKFLOW_COMMANDS``); also callable as ``run_calibration(...)``.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def _score(
    files: list[str],
    vocab: list[str],
    backend: str,
    detectors: list[str] | None,
    workers: int,
    progress: bool,
    options: dict[str, Any],
) -> tuple[Any, list[Any]]:
    """The uncalibrated scorer and its ``Scored`` items over ``files`` (``features.score_images``):
    the one scoring call of fitting and of --suggest, so both see the same options."""
    from .features import score_images

    return score_images(
        files, backend=backend, emotions=vocab, detectors=detectors, workers=workers, progress=progress,
        **options,
    )  # fmt: skip


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
    C: float = 0.05,
    bootstrap: int = 1000,
    seed: int = 0,
    workers: int = 1,
    detectors: list[str] | None = None,
    progress: bool = False,
    curve: bool = True,
    curve_repeats: int = 3,
    **options: Any,
) -> dict[str, Any]:
    """Score the labelled images, fit ``OUT/calibration.json`` on all of them, evaluate out of sample
    (``cv`` folds or a 25 % hold-out), draw the learning curve (``curve``) and write the report.
    Returns the ``report.json`` content."""
    from harmony_eval.resources import resolve_emotions

    from .copies import copy_groups, disagreements, n_copies
    from .evaluate import Dataset, build_calibration, evaluate
    from .fit import FitOptions
    from .labels import read_labels
    from .report import figures, write_report

    opts = FitOptions(method=method, model=model, prior=prior, C=C, seed=seed)  # checked before the slow part
    if bootstrap < 0:
        raise ValueError(f"--bootstrap {bootstrap}: expected 0 (no intervals) or more resamples")
    vocab = resolve_emotions(emotions)
    lab = read_labels(labels, labels_root(images), vocab, ignore_unknown)
    files = [str(r["file"]) for r in lab.rows]
    scorer, items = _score(files, vocab, backend, detectors, workers, progress, options)
    groups = copy_groups(items, progress=progress)
    ds = Dataset(lab, items, scorer, vocab, groups=groups)
    results = evaluate(ds, opts, cv)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    idx = [i for i, s in enumerate(items) if s.row.get("status") in ("ok", "no_face")]
    cal = build_calibration(ds, idx, opts)
    cal.training.update(images=str(images), cv=cv, n_images=len(idx), n_copies=n_copies(groups))
    if scorer.settings.params:  # score --calibration refuses it under other ones (params.check_calibration)
        from harmony_eval.params import as_dict

        cal.training["params"] = as_dict(scorer.settings.params)
    cal_path = cal.save(out_dir / "calibration.json")
    status = [s.row.get("status") for s in items]
    summary = {
        "n": len(idx), "cv": cv, "evaluation": f"{cv}-fold" if cv else "holdout-25%",
        "backend": scorer.backend_name, "emotions": vocab, "labels": str(labels), "images": str(images),
        "n_labelled": len(lab.rows), "n_dropped": len(lab.dropped), "n_no_face": status.count("no_face"),
        "n_error": status.count("error"), "n_copies": n_copies(groups),
        "copies_labelled_differently": disagreements(groups, lab.rows, lab.targets),
        "calibration_file": str(cal_path),
        "verdict_thresholds": cal.verdict_thresholds,
        "models": {r: m.summary for r, m in cal.models.items()},
    }  # fmt: skip
    figs = figures(results, bootstrap, seed)
    if "face" in figs:  # what `score` says a calibrated reading is worth (reader_info)
        f = figs["face"]
        cal.training.update(
            n_labels=len(idx),
            cv={"balanced_accuracy": f["balanced_accuracy"], "ci95": f["ci95"]["balanced_accuracy"],
                "n": f["n"], "folds": cv or "holdout-25%"},
        )  # fmt: skip
        cal.save(cal_path)
    if curve and "emotion" in lab.targets:
        from .curve import learning_curve, plot_curve

        try:
            lc = learning_curve(ds, opts, repeats=curve_repeats, seed=seed, progress=progress)
        except ValueError as e:  # too few labels for a curve: say so in the report, fit anyway
            summary["learning_curve"] = {"error": str(e)}
        else:
            (out_dir / "plots").mkdir(parents=True, exist_ok=True)
            plot_curve({"random order": lc}, out_dir / "plots" / "learning_curve.png", 1 / len(vocab))
            summary["learning_curve"] = lc
    write_report(out_dir, summary, results, figs)
    return {**summary, **figs}


def suggest_files(images: str | Path) -> tuple[list[str], Path]:
    """Images to choose from: a folder's images, or a scored run's (its ``results.jsonl`` paths)."""
    from harmony_eval.imageio import list_images

    root = Path(images)
    if (root / "results.jsonl").is_file():
        from harmony_eval.jsonl import read_jsonl

        files = [row["path"] for _, row in read_jsonl(root / "results.jsonl") if Path(row["path"]).is_file()]
        return sorted(dict.fromkeys(files)), Path(os.path.commonpath(files)) if files else root
    if not root.exists():
        raise FileNotFoundError(f"--images {root}: no such folder")
    return [str(p) for p in list_images([root])], root


def labels_root(images: str | Path) -> Path:
    """The folder a labels file's relative paths are read from: ``--images`` itself, or for a scored
    run the folder its images share (what ``--suggest`` writes them relative to; ``calibrate --images
    RUN --labels RUN_SUGGESTED.csv`` found none of them before)."""
    return suggest_files(images)[1] if (Path(images) / "results.jsonl").is_file() else Path(images)


def run_suggest(
    images: str | Path,
    out: str | Path,
    n: int,
    *,
    labels: str | Path | None = None,
    backend: str = "auto",
    emotions: str | list[str] | None = None,
    workers: int = 1,
    detectors: list[str] | None = None,
    progress: bool = False,
    **options: Any,
) -> Path:
    """Score the images under ``images`` (a folder or a scored run) and write ``OUT/suggested.csv``:
    the ``n`` unlabelled ones to label next (``suggest.suggest_order``: diverse faces first, then the
    ones a reader fitted on the labels so far is least sure of; not shown to beat random order),
    as a labels CSV ready to fill in. Images already in ``labels`` are skipped (and count as covered);
    their face labels fit the reader whose uncertainty ranks the rest (no labels: diversity only)."""
    from harmony_eval.resources import resolve_emotions

    from .copies import copy_groups
    from .labels import read_labels
    from .suggest import suggest_order, write_suggestions

    if n < 1:
        raise ValueError(f"--suggest {n}: expected how many images to suggest (1 or more)")
    vocab = resolve_emotions(emotions)
    files, root = suggest_files(images)
    if not files:
        raise ValueError(f"--images {images}: no images found to suggest from")
    done: set[str] = set()
    face_labels: dict[str, str | None] = {}
    given: list[dict] = []  # the labels so far: carried into the new file, above the suggestions
    if labels is not None:
        lab = read_labels(labels, root, vocab, ignore_unknown=True)
        given = lab.rows
        done = {str(Path(str(r["file"])).resolve()) for r in lab.rows}
        face_labels = {str(Path(str(r["file"])).resolve()): r.get("emotion") for r in lab.rows}
    scorer, items = _score(files, vocab, backend, detectors, workers, progress, options)
    named = [scorer.reading_features(s.pred) if s.ok else None for s in items]
    labelled = [i for i, f in enumerate(files) if str(Path(f).resolve()) in done]
    # one image of each set of copies (an RGBA sprite and its copy on white): a second copy teaches
    # nothing, and a copy of a labelled image is labelled already: neither is a candidate
    is_labelled, groups = set(labelled), copy_groups(items, progress=progress)
    seen, copies = {groups[i] for i in labelled}, []
    for i, g in enumerate(groups):
        if i not in is_labelled and g in seen:
            copies.append(i)
        seen.add(g)
    # the labels given so far fit the reader whose uncertainty ranks the rest (none: cold start)
    order = suggest_order(
        [s.row for s in items], named, n, labelled, scorer.config.thresholds,
        labels=[face_labels.get(str(Path(files[i]).resolve())) for i in labelled], emotions=vocab,
        exclude=copies,
    )  # fmt: skip
    return write_suggestions(
        Path(out) / "suggested.csv", files, [s.row for s in items], order, root, labelled=given
    )


def calibrate(
    images: Annotated[
        Path,
        typer.Option(
            "--images", help="Folder of the labelled images (with --suggest: a folder or a scored run)."
        ),
    ],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="CSV (file + emotion/eyes/brows/mouth/verdict) or Label Studio JSON."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for calibration.json and the report.")
    ] = Path("calibration_out"),
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
    c: Annotated[
        float,
        typer.Option(
            "--C",
            help="Inverse L2 strength of the logistic regression (0.05: FitOptions.C, see calibration/fit.py).",
        ),
    ] = 0.05,
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
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", metavar="MODULE.FIELD=VALUE", help="Measurement constant (see `score --param`)."
        ),
    ] = None,
    param_file: Annotated[Path | None, typer.Option(help="JSON of measurement constants.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    suggest: Annotated[
        int | None,
        typer.Option(
            "--suggest",
            metavar="N",
            help=(
                "Instead of fitting: write OUT/suggested.csv, N unlabelled images to label next "
                "(one face of each kind first, then those the reader fitted on your labels is least sure of)."
            ),
        ),
    ] = None,
    curve: Annotated[bool, typer.Option(help="Draw the learning curve (labels vs accuracy).")] = True,
    curve_repeats: Annotated[
        int, typer.Option(help="Random label orders averaged in the learning curve.")
    ] = 3,
) -> int:
    """Fit calibrated region classifiers (and verdict thresholds) to human labels; write
    OUT/calibration.json (for `score --calibration`) and OUT/report.{md,html,json} with plots
    (learning curve included). With --suggest N: list the N images to label first."""
    options = {
        "mediapipe_model": str(mediapipe_model) if mediapipe_model else None,
        "clip_model": clip_model, "clip_pretrained": clip_pretrained, "clip_loader": clip_loader,
        "clip_embed_cache": str(clip_embed_cache) if clip_embed_cache else None,
    }  # fmt: skip
    options = {k: v for k, v in options.items() if v is not None}
    if param or param_file:  # the fitted file records them; score --calibration checks it
        from harmony_eval.params import cli_overrides

        options["params"] = cli_overrides(param, param_file)
    dets = detectors.split(",") if detectors else None
    if suggest is not None:
        replaced = (Path(out) / "suggested.csv").is_file()  # kept as suggested.prev.csv
        path = run_suggest(
            images, out, suggest, labels=labels, backend=backend, emotions=emotions, workers=workers,
            detectors=dets, progress=progress and sys.stderr.isatty(), **options,
        )  # fmt: skip
        with path.open(newline="", encoding="utf-8") as f:
            ranks = [r["rank"] for r in csv.DictReader(f)]
        kept = ranks.count("")
        typer.echo(
            f"Suggested {len(ranks) - kept} image(s) to label: {path}"
            + (f", below the {kept} labelled row(s) of {labels}" if kept else "")
            + (f" (the file it replaced is kept as {path.with_name('suggested.prev.csv')})" if replaced else "")
            + ". Fill in its emotion column (and eyes/brows/mouth/verdict if you like), then run "
            f"`harmony-eval calibrate --images {images} --labels {path} --out {out}`."
        )  # fmt: skip
        return 0
    if labels is None:
        raise ValueError(
            "--labels: missing; give the labels CSV to fit, or --suggest N to choose images to label"
        )
    rep = run_calibration(
        images, labels, out, cv=cv, backend=backend, emotions=emotions, ignore_unknown=ignore_unknown,
        method=method, model=model, prior=prior, C=c, bootstrap=bootstrap, seed=seed, workers=workers,
        detectors=dets, progress=progress and sys.stderr.isatty(), curve=curve, curve_repeats=curve_repeats,
        **options,
    )  # fmt: skip
    typer.echo(calibration_line(rep, Path(out) / "report.md"))
    return 0


def calibration_line(rep: dict, report: Path) -> str:
    """calibrate's last line: per target the out-of-sample balanced accuracy with its interval and
    how many labelled images it was judged on (a 25 % hold-out of 19 labels judges 5: the line
    said "brows bal.acc 0.0" with nothing to tell that it came from 5 faces)."""
    how = f"{rep['cv']}-fold cross-validation" if rep.get("cv") else "a 25% hold-out"

    def fig(v) -> str:
        return "-" if v is None else f"{v:.2f}"

    parts = []
    for t in ("face", "eyes", "brows", "mouth", "verdict"):
        if t in rep:  # an interval is None under --bootstrap 0, a figure None with one class judged
            ci = (rep[t].get("ci95") or {}).get("balanced_accuracy") or (None, None)
            band = "" if None in ci else f" [{fig(ci[0])}, {fig(ci[1])}]"
            parts.append(f"{t} {fig(rep[t]['balanced_accuracy'])}{band} (n={rep[t]['n']})")
    chance = f"chance {1 / len(rep['emotions']):.2f}" + (", verdict 0.33" if "verdict" in rep else "")
    return (
        f"{rep['n']} labelled images; balanced accuracy out of sample ({how}; {chance}): "
        + "; ".join(parts) + f". Report: {report}"
        + ("" if rep.get("cv") or rep["n"] >= 80 else " (few faces judged: --cv 5 judges every labelled image)")
    )  # fmt: skip
