"""The label-free face-size check (benchmarks/scale_consistency.py) and the canvas resampling it chose."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from benchmarks.scale_consistency import MIN_NATIVE, consistency, shrink_jobs, tv
from harmony_eval.backends.anatomy import common
from harmony_eval.testing.render import render_face_info


def _row(top: str, probs: dict[str, float], mouth: dict[str, float] | None = None) -> dict:
    return {"emotion": top, "probs": probs, "regions": {"mouth": {"probs": mouth}} if mouth else {}}


def test_shrink_jobs_make_the_face_the_asked_width_and_skip_small_natives():
    rgb = np.zeros((400, 300, 3), np.uint8)
    boxes = {"s/big": [50, 40, 250, 240], "s/small": [10, 10, 10 + MIN_NATIVE - 1, 100]}
    jobs = shrink_jobs([("s", "big", rgb), ("s", "small", rgb)], boxes, (72, 48))
    assert [(j[1], j[2]) for j in jobs] == [("big", "native"), ("big", 72), ("big", 48)]
    for _, _, w, img, box in jobs:
        width = 200 if w == "native" else w
        assert box[2] - box[0] == pytest.approx(width)
        assert img.shape[1] == pytest.approx(300 * width / 200, abs=1)


def test_consistency_compares_each_shrunk_face_with_its_own_native_reading():
    a = {"happy": 0.8, "sad": 0.2}
    b = {"happy": 0.3, "sad": 0.7}
    rows = {
        ("s", "x", "native"): _row("happy", a, mouth=a),
        ("s", "x", 48): _row("happy", {"happy": 0.7, "sad": 0.3}, mouth=b),
        ("s", "y", "native"): _row("sad", b),
        ("s", "y", 48): _row("happy", a),
        ("s", "z", "native"): _row("sad", b),
        ("s", "z", 48): None,  # not found on its true box: left out
        ("t", "w", "native"): None,  # no native reading: nothing to compare with
        ("t", "w", 48): _row("sad", b),
    }
    res = consistency(rows)
    cell = res["s/48"]
    assert cell["n"] == 2
    assert cell["same_top"] == 0.5
    assert cell["tv"]["pooled"] == pytest.approx((0.1 + 0.5) / 2)
    assert cell["tv"]["mouth"] == pytest.approx(tv(b, a))  # only x has a mouth reading at both sizes
    assert cell["tv"]["eyes"] is None
    # natives of s: a, b, b -> pairs (a,b), (a,b), (b,b)
    assert cell["tv_random"] == pytest.approx((0.5 + 0.5 + 0.0) / 3, abs=1e-3)  # rounded to 3 places
    assert "t/48" not in res
    assert res["all/48"]["n"] == 2


def test_canvas_upscale_changes_only_faces_smaller_than_the_canvas():
    img, info = render_face_info("happy", size=1024, seed=3)  # face ~420 px: wider than the canvas
    rgb = np.asarray(img.convert("RGB"))
    face = info["face"]
    cubic_p = dataclasses.replace(common.PARAMS, upscale="cubic")
    big = [common.make_canvas(rgb, face, p).lab for p in (cubic_p, common.PARAMS)]
    fw = face[2] - face[0]
    assert fw > common.PARAMS.face_px
    np.testing.assert_array_equal(*big)  # shrunk (area): the upscale choice does not matter
    f = 60 / fw
    small = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    box = tuple(v * f for v in face)
    cubic, lin = (common.make_canvas(small, box, p).lab for p in (cubic_p, common.PARAMS))
    assert cubic.shape == lin.shape
    assert np.abs(cubic - lin).max() > 1.0  # a 60 px face is enlarged 4x: the resampling shows


def test_an_unknown_upscale_names_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"upscale='nearest'.*cubic.*linear"):
        dataclasses.replace(common.PARAMS, upscale="nearest")


def test_variant_jobs_cut_the_close_up_at_the_chin():
    rgb = np.full((600, 400, 3), 255, np.uint8)
    jobs = shrink_jobs([("s", "big", rgb)], {"s/big": [100, 100, 300, 300]}, (), ("chin",))
    assert [j[2] for j in jobs] == ["native", "chin"]
    _, _, _, img, box = jobs[1]
    assert box[3] == pytest.approx(img.shape[0], abs=1)  # the face box runs into the bottom edge
    assert box[2] - box[0] < img.shape[1]  # with room either side, as a close-up
