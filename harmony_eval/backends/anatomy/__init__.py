"""The offline "anatomy" region backend: measures what an artist draws (mouth curve and opening, eye
openness and arcs, brow slope and height) and maps the measurements to emotions with hand-set
linear softmax models (``config/anatomy.json``). No weights to download; ~5-15 ms per face.

    backend = AnatomyBackend()
    [pred] = backend.predict([FaceInput(image, face, regions)], ["neutral", "happy", "sad", "angry"])
    pred.probs["mouth"]   # {"neutral": ..., "happy": ..., ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...params import MeasureParams
from ...quality import sharpness
from ...types import Box, FaceInput, RegionPrediction
from . import brows as _brows
from . import eyes as _eyes
from . import mouth as _mouth
from .common import Canvas, make_canvas, ramp
from .mapping import load_params, region_probs

__all__ = ["AnatomyBackend", "FaceMeasurement", "measure_face", "region_readings"]


def _visible_min() -> float:
    """``thresholds.visible`` of the packaged config/verdict.yaml: the one line below which an eye /
    the mouth counts as not drawn (its reading is ``None`` here, and the verdict flags missing_eyes
    / missing_mouth), read from there so the two cannot drift apart."""
    from ...verdict import VerdictConfig

    return float(VerdictConfig.load().thresholds["visible"])


#: Below this visibility an eye / the mouth counts as not drawn and its reading is ``None``.
VISIBLE_MIN = _visible_min()
FEATURE_NAMES: dict[str, list[str]] = {
    "eyes": _eyes.FEATURES,
    "brows": _brows.FEATURES,
    "mouth": _mouth.FEATURES,
}


@dataclass
class FaceMeasurement:
    """Raw measurements of one face: per-part feature dicts (``None`` where the box is missing),
    region feature vectors (``features[region]`` ordered as ``FEATURE_NAMES[region]``), quality."""

    parts: dict[str, dict[str, float] | None]
    features: dict[str, np.ndarray]
    quality: dict[str, float]
    debug: dict[str, Any]


def _split(box: Box | None, half: int) -> Box | None:
    if box is None:
        return None
    x0, y0, x1, y1 = box
    xm = (x0 + x1) // 2
    return (x0, y0, xm, y1) if half == 0 else (xm, y0, x1, y1)


def _mean_features(items: list[dict[str, float]], names: list[str]) -> np.ndarray:
    """Visibility-weighted mean of part features (both eyes -> "eyes")."""
    wts = np.array([max(1e-3, it["visible"]) for it in items])
    arr = np.array([[it[n] for n in names] for it in items], float)
    out = (wts[:, None] * arr).sum(axis=0) / wts.sum()
    out[names.index("visible")] = max(it["visible"] for it in items)
    return out


def measure_face(inp: FaceInput, params: MeasureParams | None = None) -> FaceMeasurement:
    """Measure eyes, brows and mouth of one face (see the eyes / brows / mouth modules) with the
    constants of ``params`` (``harmony_eval.params``; ``None``: every module's defaults)."""
    mp = params if params is not None else MeasureParams.from_overrides()
    regions = inp.regions or {}
    face_box = regions.get("face") or inp.face.box
    cv: Canvas = make_canvas(inp.image, face_box, p=mp.common, q=mp.quality)
    debug: dict[str, Any] = {"canvas": cv}
    parts: dict[str, dict[str, float] | None] = {}
    eye_boxes = {
        "left_eye": regions.get("left_eye") or _split(regions.get("eyes"), 0),
        "right_eye": regions.get("right_eye") or _split(regions.get("eyes"), 1),
    }
    eye_geo: dict[str, tuple[float, float]] = {}
    eye_mask = np.zeros(cv.lab.shape[:2], bool)
    for name, box in eye_boxes.items():
        if box is None:
            parts[name] = None
            continue
        cbox = cv.to_canvas(box)
        feats, dbg = _eyes.measure_eye(cv, cbox, inner_is_right=(name == "left_eye"), p=mp.eyes)
        parts[name], debug[name] = feats, dbg
        ys, xs = np.nonzero(dbg["mask"])
        wx0, wy0 = dbg["window"][:2]
        eye_mask[ys + wy0, xs + wx0] = True
        if xs.size:
            eye_geo[name] = (float(ys.min() + dbg["window"][1]), float(xs.max() - xs.min() + 1))
    brow_boxes = {
        "left_brow": regions.get("left_brow") or _split(regions.get("brows"), 0),
        "right_brow": regions.get("right_brow") or _split(regions.get("brows"), 1),
    }
    for name, box in brow_boxes.items():
        if box is None:
            parts[name] = None
            continue
        eye = "left_eye" if name == "left_brow" else "right_eye"
        top, ew = eye_geo.get(eye, (None, None))
        left = name == "left_brow"
        feats, dbg = _brows.measure_brow(cv, cv.to_canvas(box), left, top, ew, eye_mask, p=mp.brows)
        parts[name], debug[name] = feats, dbg
    mouth_box = regions.get("mouth")
    if mouth_box is not None:
        parts["mouth"], debug["mouth"] = _mouth.measure_mouth(cv, cv.to_canvas(mouth_box), p=mp.mouth)
    else:
        parts["mouth"] = None

    features: dict[str, np.ndarray] = {}
    for region, keys in (("eyes", ("left_eye", "right_eye")), ("brows", ("left_brow", "right_brow"))):
        items = [parts[k] for k in keys if parts.get(k) is not None]
        names = FEATURE_NAMES[region]
        seen = [it for it in items if it["visible"] > 0]
        features[region] = _mean_features(seen or items, names) if items else np.zeros(len(names))
    m = parts["mouth"]
    features["mouth"] = (
        np.array([m[n] for n in _mouth.FEATURES], float) if m is not None else np.zeros(len(_mouth.FEATURES))
    )
    fx0, fy0, fx1, fy1 = (int(v) for v in face_box)
    crop = inp.image[max(0, fy0) : max(fy0 + 1, fy1), max(0, fx0) : max(fx0 + 1, fx1)]
    quality = {
        "sharpness": sharpness(crop, p=mp.quality) if crop.size else 0.0,
        "eyes_visible": max((parts[k]["visible"] for k in eye_boxes if parts.get(k)), default=0.0),
        "mouth_visible": m["visible"] if m is not None else 0.0,
    }
    return FaceMeasurement(parts, features, quality, debug)


def region_readings(
    params: dict[str, Any], features: dict[str, np.ndarray], emotions: list[str]
) -> dict[str, dict[str, float] | None]:
    """Eyes / brows / mouth readings from region feature vectors (``FaceMeasurement.features``):
    ``None`` for eyes or mouth below ``VISIBLE_MIN``; brows flattened towards uniform as their
    visibility drops (hidden under a fringe: no opinion rather than noise). What the backend reports,
    from features alone, so refitted parameters can be scored without re-measuring."""

    def probs(region: str, conf: float = 1.0) -> dict[str, float]:
        p = region_probs(params, region, features[region], emotions, conf)
        return {e: float(v) for e, v in zip(emotions, p, strict=True)}

    out: dict[str, dict[str, float] | None] = {"eyes": None, "brows": None, "mouth": None}
    if features["eyes"][0] >= VISIBLE_MIN:
        out["eyes"] = probs("eyes")
    out["brows"] = probs("brows", ramp(float(features["brows"][0]), 0.0, 0.6))
    if features["mouth"][0] >= VISIBLE_MIN:
        out["mouth"] = probs("mouth")
    return out


class AnatomyBackend:
    """Region emotions from drawn anatomy; see the module docstring.

    Args:
        params: path of a parameter JSON (``mapping.save_params`` format); default the shipped
            ``config/anatomy.json`` (hand-set priors).
        measure_params: measurement constant overrides (``harmony_eval.params``: ``{"mouth.teeth_dark":
            10}``, ``["mouth.teeth_dark=10"]``) for faces it measures itself (a ``FaceInput`` with no
            ``measurement``; in a ``Scorer`` the measurement stage measures under the same ones).

    Other backends' options are not accepted: ``config.ScorerConfig`` gives each backend its own
    (accepting any keyword let a misspelt option pass without a word).
    """

    name = "anatomy"
    #: Its features are the measurement stage's own numbers: the pipeline adds no ``anat_*`` copy.
    reads_measurements = True

    def __init__(self, params: str | os.PathLike | None = None, measure_params: Any = None) -> None:
        self.measure = MeasureParams.from_overrides(measure_params)  # a bad name raises now, not per face
        self.params_path = params
        self.params = load_params(params)
        for region, names in FEATURE_NAMES.items():
            got = self.params.feature_names.get(region)
            if got != names:
                raise ValueError(
                    f"`params` {params or 'config/anatomy.json'}: feature_names[{region!r}] is "
                    f"{got}, this version measures {names}; refit the file with fit_params"
                )

    def _probs(self, region: str, x: np.ndarray, emotions: list[str], conf: float = 1.0) -> dict[str, float]:
        p = region_probs(self.params, region, x, emotions, conf)
        return {e: float(v) for e, v in zip(emotions, p, strict=True)}

    def predict_one(self, inp: FaceInput, emotions: list[str]) -> RegionPrediction:
        """The readings of one face from its measurement: the pipeline's (``inp.measurement``,
        see ``harmony_eval.measure``), else measured here (a ``FaceInput`` built by hand)."""
        from ...measure import measure_one

        m = inp.measurement if inp.measurement is not None else measure_one(inp, self.measure)
        if m.error:  # no measurement, no reading: the caller sees why rather than a made-up one
            raise RuntimeError(f"anatomy backend: {m.error}")
        probs: dict[str, dict[str, float] | None] = dict.fromkeys(
            ("eyes", "left_eye", "right_eye", "brows", "mouth", "face")
        )
        names = FEATURE_NAMES["eyes"]
        for eye in ("left_eye", "right_eye"):
            f = m.parts.get(eye)
            if f is not None and f["visible"] >= VISIBLE_MIN:
                probs[eye] = self._probs("eyes", np.array([f[n] for n in names]), emotions)
        if probs["left_eye"] is not None or probs["right_eye"] is not None:
            probs["eyes"] = self._probs("eyes", m.features["eyes"], emotions)
        if any(m.parts.get(b) is not None for b in ("left_brow", "right_brow")):
            # Hidden brows (under a fringe) flatten towards uniform rather than reading noise.
            conf = ramp(float(m.features["brows"][0]), 0.0, 0.6)
            probs["brows"] = self._probs("brows", m.features["brows"], emotions, conf)
        if m.parts.get("mouth") is not None and m.parts["mouth"]["visible"] >= VISIBLE_MIN:
            probs["mouth"] = self._probs("mouth", m.features["mouth"], emotions)
        return RegionPrediction(
            probs=probs,
            features={r: np.nan_to_num(v.astype(float)) for r, v in m.features.items()},
            feature_names={r: list(n) for r, n in FEATURE_NAMES.items()},
            quality=dict(m.quality),
        )

    def predict(self, batch: list[FaceInput], emotions: list[str]) -> list[RegionPrediction]:
        """One ``RegionPrediction`` per face; ``probs["face"]`` is ``None`` (the pipeline pools regions)."""
        return [self.predict_one(inp, list(emotions)) for inp in batch]
