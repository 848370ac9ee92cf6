"""`harmony-eval benchmark`: generate with the tiny random pipeline, score, summarize, into one folder."""

from __future__ import annotations

import json

import pytest

# the tiny random generation pipeline needs the gen extra; without it there is nothing to benchmark
pytest.importorskip("torch", reason="needs torch (pip install harmony-eval[gen])")
pytest.importorskip("diffusers", reason="needs diffusers (pip install harmony-eval[gen])")

from benchmarks.runs import load_run  # noqa: E402
from harmony_eval.cli import main  # noqa: E402

TINY = ["--model", "tiny-random", "--width", "32", "--height", "32", "--steps", "2", "--backend", "anatomy",
        "--workers", "1", "--no-progress"]  # fmt: skip


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_small_grid_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["benchmark", *TINY, "--out", str(out), "--archetypes", "Soft,Stoic", "--emotions", "happy,sad",
            "--cfgs", "5,9"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| **overall** | 8 |" in printed  # 2 archetypes x 2 emotions x 2 CFGs
    manifest, results = _lines(out / "manifest.jsonl"), _lines(out / "results.jsonl")
    assert len(manifest) == len(results) == 8
    run = load_run(out)
    assert run.unmatched == 0 and not run.not_scored  # every image generated was scored and joined
    # targets come from the manifest: each results row targets the emotion its prompt asked for
    by_file = {m["file"]: m["emotion"] for m in manifest}
    assert all(r["target"] == by_file[r["image"]] for r in run.rows)
    for name in ("summary.md", "summary.html", "summary.png", "run.json", "generation.json"):
        assert (out / name).is_file(), name
    before = (out / "results.jsonl").read_bytes()
    assert main(args) == 0  # rerun: nothing left to draw or score
    assert (out / "results.jsonl").read_bytes() == before
    assert json.loads((out / "generation.json").read_text())["generated"] == 0


@pytest.mark.slow
def test_full_default_grid(tmp_path, capsys):
    """The seed's default 4 x 4 x 3 grid = 48 images (about 20-40 s on 2 shared CPU cores)."""
    out = tmp_path / "full"
    assert main(["benchmark", *TINY, "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n"] == 48 and set(s["groups"]["cfg"]) == {"5.0", "7.0", "9.0"}
    assert (
        sum(s["overall"][f"{v}_rate"]["count"] or 0 for v in ("perfect", "acceptable", "broken"))
        == (s["overall"]["scored"])
    )  # every scored image has exactly one verdict


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--cfgs", "5,x"], "`--cfgs` expects comma-separated numbers"),
        (["--emotions", "happy,bored"], "bored"),
        (["--width", "30"], "divisible by 8"),
    ],
)
def test_bad_options_exit_2_before_loading(tmp_path, capsys, extra, needle):
    assert main(["benchmark", *TINY, "--out", str(tmp_path / "x"), *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x" / "results.jsonl").exists()  # nothing was scored
