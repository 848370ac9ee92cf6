"""Scoring on a Ray cluster (``--engine ray``): Ray Data actor pools in place of the local process pool.

The image paths become a Ray dataset; ``map_batches`` runs them through one or two actor pools:

1. CPU actors (``num_cpus=1``) load, detect and cut regions (``Scorer.prepare``). With the offline
   ``anatomy`` backend, which costs about as much as detection, they finish the whole row
   (``Scorer.score_one``) and there is no second stage.
2. Model actors (``num_gpus=1`` each when the cluster has GPUs, else one CPU) build the CLIP / tagger
   backend once in their constructor and turn batches of prepared images into rows
   (``Scorer.score_batch``: predict + finish).

Actors return rows, as JSON text (``runner.dumps_row``), and, for the sibling pass
(``sibling_pass``), each image's signature and main face without its pixels; the driver decides which
misses take their siblings' box and scores those again itself, as the local runner does (the driver
then builds the backend too). The driver writes every row, so a retried task cannot write one twice,
and it puts them back into input order before yielding them, so ``results.jsonl`` holds the same bytes
as a local run on the same inputs. Every path must be readable
at the same name on every node (a local disk for one machine, NFS or another shared mount for many).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .driver import init_worker_process
from .pipeline import Scorer

log = logging.getLogger(__name__)
INSTALL_HINT = 'pip install "harmony-eval[ray]"'
# Images per Ray row (a chunk): the unit of scheduling, of retry and of writing (rows reach the driver a
# chunk at a time, so a killed run loses at most a chunk per actor). 16: ~2-3 s of work per chunk on a core.
_MAX_CHUNK = 16


def require_ray() -> None:
    """Raise ``ValueError`` (the CLI's exit code 2) saying how to install Ray when it is missing."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ValueError(
            f"--engine ray needs Ray Data, which is not installed ({e}); install it with: {INSTALL_HINT}"
        ) from None


@dataclass
class RayOptions:
    """How the Ray engine uses the cluster. Zero means "decide from the cluster's resources"."""

    address: str | None = None  # None: start a local Ray; "auto": join the cluster `ray start` made
    workers: int = 0  # CPU actors for load + detect (0: the cluster's CPUs not taken by model actors)
    model_workers: int = 0  # model actors (0: one per GPU, or one on a CPU-only cluster)
    retries: int = 3  # per task, for user exceptions (e.g. CUDA OOM); Ray itself restarts dead actors
    split: bool | None = None  # two stages even with anatomy (None: only for model backends)
    predict_batch: int = 16  # images per model call, as the local runner's batches


def _sighted(preps: list[Any], siblings: bool) -> bytes:
    """What the driver's sibling pass needs of a chunk's prepared images (``sibling_pass``: path,
    key, main face, detector, error, signature), without their pixels; nothing when it is off."""
    from .pipeline import Prepared

    if not siblings:
        return pickle.dumps([], protocol=5)
    light = [
        Prepared(
            path=p.path,
            key=p.key,
            faces=p.faces[:1],
            detector=p.detector,
            error=p.error,
            signature=p.signature,
        )
        for p in preps
    ]
    return pickle.dumps(light, protocol=5)


class _PrepareActor:
    """Stage 1 (CPU): one Scorer per actor. Each dataset row is a chunk of image paths (JSON list);
    it becomes the chunk's JSONL rows (``full``) or its pickled list of ``Prepared`` images."""

    def __init__(self, scorer: Scorer, full: bool) -> None:
        init_worker_process()  # an actor per core: one thread each, as the local pool's workers
        self.scorer, self.full = scorer, full

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .runner import dumps_row

        out, sighted = [], []
        for chunk in batch["paths"]:
            jobs = json.loads(chunk)  # [[absolute path, row name], ...]
            preps = [self.scorer.prepare(p, n) for p, n in jobs]
            if self.full:
                out.append(
                    "".join(dumps_row(self.scorer.finish(q, self.scorer.predict([q])[0])) for q in preps)
                )
                sighted.append(_sighted(preps, self.scorer.siblings))
            else:
                # Pickle between our own actors, as the local process pool does: a Prepared holds the
                # decoded image and the faces (numpy arrays), which Arrow columns cannot hold as is.
                out.append(pickle.dumps(preps, protocol=5))
        if not self.full:
            return {"idx": batch["idx"], "prep": np.array(out, dtype=object)}
        return {
            "idx": batch["idx"],
            "rows": np.array(out, dtype=object),
            "sighted": np.array(sighted, dtype=object),
        }


class _PredictActor:
    """Stage 2 (GPU when there is one): the backend is built once, here, not once per batch."""

    def __init__(self, scorer: Scorer) -> None:
        init_worker_process()
        self.scorer = scorer
        self.scorer.backend  # noqa: B018 -- load the model at actor start, not inside the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .runner import dumps_row

        rows, sighted = [], []
        for b in batch["prep"]:
            preps = pickle.loads(b)
            rows.append("".join(map(dumps_row, self.scorer.score_batch(preps))))
            sighted.append(_sighted(preps, self.scorer.siblings))
        return {
            "idx": batch["idx"],
            "rows": np.array(rows, dtype=object),
            "sighted": np.array(sighted, dtype=object),
        }


def _quiet_console() -> None:
    """Ray Data logs each dataset's plan at INFO on the console (its log files keep everything);
    the runner's bar and summary already say what runs, so the console gets warnings only."""
    for h in logging.getLogger("ray.data").handlers:
        # the console one is a StreamHandler subclass (PlainRayHandler); the session log file is not
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setLevel(logging.WARNING)
            h.addFilter(lambda r: not r.getMessage().startswith("Progress bars disabled"))


def _connect(opts: RayOptions) -> bool:
    """Join or start Ray; True when this call started it (and so must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(
            # no address: a fresh local Ray, never a cluster a stale /tmp/ray/ray_current_cluster
            # names (a `ray start` from days ago made every test here try to join it)
            address=opts.address or "local",
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ValueError(
            f"--ray-address {opts.address!r}: could not join a Ray cluster ({e}). Start one with "
            "`ray start --head`, or leave --ray-address out to run Ray on this machine."
        ) from None
    return True


def _plan(scorer: Scorer, opts: RayOptions, n_jobs: int) -> tuple[bool, int, int, float]:
    """``(split, cpu_actors, model_actors, gpus_per_model_actor)`` from the cluster's resources."""
    import ray

    res = ray.cluster_resources()
    cpus, gpus = int(res.get("CPU", 1)), int(res.get("GPU", 0))
    split = (not scorer.batch_in_worker) if opts.split is None else opts.split
    model = (opts.model_workers or max(gpus, 1)) if split else 0
    gpu_each = 1.0 if split and gpus else 0.0
    left = cpus - (0 if gpu_each else model)  # model actors on CPU take a core each
    cpu_actors = opts.workers or max(1, left)
    return split, max(1, min(cpu_actors, n_jobs)), max(0, min(model, n_jobs)), gpu_each


def ray_rows(scorer: Scorer, jobs: list[tuple[Any, str]], opts: RayOptions) -> Iterator[dict[str, Any]]:
    """Rows for ``jobs`` (``(path, name)`` pairs, names used as row paths) in input order.

    Starts (or joins) Ray on the first ``next()``; a Ray it started is shut down when iteration ends.
    A task that still fails after ``opts.retries`` retries raises ``RuntimeError``; rows yielded before
    it stay valid (the runner has written them), so a rerun resumes after them.
    """
    if not jobs:
        return
    require_ray()
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    scorer.detectors  # noqa: B018 -- bad detector options fail here, and a missing model warns once
    started = _connect(opts)
    _quiet_console()
    ctx = DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "retried_map_errors", "max_map_retries")}
    try:
        ctx.enable_progress_bars = False  # the runner's tqdm bar counts rows; two bars would fight
        ctx.retried_map_errors, ctx.max_map_retries = True, opts.retries
        split, n_cpu, n_model, gpu_each = _plan(scorer, opts, len(jobs))
        log.info("ray: %d CPU actor(s), %d model actor(s), %s GPU each", n_cpu, n_model, gpu_each)
        # Chunks small enough that every actor gets several (load balance, cheap retries).
        size = max(1, min(_MAX_CHUNK, math.ceil(len(jobs) / (4 * n_cpu))))
        if split:
            # One chunk = one model batch = 16 consecutive images, as the local runner batches them:
            # a batched encoder then sees the same batches, so it returns the same floats.
            size = opts.predict_batch
        # Absolute paths to read (an actor's working folder is not the driver's on another node); rows
        # keep the names the runner gave them.
        pairs = [[os.path.abspath(item), name] for item, name in jobs]
        chunks = [
            {"idx": c, "paths": json.dumps(pairs[i : i + size])}
            for c, i in enumerate(range(0, len(pairs), size))
        ]
        ds = ray.data.from_items(chunks, override_num_blocks=len(chunks))
        ds = ds.map_batches(
            _PrepareActor,
            fn_constructor_kwargs={"scorer": scorer, "full": not split},
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=n_cpu),
            num_cpus=1,
            udf_modifying_row_count=False,
        )
        if split:
            ds = ds.map_batches(
                _PredictActor,
                fn_constructor_kwargs={"scorer": scorer},
                batch_size=1,
                batch_format="numpy",
                compute=ActorPoolStrategy(size=n_model),
                num_gpus=gpu_each,
                num_cpus=0 if gpu_each else 1,
                udf_modifying_row_count=False,
            )
        rows = _in_order(ds.iter_rows(), len(chunks), len(jobs))
        if scorer.siblings:  # as the local runner: a folder's misses may take their siblings' box
            from .sibling_pass import with_siblings

            yield from (row for _, _, row in with_siblings(scorer, jobs, rows, in_order=False))
        else:
            yield from (row for _, _, row in rows)
    except ray.exceptions.RayError as e:
        raise RuntimeError(
            f"Ray scoring failed after {opts.retries} retries ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "the rows written so far are kept: rerun the same command to resume."
        ) from e
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        if started:
            ray.shutdown()


def _in_order(chunks: Iterator[dict[str, Any]], n_chunks: int, n: int) -> Iterator[tuple[Any, None, dict]]:
    """``(sighted, None, row)`` for the images of chunks 0 to n_chunks-1 (``sighted``: the light
    ``Prepared`` the sibling pass reads, ``None`` when it is off), each chunk as soon as it is next;
    chunks arrive in any order, and a retried task may send one twice (only the first counts)."""
    waiting: dict[int, tuple[str, list]] = {}
    nxt = done = 0
    for c in chunks:
        i = int(c["idx"])
        if i >= nxt:
            waiting.setdefault(i, (c["rows"], pickle.loads(c["sighted"])))
        while nxt in waiting:
            text, sighted = waiting.pop(nxt)
            for k, line in enumerate(text.splitlines()):  # JSON escapes newlines inside a row
                yield (sighted[k] if sighted else None), None, json.loads(line)
                done += 1
            nxt += 1
    if nxt != n_chunks or done != n:
        raise RuntimeError(f"Ray returned rows for {done} of {n} images; rerun the same command to resume.")
