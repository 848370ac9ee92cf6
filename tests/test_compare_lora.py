"""The README's compare workflow: a base run against a LoRA sweep (``--lora-scales 0,0.5,1``).

The runs are written by hand (manifest.jsonl + results.jsonl, as ``generate`` + ``score`` leave
them; no diffusion): each LoRA scale must be paired with the base on prompt + seed + CFG and
tested, and a sweep that was generated but never scored must say how to score it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from bench_helpers import HARMONY, grid_rows, write_run

from benchmarks.compare import compare_runs
from benchmarks.runs import load_run
from harmony_eval import cli

SCALES = (0.0, 0.5, 1.0)


def lora_pairs(scale: float) -> list[tuple[dict, dict]]:
    """The base grid at one LoRA scale; at scale 1 every non-angry image becomes perfect."""
    out = []
    for manifest, result in grid_rows():
        m, r = copy.deepcopy(manifest), copy.deepcopy(result)
        m["file"] = r["path"] = m["file"].replace(".png", f"_lora{scale:g}.png")
        m["lora"], m["lora_scale"] = "loras/v1", scale
        if scale == 1.0 and m["emotion"] != "angry":
            r.update(verdict="perfect", emotion=m["emotion"], harmony=HARMONY["perfect"])
        out.append((m, r))
    return out


def make_runs(tmp_path: Path) -> tuple[Path, Path]:
    base = write_run(tmp_path / "base", grid_rows(), images=False)
    sweep = write_run(tmp_path / "lora_v1", [p for s in SCALES for p in lora_pairs(s)], images=False)
    return base, sweep


def test_each_lora_scale_is_paired_with_the_base(tmp_path: Path) -> None:
    base, sweep = make_runs(tmp_path)
    result = compare_runs([load_run(base), load_run(sweep)], n_boot=200)
    assert result["runs"] == ["base", "lora_v1 (LoRA 0)", "lora_v1 (LoRA 0.5)", "lora_v1 (LoRA 1)"]
    assert result["pairing"] == ["prompt", "seed", "cfg"]  # unique per scale: no lora_scale in the key
    for t in result["tests"]:
        assert t["n_pairs"] == 48 and t["only_in_a"] == t["only_in_b"] == 0
    same, _, strong = result["tests"]
    assert same["metrics"]["perfect_rate"]["better"] is None  # scale 0 rows equal the base rows
    perfect = strong["metrics"]["perfect_rate"]
    # base: 12 of 48 perfect; scale 1: the 36 non-angry images -> 24 images perfect only at scale 1
    assert (perfect["a"], perfect["b"]) == (12 / 48, 36 / 48)
    assert perfect["only_b"] == 24 and perfect["only_a"] == 0
    assert perfect["better"] == "lora_v1 (LoRA 1)" and perfect["significant"]


def test_readme_compare_command_gives_paired_tests(tmp_path: Path, capsys) -> None:
    base, sweep = make_runs(tmp_path)
    out = tmp_path / "compare"
    assert cli.main(["compare", str(base), str(sweep), "--out", str(out), "--n-boot", "200"]) == 0
    text = capsys.readouterr().out
    assert "### lora_v1 (LoRA 1) vs base (48 paired images" in text
    assert "perfect rate: lora_v1 (LoRA 1) is better" in text
    assert len(json.loads((out / "compare.json").read_text())["tests"]) == 3


def test_generated_but_unscored_run_says_to_score_it(tmp_path: Path, capsys) -> None:
    base, _ = make_runs(tmp_path)
    gen = tmp_path / "lora_v2"
    gen.mkdir()
    (gen / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m, _ in lora_pairs(1.0)))
    assert cli.main(["compare", str(base), str(gen)]) == 2
    err = capsys.readouterr().err
    assert f"{gen}: generated but not scored yet" in err
    assert f"harmony-eval score {gen / 'images'} --out {gen}" in err
