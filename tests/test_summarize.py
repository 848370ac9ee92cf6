"""`harmony-eval summarize` on hand-made runs whose counts follow tests/bench_helpers.py's written rule."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest
from bench_helpers import grid_rows, reference_ci, write_run

from benchmarks.runs import RunError, load_run
from benchmarks.stats import bootstrap_rate, mcnemar_exact
from benchmarks.summary import summarize
from harmony_eval.cli import main


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run", grid_rows())


def test_overall_counts_rates_and_intervals_match_the_rule(run_dir):
    s = summarize(load_run(run_dir))
    o = s["overall"]
    # the rule: broken = all 16 cfg-9 images + 4 sad cfg-5; perfect = 12 cfg-7 non-angry; rest acceptable
    assert (o["perfect_rate"]["count"], o["acceptable_rate"]["count"], o["broken_rate"]["count"]) == (
        12,
        16,
        20,
    )
    assert o["broken_rate"]["value"] == pytest.approx(20 / 48)
    lo, hi = reference_ci([1.0] * 20 + [0.0] * 28)  # the bootstrap only sees how many are broken
    assert (o["broken_rate"]["lo"], o["broken_rate"]["hi"]) == pytest.approx((lo, hi))
    # sanity against the normal approximation: p +- 1.96 sqrt(p(1-p)/n) = 0.417 +- 0.139
    assert abs(o["broken_rate"]["lo"] - (20 / 48 - 0.139)) < 0.03
    assert o["target_match"]["count"] == 28  # detected = target exactly when not broken
    harmonies = [r["harmony"] for _, r in grid_rows()]
    assert o["harmony"]["value"] == pytest.approx(sum(harmonies) / 48)
    assert (o["harmony"]["lo"], o["harmony"]["hi"]) == pytest.approx(reference_ci(harmonies))


def test_groups_by_emotion_and_cfg(run_dir):
    g = summarize(load_run(run_dir))["groups"]
    counts = {
        e: tuple(g["target"][e][f"{v}_rate"]["count"] for v in ("perfect", "acceptable", "broken"))
        for e in g["target"]
    }
    # sad is broken at cfg 5 and 9, angry is never perfect (see the rule)
    assert counts == {"neutral": (4, 4, 4), "happy": (4, 4, 4), "sad": (4, 0, 8), "angry": (0, 8, 4)}
    assert list(g["cfg"]) == ["5.0", "7.0", "9.0"]
    assert g["cfg"]["9.0"]["broken_rate"]["value"] == 1.0  # every cfg-9 image is broken
    assert (g["cfg"]["9.0"]["broken_rate"]["lo"], g["cfg"]["9.0"]["broken_rate"]["hi"]) == (1.0, 1.0)
    assert g["cfg"]["7.0"]["perfect_rate"]["count"] == 12
    assert set(g["archetype"]) == {"Soft", "Stoic", "Energetic", "Melancholic"}
    assert "lora_scale" not in g  # the manifest has no LoRA scale: no such table


def test_flags_and_region_confusion(run_dir):
    s = summarize(load_run(run_dir))
    assert s["flags"]["wrong_emotion"]["count"] == 20 and s["flags"]["mixed_signals"]["count"] == 16
    assert s["flags"]["no_face"]["count"] == 0
    assert s["region_match"]["eyes"]["value"] == 1.0  # eyes always drawn as the target
    assert s["region_match"]["brows"]["count"] == 36  # Stoic faces (12) have no brows read
    assert s["confusion"]["brows"]["rows"]["happy"]["missing"] == 3  # one Stoic happy face per CFG
    mouth = s["confusion"]["mouth"]["rows"]
    assert mouth["sad"]["angry"] == 8 and mouth["angry"]["sad"] == 4  # broken faces read the swapped emotion


def test_cli_writes_every_file_and_prints_the_table(run_dir, capsys):
    assert main(["summarize", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\| \*\*overall\*\* \| 48 \| 12/16/20 \|", printed)  # the overall row with P/A/B counts
    for ext in ("md", "csv", "json", "png", "html"):
        assert (run_dir / f"summary.{ext}").stat().st_size > 0
    assert (run_dir / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(run_dir / "summary.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    broken = next(
        x for x in lines if x["dimension"] == "cfg" and x["group"] == "5.0" and x["metric"] == "broken_rate"
    )
    assert (int(broken["count"]), int(broken["n"])) == (4, 16)  # the 4 sad faces at cfg 5
    html = (run_dir / "summary.html").read_text()
    assert html.count("<tr>") == 1 + 16  # header + archetype x emotion rows
    srcs = re.findall(r'<img src="(images/[^"]+)"', html)
    assert len(srcs) == 48 and all((run_dir / s).is_file() for s in srcs)  # linked files, not inlined
    assert json.loads((run_dir / "summary.json").read_text())["overall"]["n"] == 48


def test_summary_is_deterministic(run_dir, tmp_path):
    main(["summarize", str(run_dir), "--out", str(tmp_path / "a")])
    main(["summarize", str(run_dir), "--out", str(tmp_path / "b")])
    assert (tmp_path / "a/summary.md").read_text() == (tmp_path / "b/summary.md").read_text()
    html = (tmp_path / "a/summary.html").read_text()
    assert 'src="../run/images/' in html  # links stay valid from another output folder


def test_plain_score_output_without_manifest(tmp_path, capsys):
    rows = [(m, {**r, "target": None}) for m, r in grid_rows()]
    run = write_run(tmp_path / "plain", rows, manifest=False)
    s = summarize(load_run(run))
    assert s["groups"] == {} and s["confusion"] == {}  # nothing to group by without a manifest or targets
    assert s["overall"]["broken_rate"]["count"] == 20 and s["overall"]["target_match"]["value"] is None
    assert main(["summarize", str(run)]) == 0
    assert "| **overall** | 48 |" in capsys.readouterr().out


def test_results_paths_join_manifest_from_another_directory(tmp_path, monkeypatch):
    """score_folder writes the paths it was given: absolute ones must still find their manifest row."""
    run = tmp_path / "run"
    rows = [(m, {**r, "path": str(run / m["file"]), "target": None}) for m, r in grid_rows()]
    write_run(run, rows)
    monkeypatch.chdir(tmp_path)
    loaded = load_run(run)
    assert loaded.unmatched == 0 and loaded.rows[0]["archetype"] == "Soft"
    assert loaded.rows[0]["target"] == "neutral"  # taken from the manifest's emotion


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "file not found"),
        ("{not json\n", "line 1: not valid JSON"),
        ('{"path": "a.png"}\n', "missing key(s)"),
        ('{"path": "a.png", "status": "ok", "verdict": "great", "harmony": 0.5}\n', "verdict 'great'"),
    ],
)
def test_bad_runs_exit_2_naming_the_file(tmp_path, capsys, content, needle):
    run = tmp_path / "bad"
    run.mkdir()
    if content is not None:
        (run / "results.jsonl").write_text(content)
    with pytest.raises(RunError, match=re.escape(needle)):
        load_run(run)
    assert main(["summarize", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(run / "results.jsonl") in err and needle in err


def test_stats_reference_values():
    # exact McNemar by hand: b=2, c=8 -> 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2 * 56 / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_exact(5, 5) == 1.0  # balanced discordance is no evidence
    # large n (0.5 ** 1100 underflows): the continuity-corrected normal form gives 2 * Phi(-99 / sqrt(1100))
    z = 99 / 1100**0.5
    assert mcnemar_exact(500, 600) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.02)
    e = bootstrap_rate([True] * 3 + [False] * 7)
    assert (e.count, e.n, e.value) == (3, 10, 0.3)
    assert (e.lo, e.hi) == pytest.approx(reference_ci([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]))


def test_manifest_found_beside_the_scored_images(tmp_path):
    """`harmony-eval score GEN/images --out OTHER`: the manifest stays in GEN, named by run.json's inputs."""
    gen = write_run(tmp_path / "gen", grid_rows())
    (gen / "results.jsonl").unlink()
    other = tmp_path / "other"
    write_run(
        other,
        [(m, {**r, "path": str(gen / m["file"])}) for m, r in grid_rows()],
        manifest=False,
        images=False,
    )
    (other / "run.json").write_text(json.dumps({"inputs": [str(gen / "images")]}))
    run = load_run(other)
    assert run.has_manifest and run.unmatched == 0
    assert {r["archetype"] for r in run.rows} == {"Soft", "Stoic", "Energetic", "Melancholic"}
