"""Fitting the calibration file: per-region calibrated classifiers and verdict thresholds.

Per target (``emotion`` -> model ``face``; ``eyes``, ``brows``, ``mouth`` -> the region's model):
``SimpleImputer(mean) -> StandardScaler -> LogisticRegression`` (multinomial, L2, ``C``, classes
weighted to balance) over the backend features, then probability calibration:

- fewer than ``large_n`` images (the usual case): ``CalibratedClassifierCV(pipe, cv=StratifiedKFold(k),
  ensemble=False)``: the calibration map is fitted on out-of-fold decision values, the classifier on
  all images; ``k = min(5, smallest class)``;
- ``large_n`` or more: the classifier on 75 %, ``CalibratedClassifierCV(FrozenEstimator(pipe))`` on
  the disjoint 25 % (scikit-learn's recommended use; ``cv="prefit"`` is deprecated).

Sigmoid (Platt, one map per class) by default: STYLE.md and scikit-learn advise it unless there are
well over 1,000 calibration samples; ``temperature`` (one parameter) is the option for tiny sets.
Classes with fewer than 2 labelled images cannot be calibrated and are left out (recorded in the
model's ``summary``). Everything fitted is copied into ``harmony_eval.calibrated.RegionModel`` (JSON).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harmony_eval.calibrated import RegionModel

#: label column -> model (region) it trains
TARGET_MODEL = {"emotion": "face", "eyes": "eyes", "brows": "brows", "mouth": "mouth"}
#: model -> feature-name prefixes it reads (None = every feature of every region + quality)
MODEL_INPUTS: dict[str, tuple[str, ...] | None] = {
    "face": None,
    "eyes": ("eyes", "left_eye", "right_eye"),
    "brows": ("brows", "left_brow", "right_brow"),
    "mouth": ("mouth",),
}


@dataclass
class FitOptions:
    method: str = "sigmoid"  # sigmoid | temperature | none
    C: float = 0.5  # L2 strength: 0.5 beat 0.1 and 2.0 in 5-fold CV on ../shared/data/dev (anatomy)
    class_weight: str | None = "balanced"  # the figures that matter are balanced accuracy / macro-F1
    seed: int = 0
    large_n: int = 1000  # from here on: a disjoint calibration split instead of inner CV
    max_inner_folds: int = 5

    def __post_init__(self) -> None:
        if self.method not in ("sigmoid", "temperature", "none"):
            raise ValueError(f"`method` is {self.method!r}; expected sigmoid, temperature or none")
        if not self.C > 0:
            raise ValueError(f"`C` must be > 0, got {self.C}")


def feature_names(named: Sequence[dict[str, float]], model: str) -> list[str]:
    """Feature names model ``model`` reads: every name seen in ``named``, in first-seen order."""
    prefixes = MODEL_INPUTS[model]
    names: dict[str, None] = {}
    for d in named:
        for k in d:
            if prefixes is None or k.split(":", 1)[0] in prefixes:
                names.setdefault(k)
    return list(names)


def matrix(named: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    """``(N, F)`` float matrix; NaN where an image lacks a feature (its region was not found)."""
    return np.array([[d.get(n, np.nan) for n in names] for d in named], dtype=float).reshape(
        len(named), len(names)
    )


def fit_estimator(
    X: np.ndarray, y: Sequence[str], opts: FitOptions
) -> tuple[Any, Any, list[Any], dict[str, Any]]:
    """Fit with scikit-learn: ``(estimator, pipeline, calibrators, summary)``. ``estimator.predict_proba``
    is the reference ``RegionModel.predict_proba`` must reproduce. ``y`` must hold 2+ classes with
    2+ images each (``fit_model`` drops rarer classes first)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y).astype(str)
    pipe = make_pipeline(
        SimpleImputer(strategy="mean", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=opts.C, class_weight=opts.class_weight, max_iter=5000),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        if opts.method == "none":
            return pipe.fit(X, y), pipe, [], {"calibration": "none"}
        if len(y) >= opts.large_n:
            Xf, Xc, yf, yc = train_test_split(X, y, test_size=0.25, stratify=y, random_state=opts.seed)
            pipe.fit(Xf, yf)
            cal = CalibratedClassifierCV(FrozenEstimator(pipe), method=opts.method).fit(Xc, yc)
            how = f"{opts.method} on a disjoint 25% split (n={len(yc)})"
        else:
            k = min(opts.max_inner_folds, min(Counter(y.tolist()).values()))
            cv = StratifiedKFold(k, shuffle=True, random_state=opts.seed)
            cal = CalibratedClassifierCV(pipe, method=opts.method, cv=cv, ensemble=False).fit(X, y)
            pipe = cal.calibrated_classifiers_[0].estimator
            how = f"{opts.method} on {k}-fold out-of-fold decision values"
    return cal, pipe, list(cal.calibrated_classifiers_[0].calibrators), {"calibration": how}


def fit_model(
    X: np.ndarray, y: Sequence[str], *, model: str, label: str, features: list[str], opts: FitOptions
) -> RegionModel:
    """Fit one calibrated classifier; ``X`` is ``(N, F)`` (NaN = missing), ``y`` the ``N`` labels."""
    y = np.asarray(y, dtype=object)
    counts = Counter(y.tolist())
    keep = sorted(c for c, n in counts.items() if n >= 2)
    if len(keep) < 2:
        raise ValueError(
            f"`{label}` labels: need at least two classes with 2+ labelled images each to fit the {model} "
            f"model, got {dict(counts)}; label more images"
        )
    mask = np.isin(y, keep)
    _, pipe, calibrators, how = fit_estimator(X[mask], y[mask], opts)
    summary = {
        "n": int(mask.sum()), "class_counts": {c: int(counts[c]) for c in keep},
        "dropped_classes": sorted(c for c in counts if c not in keep), **how, "options": asdict(opts),
    }  # fmt: skip
    imputer, scaler, lr = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
    if opts.method == "sigmoid":
        calibration = {
            "method": "sigmoid",
            "a": [float(c.a_) for c in calibrators],
            "b": [float(c.b_) for c in calibrators],
        }
    elif opts.method == "temperature":
        calibration = {"method": "temperature", "beta": float(calibrators[0].beta_)}
    else:
        calibration = {"method": "none"}
    return RegionModel(
        region=model, label=label, classes=[str(c) for c in lr.classes_], features=list(features),
        impute=imputer.statistics_.tolist(), mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(),
        coef=lr.coef_.tolist(), intercept=lr.intercept_.tolist(), calibration=calibration, summary=summary,
    )  # fmt: skip


def full_proba(m: RegionModel, X: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``(N, len(classes))``: the model's probabilities placed in ``classes`` columns (0 elsewhere)."""
    p = m.predict_proba(X)
    out = np.zeros((X.shape[0], len(classes)))
    col = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(m.classes):
        out[:, col[c]] = p[:, j]
    return out


# -- verdict thresholds ---------------------------------------------------------------------------
VERDICT_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def _verdict_parts(rows: Sequence[dict[str, Any]], config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: forced broken (flag / failed checks / no harmony), eligible for perfect, harmony."""
    from harmony_eval.verdict import decide

    # decide() with harmony thresholds that cannot bite isolates the flag / check part
    loose = config.with_thresholds({"broken_harmony": -1.0, "perfect_harmony": -1.0})
    forced, eligible, h = [], [], []
    for r in rows:
        harmony = r.get("harmony")
        if r.get("status") != "ok" or harmony is None:
            forced.append(True), eligible.append(False), h.append(0.0)
            continue
        v, _ = decide(r["scores"], harmony, r["flags"], loose)
        forced.append(v == "broken")
        eligible.append(v == "perfect")
        h.append(float(harmony))
    return np.array(forced), np.array(eligible), np.array(h)


def verdicts_for(
    parts: tuple[np.ndarray, np.ndarray, np.ndarray], perfect: float, broken: float
) -> np.ndarray:
    forced, eligible, h = parts
    return np.where(
        forced | (h < broken), "broken", np.where(eligible & (h >= perfect), "perfect", "acceptable")
    )


def fit_verdict_thresholds(rows: Sequence[dict[str, Any]], y: Sequence[str], config) -> dict[str, Any]:
    """``perfect_harmony`` and ``broken_harmony`` that agree best with human verdicts ``y``: balanced
    accuracy first, then Cohen's kappa, then the pair closest to the configured one (grid of 0.025).
    The flag and check rules stay as configured."""
    from .metrics import balanced_accuracy, kappa

    parts = _verdict_parts(rows, config)
    t = config.thresholds
    best, best_key = None, None
    for p in VERDICT_GRID:
        for b in VERDICT_GRID[p > VERDICT_GRID]:
            v = verdicts_for(parts, p, b)
            k = kappa(list(y), list(v))
            key = (balanced_accuracy(list(y), list(v)), -1.0 if np.isnan(k) else k,
                   -abs(p - t["perfect_harmony"]) - abs(b - t["broken_harmony"]))  # fmt: skip
            if best_key is None or key > best_key:
                best, best_key = (float(p), float(b)), key
    assert best is not None
    return {"perfect_harmony": best[0], "broken_harmony": best[1]}
