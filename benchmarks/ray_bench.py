"""Local engine vs Ray: images/s and peak memory of ``score_folder``; prints a table (a benchmark, not a test).

    python benchmarks/ray_bench.py                      # speed on ~320 images + peak memory for 1k
    python benchmarks/ray_bench.py --sizes 1000,10000   # peak memory for 1k and 10k images as well
    python benchmarks/ray_bench.py --speed-images 0 --sizes 10000   # the 10k memory rows only

Inputs are the bundled ``examples/*.png`` linked (symlinks) under new names until the set has N
images, so the set grows without new disk. Every configuration runs in a fresh child process (``--child``)
with the anatomy backend into a fresh run folder:

- ``images/s``: images scored / seconds of the ``score_folder`` call, start-up of worker processes
  or actors included, Ray's own start-up (``ray.init``, reported as ``init s``) not;
- ``first row s``: seconds until the first row was written (start-up); ``steady img/s``: the rows
  after it over the time after it, what a long run converges to;
- ``driver MB``: peak RSS of the process that calls ``score_folder`` (where every row lands);
- ``all MB``: peak of the summed PSS (shared pages split between their users, so Ray's object
  store is not counted once per worker) of that process and all its descendants: worker processes,
  or Ray's raylet, GCS and actors. Sampled every 0.25 s with psutil.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.speed_sprites import Sampler

ROOT = Path(__file__).resolve().parents[1]


def make_set(folder: Path, n: int, source: Path = ROOT / "examples") -> Path:
    """``folder`` with ``n`` symlinks cycling over ``source``'s PNGs (``00000_angry_01.png``, ...)."""
    files = sorted(source.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{source}: no PNG images to repeat")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = files[i % len(files)]
        (folder / f"{i:05d}_{src.name}").symlink_to(src.resolve())
    return folder


class PeakMemory(Sampler):
    """Samples this process's RSS and the summed PSS of its process tree in a thread; also notes when
    ``first_row_of`` (a results.jsonl) first holds a row."""

    sample_on_enter = False  # the first sample comes ``every_s`` in, as it always has

    def __init__(self, every_s: float = 0.25, first_row_of: Path | None = None) -> None:
        import psutil

        self._me = psutil.Process()
        self.driver_mb = self.tree_mb = 0.0
        self._watch, self.first_row_at = first_row_of, None
        super().__init__(every_s)

    def _sample(self) -> None:
        import psutil

        self.driver_mb = max(self.driver_mb, self._me.memory_info().rss / 2**20)
        total = 0
        for p in [self._me, *self._me.children(recursive=True)]:
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a worker that ended between listing and reading
        self.tree_mb = max(self.tree_mb, total / 2**20)
        w = self._watch
        if self.first_row_at is None and w is not None and w.exists() and w.stat().st_size > 0:
            self.first_row_at = time.perf_counter()


def child(engine: str, workers: int, images: Path, out: Path, detectors: str = "") -> dict[str, Any]:
    """One measured run (in its own process, so peaks are its own)."""
    from harmony_eval.runner import score_folder

    init_s = None
    with PeakMemory(first_row_of=out / "results.jsonl") as mem:
        if engine == "ray":
            import ray

            t0 = time.perf_counter()
            # As `--engine ray` without --ray-address, but sized to the requested workers.
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
            init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = score_folder(
            images, out, engine=engine, workers=workers, backend="anatomy", report=False, progress=False,
            detectors=detectors.split(",") if detectors else None,
        )  # fmt: skip
        t1 = time.perf_counter()
    dt, n = t1 - t0, s.n_scored
    first = (mem.first_row_at or t1) - t0
    return {
        "engine": engine, "workers": workers, "detectors": detectors, "images": n, "seconds": round(dt, 2),
        "images_per_s": round(n / dt, 2), "init_s": None if init_s is None else round(init_s, 1),
        "first_row_s": round(first, 1), "steady_per_s": round((n - 1) / (t1 - first - t0), 2) if n > 1 else None,
        "driver_mb": round(mem.driver_mb), "all_mb": round(mem.tree_mb),
    }  # fmt: skip


def _run_child(engine: str, workers: int, images: Path, out: Path, detectors: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", engine, str(workers), str(images), str(out), detectors]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode not in (0, 1):  # 1: some images failed, still a measurement
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| set | detectors | engine | workers | images | seconds | images/s | init s | first row s | steady img/s "
        "| driver MB | all MB |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['detectors'] or 'default'} | {r['engine']} | {r['workers']} | {r['images']} | {r['seconds']} | "
            f"{r['images_per_s']} | {r['init_s'] if r['init_s'] is not None else '-'} | "
            f"{r['first_row_s']} | {r['steady_per_s']} | "
            f"{r['driver_mb']} | {r['all_mb']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed-images", type=int, default=320, help="set size for the images/s rows (0: none)")
    ap.add_argument("--sizes", default="1000", help="set sizes for the memory rows (comma separated)")
    ap.add_argument("--memory-workers", type=int, default=2, help="workers for the memory rows")
    ap.add_argument(
        "--detectors", default="", help="detector cascade of the speed rows (default: the default)"
    )
    # Memory depends on how many rows there are, not on what found the faces: the cheap crop detector
    # keeps a 10k run within minutes on two cores.
    ap.add_argument("--memory-detectors", default="crop", help="detector cascade of the memory rows")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        engine, workers, images, out, detectors = a.child
        print(json.dumps(child(engine, int(workers), Path(images), Path(out), detectors)))
        return 0
    try:
        import ray  # noqa: F401
    except ImportError:
        print('ray_bench needs Ray: pip install "harmony-eval[ray]"', file=sys.stderr)
        return 2
    pairs = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)) if a.speed_images > 0 else ()
    plan = [("speed", a.speed_images, e, w, a.detectors) for e, w in pairs]
    for n in (int(x) for x in a.sizes.split(",") if x):
        plan += [("memory", n, e, a.memory_workers, a.memory_detectors) for e in ("local", "ray")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets: dict[int, Path] = {}
        for kind, n, engine, workers, detectors in plan:
            if n not in sets:
                sets[n] = make_set(Path(tmp) / f"set{n}", n)
            out = Path(tmp) / f"out_{kind}_{n}_{engine}_{workers}"
            r = {"set": kind, **_run_child(engine, workers, sets[n], out, detectors)}
            print(json.dumps(r), file=sys.stderr, flush=True)
            rows.append(r)
    print(_table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
