"""Drawn faces with their ground truth, and the box checks the detection tests share.

``rendered`` draws a face with the project renderer (``harmony_eval.testing.render``) and returns
it with the boxes of every drawn part, so a detector's boxes can be checked against what was drawn;
each face is drawn once per test session (the detection tests ask for the same few seeds over and
over) and every call gets its own copy of the pixels. ``tight_crop`` cuts the forehead and hair off
a drawn face, the kind of crop a dataset of face crops holds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from harmony_eval.testing.render import render_face_info
from harmony_eval.types import Box, Face


@lru_cache(maxsize=32)
def _drawn(eyes: str, mouth: str, seed: int, size: int, kw: tuple[tuple[str, Any], ...]) -> tuple:
    im, truth = render_face_info(eyes, "neutral", mouth, seed=seed, size=size, **dict(kw))
    return np.array(im), truth


def rendered(
    seed: int = 0, size: int = 512, eyes: str = "neutral", mouth: str = "neutral", **kw: Any
) -> tuple[np.ndarray, dict[str, Box]]:
    """RGB ``uint8 (size, size, 3)`` of a face with neutral brows and the drawn boxes (image pixels).
    ``kw`` are ``render_face_info``'s other keywords (``blur=4.0``, overrides)."""
    img, truth = _drawn(eyes, mouth, seed, size, tuple(sorted(kw.items())))
    return img.copy(), dict(truth)


def tight_crop(img: np.ndarray, truth: dict[str, Box]) -> tuple[np.ndarray, tuple[int, int]]:
    """The drawn face from a quarter down its box (no forehead, no hair) to a tenth above its chin,
    full face width: a small, near-square crop the face touches on every side. Returns the crop and
    its ``(x, y)`` offset in ``img`` (see :func:`shifted`)."""
    fx0, fy0, fx1, fy1 = truth["face"]
    top = fy0 + (fy1 - fy0) // 4
    return np.ascontiguousarray(img[top : fy1 - (fy1 - fy0) // 10, fx0:fx1]), (fx0, top)


def shifted(box: Box, offset: tuple[int, int]) -> Box:
    """``box`` in the coordinates of a crop whose top-left corner is ``offset``."""
    dx, dy = offset
    return (box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy)


def centre_in(box: Box, outer: Box) -> bool:
    """The centre of ``box`` lies inside ``outer`` (edges included)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def cover(truth: Box, box: Box) -> float:
    """Share of ``truth``'s area inside ``box``, in [0, 1]."""
    ix = max(0, min(truth[2], box[2]) - max(truth[0], box[0]))
    iy = max(0, min(truth[3], box[3]) - max(truth[1], box[1]))
    return ix * iy / max(1, (truth[2] - truth[0]) * (truth[3] - truth[1]))


class StubDetector:
    """A detector returning fixed boxes, to test the cascade without models; counts its calls."""

    def __init__(self, name: str, boxes: list[Box]):
        self.name, self.boxes, self.calls = name, boxes, 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        return [Face(box=b, score=0.9, detector=self.name) for b in self.boxes]
