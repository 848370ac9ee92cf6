"""`harmony-eval check` judges the baseline's images: lost faces, unscored or missing images count
against the run (harmony 0, broken) and a coverage drop fails on its own; reordered, identical and
extended runs pass. Runs are written from rows (bench_helpers rule), plus one real `score` run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import grid_rows, write_run
from PIL import Image

from harmony_eval.cli import main

REPO_EXAMPLES = ("happy_01.png", "angry_01.png", "sad_01.png", "neutral_01.png")


@pytest.fixture
def baseline(tmp_path):
    run = write_run(tmp_path / "base", grid_rows(), images=False)
    path = tmp_path / "baseline.json"
    assert main(["check", str(run), "--baseline", str(path), "--write-baseline"]) == 0
    return path


def table(out: str) -> dict[tuple[str, str], list[str]]:
    """``(scope, metric) -> cells`` of the check table."""
    return {
        (ln.split()[0], ln.split()[1]): ln.split()
        for ln in out.splitlines()
        if ln.startswith(("overall", "emotion=", "coverage"))
    }


def lose_faces(pairs, every: int = 2):
    """Every ``every``-th image becomes a blank: scored, no face, broken, no harmony."""
    return [
        (m, {**r, "status": "no_face", "harmony": None, "verdict": "broken", "emotion": None, "probs": None})
        if i % every == 0
        else (m, r)
        for i, (m, r) in enumerate(pairs)
    ]


def test_lost_faces_fail_even_when_only_harmony_is_checked(baseline, tmp_path, capsys):
    pairs = grid_rows()
    run = write_run(tmp_path / "lost", lose_faces(pairs), images=False)
    # the old gate averaged harmony over the 24 faces left and passed; now it must fail
    assert main(["check", str(run), "--baseline", str(baseline), "--metric", "harmony"]) == 1
    t = table(capsys.readouterr().out)
    kept = [r["harmony"] for i, (_, r) in enumerate(pairs) if i % 2]
    # the 24 lost faces count as harmony 0 over the baseline's 48 images
    assert float(t["overall", "harmony"][3]) == pytest.approx(sum(kept) / 48, abs=1e-4)
    assert t["overall", "harmony"][5] == "48" and t["overall", "harmony"][-1] == "REGRESSED"
    assert t["coverage", "faces_read"][2:4] == ["48", "24"] and t["coverage", "faces_read"][-1] == "REGRESSED"
    assert t["coverage", "images_scored"][-1] == "ok"  # the blanks were scored (no_face), only faces lost


def test_unscored_and_missing_images_count_as_broken(baseline, tmp_path, capsys):
    pairs = grid_rows()
    errored = [(m, {**r, "status": "error", "harmony": None, "verdict": None}) for m, r in pairs[:3]]
    run = write_run(tmp_path / "partial", errored + pairs[3:40], images=False)  # 3 errors, 8 rows gone
    assert main(["check", str(run), "--baseline", str(baseline), "--metric", "broken_rate"]) == 1
    out = capsys.readouterr().out
    t = table(out)
    base_broken = sum(r["verdict"] == "broken" for _, r in pairs)
    now_broken = base_broken + sum(r["verdict"] != "broken" for _, r in pairs[:3] + pairs[40:])
    assert float(t["overall", "broken_rate"][3]) == pytest.approx(now_broken / 48, abs=1e-4)
    assert t["coverage", "images_scored"][2:4] == ["48", "37"]  # 11 lost
    assert "11 baseline image(s) lost their score" in out


def test_a_degraded_subset_fails_on_verdict_rates_and_max_changed(baseline, tmp_path, capsys):
    pairs = grid_rows()
    # six perfect faces become broken with the same harmony: mean harmony does not move
    perfect = [i for i, (_, r) in enumerate(pairs) if r["verdict"] == "perfect"][:6]
    worse = [(m, {**r, "verdict": "broken"}) if i in perfect else (m, r) for i, (m, r) in enumerate(pairs)]
    run = write_run(tmp_path / "worse", worse, images=False)
    assert main(["check", str(run), "--baseline", str(baseline), "--metric", "harmony"]) == 0
    capsys.readouterr()
    assert main(["check", str(run), "--baseline", str(baseline)]) == 1  # default metrics: verdict rates too
    t = table(capsys.readouterr().out)
    assert t["overall", "broken_rate"][4] == "+0.1250"  # 6 of 48
    assert t["overall", "harmony"][-1] == "ok"
    args = ["check", str(run), "--baseline", str(baseline), "--metric", "harmony", "--max-changed"]
    assert main([*args, "6"]) == 0
    assert main([*args, "5"]) == 1
    assert "6 image(s) changed (more than --max-changed 5)" in capsys.readouterr().out


def test_reordered_and_identical_runs_pass(baseline, tmp_path, capsys):
    pairs = grid_rows()
    for name, rows in (("same", pairs), ("reordered", pairs[::-1])):
        run = write_run(tmp_path / name, rows, images=False)
        args = [
            "check",
            str(run),
            "--baseline",
            str(baseline),
            "--max-image-delta",
            "0",
            "--max-changed",
            "0",
        ]
        assert main(args) == 0, name
        out = capsys.readouterr().out
        assert "0 image(s) changed beyond tolerance" in out and "lost" not in out


def test_new_images_are_reported_not_judged(baseline, tmp_path, capsys):
    pairs = grid_rows()
    extra = [
        ({**m, "file": f"images/new_{i}.png"}, {**r, "path": f"images/new_{i}.png", "harmony": 0.01,
                                                "verdict": "broken"})
        for i, (m, r) in enumerate(pairs[:5])
    ]  # fmt: skip
    run = write_run(tmp_path / "more", pairs + extra, images=False)
    assert main(["check", str(run), "--baseline", str(baseline), "--max-changed", "0"]) == 0
    out = capsys.readouterr().out
    assert "5 image(s) not in the baseline (reported, not judged): images/new_0.png" in out
    assert table(out)["overall", "harmony"][4] == "+0.0000"  # the broken newcomers do not lower it


def test_real_score_runs_with_blanked_images_fail(tmp_path, capsys):
    """End to end: score bundled examples, write a baseline, rescore with every second image blank."""
    src = Path(__file__).resolve().parents[1] / "examples"
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
    for i, name in enumerate(REPO_EXAMPLES):
        shutil.copy(src / name, a / name)
        if i % 2:
            w, h = Image.open(src / name).size
            Image.fromarray(np.full((h, w, 3), 255, np.uint8)).save(b / name)  # a blank page
        else:
            shutil.copy(src / name, b / name)
    opts = ["--backend", "anatomy", "--detectors", "animeface,crop", "--workers", "1", "--no-report"]
    assert main(["score", str(a), "--out", str(tmp_path / "run_a"), *opts]) == 0
    assert main(["score", str(b), "--out", str(tmp_path / "run_b"), *opts]) == 0
    base = tmp_path / "baseline.json"
    assert main(["check", str(tmp_path / "run_a"), "--baseline", str(base), "--write-baseline"]) == 0
    capsys.readouterr()
    assert main(["check", str(tmp_path / "run_a"), "--baseline", str(base), "--max-image-delta", "0"]) == 0
    assert main(["check", str(tmp_path / "run_b"), "--baseline", str(base), "--metric", "harmony"]) == 1
    t = table(capsys.readouterr().out)
    faces = t["coverage", "faces_read"]
    assert int(faces[2]) - int(faces[3]) == 2 and faces[-1] == "REGRESSED"  # the two blanks lost their face
