"""Copies of one drawing among labelled images (``harmony_eval.copies``): calibrate keeps each set
on one side of every split, counts it as one labelled drawing and names copies labelled differently.

    groups = copy_groups(items)        # one int per scored item; copies of one drawing share it
"""

from __future__ import annotations

from collections.abc import Sequence

from harmony_eval.copies import groups_of_files, n_copies

__all__ = ["copy_groups", "disagreements", "n_copies"]


def copy_groups(items: Sequence, progress: bool = False) -> list[int]:
    """One group id per scored item (``calibration.features.Scored``), fingerprinted on its first face
    (``harmony_eval.copies``). Images the pipeline could not score are alone."""
    files = [None if s.prep.error is not None else s.file for s in items]
    faces = [tuple(s.prep.faces[0].box) if s.prep.faces else None for s in items]
    return groups_of_files(files, faces, progress, "looking for copies among labelled images")


def disagreements(groups: Sequence[int], rows: Sequence[dict], targets: Sequence[str]) -> list[dict]:
    """Copies labelled differently: ``{"files": [...], "target": t, "labels": [...]}`` per group and
    label column whose copies carry two or more labels (one drawing, one answer: a slip to check)."""
    out = []
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        if len(idx) < 2:
            continue
        for t in targets:
            labels = [rows[i].get(t) for i in idx]
            if len({v for v in labels if v is not None}) > 1:
                out.append({"files": [str(rows[i]["file"]) for i in idx], "target": t, "labels": labels})
    return out
