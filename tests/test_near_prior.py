"""A face whose region readings all sit near the prior (1/K) cannot be perfect.

Near-uniform readings agree with each other almost perfectly under the cosine agreement, so random
noise that a detector took for a face could reach ``perfect`` (1 of 29 noise "faces" in the issue).
"""

from __future__ import annotations

import numpy as np
import pytest

from harmony_eval.pipeline import Prepared, Scorer
from harmony_eval.types import Face, RegionPrediction
from harmony_eval.verdict import VerdictConfig, compute_flags

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def leaning(emotion: str, top: float) -> dict[str, float]:
    """A reading with ``top`` on ``emotion`` and the rest shared evenly."""
    rest = (1.0 - top) / (len(EMOTIONS) - 1)
    return {e: (top if e == emotion else rest) for e in EMOTIONS}


def row_for(readings: dict[str, dict[str, float] | None]) -> dict:
    scorer = Scorer(backend="anatomy", emotions=EMOTIONS, detectors=["crop"])
    image = np.zeros((100, 100, 3), np.uint8)
    regions = {"eyes": (20, 30, 80, 45), "brows": (20, 20, 80, 28), "mouth": (35, 60, 65, 75), "face": None}
    prep = Prepared(path="x.png", image=image, faces=[Face((0, 0, 100, 100), 1.0, "test")], regions=regions)
    pred = RegionPrediction(probs={"face": None, **readings}, quality={"sharpness": 1.0})
    return scorer.finish(prep, pred)


def test_confident_coherent_face_is_perfect() -> None:
    # the set-up can reach perfect: all three regions clearly happy
    row = row_for({r: leaning("happy", 0.85) for r in ("eyes", "brows", "mouth")})
    assert row["verdict"] == "perfect", row["reason"]


@pytest.mark.parametrize("top", [0.26, 0.3, 0.34])
def test_readings_near_the_prior_are_never_perfect(top: float) -> None:
    row = row_for({r: leaning("happy", top) for r in ("eyes", "brows", "mouth")})
    assert row["verdict"] != "perfect", row
    assert "low_confidence" in row["flags"]


def test_near_prior_flag_needs_every_read_region_near_the_prior() -> None:
    config = VerdictConfig.load()
    margin = config.thresholds["near_prior"]
    common = dict(n_faces=1, face_areas=[100], scores={}, quality={}, target=None, config=config)
    confident_holistic = leaning("happy", 0.7)  # holistic alone would not flag low_confidence
    near = leaning("happy", 1 / 4 + margin - 0.01)
    flagged = compute_flags(region_probs={"eyes": near, "brows": near, "mouth": near},
                            holistic=confident_holistic, **common)  # fmt: skip
    assert "low_confidence" in flagged
    one_clear = compute_flags(region_probs={"eyes": near, "brows": near, "mouth": leaning("happy", 0.6)},
                              holistic=confident_holistic, **common)  # fmt: skip
    assert "low_confidence" not in one_clear  # the mouth read an expression


def test_confident_whole_face_reading_does_not_rescue_blank_regions() -> None:
    # a backend's whole-face reading (CLIP, tagger) can make the pooled reading confident while no
    # region shows anything: that face is not a perfect expression
    near = leaning("happy", 0.3)
    row = row_for({"eyes": near, "brows": near, "mouth": near, "face": leaning("happy", 0.95)})
    assert row["verdict"] != "perfect", row["reason"]
    assert "low_confidence" in row["flags"]
