"""A scoring subprocess killed midway resumes without losing finished rows or duplicating any."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harmony_eval.runner import read_rows
from harmony_eval.testing.render import render_face


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    n = 40
    base = render_face("happy", "happy", "happy", seed=0, size=384)
    for i in range(n):
        base.rotate(i % 7 - 3, fillcolor=(255, 255, 255)).save(src / f"face_{i:03d}.png")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "harmony_eval.cli",
        "score",
        str(src),
        "--out",
        str(out),
        "--backend",
        "anatomy",
        "--workers",
        "1",
        "--no-report",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if results.exists() and results.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_rows(results)
    assert 5 <= len(first) < n, "the kill should land midway"
    with open(results, "ab") as f:  # a row torn in the middle of its write
        f.write(b'{"path": "torn", "stat')
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = read_rows(results)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)) == n  # every image exactly once
    assert rows[: len(first)] == first  # finished rows untouched
    assert all(json.loads(line) for line in results.read_text().splitlines())  # torn line cut off
