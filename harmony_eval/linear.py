"""One logistic-regression model format, shared by the anatomy mapping (``config/anatomy.json``) and the
calibrated readers (``calibration.json``): one dataclass, one ``to_dict`` / ``from_dict``, one
validator, one ``predict_proba``. (Before, each had its own format, loader and validator.)

A model maps a named feature vector ``x`` (F,) to probabilities over ``classes`` (C,)::

    x  = x where known, else impute (default: mean)       missing features
    z  = (x - mean) / scale                               standardisation
    d  = coef @ z + intercept                             (C,) multinomial logits; (1,) log-odds for 2 classes
    p  = calibration(d)                                   none: softmax(d) (sigmoid(d) for one row);
                                                          temperature: softmax(beta * d) (one row: [-d, d]);
                                                          sigmoid: p_k = 1 / (1 + exp(a_k d_k + b_k)),
                                                          renormalised (one row: p1, 1 - p1)

exactly as scikit-learn's ``LogisticRegression`` (under ``CalibratedClassifierCV``). JSON form, one
object per model (``impute`` and ``notes`` only when set)::

    {"region": "mouth", "label": "mouth", "classes": [C], "features": [F], "impute": [F],
     "mean": [F], "scale": [F], "coef": [[F] x R], "intercept": [R],     # R = C, or 1 when C = 2
     "calibration": {"method": "none"}, "summary": {...}, "notes": {group: "why"}}

Floats are written with ``repr`` precision: save -> load -> save is byte-identical. No pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .numerics import softmax

METHODS = ("sigmoid", "temperature", "none")
#: JSON keys in file order; the first block is required.
REQUIRED = ("classes", "features", "mean", "scale", "coef", "intercept")
OPTIONAL = ("region", "label", "impute", "calibration", "summary", "notes")
_ORDER = ("region", "label", "classes", "features", "impute", "mean", "scale", "coef", "intercept",
          "calibration", "summary", "notes")  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow warnings


def _shape(v: Any) -> tuple[int, ...] | str:
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return "not a (rectangular) list of numbers"
    if not np.all(np.isfinite(a)):
        return "holds a value that is not a finite number"
    return a.shape


def check_model(d: Mapping[str, Any], where: str, fix: str = "") -> None:
    """Raise ``ValueError`` naming ``where`` (file and key path), the key, its shape and the expected
    one when a model's parts do not line up. ``fix`` is appended: how to get a good file."""
    tail = _tail(fix)
    missing = [k for k in REQUIRED if k not in d]
    unknown = [k for k in d if k not in REQUIRED + OPTIONAL]
    if missing or unknown:
        what = f"missing key(s) {missing}" if missing else f"unknown key(s) {unknown}"
        raise ValueError(
            f"{where}: {what}; a model has keys {list(REQUIRED)} and optionally {list(OPTIONAL)}{tail}"
        )
    for key in ("classes", "features"):
        v = d[key]
        if not isinstance(v, list | tuple) or not all(isinstance(s, str) for s in v):
            raise ValueError(f"{where}.{key}: expected a list of names, got {type(v).__name__}{tail}")
        if len(set(v)) != len(v):
            dup = sorted({s for s in v if list(v).count(s) > 1})
            raise ValueError(f"{where}.{key}: {dup} listed twice; each name must appear once{tail}")
    c, f = len(d["classes"]), len(d["features"])
    if c < 2:
        raise ValueError(f"{where}.classes: {c} class(es); a model needs at least 2{tail}")
    # two classes: one log-odds row (scikit-learn's binary form) or two logit rows (anatomy)
    rows = 1 if c == 2 and isinstance(d["coef"], list | tuple) and len(d["coef"]) == 1 else c
    want = {"mean": (f,), "scale": (f,), "coef": (rows, f), "intercept": (rows,)}
    if d.get("impute") is not None:
        want["impute"] = (f,)
    for key, shape in want.items():
        got = _shape(d[key])
        if got != shape:
            got_s = got if isinstance(got, str) else f"has shape {got}"
            raise ValueError(
                f"{where}.{key} {got_s}, expected {shape} ({c} classes x {f} features"
                f"{', one log-odds row' if rows == 1 else ''}){tail}"
            )
    if np.any(np.asarray(d["scale"], float) <= 0):
        raise ValueError(
            f"{where}.scale: a value <= 0; every scale (standard deviation) must be positive{tail}"
        )
    cal = d.get("calibration", {"method": "none"})
    method = cal.get("method") if isinstance(cal, Mapping) else None
    if method not in METHODS:
        raise ValueError(f"{where}.calibration.method is {method!r}; expected one of {METHODS}{tail}")
    need = {"sigmoid": {"a": (rows,), "b": (rows,)}, "temperature": {"beta": ()}}.get(method, {})
    for key, shape in need.items():
        got = _shape(cal.get(key))
        if got != shape:
            raise ValueError(f"{where}.calibration.{key}: shape {got}, expected {shape} for {method}{tail}")
    for key in ("region", "label"):
        if not isinstance(d.get(key, ""), str):
            raise ValueError(f"{where}.{key}: expected a string, got {d[key]!r}{tail}")
    for key in ("summary", "notes"):
        if not isinstance(d.get(key, {}), Mapping):
            raise ValueError(f"{where}.{key}: expected an object, got {type(d[key]).__name__}{tail}")


def _floats(xs: Sequence[Any]) -> list[float]:
    return [float(x) for x in xs]


@dataclass(kw_only=True)
class LinearModel:
    """A standardised (multinomial) logistic regression and its probability calibration; see the
    module docstring. Treat as immutable apart from ``calibration`` / ``summary`` (the arrays are
    cached): build a changed model with ``dataclasses.replace``."""

    classes: list[str]
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]  # (C, F), or (1, F) for two classes (log-odds of classes[1])
    intercept: list[float]
    region: str = ""
    label: str = ""  # the label column it was fitted on (emotion, eyes, brows, mouth)
    impute: list[float] | None = None  # value for a missing (NaN) feature; None: the mean
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none"})
    summary: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why the weights are what they are

    def __post_init__(self) -> None:
        raw = {k: getattr(self, k) for k in _ORDER}
        check_model({k: v for k, v in raw.items() if v is not None}, f"models.{self.region or '(unnamed)'}")
        self._arrays = (
            np.asarray(self.mean if self.impute is None else self.impute, float), np.asarray(self.mean, float),
            np.asarray(self.scale, float), np.asarray(self.coef, float), np.asarray(self.intercept, float),
        )  # fmt: skip

    @property
    def binary(self) -> bool:
        """One log-odds row for two classes (scikit-learn's binary form)."""
        return len(self.coef) == 1

    def decision(self, X: np.ndarray, rows: Sequence[int] | None = None) -> np.ndarray:
        """Logits: ``(N, F)`` -> ``(N, R)``, or ``(F,)`` -> ``(R,)``; NaN features are imputed.
        ``rows`` keeps only those logit rows (a subset of the classes)."""
        impute, mean, scale, coef, intercept = self._arrays
        if rows is not None:
            coef, intercept = coef[list(rows)], intercept[list(rows)]
        X = np.asarray(X, dtype=float)
        X = np.where(np.isnan(X), impute, X)
        z = (X - mean) / scale
        return coef @ z + intercept if z.ndim == 1 else z @ coef.T + intercept

    def predict_proba(
        self, X: np.ndarray, classes: Sequence[str] | None = None, confidence: float = 1.0
    ) -> np.ndarray:
        """Probabilities over ``classes`` (default ``self.classes``, in that order): ``(N, F)`` ->
        ``(N, K)``, or ``(F,)`` -> ``(K,)``. A subset or reordering of the classes takes the matching
        logit rows (softmax renormalises over them; sigmoid: the columns, renormalised).
        ``confidence`` in [0, 1] scales the logits (0: uniform; softmax models only): a region
        barely seen then carries no opinion instead of noise."""
        X = np.asarray(X, dtype=float)
        cal = self.calibration
        method = cal["method"]
        conf = float(np.clip(confidence, 0.0, 1.0))
        if conf != 1.0 and method == "sigmoid":
            raise ValueError(
                f"model {self.region!r}: `confidence` needs a softmax model, this one is sigmoid"
            )
        idx = self._rows(classes)
        if not self.binary and method != "sigmoid":  # softmax: the subset's logit rows, renormalised
            d = self.decision(X, rows=idx)
            return softmax(float(cal["beta"]) * d * conf if method == "temperature" else d * conf)
        one = X.ndim == 1
        p = self._proba(self.decision(np.atleast_2d(X)), conf)
        if idx is not None:
            p = p[:, idx]
            s = p.sum(axis=1, keepdims=True)
            p = np.divide(p, s, out=np.full_like(p, 1.0 / p.shape[1]), where=s != 0)
        return p[0] if one else p

    def _rows(self, classes: Sequence[str] | None) -> list[int] | None:
        if classes is None or list(classes) == list(self.classes):
            return None
        missing = [c for c in classes if c not in self.classes]
        if missing:
            raise ValueError(
                f"model {self.region!r}: class(es) {missing} not among its classes {self.classes}; "
                "refit it on labels that include them"
            )
        return [self.classes.index(c) for c in classes]

    def _proba(self, d: np.ndarray, conf: float) -> np.ndarray:
        """``(N, R)`` logits -> ``(N, C)`` for a sigmoid-calibrated or a one-row (binary) model."""
        cal = self.calibration
        if cal["method"] == "sigmoid":
            a, b = np.asarray(cal["a"], float), np.asarray(cal["b"], float)
            p = _sigmoid(-(a * d + b))
            if self.binary:
                return np.column_stack([1.0 - p[:, 0], p[:, 0]])
            s = p.sum(axis=1, keepdims=True)
            return np.divide(p, s, out=np.full_like(p, 1.0 / p.shape[1]), where=s != 0)
        if cal["method"] == "temperature":
            return softmax(float(cal["beta"]) * np.column_stack([-d[:, 0], d[:, 0]]) * conf)
        p1 = _sigmoid(d[:, 0] * conf)
        return np.column_stack([1.0 - p1, p1])

    def vectorize(self, named: Mapping[str, float]) -> np.ndarray:
        """``(F,)`` in ``features`` order from a name -> value mapping; NaN where a name is absent."""
        return np.array([named.get(f, np.nan) for f in self.features], dtype=float)

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "region": self.region, "label": self.label, "classes": list(self.classes),
            "features": list(self.features), "impute": None if self.impute is None else _floats(self.impute),
            "mean": _floats(self.mean), "scale": _floats(self.scale), "coef": [_floats(r) for r in self.coef],
            "intercept": _floats(self.intercept), "calibration": self.calibration, "summary": self.summary,
            "notes": self.notes,
        }  # fmt: skip
        if self.impute is None:
            del d["impute"]
        if not self.notes:
            del d["notes"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "model", fix: str = "") -> LinearModel:
        """Validate (errors name ``where``, the key, its shape and the expected one) and build."""
        if not isinstance(d, Mapping):
            raise ValueError(
                f"{where}: expected an object with keys {list(REQUIRED)}, got {type(d).__name__}"
            )
        check_model(d, where, fix)
        return cls(**{k: d[k] for k in _ORDER if k in d})


def models_from_dict(d: Any, where: str, fix: str = "") -> dict[str, LinearModel]:
    """The ``"models"`` object of a file -> ``{name: LinearModel}``; each model's ``region`` must be
    its name (or empty, then set to it)."""
    if not isinstance(d, Mapping):
        raise ValueError(
            f"{where}: models: expected an object {{region: model}}, got {type(d).__name__}{_tail(fix)}"
        )
    out = {}
    for name, m in d.items():
        model = LinearModel.from_dict(m, f"{where}: models.{name}", fix)
        if model.region not in ("", name):
            raise ValueError(
                f"{where}: models.{name}.region is {model.region!r}; it must be {name!r}{_tail(fix)}"
            )
        model.region = name
        out[name] = model
    return out


def _tail(fix: str) -> str:
    return f"; {fix}" if fix else ""


def dumps(d: Mapping[str, Any]) -> str:
    """The one JSON writer of model files: ``repr`` floats (exact round trip), no NaN, one space indent."""
    return json.dumps(d, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
