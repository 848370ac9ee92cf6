"""The few numeric helpers every stage shares, defined once: ``softmax``, ``balanced_accuracy``.

They were written out six and two times (agreement, the anatomy mapping, the CLIP and tagger
backends, calibration; the benchmarks and calibration metrics); one definition keeps them from
drifting (e.g. one copy dropping the max subtraction that keeps ``exp`` from overflowing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed as ``exp(z - max z)`` (no overflow).

    >>> softmax(np.array([0.0, np.log(3.0)])).round(3).tolist()
    [0.25, 0.75]
    >>> softmax(np.array([[1000.0, 1000.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def balanced_accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Mean recall over the classes present in ``y_true`` (as sklearn's ``balanced_accuracy_score``);
    NaN when there is no label.

    >>> balanced_accuracy(["a", "a", "a", "b"], ["a", "a", "b", "b"])
    0.8333333333333333
    """
    y, p = np.asarray(list(y_true), dtype=object), np.asarray(list(y_pred), dtype=object)
    if len(y) != len(p):
        raise ValueError(f"`y_true` and `y_pred` differ in length: {len(y)} vs {len(p)}")
    if not len(y):
        return float("nan")
    return float(np.mean([np.mean(p[y == c] == c) for c in sorted(set(y.tolist()))]))


__all__ = ["balanced_accuracy", "softmax"]
