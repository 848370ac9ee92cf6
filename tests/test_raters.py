"""Several raters: the pooled reading, per-region rater agreement and the raters_disagree flag, on
drawn faces with a fake rater registered here that always reads angry (anatomy reads the drawing)."""

from __future__ import annotations

import numpy as np
import pytest

from harmony_eval import agreement
from harmony_eval.backends import register_backend
from harmony_eval.backends.anatomy import AnatomyBackend
from harmony_eval.backends.raters import RatersBackend, parse_weights
from harmony_eval.pipeline import Scorer
from harmony_eval.testing.render import render_face
from harmony_eval.types import RegionPrediction

EMOTIONS = ["neutral", "happy", "sad", "angry"]


class AlwaysAngry:
    """Reads angry (0.85) in every region that has a box, whatever is drawn."""

    name = "always_angry"

    def __init__(self, **options):
        self.options = options  # only always_angry_* options may arrive (prefix rule)

    def predict(self, batch, emotions):
        p = {e: (0.85 if e == "angry" else 0.15 / (len(emotions) - 1)) for e in emotions}
        out = []
        for inp in batch:
            probs = {r: (dict(p) if r == "face" or inp.regions.get(r) else None) for r in inp.regions}
            probs.setdefault("face", dict(p))
            out.append(RegionPrediction(probs, {"mouth": np.array([1.0])}, {"mouth": ["bias"]}))
        return out


class Echo(AnatomyBackend):
    """A second rater that reads exactly what anatomy reads."""

    name = "echo"


register_backend("always_angry", f"{__name__}:AlwaysAngry")
register_backend("echo", f"{__name__}:Echo")


@pytest.fixture(scope="module")
def happy_face():
    return np.asarray(render_face("happy", "happy", "happy", size=320, seed=3))


def test_raters_who_part_ways_are_flagged_and_reported(happy_face):
    alone = Scorer(backend="anatomy", emotions=EMOTIONS, detectors=["animeface", "crop"]).score_one(
        happy_face
    )
    assert alone["regions"]["mouth"]["probs"]["happy"] >= 0.5  # anatomy reads the drawn smile
    s = Scorer(
        backend="raters", raters="anatomy,always_angry", emotions=EMOTIONS, detectors=["animeface", "crop"]
    )
    row = s.score_one(happy_face)
    assert row["status"] == "ok" and row["backend"] == "raters"
    mouth = row["regions"]["mouth"]
    assert set(mouth["raters"]) == {"anatomy", "always_angry"}
    assert mouth["raters"]["always_angry"]["angry"] == pytest.approx(0.85)
    assert mouth["raters"]["anatomy"] == pytest.approx(alone["regions"]["mouth"]["probs"], abs=1e-3)
    assert mouth["raters_agreement"] < 0.35  # happy vs angry: compatibility 0 in verdict.yaml
    assert row["scores"]["raters_agreement"] == min(
        v["raters_agreement"] for v in row["regions"].values() if "raters_agreement" in v
    )
    assert "raters_disagree" in row["flags"] and row["verdict"] != "perfect"
    assert "raters disagree" in row["reason"] and "always_angry reads angry" in row["reason"]
    # the pooled mouth is the equal-weight log-linear pool of the two readings
    a = agreement.as_vector(mouth["raters"]["anatomy"], EMOTIONS)
    b = agreement.as_vector(mouth["raters"]["always_angry"], EMOTIONS)
    pooled = agreement.pool({"a": a, "b": b}, {"a": 1, "b": 1})
    np.testing.assert_allclose(agreement.as_vector(mouth["probs"], EMOTIONS), pooled, atol=2e-4)


def test_raters_who_agree_raise_nothing(happy_face):
    s = Scorer(backend="raters", raters="anatomy,echo", emotions=EMOTIONS, detectors=["animeface", "crop"])
    row = s.score_one(happy_face)
    assert row["scores"]["raters_agreement"] == pytest.approx(1.0)  # identical readings
    assert "raters_disagree" not in row["flags"]
    alone = Scorer(backend="anatomy", emotions=EMOTIONS, detectors=["animeface", "crop"]).score_one(
        happy_face
    )
    # the pool of a reading with itself is that reading (up to the pool's 1e-4 floor on probabilities)
    assert row["regions"]["mouth"]["probs"] == pytest.approx(alone["regions"]["mouth"]["probs"], abs=1e-3)


def test_weights_tilt_the_pool(happy_face):
    from harmony_eval.detect import build_detectors, find_faces
    from harmony_eval.regions import face_regions
    from harmony_eval.types import FaceInput

    faces, _ = find_faces(happy_face, build_detectors(["animeface", "crop"]))
    inp = FaceInput(happy_face, faces[0], face_regions(faces[0], happy_face.shape))
    even = RatersBackend("anatomy,always_angry").predict([inp], EMOTIONS)[0]
    tilted = RatersBackend("anatomy,always_angry", rater_weights="always_angry=3").predict([inp], EMOTIONS)[0]
    assert tilted.probs["mouth"]["angry"] > even.probs["mouth"]["angry"]
    assert even.feature_names["mouth"][-1] == "always_angry:bias"  # every rater's features, prefixed
    assert even.raters["always_angry"]["mouth"]["angry"] == pytest.approx(0.85)


def test_bad_rater_lists_are_refused():
    with pytest.raises(ValueError, match="two or more"):
        RatersBackend("anatomy")
    with pytest.raises(ValueError, match="Unknown backend"):
        RatersBackend("anatomy,nonesuch")
    with pytest.raises(ValueError, match="not among the raters"):
        parse_weights("clip=2", ["anatomy", "tagger"])


def test_cli_raters_flag(tmp_path, happy_face):
    import json

    from PIL import Image

    from harmony_eval.cli import main

    Image.fromarray(happy_face).save(tmp_path / "happy.png")
    out = tmp_path / "run"
    rc = main(["score", str(tmp_path / "happy.png"), "--out", str(out), "--raters", "anatomy,always_angry",
               "--detectors", "animeface,crop", "--no-report"])  # fmt: skip
    assert rc == 0
    [row] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["backend"] == "raters" and "raters_disagree" in row["flags"]
    assert set(row["regions"]["mouth"]["raters"]) == {"anatomy", "always_angry"}


def test_review_order_puts_rater_conflicts_first():
    from harmony_eval.suggest import rank_rows

    def row(flags, p_top):
        rest = (1 - p_top) / 3
        probs = {"neutral": rest, "happy": p_top, "sad": rest, "angry": rest}
        return {"status": "ok", "probs": probs, "flags": flags, "harmony": 0.9, "regions": {}, "scores": {}}

    rows = [row([], 0.3), row(["raters_disagree"], 0.95), row([], 0.35)]  # the conflict is the surest
    assert rank_rows(rows)[0] == 1  # yet it is reviewed first: a label says which rater is right
    assert sorted(rank_rows(rows)) == [0, 1, 2]
