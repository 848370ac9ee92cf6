"""The scoring pipeline for one image: load -> faces -> regions -> region emotions -> agreement -> verdict.

``Scorer`` holds the configured stages; ``Scorer.score_paths`` / ``harmony_eval.score`` run it over many
images and return output-contract rows (see README, "Output contract").
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import agreement
from .measure import with_measurement
from .types import REGIONS, Face, FaceInput, RegionPrediction
from .verdict import VerdictConfig, compute_flags, decide, reason

#: Keys of one output row, in order (the output contract).
ROW_KEYS = (
    "path",
    "status",
    "error",
    "n_faces",
    "target",
    "emotion",
    "probs",
    "regions",
    "scores",
    "harmony",
    "verdict",
    "flags",
    "reason",
    "backend",
    "detector",
)
_DIGITS = 4  # rounding of every float in a row: stable bytes across runs and platforms


@dataclass
class Prepared:
    """One image after the per-image stages (load, detect, regions), before the region backend."""

    path: str
    key: str = ""
    image: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    faces: list[Face] = field(default_factory=list)
    detector: str = "none"
    regions: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    target: str | None = None
    predict_s: float = 0.0  # backend seconds charged to this image (set by the driver)
    measurement: Any = None  # measure.Measurement of faces[0] (the measurement stage, in prepare)
    signature: Any = None  # detect.siblings.Signature, for the driver's sibling pass (misses, real finds)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), _DIGITS)


def _probs_dict(p: np.ndarray | dict | None, emotions: list[str]) -> dict[str, float] | None:
    if p is None:
        return None
    v = agreement.as_vector(p, emotions) if isinstance(p, dict) else np.asarray(p, dtype=float)
    v = np.clip(v, 0.0, None)
    v = v / v.sum() if v.sum() > 0 else np.full(len(emotions), 1.0 / len(emotions))
    return {e: _r(x) for e, x in zip(emotions, v, strict=True)}


def _box(b) -> list[int] | None:
    return None if b is None else [int(v) for v in b]


class Scorer:
    """Configured pipeline. Cheap to build; detectors and backend are created on first use so that a
    ``Scorer`` can be sent to worker processes (see ``runner``).

    Build it from keywords (``Scorer(backend="anatomy", detectors=["animeface", "crop"])``), from a
    ``config.ScorerConfig``, or from a run folder (:meth:`from_run`). The keywords are the fields of
    ``ScorerConfig`` (see ``harmony_eval.config``): ``backend``, ``emotions``, ``detectors``,
    ``calibration``, ``verdict_config``, ``max_pixels``, ``anatomy_params``, ``clip_*``,
    ``mediapipe_*``, ``animeface_*``, ``crop_*``; an unknown one raises ``TypeError`` naming it.
    ``targets``: a ``targets.TargetResolver`` or ``None`` (no targets); per image, so not config.

    ``settings`` is the resolved config (emotions listed, ``auto`` resolved to the backend used):
    what ``run.json`` stores and :meth:`from_run` rebuilds. ``config`` is the loaded verdict rules.
    """

    def __init__(self, config: Any = None, *, targets: Any = None, **options: Any) -> None:
        from dataclasses import replace

        from .backends import resolve_backend_name
        from .config import ScorerConfig
        from .resources import resolve_emotions

        if config is None:
            cfg = ScorerConfig.from_options(**options)
        elif isinstance(config, ScorerConfig):
            cfg = config.replace_options(**options) if options else config
        else:
            raise TypeError(
                f"Scorer's first argument is a ScorerConfig, got {type(config).__name__} {config!r}; "
                "pass settings by keyword (Scorer(backend='anatomy', ...))"
            )
        self.emotions = resolve_emotions(list(cfg.emotions) if cfg.emotions else None)
        back = cfg.region_backend
        self.backend_name = resolve_backend_name(back.backend, {**back.clip_options(), "raters": back.raters})
        self.settings = replace(
            cfg, emotions=tuple(self.emotions), region_backend=replace(back, backend=self.backend_name)
        )
        self.detector_names = list(cfg.detection.detectors) if cfg.detection.detectors else None
        self.calibration_path = cfg.calibration
        self.max_pixels = cfg.max_pixels
        self.siblings = cfg.detection.face_from_siblings  # the driver's batch-level fallback
        self.targets = targets
        self.config = VerdictConfig.load(cfg.verdict_config)
        self._calibration = None
        if self.calibration_path:
            from .calibrated import Calibration

            self._calibration = Calibration.load(self.calibration_path)
            self._calibration.check_usable(self.emotions, self.backend_name)  # fail now, not per image
            from .params import check_calibration

            where = f"calibration {self.calibration_path}"
            check_calibration(self._calibration.training.get("params"), cfg.params, where)
            self.config = self.config.with_thresholds(self._calibration.verdict_thresholds)
        self.compat = self.config.compat(self.emotions)
        # crop descriptors only where a reader reads them (a calibration's learned models; calibrate
        # sets this to fit them): ~2 ms a face the plain scoring path need not spend
        self.descriptors = self._calibration is not None and any(
            f.split(":", 1)[0].endswith("_desc")
            for m in self._calibration.models.values()
            for f in m.features
        )
        self._detectors = None
        self._backend = None
        self._measure = None

    @classmethod
    def from_run(cls, run_dir: str | Path, **overrides: Any) -> Scorer:
        """The scorer a run folder was scored with, from its ``run.json`` (``config.scorer``), with
        its rows' targets (by path). ``overrides``: flat options to change, or ``targets=``."""
        from .runrecord import scorer_from_run

        return scorer_from_run(cls, run_dir, **overrides)

    @property
    def options(self) -> dict[str, Any]:
        """The flat options that differ from the defaults (JSON values)."""
        return self.settings.options()

    # -- lazily built stages (not pickled to workers) -------------------------------------------
    def __getstate__(self) -> dict:
        return {**self.__dict__, "_detectors": None, "_backend": None, "_measure": None}

    @property
    def detectors(self):
        if self._detectors is None:
            from .detect import build_detectors

            mp = self.measure_stage.params  # --param animeface.* / crop.* reach the detectors too
            given = {d: dict(o) for d, o in self.settings.detection.per_detector().items()}
            given.setdefault("animeface", {}).update(params=mp.animeface, crop_params=mp.crop)
            # (options of detectors not in the cascade go unused)
            given.setdefault("crop", {})["params"] = mp.crop
            self._detectors = build_detectors(self.detector_names, given)
        return self._detectors

    @property
    def backend(self):
        if self._backend is None:
            from .backends import get_backend

            options = self.settings.backend_options()
            self._backend = get_backend(self.backend_name, **options)
        return self._backend

    @property
    def measure_stage(self):
        """The measurement stage (``harmony_eval.measure``); it caches in the run's cache folder
        where the backend batches in the main process (one shard a batch; see ``measure``)."""
        if getattr(self, "_measure", None) is None:
            from .measure import MeasureStage

            root = None if self.batch_in_worker else self.settings.region_backend.clip_embed_cache
            self._measure = MeasureStage(root, params=self.settings.params)
        return self._measure

    def reading_features(self, pred: RegionPrediction) -> dict[str, float]:
        """``pred``'s named features for calibrated models (``calibrated.prediction_features``), its
        ``pooled:logp_*`` made as this scorer's uncalibrated run makes its ``probs``: the pool
        weights and the reader's holistic temperature (``holistic_temperature``)."""
        from .calibrated import prediction_features

        t = holistic_temperature(self.backend_name)
        return prediction_features(pred, self.emotions, self.config.pool_weights, t)

    @property
    def batch_in_worker(self) -> bool:
        """Whether the backend is cheap per image (run it inside worker processes)."""
        return self.backend_name == "anatomy"

    # -- stages ---------------------------------------------------------------------------------
    def prepare(self, item: str | Path | Any, name: str | None = None, face: Face | None = None) -> Prepared:
        """Load, detect and cut regions for one input (a path, PIL image or array). Never raises for
        bad input: the error is recorded on the returned ``Prepared``. ``face``: use this face
        instead of detecting (the driver's second prepare of a miss boxed from its siblings)."""
        from .detect import find_faces
        from .imageio import DEFAULT_MIN_SIDE, ImageLoadError, image_key, load_image, to_rgb
        from .regions import face_regions

        path = name if name is not None else str(item)
        prep = Prepared(path=path)
        try:
            if isinstance(item, (str, Path)):
                # a readable image too small to hold a face is "no face", not an unreadable file
                loaded = load_image(item, max_pixels=self.max_pixels, min_side=1)
                prep.image, prep.key, prep.metadata = loaded.rgb, loaded.key, dict(loaded.metadata)
            else:
                prep.image = to_rgb(item)
                prep.key = image_key(prep.image)
        except ImageLoadError as e:
            prep.error = str(e)
            return prep
        except Exception as e:  # an unexpected decoder failure must not stop the run
            prep.error = f"{path}: could not read image ({type(e).__name__}: {e})"
            return prep
        try:
            if self.targets is not None:
                prep.target = self.targets.target_for(path, prep.metadata)[0]
            h, w = prep.image.shape[:2]
            if min(h, w) < DEFAULT_MIN_SIDE:
                prep.metadata["no_face_reason"] = f"image is {w}x{h} px, too small to hold a face"
                return prep
            if face is not None:
                prep.faces, prep.detector = [face], face.detector
            else:
                prep.faces, prep.detector = find_faces(prep.image, self.detectors)
                if self.siblings:
                    from .detect.siblings import wants_signature

                    prep.signature = wants_signature(
                        prep.image, prep.detector, self.measure_stage.params.siblings
                    )
            if prep.faces:
                stage = self.measure_stage  # its params hold the region proportions too
                prep.regions = face_regions(prep.faces[0], prep.image.shape, p=stage.params.regions)
                prep.measurement = stage.measure(FaceInput(prep.image, prep.faces[0], prep.regions, prep.key))
        except Exception as e:
            prep.error = f"{path}: face detection failed ({type(e).__name__}: {e})"
            prep.metadata["traceback"] = traceback.format_exc(limit=5)
        return prep

    def predict(self, batch: list[Prepared]) -> list[RegionPrediction | None]:
        """Run the region backend (and calibration) on every prepared image that has a face."""
        todo = [i for i, p in enumerate(batch) if p.error is None and p.faces]
        out: list[RegionPrediction | None] = [None] * len(batch)
        if not todo:
            return out
        inputs = [FaceInput(batch[i].image, batch[i].faces[0], batch[i].regions, batch[i].key) for i in todo]
        for i, inp in zip(todo, inputs, strict=True):  # measured in prepare, unless built elsewhere
            batch[i].measurement = inp.measurement = batch[i].measurement or self.measure_stage.measure(inp)
        preds = self.backend.predict(inputs, self.emotions)
        if not self.batch_in_worker:
            self.measure_stage.store(inp.measurement for inp in inputs)
        # the stage's quality for every backend (same flags whatever reads the face), and its
        # measurements as anat_* features where the backend does not carry them itself
        anat = not getattr(self.backend, "reads_measurements", False)
        preds = [with_measurement(p, inp.measurement, anat) for p, inp in zip(preds, inputs, strict=True)]
        for i, pred in zip(todo, preds, strict=True):
            if self.descriptors:
                pred = with_descriptors(pred, batch[i].image, batch[i].regions)
            if self._calibration is not None:
                pred = self._calibration.apply(pred, self.emotions)
            out[i] = pred
        return out

    def finish(self, prep: Prepared, pred: RegionPrediction | None) -> dict[str, Any]:
        """Agreement, verdict, flags and reason: the output row for one image."""
        row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
        row.update(
            path=prep.path,
            target=prep.target,
            backend=self.backend_name,
            detector=prep.detector,
            n_faces=len(prep.faces),
            flags=[],
            scores=dict.fromkeys(agreement.SCORE_KEYS),
            regions={r: {"box": _box(prep.regions.get(r)), "probs": None} for r in REGIONS},
        )
        if prep.error is not None:
            row.update(status="error", error=prep.error, reason=f"could not score: {prep.error}", n_faces=0)
            return row
        if not prep.faces or pred is None:
            why = prep.metadata.get("no_face_reason", "no face found")
            row.update(status="no_face", verdict="broken", flags=["no_face"], reason=why)
            return row
        e = self.emotions
        vec = {r: (agreement.as_vector(p, e) if p else None) for r, p in pred.probs.items()}
        readings = {r: vec.get(r) for r in ("eyes", "brows", "mouth", "face")}
        holistic = agreement.pool(readings, self.config.pool_weights)
        if (
            self._calibration is not None
            and "face" in self._calibration.models
            and vec.get("face") is not None
        ):
            holistic = vec["face"]  # a calibrated whole-face model is the holistic reading as fitted
        else:
            # the reader's own temperature (config/readers.json, fitted on art it was never tuned
            # on): on unseen art it must not claim more confidence than it has. A calibration
            # without a face model keeps the one its file was fitted with (as calibrate's
            # ``pooled:logp_*`` features do), so models kept as is change nothing.
            cal = self._calibration
            t = holistic_temperature(self.backend_name) if cal is None else cal.holistic_temperature
            holistic = agreement.temper(holistic, t)
        tidx = e.index(prep.target) if prep.target in e else None
        scores = agreement.agreement_scores(readings, holistic, self.compat, self.config.pool_weights, tidx)
        harmony = agreement.harmony(scores, self.config.harmony_weights)
        region_probs = {r: _probs_dict(vec.get(r), e) for r in REGIONS}
        if region_probs["face"] is None:
            region_probs["face"] = _probs_dict(holistic, e)
        probs = _probs_dict(holistic, e)
        scores = {k: _r(v) for k, v in scores.items()}
        harmony = _r(harmony)
        flags = compute_flags(
            n_faces=len(prep.faces),
            face_areas=[f.area for f in prep.faces],
            region_probs=region_probs,
            holistic=probs,
            scores=scores,
            quality=pred.quality,
            target=prep.target,
            config=self.config,
            face_width=(prep.faces[0].box[2] - prep.faces[0].box[0]) if prep.faces else None,
        )
        extras = None
        if pred.raters:  # several raters: their agreement per region, and a flag when they part ways
            from .backends.raters import row_extras
            from .verdict import FLAGS

            extras = row_extras(pred, e, self.compat, self.config.thresholds)
            scores["raters_agreement"] = extras.score
            if extras.disagree:
                flags = [f for f in FLAGS if f in {*flags, "raters_disagree"}]
        verdict, failed = decide(scores, harmony, flags, self.config)
        row.update(
            status="ok",
            probs=probs,
            emotion=max(probs, key=probs.get) if probs else None,
            regions={r: {"box": _box(prep.regions.get(r)), "probs": region_probs[r]} for r in REGIONS},
            scores=scores,
            harmony=harmony,
            verdict=verdict,
            flags=flags,
            reason=reason(
                verdict, flags, failed, region_probs, probs, scores, prep.target, len(prep.faces), harmony
            ),
        )
        if extras is not None:  # additive: regions.<r>.raters / raters_agreement (README, output contract)
            for r, extra in extras.regions.items():
                row["regions"][r].update(extra)
            if extras.disagree:
                row["reason"] += f"; {extras.why}"
        if "tags" in pred.feature_names:  # tagger: the face crop's tag probabilities, for the report
            tags = zip(pred.feature_names["tags"], pred.features["tags"], strict=True)
            row["regions"]["face"]["tags"] = {t: _r(v) for t, v in tags if v >= 0.01}
        if prep.detector == "siblings":  # additive, after the verdict: where the face came from
            n = len(prep.metadata.get("face_from_siblings", ()))
            row["flags"] = [*row["flags"], "face_from_siblings"]
            row["reason"] += f"; no detector found the face: its box is that of {n} sibling images"
        return row

    def iter_scored(
        self,
        items: Iterable[Any],
        workers: int = 1,
        batch: int = 16,
        keep_images: bool = False,
        in_order: bool = True,
        members: dict | None = None,
    ) -> Iterator[tuple[Prepared, RegionPrediction | None, dict[str, Any]]]:
        """``(prepared, prediction, row)`` for each item (a path, an in-memory image or an
        ``(item, name)`` pair), in input order, on ``workers`` processes; see ``harmony_eval.driver``."""
        from .driver import iter_scored

        return iter_scored(
            self,
            items,
            workers=workers,
            batch=batch,
            keep_images=keep_images,
            in_order=in_order,
            members=members,
        )

    def score_one(self, item: Any, name: str | None = None) -> dict[str, Any]:
        prep = self.prepare(item, name)
        return self.finish(prep, self.predict([prep])[0])

    def score_batch(self, preps: list[Prepared]) -> list[dict[str, Any]]:
        preds = self.predict(preps)
        return [self.finish(p, q) for p, q in zip(preps, preds, strict=True)]


@functools.lru_cache(maxsize=8)
def holistic_temperature(backend: str) -> float:
    """``holistic_temperature`` of ``backend``'s card in ``config/readers.json`` (1.0 without one)."""
    from .reader_info import load_reader_cards

    return float((load_reader_cards().get(backend) or {}).get("holistic_temperature", 1.0))


def with_descriptors(pred: RegionPrediction, image: np.ndarray, regions: dict[str, Any]) -> RegionPrediction:
    """``pred`` with the generic crop descriptors (``descriptors.region_descriptors``, ~2 ms a face)
    added to its features, whatever the backend: the learned readers of a calibration read them."""
    from dataclasses import replace

    from .descriptors import DESCRIPTOR_NAMES, region_descriptors

    feats = region_descriptors(image, regions)
    return replace(
        pred,
        features={**pred.features, **feats},
        feature_names={**pred.feature_names, **{g: DESCRIPTOR_NAMES[g] for g in feats}},
    )


def iter_inputs(inputs: Any) -> Iterator[tuple[Any, str]]:
    """``(item, name)`` pairs: paths (folders expanded, sorted) or in-memory images (``<image N>``)."""
    from .imageio import list_images

    if isinstance(inputs, (str, Path)) or not isinstance(inputs, Iterable) or isinstance(inputs, np.ndarray):
        inputs = [inputs]
    for i, item in enumerate(inputs):
        if isinstance(item, (str, Path)):
            for p in list_images([item]):
                yield p, str(p)
        else:
            yield item, f"<image {i}>"
