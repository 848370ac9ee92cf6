"""SIGTERM or Ctrl-C during a parallel run stops every child process and keeps the rows written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_run_lock import draw_images

ROOT = Path(__file__).resolve().parents[1]


def wait_for_rows(results: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before it could be signalled")
        if results.is_file() and results.read_text(encoding="utf-8").count("\n") >= 1:
            return
        time.sleep(0.2)
    pytest.fail("no row written in time")


def sigint_state(pid: int | str = "self") -> str:
    """SIGINT's disposition in a process, from /proc: caught, ignored or blocked (a child inherits
    ignored and blocked signals, so a test runner that ignores Ctrl-C would hide what this tests)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt"):
            fields[key] = int(value.strip(), 16) >> (signal.SIGINT - 1) & 1
    return ", ".join(k for k in ("SigBlk", "SigIgn", "SigCgt") if fields.get(k)) or "default"


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default and unblocked, as a run typed at a terminal
    gets it. A test runner started in the background (``cmd &``, no job control) ignores SIGINT,
    and its children inherit that; the CLI rightly leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 130), (signal.SIGINT, 130)])
def test_signal_stops_every_child_and_keeps_rows(tmp_path: Path, sig: signal.Signals, rc: int) -> None:
    n = 1000  # far more than are scored before the signal, even on a fast machine (200 were not)
    draw_images(tmp_path / "imgs", n)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harmony_eval.cli", "score", str(tmp_path / "imgs"), "--out", str(out)]
    proc = subprocess.Popen(
        # noise images are all misses, and the sibling pass writes a folder's misses after its last
        # image (sibling_pass.with_siblings): without it rows stream from the first image, which is
        # what this test needs to signal a run mid-way (faces found stream either way)
        [*cmd, "--workers", "2", "--no-report", "--no-progress", "--no-face-from-siblings"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=_as_from_a_terminal,
    )
    try:
        wait_for_rows(out / "results.jsonl", proc)
        if sig == signal.SIGINT:
            state = sigint_state(proc.pid)
            assert state == "SigCgt", (
                f"the CLI does not catch SIGINT ({state}); pytest's process: {sigint_state()}"
            )
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # 2 workers + forkserver (+ resource tracker)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == rc, err
    assert "interrupted; rerun the same command to resume" in err
    assert "Traceback" not in err
    psutil.wait_procs(children, timeout=10)
    survivors = [c.pid for c in children if alive(c)]
    assert not survivors, f"children still running after {sig.name}: {survivors}"
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]  # every line is a complete row
    assert 1 <= len(rows) < n
    assert len({r["path"] for r in rows}) == len(rows)


def test_a_signal_whose_exception_was_dropped_still_stops_the_run(monkeypatch) -> None:
    """CPython swallows an exception raised in a finalizer; a SIGTERM landing there must not be lost."""
    import gc
    import os

    from harmony_eval.runguard import raise_if_interrupted, signals_as_interrupt

    class SignalsWhileFinalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, inside __del__: its KeyboardInterrupt is dropped

    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: ray.init installs its own
    dropped: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    with signals_as_interrupt():
        SignalsWhileFinalized()
        gc.collect()
        assert dropped == [KeyboardInterrupt]  # "Exception ignored in __del__": the run went on
        with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
            raise_if_interrupted()
    raise_if_interrupted()  # outside the block nothing is pending
    assert signal.getsignal(signal.SIGTERM) is before  # the block put the previous handler back
