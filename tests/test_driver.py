"""One driver (``Scorer.iter_scored``) for the runner, ``harmony_eval.score``, calibration and dev_eval:
same rows in input order with or without workers, the stages' outputs kept, pixels dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval.pipeline import Scorer
from harmony_eval.testing.render import render_face

FAST = {"backend": "anatomy", "detectors": ["animeface", "crop"]}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("driver")
    out = []
    for i, e in enumerate(("happy", "sad", "angry", "neutral")):
        render_face(e, e, e, size=192, seed=i).save(d / f"{e}_{i}.png")
        out.append(str(d / f"{e}_{i}.png"))
    Image.fromarray(np.full((48, 48, 3), 255, np.uint8)).save(d / "blank.png")
    (d / "broken.png").write_bytes(b"not a png")
    return [*out, str(d / "blank.png"), str(d / "broken.png")]


def test_rows_are_the_same_in_order_with_and_without_workers(files):
    scorer = Scorer(**FAST)
    one = list(scorer.iter_scored(files, workers=1))
    two = list(scorer.iter_scored(files, workers=2))
    assert [r for _, _, r in one] == [r for _, _, r in two]  # forkserver pool, input order kept
    assert [p.path for p, _, _ in two] == files
    assert [r["status"] for _, _, r in one] == ["ok"] * 4 + ["no_face", "error"]
    for prep, pred, row in two:
        assert prep.image is None  # pixels are not held (nor sent back by workers)
        assert (pred is not None) == (row["status"] == "ok")
        assert row == scorer.score_one(prep.path, prep.path)  # what the one-image path gives
    ok = [(p, q) for p, q, r in one if r["status"] == "ok"]
    assert all(q.features["mouth"].size and p.predict_s > 0 for p, q in ok)  # features and timing kept


def test_batched_backend_path_and_kept_images(files, monkeypatch):
    scorer = Scorer(**FAST)
    monkeypatch.setattr(Scorer, "batch_in_worker", property(lambda self: False))  # as CLIP runs
    calls = []
    predict = scorer.predict
    monkeypatch.setattr(scorer, "predict", lambda batch: calls.append(len(batch)) or predict(batch))
    out = list(scorer.iter_scored(files, workers=1, batch=4, keep_images=True))
    assert calls == [4, 2]  # the main process batches prepared images through the backend
    assert [r for _, _, r in out] == [scorer.score_one(f, f) for f in files]
    assert out[0][0].image is not None and out[0][0].image.shape[2] == 3
    with pytest.raises(ValueError, match="batch"):
        list(scorer.iter_scored(files, batch=0))


def test_in_memory_images_stay_in_process():
    scorer = Scorer(**FAST)
    img = np.asarray(render_face("happy", "happy", "happy", size=160, seed=3))
    [(prep, _, row)] = scorer.iter_scored([(img, "<image 0>")])
    assert prep.path == row["path"] == "<image 0>" and row["status"] == "ok"
    with pytest.raises(ValueError, match="workers=1"):
        list(scorer.iter_scored([img, img], workers=2))


def test_calibration_scoring_uses_the_driver(files):
    from calibration.features import rescore, score_images

    scorer, scored = score_images(files, workers=2, progress=False, **FAST)
    assert [s.file for s in scored] == files
    assert [s.ok for s in scored] == [True] * 4 + [False, False]
    assert all(rescore(scorer, s, s.pred) == s.row for s in scored)  # finish again: the same row


def test_dev_eval_scores_through_the_driver(files):
    from benchmarks.dev_eval import Case, score_cases

    scorer = Scorer(**FAST)
    cases = [Case(f, "x", None, None) for f in files]
    scored = score_cases(cases, scorer, progress=False)
    assert [s.row for s in scored] == [scorer.score_one(f, f) for f in files]
    assert all((s.features is not None) == (s.row["status"] == "ok") for s in scored)
    assert (
        all(s.ms > 0 for s in scored[:4]) and scored[4].ms == 0.0
    )  # backend time only where a face was read
    assert Path(scored[0].case.path).name == "happy_0.png"


def test_a_readable_1x1_image_is_no_face_not_an_error(tmp_path):
    from harmony_eval.cli import main

    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(tmp_path / "dot.png")
    row = Scorer(**FAST).score_one(tmp_path / "dot.png")
    assert row["status"] == "no_face" and row["error"] is None and row["verdict"] == "broken"
    assert row["reason"] == "image is 1x1 px, too small to hold a face"
    out = tmp_path / "run"
    # exit 0: every file was read ("some files could not be read" is exit 1)
    assert (
        main(["score", str(tmp_path / "dot.png"), "--out", str(out), "--backend", "anatomy", "--no-report"])
        == 0
    )
