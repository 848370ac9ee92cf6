"""The sibling fallback's rows of the face-finding table (``benchmarks.face_finding --siblings``).

Per row (a source or a stress variant of it): found / hit with the fallback, how often it fired and
how often on a box that is not the true face; ``loo/<source>``: each image a real detector found,
taken as a miss in turn, against its siblings (how often the rule gives back a true box where it
can be checked); ``fp/sib_*``: images that are not siblings, taken as misses in every folder with
siblings (a white and a noise image of its canvas; every other source's sprites resized to it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: At most this many other drawings are tried per folder (every k-th, deterministic).
MAX_OTHERS = 60


def _members(entries: list) -> list:
    from harmony_eval.detect.siblings import Member

    out = []
    for group, label, sig, faces, _ in entries:
        box = tuple(faces[0].box) if faces else None
        out.append(Member(label, group, sig, box, faces[0].detector if faces else "none", label))
    return out


def _row(entries: list, p: Any) -> dict[str, Any]:
    from benchmarks.detection import hit
    from harmony_eval.detect.siblings import sibling_boxes

    got = sibling_boxes(_members(entries), p)
    n = len(entries)
    found = sum(bool(e[3]) for e in entries) + len(got)
    truths = [e for e in entries if e[4] is not None]
    hits, fired_miss = 0, 0
    for _, label, _, faces, truth in truths:
        if label in got:
            ok = hit([got[label][0]], truth)
            hits, fired_miss = hits + ok, fired_miss + (not ok)
        else:
            hits += hit([f.box for f in faces], truth)
    row: dict[str, Any] = {
        "n": n,
        "sib_found": round(found / n, 3),
        "fired": len(got),
        "fired_miss": fired_miss,
    }
    if truths:
        row["sib_hit"] = round(hits / len(truths), 3)
    return row


def _leave_one_out(entries: list, p: Any) -> dict[str, Any]:
    """Each real find taken as a miss: does its folder give it back a true box?"""
    from dataclasses import replace

    from benchmarks.detection import hit
    from harmony_eval.detect.siblings import sibling_box

    members = _members(entries)
    tried = fired = good = 0
    for m, e in zip(members, entries, strict=True):
        if m.detector not in p.detectors or e[4] is None:
            continue
        tried += 1
        miss = replace(m, box=None, detector="none")
        found = sibling_box(miss, [miss if x is m else x for x in members], p)
        if found is not None:
            fired, good = fired + 1, good + hit([found[0]], e[4])
    return {"tried": tried, "fired": fired, "hit": good}


def _false_positives(entries_by_row: dict[str, list], thumbs: list, p: Any) -> dict[str, Any]:
    """Non-siblings taken as misses in every folder (and canvas) where siblings exist."""
    import cv2

    from harmony_eval.detect.siblings import Member, sibling_box, signature

    rng = np.random.default_rng(0)
    out = {"sib_blank": [0, 0], "sib_noise": [0, 0], "sib_other": [0, 0]}  # [fired, tried]
    for src, entries in entries_by_row.items():
        if "/" in src:  # variants: the originals' folders are enough
            continue
        by_canvas: dict[tuple, list] = {}
        for m in _members(entries):
            by_canvas.setdefault((m.group, m.sig.shape), []).append(m)
        for (group, (h, w)), members in sorted(by_canvas.items(), key=lambda kv: str(kv[0])):
            if sum(m.detector in p.detectors for m in members) < p.min_siblings:
                continue
            others = [t for s, t in thumbs if s != src]
            step = max(1, len(others) // MAX_OTHERS)
            trials = [("sib_blank", np.full((h, w, 3), 255, np.uint8))]
            trials.append(("sib_noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
            trials += [
                ("sib_other", cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)) for t in others[::step]
            ]
            for kind, img in trials:
                miss = Member("<trial>", group, signature(img, p), None, "none", "<trial>")
                out[kind][0] += sibling_box(miss, [*members, miss], p) is not None
                out[kind][1] += 1
    return {f"fp/{k}": {"tried": t, "fired": f} for k, (f, t) in out.items()}


def sibling_rows(entries_by_row: dict[str, list], thumbs: list, p: Any = None) -> dict[str, Any]:
    """``{row: figures}``: ``sib/<row>`` per source and variant, ``loo/<source>``, ``fp/sib_*``.
    ``entries_by_row[row]``: ``[(group, label, Signature, faces, truth box or None)]``;
    ``thumbs``: ``[(source, small RGB copy)]`` of the originals; ``p``: the sibling test's constants
    (``detect.siblings.Params``, default its ``PARAMS``; the signatures must be made with the same)."""
    from harmony_eval.detect.siblings import PARAMS

    p = PARAMS if p is None else p
    out: dict[str, Any] = {}
    for key, entries in entries_by_row.items():
        out[f"sib/{key}"] = _row(entries, p)
        if "/" not in key:
            out[f"loo/{key}"] = _leave_one_out(entries, p)
    out.update(_false_positives(entries_by_row, thumbs, p))
    return out
