"""`harmony-eval check`: the regression gate passes on an identical run, fails (exit 1) on a degraded
one with a table of what regressed, and exits 2 on bad input naming the file."""

from __future__ import annotations

import json

import pytest
from bench_helpers import grid_rows, write_run

from harmony_eval import __version__
from harmony_eval.cli import main


def degraded(rows, emotion: str = "sad", by: float = 0.3, verdict: str | None = None):
    """Copy of ``rows`` with every ``emotion`` image's harmony lowered by ``by`` (and verdict set)."""
    out = []
    for m, r in rows:
        r = dict(r)
        if m["emotion"] == emotion:
            r["harmony"] = round(max(0.0, r["harmony"] - by), 4)
            if verdict:
                r["verdict"] = verdict
        out.append((m, r))
    return out


@pytest.fixture
def base(tmp_path):
    run = write_run(tmp_path / "base", grid_rows(), images=False)
    baseline = tmp_path / "baseline.json"
    assert main(["check", str(run), "--baseline", str(baseline), "--write-baseline"]) == 0
    return run, baseline


def test_written_baseline_holds_metrics_per_emotion_and_images(base):
    _, baseline = base
    b = json.loads(baseline.read_text())
    assert b["n"] == 48 and b["evaluator"]["harmony_eval"] == __version__
    assert b["metrics"]["perfect_rate"] == pytest.approx(12 / 48)  # 12 perfect of 48 (bench_helpers rule)
    assert b["metrics"]["target_match"] == pytest.approx(28 / 48)
    assert b["by_emotion"]["angry"]["perfect_rate"] == 0.0 and b["by_emotion"]["sad"]["n"] == 12
    assert len(b["images"]) == 48 and b["images"]["images/soft_neutral_cfg5_seed0.png"] == 0.6


def test_identical_run_passes(base, tmp_path, capsys):
    _, baseline = base
    same = write_run(tmp_path / "same", grid_rows(), images=False)
    code = main(
        [
            "check",
            str(same),
            "--baseline",
            str(baseline),
            "--metric",
            "harmony",
            "--metric",
            "perfect_rate",
            "--metric",
            "target_match",
            "--max-image-delta",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: 17 check(s)" in out  # 3 metrics x (overall + 4 emotions) + 2 coverage counts
    assert "all 48 images have the baseline's harmony" in out


def test_degraded_run_fails_with_a_table(base, tmp_path, capsys):
    _, baseline = base
    worse = write_run(tmp_path / "worse", degraded(grid_rows()), images=False)
    assert main(["check", str(worse), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    # sad images lost 0.3 each: the sad mean drops 0.3, the overall mean 0.3 * 12 / 48 = 0.075 > 0.05
    lines = {
        ln.split()[0]: ln.split()
        for ln in out.splitlines()
        if ln.startswith(("overall", "emotion=")) and ln.split()[1] == "harmony"
    }
    assert lines["overall"][-1] == "REGRESSED" and lines["overall"][4] == "-0.0750"
    assert lines["emotion=sad"][-1] == "REGRESSED" and lines["emotion=sad"][4] == "-0.3000"
    assert lines["emotion=happy"][-1] == "ok"  # untouched emotions stay within tolerance
    assert "images that moved most" in out and "sad" in out.split("images that moved most")[1].splitlines()[1]
    # default metrics harmony, perfect_rate, broken_rate (x overall + 4 emotions) + 2 coverage checks;
    # only harmony moved (verdicts kept), overall and sad
    assert "FAILED (2 of 17 checks" in out


def test_a_run_without_faces_fails_instead_of_erroring(base, tmp_path, capsys):
    _, baseline = base
    rows = [
        (m, {**r, "status": "no_face", "harmony": None, "verdict": "broken", "emotion": None})
        for m, r in grid_rows()
    ]
    blank = write_run(tmp_path / "blank", rows, images=False)
    assert (
        main(["check", str(blank), "--baseline", str(baseline)]) == 1
    )  # a model that draws no faces regressed
    out = capsys.readouterr().out
    overall = next(ln.split() for ln in out.splitlines() if ln.startswith("overall"))
    # every face lost: judged on the baseline's 48 images, each at harmony 0
    assert overall == ["overall", "harmony", "0.5485", "0.0000", "-0.5485", "48", "REGRESSED"]
    faces = next(ln.split() for ln in out.splitlines() if ln.startswith("coverage") and "faces_read" in ln)
    assert faces == ["coverage", "faces_read", "48", "0", "-48", "48", "REGRESSED"]


def test_tolerance_and_per_image_gate(base, tmp_path):
    _, baseline = base
    slight = write_run(tmp_path / "slight", degraded(grid_rows(), by=0.02), images=False)
    # overall drop 0.005 and sad drop 0.02 are inside --max-drop 0.05 ...
    assert main(["check", str(slight), "--baseline", str(baseline)]) == 0
    # ... but 12 images moved by 0.02 > 0.01
    assert main(["check", str(slight), "--baseline", str(baseline), "--max-image-delta", "0.01"]) == 1
    assert main(["check", str(slight), "--baseline", str(baseline), "--max-drop", "0.01"]) == 1  # sad -0.02


def test_strict_mode_fails_on_a_verdict_change(base, tmp_path, capsys):
    _, baseline = base
    rows = grid_rows()
    rows[0][1]["verdict"] = "perfect"  # same harmony, verdict acceptable -> perfect
    flipped = write_run(tmp_path / "flip", rows, images=False)
    assert main(["check", str(flipped), "--baseline", str(baseline)]) == 0  # harmony unchanged
    capsys.readouterr()
    assert main(["check", str(flipped), "--baseline", str(baseline), "--max-image-delta", "0.01"]) == 1
    out = capsys.readouterr().out
    assert (
        "images/soft_neutral_cfg5_seed0.png: acceptable -> perfect" in out and "1 verdict(s) changed" in out
    )


def test_broken_rate_is_lower_is_better(base, tmp_path, capsys):
    _, baseline = base
    all_broken = write_run(tmp_path / "b", degraded(grid_rows(), "happy", 0.0, "broken"), images=False)
    assert main(["check", str(all_broken), "--baseline", str(baseline), "--metric", "broken_rate"]) == 1
    out = capsys.readouterr().out
    # happy: 4 broken of 12 before, 12 of 12 now (+0.6667); overall 20/48 -> 28/48
    happy = next(ln.split() for ln in out.splitlines() if ln.startswith("emotion=happy"))
    assert happy == ["emotion=happy", "broken_rate", "0.3333", "1.0000", "+0.6667", "12", "REGRESSED"]
    better = write_run(tmp_path / "g", degraded(grid_rows(), "happy", 0.0, "perfect"), images=False)
    assert (
        main(["check", str(better), "--baseline", str(baseline), "--metric", "broken_rate"]) == 0
    )  # fewer broken


@pytest.mark.parametrize(
    "case",
    [
        "baseline_garbage",
        "baseline_missing",
        "baseline_wrong",
        "run_missing",
        "run_garbage",
        "bad_metric",
        "no_targets",
    ],
)
def test_bad_input_exits_2(base, tmp_path, capsys, case):
    run, baseline = base
    args = ["check", str(run), "--baseline", str(baseline)]
    named = str(baseline)
    if case == "baseline_garbage":
        baseline.write_text("{oops")
    elif case == "baseline_missing":
        baseline.unlink()
    elif case == "baseline_wrong":
        baseline.write_text(json.dumps({"harmony": 0.5}))
    elif case == "run_missing":
        args[1] = named = str(tmp_path / "nope")
    elif case == "run_garbage":
        (run / "results.jsonl").write_text(
            '{"path": "a.png", "status": "ok", "verdict": null, "harmony": 7}\n'
        )
        named = str(run / "results.jsonl")
    elif case == "bad_metric":
        args += ["--metric", "happiness"]
        named = "happiness"
    elif case == "no_targets":
        plain = write_run(
            tmp_path / "plain",
            [(m, {**r, "target": None}) for m, r in grid_rows()],
            manifest=False,
            images=False,
        )
        args = ["check", str(plain), "--baseline", str(baseline), "--metric", "target_match"]
        named = str(plain)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err  # the message names the culprit
