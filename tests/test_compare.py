"""`harmony-eval compare`: side-by-side tables and paired tests with a known paired difference."""

from __future__ import annotations

import json
import math
import random

import pytest
from bench_helpers import grid_rows, reference_ci, write_run

from benchmarks.compare import compare_runs
from benchmarks.runs import load_run
from harmony_eval.cli import main


def improved_rows() -> list[tuple[dict, dict]]:
    """Run B: the 16 CFG-9 images (all broken in A) become perfect, two CFG-7 perfect ones break.

    Files are renamed and rows shuffled: pairing must go by prompt + seed + CFG, not file or order.
    """
    out = []
    for i, (m, r) in enumerate(grid_rows()):
        m, r = dict(m), dict(r)
        if m["cfg"] == 9.0:
            r.update(verdict="perfect", harmony=round(0.8 + 0.001 * i, 4), emotion=m["emotion"], flags=[])
        elif m["cfg"] == 7.0 and m["archetype"] == "Soft" and m["emotion"] in ("neutral", "happy"):
            r.update(
                verdict="broken", harmony=round(0.3 + 0.001 * i, 4), emotion="angry", flags=["wrong_emotion"]
            )
        m["file"] = r["path"] = m["file"].replace("images/", "images/b_")
        out.append((m, r))
    random.Random(0).shuffle(out)
    return out


def binom_two_sided(b: int, c: int) -> float:
    """Exact McNemar by hand: 2 * sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c), capped at 1."""
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)


@pytest.fixture
def runs(tmp_path):
    return write_run(tmp_path / "base", grid_rows()), write_run(tmp_path / "lora", improved_rows())


def test_known_paired_difference(runs):
    result = compare_runs([load_run(p) for p in runs])
    assert result["pairing"] == ["prompt", "seed", "cfg"]  # prompt + seed repeat over the 3 CFGs
    t = result["tests"][0]
    assert t["n_pairs"] == 48 and t["only_in_a"] == 0
    broken = t["metrics"]["broken_rate"]
    # 16 images broken only in the base run, 2 only in the LoRA run
    assert (broken["only_a"], broken["only_b"]) == (16, 2)
    assert broken["p"] == pytest.approx(binom_two_sided(16, 2))  # = 2 * 172 / 2^18 = 0.00131
    assert broken["better"] == "lora" and broken["significant"]  # fewer broken is better
    perfect = t["metrics"]["perfect_rate"]
    assert (perfect["a"], perfect["b"]) == pytest.approx((12 / 48, 26 / 48))
    assert perfect["better"] == "lora"
    h = t["metrics"]["harmony"]
    # +0.5 on 16 images, -0.5 on 2: mean difference 7 / 48
    assert h["diff"] == pytest.approx(7 / 48, abs=1e-9)
    assert h["p"] < 0.01 and h["better"] == "lora" and h["significant"]
    a = {(m["prompt"], m["cfg"]): r["harmony"] for m, r in grid_rows()}
    diffs = [r["harmony"] - a[(m["prompt"], m["cfg"])] for m, r in improved_rows()]
    # the paired bootstrap resamples the differences in run B's row order
    assert (h["lo"], h["hi"]) == pytest.approx(reference_ci(diffs))
    assert "lora is better" in broken["sentence"] and "significant at 0.05" in broken["sentence"]


def test_small_difference_is_not_significant(tmp_path):
    rows = grid_rows()
    b = [(m, dict(r)) for m, r in rows]
    for i in (0, 3):  # Soft neutral and Soft happy at CFG 5: acceptable -> broken
        b[i][1].update(verdict="broken")
    a_run, b_run = write_run(tmp_path / "a", rows), write_run(tmp_path / "b", b)
    t = compare_runs([load_run(a_run), load_run(b_run)])["tests"][0]["metrics"]["broken_rate"]
    assert (t["only_a"], t["only_b"]) == (0, 2)
    assert t["p"] == pytest.approx(binom_two_sided(0, 2)) == 0.5
    assert not t["significant"] and t["better"] == "a"
    assert "no significant difference" in t["sentence"]


def test_identical_runs_are_equal(tmp_path):
    a = write_run(tmp_path / "x", grid_rows())
    b = write_run(tmp_path / "y", grid_rows())
    t = compare_runs([load_run(a), load_run(b)])["tests"][0]["metrics"]
    assert all(m["p"] == 1.0 and m["better"] is None for m in t.values())  # nothing differs
    assert "are equal" in t["harmony"]["sentence"]


def test_reworded_prompts_pair_on_the_file(tmp_path):
    """Same grid and file names, prompts reworded: prompt + seed pairs nothing, so pair on the file."""
    reworded = [({**m, "prompt": m["prompt"] + ", masterpiece"}, r) for m, r in grid_rows()]
    a, b = write_run(tmp_path / "a", grid_rows()), write_run(tmp_path / "b", reworded)
    result = compare_runs([load_run(a), load_run(b)])
    assert result["pairing"] == ["image"] and result["tests"][0]["n_pairs"] == 48


def test_score_runs_without_manifest_pair_on_the_image(tmp_path):
    rows = [(m, {**r, "target": None}) for m, r in grid_rows()]
    a = write_run(tmp_path / "anatomy", rows, manifest=False)
    b = write_run(tmp_path / "clip", rows[:40], manifest=False)  # a run that stopped early
    result = compare_runs([load_run(a), load_run(b)])
    assert result["pairing"] == ["image"]
    t = result["tests"][0]
    assert (t["n_pairs"], t["only_in_a"], t["only_in_b"]) == (40, 8, 0)
    assert t["metrics"]["target_match"]["n"] == 0  # no targets: not compared
    assert "not compared" in t["metrics"]["target_match"]["sentence"]


def test_cli_prints_tables_and_writes_files(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    third = write_run(tmp_path / "v2", grid_rows())
    assert main(["compare", str(runs[0]), str(runs[1]), str(third), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "## mean harmony" in text and "| group | base | lora | v2 |" in text
    assert "| CFG=9.0 | 0.00 [0.00, 0.00] (n=16) | 1.00 [1.00, 1.00] (n=16) |" in text  # perfect rate table
    data = json.loads((out / "compare.json").read_text())
    assert [t["b"] for t in data["tests"]] == ["lora", "v2"]  # each challenger against the first run
    assert (out / "compare.md").read_text() in text  # the file holds what was printed


def test_cli_bad_input(tmp_path, capsys):
    a = write_run(tmp_path / "a", grid_rows())
    assert main(["compare", str(a)]) == 2
    assert "at least two" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.jsonl").write_text("garbage\n")
    assert main(["compare", str(a), str(tmp_path / "b")]) == 2
    assert "b/results.jsonl, line 1: not valid JSON" in capsys.readouterr().err
