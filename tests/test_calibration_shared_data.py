"""`calibrate --cv 5` on real labelled anime faces (../shared/data/dev; skipped when absent): the
out-of-fold figures of a calibration fitted and judged within one source (the user's own labels of
their own style: the case calibrate is for). A regression ratchet; held-out figures are
benchmarks.validity's."""

from __future__ import annotations

import json

import pytest

from harmony_eval.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_calibrate_cv5_on_anime_face_classifier(shared_data, tmp_path):
    d = shared_data / "dev" / "anime_face_classifier"
    out = tmp_path / "cal"
    argv = [
        "calibrate",
        "--images",
        str(d),
        "--labels",
        str(d / "labels.csv"),
        "--out",
        str(out),
        "--cv",
        "5",
    ]
    assert (
        main([*argv, "--backend", "anatomy", "--ignore-unknown", "--bootstrap", "200", "--no-progress"]) == 0
    )
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    face = rep["face"]
    assert rep["n_labelled"] == 69  # 88 rows minus `other` and `surprised` (outside the default vocabulary)
    assert face["balanced_accuracy"] >= 0.55, face  # ratchet, cross-validated within the source
    # the calibration may keep the backend's reading, never make it much worse
    assert face["balanced_accuracy"] >= face["before"]["balanced_accuracy"] - 0.05
