"""The two kinds of calibrated model (see ``fit``), fitted with scikit-learn and copied into
``harmony_eval.linear.LinearModel``: ``fit_full_model`` (standardised logistic regression over the
backend features, anchored on the backend's reading) and ``fit_scaling_model`` (the backend's reading
with a probability calibration on top). ``FitOptions`` and the feature-matrix helpers live here too.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from harmony_eval.calibrated import backend_logp_names
from harmony_eval.linear import LinearModel
from harmony_eval.numerics import softmax

#: model -> feature-name prefixes it reads (None = every feature of every region + quality)
MODEL_INPUTS: dict[str, tuple[str, ...] | None] = {
    "face": None,
    "eyes": ("eyes", "left_eye", "right_eye", "eyes_desc"),
    "brows": ("brows", "left_brow", "right_brow", "brows_desc"),
    "mouth": ("mouth", "mouth_desc"),
}


#: values of ``FitOptions.features``
FEATURE_SETS = ("auto", "all", "anatomy", "descriptors")


def _class_weight(opts: FitOptions) -> str | None:
    return "balanced" if opts.prior == "balanced" else None


def sample_weights(y: Sequence[str], opts: FitOptions) -> np.ndarray | None:
    """Per-image weights ``n / (K n_class)`` under the balanced prior (each class weighs the same in
    total), ``None`` for the empirical prior. Also passed to the calibration maps."""
    if opts.prior != "balanced":
        return None
    y = np.asarray(y).astype(str)
    classes, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    return len(y) / (len(classes) * counts[inv])


def drawings_per_class(y: Sequence[str], groups: Sequence[int] | None = None) -> Counter:
    """Labelled drawings per class: images, or with ``groups`` (``calibration.copies``: copies of one
    drawing share a group) distinct groups, so a sprite labelled twice (RGBA and on white) counts once."""
    if groups is None:
        return Counter(str(c) for c in y)
    return Counter(str(c) for c, _ in {(str(c), g) for c, g in zip(y, groups, strict=True)})


def has_copies(groups: Sequence[int] | None) -> bool:
    return groups is not None and len(set(groups)) < len(groups)


def stratified_folds(
    y: Sequence[str], k: int, seed: int, groups: Sequence[int] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified folds of ``y``; with copies among them (``groups``) each group stays in one
    fold (``StratifiedGroupKFold``). Without copies the folds are ``StratifiedKFold``'s, as before."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y).astype(str)
    if not has_copies(groups):
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def group_holdout(
    y: Sequence[str], groups: Sequence[int], share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` positions: about ``share`` of each class's groups (by their first image's
    label, at least one when a class has two or more) go to the test side, whole; seeded."""
    rng = np.random.default_rng(seed)
    first: dict[int, str] = {}
    for c, g in zip(y, groups, strict=True):
        first.setdefault(g, str(c))
    test_groups: set[int] = set()
    for c in sorted(set(first.values())):
        gs = sorted(g for g, v in first.items() if v == c)
        if len(gs) >= 2:
            take = max(1, round(share * len(gs)))
            test_groups.update(int(g) for g in rng.permutation(gs)[:take])
    is_test = np.array([g in test_groups for g in groups])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _frozen_cv():
    """Splits for ``CalibratedClassifierCV(FrozenEstimator(...))``: a frozen model predicts the same on
    any split, so 2 plain folds suffice (the default 5 stratified folds refuse classes of 2-4 images)."""
    from sklearn.model_selection import KFold

    return KFold(2)


@dataclass
class FitOptions:
    method: str = "auto"  # auto | sigmoid | temperature | none (see fit_model)
    # L2 strength. 0.05: on paired within-source learning curves (10 splits x 4 orders, full +
    # temperature, features auto) it beat 0.5 pooled by +0.02 +- 0.01 / +0.03 +- 0.01 / +0.04 +- 0.01
    # at 32 / 48 / 72 labels and afc by +0.02 +- 0.01 at 46, equal on the smaller sources (0.5 had
    # beaten 0.1 and 2.0 in 5-fold CV on ../shared/data/dev, anatomy features, before descriptors)
    C: float = 0.05
    # Class prior the probabilities assume. "balanced": every emotion equally likely, as in the
    # generation grids this tool scores (each archetype x emotion drawn alike); labelled sets are
    # skewed (dev anime_face_classifier: 37 of 66 happy), and fitting to their skew raised
    # accuracy 0.52 -> 0.59 but cut balanced accuracy 0.54 -> 0.40 (5-fold CV, anatomy features).
    # "empirical": the label frequencies.
    prior: str = "balanced"
    seed: int = 0
    large_n: int = 1000  # from here on: a disjoint calibration split instead of inner CV
    max_inner_folds: int = 5
    model: str = "auto"  # auto | scaling | full (see the module docstring)
    # full models also fit each training image mirrored left-right (calibration.augment): same
    # emotion, twice the rows; images judged (CV folds, calibration maps) are never mirrored. Off:
    # on within-source learning curves (paired, 10 splits x 4 orders, anatomy+HOG) it cost afc
    # -0.03 +- 0.02 and seraphina -0.06 +- 0.04 at all labels for pooled +0.03 +- 0.02
    mirror: bool = False
    # what a full model reads: "all" its region's features, "anatomy" the measurements and backend
    # readings only (no ``*_desc`` crop descriptor), "descriptors" the crop descriptors only,
    # "auto" anatomy unless all beats it in cross-validation (``fit.fit_model``)
    features: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in ("auto", "sigmoid", "temperature", "none"):
            raise ValueError(f"`method` is {self.method!r}; expected auto, sigmoid, temperature or none")
        if self.prior not in ("balanced", "empirical"):
            raise ValueError(f"`prior` is {self.prior!r}; expected balanced or empirical")
        if self.model not in ("auto", "scaling", "full"):
            raise ValueError(f"`model` is {self.model!r}; expected auto, scaling or full")
        if self.features not in FEATURE_SETS:
            raise ValueError(f"`features` is {self.features!r}; expected one of {', '.join(FEATURE_SETS)}")
        if not self.C > 0:
            raise ValueError(f"`C` must be > 0, got {self.C}")


def feature_names(named: Sequence[dict[str, float]], model: str, features: str = "all") -> list[str]:
    """Feature names model ``model`` reads: every name seen in ``named``, in first-seen order, of
    the ``features`` set (``FitOptions.features``; ``auto`` reads as ``all`` here)."""
    prefixes = MODEL_INPUTS[model]
    names: dict[str, None] = {}
    for d in named:
        for k in d:
            group = k.split(":", 1)[0]
            if features == "anatomy" and group.endswith("_desc"):
                continue
            if features == "descriptors" and not group.endswith("_desc"):
                continue
            if prefixes is None or group in prefixes:
                names.setdefault(k)
    return list(names)


def matrix(named: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    """``(N, F)`` float matrix; NaN where an image lacks a feature (its region was not found)."""
    return np.array([[d.get(n, np.nan) for n in names] for d in named], dtype=float).reshape(
        len(named), len(names)
    )


#: A column's scale is at least this share of its typical size (mean absolute value in training).
MIN_SPREAD = 0.01


class AnchoredScaler(TransformerMixin, BaseEstimator):
    """``StandardScaler`` except for the ``anchor`` columns (the backend's log-probabilities), which
    are multiplied by ``factor`` instead. The L2 penalty then barely costs the weights that copy
    the backend's reading (a weight 1/factor per unit) and shrinks everything else towards it: the
    model starts from the backend, not from a uniform guess. ``mean_``/``scale_`` as StandardScaler.

    A column that barely varies in training is scaled by at least :data:`MIN_SPREAD` of its typical
    size, not by its own spread: ``eyes:visible`` is 0.9998-1.0 on every sprite, so one TV crop at
    0.977 stood 67 standard deviations from the training mean, and that one feature decided the face
    (a reader fitted without the TV-anime crops read 64 of their 68 faces angry). Leave-one-source-out
    (``python -m benchmarks.validity``, face balanced accuracy afc / permissive / seraphina /
    zundamon): learned ``anatomy`` 0.28 / 0.66 / 0.62 / 0.25 -> 0.56 / 0.66 / 0.62 / 0.38; with HOG,
    LBP or grey crops afc +0.21 to +0.23; no cell lower. Within-source 3-fold CV (afc, permissive,
    pooled) moved by 0.012 at most. 0.01 was the first share tried; 0.003 to 0.1 gave the same
    leave-one-source-out figures. Clipping the test features to the training range instead lifted
    afc too (0.51), less; on top of the floor it moved no source's face model (so it is not done)."""

    def __init__(self, anchor: tuple[int, ...] = (), factor: float = 10.0) -> None:
        self.anchor = anchor
        self.factor = factor

    def fit(self, X: np.ndarray, y: Any = None) -> AnchoredScaler:
        X = np.asarray(X, dtype=float)
        self.mean_, sd = X.mean(axis=0), X.std(axis=0)
        spread = np.maximum(sd, MIN_SPREAD * np.abs(X).mean(axis=0))
        self.scale_ = np.where(sd < 10 * np.finfo(float).eps, 1.0, spread)  # constant column: leave as is
        idx = list(self.anchor)
        self.mean_[idx], self.scale_[idx] = 0.0, 1.0 / self.factor
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mean_) / self.scale_


def fit_estimator(
    X: np.ndarray, y: Sequence[str], opts: FitOptions, anchor: Sequence[int] = (),
    X_mirror: np.ndarray | None = None, groups: Sequence[int] | None = None,
) -> tuple[Any, Any, list[Any], dict[str, Any]]:  # fmt: skip
    """Fit with scikit-learn: ``(estimator, pipeline, calibrators, summary)``. ``estimator.predict_proba``
    is the reference ``LinearModel.predict_proba`` must reproduce. ``y`` must hold 2+ classes with
    2+ images each (``fit_model`` drops rarer classes first); ``anchor``: columns of the backend's
    log-probabilities (see ``AnchoredScaler``). ``X_mirror`` (same shape, row i = image i mirrored):
    the classifier is also fitted on those rows; each calibration fold holds an image and its
    mirror together, and the disjoint calibration split (``large_n``) gets no mirrored row.
    ``groups`` (``calibration.copies``): copies of one drawing stay on one side of every split."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    y = np.asarray(y).astype(str)
    if opts.method == "auto":  # called directly (not through fit_model's comparison): Platt's sigmoid
        opts = replace(opts, method="sigmoid")
    pipe = make_pipeline(
        SimpleImputer(strategy="mean", keep_empty_features=True),
        AnchoredScaler(tuple(anchor)),
        # newton-cg: 13 ms a fit here vs 880 ms for lbfgs (95 iterations on 20 images x 50 features,
        # the anchor columns make the problem stiff); Hessian-free, so CLIP's ~3,000 features fit too
        LogisticRegression(C=opts.C, class_weight=_class_weight(opts), max_iter=5000, solver="newton-cg"),
    )
    n = len(y)

    def aug(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if X_mirror is None:
            return X[rows], y[rows]
        return np.vstack([X[rows], X_mirror[rows]]), np.concatenate([y[rows], y[rows]])

    with warnings.catch_warnings():
        # "least populated class has only N members"; "Pipeline does not accept sample_weight" (its
        # LogisticRegression has class_weight for that; the weights reach the calibration maps)
        warnings.simplefilter("ignore", UserWarning)
        if opts.method == "none":
            return pipe.fit(*aug(np.arange(n))), pipe, [], {"calibration": "none"}
        if n >= opts.large_n:
            if has_copies(groups):
                fit_rows, cal_rows = group_holdout(y, groups, 0.25, opts.seed)  # type: ignore[arg-type]
            else:
                fit_rows, cal_rows = train_test_split(
                    np.arange(n), test_size=0.25, stratify=y, random_state=opts.seed
                )
            pipe.fit(*aug(fit_rows))
            cal = CalibratedClassifierCV(FrozenEstimator(pipe), method=opts.method, cv=_frozen_cv())
            cal.fit(X[cal_rows], y[cal_rows], sample_weight=sample_weights(y[cal_rows], opts))
            how = f"{opts.method} on a disjoint 25% split (n={len(cal_rows)})"
        else:
            k = min(opts.max_inner_folds, min(drawings_per_class(y, groups).values()))
            folds = stratified_folds(y, k, opts.seed, groups)
            Xa, ya = aug(np.arange(n))
            if X_mirror is not None:  # image i and its mirror (row n + i) stay in one fold
                folds = [(np.r_[tr, tr + n], np.r_[te, te + n]) for tr, te in folds]
            cal = CalibratedClassifierCV(pipe, method=opts.method, cv=folds, ensemble=False)
            cal.fit(Xa, ya, sample_weight=sample_weights(ya, opts))
            pipe = cal.calibrated_classifiers_[0].estimator
            how = f"{opts.method} on {k}-fold out-of-fold decision values"
    if X_mirror is not None:
        how += f"; classifier fitted on {n} images and their {n} mirror images"
    return cal, pipe, list(cal.calibrated_classifiers_[0].calibrators), {"calibration": how}


def fit_full_model(
    X: np.ndarray, y: Sequence[str], *, model: str, label: str, features: list[str], opts: FitOptions,
    X_mirror: np.ndarray | None = None, groups: Sequence[int] | None = None,
) -> LinearModel:  # fmt: skip
    """The ``full`` kind; ``X`` is ``(N, F)`` (NaN = missing), ``y`` the ``N`` labels; ``X_mirror``
    the same images mirrored (``calibration.augment``), extra training rows, and ``groups`` their
    copies (see ``fit_estimator``). A class needs 2+ labelled drawings (copies count once)."""
    if opts.method == "auto":  # called directly (not through fit_model's comparison): Platt's sigmoid
        opts = replace(opts, method="sigmoid")
    y = np.asarray(y, dtype=object)
    counts = Counter(y.tolist())
    drawings = drawings_per_class(y, groups)
    keep = sorted(c for c, n in drawings.items() if n >= 2)
    if len(keep) < 2:
        raise ValueError(
            f"`{label}` labels: need at least two classes with 2+ labelled images each to fit the {model} "
            f"model, got {dict(drawings)}; label more images"
        )
    mask = np.isin(y, keep)
    prefix = "pooled" if model == "face" else model
    anchor = [j for j, f in enumerate(features) if f.startswith(f"{prefix}:logp_")]
    Xm = X_mirror[mask] if X_mirror is not None else None
    g = [gi for gi, m in zip(groups, mask, strict=True) if m] if groups is not None else None
    est, pipe, calibrators, how = fit_estimator(X[mask], y[mask], opts, anchor, Xm, g)
    summary = {
        "n": int(mask.sum()), "class_counts": {c: int(counts[c]) for c in keep},
        "dropped_classes": sorted(c for c in counts if c not in keep), **how, "options": asdict(opts),
    }  # fmt: skip
    # class names from the outer estimator: for "temperature" scikit-learn label-encodes y before
    # fitting the classifier, whose classes_ are then 0..K-1 (same sorted order)
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
    return LinearModel(
        region=model, label=label, classes=[str(c) for c in est.classes_], features=list(features),
        impute=imputer.statistics_.tolist(), mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(),
        coef=lr.coef_.tolist(), intercept=lr.intercept_.tolist(), calibration=calibration, summary=summary,
    )  # fmt: skip


class FixedLogits(ClassifierMixin, BaseEstimator):
    """A classifier with nothing to learn: its decision values are the given log-probability
    columns (one per class, ``classes_`` order); two classes -> the log-odds ``x1 - x0``."""

    def fit(self, X: np.ndarray, y: Sequence[str]) -> FixedLogits:
        self.classes_ = np.unique(np.asarray(y).astype(str))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return X[:, 1] - X[:, 0] if len(self.classes_) == 2 else X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(X, dtype=float), axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.asarray(X, dtype=float).argmax(axis=1)]


def scaling_inputs(
    named: Sequence[dict[str, float]], classes: Sequence[str], model: str
) -> tuple[np.ndarray, list[str]]:
    """``(N, K)`` backend log-probabilities of ``classes`` (missing -> log(1/K)) and their names."""
    names = backend_logp_names(model, classes)
    X = matrix(named, names)
    return np.where(np.isnan(X), np.log(1.0 / len(classes)), X), names


_HOW = {
    "none": "kept as is",
    "temperature": "one temperature fitted on all images",
    "sigmoid": "a sigmoid per class fitted on all images",
}


def _scaling_region_model(
    model: str, label: str, classes: list[str], names: list[str], calibration, n: int
) -> LinearModel:
    k = len(classes)
    coef = [[-1.0, 1.0]] if k == 2 else np.eye(k).tolist()
    return LinearModel(
        region=model, label=label, classes=list(classes), features=names, impute=[float(np.log(1.0 / k))] * k,
        mean=[0.0] * k, scale=[1.0] * k, coef=coef, intercept=[0.0] * len(coef), calibration=calibration,
        summary={"n": n, "calibration": _HOW[calibration["method"]]},
    )  # fmt: skip


def fit_scaling_model(
    named: Sequence[dict[str, float]], y: Sequence[str], *, model: str, label: str, opts: FitOptions,
    vocabulary: Sequence[str] | None = None,
) -> LinearModel:  # fmt: skip
    """The ``scaling`` kind: the backend's reading with a probability calibration fitted on all images.

    ``none`` and ``temperature`` keep every emotion of ``vocabulary`` (one temperature ``beta``
    minimising the class-weighted log loss; it never changes which emotion is on top);
    ``sigmoid`` (scikit-learn, one Platt map per class) covers the labelled classes only."""
    from scipy.optimize import minimize_scalar
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    y = np.asarray(y).astype(str)
    if opts.method != "none" and not len(y):
        raise ValueError(f"`{label}` labels: no labelled image to fit the {model} model's calibration")
    if opts.method == "auto":  # called directly: temperature, which keeps every emotion and the ranking
        opts = replace(opts, method="temperature")
    if opts.method in ("none", "temperature"):
        classes = list(vocabulary) if vocabulary is not None else sorted(set(y.tolist()))
        X, names = scaling_inputs(named, classes, model)
        m = _scaling_region_model(model, label, classes, names, {"method": "none"}, len(y))
        if opts.method == "temperature":
            idx = np.array([classes.index(t) for t in y])
            w = sample_weights(y, opts)
            w = np.ones(len(y)) if w is None else w

            def nll(log_beta: float) -> float:
                m.calibration = {"method": "temperature", "beta": float(np.exp(log_beta))}
                p = m.predict_proba(X)[np.arange(len(y)), idx]
                return float(np.sum(w * -np.log(np.clip(p, 1e-12, 1.0))))

            best = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
            m.calibration = {"method": "temperature", "beta": float(np.exp(best.x))}
            m.summary["calibration"] = _HOW["temperature"]  # the report says what was fitted
        return m
    classes = sorted(set(y.tolist()))
    X, names = scaling_inputs(named, classes, model)
    fixed = FixedLogits().fit(X, y)
    cal = CalibratedClassifierCV(FrozenEstimator(fixed), method="sigmoid", cv=_frozen_cv())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the frozen model takes no sample_weight
        cal.fit(X, y, sample_weight=sample_weights(y, opts))
    cals = cal.calibrated_classifiers_[0].calibrators
    sig = {"method": "sigmoid", "a": [float(c.a_) for c in cals], "b": [float(c.b_) for c in cals]}
    return _scaling_region_model(model, label, classes, names, sig, len(y))
