"""`harmony-eval calibrate` end to end on faces drawn in the test (known expression per region), through
the real pipeline (detection + anatomy backend), then `score --calibration` with the file it wrote."""

from __future__ import annotations

import csv
import json

import pytest

from harmony_eval.cli import main
from harmony_eval.testing.render import render_face
from harmony_eval.testing.sets import write_labels_csv

EMOTIONS = ["neutral", "happy", "sad", "angry"]
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "ece_before", "ece_after")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """20 coherent faces (5 per emotion, different styles) + 4 region-mismatched ones, with labels."""
    d = tmp_path_factory.mktemp("labelled")
    rows = []
    for e in EMOTIONS:
        for seed in range(5):
            name = f"{e}_{seed}.png"
            render_face(e, e, e, size=320, seed=seed).save(d / name)
            rows.append({"file": name, "notes": "drawn", "emotion": e, "mouth": e, "verdict": "perfect"})
    for i, (eyes, mouth) in enumerate(
        [("angry", "happy"), ("sad", "happy"), ("happy", "sad"), ("angry", "neutral")]
    ):
        name = f"mismatch_{i}.png"
        render_face(eyes, eyes, mouth, size=320, seed=10 + i).save(d / name)
        rows.append({"file": name, "notes": "", "emotion": "", "mouth": mouth, "verdict": "broken"})
    with open(d / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return d


@pytest.mark.slow
def test_calibrate_end_to_end_then_score_with_it(labelled, tmp_path, capsys):
    out = tmp_path / "cal"
    argv = [
        "calibrate",
        "--images",
        str(labelled),
        "--labels",
        str(labelled / "labels.csv"),
        "--out",
        str(out),
    ]
    rc = main([*argv, "--cv", "3", "--backend", "anatomy", "--bootstrap", "100", "--no-progress"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    for name in ("calibration.json", "report.md", "report.html", "report.json"):
        assert (out / name).is_file(), name
    assert list((out / "plots").glob("confusion_*.png")) and list((out / "plots").glob("reliability_*.png"))
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["cv"] == 3 and rep["n"] == 24
    for target in ("face", "mouth", "verdict"):
        for k in METRICS[:4]:
            lo, hi = rep[target]["ci95"][k]
            assert lo <= rep[target][k] <= hi, (target, k)
    assert rep["face"]["n"] == 20 and rep["mouth"]["n"] >= 20  # the 4 mismatches have no face label
    # the last line says how each figure was measured and on how many faces, with its interval
    assert last.startswith("24 labelled images; balanced accuracy out of sample (3-fold cross-validation")
    lo, hi = rep["face"]["ci95"]["balanced_accuracy"]
    assert f"face {rep['face']['balanced_accuracy']:.2f} [{lo:.2f}, {hi:.2f}] (n=20)" in last
    assert f"(n={rep['mouth']['n']})" in last and "verdict 0.33" in last
    assert "--cv 5 judges" not in last  # cross-validated already
    assert (
        rep["face"]["ece_after"] is not None and rep["verdict"]["ece_after"] is None
    )  # a verdict is no probability
    # drawn expressions are clear: out-of-fold, the calibrated face model beats chance (0.25) by far
    assert rep["face"]["balanced_accuracy"] >= 0.5
    cal = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    # eyes and brows have no label column: their readers learn from the face labels (weak labels)
    assert set(cal["models"]) == {"face", "mouth", "eyes", "brows"}
    assert (
        "weak_labels" in cal["models"]["eyes"]["summary"]
        and "weak_labels" not in cal["models"]["mouth"]["summary"]
    )
    assert set(cal["verdict_thresholds"]) == {
        "perfect_harmony",
        "broken_harmony",
    }
    assert "<img" in (out / "report.html").read_text(encoding="utf-8")

    import harmony_eval

    df = harmony_eval.score(str(labelled), backend="anatomy", calibration=str(out / "calibration.json"))
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 20
    for probs in ok["regions"].map(lambda r: r["mouth"]["probs"]).dropna():
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)  # calibrated readings are distributions


def test_unknown_labels_exit_2_with_the_vocabulary(labelled, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,emotion\nhappy_0.png,joyful\nsad_0.png,sad\n", encoding="utf-8")
    argv = ["calibrate", "--images", str(labelled), "--labels", str(bad), "--out", str(tmp_path / "o")]
    assert main([*argv, "--backend", "anatomy", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "emotion=joyful" in err and "neutral" in err and "--ignore-unknown" in err


@pytest.mark.slow
def test_a_calibration_that_keeps_the_readings_changes_no_output(labelled, tmp_path, capsys):
    """Every model fitted as the backend's reading unchanged (``--model scaling --method none``):
    scoring with that file must print what the uncalibrated run prints. The whole-face model reads
    the pooled reading, which an uncalibrated run tempers with its reader's holistic temperature
    (config/readers.json); fitted on the untempered one, it sharpened every face's probabilities
    (here by up to 0.02; on the bundled sprites up to 0.07, harmony up to 0.02)."""
    import harmony_eval
    from harmony_eval.pipeline import holistic_temperature

    assert holistic_temperature("anatomy") != 1.0  # else this test could not tell the two apart
    with open(labelled / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [{"file": r["file"], "emotion": r["emotion"]} for r in csv.DictReader(f) if r["emotion"]]
    labels = write_labels_csv(tmp_path / "faces.csv", rows)
    out = tmp_path / "cal"
    argv = ["calibrate", "--images", str(labelled), "--labels", str(labels), "--out", str(out)]
    rc = main([*argv, "--model", "scaling", "--method", "none", "--backend", "anatomy", "--no-progress",
               "--no-curve", "--bootstrap", "10"])  # fmt: skip
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]  # 5 of 20 faces judged: says so
    assert "(a 25% hold-out" in last and "(n=5)" in last and "--cv 5 judges every labelled image" in last
    cal = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert "face" in cal["models"] and cal["holistic_temperature"] == holistic_temperature("anatomy")

    plain = harmony_eval.score(str(labelled), backend="anatomy").set_index("path")
    kept = harmony_eval.score(str(labelled), backend="anatomy", calibration=str(out)).set_index("path")
    ok = plain.index[plain["status"] == "ok"]
    assert len(ok) >= 20
    for p in ok:
        for e, v in plain.at[p, "probs"].items():
            assert kept.at[p, "probs"][e] == pytest.approx(v, abs=2e-4), (p, e)
        assert kept.at[p, "harmony"] == pytest.approx(plain.at[p, "harmony"], abs=2e-4), p
    assert kept.loc[ok, "verdict"].tolist() == plain.loc[ok, "verdict"].tolist()


def test_a_calibration_file_with_a_bad_holistic_temperature_is_refused(tmp_path):
    from harmony_eval.calibrated import Calibration

    d = Calibration(EMOTIONS, {}, backend="anatomy").to_dict()
    assert d["holistic_temperature"] == 1.0  # files before it was recorded: the untempered reading
    del d["holistic_temperature"]
    assert Calibration.from_dict(d).holistic_temperature == 1.0
    for bad in (0, -1.0, "0.85", True):
        with pytest.raises(ValueError, match="holistic_temperature"):
            Calibration.from_dict({**d, "holistic_temperature": bad}, "c.json")


def test_the_last_line_without_intervals_or_with_no_figure():
    """``--bootstrap 0`` gives no intervals, a target judged on one class no balanced accuracy: the
    line says what there is instead of failing after the whole fit."""
    from pathlib import Path

    from calibration.cli import calibration_line

    rep = {
        "n": 12, "cv": 3, "emotions": EMOTIONS,
        "face": {"balanced_accuracy": 0.5, "ci95": {"balanced_accuracy": [None, None]}, "n": 12},
        "mouth": {"balanced_accuracy": None, "ci95": {}, "n": 3},
    }  # fmt: skip
    line = calibration_line(rep, Path("cal/report.md"))
    assert "(3-fold cross-validation; chance 0.25)" in line
    assert "face 0.50 (n=12); mouth - (n=3). Report: cal/report.md" in line
