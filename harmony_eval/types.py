"""Plain data types that flow through the pipeline: image -> faces -> regions -> region emotions.

Boxes are ``(x0, y0, x1, y1)`` in integer image pixels, x0/y0 inclusive, x1/y1 exclusive.
Images are ``numpy.uint8`` arrays of shape ``(H, W, 3)``, RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Box = tuple[int, int, int, int]
Probs = dict[str, float]

#: Region names of the output contract, in report order.
REGIONS: tuple[str, ...] = ("eyes", "left_eye", "right_eye", "brows", "mouth", "face")


@dataclass
class Face:
    """One detected face.

    ``parts`` holds boxes a detector found directly (``left_eye``, ``right_eye``, ``mouth``,
    ``left_brow``, ``right_brow``); ``points`` optional landmark points ``(N, 2)`` in image pixels.
    ``left``/``right`` are as seen in the image (viewer's left), not the character's.
    """

    box: Box
    score: float
    detector: str
    parts: dict[str, Box] = field(default_factory=dict)
    points: np.ndarray | None = None

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(0, x1 - x0) * max(0, y1 - y0)


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB image. Returns every face found, any order."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


@dataclass
class RegionPrediction:
    """What a region backend says about one face.

    ``probs[region]`` is a distribution over the vocabulary (sums to 1) or ``None`` when the region
    is missing. ``features[region]`` is a flat float vector (named by ``feature_names[region]``) that
    a calibrated classifier can be fitted on. ``quality`` carries image-level measurements the
    verdict uses (e.g. ``sharpness``). ``raters[name][region]`` keeps each rater's own reading when
    several backends read the face (``backends.raters``); empty otherwise.
    """

    probs: dict[str, Probs | None]
    features: dict[str, np.ndarray] = field(default_factory=dict)
    feature_names: dict[str, list[str]] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    raters: dict[str, dict[str, Probs | None]] = field(default_factory=dict)


@dataclass
class FaceInput:
    """One face handed to a region backend: the image, the face and its region boxes, and what the
    measurement stage measured on it (``harmony_eval.measure.Measurement``; ``None`` when a caller
    built the input by hand: a backend that needs it measures then)."""

    image: np.ndarray
    face: Face
    regions: dict[str, Box | None]
    key: str = ""  # content hash of the image, for caches
    measurement: Any = None


@runtime_checkable
class RegionBackend(Protocol):
    """Reads an emotion distribution for each region of each face.

    ``predict`` takes a batch so that model backends can run all crops through their encoder together.
    """

    name: str

    def predict(self, batch: list[FaceInput], emotions: list[str]) -> list[RegionPrediction]: ...
