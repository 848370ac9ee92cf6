"""Which scored images a person should label first: the ones whose labels teach the readers most.

``rank_rows(rows)`` orders output-contract rows (``results.jsonl``) by how informative a human label
would be, then spreads near-identical rows apart. Used by ``harmony-eval review`` (the order of the
review page) and meant for ``calibrate --suggest``. Pure: no I/O beyond reading the packaged
``verdict.yaml`` when no thresholds are given.

Informativeness of one row, each part in 0..1, their mean:

- ``uncertainty``: ``(1 - max(probs)) / (1 - 1/K)``; 1 when the whole-face reading is uniform.
- ``disagreement``: half the spread of the region readings (how many distinct argmax among eyes /
  brows / mouth, 0 when they agree, 1 when all differ) and half ``1 - min(eyes_mouth,
  brows_tension, coherence)``: regions that do not agree are where a reader is wrong.
- ``near_threshold``: ``1 - distance / 0.1`` (clipped at 0) for the closest of harmony to
  ``perfect_harmony`` / ``broken_harmony`` and each check score to its line: a small change of
  reading would flip the verdict there, so a label decides it.

The parts weigh alike: nothing measured says one teaches more than another. ``ok`` rows flagged
``raters_disagree`` (``--raters``: two readers confidently read different emotions) come before every
other row: there the readers, not the drawing, are in doubt, and a label settles which is right.
Rows that are not ``ok`` come after every ``ok`` row (``no_face`` first, then errors): a label of an image with no
readings teaches the region readers nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

CHECK_KEYS = ("eyes_mouth", "brows_tension", "coherence")
REGION_KEYS = ("eyes", "brows", "mouth")
NEAR_MARGIN = 0.1  # a score this far from a verdict line or closer counts as "near" (0.1 = a tenth of 0..1)
# Diversity: a candidate loses this much per pick of its (target, verdict) group among the last
# ``DIVERSITY_WINDOW`` picks. 0.15 x 2 lets a clearly more informative row still come first (a gap
# over 0.3) while near-ties alternate between groups instead of running in a block.
DIVERSITY_PENALTY = 0.15
DIVERSITY_WINDOW = 2
_TIER = {"ok": 0, "no_face": 1}  # anything else (error, unknown) is tier 2


def _argmax(p: Any) -> str | None:
    if not isinstance(p, Mapping) or not p:
        return None
    vals = {k: v for k, v in p.items() if isinstance(v, (int, float))}
    return max(vals, key=lambda k: (vals[k], k)) if vals else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def informativeness(row: Mapping[str, Any], thresholds: Mapping[str, Any]) -> dict[str, float]:
    """The three parts (``uncertainty``, ``disagreement``, ``near_threshold``) and their mean
    ``score`` for one row; see the module docstring for the formulas."""
    probs = row.get("probs") if isinstance(row.get("probs"), Mapping) else {}
    vals = [v for v in (_num(x) for x in probs.values()) if v is not None]
    # no reading at all: as unsure as it gets
    uncertainty = (1.0 - max(vals)) / (1.0 - 1.0 / len(vals)) if len(vals) >= 2 else 1.0
    regions = row.get("regions") if isinstance(row.get("regions"), Mapping) else {}
    tops = [t for t in (_argmax((regions.get(r) or {}).get("probs")) for r in REGION_KEYS) if t]
    spread = (len(set(tops)) - 1) / (len(tops) - 1) if len(tops) >= 2 else 0.0
    scores = row.get("scores") if isinstance(row.get("scores"), Mapping) else {}
    checks = {c: _num(scores.get(c)) for c in CHECK_KEYS}
    present = [v for v in checks.values() if v is not None]
    low = 1.0 - min(present) if present else 0.0
    disagreement = 0.5 * spread + 0.5 * min(1.0, max(0.0, low))
    lines: list[tuple[float | None, Any]] = [
        (_num(row.get("harmony")), thresholds.get("perfect_harmony")),
        (_num(row.get("harmony")), thresholds.get("broken_harmony")),
    ]
    lines += [(checks[c], (thresholds.get("checks") or {}).get(c)) for c in CHECK_KEYS]
    dists = [abs(x - float(t)) for x, t in lines if x is not None and _num(t) is not None]
    near = max(0.0, 1.0 - min(dists) / NEAR_MARGIN) if dists else 0.0
    parts = {"uncertainty": uncertainty, "disagreement": disagreement, "near_threshold": near}
    parts = {k: min(1.0, max(0.0, v)) for k, v in parts.items()}
    return {**parts, "score": sum(parts.values()) / 3.0}


def _default_thresholds() -> dict[str, Any]:
    from .verdict import VerdictConfig

    return VerdictConfig.load().thresholds


def _adjusted(key: tuple, groups: dict, recent: list, score: dict) -> tuple[float, float, int]:
    """Sort key of a group's best remaining row: penalised score, raw score, earlier index."""
    head = groups[key][-1]
    return (score[head] - DIVERSITY_PENALTY * recent.count(key), score[head], -head)


def rank_rows(rows: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Any] | None = None) -> list[int]:
    """Indices of ``rows``, most informative label first; a permutation of ``range(len(rows))``.

    Args:
        rows: output-contract rows (``results.jsonl``); missing keys are treated as "no reading".
        thresholds: ``VerdictConfig.thresholds`` (``perfect_harmony``, ``broken_harmony``,
            ``checks``); ``None`` = the packaged ``verdict.yaml`` (pass a run's own when it was
            scored with a calibration or another verdict config).

    Within each status tier (ok, no_face, the rest) rows are picked greedily by informativeness
    minus ``DIVERSITY_PENALTY`` for each of the last ``DIVERSITY_WINDOW`` picks from the same
    (target, verdict) group, so a run of near-identical rows is interleaved with other groups.
    Ties break by index: the order is deterministic.
    """
    th = dict(thresholds) if thresholds is not None else _default_thresholds()
    tiers: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        tier = _TIER.get(str(row.get("status", "ok")), 2)
        if tier == 0 and "raters_disagree" in (row.get("flags") or []):
            tier = -1  # readers in conflict first (module docstring)
        tiers[tier].append(i)
    score = {i: informativeness(rows[i], th)["score"] for t in tiers.values() for i in t}
    order: list[int] = []
    for tier in sorted(tiers):
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i in tiers[tier]:
            groups[(rows[i].get("target"), rows[i].get("verdict"))].append(i)
        for g in groups.values():  # each group's best first; popped from the end
            g.sort(key=lambda i: (score[i], -i))
        recent: list[tuple] = []
        while groups:
            key = max(groups, key=lambda k: _adjusted(k, groups, recent, score))
            order.append(groups[key].pop())
            if not groups[key]:
                del groups[key]
            recent = (recent + [key])[-DIVERSITY_WINDOW:]
    return order
