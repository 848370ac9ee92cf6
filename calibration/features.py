"""Score labelled images through the library's pipeline and keep what calibration needs: the backend's
``RegionPrediction`` (features + uncalibrated probabilities) and the uncalibrated output row.

Uses ``Scorer.iter_scored`` (prepare -> predict -> finish, keeping each stage's output) instead of
``harmony_eval.score`` because the rows alone lack the feature vectors. ``finish`` can be called again
later with calibrated predictions (``rescore``) to fit verdict thresholds: no detection, no encoder.
"""

from __future__ import annotations

import os
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
    items = [Scored(prep.path, prep, pred, row) for prep, pred, row in it]
    if scorer.siblings:
        items = _misses_from_whole_folders(scorer, items, workers, progress)
    return scorer, items


def _misses_from_whole_folders(
    scorer: Scorer, items: list[Scored], workers: int, progress: bool
) -> list[Scored]:
    """``items`` with each miss scored as ``score`` over its whole folder would score it.

    The sibling pass (``harmony_eval.sibling_pass``) boxes a miss from the other images of its
    folder; labels usually cover a few of a folder's images, so the labelled ones alone can lack the
    2 siblings that ``score`` on the folder finds (or give a median of fewer boxes). Each folder
    holding such an image (no face, or a face from siblings) and images nobody labelled is scored
    whole once more (its own images, not its subfolders') and those images' rows are taken from
    there: calibrate, --suggest and score then see the same faces. Costs one scoring of those
    folders, only when there are misses. Detection is nearly all of that cost (12 permissive sprites,
    anatomy backend: prepare 6.6 s, of it detection alone 5.9 s; predict 0.03 s; finish ~0), so a pass
    that only detects the unlabelled siblings (no measurement, no predict) was not built: it would
    save about a tenth. What a second pass does spend twice is the detection of the folder's
    labelled images (their signatures are dropped after the first pass); that matters only where
    most of a folder is labelled, and then the folder has few unlabelled images to add."""
    from harmony_eval.detect.siblings import DETECTOR
    from harmony_eval.imageio import list_images
    from harmony_eval.sibling_pass import group_of

    # a miss, or a face boxed from the few labelled siblings (the folder's median box can differ)
    misses = [
        i
        for i, s in enumerate(items)
        if s.prep.error is None and (not s.prep.faces or s.prep.detector == DETECTOR)
    ]
    given = {os.path.abspath(s.file) for s in items}
    folders: dict[str, list[str]] = {}
    for i in misses:
        g = group_of(items[i].file)
        if g is not None and g not in folders:
            folders[g] = [str(q) for q in list_images([g], recursive=False)]
    todo = [f for g, fs in folders.items() if any(os.path.abspath(f) not in given for f in fs) for f in fs]
    if not todo:
        return items
    it = scorer.iter_scored([(f, f) for f in todo], workers=workers, batch=_BATCH)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(todo), desc="folders of faceless labelled images", unit="img")
    wanted = {os.path.abspath(items[i].file): i for i in misses}
    out = list(items)
    for prep, pred, row in it:
        i = wanted.get(os.path.abspath(prep.path))
        if i is not None:
            out[i] = Scored(items[i].file, prep, pred, {**row, "path": items[i].row.get("path", row["path"])})
    return out


def rescore(scorer: Scorer, item: Scored, pred: RegionPrediction | None) -> dict[str, Any]:
    """The output row of ``item`` with another (e.g. calibrated) prediction: agreement + verdict only."""
    return scorer.finish(item.prep, pred)
