"""A run folder has one writer at a time, and a run never reads its own outputs as input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval import cli
from harmony_eval.imageio import list_images
from harmony_eval.runguard import RunLockedError, check_workers, output_exclusions, run_lock

ROOT = Path(__file__).resolve().parents[1]


def draw_images(folder: Path, n: int, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        p = folder / f"img_{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def n_rows(out: Path) -> int:
    return len((out / "results.jsonl").read_text(encoding="utf-8").splitlines())


def test_second_lock_on_a_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    # a second lock is a new open file description: flock conflicts even in one process
    with run_lock(tmp_path), pytest.raises(RunLockedError, match=rf"pid {os.getpid()}\b"), run_lock(tmp_path):
        pass
    with run_lock(tmp_path):  # released on exit: the next run may go
        pass


def test_concurrent_score_on_one_out_exits_2_naming_the_pid(tmp_path: Path) -> None:
    draw_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from harmony_eval.runguard import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = subprocess.run(
            [sys.executable, "-m", "harmony_eval.cli", "score", str(tmp_path / "imgs"), "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2, r.stderr
    assert f"pid {holder.pid}" in r.stderr and "--out" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "results.jsonl").exists()  # refused before writing anything


def test_scoring_a_folder_into_itself_never_reads_the_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    draw_images(run, 3)
    (run / "summary.png").write_bytes((run / "img_00.png").read_bytes())  # as summarize leaves it
    argv = ["score", str(run), "--out", str(run), "--no-progress"]
    assert cli.main(argv) in (0, 1)
    assert (run / "report_files").is_dir()  # the report put images inside the input folder
    assert n_rows(run) == 3  # the 3 drawn images; not summary.png
    assert cli.main(argv) in (0, 1)
    assert n_rows(run) == 3  # re-running does not score report_files/ (3 -> 3, not 3 -> 8)
    paths = {Path(json.loads(line)["path"]).name for line in (run / "results.jsonl").open()}
    assert paths == {"img_00.png", "img_01.png", "img_02.png"}


def test_out_inside_an_input_folder_is_skipped(tmp_path: Path) -> None:
    draw_images(tmp_path / "imgs", 2)
    out = tmp_path / "imgs" / "runs" / "r1"
    assert cli.main(["score", str(tmp_path / "imgs"), "--out", str(out), "--no-progress"]) in (0, 1)
    shutil.copy(tmp_path / "imgs" / "img_00.png", out / "stray.png")  # anything under OUT is skipped
    assert cli.main(["score", str(tmp_path / "imgs"), "--out", str(out), "--no-progress"]) in (0, 1)
    assert n_rows(out) == 2


def test_list_images_excludes_report_files_and_summary_png(tmp_path: Path) -> None:
    draw_images(tmp_path, 1)
    draw_images(tmp_path / "report_files" / "overlays", 2)
    shutil.copy(tmp_path / "img_00.png", tmp_path / "summary.png")
    assert [p.name for p in list_images(tmp_path)] == [
        "img_00.png",
        "img_00.png",
        "img_01.png",
        "summary.png",
    ]
    assert [p.name for p in list_images(tmp_path, exclude=output_exclusions(tmp_path))] == ["img_00.png"]


def test_worker_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="--workers -1"):
        check_workers(-1, 100)
    assert check_workers(64, 100, cpus=2) == 2  # clamped to the cores
    assert check_workers(2, 1, cpus=2) == 1  # one image: no pool
    assert check_workers(2, 100, cpus=4) == 2
