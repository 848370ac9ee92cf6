"""Face detectors: a registry of factories and a cascade.

    detectors = build_detectors()                     # ["animeface", "mediapipe", "crop"]
    faces, name = find_faces(image, detectors)        # main face = faces[0] (largest)

The cascade stops at the first detector that finds a face: animeface (anime-trained, face + eyes +
mouth), then MediaPipe's face landmarker (photo-trained, 478 landmarks; needs a model file), then the
tight-crop fallback (an image that *is* a face). Box fixes that belong to one detector live in that
detector (animeface grows its mouth boxes and handles partial boxes on tight crops itself).

When no detector finds a face on the whole image, the cascade runs again on what is drawn
(:class:`Fallback`): the content box of a sprite on a plain background, then the top of a
standing figure, so that a small head on a tall canvas is seen at a detectable size. Detectors are
cheap to build and create their models on first use, so they can be pickled to worker processes.

A face still missed can come from its batch: ``detect.siblings`` gives it the agreeing box of its
expression variants (same folder and canvas, same pixels outside the face), run by the driver after
this per-image pass (``harmony_eval.sibling_pass``; detector ``siblings``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Box, Detector, Face
from ._geometry import background_colour, clip_box, content_box

log = logging.getLogger(__name__)
_warned_mediapipe = False

DEFAULT_CASCADE: tuple[str, ...] = ("animeface", "mediapipe", "crop")


@dataclass(frozen=True)
class Fallback:
    """Second looks when the whole image gave no face (``benchmarks/face_finding.py``, stress sets
    ``tall`` / ``body``: each source's sprites on a 2.5 x taller canvas, or with the body below the
    chin stretched 2.5 x).

    - ``tol``: a pixel is drawn when a channel differs from the background (median of the top, left
      and right edges) by more than this; anti-aliased edges and JPEG noise stay under it.
    - ``min_shrink``: run on the content box when it covers under this share of the image's area
      (a sprite with empty canvas around it: its face is a small share of the long side).
    - ``tall`` / ``top``: content taller than ``tall`` x its width is a standing figure: also try
      its top ``top`` x its width (the head and shoulders).
    - ``min_side``: no second look on an image, or a crop, under this many px a side (a guard, not
      a measured line: no face the detectors can read fits in it).
    - ``pad``: when the drawing reaches the image's bottom edge (a close-up the frame cuts at the
      chin; stress set ``tight``), also look at it on a canvas grown by each of these shares of its
      width and height, above and on both sides, in the background colour: the cascade misses a face
      that fills the frame. Not the crop test there (it takes a whole image for a face). The shares
      were the first ones tried, not tuned. ``python -m benchmarks.face_finding``, found before ->
      after, every new find a hit: tight close-ups dialogic 0.60 -> 0.68, zundamon 0.67 -> 0.87,
      TADNE 0.94 -> 0.97; zundamon chin 0.93 -> 1.00; afc TV crops 0.94 -> 0.97, afc screenshots
      0.86 -> 0.91; dialogic originals 0.80 -> 0.84; small TADNE tiles 0.94 -> 1.00; no source or
      variant lower, false faces on noise, faceless bodies and grids unchanged (1 / 2 / 6).
    - ``max_canvas``: a grown canvas over this many px a side is made from the image resized down
      (a 4k render would otherwise cost ~150 MB per look; the detectors resize to a few hundred px).

    Tried, not adopted: a last look on a grey copy (for one-colour line art). Found before -> after
    for the three conversions tried (channel mean stretched to its 1-99th percentiles / luma / luma
    stretched): tight dialogic 0.68 -> 0.80 / 0.68 / 0.76, tight zundamon 0.87 -> 1.00 / 0.93 / 0.93,
    afc screenshots 0.91 -> 0.96 / 0.93 / 0.93 (half the new finds not the true face), nothing lower;
    but false faces on noise 1 -> 3 (channel mean) or on faceless bodies 2 -> 3 / 4 (luma), and the gain
    depends on the conversion. A third pad share (1.0) moved nothing. Growing the canvas below as
    well (each share on all four sides, after the three-sided looks; 2026-12-03): tight dialogic
    0.68 -> 0.72, tight zundamon 0.87 -> 1.00, but one more false face on noise (1 -> 2) and a new
    afc screenshot find that is not the face (found 0.91 -> 0.93, hit 0.83 -> 0.83); nothing else moved.
    The same, keeping only a face that reaches below the frame (what a face cut at the chin does;
    2026-12-04): the noise face is gone (1), the tight finds stay (0.72 / 1.00, all hits), but the
    screenshot find stays too (a box at the bottom right of a TV frame, not the face): not adopted.
    """

    tol: int = 12
    min_shrink: float = 0.8
    tall: float = 1.5
    top: float = 1.0
    min_side: int = 16
    pad: tuple[float, ...] = (0.25, 0.5)
    max_canvas: int = 2048


FALLBACK = Fallback()
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


def suppress_mediapipe_warning() -> None:
    """Count the missing-MediaPipe-model warning as given in this process (a worker whose parent
    already warned)."""
    global _warned_mediapipe
    _warned_mediapipe = True


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


def find_faces(
    image: np.ndarray, detectors: list[Detector], fallback: Fallback | None = FALLBACK
) -> tuple[list[Face], str]:
    """Run the cascade on an RGB ``uint8 (H, W, 3)`` image.

    Returns ``(faces, detector_name)``: the faces of the first detector that finds at least one,
    sorted by area, largest first (``faces[0]`` is the main face; ``detector_name`` is its
    detector's); ``([], "none")`` when no detector finds a face, on the whole image nor on the
    crops of ``fallback`` (``None``: no second look).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        raise ValueError(
            f"`image` must be an RGB uint8 array (H, W, 3), got {got}; use harmony_eval.imageio.to_rgb."
        )
    faces = _cascade(image, detectors)
    drawn = None  # the drawing's box, for the second looks: measured once, on a miss only
    if not faces and fallback is not None and min(image.shape[:2]) >= fallback.min_side:
        drawn = content_box(image, fallback.tol)
    for x0, y0, x1, y1 in _second_looks(image, fallback, drawn) if drawn is not None else ():
        found = _cascade(np.ascontiguousarray(image[y0:y1, x0:x1]), detectors)
        if found:
            faces = [_shifted(f, x0, y0, image.shape) for f in found]
            break
    # the crop test takes a whole image for a face: a grown canvas is not one
    grown_looks = [d for d in detectors if d.name != "crop"]
    for canvas, dx, dy, k in _padded_looks(image, fallback, drawn) if not faces and grown_looks else ():
        h, w = (round(k * n) for n in image.shape[:2])  # a face centred on the margin is not on the image
        found = [
            f for f in _cascade(canvas, grown_looks)
            if 0 <= (f.box[0] + f.box[2]) / 2 - dx < w and 0 <= (f.box[1] + f.box[3]) / 2 - dy < h
        ]  # fmt: skip
        if found:
            faces = [_shifted(f, -dx, -dy, image.shape, scale=k) for f in found]
            break
    return (faces, faces[0].detector) if faces else ([], "none")


def _cascade(image: np.ndarray, detectors: list[Detector]) -> list[Face]:
    for det in detectors:
        faces = det.detect(image)
        if faces:
            return sorted(faces, key=lambda f: (-f.area, -f.score))
    return []


def _second_looks(image: np.ndarray, fb: Fallback, box: Box) -> list[Box]:
    """Crops to run the cascade on when the whole image gave nothing and ``box`` is drawn (see
    :class:`Fallback`)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    cw, ch = x1 - x0, y1 - y0
    out = []
    if cw * ch < fb.min_shrink * w * h and min(cw, ch) >= fb.min_side:
        out.append(box)
    if ch > fb.tall * cw and cw >= fb.min_side:
        out.append((x0, y0, x1, y0 + int(round(fb.top * cw))))
    return out


def _padded_looks(
    image: np.ndarray, fb: Fallback | None, box: Box | None
) -> Iterator[tuple[np.ndarray, int, int, float]]:
    """``(canvas, dx, dy, k)``: the image, resized by ``k``, pasted at ``(dx, dy)`` on a canvas grown
    above and on both sides in its background colour, one per ``fb.pad`` share, when its drawing
    (``box``) reaches the bottom edge (see :class:`Fallback`). ``k`` < 1 only when the canvas would exceed
    ``fb.max_canvas`` px a side (the detectors resize far below that anyway). Made one at a time:
    most misses stop at the first."""
    h0, w0 = image.shape[:2]
    if fb is None or not fb.pad or box is None or box[3] < h0:
        return
    bg = background_colour(image).astype(np.uint8)
    for share in fb.pad:
        k = min(1.0, fb.max_canvas / ((1 + 2 * share) * w0), fb.max_canvas / ((1 + share) * h0))
        if k < 1.0:
            import cv2

            view = cv2.resize(
                image, (max(1, round(k * w0)), max(1, round(k * h0))), interpolation=cv2.INTER_AREA
            )
        else:
            view = image
        h, w = view.shape[:2]
        dx, dy = int(round(share * w)), int(round(share * h))
        canvas = np.empty((h + dy, w + 2 * dx, 3), np.uint8)
        canvas[:] = bg
        canvas[dy:, dx : dx + w] = view
        yield canvas, dx, dy, k


def _shifted(face: Face, dx: int, dy: int, shape: tuple[int, ...], scale: float = 1.0) -> Face:
    """``face`` found on a view at ``(dx, dy)`` of the image resized by ``scale``, in the whole
    image's pixels: ``(x + dx) / scale``."""

    def sh(b: Box) -> Box:
        moved = tuple(int(round((v + d) / scale)) for v, d in zip(b, (dx, dy, dx, dy), strict=True))
        return clip_box(moved, shape) or b  # type: ignore[arg-type]

    pts = None
    if face.points is not None:
        pts = ((face.points + np.array([dx, dy])) / scale).astype(face.points.dtype)
    return replace(face, box=sh(face.box), parts={n: sh(b) for n, b in face.parts.items()}, points=pts)


__all__ = [
    "DETECTORS",
    "DEFAULT_CASCADE",
    "FALLBACK",
    "Fallback",
    "build_detectors",
    "find_faces",
    "resolve_mediapipe_model",
    "suppress_mediapipe_warning",
]
