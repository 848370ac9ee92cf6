"""Several raters (``--raters anatomy,clip`` or ``anatomy,tagger``): every region read by each backend.

Combined reading, per region ``r``, over the raters ``j`` that read it: the weighted log-linear pool

    p_r = softmax(sum_j w_j log p_jr)          w_j = rater_weights[j] / sum of those present

(equal weights by default; ``agreement.pool``, the same pool that makes the holistic reading).
Features are every rater's, names prefixed ``<rater>:``, so a calibration fitted on this backend
(``harmony-eval calibrate --backend raters``) recalibrates the pooled reading from all of them.
Each rater's own reading stays in ``RegionPrediction.raters``; ``row_extras`` turns them into the
row's per-region ``raters_agreement`` (mean pairwise ``agreement.agree`` under the compatibility
matrix), ``scores.raters_agreement`` (the lowest region) and the ``raters_disagree`` flag: in some
region two raters each say an emotion (top probability >= ``region_confident``), different ones,
and agree below ``thresholds.raters_disagree``. Those faces are where the readers, not the
drawing, are in doubt: the review queue puts them first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from .. import agreement
from ..types import REGIONS, FaceInput, RegionPrediction

_DEFAULT_DISAGREE = 0.35  # as mixed_signals: below this two confident readings are incompatible


def parse_raters(raters: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [r.strip() for r in raters.split(",")] if isinstance(raters, str) else [str(r) for r in raters]
    names = [n for n in names if n]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise ValueError(f"`raters` is {raters!r}; name two or more different backends, e.g. anatomy,clip")
    if "raters" in names:
        raise ValueError("`raters` cannot contain raters itself")
    return names


def parse_weights(weights: str | Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    """``None`` -> equal; ``{"clip": 2}`` or ``"anatomy=1,clip=2"`` -> those (unnamed raters weigh 1)."""
    if weights is None:
        return dict.fromkeys(names, 1.0)
    if isinstance(weights, str):
        pairs = [w.split("=", 1) for w in weights.split(",") if w.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"`rater_weights` is {weights!r}; expected name=weight pairs, e.g. anatomy=1,clip=2"
            )
        weights = {k.strip(): v for k, v in pairs}
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise ValueError(f"`rater_weights` names {unknown}, not among the raters {names}")
    out = {n: float(weights.get(n, 1.0)) for n in names}
    if any(v < 0 for v in out.values()) or not any(out.values()):
        raise ValueError(f"`rater_weights` {out}: weights must be >= 0 and not all 0")
    return out


class RatersBackend:
    """A backend made of several backends (see the module docstring). Each rater gets the options
    that carry its own prefix (``clip_*`` for clip, ``tagger_*`` for tagger)."""

    def __init__(self, raters: Any = ("anatomy", "clip"), rater_weights: Any = None, **options: Any) -> None:
        from . import _factory, resolve_backend_name

        self.rater_names = parse_raters(raters)
        self.weights = parse_weights(rater_weights, self.rater_names)
        self.backends = {}
        resolved_names = {n: resolve_backend_name(n, options) for n in self.rater_names}
        prefixes = tuple(r + "_" for r in resolved_names.values())
        unused = [k for k in options if not k.startswith(prefixes)]
        if unused:  # a key no rater reads would be dropped unseen (a misspelling, or a backend not asked for)
            raise TypeError(
                f"unknown option {unused[0]!r} for raters {','.join(self.rater_names)}: each rater reads "
                f"only options with its own prefix ({', '.join(p + '*' for p in prefixes)})"
            )
        for n, resolved in resolved_names.items():
            own = {k: v for k, v in options.items() if k.startswith(resolved + "_")}
            if resolved == "anatomy":  # its factory takes `params`, the CLI says `anatomy_params`
                own = {k[len("anatomy_") :]: v for k, v in own.items()}
            self.backends[n] = _factory(resolved)(**own)
        self.name = "raters:" + "+".join(self.rater_names)
        # a rater that reads the measurement stage's numbers carries them as its features already
        self.reads_measurements = any(getattr(b, "reads_measurements", False) for b in self.backends.values())

    def predict(self, batch: list[FaceInput], emotions: list[str]) -> list[RegionPrediction]:
        """Every rater on the whole batch (each batches its own crops), then the pool per region."""
        per = {n: b.predict(batch, emotions) for n, b in self.backends.items()}
        out = []
        for i in range(len(batch)):
            preds = {n: per[n][i] for n in self.rater_names}
            probs: dict[str, dict[str, float] | None] = {}
            for r in REGIONS:
                read = {
                    n: agreement.as_vector(p.probs[r], emotions) for n, p in preds.items() if p.probs.get(r)
                }
                pooled = agreement.pool(read, self.weights) if read else None
                probs[r] = (
                    None if pooled is None else {e: float(v) for e, v in zip(emotions, pooled, strict=True)}
                )
            feats, names = {}, {}
            for n, p in preds.items():
                for g, v in p.features.items():
                    feats[g] = np.concatenate([feats[g], v]) if g in feats else np.asarray(v, dtype=float)
                    names[g] = names.get(g, []) + [f"{n}:{x}" for x in p.feature_names.get(g, [])]
            raters = {n: dict(p.probs) for n, p in preds.items()}
            # quality is the measurement stage's, set by the pipeline (the same whatever rates)
            out.append(RegionPrediction(probs, feats, names, raters=raters))
        return out


@dataclass
class RaterExtras:
    """What several raters add to a row: per-region agreement, the lowest, the flag and why."""

    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    score: float | None = None
    disagree: bool = False
    why: str = ""


def _top(p: Mapping[str, float]) -> tuple[str, float]:
    k = max(p, key=p.get)
    return k, float(p[k])


def row_extras(
    pred: RegionPrediction, emotions: list[str], compat: np.ndarray, thresholds: Mapping[str, Any]
) -> RaterExtras:
    """Per-region rater agreement and the ``raters_disagree`` flag (module docstring)."""
    x = RaterExtras()
    if len(pred.raters) < 2:
        return x
    confident = float(thresholds.get("region_confident", 0.5))
    line = float(thresholds.get("raters_disagree", _DEFAULT_DISAGREE))
    lowest: list[float] = []
    for r in REGIONS:
        read = {n: p[r] for n, p in pred.raters.items() if p.get(r)}
        entry: dict[str, Any] = {
            "raters": {n: {e: round(float(p[e]), 4) for e in emotions} for n, p in read.items()}
        }
        if len(read) >= 2:
            vec = {n: agreement.as_vector(p, emotions) for n, p in read.items()}
            pairs = list(combinations(vec, 2))
            a = float(np.mean([agreement.agree(vec[i], vec[j], compat) for i, j in pairs]))
            entry["raters_agreement"] = round(a, 4)
            lowest.append(a)
            for i, j in pairs:
                (ei, pi), (ej, pj) = _top(read[i]), _top(read[j])
                if (
                    not x.disagree
                    and min(pi, pj) >= confident
                    and ei != ej
                    and agreement.agree(vec[i], vec[j], compat) < line
                ):
                    x.disagree = True
                    x.why = (
                        f"raters disagree on the {r}: {i} reads {ei} ({pi:.2f}), {j} reads {ej} ({pj:.2f})"
                    )
        x.regions[r] = entry
    x.score = round(min(lowest), 4) if lowest else None
    return x
