"""Guards around a scoring run that keep its folder sound: one writer at a time, never reading its own
outputs as input, stopping every child process on SIGTERM / Ctrl-C, and checked worker counts.

Each guard answers one way a run folder was seen to go wrong: two concurrent runs on one ``--out``
wrote 894 rows for 447 images; ``score RUN --out RUN`` scored its own ``report_files/`` (16 images
became 34, then 52); SIGTERM left the workers, the forkserver and the resource tracker running.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK = ".lock"
#: What ``score`` / ``summarize`` write into a run folder that has an image extension or holds images.
OUTPUT_IMAGES = ("report_files", "summary.png")


class RunLockedError(ValueError):
    """Another process holds the run folder's lock."""


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.lock`` for the block; :class:`RunLockedError` names the holder.

    ``flock`` is released by the kernel when the holder dies, so a killed run never leaves a stale lock
    (the file may stay; only the lock matters)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs there are not guarded
        yield
        return
    path = out / LOCK
    f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held open for the whole block
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunLockedError(
                f"{out}: another harmony-eval run (pid {holder}) is writing this folder; wait for it to "
                "finish or pass another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()  # closing releases the lock


def output_exclusions(out: Path) -> list[Path]:
    """Paths ``list_images`` must skip so that a run never reads its own outputs: the folder itself
    (when it sits inside an input folder) and, when it *is* an input folder, what it writes there."""
    return [out, *(out / name for name in OUTPUT_IMAGES)]


def check_workers(workers: int, n_jobs: int, cpus: int | None = None) -> int:
    """The worker processes to start for ``n_jobs`` images when ``workers`` were asked for.

    Refuses negatives (``-1`` meant "sequential" silently before); more processes than cores only add
    memory (``--workers 64`` on 2 cores summed 10 GB of RSS) and scheduling, so they are clamped with
    a note. Returns the number of processes that will really score (1 = in this process)."""
    if workers < 0:
        raise ValueError(
            f"--workers {workers}: expected 0 (one per core for larger jobs) or a positive count"
        )
    cpus = cpus or os.cpu_count() or 1
    if workers > cpus:
        log.warning("note: --workers %d is more than the %d core(s) here; using %d", workers, cpus, cpus)
        workers = cpus
    return max(1, min(workers, n_jobs))


#: Signals received inside :func:`signals_as_interrupt` (see :func:`raise_if_interrupted`).
_RECEIVED: list[int] = []


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and Ctrl-C, unless it is ignored, as under ``nohup``) into ``KeyboardInterrupt``
    for the block, so that the same cleanup runs for both: the worker pool is stopped
    (:func:`stop_pool_on_exit`) and the rows written so far stay. The signal is also recorded:
    CPython drops an exception raised while a finalizer runs ("Exception ignored in ..."), so a
    signal landing there would be lost; :func:`raise_if_interrupted` raises it again at the next row."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        _RECEIVED.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    sigs = [signal.SIGTERM] + (
        [signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else []
    )
    previous = {s: signal.signal(s, handler) for s in sigs}
    _RECEIVED.clear()
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _RECEIVED.clear()


def raise_if_interrupted() -> None:
    """``KeyboardInterrupt`` when a signal arrived in :func:`signals_as_interrupt` and the run still
    goes on (its exception was swallowed): call it between rows."""
    if _RECEIVED:
        raise KeyboardInterrupt(f"signal {_RECEIVED[0]}")


@contextlib.contextmanager
def stop_pool_on_exit(pool: ProcessPoolExecutor) -> Iterator[None]:
    """On any exception leaving the block (Ctrl-C, SIGTERM, an error), cancel what is queued and
    terminate the workers instead of waiting for them (``ProcessPoolExecutor.__exit__`` waits)."""
    try:
        yield
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
        raise


def ignore_sigint_in_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from every worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def prepare_out(out_dir: str | os.PathLike) -> Path:
    """The run folder, created and known to be writable; ``ValueError`` (one line naming ``--out``)
    when it is a file or cannot be written, before any image is scored."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; expected a run folder (new, or one from an earlier run)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")  # root ignores permission bits, so try rather than os.access
        probe.unlink()
    except OSError as e:
        raise ValueError(
            f"--out {out}: cannot write there ({e.strerror or e}); pass a folder you can write to"
        ) from None
    return out


def guarded_run(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate ``score_folder(inputs, out_dir, ...)``: the run folder is created and locked, and
    SIGTERM stops the run like Ctrl-C, for the whole call."""

    @functools.wraps(fn)
    def run(inputs: Any, out_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> T:
        out = prepare_out(out_dir)
        with run_lock(out), signals_as_interrupt():
            return fn(inputs, out, *args, **kwargs)

    return run


def require_images(roots: list[Path], paths: list[Path]) -> None:
    """Warn about each input folder with no image in it; ``ValueError`` when nothing at all was found
    (a run of 0 images used to exit 0 with "0 image(s)", which reads like success)."""
    from .imageio import IMAGE_EXTENSIONS

    found = [str(p) for p in paths]
    empty = [r for r in roots if r.is_dir() and not any(f.startswith(str(r)) for f in found)]
    exts = ", ".join(sorted(IMAGE_EXTENSIONS)[:8]) + ", ..."
    if not paths:
        raise ValueError(
            f"{', '.join(map(str, roots))}: no image files found (looked for {exts}, hidden files and "
            "the run's own outputs skipped); pass image files or a folder holding them"
        )
    for r in empty:
        log.warning("warning: %s holds no image files (looked for %s); nothing scored from it", r, exts)
