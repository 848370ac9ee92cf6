"""Verdict thresholds fitted from human verdict labels (perfect / acceptable / broken).

Only the two harmony lines move (``perfect_harmony``, ``broken_harmony``); the flag and check rules
stay as configured in ``config/verdict.yaml``. The pair is chosen on a 0.025 grid for the best
balanced accuracy against the labels, then Cohen's kappa, then the smallest change from the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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
    return np.array(forced, dtype=bool), np.array(eligible, dtype=bool), np.array(h, dtype=float)


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
