"""Fit the calibration on labelled images and measure it on images it did not see.

``build_calibration(ds, idx)`` fits every model the labels allow (plus verdict thresholds) on the
images ``idx``. ``evaluate(ds, cv=K)`` runs it on K stratified folds and collects out-of-fold
predictions, so each labelled image is judged once by a model that never saw it; without ``cv`` one
stratified 25 % hold-out split is used. "before" = the uncalibrated tool (backend probabilities,
configured thresholds), "after" = with the calibration fitted on the other folds.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from harmony_eval.calibrated import Calibration, RegionModel
from harmony_eval.pipeline import Scorer, holistic_temperature

from .features import Scored, rescore
from .fit import TARGET_MODEL, FitOptions, fit_model, full_proba
from .labels import VERDICTS, Labels
from .models import group_holdout, has_copies, stratified_folds
from .thresholds import fit_verdict_thresholds


@dataclass
class Dataset:
    """Labelled images after the uncalibrated pipeline, aligned with ``labels.rows``."""

    labels: Labels
    items: list[Scored]
    scorer: Scorer
    emotions: list[str]
    named: list[dict[str, float] | None] = field(default_factory=list)
    #: region targets without a label column of their own, read from the face label instead (a face
    #: labelled happy is a weak label for its eyes, brows and mouth: most people label whole faces)
    weak: tuple[str, ...] = ()
    #: one id per item, shared by copies of one drawing (``calibration.copies``); ``None``: no copies
    #: looked for. Every split keeps a group on one side, and a group counts as one labelled drawing.
    groups: list[int] | None = None

    def __post_init__(self) -> None:
        self.named = [self.scorer.reading_features(s.pred) if s.ok else None for s in self.items]
        if "emotion" in self.labels.targets:
            self.weak = tuple(t for t in ("eyes", "brows", "mouth") if t not in self.labels.targets)

    def groups_of(self, idx: Sequence[int]) -> list[int] | None:
        """The copy groups of images ``idx`` (``None`` when none were looked for)."""
        return None if self.groups is None else [self.groups[i] for i in idx]

    @property
    def targets(self) -> list[str]:
        """Label columns present, plus the weakly labelled regions."""
        return [*self.labels.targets, *self.weak]

    def label(self, i: int, target: str) -> str | None:
        key = "emotion" if target in self.weak else target
        return self.labels.rows[i].get(key)  # type: ignore[return-value]

    def usable(self, i: int, target: str) -> bool:
        """Image ``i`` counts for ``target``: labelled, and the tool produced what the target reads."""
        s = self.items[i]
        if self.label(i, target) is None:
            return False
        if target == "verdict":
            return s.row.get("status") in ("ok", "no_face")
        model = TARGET_MODEL[target]
        return s.ok and (model == "face" or s.pred.probs.get(model) is not None)


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("harmony-eval", "scikit-learn", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def build_calibration(ds: Dataset, idx: list[int], opts: FitOptions, strict: bool = True) -> Calibration:
    """Every model the labels in ``idx`` allow, plus verdict thresholds when verdicts are labelled.
    ``strict=False`` (cross-validation folds): a target too small to fit in this fold gets no model,
    i.e. the backend's reading, instead of an error."""
    models: dict[str, RegionModel] = {}
    for target, model in TARGET_MODEL.items():
        if target not in ds.targets:
            continue
        rows = [i for i in idx if ds.usable(i, target)]
        y = [ds.label(i, target) for i in rows]
        try:
            models[model] = fit_model(
                [ds.named[i] for i in rows], y, model=model, label=target, opts=opts, vocabulary=ds.emotions,
                groups=ds.groups_of(rows),
            )  # fmt: skip
        except ValueError:
            if strict and target not in ds.weak:
                raise
            continue
        if target in ds.weak:
            models[model].summary["weak_labels"] = "face emotion labels stand for this region's labels"
    cal = Calibration(
        emotions=list(ds.emotions), models=models, backend=ds.scorer.backend_name, versions=_versions(),
        pool_weights=dict(ds.scorer.config.pool_weights),
        holistic_temperature=holistic_temperature(ds.scorer.backend_name),
        training={"created_by": "harmony-eval calibrate", "labels": ds.labels.source, "n_images": len(idx)},
    )  # fmt: skip
    rows = [i for i in idx if ds.usable(i, "verdict")] if "verdict" in ds.labels.targets else []
    if rows:  # a fold without a verdict label keeps the configured thresholds
        scored = calibrated_rows(ds, cal, rows, with_thresholds=False)
        cal.verdict_thresholds = fit_verdict_thresholds(
            scored, [ds.label(i, "verdict") for i in rows], ds.scorer.config
        )
    return cal


def calibrated_rows(
    ds: Dataset, cal: Calibration, idx: list[int], with_thresholds: bool = True
) -> list[dict]:
    """Output rows of images ``idx`` scored with ``cal`` (models, and thresholds if asked)."""
    scorer = ds.scorer
    base = scorer.config
    if with_thresholds:
        scorer.config = base.with_thresholds(cal.verdict_thresholds)
    try:
        return [
            rescore(scorer, ds.items[i], cal.apply(ds.items[i].pred, ds.emotions)) if ds.items[i].ok
            else ds.items[i].row
            for i in idx
        ]  # fmt: skip
    finally:
        scorer.config = base


def _vec(p: dict[str, float] | None, classes: list[str]) -> np.ndarray:
    v = np.array([float((p or {}).get(c, 0.0)) for c in classes])
    return v / v.sum() if v.sum() > 0 else np.full(len(classes), 1.0 / len(classes))


def _splits(ds: Dataset, cv: int | None, seed: int) -> list[tuple[list[int], list[int]]]:
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    idx = [i for i, s in enumerate(ds.items) if s.row.get("status") in ("ok", "no_face")]
    key = []
    for i in idx:  # stratify on the first label an image has, so every fold sees every class
        key.append(
            next(
                (ds.label(i, t) for t in ("emotion", "verdict", "mouth", "eyes", "brows") if ds.label(i, t)),
                "_",
            )
        )
    groups = ds.groups_of(idx)
    copies = has_copies(groups)
    if cv is not None:
        n = len(set(groups)) if copies else len(idx)  # type: ignore[arg-type]
        if cv < 2 or cv > n:
            what = (
                "distinct drawings among the scorable labelled images"
                if copies
                else "scorable labelled images"
            )
            raise ValueError(f"--cv {cv}: expected 2 <= K <= the {n} {what}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if copies:  # copies of one drawing in one fold (StratifiedGroupKFold takes uneven classes)
                folds = stratified_folds(key, cv, seed, groups)
            else:
                # stratified unless no class has K images (StratifiedKFold refuses that): then plain folds
                largest = max(key.count(k) for k in set(key))
                splitter = StratifiedKFold if largest >= cv else KFold
                folds = splitter(cv, shuffle=True, random_state=seed).split(np.zeros(len(idx)), key)
            return [([idx[j] for j in tr], [idx[j] for j in te]) for tr, te in folds]
    if copies:
        tr, te = group_holdout(key, groups, 0.25, seed)  # type: ignore[arg-type]
        return [(sorted(idx[j] for j in tr), sorted(idx[j] for j in te))]
    counts = {k: key.count(k) for k in key}
    strat = key if min(counts.values()) >= 2 else None
    tr, te = train_test_split(idx, test_size=0.25, random_state=seed, stratify=strat)
    return [(sorted(tr), sorted(te))]


def evaluate(ds: Dataset, opts: FitOptions, cv: int | None = None) -> dict[str, dict[str, Any]]:
    """Out-of-fold ``{target: {"y", "before", "after", "proba_before", "proba_after", "classes"}}``;
    targets: ``face`` (emotion), ``eyes``, ``brows``, ``mouth``, ``verdict``, and ``holistic`` (the
    tool's pooled ``probs`` after calibration, judged against the ``emotion`` label)."""
    out: dict[str, dict[str, Any]] = {}

    def add(target: str, y: str, before: Any, after: Any) -> None:
        d = out.setdefault(target, {"y": [], "before": [], "after": []})
        d["y"].append(y), d["before"].append(before), d["after"].append(after)

    for train, test in _splits(ds, cv, opts.seed):
        cal = build_calibration(ds, train, opts, strict=False)
        rows = dict(zip(test, calibrated_rows(ds, cal, test), strict=True))
        for i in test:
            s = ds.items[i]
            for target, model in TARGET_MODEL.items():
                if target in ds.targets and ds.usable(i, target):
                    before = s.row["probs"] if model == "face" else s.row["regions"][model]["probs"]
                    m = cal.models.get(model)  # None: too few labels in this fold, backend reading stands
                    after = (
                        full_proba(m, [ds.named[i]], ds.emotions)[0] if m
                        else _vec(before, ds.emotions)
                    )  # fmt: skip
                    add(model, ds.label(i, target), _vec(before, ds.emotions), after)
                    if model == "face":
                        add(
                            "holistic",
                            ds.label(i, target),
                            _vec(before, ds.emotions),
                            _vec(rows[i]["probs"], ds.emotions),
                        )
            if "verdict" in ds.labels.targets and ds.usable(i, "verdict"):
                add("verdict", ds.label(i, "verdict"), s.row["verdict"], rows[i]["verdict"])
    for target, d in out.items():
        d["classes"] = list(VERDICTS) if target == "verdict" else list(ds.emotions)
        if target != "verdict":
            d["proba_before"], d["proba_after"] = np.array(d["before"]), np.array(d["after"])
            d["before"] = [d["classes"][k] for k in d["proba_before"].argmax(axis=1)]
            d["after"] = [d["classes"][k] for k in d["proba_after"].argmax(axis=1)]
    return out
