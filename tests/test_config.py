"""Typed scorer config: misspelt options raise naming the key and the valid ones; the config is saved
to run.json as JSON and a run rebuilds its scorer from it (same rows); resume compares configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import harmony_eval
from harmony_eval.config import BackendConfig, ScorerConfig, valid_options
from harmony_eval.pipeline import Scorer
from harmony_eval.runner import read_rows, score_folder
from harmony_eval.testing.render import render_face

FAST = {"backend": "anatomy", "detectors": ["animeface", "crop"]}  # no MediaPipe model needed


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faces")
    for i, e in enumerate(("happy", "sad", "angry")):
        render_face(e, e, e, size=192, seed=i).save(d / f"{e}_{i}.png")
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(d / "blank.png")
    return d


@pytest.mark.parametrize(
    "wrong, right",
    [
        ("calibraton", "calibration"),
        ("max_pixel", "max_pixels"),
        ("animface_exhaustive", "animeface_exhaustive"),
    ],
)
def test_misspelt_options_raise_naming_the_key_and_the_valid_ones(wrong, right):
    img = np.full((32, 32, 3), 255, np.uint8)
    with pytest.raises(TypeError) as e:
        harmony_eval.score(img, backend="anatomy", **{wrong: "x.json" if wrong == "calibraton" else 10})
    msg = str(e.value)
    assert repr(wrong) in msg and f"did you mean {right!r}" in msg
    assert all(k in msg for k in ("calibration", "max_pixels", "clip_model", "mediapipe_model"))  # valid list


def test_keywords_land_in_their_section_and_bad_values_are_named():
    cfg = ScorerConfig.from_options(
        backend="anatomy", emotions="happy, sad", detectors=("crop",), mediapipe_model=Path("m.task"),
        animeface_exhaustive=True, clip_margin=0.2, max_pixels=1000,
    )  # fmt: skip
    assert cfg.emotions == ("happy", "sad") and cfg.max_pixels == 1000
    assert cfg.detection.detectors == ("crop",) and cfg.detection.mediapipe_model == "m.task"
    assert cfg.detection.per_detector() == {
        "mediapipe": {"model": "m.task"},
        "animeface": {"exhaustive": True},
    }
    assert cfg.region_backend.options_for("clip") == {"clip_margin": 0.2}
    assert cfg.region_backend.options_for("anatomy") == {}  # clip_* never reaches the anatomy backend
    with pytest.raises(ValueError, match="max_pixels"):
        ScorerConfig.from_options(max_pixels=0)
    with pytest.raises(ValueError, match="detectors"):
        ScorerConfig.from_options(detectors="animeface")  # a bare string would be split into letters
    with pytest.raises(TypeError, match="ScorerConfig"):
        Scorer("anatomy")  # the old positional backend


def test_backend_fields_are_the_backends_own_options():
    from harmony_eval.backends import clip, tagger

    fields = set(valid_options())
    assert set(clip._OPTIONS) <= fields and set(tagger._OPTIONS) <= fields  # no backend option unreachable
    assert {f for f in fields if f.startswith(("clip_", "tagger_"))} == set(clip._OPTIONS) | set(
        tagger._OPTIONS
    )


def test_json_round_trip_is_exact_and_unknown_keys_are_refused():
    cfg = ScorerConfig.from_options(
        backend="clip", emotions=["happy", "sad"], calibration=Path("c.json"), detectors=["animeface", "crop"],
        clip_model="ViT-B-16", clip_random_init=True, crop_min_aspect=0.5, max_pixels=123,
    )  # fmt: skip
    data = json.loads(json.dumps(cfg.to_dict()))  # must be plain JSON: no str(v), no tuples
    assert data["max_pixels"] == 123 and data["region_backend"]["clip_random_init"] is True
    assert data["detection"]["crop_min_aspect"] == 0.5 and data["calibration"] == "c.json"
    assert ScorerConfig.from_dict(data) == cfg
    data["region_backend"]["clip_modle"] = "x"
    with pytest.raises(TypeError, match="clip_modle.*clip_model"):
        ScorerConfig.from_dict(data)
    assert BackendConfig(clip_device="cuda") != BackendConfig(clip_device="cpu")  # saved, compared
    assert "region_backend.clip_device" not in ScorerConfig().scoring_fields()  # ...but not on resume


def test_run_rebuilds_its_scorer_and_rescoring_gives_the_same_rows(faces, tmp_path):
    out = tmp_path / "run"
    score_folder(faces, out, progress=False, report=False, workers=1, max_pixels=5_000_000,
                 animeface_min_likelihood=0.4, **FAST)  # fmt: skip
    cfg = json.loads((out / "run.json").read_text())["config"]
    assert cfg["options"] == {"animeface_min_likelihood": 0.4}  # a number, not "0.4"
    assert (
        cfg["scorer"]["max_pixels"] == 5_000_000
        and cfg["scorer"]["detection"]["animeface_min_likelihood"] == 0.4
    )
    rebuilt = Scorer.from_run(out)
    assert rebuilt.settings == ScorerConfig.from_dict(cfg["scorer"])
    assert rebuilt.max_pixels == 5_000_000 and rebuilt.detector_names == ["animeface", "crop"]
    assert rebuilt.backend_name == "anatomy"
    rows = read_rows(out / "results.jsonl")
    assert {r["status"] for r in rows} == {"ok", "no_face"}
    for row in rows:
        assert rebuilt.score_one(row["path"], row["path"]) == row  # same settings, same targets, same row
    other = Scorer.from_run(out, max_pixels=100)  # an override is checked like any option
    assert other.score_one(rows[0]["path"])["status"] == "error"  # the image is now too large
    with pytest.raises(TypeError, match="max_pixel"):
        Scorer.from_run(out, max_pixel=100)


def test_resume_compares_configs(faces, tmp_path):
    out = tmp_path / "run"
    score_folder(faces, out, progress=False, report=False, workers=1, **FAST)
    with pytest.raises(ValueError, match="other settings.*detection.animeface_min_likelihood: None -> 0.3"):
        score_folder(faces, out, progress=False, report=False, animeface_min_likelihood=0.3, **FAST)
    # where CLIP would run changes no row: resuming with another device is allowed
    again = score_folder(faces, out, progress=False, report=False, clip_device="cpu", **FAST)
    assert again.n_scored == 0 and again.n_total == 4


def test_score_folder_with_a_given_scorer_writes_run_json_and_report(faces, tmp_path):
    from harmony_eval.targets import TargetResolver

    scorer = Scorer(targets=TargetResolver(root=faces), **FAST)
    s = score_folder(faces, tmp_path / "run", scorer=scorer, progress=False, workers=1)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["counts"]["images"] == 4 == s.n_total and info["config"]["backend"] == "anatomy"
    assert (tmp_path / "run" / "report.html").stat().st_size > 0
    with pytest.raises(TypeError, match="ignored with scorer"):  # options next to a scorer would be dropped
        score_folder(faces, tmp_path / "run2", scorer=scorer, max_pixels=10, progress=False)
