"""The measurement stage (``harmony_eval.measure``): drawn-part measurements and image quality are
measured once per face, in the pipeline, for every backend. Drawn faces, a tiny random CLIP and a
tiny ONNX tagger built in the tests (``test_clip_backend`` / ``test_tagger``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmony_eval.backends import anatomy
from harmony_eval.measure import Measurement, MeasureStage, _pack, _unpack, measure_one
from harmony_eval.pipeline import Scorer
from harmony_eval.testing.render import render_face, render_face_info
from harmony_eval.types import Face, FaceInput

EMOTIONS = ["neutral", "happy", "sad", "angry"]
DETECT = {"emotions": EMOTIONS, "detectors": ["animeface", "crop"]}


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """A fully drawn happy face and a neutral face whose mouth was left out (as the frozen set's)."""
    return [
        np.asarray(render_face("happy", "happy", "happy", size=256, seed=1)),
        np.asarray(render_face("neutral", "neutral", "neutral", size=256, seed=22, draw_mouth=False)),
    ]


@pytest.fixture
def count_measure(monkeypatch):
    """Counts calls of the anatomy package's ``measure_face`` (what the stage measures with)."""
    calls = []
    inner = anatomy.measure_face

    def counted(inp, params=None):  # the stage passes its measurement params (harmony_eval.params)
        calls.append(inp.key)
        return inner(inp, params)

    monkeypatch.setattr(anatomy, "measure_face", counted)
    return calls


def tiny_clip():
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from test_clip_backend import tiny_model

    return tiny_model()


def clip_options(model, **kw) -> dict:
    return {"clip_prebuilt": (model, None, None), "clip_device": "cpu", **kw}


def scored(scorer: Scorer, imgs: list[np.ndarray]):
    preps = [scorer.prepare(img, f"img{i}") for i, img in enumerate(imgs)]
    preds = scorer.predict(preps)
    return preds, [scorer.finish(p, q) for p, q in zip(preps, preds, strict=True)]


def test_quality_and_flags_are_the_same_whatever_the_backend(images, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from test_tagger import write_tagger

    tagger = write_tagger(tmp_path / "tagger")
    scorers = {
        "anatomy": Scorer(backend="anatomy", **DETECT),
        "clip": Scorer(backend="clip", **DETECT, **clip_options(tiny_clip())),
        "tagger": Scorer(backend="tagger", tagger_model=str(tagger), tagger_device="cpu", **DETECT),
    }
    out = {name: scored(s, images) for name, s in scorers.items()}
    anat_preds, anat_rows = out["anatomy"]
    happy, no_mouth = (p.quality for p in anat_preds)
    assert happy["eyes_visible"] > 0.3 and happy["mouth_visible"] > 0.3  # both drawn
    assert no_mouth["mouth_visible"] < 0.3 < no_mouth["eyes_visible"]  # the mouth was left out
    assert "missing_mouth" in anat_rows[1]["flags"] and "missing_mouth" not in anat_rows[0]["flags"]
    for name in ("clip", "tagger"):
        preds, rows = out[name]
        for p, q in zip(preds, anat_preds, strict=True):
            assert p.quality == q.quality, name  # one measurement, whatever reads the face
        for r, a in zip(rows, anat_rows, strict=True):
            for flag in ("blurry", "missing_eyes", "missing_mouth"):  # the flags quality decides
                assert (flag in r["flags"]) == (flag in a["flags"]), (name, flag, r["flags"])


def test_measure_face_runs_once_per_face(images, count_measure):
    preds, _ = scored(
        Scorer(backend="raters", raters="anatomy,clip", **DETECT, **clip_options(tiny_clip())), images
    )
    assert len(count_measure) == len(images)  # before: anatomy measured, then CLIP measured again
    for p in preds:
        names = [n for ns in p.feature_names.values() for n in ns]
        assert any(n.startswith("anatomy:") for n in names)  # anatomy's own features: the measurements
        assert not any("anat_" in n for n in names)  # no second copy from the stage
    count_measure.clear()
    scored(Scorer(backend="anatomy", **DETECT), images)
    assert len(count_measure) == len(images)


def test_anatomy_reads_the_attached_measurement(count_measure):
    img, boxes = render_face_info("happy", "happy", "happy", size=256, seed=4)
    inp = FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "drawn"), boxes, "k")
    bare = anatomy.AnatomyBackend().predict([inp], EMOTIONS)[0]  # a hand-built input: measured there
    assert len(count_measure) == 1
    m = measure_one(inp)
    frown = Measurement(m.parts, {**m.features, "mouth": m.features["mouth"].copy()}, m.quality)
    frown.features["mouth"][anatomy.FEATURE_NAMES["mouth"].index("curve")] = -0.6  # corners down
    inp.measurement = frown
    read = anatomy.AnatomyBackend().predict([inp], EMOTIONS)[0]
    assert len(count_measure) == 2  # measure_one above; the backend measured nothing again
    assert read.probs["mouth"]["happy"] < bare.probs["mouth"]["happy"]  # it read the given numbers
    assert read.probs["eyes"] == bare.probs["eyes"] and read.quality == bare.quality


def test_clip_backend_measures_nothing_and_names_no_anatomy(images, count_measure):
    from harmony_eval.backends import clip, tagger
    from harmony_eval.backends.clip import ClipBackend

    img, boxes = render_face_info("sad", "sad", "sad", size=256, seed=5)
    inp = FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "drawn"), boxes, "c")
    [p] = ClipBackend(**clip_options(tiny_clip())).predict([inp], EMOTIONS)
    assert count_measure == [] and p.quality == {}  # crops only: the stage measures, in the pipeline
    assert p.probs["mouth"] is not None
    for module in (clip, tagger):
        src = Path(module.__file__).read_text(encoding="utf-8")
        assert "anatomy" not in src and "measure_face" not in src and "_quality" not in src, module


def test_rescore_reads_measurements_from_the_cache(images, tmp_path, count_measure):
    model = tiny_clip()
    opts = {**DETECT, **clip_options(model, clip_embed_cache=str(tmp_path / "cache"))}
    first = Scorer(backend="clip", **opts)
    preds1, rows1 = scored(first, images)
    assert len(count_measure) == 2 and first.measure_stage.stats == {"measured": 2, "cached": 0}
    again = Scorer(backend="clip", **opts)  # a new run: only the disk cache is shared
    preds2, rows2 = scored(again, images)
    assert len(count_measure) == 2 and again.measure_stage.stats == {"measured": 0, "cached": 2}
    assert rows2 == rows1
    for a, b in zip(preds1, preds2, strict=True):
        assert a.quality == b.quality
        for r in ("eyes", "brows", "mouth"):
            assert [n for n in a.feature_names[r] if n.startswith("anat_")]  # the stage's features
            np.testing.assert_array_equal(a.features[r], b.features[r])  # bit for bit, not float32
    assert list((tmp_path / "cache").glob("measure*/emb-*.safetensors"))  # the stage's own folder


def test_cache_rows_keep_float64_bits_and_missing_parts():
    img, boxes = render_face_info("angry", "angry", "angry", size=256, seed=6)
    boxes = {k: v for k, v in boxes.items() if k not in ("mouth", "right_brow")}
    m = measure_one(FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "drawn"), boxes, "x"))
    assert m.parts["mouth"] is None and m.parts["left_eye"] is not None
    m.features["eyes"][1] = np.nan  # a value that is NaN must stay NaN, and 1/3 must stay 1/3
    m.features["brows"][0] = 1.0 / 3.0
    back = _unpack(_pack(m), "x")
    assert back.parts == m.parts and back.quality == m.quality
    for r in m.features:
        np.testing.assert_array_equal(back.features[r], m.features[r])
    assert back.features["brows"][0] == 1.0 / 3.0 and back.features["brows"].dtype == np.float64


def test_failed_measurement_keeps_quality_and_anatomy_says_why(monkeypatch):
    img, boxes = render_face_info("happy", "happy", "happy", size=256, seed=7)
    inp = FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "drawn"), boxes, "f")

    def broken(_inp, _params=None):
        raise ValueError("odd face")

    monkeypatch.setattr(anatomy, "measure_face", broken)
    m = MeasureStage().measure(inp)
    assert m.error and "odd face" in m.error and m.features == {}
    assert set(m.quality) == {"sharpness"} and m.quality["sharpness"] > 0.5  # crisp lines; no part guesses
    with pytest.raises(RuntimeError, match="anatomy backend: measurement failed .*odd face"):
        anatomy.AnatomyBackend().predict([inp], EMOTIONS)


def test_quality_constants_are_one_frozen_params():
    import dataclasses

    from harmony_eval import quality

    img, boxes = render_face_info("happy", "happy", "happy", size=256, seed=8)
    x0, y0, x1, y1 = boxes["face"]
    crop = np.asarray(img)[y0:y1, x0:x1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        quality.PARAMS.ratio_mid = 3.0  # shared by every caller: a tuning run passes its own
    crisp = quality.sharpness(crop)
    assert crisp > 0.9  # clean line art
    # the same crop judged against a far stricter line (r of 60 for 0.5; clean art is 10-29) reads soft
    assert quality.sharpness(crop, dataclasses.replace(quality.PARAMS, ratio_mid=60.0)) < 0.5 < crisp
    assert quality.width_visibility(10, 10) == pytest.approx(1 - np.exp(-1.4))  # 0.75 at the least width
    steep = dataclasses.replace(quality.PARAMS, visibility_k=2.8)
    assert quality.width_visibility(10, 10, steep) == pytest.approx(1 - np.exp(-2.8))
