"""`calibrate` from Label Studio labels: the report carries the learning curve (labels vs accuracy, a
plot beside it) and `--suggest` skips the images already labelled there."""

from __future__ import annotations

import csv
import json

import pytest

from harmony_eval.cli import main
from harmony_eval.testing.render import render_face

EMOTIONS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    d = tmp_path_factory.mktemp("drawn")
    tasks = []
    for e in EMOTIONS:
        for seed in range(5):
            name = f"{e}_{seed}.png"
            render_face(e, e, e, size=256, seed=seed).save(d / name)
            if seed < 4:  # the fifth of each emotion stays unlabelled
                tasks.append({"data": {"image": f"/data/upload/1/0a1b2c3d-{name}"},
                              "annotations": [{"result": [{"from_name": "emotion", "value": {"choices": [e]}}]}]})  # fmt: skip
    (d / "export.json").write_text(json.dumps(tasks), encoding="utf-8")
    return d


@pytest.mark.slow
def test_label_studio_labels_give_a_learning_curve(drawn, tmp_path):
    out = tmp_path / "cal"
    argv = ["calibrate", "--images", str(drawn), "--labels", str(drawn / "export.json"), "--out", str(out)]
    assert (
        main([*argv, "--backend", "anatomy", "--bootstrap", "0", "--curve-repeats", "2", "--no-progress"])
        == 0
    )
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    lc = rep["learning_curve"]
    assert (
        lc["sizes"][0] == 0 and lc["sizes"][-1] == 16 - lc["n_test"]
    )  # up to every label outside the test split
    assert len(lc["mean"]) == len(lc["sizes"]) == len(lc["ci95"])
    assert all(lo <= m <= hi for m, (lo, hi) in zip(lc["mean"], lc["ci95"], strict=True))
    assert (out / "plots" / "learning_curve.png").stat().st_size > 1000
    assert "Learning curve" in (out / "report.md").read_text(encoding="utf-8")
    cal = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert cal["training"]["n_labels"] == 16 and 0 <= cal["training"]["cv"]["balanced_accuracy"] <= 1


def test_suggest_skips_what_label_studio_already_labels(drawn, tmp_path):
    out = tmp_path / "s"
    argv = ["calibrate", "--images", str(drawn), "--labels", str(drawn / "export.json"), "--suggest", "10"]
    assert main([*argv, "--out", str(out), "--backend", "anatomy", "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "suggested.csv").open(encoding="utf-8")))
    files = [r["file"] for r in rows if r["rank"]]
    assert files and set(files) <= {f"{e}_4.png" for e in EMOTIONS}  # only the unlabelled ones
    # the export's labels come first, carried into the CSV (one file holds every label so far)
    carried = [r for r in rows if not r["rank"]]
    assert carried and all(r["emotion"] == r["file"].split("_")[0] for r in carried)
    assert not {r["file"] for r in carried} & set(files)
