"""Calibrated region classifiers fitted by ``harmony-eval calibrate``: load a calibration JSON and apply
it to backend predictions at score time. Pure numpy; no scikit-learn needed to apply.

API (used by ``pipeline.Scorer`` for ``score --calibration FILE``)::

    cal = Calibration.load("calibration.json")
    pred = cal.apply(pred, emotions)      # RegionPrediction -> RegionPrediction (a copy)
    cal.verdict_thresholds                # {} or overrides of verdict.yaml `thresholds`

``apply`` replaces ``pred.probs[region]`` for every region the file has a model for and leaves the
others as the backend gave them. Models: ``face`` (fitted on whole-face ``emotion`` labels, over the
features of every region: read it as the holistic reading), ``eyes``, ``brows``, ``mouth`` (fitted on
region labels, over that region's features). A region the backend could not see (``probs`` None)
stays None. Each model is a ``linear.LinearModel`` (the one logistic-regression format, shared with the
anatomy mapping): a standardised logistic regression over the named features, the training mean
imputed for a region not found, then a probability calibration (sigmoid, temperature or none),
exactly as scikit-learn's ``CalibratedClassifierCV`` over ``LogisticRegression`` (see
``calibration/fit.py``, which writes the file, and the round-trip tests). Feature names are
``"<region>:<backend feature name>"``, ``"<region>:logp_<emotion>"`` (log of the backend's
probability, floored at 1e-4) and ``"quality:<name>"``; ``prediction_features`` builds them. An
emotion a model has no class for (a fit leaves out classes of fewer than 2 labelled images) keeps the
backend's reading (``model_proba``).

File: JSON, ``{"format": "harmony_eval.calibration", "version": 1, "emotions": [...], "backend": ...,
"pool_weights": {...}, "holistic_temperature": ..., "models": {region: LinearModel.to_dict()}, "verdict_thresholds": {...}, "versions": {...}, "training": {...}}``.
Floats are written with ``repr`` precision, so save -> load -> save is byte-identical. No pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .linear import LinearModel, dumps, models_from_dict
from .types import RegionPrediction

FORMAT = "harmony_eval.calibration"
VERSION = 1
_LOGP_FLOOR = 1e-4  # same floor as agreement.pool: a 0 from a backend must not become -inf


def prediction_features(
    pred: RegionPrediction,
    emotions: list[str],
    pool_weights: dict[str, float] | None = None,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Every named scalar a calibrated model may read from one backend prediction. With
    ``pool_weights`` also ``pooled:logp_<emotion>``: the log of the pipeline's holistic reading
    (``agreement.pool`` of eyes, brows, mouth, face, tempered by the reader's ``temperature``,
    ``pipeline.holistic_temperature``), i.e. the uncalibrated tool's ``probs``: a face model that
    keeps the backend's reading as is gives back exactly what an uncalibrated run prints."""
    out: dict[str, float] = {}
    if pool_weights:
        from .agreement import as_vector, pool, temper

        readings = {r: as_vector(p, emotions) if p else None for r, p in pred.probs.items()}
        pooled = pool({r: readings.get(r) for r in ("eyes", "brows", "mouth", "face")}, pool_weights)
        pooled = temper(pooled, temperature)
        if pooled is not None:
            for e, v in zip(emotions, pooled, strict=True):
                out[f"pooled:logp_{e}"] = math.log(max(float(v), _LOGP_FLOOR))
    for region, vec in pred.features.items():
        names = pred.feature_names.get(region) or [f"f{i}" for i in range(len(vec))]
        for n, v in zip(names, np.asarray(vec, dtype=float).reshape(-1), strict=True):
            out[f"{region}:{n}"] = float(v)
    for region, p in pred.probs.items():
        if p is not None:
            for e in emotions:
                out[f"{region}:logp_{e}"] = math.log(max(float(p.get(e, 0.0)), _LOGP_FLOOR))
    for k, v in pred.quality.items():
        out[f"quality:{k}"] = float(v)
    return out


def backend_logp_names(model: LinearModel | str, emotions: Sequence[str]) -> list[str]:
    """The feature names of the backend's own reading of a model's region, one per emotion: the
    pooled reading (the tool's ``probs``) for the ``face`` model, the region's for the others."""
    region = model if isinstance(model, str) else model.region
    prefix = "pooled" if region == "face" else region
    return [f"{prefix}:logp_{e}" for e in emotions]


def model_proba(m: LinearModel, named: Sequence[Mapping[str, float]], emotions: Sequence[str]) -> np.ndarray:
    """``(N, len(emotions))``: model ``m``'s probabilities over every emotion of ``named`` rows.

    An emotion ``m`` has no class for keeps the backend's reading of it (``backend_logp_names``) and
    ``m``'s classes share the rest in ``m``'s proportions: a fit leaves out classes of fewer than 2
    labelled images (a sigmoid map covers the labelled classes only), and a calibration fitted
    without 2 sad labels would otherwise never say sad again, where the backend still can. With
    every class modelled, or no backend reading recorded, this is ``m``'s reading (0 elsewhere)."""
    X = np.array([m.vectorize(d) for d in named], dtype=float).reshape(len(named), len(m.features))
    p = m.predict_proba(X) if len(named) else np.zeros((0, len(m.classes)))
    out = np.zeros((len(named), len(emotions)))
    col = {e: i for i, e in enumerate(emotions)}
    modelled = set(m.classes)
    missing = [i for i, e in enumerate(emotions) if e not in modelled]
    if missing:
        names = backend_logp_names(m, emotions)
        logp = np.array([[d.get(n, np.nan) for n in names] for d in named], dtype=float).reshape(out.shape)
        back = np.exp(logp)
        back = back / back.sum(axis=1, keepdims=True)  # NaN rows (no backend reading) stay NaN
        known = np.isfinite(back).all(axis=1)
        out[np.ix_(known, missing)] = back[np.ix_(known, missing)]
        p = p * (1.0 - out[:, missing].sum(axis=1))[:, None]
    for j, c in enumerate(m.classes):
        if c in col:
            out[:, col[c]] = p[:, j]
    return out


#: The calibration's name for its models: one format with the anatomy mapping (see ``linear``).
RegionModel = LinearModel
_FIX = "refit it with `harmony-eval calibrate`"


@dataclass
class Calibration:
    """Region models + fitted verdict thresholds, as written by ``harmony-eval calibrate``."""

    emotions: list[str]
    models: dict[str, RegionModel]
    verdict_thresholds: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    pool_weights: dict[str, float] = field(default_factory=dict)  # for the pooled:logp_* features
    #: the reader's holistic temperature the pooled:logp_* features were made with (files written
    #: before it was recorded were fitted on the untempered reading: 1.0)
    holistic_temperature: float = 1.0
    versions: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    # -- applying ---------------------------------------------------------------------------------
    def check_features(self, pred: RegionPrediction) -> None:
        """Raise if a region's features share no name with the model's: features of another backend,
        or of a backend version with other measurements. (Some names missing is fine: a region
        the backend could not crop; those are imputed.)"""
        for m in self.models.values():
            for region, names in pred.feature_names.items():
                want = {f.split(":", 1)[1] for f in m.features if f.split(":", 1)[0] == region}
                want = {n for n in want if not n.startswith("logp_")}
                if want and not want & set(names):
                    lost = sorted(want)
                    raise ValueError(
                        f"calibration {self.source or '(in memory)'} (fitted on backend "
                        f"{self.backend!r}) needs {region} features the backend does not give, e.g. "
                        f"{lost[:3]}; refit with `harmony-eval calibrate --backend <the one you score with>`"
                    )

    def check_usable(self, emotions: list[str], backend: str) -> None:
        """Refuse, before any image is scored, a calibration that cannot apply to this run: fitted on
        another backend (its models read that backend's features; silently applied before) or for
        another vocabulary (the fix named is one that works: a refit when no --emotions can match)."""
        from .resources import emotions_table

        where = f"calibration {self.source or '(in memory)'}"
        if self.backend and self.backend != backend:
            raise ValueError(
                f"{where} was fitted on backend {self.backend!r}, this run scores with {backend!r}; "
                f"score with --backend {self.backend}, or refit with `harmony-eval calibrate --backend {backend}`"
            )
        if list(emotions) == list(self.emotions):
            return
        known = emotions_table()
        foreign = [e for e in self.emotions if e not in known]
        if foreign:
            raise ValueError(
                f"{where} was fitted for emotions {self.emotions}; {foreign} are not in emotions.yaml, so "
                f"no --emotions can match it; refit with `harmony-eval calibrate` on labels from {list(known)} "
                "(or add those emotions to prompts/emotions.yaml)"
            )
        raise ValueError(
            f"{where} was fitted for emotions {self.emotions}, scoring uses {list(emotions)}; score with "
            f"--emotions {','.join(self.emotions)} or refit"
        )

    def apply(self, pred: RegionPrediction, emotions: list[str]) -> RegionPrediction:
        """A copy of ``pred`` whose modelled regions carry calibrated probabilities."""
        if list(emotions) != list(self.emotions):
            raise ValueError(
                f"calibration {self.source or '(in memory)'} was fitted for emotions {self.emotions}, "
                f"scoring uses {list(emotions)}; score with --emotions {','.join(self.emotions)} or refit"
            )
        self.check_features(pred)
        named = prediction_features(pred, list(emotions), self.pool_weights, self.holistic_temperature)
        probs = dict(pred.probs)
        for region, m in self.models.items():
            if region != "face" and pred.probs.get(region) is None:
                continue  # the backend did not see this region: do not invent a reading
            p = model_proba(m, [named], emotions)[0]
            probs[region] = {e: float(v) for e, v in zip(emotions, p, strict=True)}
        return replace(pred, probs=probs)

    # -- files ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "emotions": list(self.emotions),
            "backend": self.backend,
            "pool_weights": self.pool_weights,
            "holistic_temperature": self.holistic_temperature,
            "models": {r: m.to_dict() for r, m in self.models.items()},
            "verdict_thresholds": self.verdict_thresholds,
            "versions": self.versions,
            "training": self.training,
        }

    def dumps(self) -> str:
        return dumps(self.to_dict())

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.dumps(), encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "") -> Calibration:
        where = source or "calibration"
        if d.get("format") != FORMAT:
            raise ValueError(f"{where}: not a harmony_eval calibration file (format {d.get('format')!r})")
        if d.get("version") != VERSION:
            raise ValueError(f"{where}: version {d.get('version')!r}, this harmony_eval reads {VERSION}")
        models = models_from_dict(d.get("models", {}), where, _FIX)
        thresholds = d.get("verdict_thresholds") or {}
        _check_thresholds(thresholds, where)
        t = d.get("holistic_temperature", 1.0)
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"{where}: holistic_temperature {t!r} is not a positive number; {_FIX}")
        return cls(
            list(d["emotions"]), models, thresholds, d.get("backend", ""), d.get("pool_weights") or {},
            float(t), d.get("versions", {}), d.get("training", {}), source,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration JSON, or the ``calibrate`` output folder holding ``calibration.json``."""
        from .textio import load_json_finite

        p = Path(path)
        if p.is_dir():
            if not (p / "calibration.json").is_file():
                raise FileNotFoundError(
                    f"--calibration {p}: a folder without calibration.json; pass the folder "
                    "`harmony-eval calibrate --out` wrote, or its calibration.json"
                )
            p = p / "calibration.json"
        try:
            d = load_json_finite(p.read_text(encoding="utf-8"), f"--calibration {p}")
        except UnicodeDecodeError:
            raise ValueError(
                f"--calibration {p}: not UTF-8 JSON; pass the calibration.json from calibrate"
            ) from None
        except FileNotFoundError:
            raise FileNotFoundError(f"--calibration {p}: file not found") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"--calibration {p}: not valid JSON ({e.msg}, line {e.lineno})") from None
        return cls.from_dict(d, str(p))


def _check_thresholds(t: dict[str, Any], where: str) -> None:
    from .resources import config_path, load_yaml

    valid = load_yaml(config_path("verdict.yaml"))["thresholds"]
    unknown = [k for k in t if k not in valid]
    unknown += [f"checks.{k}" for k in (t.get("checks") or {}) if k not in valid.get("checks", {})]
    if unknown:
        raise ValueError(
            f"{where}: unknown verdict_thresholds {unknown}; valid keys are those of verdict.yaml "
            f"`thresholds`: {list(valid)}"
        )
