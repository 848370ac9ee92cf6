"""Face detectors: a registry of factories and a cascade.

    detectors = build_detectors()                     # ["animeface", "mediapipe", "crop"]
    faces, name = find_faces(image, detectors)        # main face = faces[0] (largest)

The cascade stops at the first detector that finds a face: animeface (anime-trained, face + eyes +
mouth), then MediaPipe's face landmarker (photo-trained, 478 landmarks; needs a model file), then the
tight-crop fallback (an image that *is* a face). A small square image on which animeface boxed only
part of the face gets the tight-crop test or the whole image as its face (see :data:`TIGHT_SIDE`).
Detectors are cheap to build and create their
models on first use, so they can be pickled to worker processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Detector, Face

log = logging.getLogger(__name__)
_warned_mediapipe = False

DEFAULT_CASCADE: tuple[str, ...] = ("animeface", "mediapipe", "crop")
#: Tight crops: on a roughly square image (aspect 0.8-1.25) of at most ``TIGHT_SIDE`` px, a largest
#: animeface face narrower than ``TIGHT_FACE`` x the width is a box on part of a face that fills the
#: picture (the 350 px TV crops: minos_0 130 px, nakayoshibu_0 87, hina5_0 164, kyaru16_0 186; every
#: other crop's face is >= 0.6 of the width). The tight-crop test then runs; if it finds nothing and
#: the box touches an edge (3 of those 4), the face is the whole image. A small face well inside a
#: small picture (a thumbnail) is kept.
TIGHT_SIDE, TIGHT_FACE = 400, 0.5
#: Environment variable naming the MediaPipe model file.
MEDIAPIPE_ENV = "HARMONY_EVAL_FACE_LANDMARKER"
#: Where the MediaPipe model is looked for when neither the option nor the variable is set.
MEDIAPIPE_CACHE = Path("~/.cache/harmony_eval/face_landmarker.task")
_MEDIAPIPE_HELP = (
    "Download face_landmarker.task from MediaPipe's model storage "
    "(https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    f"face_landmarker.task) and put it at {MEDIAPIPE_CACHE}, or set {MEDIAPIPE_ENV}=/path/to/it, "
    "or pass mediapipe_model=/path/to/it (CLI: --mediapipe-model)."
)


def _animeface(**opts: Any) -> Detector:
    from .animeface import AnimeFaceDetector

    return AnimeFaceDetector(**opts)


def _mediapipe(model: str | os.PathLike | None = None, **opts: Any) -> Detector:
    from .mediapipe import MediaPipeDetector

    path = resolve_mediapipe_model(model)
    if path is None:
        raise FileNotFoundError(
            f"The 'mediapipe' detector needs its model file, none found. {_MEDIAPIPE_HELP}"
        )
    return MediaPipeDetector(path, **opts)


def _crop(**opts: Any) -> Detector:
    from .crop import CropDetector

    return CropDetector(**opts)


#: name -> factory(**options) returning a Detector (``build_detectors``' per-detector options).
DETECTORS: dict[str, Callable[..., Detector]] = {
    "animeface": _animeface,
    "mediapipe": _mediapipe,
    "crop": _crop,
}


def resolve_mediapipe_model(model: str | os.PathLike | None = None) -> Path | None:
    """The MediaPipe model file to use: ``model`` if given (it must exist), else the file named by
    ``$HARMONY_EVAL_FACE_LANDMARKER``, else ``~/.cache/harmony_eval/face_landmarker.task``; ``None``
    when none of them exists."""
    if model is not None:
        p = Path(model).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"`mediapipe_model`={str(model)!r} is not a file. {_MEDIAPIPE_HELP}")
        return p
    env = os.environ.get(MEDIAPIPE_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"${MEDIAPIPE_ENV}={env!r} is not a file. {_MEDIAPIPE_HELP}")
        return p
    p = MEDIAPIPE_CACHE.expanduser()
    return p if p.is_file() else None


def _warn_no_mediapipe() -> None:
    """Warn once per process (not once per image or per worker rebuild of the cascade)."""
    global _warned_mediapipe
    if not _warned_mediapipe:
        log.warning("mediapipe face detector skipped: no model file. %s", _MEDIAPIPE_HELP)
        _warned_mediapipe = True


def build_detectors(
    names: list[str] | None = None, options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Detector]:
    """Build the detector cascade.

    Args:
        names: detector names in cascade order (keys of :data:`DETECTORS`); ``None`` = the default
            ``["animeface", "mediapipe", "crop"]``.
        options: each detector's keyword arguments, ``{"mediapipe": {"model": "x.task"},
            "animeface": {"exhaustive": True}}`` (``config.DetectorConfig.per_detector`` builds it);
            options of a detector not in the cascade are unused, a wrong one raises ``TypeError``.

    With the default cascade a missing MediaPipe model skips that detector with one warning; naming
    ``"mediapipe"`` explicitly without a model raises ``FileNotFoundError`` saying where to put it.
    """
    explicit = names is not None
    if isinstance(names, str) or (explicit and not names):
        raise ValueError(f"`names` must be a non-empty list of detector names, got {names!r}.")
    names = list(DEFAULT_CASCADE if names is None else names)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ValueError(f"Unknown detector(s) {unknown}; valid names: {sorted(DETECTORS)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Detector names repeat in {names}; name each detector once.")
    unknown_opts = [d for d in (options or {}) if d not in DETECTORS]
    if unknown_opts:
        raise ValueError(f"Options for unknown detector(s) {unknown_opts}; valid names: {sorted(DETECTORS)}.")
    per = {n: {k: v for k, v in (options or {}).get(n, {}).items() if v is not None} for n in names}
    out: list[Detector] = []
    for n in names:
        if n == "mediapipe" and not explicit and "model" not in per[n] and resolve_mediapipe_model() is None:
            _warn_no_mediapipe()
            continue
        try:
            out.append(DETECTORS[n](**per[n]))
        except TypeError as e:
            raise TypeError(f"Bad option for detector {n!r} ({e}); options given: {per[n]}.") from None
    return out


def find_faces(image: np.ndarray, detectors: list[Detector]) -> tuple[list[Face], str]:
    """Run the cascade on an RGB ``uint8 (H, W, 3)`` image.

    Returns ``(faces, detector_name)``: the faces of the first detector that finds at least one,
    sorted by area, largest first (``faces[0]`` is the main face); ``([], "none")`` when no detector
    finds a face. A partial animeface box on a small tight crop is replaced (:data:`TIGHT_SIDE`).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        raise ValueError(
            f"`image` must be an RGB uint8 array (H, W, 3), got {got}; use harmony_eval.imageio.to_rgb."
        )
    for det in detectors:
        faces = det.detect(image)
        if faces:
            faces = sorted(faces, key=lambda f: (-f.area, -f.score))
            return _tight_crop(image, faces, det.name, detectors) or (faces, det.name)
    return [], "none"


def _tight_crop(
    image: np.ndarray, faces: list[Face], name: str, detectors: list[Detector]
) -> tuple[list[Face], str] | None:
    """The whole image as the face when it looks like a tight crop on which animeface boxed only a
    part of the face (see :data:`TIGHT_SIDE`); ``None`` to keep ``faces``."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = faces[0].box
    if name != "animeface" or max(h, w) > TIGHT_SIDE or not 0.8 <= w / h <= 1.25 or x1 - x0 >= TIGHT_FACE * w:
        return None
    for det in detectors:  # the tight-crop test places eyes and mouth from the eyes it finds
        if det.name == "crop":
            found = det.detect(image)
            if found:
                return found, det.name
    if not (x0 <= 1 or y0 <= 1 or x1 >= w - 1 or y1 >= h - 1):
        return None  # a small face well inside a small picture: maybe a thumbnail, keep it
    # its parts came from a box on part of the head (eyes on hair strands on 2 of the 3 dev crops
    # this fires on): leave them to the regions' face proportions
    return [Face((0, 0, w, h), faces[0].score, name)], name


__all__ = ["DETECTORS", "DEFAULT_CASCADE", "build_detectors", "find_faces", "resolve_mediapipe_model"]
