"""The measurement stage: what is drawn on a face (eye, brow and mouth measurements) and how well it
is drawn (quality: sharpness, eyes / mouth visible), once per face, for every backend.

    stage = MeasureStage(cache_dir=None)
    m = stage.measure(FaceInput(image, face, regions, key))   # Measurement
    m.features["mouth"]          # (8,) float64, named FEATURE_NAMES["mouth"]
    m.quality                    # {"sharpness": ..., "eyes_visible": ..., "mouth_visible": ...}
    pred = with_measurement(pred, m, features=True)             # quality + ``anat_*`` features

Flow: image -> faces -> regions -> **measurements** -> region emotions. ``Scorer.prepare`` runs
this stage after the regions (in the worker processes, beside detection, so CLIP and tagger runs
spend no main-process time on it); the result rides on ``Prepared.measurement`` and
``FaceInput.measurement``. The anatomy backend reads it instead of measuring again (its readings
are a mapping of these numbers); ``Scorer.predict`` then gives every prediction the stage's
``quality``, so the ``blurry`` / ``missing_eyes`` / ``missing_mouth`` flags are the same whatever
the backend (before, the tagger used a second, cruder visibility measure than anatomy and CLIP).

Decisions:

- The measurer is the anatomy package's ``measure_face`` (``backends/anatomy``: the part modules
  ``eyes`` / ``brows`` / ``mouth`` / ``common``). Only this module calls it; no backend imports
  another backend's insides, and the cache key is this stage's own fingerprint: its code
  (this file, ``quality.py``, the anatomy package minus ``mapping.py``), not the emotion mapping
  (``mapping.py``, ``anatomy.json``), so refitting the mapping keeps cached measurements.
- ``anat_<name>`` features ride along on every backend that does not carry the measurements
  itself (CLIP, tagger; not anatomy, whose features are these numbers), always, not only when a
  calibration reads them (as crop descriptors are): the stage runs for every face anyway, because
  quality needs the eye and mouth measurements; the brows, the only part quality does not need,
  are ~7 of ~36 ms a face (measured on a 512 px render), and attaching costs a concatenation.
  So every fit (``calibrate``, validity, dev evaluation) gets them without a flag to remember.
- The cache (``EmbeddingCache`` under the run's cache folder, ``clip_embed_cache`` today) holds
  each measurement's float64 values bit for bit (two float32 words each), so a cached measurement
  *is* the measurement: a rescore gives byte-identical rows, with any backend. Keys: image content
  hash + face box + region boxes. Workers only read it; ``store`` writes one shard per batch from
  the process that batches (per-image shards from workers would be thousands of tiny files).
- The constants (``harmony_eval.params``: ``--param mouth.teeth_dark=10``, ``Scorer(params=...)``)
  ride on the stage (``MeasureStage(params=...)``, rebuilt in each worker from the pickled config)
  and key its cache (``cache_id``): a changed constant measures anew; none keeps the plain key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .params import MeasureParams, digest
from .types import FaceInput, RegionPrediction

__all__ = [
    "QUALITY_KEYS",
    "MeasureStage",
    "Measurement",
    "cache_id",
    "fingerprint",
    "measure_one",
    "with_measurement",
]

#: What the verdict's quality flags read (``verdict.compute_flags``), in cache order.
QUALITY_KEYS = ("sharpness", "eyes_visible", "mouth_visible")
#: Part -> the region whose feature names it has (both eyes are measured as "eyes" each, ...).
_PART_REGION = {
    "left_eye": "eyes",
    "right_eye": "eyes",
    "left_brow": "brows",
    "right_brow": "brows",
    "mouth": "mouth",
}
_log = logging.getLogger(__name__)


def feature_names() -> dict[str, list[str]]:
    """``{region: [names]}`` of ``Measurement.features`` (the anatomy package's ``FEATURE_NAMES``)."""
    from .backends.anatomy import FEATURE_NAMES

    return {r: list(n) for r, n in FEATURE_NAMES.items()}


@dataclass
class Measurement:
    """One face measured: ``parts[part]`` (``left_eye``, ``right_eye``, ``left_brow``,
    ``right_brow``, ``mouth``) the part's measurements by name, ``None`` where it has no box;
    ``features[region]`` (eyes, brows, mouth) the region vectors in ``feature_names()`` order;
    ``quality`` the ``QUALITY_KEYS``, each in [0, 1]. ``error`` says why the measurement failed
    (then ``features`` is empty and ``quality`` holds only ``sharpness``).
    ``key`` is the cache key; ``cached``: read from the cache, or already written to it."""

    parts: dict[str, dict[str, float] | None]
    features: dict[str, np.ndarray]
    quality: dict[str, float]
    error: str | None = None
    key: str = ""
    cached: bool = False


def face_key(inp: FaceInput) -> str:
    """Cache key of one face: image content hash + face box + every region box."""
    from .imageio import image_key

    img_key = inp.key or image_key(inp.image)
    boxes = sorted((k, tuple(int(x) for x in v) if v is not None else None) for k, v in inp.regions.items())
    return f"{img_key}|{tuple(int(x) for x in inp.face.box)}|{boxes}"


@functools.cache  # the code does not change within a process; score() builds a stage per call
def fingerprint() -> str:
    """sha1 of the code that computes measurements (see the module docstring): cached ones die
    with any change to it. Not the emotion mapping (``anatomy/mapping.py``, ``anatomy.json``)."""
    root = Path(__file__).resolve().parent
    files = [root / "measure.py", root / "quality.py"]
    files += [f for f in sorted((root / "backends" / "anatomy").glob("*.py")) if f.name != "mapping.py"]
    h = hashlib.sha1()
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def _fallback_quality(inp: FaceInput) -> dict[str, float]:
    """Quality of a face whose part measurement failed: sharpness only, which needs no part.
    Not ``quality.eyes_visible``: on drawn test faces it reads 0 for both eyes (happy arcs and
    open neutral eyes, 256 px renders), so it would raise missing_eyes on drawn eyes; a region
    that gets no reading still flags as missing."""
    from . import quality

    x0, y0, x1, y1 = (int(v) for v in inp.face.box)
    return {"sharpness": quality.sharpness(inp.image[max(0, y0) : y1, max(0, x0) : x1])}


def measure_one(inp: FaceInput, params: MeasureParams | None = None) -> Measurement:
    """Measure one face with no cache (the stage's work; ``MeasureStage.measure`` caches it), with
    the constants of ``params`` (``None``: the defaults). A face that cannot be measured gives a
    ``Measurement`` with ``error`` set, and a warning."""
    from .backends import anatomy

    names = feature_names()
    try:
        m = anatomy.measure_face(inp, params)
    except Exception as e:  # an odd face must not stop the run: the backend decides what it can read
        why = f"measurement failed ({type(e).__name__}: {e})"
        _log.warning("%s", why)
        return Measurement({}, {}, _fallback_quality(inp), error=why)
    parts = {
        p: None if v is None else {n: float(v[n]) for n in names[_PART_REGION[p]]}
        for p, v in ((p, m.parts.get(p)) for p in _PART_REGION)
    }
    features = {r: np.asarray(m.features[r], dtype=np.float64) for r in names}
    return Measurement(parts, features, {k: float(m.quality[k]) for k in QUALITY_KEYS})


def _pack(m: Measurement) -> np.ndarray:
    """float32 words holding the float64 bits of: region features, per part presence + values,
    quality (``_unpack`` inverts it exactly; the cache stores float32 rows)."""
    names = feature_names()
    vals: list[float] = []
    for r in names:
        vals += [float(x) for x in m.features[r]]
    for p, r in _PART_REGION.items():
        part = m.parts.get(p)
        vals.append(0.0 if part is None else 1.0)
        vals += [float("nan") if part is None else part[n] for n in names[r]]
    vals += [m.quality[k] for k in QUALITY_KEYS]
    return np.asarray(vals, dtype=np.float64).view(np.float32)


def _unpack(row: np.ndarray, key: str) -> Measurement:
    names = feature_names()
    v = np.ascontiguousarray(row, dtype=np.float32).view(np.float64)
    i = 0

    def take(k: int) -> np.ndarray:
        nonlocal i
        i += k
        return v[i - k : i].copy()

    features = {r: take(len(n)) for r, n in names.items()}
    parts: dict[str, dict[str, float] | None] = {}
    for p, r in _PART_REGION.items():
        present, vals = take(1)[0], take(len(names[r]))
        parts[p] = dict(zip(names[r], map(float, vals), strict=True)) if present else None
    quality = dict(zip(QUALITY_KEYS, map(float, take(len(QUALITY_KEYS))), strict=True))
    return Measurement(parts, features, quality, key=key, cached=True)


def cache_id(params: MeasureParams) -> str:
    """The cache's model id: the code's fingerprint, plus a digest of the overrides when there are
    any (defaults keep the plain id, so caches written before overrides existed stay valid)."""
    d = digest(params.overrides)
    return f"measure:{fingerprint()}" + (f":params-{d}" if d else "")


class MeasureStage:
    """The measurement stage with its cache (``cache_dir``: a folder, or ``None`` for none).
    ``params``: measurement constant overrides (any form ``harmony_eval.params.normalize`` takes, or a
    ``MeasureParams``); they key the cache, so a changed constant never reads stale measurements.
    ``stats`` counts faces measured and faces read from the cache."""

    def __init__(self, cache_dir: str | None = None, params: Any = ()) -> None:
        from .embed_cache import EmbeddingCache

        self.params = params if isinstance(params, MeasureParams) else MeasureParams.from_overrides(params)
        self.cache = EmbeddingCache(cache_dir, cache_id(self.params)) if cache_dir else None
        self.stats = {"measured": 0, "cached": 0}

    def measure_batch(self, inputs: list[FaceInput]) -> list[Measurement]:
        """One ``Measurement`` per face: from the cache when it has it, else measured. New ones
        are not written here (see ``store``)."""
        keys = [face_key(inp) for inp in inputs] if self.cache is not None else [""] * len(inputs)
        found = self.cache.get(keys) if self.cache is not None else {}
        out = []
        for inp, k in zip(inputs, keys, strict=True):
            if k in found:
                out.append(_unpack(found[k], k))
                self.stats["cached"] += 1
                continue
            m = measure_one(inp, self.params)
            m.key = k
            out.append(m)
            self.stats["measured"] += 1
        return out

    def measure(self, inp: FaceInput) -> Measurement:
        return self.measure_batch([inp])[0]

    def store(self, measurements: Iterable[Measurement | None]) -> None:
        """Write the new measurements (not cached yet, not failed) as one cache shard."""
        if self.cache is None:
            return
        new = {m.key: m for m in measurements if m is not None and m.key and not m.cached and not m.error}
        if new:
            self.cache.put({k: _pack(m) for k, m in new.items()})
            for m in new.values():
                m.cached = True


def with_measurement(pred: RegionPrediction, m: Measurement | None, features: bool) -> RegionPrediction:
    """``pred`` with the stage's ``quality`` and, with ``features``, the region measurements
    appended to the backend's own features of eyes / brows / mouth as ``anat_<name>`` (regions the
    backend gave no features for stay without: it had no box there)."""
    if m is None:
        return pred
    feats, names = dict(pred.features), dict(pred.feature_names)
    if features and not m.error:
        for r, n in feature_names().items():
            if r in feats:
                feats[r] = np.concatenate(
                    [np.asarray(feats[r], dtype=np.float64), np.nan_to_num(m.features[r])]
                )
                names[r] = list(names.get(r, [])) + [f"anat_{x}" for x in n]
    return replace(pred, features=feats, feature_names=names, quality=dict(m.quality))
