"""Agreement of predictions with human labels, with bootstrap intervals. Pure numpy, so that the tests
can check them against an independent reference (scikit-learn) and a hand computation.

Labels are strings; ``labels`` (the classes a confusion matrix is built over) defaults to the sorted
union of the true and predicted labels, as scikit-learn does.

- accuracy            = sum_i [y_i = yhat_i] / n
- balanced_accuracy   = mean over classes present in ``y`` of recall_c = C_cc / sum_j C_cj
- macro_f1            = mean over ``labels`` of F1_c = 2 C_cc / (2 C_cc + FP_c + FN_c)   (0 if 0/0)
- kappa (Cohen)       = (p_o - p_e) / (1 - p_e),  p_o = tr(C) / n,  p_e = sum_c row_c col_c / n^2
- ece (top label)     = sum_b |B_b| / n * |acc(B_b) - conf(B_b)| over ``n_bins`` equal-width bins of
                        the top probability, bin b = (b/M, (b+1)/M] (Guo et al. 2017, eq. 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from harmony_eval.numerics import balanced_accuracy  # one definition, shared with the benchmarks

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "kappa")


def confusion(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``(L, L)`` counts, rows = true label, columns = predicted, over ``labels``."""
    labels = sorted(set(y_true) | set(y_pred)) if labels is None else list(labels)
    idx = {c: i for i, c in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in idx and p in idx:
            m[idx[t], idx[p]] += 1
    return m, labels


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    m, _ = confusion(y_true, y_pred)
    tp = np.diag(m).astype(float)
    denom = 2 * tp + (m.sum(axis=0) - tp) + (m.sum(axis=1) - tp)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean()) if len(f1) else float("nan")


def kappa(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Cohen's kappa; NaN when chance agreement is 1 (one class only on both sides)."""
    m, _ = confusion(y_true, y_pred)
    n = m.sum()
    if n == 0:
        return float("nan")
    po = np.trace(m) / n
    pe = float(m.sum(axis=1) @ m.sum(axis=0)) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def reliability(proba: np.ndarray, y_idx: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Per bin of the top probability: ``count``, mean ``confidence``, ``accuracy`` (NaN if empty).

    ``proba``: ``(N, K)`` rows summing to 1; ``y_idx``: ``(N,)`` true class index into the columns.
    """
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_idx)
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=correct.astype(float), minlength=n_bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": acc, "edges": np.linspace(0, 1, n_bins + 1)}


def ece(proba: np.ndarray, y_idx: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of the top label (0 = what it says is what happens)."""
    r = reliability(proba, y_idx, n_bins)
    n = r["count"].sum()
    if n == 0:
        return float("nan")
    keep = r["count"] > 0
    return float(np.sum(r["count"][keep] / n * np.abs(r["accuracy"][keep] - r["confidence"][keep])))


def bootstrap_ci(
    stat: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile interval of ``stat(indices)`` over ``n_boot`` resamples (with replacement) of ``n``
    items. Resamples where the statistic is undefined (NaN) are skipped."""
    if n == 0 or n_boot <= 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=float)
    vals = vals[~np.isnan(vals)]
    if not len(vals):
        return [float("nan"), float("nan")]
    a = (1 - level) / 2 * 100
    return [float(np.percentile(vals, a)), float(np.percentile(vals, 100 - a))]


def evaluate(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    proba_before: np.ndarray | None = None,
    proba_after: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    n_bins: int = 10,
) -> dict:
    """Every figure of one target with 95 % bootstrap intervals under ``ci95``.

    ``proba_*``: ``(N, K)`` over ``classes`` (the column order); ECE is NaN without them.
    """
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    fns: dict[str, Callable[[np.ndarray], float]] = {
        "accuracy": lambda i: accuracy(yt[i], yp[i]),
        "balanced_accuracy": lambda i: balanced_accuracy(yt[i], yp[i]),
        "macro_f1": lambda i: macro_f1(list(yt[i]), list(yp[i])),
        "kappa": lambda i: kappa(list(yt[i]), list(yp[i])),
    }
    if classes is not None:
        col = {c: k for k, c in enumerate(classes)}
        y_idx = np.array([col.get(t, -1) for t in yt])
        for name, pr in (("ece_before", proba_before), ("ece_after", proba_after)):
            if pr is not None:
                fns[name] = lambda i, pr=pr: ece(pr[i], y_idx[i], n_bins)
    out: dict = {"n": len(yt)}
    ci: dict[str, list[float]] = {}
    for k, (name, fn) in enumerate(fns.items()):
        out[name] = _clean(fn(np.arange(len(yt))))
        ci[name] = [_clean(v) for v in bootstrap_ci(fn, len(yt), n_boot, seed + k)]
    for name in ("ece_before", "ece_after"):
        out.setdefault(name, None)
        ci.setdefault(name, [None, None])
    out["ci95"] = ci
    m, labels = confusion(list(yt), list(yp), sorted(set(yt) | set(yp) | set(classes or [])))
    out["confusion"] = {"labels": labels, "matrix": m.tolist()}
    return out


def _clean(v: float) -> float | None:
    """JSON-safe: NaN -> None, else rounded to 4 decimals (figures, not parameters)."""
    return None if v is None or np.isnan(v) else round(float(v), 4)
