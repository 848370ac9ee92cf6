"""Typed scorer configuration: what builds a ``Scorer``, validated, saved to ``run.json`` and loaded back.

    cfg = ScorerConfig.from_options(backend="anatomy", max_pixels=10_000_000, mediapipe_model="x.task")
    ScorerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg      # a run rebuilds exactly

The keyword arguments of ``harmony_eval.score`` and ``Scorer`` are the field names of the sections
below (flat: each name belongs to exactly one section). A misspelt one raises ``TypeError`` naming it
and the valid ones, as open_clip and diffusers do; before this, a ``**options`` bag was routed by name
prefix in three places and the anatomy backend swallowed the rest, so ``calibraton="x.json"`` scored
uncalibrated without a word.

Detector and CLIP fields default to ``None``: "the detector's / backend's own default" (defined once,
in ``detect/`` and ``backends/clip.py``); only the values given reach them.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

#: Field metadata: ``scores=False`` marks a setting that does not change any row's values (where the
#: model runs, where caches live), so resuming a run with another value is allowed.
_NOT_SCORES = {"scores": False}
#: Field metadata: an in-memory object (not JSON); left out of ``to_dict``.
_RUNTIME = {"runtime": True, "scores": False}


@dataclass(frozen=True)
class DetectorConfig:
    """The face detector cascade and its detectors' options (``<detector>_<option>`` names)."""

    detectors: tuple[str, ...] | None = None  # cascade order; None = detect.DEFAULT_CASCADE
    mediapipe_model: str | None = None  # face_landmarker.task (else $HARMONY_EVAL_FACE_LANDMARKER, cache)
    mediapipe_num_faces: int | None = None
    mediapipe_min_confidence: float | None = None
    animeface_min_likelihood: float | None = None
    animeface_exhaustive: bool | None = None
    animeface_nms_iou: float | None = None
    crop_min_aspect: float | None = None
    crop_max_aspect: float | None = None
    # a face the cascade missed takes the agreeing box of >= 2 sibling images (same folder and
    # canvas, same pixels outside the face; detect/siblings.py); False: no batch-level fallback
    face_from_siblings: bool = True

    def per_detector(self) -> dict[str, dict[str, Any]]:
        """``{"mediapipe": {"model": ...}, ...}``: the options given, by detector (``detect.build_detectors``)."""
        out: dict[str, dict[str, Any]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("detectors", "face_from_siblings") and value is not None:
                det, _, opt = f.name.partition("_")
                out.setdefault(det, {})[opt] = value
        return out


@dataclass(frozen=True)
class BackendConfig:
    """The region backend and its options: ``anatomy_params`` for ``anatomy``, ``clip_*`` for ``clip``,
    ``tagger_*`` for ``tagger`` (their defaults and meaning: each backend's ``_OPTIONS``)."""

    backend: str = "auto"  # auto | anatomy | clip | a registered name; Scorer stores the resolved one
    anatomy_params: str | None = None  # parameter JSON (mapping.save_params); None = config/anatomy.json
    clip_model: str | None = None
    clip_pretrained: str | None = None
    clip_loader: str | None = None
    clip_cache_dir: str | None = field(default=None, metadata=_NOT_SCORES)
    clip_device: str | None = field(default=None, metadata=_NOT_SCORES)
    clip_precision: str | None = None
    clip_embed_cache: str | None = field(default=None, metadata=_NOT_SCORES)
    clip_random_init: bool | None = None
    clip_batch_size: int | None = field(default=None, metadata=_NOT_SCORES)
    clip_probes: str | None = None
    clip_margin: float | None = None
    clip_prebuilt: Any = field(default=None, metadata=_RUNTIME, compare=False)  # (model, preprocess, tok)
    tagger_model: str | None = None
    tagger_cache_dir: str | None = field(default=None, metadata=_NOT_SCORES)
    tagger_device: str | None = field(default=None, metadata=_NOT_SCORES)
    tagger_batch_size: int | None = field(default=None, metadata=_NOT_SCORES)
    tagger_tags: str | None = None
    tagger_crops: str | None = None
    tagger_margin: float | None = None
    raters: str | None = None  # "anatomy,clip": backend raters reads each region with each of them
    rater_weights: str | None = None  # "anatomy=1,clip=2" for the raters' pool; None = equal

    def clip_options(self) -> dict[str, Any]:
        """The ``clip_*`` options given (``ClipBackend(**...)``, ``backends.auto``)."""
        return self._given("clip_")

    def _given(self, prefix: str) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name.startswith(prefix) and getattr(self, f.name) is not None
        }

    def options_for(self, name: str) -> dict[str, Any]:
        """Keyword arguments of backend ``name``'s factory: only that backend's own options
        (``anatomy_params`` -> ``params``; ``clip_*`` / ``tagger_*`` under their own names)."""
        if name == "anatomy":
            return {"params": self.anatomy_params} if self.anatomy_params else {}
        if name in ("clip", "tagger"):
            return self._given(name + "_")
        if name == "raters":  # each rater picks its own prefix from these (RatersBackend)
            given = [self._given(p) for p in ("rater", "clip_", "tagger_", "anatomy_")]
            return {k: v for g in given for k, v in g.items()}
        return {}


@dataclass(frozen=True)
class ScorerConfig:
    """Everything that builds a ``Scorer`` (targets aside: they are per image, see ``targets``)."""

    emotions: tuple[str, ...] | None = None  # None = emotions.yaml's active ones
    calibration: str | None = None  # calibration JSON from `harmony-eval calibrate`
    verdict_config: str | None = None  # a verdict.yaml instead of the packaged one
    max_pixels: int = 64_000_000  # larger images are refused (decompression bombs)
    # measurement constant overrides, canonical (harmony_eval.params.normalize): sorted (name, value)
    # pairs, hashable like the rest; JSON as {"mouth.teeth_dark": 10.0}. () = every default
    params: tuple[tuple[str, Any], ...] = ()
    detection: DetectorConfig = field(default_factory=DetectorConfig)
    region_backend: BackendConfig = field(default_factory=BackendConfig)

    # -- flat keyword API ---------------------------------------------------------------------
    @classmethod
    def from_options(cls, **options: Any) -> ScorerConfig:
        """Build from the flat keywords of ``Scorer`` / ``harmony_eval.score`` (``backend=``,
        ``detectors=``, ``clip_model=``, ``mediapipe_model=``, ...). ``TypeError`` names an unknown key."""
        check_keys(options, valid_options(), "option")
        top = {k: v for k, v in options.items() if k in _TOP}
        det = {k: v for k, v in options.items() if k in _DET}
        back = _norm_back({k: v for k, v in options.items() if k in _BACK})
        return cls(
            **_norm_top(top), detection=DetectorConfig(**_norm_det(det)), region_backend=BackendConfig(**back)
        )

    def replace_options(self, **options: Any) -> ScorerConfig:
        """A copy with some flat options changed (same validation as :meth:`from_options`)."""
        check_keys(options, valid_options(), "option")
        top = _norm_top({k: v for k, v in options.items() if k in _TOP})
        det = _norm_det({k: v for k, v in options.items() if k in _DET})
        back = _norm_back({k: v for k, v in options.items() if k in _BACK})
        return replace(
            self,
            **top,
            detection=replace(self.detection, **det),
            region_backend=replace(self.region_backend, **back),
        )

    def options(self) -> dict[str, Any]:
        """The stage options that differ from the defaults (``mediapipe_model``, ``clip_*``, ...; not
        ``backend``, ``detectors`` or the top-level fields), as JSON values; runtime objects left out."""
        out = {}
        for obj in (self.detection, self.region_backend):
            for f in fields(obj):
                value = getattr(obj, f.name)
                if f.name in ("detectors", "backend") or f.metadata.get("runtime") or value == f.default:
                    continue
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples as lists; in-memory objects left out)."""

        def plain(obj: Any) -> dict[str, Any]:
            return {
                f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
                for f in fields(obj)
                if not f.metadata.get("runtime")
            }

        from .params import as_dict

        return {
            **{k: v for k, v in plain(self).items() if k not in ("detection", "region_backend")},
            "params": as_dict(self.params),
            "detection": plain(self.detection),
            "region_backend": plain(self.region_backend),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ScorerConfig:
        """Inverse of :meth:`to_dict`; ``TypeError`` names a key this version does not know."""
        if not isinstance(data, dict):
            raise TypeError(f"{source}: expected a mapping, got {type(data).__name__}")
        check_keys(data, [*_TOP, "detection", "region_backend"], f"{source} key")
        det, back = data.get("detection") or {}, data.get("region_backend") or {}
        check_keys(det, _DET, f"{source} detection key")
        check_keys(back, [k for k in _BACK if k != "clip_prebuilt"], f"{source} region_backend key")
        top = {k: v for k, v in data.items() if k in _TOP}
        if "params" in top:  # here, so an error names the file it came from
            from .params import normalize

            top["params"] = normalize(top["params"], f"{source} params")
        top = _norm_top(top)
        return cls(**top, detection=DetectorConfig(**_norm_det(det)), region_backend=BackendConfig(**back))

    def scoring_fields(self) -> dict[str, Any]:
        """``{dotted.name: value}`` of every setting that decides rows (``scores=False`` ones left out):
        what a resumed run must share with the rows already written."""
        out = {}
        for prefix, obj in (
            ("", self),
            ("detection.", self.detection),
            ("region_backend.", self.region_backend),
        ):
            for f in fields(obj):
                if f.name in ("detection", "region_backend") or f.metadata.get("scores") is False:
                    continue
                v = getattr(obj, f.name)
                if f.name == "params" and obj is self:
                    from .params import as_dict

                    v = as_dict(v)
                out[prefix + f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def backend_options(self) -> dict[str, Any]:
        """Keyword arguments of the region backend's factory (``BackendConfig.options_for``), plus
        the measurement overrides for ``anatomy``, which measures a hand-built ``FaceInput`` itself."""
        out = self.region_backend.options_for(self.region_backend.backend)
        if self.region_backend.backend == "anatomy" and self.params:
            out["measure_params"] = self.params
        return out


_TOP = tuple(f.name for f in fields(ScorerConfig) if f.name not in ("detection", "region_backend"))
_DET = tuple(f.name for f in fields(DetectorConfig))
_BACK = tuple(f.name for f in fields(BackendConfig))


def valid_options() -> list[str]:
    """Every flat keyword ``Scorer`` / ``harmony_eval.score`` accept as configuration."""
    return [*_TOP, *_DET, *_BACK]


def check_keys(given: Any, valid: Any, what: str) -> None:
    """``TypeError`` naming the first unknown key, a close match, and every valid key."""
    valid = list(valid)
    unknown = [k for k in given if k not in valid]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(f"unknown {what} {k!r}{hint}; valid: {', '.join(sorted(valid))}")


def _path(v: Any) -> str | None:
    return None if v is None else os.fspath(v) if isinstance(v, os.PathLike) else str(v)


def _norm_top(top: dict[str, Any]) -> dict[str, Any]:
    out = dict(top)
    if "emotions" in out and out["emotions"] is not None:
        e = out["emotions"]
        parts = e.split(",") if isinstance(e, str) else list(e)
        out["emotions"] = tuple(p.strip() for p in parts if str(p).strip())
    for k in ("calibration", "verdict_config"):
        if k in out:
            out[k] = _path(out[k])
    if "params" in out:
        from .params import normalize

        out["params"] = normalize(out["params"], "params")
    if "max_pixels" in out:
        mp = out["max_pixels"]
        if isinstance(mp, bool) or not isinstance(mp, int) or mp < 1:
            raise ValueError(f"`max_pixels` must be a positive integer, got {mp!r}")
    return out


def _norm_back(back: dict[str, Any]) -> dict[str, Any]:
    # paths given as Path objects are stored as text: the config must stay JSON
    return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in back.items()}


def _norm_det(det: dict[str, Any]) -> dict[str, Any]:
    out = dict(det)
    names = out.get("detectors")
    if names is not None:
        if isinstance(names, str) or not names:
            raise ValueError(f"`detectors` must be a non-empty list of detector names, got {names!r}.")
        out["detectors"] = tuple(str(n) for n in names)
    if out.get("mediapipe_model") is not None:
        out["mediapipe_model"] = _path(out["mediapipe_model"])
    if "face_from_siblings" in out and not isinstance(out["face_from_siblings"], bool):
        raise ValueError(f"`face_from_siblings` must be True or False, got {out['face_from_siblings']!r}")
    return out


__all__ = ["BackendConfig", "DetectorConfig", "ScorerConfig", "check_keys", "valid_options"]
