"""The driver's sibling pass: misses of a batch boxed from their siblings, after the per-image pass.

    for prep, pred, row in with_siblings(scorer, jobs, scored):   # scored: the per-image pass, in order
        ...

``Scorer.prepare`` runs per image in worker processes, so a face cannot come from the other images
there. The per-image pass gives each miss and each real detector find a small copy
(``Prepared.signature``, ``detect.siblings``); here, in the parent, once every image of a miss's
folder has been prepared, ``detect.siblings.sibling_boxes`` decides over that folder, and a miss
that gets a box is prepared again with that face forced (load, regions, measurement), predicted and
finished, so the measurement stage and the backend read the new face as any other. Rows still come
out in input order: a miss waits until its folder is complete (folders are listed contiguously by
``list_images``, so little waits). The decision reads the whole folder, so neither the input order
nor the worker count changes a row. ``ScorerConfig.detection.face_from_siblings=False`` (CLI
``--no-face-from-siblings``) skips it. Under ``--engine ray`` the actors return, beside each row, a
pixel-free ``Prepared`` (``ray_engine._sighted``) and the driver runs this pass over them.
With ``keep_images`` the rows held behind a miss keep their pixels until its folder is done.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .detect.siblings import DETECTOR, Member, sibling_boxes
from .types import Face

if TYPE_CHECKING:
    from .pipeline import Prepared, Scorer
    from .types import RegionPrediction

Scored = tuple["Prepared", "RegionPrediction | None", dict[str, Any]]
#: The group of in-memory images (no folder): one call's arrays are compared with each other.
_MEMORY = None


def group_of(item: Any) -> str | None:
    """A path's folder (absolute), or ``None`` for an in-memory image."""
    if isinstance(item, (str, os.PathLike)):
        return os.path.dirname(os.path.abspath(os.fspath(item)))
    return _MEMORY


def member(prep: Prepared, group: str | None) -> Member | None:
    """What the sibling test reads of one image of the per-image pass (``None``: unreadable, or no
    signature: a tight-crop guess)."""
    if prep.error is not None or prep.signature is None:
        return None
    box = tuple(prep.faces[0].box) if prep.faces else None
    return Member(prep.path, group, prep.signature, box, prep.detector, prep.key)  # type: ignore[arg-type]


def with_siblings(
    scorer: Scorer,
    jobs: list[tuple[Any, str | None]],
    scored: Iterator[Scored],
    keep_images: bool = False,
    in_order: bool = True,
    members: dict[str, Member] | None = None,
) -> Iterator[Scored]:
    """``scored`` (one ``(prepared, prediction, row)`` per job, in job order) with every miss that
    gets a box from its siblings scored again on that box; see the module docstring.

    ``members``: filled with each image's :class:`Member` of the per-image pass (by name), for a
    caller that decides again over a larger set later (``calibration.features``); only the folders
    holding a miss keep theirs once complete (<= 32 KB an image), the others' are dropped.

    ``in_order=False`` (the runner, which writes rows as they come): a face found is yielded at once
    and only the misses wait for their folder, yielded when it is complete, so a folder of many
    misses (generated images without a face, noise) still streams rows, progress and a resumable
    results file instead of holding everything until the folder's last image. The order stays a
    function of the input list: the misses of a folder follow its last image."""
    groups = [group_of(item) for item, _ in jobs]
    left = Counter(groups)
    by_group: dict[str | None, list[Member]] = {}
    boxes: dict[str | None, dict[str, tuple]] = {}
    held: deque[tuple[int, Scored, bool]] = deque()  # (job index, scored, is a miss)
    for i, out in enumerate(scored):
        g = groups[i]
        m = member(out[0], g)
        if m is not None:
            by_group.setdefault(g, []).append(m)
            if members is not None:
                members[m.name] = m
        out[0].signature = None  # the member keeps it; yielded rows need not carry it
        left[g] -= 1
        if left[g] == 0:  # the folder is complete: decide over all of it, once
            done = by_group.pop(g, [])
            boxes[g] = sibling_boxes(done, scorer.measure_stage.params.siblings)
            if members is not None and all(d.box is not None for d in done):
                for d in done:  # no miss here: nobody decides over this folder again
                    members.pop(d.name, None)
        miss = m is not None and m.box is None
        if in_order or miss:
            held.append((i, out, miss))
        else:  # a face found goes at once, ahead of the misses its folder is holding
            yield out
        if in_order:  # a miss waits for its folder; the rows behind it wait for it
            while held and _ready(held[0], groups, left):
                yield _release(scorer, jobs, held.popleft(), groups, boxes, keep_images)
        else:  # only misses wait (held holds no more than the misses of unfinished folders)
            waiting: deque[tuple[int, Scored, bool]] = deque()
            for h in held:
                if _ready(h, groups, left):
                    yield _release(scorer, jobs, h, groups, boxes, keep_images)
                else:
                    waiting.append(h)
            held = waiting


def _ready(h: tuple[int, Scored, bool], groups: list, left: Counter) -> bool:
    """A held row can go: it is not a miss, or its folder is complete (its siblings are decided)."""
    return not h[2] or left[groups[h[0]]] == 0


def _release(
    scorer: Scorer, jobs: list, h: tuple[int, Scored, bool], groups: list, boxes: dict, keep_images: bool
) -> Scored:
    """The held row ``h`` as it goes out: rescored on its siblings' box when the folder gave it one."""
    j, done, miss = h
    found = boxes.get(groups[j], {}).get(done[0].path) if miss else None
    return done if found is None else rescore_on_box(scorer, jobs[j], *found, keep_images)


def rescore_on_box(
    scorer: Scorer, job: tuple[Any, str | None], box: tuple, names: list[str], keep_images: bool = False
) -> Scored:
    """Prepare ``job`` again with the siblings' box as its face, then predict and finish it."""
    # score 0: no detector scored this box; it is the median of the siblings' boxes
    prep = scorer.prepare(job[0], job[1], face=Face(tuple(box), 0.0, DETECTOR))  # type: ignore[arg-type]
    prep.metadata["face_from_siblings"] = list(names)
    t0 = time.perf_counter()
    pred = scorer.predict([prep])[0]
    prep.predict_s = time.perf_counter() - t0 if pred is not None else 0.0
    row = scorer.finish(prep, pred)
    if not keep_images:
        prep.image = None
    return prep, pred, row
