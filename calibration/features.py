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
    # the sibling test's view of each image, for a second decision (below): <= 32 KB an image
    members: dict = {}
    it = scorer.iter_scored([(f, f) for f in files], workers=workers, batch=_BATCH, members=members)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(files), desc="scoring labelled images", unit="img")
    items = [Scored(prep.path, prep, pred, row) for prep, pred, row in it]
    if scorer.siblings:
        items = _misses_from_whole_folders(scorer, items, members, workers, progress)
    return scorer, items


def _misses_from_whole_folders(
    scorer: Scorer, items: list[Scored], members: dict, workers: int, progress: bool
) -> list[Scored]:
    """``items`` with each miss scored as ``score`` over its whole folder would score it.

    The sibling pass (``harmony_eval.sibling_pass``) boxes a miss from the other images of its
    folder; labels usually cover a few of a folder's images, so the labelled ones alone can lack the
    2 siblings that ``score`` on the folder finds (or give a median of fewer boxes). For each folder
    holding such an image (no face, or a face from siblings) and images nobody labelled, those
    images (not its subfolders') go through detection once, and the sibling test decides again over
    the whole folder: the labelled images' ``members`` (the first pass's view, kept, so they are not
    detected twice) with the new ones'. A labelled miss is then scored on the box that decision gives
    it, or without a face when it gives none: calibrate, --suggest and score see the same faces.
    Costs one per-image pass over the unlabelled images of those folders, only when there are
    misses (detection is nearly all of it: 12 permissive sprites, anatomy backend, prepare 6.6 s, of
    it detection 5.9 s; predict 0.03 s); their own misses are not boxed or scored (nobody reads them)."""
    from harmony_eval.detect.siblings import DETECTOR, sibling_boxes
    from harmony_eval.driver import iter_members
    from harmony_eval.imageio import list_images
    from harmony_eval.sibling_pass import group_of, rescore_on_box

    # a miss, or a face boxed from the few labelled siblings (the folder's median box can differ)
    misses = [
        i
        for i, s in enumerate(items)
        if s.prep.error is None and (not s.prep.faces or s.prep.detector == DETECTOR)
    ]
    given = {os.path.abspath(s.file) for s in items}
    folders = {group_of(items[i].file) for i in misses} - {None}
    todo = [
        str(q)
        for g in sorted(folders)  # type: ignore[type-var]
        for q in list_images([g], recursive=False)
        if os.path.abspath(q) not in given
    ]
    if not todo:
        return items
    # only the sibling test's view of each is needed: none of them is boxed or scored again here
    it = iter_members(scorer, [(f, f) for f in todo], workers=workers, batch=_BATCH)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(todo), desc="unlabelled siblings of faceless images", unit="img")
    more = [m for m in it if m is not None]
    kept = [m for m in members.values() if m.group in folders]
    boxes = sibling_boxes(kept + more, scorer.measure_stage.params.siblings)
    out = list(items)
    for i in misses:
        s = items[i]
        found = boxes.get(s.prep.path)
        if found is not None:
            prep, pred, row = rescore_on_box(scorer, (s.file, s.prep.path), *found)
        elif s.prep.detector == DETECTOR:  # boxed from the labelled few, not from the whole folder
            prep = scorer.prepare(s.file, s.prep.path)
            prep.signature = prep.image = None
            pred, row = None, scorer.finish(prep, None)
        else:
            continue
        out[i] = Scored(s.file, prep, pred, {**row, "path": s.row.get("path", row["path"])})
    return out


def rescore(scorer: Scorer, item: Scored, pred: RegionPrediction | None) -> dict[str, Any]:
    """The output row of ``item`` with another (e.g. calibrated) prediction: agreement + verdict only."""
    return scorer.finish(item.prep, pred)
