"""Copies of one drawing among images: calibrate keeps them on one side of every split, the review
page queues one of them.

    groups = groups_of_files(paths, face_boxes)   # one int per image; copies of one drawing share it

A sprite set often holds one drawing twice: the RGBA file and the same sprite flattened on white,
a PNG and its JPEG, a renamed duplicate. Labelled twice, such a pair lets a model that has seen one
copy in training "predict" the other in the test fold, and every cross-validated figure (model
choice, the report's hold-out or ``--cv`` figure, the learning curve, what ``score`` prints) is then
measured on data it was fitted on. Seen on the permissive sprites labelled with their on-white
copies (38 faces): ``calibrate --cv 5 --model full`` reported face balanced accuracy 0.94, the
same 19 sprites without the copies 0.57.

Two images are copies when they have the same size, their faces sit in near the same place (box IoU
>= ``MIN_IOU``) and, over the union of the face boxes grown by a quarter, no pixel of the two grey
copies (at most ``SIDE`` px a side, Gaussian blur of sigma 1 px) differs by more than ``MAX_DIFF``
levels (:func:`difference`). Two images without a face are copies only when their grey pixels are
the same: expressions of a full-body sprite differ in too few pixels of the whole image to compare
it loosely. Measured (grey 0-255) on the 38 permissive sprites: against its copy on white 0, as a
JPEG of quality 80 at most 7.5, of quality 50 at most 12.1; two different expressions of one sprite
(only the face changes), the nearest pairs of the permissive, seraphina and TV-crop sets, at least
52. ``MAX_DIFF`` is twice the largest copy's difference and under half the smallest non-copy's. A
copy whose face the detector boxes elsewhere (6 of 114 JPEG pairs at quality 50, 2 at 80) is not
matched: such images stay apart, as every image did before. Groups are the connected parts of the
copy relation. Images are read again for this (``load_image``; the scored items no longer hold their
pixels); about 0.4 ms a pair of same-sized images with faces in one place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .detect._geometry import iou, union_box
from .types import Box

#: face boxes of two copies overlap at least this much (the detector sees near the same pixels)
MIN_IOU = 0.8
#: share of the face box added on each side of the compared region
GROW = 0.25
#: compared regions are resized to at most this many pixels a side
SIDE = 128
#: a print keeps its face region at the scale that fits the whole image in this many px a side (a
#: 4k render's face would take tens of MB at full size; the comparison reads at most SIDE px anyway)
STORE = 1024
#: largest grey difference (0-255, after the blur) two copies may show anywhere in the region
MAX_DIFF = 24.0


@dataclass(frozen=True)
class _Print:
    shape: tuple[int, int]
    face: Box | None
    origin: tuple[int, int] = (0, 0)  # image pixel of grey[0, 0]
    #: uint8: the face box grown by 2 x GROW, the image scaled to <= STORE px (None without a face)
    grey: np.ndarray | None = None
    scale: float = 1.0  # grey pixels per image pixel
    digest: bytes = b""  # without a face: sha256 of the whole grey image


def _region(shape: tuple[int, int], box: Box | None, grow: float = GROW) -> Box:
    h, w = shape
    if box is None:
        return (0, 0, w, h)
    x0, y0, x1, y1 = box
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    return (
        max(0, int(x0 - gx)),
        max(0, int(y0 - gy)),
        min(w, int(np.ceil(x1 + gx))),
        min(h, int(np.ceil(y1 + gy))),
    )


def fingerprint(rgb: np.ndarray, face: Box | None) -> _Print:
    """What :func:`are_copies` compares: the grey pixels around the face (its box grown by twice
    :data:`GROW`, so a copy's slightly moved box still lies inside) at the scale that fits the image
    in :data:`STORE` px; without a face, a digest of the whole grey image."""
    import cv2

    h, w = rgb.shape[:2]
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    if face is not None:
        x0, y0, x1, y1 = _region((h, w), face, 2 * GROW)
        box = tuple(int(v) for v in face)
        crop, scale = grey[y0:y1, x0:x1], min(1.0, STORE / max(h, w))  # copies share a size: one scale
        if scale < 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        return _Print((h, w), box, (x0, y0), crop.copy(), scale)  # type: ignore[arg-type]
    # no face: nowhere to look closely (two expressions of a full-body sprite differ in a few pixels
    # of the whole image), so only the very same pixels make a copy (an RGBA file and its copy on white)
    return _Print((h, w), None, digest=hashlib.sha256(np.ascontiguousarray(grey).tobytes()).digest())


def _patch(p: _Print, region: Box) -> np.ndarray | None:
    """``region`` (image pixels) of ``p``'s grey pixels, ``None`` when it reaches outside them."""
    x0, y0, x1, y1 = region
    ox, oy = p.origin
    c0, r0 = int((x0 - ox) * p.scale), int((y0 - oy) * p.scale)
    c1, r1 = max(c0 + 1, round((x1 - ox) * p.scale)), max(r0 + 1, round((y1 - oy) * p.scale))
    if c0 < 0 or r0 < 0 or r1 > p.grey.shape[0] or c1 > p.grey.shape[1]:
        return None
    return p.grey[r0:r1, c0:c1]


def difference(a: _Print, b: _Print) -> float:
    """The largest grey difference between ``a`` and ``b`` over their compared region (see the
    module docstring); infinite when they cannot be copies (another size, the face elsewhere)."""
    import cv2

    if a.shape != b.shape or (a.face is None) != (b.face is None) or a.scale != b.scale:
        return float("inf")
    if a.face is None:  # faceless prints hold a digest of every pixel
        return 0.0 if a.digest == b.digest else float("inf")
    if iou(a.face, b.face) < MIN_IOU:  # type: ignore[arg-type]
        return float("inf")
    region = union_box([_region(a.shape, a.face), _region(b.shape, b.face)])
    pa, pb = _patch(a, region), _patch(b, region)
    if pa is None or pb is None:
        return float("inf")
    k = min(1.0, SIDE / max(pa.shape))
    size = (max(1, round(pa.shape[1] * k)), max(1, round(pa.shape[0] * k)))

    def prep(g: np.ndarray) -> np.ndarray:
        g = cv2.resize(g, size, interpolation=cv2.INTER_AREA) if k < 1.0 else g
        return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0)

    return float(np.abs(prep(pa) - prep(pb)).max())


def are_copies(a: _Print, b: _Print) -> bool:
    """``a`` and ``b`` show the same drawing (see the module docstring)."""
    return difference(a, b) <= MAX_DIFF


def groups_of(prints: Sequence[_Print | None]) -> list[int]:
    """Group ids (0, 1, ... in first-seen order): copies share one, an image without a print
    (unreadable) is alone."""
    parent = list(range(len(prints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_shape: dict[tuple, list[int]] = {}
    for i, p in enumerate(prints):
        if p is not None:
            by_shape.setdefault((p.shape, p.face is None), []).append(i)
    for members in by_shape.values():
        for j, a in enumerate(members):
            for b in members[j + 1 :]:
                if root(a) != root(b) and are_copies(prints[a], prints[b]):  # type: ignore[arg-type]
                    parent[root(b)] = root(a)
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(len(prints))]


def groups_of_files(
    files: Sequence[str | None],
    faces: Sequence[Box | None],
    progress: bool = False,
    desc: str = "looking for copies",
) -> list[int]:
    """One group id per image ``files[i]`` with main face box ``faces[i]`` (``None``: no face): each
    image is read again and fingerprinted. A ``None`` file (an image that could not be scored) and an
    unreadable one are alone."""
    from .imageio import ImageLoadError, load_image

    it = zip(files, faces, strict=True)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(files), desc=desc, unit="img")
    prints: list[_Print | None] = []
    for f, face in it:
        try:
            prints.append(None if f is None else fingerprint(load_image(f).rgb, face))
        except (ImageLoadError, OSError):
            prints.append(None)
    return groups_of(prints)


def n_copies(groups: Sequence[int]) -> int:
    """How many images are a copy of an earlier one (images minus groups)."""
    return len(groups) - len(set(groups))
