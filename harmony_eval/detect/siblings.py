"""Face box from siblings: a batch-level fallback for images the detector cascade missed.

    sig = signature(rgb)                                   # per image, in the worker (cheap)
    boxes = sibling_boxes([Member(name, group, sig, box, detector), ...])   # {miss name: Box}

Sprite sets are expression variants of one drawing: same folder, same canvas, the same pixels
everywhere except the face. When the cascade finds no face in one of them but a real detector
(:data:`Params.detectors`: animeface / MediaPipe, not the tight-crop guess nor this rule) found
one in at least ``min_siblings`` of its siblings whose boxes agree, the miss gets their median box
(``Face.detector == "siblings"``; the row says so with the ``face_from_siblings`` flag). An image
counts as a sibling of the miss only when, on a small grey copy (:class:`Signature`), the pixels
outside the sibling's grown box are near-identical and the drawn silhouette there is the same, with
enough drawn art outside the box to make that evidence, and the miss's own box area is not blank.
Different drawings (SD generations of one prompt), a blank or noise image among faces, another
canvas size or another folder never pass. The decision reads only the group's members, sorted by
name, so the same set of images gives the same boxes whatever the order or the worker count.

A different head on an identical body and canvas (same pixels outside the grown box) passes: the
box is then still where that image's face is drawn.

Measured here (2026-12-02; ``python -m benchmarks.face_finding --siblings``, found / hit without ->
with; the constants were set before any run, then ``max_differ`` / ``max_silhouette`` /
``min_drawn_outside`` were re-based on the drawn pixels after the dialogic ``tall`` row, so
dialogic / renpy are not held out; seraphina, zundamon, tadne, shots, crops are):

| set | without | with | fired | fired, not the face |
| --- | --- | --- | --- | --- |
| dialogic (25) | 0.80 / 0.80 | 1.00 / 1.00 | 5 | 0 |
| dialogic tall / jpeg / chin | 0.80 / 0.80 / 0.84 | 1.00 / 1.00 / 0.88 | 5 / 5 / 1 | 0 |
| dialogic body / small (canvas per image) | 0.80 | 0.88 | 2 | 0 |
| renpy, seraphina, zundamon, tadne, shots, crops (+ variants) | unchanged | unchanged | 0 | 0 |

Each real find taken as a miss in turn (``loo``): seraphina 28 of 28 get a true box back, zundamon
15 / 15, dialogic 14 of 15, renpy 11 of 13; tadne tiles, screenshots and TV crops (different
drawings, or faces filling the canvas) 0 of 170, as they must. Non-siblings taken as misses in every
folder with siblings (both runs): a white image 0 of 15, noise 0 of 15, the other sources'
sprites resized to the canvas 0 of 842. ``benchmarks.validity --readers default`` (without -> with; the other sources'
rows do not move): permissive found 0.87 -> 1.00, balanced accuracy 0.47 -> 0.50, recall happy
0.80 -> 0.90, swap AUC 0.48 -> 0.50, ECE 0.15 -> 0.11; pooled found 0.94 -> 0.97.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..types import Box
from ._geometry import background_colour, iou

__all__ = [
    "DETECTOR",
    "FLAG",
    "PARAMS",
    "Member",
    "Params",
    "Signature",
    "sibling_box",
    "sibling_boxes",
    "signature",
    "wants_signature",
]

#: ``Face.detector`` / the row's ``detector`` of a face boxed from its siblings.
DETECTOR = "siblings"
#: The row flag that says so.
FLAG = "face_from_siblings"


@dataclass(frozen=True)
class Params:
    """The sibling test's constants. Grey levels 0-255; shares of pixels of the :class:`Signature`
    copy. They were set from what the test must tell apart, not fitted to any set: copies of one
    drawing differ by 0 outside the face (a JPEG or on-white copy by a few grey levels after the
    area-averaged downsampling), different drawings by tens of grey levels over most of the image.
    Vary with ``dataclasses.replace(PARAMS, ...)``."""

    #: Detectors whose boxes are evidence: they saw a face. ``crop`` guesses that the image is a
    #: face, and a box from siblings must not vouch for another.
    detectors: tuple[str, ...] = ("animeface", "mediapipe")
    #: Least number of agreeing siblings: one sibling's box could be the detector's slip.
    min_siblings: int = 2
    #: Least pairwise IoU of the siblings' boxes: expression variants move the detected box a little
    #: (the permissive Jane sprites: 0.75-0.81 between expressions), another drawing moves it more.
    min_iou: float = 0.7
    #: Long side (px) of the grey copy compared: a face of a full-body sprite stays ~10 px across.
    side: int = 128
    #: The box is grown by this share of its width / height on each side before the outside is
    #: compared: blush, sweat drops, hair tips and a jaw that opens move just outside the face box.
    grow: float = 0.35
    #: A pixel of the copy differs when its grey levels differ by more than this (JPEG q80 and
    #: on-white copies stay under ~6 after area averaging) ...
    tol: int = 20
    #: ... and at most this share of the drawn pixels outside the grown box (either image's) may
    #: differ (another drawing differs in most of them, the same one in none) ...
    max_differ: float = 0.02
    #: A pixel is drawn when some channel differs from the background (median colour of the top,
    #: left and right edges) by more than this (``Fallback.tol``) ...
    drawn_tol: int = 12
    #: ... and a pixel of the copy is drawn when this share of its image pixels are: a 1-2 px line
    #: of single-colour line art in a ~6 px cell counts (at 0.5 most of such a sprite vanishes) ...
    drawn_share: float = 0.2
    #: ... and the drawn silhouettes may disagree on at most this share of them.
    max_silhouette: float = 0.02
    #: Least share of the copy outside the grown box, and least share of the copy drawn there: a
    #: close-up whose face fills the canvas leaves nothing to compare, so it proves nothing.
    min_outside: float = 0.2
    min_drawn_outside: float = 0.01
    #: Least grey-level std inside the box on the miss (a blank or flat patch where the face is) ...
    min_box_std: float = 8.0
    #: ... and least share of the siblings' drawn pixels inside the box that the miss also has.
    min_box_drawn: float = 0.5

    def __post_init__(self) -> None:
        from . import DETECTORS  # the package is initialised before this module runs

        known = list(DETECTORS)
        bad = [d for d in self.detectors if d not in known]
        if bad or not self.detectors:
            raise ValueError(
                f"siblings.Params.detectors={list(self.detectors)}: expected detector names from {known}"
            )


PARAMS = Params()


@dataclass(frozen=True)
class Signature:
    """A small copy of one image for the sibling test. ``shape``: the image's ``(H, W)``;
    ``grey``: ``uint8 (h, w)`` area-averaged grey, long side ``Params.side``; ``drawn``:
    ``bool (h, w)``, the copy's pixels drawn (not background; ``Params.drawn_share``); ``scale``: copy px per image px."""

    shape: tuple[int, int]
    grey: np.ndarray
    drawn: np.ndarray
    scale: float


@dataclass(frozen=True)
class Member:
    """One image of a batch: ``name`` (unique; the path), ``group`` (its folder; ``None`` for
    in-memory images), its :class:`Signature`, and its main face's ``box`` and ``detector``
    (``None`` / ``"none"`` for a miss); ``key``: its content hash, which orders members (names
    of in-memory images follow the input order, contents do not)."""

    name: str
    group: str | None
    sig: Signature | None
    box: Box | None
    detector: str
    key: str = ""


def signature(image: np.ndarray, p: Params = PARAMS) -> Signature:
    """The :class:`Signature` of an RGB ``uint8 (H, W, 3)`` image (~1-3 ms for 1 MP)."""
    import cv2

    h, w = image.shape[:2]
    s = min(1.0, p.side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    ref = background_colour(image)
    drawn = (np.abs(image.astype(np.int16) - ref.astype(np.int16)) > p.drawn_tol).any(axis=2)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(drawn.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= p.drawn_share
    return Signature((h, w), small, mask, s)


def _in_copy(box: Box, sig: Signature, grow: float = 0.0) -> tuple[int, int, int, int]:
    """``box`` (image px), grown by ``grow`` of its size each side, in the copy's px, clipped."""
    x0, y0, x1, y1 = box
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    hh, ww = sig.grey.shape
    c = [(x0 - gx) * sig.scale, (y0 - gy) * sig.scale, (x1 + gx) * sig.scale, (y1 + gy) * sig.scale]
    return (
        int(np.clip(np.floor(c[0]), 0, ww)),
        int(np.clip(np.floor(c[1]), 0, hh)),
        int(np.clip(np.ceil(c[2]), 0, ww)),
        int(np.clip(np.ceil(c[3]), 0, hh)),
    )


def _same_outside(miss: Signature, sib: Signature, box: Box, p: Params) -> bool:
    """Whether ``miss`` and ``sib`` are one drawing outside ``box`` grown (see :class:`Params`).
    Shares are of the drawn pixels there (either image's), not of the whole outside: blank canvas
    is the same in any two sprites, so it must not dilute a difference (a full-body sprite on a
    2.5 x taller canvas would pass with 2.5 x more differing art)."""
    x0, y0, x1, y1 = _in_copy(box, sib, p.grow)
    outside = np.ones(sib.grey.shape, bool)
    outside[y0:y1, x0:x1] = False
    art = (miss.drawn | sib.drawn) & outside
    n = int(art.sum())
    if outside.sum() < p.min_outside * outside.size or n < p.min_drawn_outside * outside.size:
        return False  # too little drawn outside the face to say it is the same drawing
    differ = np.abs(miss.grey.astype(np.int16) - sib.grey.astype(np.int16)) > p.tol
    silhouette = miss.drawn != sib.drawn
    return bool((differ & art).sum() <= p.max_differ * n and (silhouette & art).sum() <= p.max_silhouette * n)


def _not_blank(miss: Signature, sibs: list[Member], box: Box, p: Params) -> bool:
    """Whether the miss has a drawn face area where its siblings have their faces."""
    x0, y0, x1, y1 = _in_copy(box, miss)
    patch = miss.grey[y0:y1, x0:x1]
    if patch.size == 0 or float(patch.std()) < p.min_box_std:
        return False
    theirs = float(np.median([m.sig.drawn[y0:y1, x0:x1].mean() for m in sibs if m.sig is not None]))
    return float(miss.drawn[y0:y1, x0:x1].mean()) >= p.min_box_drawn * theirs


def _agreeing(cands: list[Member], p: Params) -> list[Member]:
    """The largest set of ``cands`` (sorted by key, name) whose boxes agree pairwise: seeded at the box
    with the most agreeing others (first name on ties), grown in that order."""
    agree = {
        a.name: [b for b in cands if b is a or iou(a.box, b.box) >= p.min_iou]  # type: ignore[arg-type]
        for a in cands
    }
    order = sorted(cands, key=lambda m: (-len(agree[m.name]), m.key, m.name))
    clique: list[Member] = []
    for m in order:
        if all(iou(m.box, c.box) >= p.min_iou for c in clique):  # type: ignore[arg-type]
            clique.append(m)
    return sorted(clique, key=lambda m: (m.key, m.name))


def sibling_box(miss: Member, group: Iterable[Member], p: Params = PARAMS) -> tuple[Box, list[str]] | None:
    """The box ``miss`` gets from its siblings in ``group`` and their names, or ``None`` (see the
    module docstring). ``group``: members of the miss's folder, any order."""
    if miss.sig is None:
        return None
    cands = sorted(
        (
            m
            for m in group
            if m.name != miss.name
            and m.group == miss.group
            and m.sig is not None
            and m.sig.shape == miss.sig.shape
            and m.box is not None
            and m.detector in p.detectors
        ),
        key=lambda m: (m.key, m.name),
    )
    same = [m for m in cands if _same_outside(miss.sig, m.sig, m.box, p)]  # type: ignore[arg-type]
    sibs = _agreeing(same, p)
    if len(sibs) < p.min_siblings:
        return None
    med = np.median(np.array([m.box for m in sibs], dtype=float), axis=0)
    h, w = miss.sig.shape
    box = (
        int(np.clip(round(med[0]), 0, w)),
        int(np.clip(round(med[1]), 0, h)),
        int(np.clip(round(med[2]), 0, w)),
        int(np.clip(round(med[3]), 0, h)),
    )
    if box[2] - box[0] < 1 or box[3] - box[1] < 1 or not _not_blank(miss.sig, sibs, box, p):
        return None
    return box, [m.name for m in sibs]


def sibling_boxes(members: Iterable[Member], p: Params = PARAMS) -> dict[str, tuple[Box, list[str]]]:
    """``{name: (box, sibling names)}`` for every miss (``box is None``) of ``members`` that gets a
    box from its siblings (same ``group`` and canvas size; see :func:`sibling_box`)."""
    groups: dict[tuple, list[Member]] = {}
    for m in members:
        if m.sig is not None:
            groups.setdefault((m.group, m.sig.shape), []).append(m)
    out = {}
    for g in groups.values():
        for m in g:
            if m.box is None:
                found = sibling_box(m, g, p)
                if found is not None:
                    out[m.name] = found
    return out


def wants_signature(image: np.ndarray, detector: str, p: Params = PARAMS) -> Signature | None:
    """The image's :class:`Signature` where the sibling pass reads it (a miss, ``detector ==
    "none"``, or a real detector's find), else ``None`` (a tight-crop guess is neither)."""
    return signature(image, p) if detector == "none" or detector in p.detectors else None
