"""Where the CLI used to accept something silently, a person now gets a word: empty inputs, worker
counts, a calibration that does not fit the run, and a gate that compared unlike with unlike."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import grid_rows, write_run
from PIL import Image

from harmony_eval import cli
from harmony_eval.calibrated import Calibration

EMOTIONS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture
def imgs(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(d / "plain.png")
    return d


def score(argv: list[str]) -> int:
    return cli.main(["score", *argv, "--no-progress", "--no-report", "--backend", "anatomy"])


def test_empty_input_folder_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert score([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "empty: no image files found" in err and "pass image files" in err


def test_an_empty_folder_beside_images_is_a_warning(imgs: Path, tmp_path: Path, caplog) -> None:
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING):
        assert score([str(imgs), str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 0
    assert any("empty holds no image files" in r.getMessage() for r in caplog.records)


def test_workers_are_clamped_and_recorded_as_used(imgs: Path, tmp_path: Path, caplog, capsys) -> None:
    out = tmp_path / "o"
    with caplog.at_level(logging.WARNING):
        assert score([str(imgs), "--out", str(out), "--workers", "64"]) == 0
    assert any("--workers 64 is more than" in r.getMessage() for r in caplog.records)
    assert json.loads((out / "run.json").read_text())["config"]["workers"] == 1  # 1 image: no pool
    assert score([str(imgs), "--out", str(tmp_path / "o2"), "--workers", "-1"]) == 2
    assert "--workers -1: expected 0" in capsys.readouterr().err


def test_calibration_of_another_backend_is_refused(imgs: Path, tmp_path: Path, capsys) -> None:
    cal = Calibration(EMOTIONS, {}, backend="clip").save(tmp_path / "calibration.json")
    argv = [str(imgs), "--out", str(tmp_path / "o"), "--emotions", ",".join(EMOTIONS)]
    assert score([*argv, "--calibration", str(cal)]) == 2
    err = capsys.readouterr().err
    assert "fitted on backend 'clip', this run scores with 'anatomy'" in err
    assert not (tmp_path / "o" / "results.jsonl").exists()  # refused before scoring


def test_foreign_vocabulary_calibration_suggests_a_fix_that_works(imgs: Path, tmp_path: Path, capsys) -> None:
    cal = Calibration(["joy", "grief", "neutral"], {}, backend="anatomy").save(tmp_path / "c.json")
    assert score([str(imgs), "--out", str(tmp_path / "o"), "--calibration", str(cal)]) == 2
    err = capsys.readouterr().err
    assert "['joy', 'grief'] are not in emotions.yaml" in err and "refit" in err
    assert "--emotions joy" not in err  # that suggestion failed as "unknown emotion"


@pytest.fixture
def gated(tmp_path: Path) -> tuple[Path, Path]:
    """A hand-made run with a run.json config, and a baseline written from it."""
    run = write_run(tmp_path / "run", grid_rows(), images=False)
    config = {"backend": "hand", "emotions": EMOTIONS, "thresholds": {"perfect_harmony": 0.7}}
    (run / "run.json").write_text(json.dumps({"config": config}))
    baseline = tmp_path / "baseline.json"
    assert cli.main(["check", str(run), "--baseline", str(baseline), "--write-baseline"]) == 0
    return run, baseline


def test_check_shows_a_different_config_hash_and_fails_under_strict(gated, capsys) -> None:
    run, baseline = gated
    meta = json.loads((run / "run.json").read_text())
    meta["config"]["thresholds"]["perfect_harmony"] = 0.6
    (run / "run.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert cli.main(["check", str(run), "--baseline", str(baseline)]) == 0  # same rows: metrics equal
    assert "warning: scoring config differs from the baseline's (config_hash" in capsys.readouterr().out
    assert cli.main(["check", str(run), "--baseline", str(baseline), "--strict"]) == 1
    assert "--strict: 1 warning(s)" in capsys.readouterr().out


def test_check_shows_a_per_emotion_metric_the_baseline_lacks(gated, capsys) -> None:
    run, baseline = gated
    b = json.loads(baseline.read_text())
    b["by_emotion"]["sad"]["harmony"] = None
    baseline.write_text(json.dumps(b))
    capsys.readouterr()
    assert cli.main(["check", str(run), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "warning: the baseline has no harmony for emotion=sad: not checked there" in out
    assert cli.main(["check", str(run), "--baseline", str(baseline), "--strict"]) == 1
    assert (
        cli.main(["check", str(run), "--baseline", str(baseline), "--strict", "--metric", "perfect_rate"])
        == 0
    )
