"""Score labelled images through the library's pipeline and keep what calibration needs: the backend's
``RegionPrediction`` (features + uncalibrated probabilities) and the uncalibrated output row.

Uses ``Scorer.iter_scored`` (prepare -> predict -> finish, keeping each stage's output) instead of
``harmony_eval.score`` because the rows alone lack the feature vectors. ``finish`` can be called again
later with calibrated predictions (``rescore``) to fit verdict thresholds: no detection, no encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """Run the uncalibrated pipeline over ``files``; one ``Scored`` per file, in order.

    The library's driver (``Scorer.iter_scored``: forkserver workers, backend batches) does the
    work; this module kept its own fork pool before, which can deadlock a child (see ``driver``)."""
    scorer = Scorer(backend=backend, emotions=emotions, detectors=detectors, **options)
    scorer.descriptors = True  # the learned readers fitted on these images read the crop descriptors
    files = list(files)
    it = scorer.iter_scored([(f, f) for f in files], workers=workers, batch=_BATCH)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(files), desc="scoring labelled images", unit="img")
    return scorer, [Scored(prep.path, prep, pred, row) for prep, pred, row in it]


def rescore(scorer: Scorer, item: Scored, pred: RegionPrediction | None) -> dict[str, Any]:
    """The output row of ``item`` with another (e.g. calibrated) prediction: agreement + verdict only."""
    return scorer.finish(item.prep, pred)
