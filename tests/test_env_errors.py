"""Environment errors a new user meets are one line naming the file or option, what was expected and
the fix, with exit code 2 (not a traceback with exit 1, which CI reads as "regressed")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import grid_rows, write_run
from PIL import Image

from harmony_eval import cli
from harmony_eval.calibrated import Calibration

EMOTIONS = ["neutral", "happy", "sad", "angry"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def imgs(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(d / "plain.png")
    return d


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    rc = cli.main([*argv, "--no-progress"] if argv[0] == "score" else argv)
    err = capsys.readouterr().err
    return rc, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_out_naming_a_file(imgs: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "results.txt"
    f.write_text("x")
    rc, err = run_main(["score", str(imgs), "--out", str(f)], capsys)
    assert rc == 2
    assert f"--out {f}: is a file" in one_error_line(err)


def test_out_that_cannot_be_written(imgs: Path, tmp_path: Path, capsys) -> None:
    if IS_ROOT:  # root ignores permission bits: use a place no one can create folders in
        out = Path("/proc/self/harmony_out")
    else:
        locked = tmp_path / "ro"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / "run"
    rc, err = run_main(["score", str(imgs), "--out", str(out)], capsys)
    assert rc == 2
    line = one_error_line(err)
    assert f"--out {out}: cannot write there" in line and "pass a folder you can write to" in line


def test_calibration_folder_means_its_calibration_json(imgs: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "calib_out"
    Calibration(EMOTIONS, {}, backend="anatomy").save(folder / "calibration.json")
    out = tmp_path / "run"
    argv = ["score", str(imgs), "--out", str(out), "--backend", "anatomy", "--no-report"]
    rc, err = run_main([*argv, "--emotions", ",".join(EMOTIONS), "--calibration", str(folder)], capsys)
    assert rc == 0, err
    assert json.loads((out / "run.json").read_text())["config"]["calibration"] == str(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = run_main([*argv, "--calibration", str(empty)], capsys)
    assert rc == 2
    assert "a folder without calibration.json" in one_error_line(err)


def test_nan_in_a_calibration_json(imgs: Path, tmp_path: Path, capsys) -> None:
    p = Calibration(EMOTIONS, {}, backend="anatomy").save(tmp_path / "calibration.json")
    p.write_text(p.read_text().replace('"pool_weights": {}', '"pool_weights": {"eyes": NaN}'))
    rc, err = run_main(["score", str(imgs), "--out", str(tmp_path / "o"), "--calibration", str(p)], capsys)
    assert rc == 2
    line = one_error_line(err)
    assert str(p) in line and "NaN" in line and "finite" in line


def test_baseline_with_a_string_for_a_number(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", grid_rows(), images=False)
    baseline = tmp_path / "baseline.json"
    assert cli.main(["check", str(run), "--baseline", str(baseline), "--write-baseline"]) == 0
    b = json.loads(baseline.read_text())
    b["by_emotion"]["sad"]["harmony"] = "0.5"
    baseline.write_text(json.dumps(b))
    capsys.readouterr()
    rc, err = run_main(["check", str(run), "--baseline", str(baseline)], capsys)
    assert rc == 2  # bad input, not "regressed"
    assert "by_emotion.sad.harmony is '0.5'; expected a number" in one_error_line(err)


@pytest.mark.parametrize("command", ["summarize", "compare"])
def test_n_boot_zero_is_a_usage_error(command: str, tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", grid_rows(), images=False)
    runs = [str(run)] * (2 if command == "compare" else 1)
    rc = cli.main([command, *runs, "--n-boot", "0"])
    captured = capsys.readouterr()
    assert rc == 2
    assert "--n-boot" in captured.err and "Traceback" not in captured.err


def test_latin1_targets_csv_names_the_file(imgs: Path, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "targets.csv"
    csv.write_bytes("file,emotion\nplain.png,happy\ncaf\xe9.png,sad\n".encode("latin-1"))
    rc, err = run_main(["score", str(imgs), "--out", str(tmp_path / "o"), "--targets", str(csv)], capsys)
    assert rc == 2
    line = one_error_line(err)
    assert f"--targets {csv}: not UTF-8" in line and "line 3" in line and "save it as UTF-8" in line


def test_latin1_labels_csv_names_the_file(imgs: Path, tmp_path: Path) -> None:
    from calibration.labels import read_labels

    csv = tmp_path / "labels.csv"
    csv.write_bytes("file,emotion\nplain.png,happy\nna\xefve.png,sad\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"--labels .*labels\.csv: not UTF-8 text \(byte 0xef on line 3"):
        read_labels(csv, imgs, EMOTIONS)
