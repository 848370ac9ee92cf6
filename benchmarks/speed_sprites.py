"""Speed as a user measures it: ``harmony-eval score`` on real-sized sprites, 1 vs 2 workers, and the
peak memory of long runs. Prints figures (a benchmark, not a timed test).

    python -m benchmarks.speed --sprites 150 --rss-at 1000            # ~600 px copies of examples/
    python -m benchmarks.speed --sprites 150 --rss-at 1000,10000 --images tests/fixtures/permissive

- ``images_per_s`` per worker count: images / seconds of ``score_folder`` (listing, worker start-up
  and scoring; results.csv/parquet and the report are written after the clock stops, ``report=False``
  here), each into a fresh run folder; ``ratio`` = 2 workers / 1 worker. The worker pool starts once
  per run and every worker keeps its detectors and backend for all its images (``driver``).
- ``peak_rss_mb`` at N images: the largest sum of resident memory of the scoring process and all its
  children (workers, forkserver), sampled every 0.1 s; the goal is flat in N and <= 1.5 GB.

The images are the bundled examples (or ``--images``) scaled so the longest side is ``--side`` px,
repeated as symlinks up to N files: the same pixels every round, so timings compare like with like.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

_SAMPLE_S = 0.1


def sprite_folder(src: Path, n: int, side: int, dst: Path) -> Path:
    """``dst/imgs`` holding ``n`` image files: ``src``'s images scaled to ``side`` px, as symlinks."""
    from PIL import Image

    from harmony_eval.imageio import list_images

    files = list_images([str(src)])
    if not files:
        raise FileNotFoundError(f"--images {src}: no images found")
    scaled_dir, imgs = dst / "scaled", dst / "imgs"
    scaled_dir.mkdir(parents=True, exist_ok=True)
    imgs.mkdir(exist_ok=True)
    scaled = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            k = side / max(im.size)
            im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))), Image.LANCZOS)
            p = scaled_dir / f"{f.stem}.png"
            im.save(p)
        scaled.append(p)
    for i in range(n):
        s = scaled[i % len(scaled)]
        os.symlink(s, imgs / f"{i:05d}_{s.name}")
    return imgs


_S = TypeVar("_S", bound="Sampler")


class Sampler:
    """Calls ``_sample`` every ``every_s`` seconds in a thread while the ``with`` block runs, once as
    it ends, and once as it starts (``sample_on_enter``): the loop of this module's ``PeakRSS`` and
    ``ray_bench.PeakMemory``, which differ only in what one sample reads."""

    sample_on_enter = True

    def __init__(self, every_s: float) -> None:
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def __enter__(self: _S) -> _S:
        if self.sample_on_enter:
            self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class PeakRSS(Sampler):
    """Samples the summed RSS of this process and its children in a thread (``with PeakRSS() as m``)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak_total = self.peak_main = 0
        super().__init__(_SAMPLE_S)

    def _sample(self) -> None:
        import psutil

        main = self._proc.memory_info().rss
        total = main
        for c in self._proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that just ended
                total += c.memory_info().rss
        self.peak_main, self.peak_total = max(self.peak_main, main), max(self.peak_total, total)


def _run(imgs: Path | list[str], out: Path, workers: int) -> tuple[float, int]:
    from harmony_eval.runner import score_folder

    s = score_folder(imgs, out, workers=workers, progress=False, report=False, backend="anatomy")
    return s.seconds, s.n_scored


def sprite_speed(
    images: Path,
    n: int = 150,
    side: int = 600,
    workers: tuple[int, ...] = (1, 2),
    rss_at: tuple[int, ...] = (),
) -> dict[str, Any]:
    """The figures of the module docstring, as one JSON-ready dict."""
    tmp = Path(tempfile.mkdtemp(prefix="harmony_sprites_"))
    try:
        return _measure(images, n, side, workers, rss_at, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # up to 10k symlinks and as many rows


def _measure(
    images: Path, n: int, side: int, workers: tuple[int, ...], rss_at: tuple[int, ...], tmp: Path
) -> dict[str, Any]:
    imgs = sprite_folder(images, n, side, tmp / "timing")
    _run([str(next(imgs.iterdir()))], tmp / "warm", 1)  # imports and first-use set-up, not timed
    # the load average says how much other jobs on the machine slowed the figures
    load = round(os.getloadavg()[0], 1)
    out: dict[str, Any] = {
        "backend": "anatomy",
        "images": n,
        "side_px": side,
        "cpus": os.cpu_count(),
        "load_avg": load,
    }
    rates = {}
    for w in workers:
        t0 = time.perf_counter()
        seconds, scored = _run(imgs, tmp / f"run_w{w}", w)
        wall = time.perf_counter() - t0
        assert scored == n, f"scored {scored} of {n}"
        rates[w] = n / seconds
        out[f"workers_{w}"] = {"seconds": round(seconds, 2), "wall_s": round(wall, 2),
                               "images_per_s": round(rates[w], 2)}  # fmt: skip
    if 1 in rates and 2 in rates:
        out["ratio_2_vs_1"] = round(rates[2] / rates[1], 2)
    for size in rss_at:
        big = sprite_folder(images, size, side, tmp / f"rss{size}")
        with PeakRSS() as m:
            t0 = time.perf_counter()
            seconds, _ = _run(big, tmp / f"rss_run{size}", 2)
        out[f"rss_{size}"] = {
            "peak_rss_mb": round(m.peak_total / 2**20), "peak_rss_main_mb": round(m.peak_main / 2**20),
            "seconds": round(seconds, 1), "images_per_s": round(size / (time.perf_counter() - t0), 2),
        }  # fmt: skip
    return out
