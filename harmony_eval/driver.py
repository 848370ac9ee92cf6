"""The one driver of prepare -> predict -> finish over many images, in input order, optionally in
worker processes: ``Scorer.iter_scored`` (the runner, ``harmony_eval.score``, calibration and the
dev evaluation all use it).

Workers load, detect and cut regions; when the backend is cheap per image (``batch_in_worker``, the
anatomy one) they run it and finish the row too, else the main process batches the prepared images
through the backend (CLIP: one encoder call for the crops of ``batch`` images). Each yielded
``Prepared`` has its pixels dropped (``image=None``) unless ``keep_images``: a long run must not
hold every decoded image. ``Prepared.predict_s`` is the backend time charged to that image.

With ``face_from_siblings`` (the default) the rows then pass through ``sibling_pass``: a miss waits
until every image of its folder is prepared, then may be scored again on its siblings' face box.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from .runguard import ignore_sigint_in_worker, stop_pool_on_exit

if TYPE_CHECKING:
    from .pipeline import Prepared, Scorer
    from .types import RegionPrediction

Scored = tuple["Prepared", "RegionPrediction | None", dict[str, Any]]
_WORKER: Scorer | None = None


def init_worker_process() -> None:
    """Set up a process that scores beside others (a pool worker here, a Ray actor in ``ray_engine``):
    one OpenMP / OpenCV thread and no second missing-MediaPipe-model warning."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    from . import detect

    cv2.setNumThreads(1)  # one process per core already; nested threads only contend
    detect.suppress_mediapipe_warning()  # the parent already warned about a missing model, once


def _init_worker(scorer: Scorer) -> None:
    global _WORKER
    ignore_sigint_in_worker()
    init_worker_process()
    _WORKER = scorer


def _complete(scorer: Scorer, item: Any, name: str | None) -> Scored:
    """Prepare, predict and finish one image (the backend is cheap: no batching to gain)."""
    prep = scorer.prepare(item, name)
    t0 = time.perf_counter()
    pred = scorer.predict([prep])[0]
    prep.predict_s = time.perf_counter() - t0 if pred is not None else 0.0
    return prep, pred, scorer.finish(prep, pred)


def _work(job: tuple[Any, str | None]) -> Scored | Prepared:
    assert _WORKER is not None
    if _WORKER.batch_in_worker:
        prep, pred, row = _complete(_WORKER, *job)
        prep.image = None  # the parent needs the row and features, not the pixels back
        return prep, pred, row
    return _WORKER.prepare(*job)


def _jobs(items: Iterable[Any]) -> list[tuple[Any, str | None]]:
    """``(item, name)`` pairs: items may already be pairs (``pipeline.iter_inputs``); a bare path is
    named by itself, an in-memory image by ``prepare``'s default."""
    out = []
    for it in items:
        if isinstance(it, tuple) and len(it) == 2 and (it[1] is None or isinstance(it[1], str)):
            out.append((it[0], it[1]))
        else:
            out.append((it, None))
    return out


def iter_scored(
    scorer: Scorer,
    items: Iterable[Any],
    workers: int = 1,
    batch: int = 16,
    keep_images: bool = False,
    in_order: bool = True,
    members: dict | None = None,
) -> Iterator[Scored]:
    """``(prepared, prediction, row)`` per item, in input order; see the module docstring.
    ``in_order=False``: faces found stream at once, misses follow their folder's last image;
    ``members``: filled with the sibling test's view of each image (``sibling_pass.with_siblings``).

    ``workers > 1`` uses a forkserver process pool (in-memory images need ``workers=1``: they are
    not sent to workers). ``batch``: images per backend call in the main process."""
    if batch < 1:
        raise ValueError(f"`batch` must be >= 1, got {batch}")
    jobs = _jobs(items)
    if getattr(scorer, "siblings", False):  # misses boxed from siblings once their folder is done
        from .sibling_pass import with_siblings

        it = _iter_jobs(scorer, jobs, workers, batch, keep_images)
        return with_siblings(scorer, jobs, it, keep_images, in_order=in_order, members=members)
    return _iter_jobs(scorer, jobs, workers, batch, keep_images)


def iter_members(scorer: Scorer, items: Iterable[Any], workers: int = 1, batch: int = 16) -> Iterator[Any]:
    """The sibling test's view of each item (``sibling_pass.Member``, or ``None`` for an unreadable
    image or a tight-crop guess), from the per-image pass alone: no miss is boxed or scored again.
    For a caller that decides over a larger set itself (``calibration.features``)."""
    from .sibling_pass import group_of, member

    jobs = _jobs(items)
    for (item, _), (prep, _pred, _row) in zip(
        jobs, _iter_jobs(scorer, jobs, workers, batch, False), strict=True
    ):
        yield member(prep, group_of(item))


def _iter_jobs(
    scorer: Scorer, jobs: list[tuple[Any, str | None]], workers: int, batch: int, keep_images: bool
) -> Iterator[Scored]:
    """The per-image pass of :func:`iter_scored`."""
    pending: list[Prepared] = []

    def flush() -> Iterator[Scored]:
        t0 = time.perf_counter()
        preds = scorer.predict(pending)
        share = (time.perf_counter() - t0) / max(1, sum(p is not None for p in preds))
        for prep, pred in zip(pending, preds, strict=True):
            prep.predict_s = share if pred is not None else 0.0
            row = scorer.finish(prep, pred)
            if not keep_images:
                prep.image = None
            yield prep, pred, row
        pending.clear()

    if workers > 1 and len(jobs) > 1:
        if any(not isinstance(item, (str, os.PathLike)) for item, _ in jobs):
            raise ValueError("in-memory images cannot go to worker processes; use workers=1")
        scorer.detectors  # noqa: B018 -- build once here: bad detector options fail now, warnings print once
        # forkserver, not fork: forking a process that already runs MediaPipe / BLAS threads can
        # deadlock the child on a lock held by a thread that does not exist there (seen here: a
        # 2-worker test run hung with both children idle).
        ctx = multiprocessing.get_context(
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        with (
            ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_init_worker, initargs=(scorer,)
            ) as pool,
            stop_pool_on_exit(pool),  # Ctrl-C / SIGTERM: terminate the workers, do not wait for them
        ):
            for out in pool.map(_work, jobs, chunksize=1):
                if isinstance(out, tuple):
                    yield out
                else:
                    pending.append(out)
                    if len(pending) >= batch:
                        yield from flush()
    else:
        for item, name in jobs:
            if scorer.batch_in_worker:
                prep, pred, row = _complete(scorer, item, name)
                if not keep_images:
                    prep.image = None
                yield prep, pred, row
            else:
                pending.append(scorer.prepare(item, name))
                if len(pending) >= batch:
                    yield from flush()
    yield from flush()
