"""Features -> emotion probabilities: one linear softmax model per region.

    probs = softmax(W @ ((x - mean) / scale) + b)        (rows of W, b = emotions)

Each region's model is a ``harmony_eval.linear.LinearModel``, the one logistic-regression format the
calibration files use too. Parameters live in a JSON file (``harmony_eval/config/anatomy.json`` by
default)::

    {"format": "harmony_eval.anatomy", "version": 2,
     "source": "free text: where the numbers come from",
     "models": {region: LinearModel.to_dict()}}          # classes = emotions, features = the
                                                         # region's measurement names; notes: why

A vocabulary that is a subset (or a reordering) of a model's classes takes the matching rows, so the
softmax renormalises over it. ``fit_params`` refits the models from labelled features (the
calibration workflow); ``save_params`` / ``load_params`` round-trip them exactly.

The version-1 layout (one ``emotions`` list and ``feature_names`` / ``mean`` / ``std`` / ``coef`` /
``intercept`` / ``notes`` keyed by region) still loads: converted in memory, losslessly, with a
one-line warning naming the file and ``python -m harmony_eval.backends.anatomy.upgrade FILE``, which
rewrites it. Loading rather than refusing, because a run's ``run.json`` may name such a file, and a
run must rebuild from its record; the conversion moves no number.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...linear import LinearModel, dumps, models_from_dict
from ...resources import config_path
from ...textio import load_json_finite

FORMAT = "harmony_eval.anatomy"
PARAMS_VERSION = 2
_FIX = "refit it with harmony_eval.backends.anatomy.mapping.fit_params"
_V1_KEYS = ("version", "emotions", "feature_names", "mean", "std", "coef", "intercept")
UPGRADE = "python -m harmony_eval.backends.anatomy.upgrade"


def default_params_path() -> Path:
    return config_path("anatomy.json")


@dataclass
class AnatomyParams:
    """The anatomy mapping: one ``LinearModel`` per region (``eyes``, ``brows``, ``mouth``)."""

    models: dict[str, LinearModel]
    source: str = ""
    path: str = field(default="", compare=False)  # where it was read from (not saved)

    @property
    def feature_names(self) -> dict[str, list[str]]:
        return {r: list(m.features) for r, m in self.models.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": PARAMS_VERSION,
            "source": self.source,
            "models": {r: m.to_dict() for r, m in self.models.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "params") -> AnatomyParams:
        """Validate and build; errors name ``where``, the key path and the expected shape."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ValueError(
                f"{where}: not an anatomy parameter file (format {d.get('format')!r}, expected {FORMAT!r}); "
                "pass a file written by mapping.save_params"
            )
        if d.get("version") != PARAMS_VERSION:
            raise ValueError(
                f"{where}: version {d.get('version')!r}, this harmony_eval reads {PARAMS_VERSION}"
            )
        unknown = [k for k in d if k not in ("format", "version", "source", "models")]
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; expected format, version, source, models")
        return cls(models_from_dict(d["models"], where, _FIX), str(d.get("source", "")), where)


def from_v1(d: Mapping[str, Any], where: str = "params") -> AnatomyParams:
    """The version-1 layout -> ``AnatomyParams``, every number kept (``std`` is the ``scale``)."""
    missing = [k for k in _V1_KEYS if k not in d]
    unknown = [k for k in d if k not in (*_V1_KEYS, "source", "notes")]
    if missing or unknown:
        what = f"missing key(s) {missing}" if missing else f"unknown key(s) {unknown}"
        raise ValueError(f"{where}: version-1 anatomy parameters with {what}; expected {list(_V1_KEYS)}")
    models = {}
    for region, names in d["feature_names"].items():
        part = {k: d[k].get(region) for k in ("mean", "std", "coef", "intercept")}
        m = {"region": region, "classes": d["emotions"], "features": names, "mean": part["mean"],
             "scale": part["std"], "coef": part["coef"], "intercept": part["intercept"]}  # fmt: skip
        if (d.get("notes") or {}).get(region):
            m["notes"] = d["notes"][region]
        models[region] = LinearModel.from_dict(m, f"{where} (version 1, std as scale): models.{region}", _FIX)
    return AnatomyParams(models, str(d.get("source", "")), where)


def load_params(path: str | os.PathLike | None = None) -> AnatomyParams:
    """Read and validate a parameter file (default: the shipped ``config/anatomy.json``)."""
    p = Path(path) if path is not None else default_params_path()
    try:
        d = load_json_finite(p.read_text(encoding="utf-8"), str(p))
    except FileNotFoundError:
        raise FileNotFoundError(f"`params` file {p} not found; pass a path written by save_params") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 JSON; pass a file written by mapping.save_params") from None
    except ValueError as e:  # JSONDecodeError is a ValueError; load_json_finite's message names the file
        raise ValueError(str(e) if str(p) in str(e) else f"{p}: not valid JSON ({e})") from None
    if isinstance(d, Mapping) and "format" not in d and d.get("version") == 1:
        params = from_v1(d, str(p))
        warnings.warn(
            f"{p}: anatomy parameters in the version-1 layout, converted in memory (no number changes); "
            f"rewrite the file once with `{UPGRADE} {p}`",
            stacklevel=2,
        )
        return params
    return AnatomyParams.from_dict(d, str(p))


def save_params(params: AnatomyParams, path: str | os.PathLike) -> None:
    """Write ``params`` as JSON. Floats are written with ``repr`` precision, so ``load_params`` gives
    back exactly the same numbers and save -> load -> save is byte-identical."""
    if not isinstance(params, AnatomyParams):
        raise TypeError(
            f"`params` must be AnatomyParams (from load_params or fit_params), got {type(params).__name__}"
        )
    Path(path).write_text(dumps(params.to_dict()), encoding="utf-8")


def region_probs(
    params: AnatomyParams, region: str, x: np.ndarray, emotions: Sequence[str], confidence: float = 1.0
) -> np.ndarray:
    """Distribution ``(K,)`` over ``emotions`` for feature vector ``x`` of ``region``.

    ``confidence`` in [0, 1] scales the logits: 0 gives the uniform distribution (used for a region
    that is barely visible, so it carries no opinion instead of noise)."""
    model = params.models.get(region)
    if model is None:
        raise ValueError(
            f"anatomy parameters {params.path or '(in memory)'} have no {region!r} model (they have "
            f"{list(params.models)}); {_FIX}"
        )
    missing = [e for e in emotions if e not in model.classes]
    if missing:
        raise ValueError(
            f"emotion(s) {missing} are not in the anatomy parameters (which cover {model.classes}); "
            "refit them with mapping.fit_params on labels that include them"
        )
    return model.predict_proba(x, emotions, confidence)


def fit_params(
    features: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[str]] | Sequence[str],
    feature_names: Mapping[str, Sequence[str]],
    emotions: Sequence[str],
    prior: AnatomyParams | None = None,
    c: float = 1.0,
    balanced: bool = True,
    source: str = "fit_params",
    prior_weight: float = 0.0,
) -> AnatomyParams:
    """Fit one standardised multinomial logistic regression per region: the same format as
    ``load_params`` gives (``classes`` = ``emotions``, one logit row each).

    ``features[region]`` is ``(N_r, F_r)``; ``labels`` is one label list for every region (the face's
    label) or a mapping ``region -> labels`` (per-region labels, length ``N_r``). Rows whose label is
    not in ``emotions`` are dropped. An emotion with no example keeps ``prior``'s row (if given) or
    gets zero weights and an intercept 3 below the others (rarely chosen). ``c`` is sklearn's inverse
    regularisation strength; ``balanced`` weights classes inversely to their counts.

    ``prior_weight`` in [0, 1] shrinks towards ``prior``: every row becomes ``(1 - prior_weight) *
    fitted + prior_weight * prior`` (logits, i.e. a geometric mixture of the two models). With a
    hundred labelled faces, 0.3 gave the best cross-validated balanced accuracy on the dev set (0.52
    against 0.40 for the fit alone and 0.49 for the prior alone).
    """
    if not 0.0 <= prior_weight <= 1.0:
        raise ValueError(f"`prior_weight` must be in [0, 1], got {prior_weight}")
    if prior_weight > 0 and prior is None:
        raise ValueError("`prior_weight` > 0 needs a `prior` parameter set (e.g. load_params())")
    if prior is not None and not isinstance(prior, AnatomyParams):
        raise TypeError(f"`prior` must be AnatomyParams (load_params()), got {type(prior).__name__}")
    from sklearn.linear_model import LogisticRegression

    emotions = list(emotions)
    models: dict[str, LinearModel] = {}
    for region, x in features.items():
        x = np.asarray(x, float)
        names = list(feature_names[region])
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"features[{region!r}] has shape {x.shape}, expected (N, {len(names)})")
        y = np.asarray(labels[region] if isinstance(labels, Mapping) else labels, dtype=object)
        if len(y) != len(x):
            raise ValueError(f"labels for {region!r}: {len(y)} labels for {len(x)} feature rows")
        keep = np.array([v in emotions for v in y], bool)
        x, y = x[keep], y[keep]
        if len(set(y)) < 2:
            raise ValueError(f"region {region!r}: need at least two emotions among the labels, got {set(y)}")
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        clf = LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=2000)
        clf.fit((x - mean) / std, y)
        classes = list(clf.classes_)
        coef = np.asarray(clf.coef_, float)
        icpt = np.asarray(clf.intercept_, float)
        if len(classes) == 2:  # sklearn returns one row for two classes: split it symmetrically
            coef, icpt = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
        w = np.zeros((len(emotions), len(names)))
        b = np.full(len(emotions), float(icpt.min()) - 3.0)
        pm = prior.models.get(region) if prior is not None else None
        usable = pm is not None and list(pm.features) == names and not pm.binary
        for i, e in enumerate(emotions):
            prior_row = _prior_row(pm, e, mean, std) if usable and e in pm.classes else None
            if e in classes:
                w[i], b[i] = coef[classes.index(e)], icpt[classes.index(e)]
                if prior_row is not None and prior_weight > 0:
                    w[i] = (1 - prior_weight) * w[i] + prior_weight * prior_row[0]
                    b[i] = (1 - prior_weight) * b[i] + prior_weight * prior_row[1]
            elif prior_row is not None:
                w[i], b[i] = prior_row
        models[region] = LinearModel(
            region=region, label=region if isinstance(labels, Mapping) else "emotion", classes=emotions,
            features=names, mean=mean.tolist(), scale=std.tolist(), coef=w.tolist(), intercept=b.tolist(),
            summary={"n": int(len(y)), "class_counts": {e: int(np.sum(y == e)) for e in emotions if e in classes},
                     "C": float(c), "balanced": bool(balanced), "prior_weight": float(prior_weight)},
        )  # fmt: skip
    return AnatomyParams(models, source)


def _prior_row(
    prior: LinearModel, emotion: str, mean: np.ndarray, std: np.ndarray
) -> tuple[np.ndarray, float]:
    """The prior's row for ``emotion`` re-expressed in a new standardisation ``(mean, std)``:
    ``w.(x - pm)/ps = (w std/ps).(x - mean)/std + w.(mean - pm)/ps``."""
    j = prior.classes.index(emotion)
    pm, ps = np.asarray(prior.mean, float), np.asarray(prior.scale, float)
    pw = np.asarray(prior.coef, float)[j]
    return pw * std / ps, float(prior.intercept[j]) + float(pw @ ((mean - pm) / ps))
