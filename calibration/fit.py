"""Fitting the calibration file: per-region calibrated classifiers and verdict thresholds.

Per target (``emotion`` -> model ``face``; ``eyes``, ``brows``, ``mouth`` -> the region's model) two
kinds of model compete:

- ``scaling``: the backend's own reading (``<region>:logp_*``; for ``face`` the pooled holistic
  reading ``pooled:logp_*`` the tool prints as ``probs``) with only a probability calibration on
  top: ``CalibratedClassifierCV(FrozenEstimator(FixedLogits()))``. Nothing but the calibration map
  is learned, so a few dozen labels cannot make the reading worse than the backend's;
- ``full``: ``SimpleImputer(mean) -> AnchoredScaler -> LogisticRegression`` (multinomial, L2, ``C``,
  classes weighted to balance) over every feature of the region (all regions for ``face``), then
  calibrated: below ``large_n`` images ``CalibratedClassifierCV(pipe, cv=StratifiedKFold(k),
  ensemble=False)`` (map fitted on out-of-fold decisions, classifier on all images), from ``large_n``
  on the classifier on 75 % and ``CalibratedClassifierCV(FrozenEstimator(pipe))`` on the disjoint 25 %.

A full model reads all its region's features, or (``FitOptions.features``, default ``auto``: chosen
by the same cross-validation, see ``_with_features``) the anatomy measurements only: on up to 72
labels the ~1,200 crop-descriptor features mostly add variance.

``model="auto"`` keeps the kind with the lower cross-validated log loss (a proper score: it rewards
right answers given with honest confidence). Measured on 20 rendered faces (3-fold CV): the full
model alone dropped balanced accuracy from 0.80 (backend) to 0.45; scaling keeps the backend's
ranking. Sigmoid (Platt, one map per class) by default, as STYLE.md and scikit-learn advise below
1,000 calibration samples; ``temperature`` (one parameter, keeps the argmax) for tiny sets. Classes
with fewer than 2 labelled images cannot be calibrated and are left out (recorded in ``summary``); at
score time such an emotion keeps the backend's reading (``harmony_eval.calibrated.model_proba``).
Everything fitted is copied into ``harmony_eval.linear.LinearModel`` (JSON).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from harmony_eval.calibrated import model_proba
from harmony_eval.linear import LinearModel

from .models import (  # noqa: F401  (re-exported: the fitting API lives in one place for callers)
    MODEL_INPUTS,
    AnchoredScaler,
    FitOptions,
    FixedLogits,
    drawings_per_class,
    feature_names,
    fit_estimator,
    fit_full_model,
    fit_scaling_model,
    matrix,
    sample_weights,
    stratified_folds,
)

#: label column -> model (region) it trains
TARGET_MODEL = {"emotion": "face", "eyes": "eyes", "brows": "brows", "mouth": "mouth"}


def _fit_kind(
    kind: str, named, y, *, model: str, label: str, opts: FitOptions, vocabulary=None, groups=None
) -> LinearModel:
    if kind == "scaling":
        return fit_scaling_model(named, y, model=model, label=label, opts=opts, vocabulary=vocabulary)
    names = feature_names(named, model, opts.features)
    if not names:
        raise ValueError(f"`{label}` labels: the backend gave no {model} features ({opts.features})")
    X_mirror = None
    if opts.mirror:
        from .augment import mirrored_matrix

        X_mirror = mirrored_matrix(named, names)
    return fit_full_model(
        matrix(named, names), y, model=model, label=label, features=names, opts=opts, X_mirror=X_mirror,
        groups=groups,
    )  # fmt: skip


def cv_losses(
    kind: str, named, y, *, model: str, label: str, opts: FitOptions, k: int, vocabulary=None, groups=None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Out-of-fold log loss of one candidate per image (probabilities floored at 1e-4), in image
    order, and the image weights (class-balanced under the balanced prior); ``None`` when a fold is
    too small to fit it. Same seed, same folds for every candidate: the losses pair up. ``groups``
    (``calibration.copies``): copies of one drawing stay in one fold."""
    y = np.asarray(y).astype(str)
    classes = sorted(set(y.tolist()) | set(vocabulary or []))
    w = sample_weights(y, opts)
    losses = np.zeros(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for tr, te in stratified_folds(y, k, opts.seed, groups):
            try:
                m = fit_model_kind(
                    kind,
                    [named[i] for i in tr],
                    y[tr],
                    model=model,
                    label=label,
                    opts=opts,
                    vocabulary=vocabulary,
                    groups=None if groups is None else [groups[i] for i in tr],
                )
            except ValueError:  # a fold too small for this candidate: it cannot be judged, so not chosen
                return None
            p = full_proba(m, [named[i] for i in te], classes)
            losses[te] = [-np.log(max(p[j, classes.index(t)], 1e-4)) for j, t in enumerate(y[te])]
    return losses, (np.ones(len(y)) if w is None else w)


def fit_model_kind(
    kind: str, named, y, *, model: str, label: str, opts: FitOptions, vocabulary=None, groups=None
) -> LinearModel:
    """One candidate. Models that learn per class (``full``, ``sigmoid``) leave out classes of fewer
    than 2 labelled drawings (copies in ``groups`` count once; recorded in ``summary``); ``scaling``
    with ``none``/``temperature`` keeps all."""
    y = np.asarray(y, dtype=object)
    counts = Counter(y.tolist())
    drawings = drawings_per_class(y, groups)
    per_class = kind == "full" or opts.method == "sigmoid"
    keep = sorted(c for c, n in drawings.items() if n >= 2 or not per_class)
    if per_class and len(keep) < 2:
        raise ValueError(
            f"`{label}` labels: need at least two classes with 2+ labelled images each to fit the {model} "
            f"model, got {dict(counts)}; label more images"
        )
    if not keep:
        raise ValueError(f"`{label}` labels: no labelled image to fit the {model} model")
    rows = [i for i, t in enumerate(y) if t in keep]
    m = _fit_kind(
        kind,
        [named[i] for i in rows],
        y[rows].astype(str),
        model=model,
        label=label,
        opts=opts,
        vocabulary=vocabulary,
        groups=None if groups is None else [groups[i] for i in rows],
    )
    m.summary.update(
        kind=kind, class_counts={c: int(counts[c]) for c in keep},
        dropped_classes=sorted(c for c in counts if c not in keep),
    )  # fmt: skip
    return m


#: candidates ``auto`` compares: (kind, calibration method, L2 inverse strength C; None = the option's).
#: ``scaling`` + ``none`` is the backend's reading unchanged: on 66 real dev faces no learned
#: candidate beat it for the face emotion. The full models try a strong and a weak penalty: with
#: hundreds of HOG features and tens of labels the right strength depends on how alike the labelled
#: faces are (one style: weak; many: strong), which only cross-validation can tell.
CANDIDATES = (
    ("scaling", "none", None), ("scaling", "temperature", None), ("scaling", "sigmoid", None),
    ("full", "temperature", None), ("full", "sigmoid", None), ("full", "temperature", 0.05),
    ("full", "temperature", 5.0),
)  # fmt: skip


def _name(c: tuple) -> str:
    return (
        f"{c[0]}+{c[1]}" + (f"+C{c[2]:g}" if c[2] is not None else "") + (f"+{c[3]}" if c[3] != "all" else "")
    )


def _with_features(cands: list[tuple], named, model: str, features: str) -> list[tuple]:
    """Each candidate with the feature set a full model reads (4th item): under ``auto`` every full
    candidate twice, anatomy first (the simpler: under ``--model full`` it leads the list, and the
    crop descriptors are taken only when they beat it by a standard error in cross-validation).
    Measured on within-source learning curves (10 fixed 30 % test splits x 4 random label orders,
    ``full`` + temperature; paired difference to anatomy+HOG always, mean +- SE over splits):

    | labels | afc | permissive | seraphina | zundamon | pooled |
    | --- | --- | --- | --- | --- | --- |
    | 8 | +0.00 +- 0.01 | +0.07 +- 0.04 | | | +0.01 +- 0.01 |
    | 16 | -0.00 +- 0.01 | | | | +0.04 +- 0.01 |
    | 32 | -0.00 +- 0.02 | | | | +0.04 +- 0.01 |
    | 48 | | | | | +0.03 +- 0.02 |
    | all (46 / 11 / 7 / 6 / 72) | +0.03 +- 0.03 | +0.08 +- 0.07 | -0.03 +- 0.03 | +0.10 +- 0.07 | +0.00 +- 0.02 |

    With ``FitOptions.C`` 0.05 as well (was 0.5), the change against the reader before both, at
    8 / 16 / 32 / 48 / all labels: pooled +0.02 / +0.04 / +0.06 / +0.06 / +0.05 (SE 0.01-0.02;
    balanced accuracy 0.47 / 0.46 / 0.53 / 0.60 / 0.61 -> 0.48 / 0.49 / 0.60 / 0.66 / 0.66), afc
    +0.00 / +0.00 / +0.02 / +0.05 +- 0.03 at 46, the small sources as above.
    Anatomy alone was better still at 48-72 pooled labels (+0.05 / +0.06 +- 0.02-0.03), but fixing
    it would throw away the descriptors where a style gives hundreds of labels (the issue's HOG
    alone: 0.82 at 280 labels of one style): the user's labels choose."""
    sets = ("anatomy", "all") if features == "auto" else (features,)
    sets = tuple(f for f in sets if feature_names(named, model, f)) or ("all",)
    return [(*c, f) for c in cands for f in (sets if c[0] == "full" else ("all",))]


def fit_model(
    named: Sequence[dict[str, float]], y: Sequence[str], *, model: str, label: str, opts: FitOptions,
    vocabulary: Sequence[str] | None = None, groups: Sequence[int] | None = None,
) -> LinearModel:  # fmt: skip
    """The calibrated model of one target. ``opts.model`` / ``opts.method`` fix the kind / calibration;
    ``auto`` compares the matching ``CANDIDATES`` (kind, calibration and penalty) by cross-validated
    log loss (a proper score: right answers with honest confidence) and leaves the first one (the
    backend's reading as is) only for a candidate that beats it by more than one standard error of
    the paired per-image difference: on 66 dev faces a temperature fitted in CV "won" by 0.02 nats
    and doubled the held-out ECE (0.08 -> 0.16). Too little data to compare (a class under 3
    images) keeps the first candidate. ``groups`` (``calibration.copies``): copies of one drawing
    stay in one fold and count as one labelled drawing."""
    cands = [
        c for c in CANDIDATES
        if opts.model in ("auto", c[0]) and opts.method in ("auto", c[1]) and (c[2] is None or opts.model == "auto")
    ] or [(opts.model, opts.method, None)]  # fmt: skip
    cands = _with_features(cands, named, model, opts.features)

    def with_c(c: tuple) -> FitOptions:
        return replace(opts, method=c[1], features=c[3], **({"C": c[2]} if c[2] is not None else {}))

    kept = [n for n in drawings_per_class(y, groups).values() if n >= 2]
    # k folds leave each class (k-1)/k of its images for fitting: 3+ images keep 2 (the minimum)
    k = min(opts.max_inner_folds, min(kept)) if len(kept) >= 2 else 0
    scores: dict[str, float] = {}
    best = cands[0]
    if len(cands) > 1 and k >= 3:
        runs = {
            c: cv_losses(
                c[0], named, y, model=model, label=label, opts=with_c(c), k=k, vocabulary=vocabulary,
                groups=groups,
            )
            for c in cands
        }  # fmt: skip
        runs = {c: r for c, r in runs.items() if r is not None}
        scores = {_name(c): float(np.average(r[0], weights=r[1])) for c, r in runs.items()}
        if cands[0] in runs:  # one-standard-error rule against the first (simplest) candidate
            base, w = runs[cands[0]]
            better = []
            for c, (loss, _) in runs.items():
                d = loss - base  # paired: same images, same folds
                mean = np.average(d, weights=w)
                se = np.sqrt(np.average((d - mean) ** 2, weights=w) / len(d))
                if mean + se < 0:
                    better.append((scores[_name(c)], c))
            if better:
                best = min(better, key=lambda t: t[0])[1]
        elif runs:
            best = min(runs, key=lambda c: scores[_name(c)])
    m = fit_model_kind(
        best[0], named, y, model=model, label=label, opts=with_c(best), vocabulary=vocabulary, groups=groups
    )
    if best[0] == "full":
        m.summary["features"] = best[3]
    if scores:
        m.summary["cv_log_loss"] = {c: round(v, 4) for c, v in scores.items()}
    return m


def full_proba(
    m: LinearModel, named: Sequence[dict[str, float] | None], classes: Sequence[str]
) -> np.ndarray:
    """``(N, len(classes))``: the model's probabilities of ``named`` rows in ``classes`` columns; a class
    it has none for keeps the backend's reading (``harmony_eval.calibrated.model_proba``, as at score
    time)."""
    return model_proba(m, [d or {} for d in named], classes)
