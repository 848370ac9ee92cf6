"""Agreement scores between region readings, all in [0, 1], higher = more coherent.

Every region reading is a probability vector ``p`` over the vocabulary ``E`` (length K). With the
compatibility matrix ``C`` (K x K, symmetric, positive definite, ones on the diagonal, from
``config/verdict.yaml``)

    agree(p, q) = p^T C q / sqrt(p^T C p * q^T C q)

is the cosine of the two readings under ``C``: 1 when both lean the same way, near 0 when they lean to
incompatible emotions. It measures *direction*, not confidence: two regions that both read "angry" at
0.5 agree fully (the raw ``p^T C q`` would be 0.4 and fail the check), while how clearly the face
reads is judged separately (``low_confidence`` flag, ``target_match``). An unreadable (uniform)
region against a clear one lands in between (about 0.55 for K = 4), never at either end.

- ``eyes_mouth    = agree(p_eyes, p_mouth)``                       (checklist point 1)
- ``brows_tension = agree(p_brows, (p_eyes + p_mouth) / 2)``       (point 2: brows vs the face's tension)
- ``coherence     = sum_r w_r agree(p_r, p_holistic) / sum_r w_r`` over eyes, brows, mouth (point 3)
- ``target_match  = p_holistic[target]``                           (when a target is known)
- ``harmony       = sum_s v_s score_s / sum_s v_s`` over the scores that exist

``p_holistic`` is the weighted log-linear pool ``softmax(sum_r w_r log p_r)`` (normalised weights).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .numerics import softmax
from .types import Probs

SCORE_KEYS = ("eyes_mouth", "brows_tension", "coherence", "target_match")
_EPS = 1e-4


def compatibility_matrix(emotions: list[str], pairs: Mapping[str, float]) -> np.ndarray:
    """K x K matrix from ``{"a-b": c}`` pairs; unlisted pairs are 0, the diagonal is 1.

    >>> compatibility_matrix(["neutral", "happy"], {"neutral-happy": 0.5}).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    k = len(emotions)
    c = np.eye(k)
    index = {e: i for i, e in enumerate(emotions)}
    for key, value in pairs.items():
        a, _, b = key.partition("-")
        if not b or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"compatibility entry {key!r}: {value!r}; expected 'a-b': number in [0, 1]")
        if a in index and b in index:  # pairs of emotions outside the vocabulary are skipped
            c[index[a], index[b]] = c[index[b], index[a]] = float(value)
    return c


def as_vector(p: Probs, emotions: list[str]) -> np.ndarray:
    return np.array([float(p.get(e, 0.0)) for e in emotions])


def agree(p: np.ndarray, q: np.ndarray, compat: np.ndarray) -> float:
    """``p^T C q / sqrt(p^T C p * q^T C q)`` in [0, 1] for distributions ``p``, ``q`` of shape ``(K,)``.

    >>> c = np.eye(2)
    >>> round(agree(np.array([0.6, 0.4]), np.array([0.6, 0.4]), c), 3)
    1.0
    """
    denom = np.sqrt(float(p @ compat @ p) * float(q @ compat @ q))
    return float(np.clip(p @ compat @ q / denom, 0.0, 1.0)) if denom > 0 else 0.0


def pool(readings: Mapping[str, np.ndarray | None], weights: Mapping[str, float]) -> np.ndarray | None:
    """Weighted log-linear pool of the available readings; ``None`` if there are none.

    >>> pool({"a": np.array([0.9, 0.1]), "b": np.array([0.9, 0.1])}, {"a": 1, "b": 1}).round(3).tolist()
    [0.9, 0.1]
    """
    items = [(r, p) for r, p in readings.items() if p is not None and weights.get(r, 0) > 0]
    if not items:
        return None
    total = sum(weights[r] for r, _ in items)
    logit = sum(weights[r] / total * np.log(np.clip(p, _EPS, 1.0)) for r, p in items)
    return softmax(logit)


def temper(p: np.ndarray | None, beta: float) -> np.ndarray | None:
    """``softmax(beta * log p)``: ``beta < 1`` spreads a reading that claims more than it knows, ``1``
    keeps it; the order of the emotions never changes.

    >>> temper(np.array([0.8, 0.2]), 0.5).round(3).tolist()
    [0.667, 0.333]
    """
    if p is None or beta == 1.0:
        return p
    return softmax(beta * np.log(np.clip(p, _EPS, 1.0)))


def agreement_scores(
    readings: Mapping[str, np.ndarray | None],
    holistic: np.ndarray | None,
    compat: np.ndarray,
    pool_weights: Mapping[str, float],
    target_index: int | None = None,
) -> dict[str, float | None]:
    """The four scores of the module docstring; a score whose inputs are missing is ``None``."""
    eyes, brows, mouth = readings.get("eyes"), readings.get("brows"), readings.get("mouth")
    scores: dict[str, float | None] = dict.fromkeys(SCORE_KEYS)
    if eyes is not None and mouth is not None:
        scores["eyes_mouth"] = agree(eyes, mouth, compat)
    tension = [p for p in (eyes, mouth) if p is not None]
    if brows is not None and tension:
        scores["brows_tension"] = agree(brows, np.mean(tension, axis=0), compat)
    if holistic is not None:
        parts = [
            (pool_weights.get(r, 1.0), agree(p, holistic, compat))
            for r, p in (("eyes", eyes), ("brows", brows), ("mouth", mouth))
            if p is not None
        ]
        if parts:
            scores["coherence"] = sum(w * s for w, s in parts) / sum(w for w, _ in parts)
        if target_index is not None:
            scores["target_match"] = float(holistic[target_index])
    return scores


def harmony(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """Weighted mean of the scores that exist (``None`` when none do)."""
    items = [(weights.get(k, 0.0), v) for k, v in scores.items() if v is not None and weights.get(k, 0.0) > 0]
    if not items:
        return None
    return sum(w * v for w, v in items) / sum(w for w, _ in items)
