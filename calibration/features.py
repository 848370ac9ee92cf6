"""Score labelled images through the library's pipeline and keep what calibration needs: the backend's
``RegionPrediction`` (features + uncalibrated probabilities) and the uncalibrated output row.

Uses ``harmony_eval.pipeline.Scorer`` stage by stage (prepare -> predict -> finish) instead of
``harmony_eval.score`` because the rows alone lack the feature vectors. ``finish`` can be called again
later with calibrated predictions (``rescore``) to fit verdict thresholds: no detection, no encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from harmony_eval.pipeline import Prepared, Scorer
from harmony_eval.types import RegionPrediction

_BATCH = 16  # images per backend call (CLIP encodes all their crops together)


@dataclass
class Scored:
    """One labelled image after the pipeline. ``prep.image`` is dropped once the backend has run."""

    file: str
    prep: Prepared
    pred: RegionPrediction | None
    row: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.pred is not None and self.row.get("status") == "ok"


_WORKER: Scorer | None = None


def _init(scorer: Scorer) -> None:
    global _WORKER
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    _WORKER = scorer


def _prepare(file: str) -> tuple[Prepared, RegionPrediction | None, bool]:
    """Worker: load + detect (+ the backend when it is cheap per image, as the runner does)."""
    assert _WORKER is not None
    prep = _WORKER.prepare(file, file)
    if _WORKER.batch_in_worker:
        pred = _WORKER.predict([prep])[0]
        prep.image = None
        return prep, pred, True
    return prep, None, False


def _prepared(scorer: Scorer, files: Sequence[str], workers: int) -> Iterator[tuple[Prepared, Any, bool]]:
    if workers > 1 and len(files) > 1:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(scorer,)) as pool:
            yield from pool.map(_prepare, files, chunksize=1)
    else:
        for f in files:
            yield scorer.prepare(f, f), None, False


def score_images(
    files: Sequence[str],
    *,
    backend: str = "auto",
    emotions: list[str] | None = None,
    detectors: list[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    **options: Any,
) -> tuple[Scorer, list[Scored]]:
    """Run the uncalibrated pipeline over ``files``; one ``Scored`` per file, in order."""
    scorer = Scorer(backend=backend, emotions=emotions, detectors=detectors, **options)
    out: list[Scored] = []
    pending: list[Prepared] = []

    def flush() -> None:
        preds = scorer.predict(pending)
        for prep, pred in zip(pending, preds, strict=True):
            prep.image = None
            out.append(Scored(prep.path, prep, pred, scorer.finish(prep, pred)))
        pending.clear()

    it = _prepared(scorer, list(files), workers)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(files), desc="scoring labelled images", unit="img")
    for prep, pred, done in it:
        if done:
            out.append(Scored(prep.path, prep, pred, scorer.finish(prep, pred)))
            continue
        pending.append(prep)
        if len(pending) >= _BATCH:
            flush()
    if pending:
        flush()
    return scorer, out


def rescore(scorer: Scorer, item: Scored, pred: RegionPrediction | None) -> dict[str, Any]:
    """The output row of ``item`` with another (e.g. calibrated) prediction: agreement + verdict only."""
    return scorer.finish(item.prep, pred)
