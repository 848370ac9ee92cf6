"""Stage 3, regions: one detected face -> boxes for eyes, brows, mouth and face.

    regions = face_regions(face, image.shape)
    regions["brows"]          # (x0, y0, x1, y1) or None
    regions.estimated         # e.g. {"left_brow", "right_brow", "brows"}: placed by proportion

Boxes a detector measured (``Face.parts``) are used as they are; missing ones are placed by anime
face proportions and listed in ``Regions.estimated`` so that later stages can tell a measured eye
from a guessed one. The proportions, and where they come from:

* **Brows** (no anime detector reports them): a band over each eye, from ``1.2 u`` above the eye's
  top edge to ``0.15 u`` below it, and 10 % of the eye width wider on each side, where
  ``u = max(eye height, 0.25 x face height)``. Measured brow tops sit 0.33-0.62 eye heights above
  the eye top on a layered dev character and 0.46-1.33 on the project renderer (the high end for raised
  brows over narrowed, smiling eyes, whose height shrinks: hence the face-height floor on ``u``).
  On 25 rendered faces (5 brow x 5 eye expressions, animeface boxes) this band holds on average
  88 % of the drawn brow box, >= 80 % of it for 84 % of the brows; the earlier 1.0 u / 0.2 floor
  held 53 %. Angry brows come down to the lid (0.03 eye heights above it), hence the overlap below.
  Anime brows often sit partly under the fringe: the band then holds hair, which the backends must
  tolerate; it is still where the brows are.
* **Eyes from the face box alone**: centres at 30 % / 70 % of the width and 48 % of the height,
  each 26 % x 20 % of the box. animeface boxes on the 28 dev sprites put eye centres at 25 % / 69 %
  and 40-51 % of the height, eye boxes 22-31 % of the width.
* **Mirror**: one eye missing -> the other reflected about the face's vertical centre line.
* **Mouth from the eyes**: centred 0.7 d below the eye centres (d = distance between the eye
  centres; measured 0.6 d on the sprites, 0.55-0.9 d on the tight dev crops, 0.82 d on the renderer),
  0.5 d wide and 0.4 d tall (room for an open mouth). **From the face box alone**: centre at 50 % /
  78 % (sprites: 51 % / 78 %), 30 % x 14 % of the box.

* **Measured boxes** are used as the detector gives them: a detector that is known to miss the
  drawn part fixes its own boxes (animeface grows its mouth boxes, see ``detect.animeface``).

All boxes are clipped to the image; a box that clips to nothing is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import Box, Face

#: Keys of the mapping :func:`face_regions` returns (the contract regions + the two brow halves).
REGION_KEYS: tuple[str, ...] = (
    "eyes",
    "left_eye",
    "right_eye",
    "brows",
    "left_brow",
    "right_brow",
    "mouth",
    "face",
)


@dataclass(frozen=True)
class Params:
    """The anime face proportions that place what a detector did not measure (the module docstring
    gives the measurements in full). Lengths are shares of the face box (``fw`` x ``fh``), of the eye
    box, or of ``d``, the distance between the eye centres. Vary one with
    ``dataclasses.replace(PARAMS, brow_above=1.0)`` and pass it as ``face_regions(..., p=...)``."""

    # Brows: a band over each eye, from ``brow_above`` u above the eye's top edge to ``brow_below`` u
    # below it, with ``u = max(eye height, brow_face_floor x face height)``.
    #: Top of the band (u above the eye top): brow tops sit 0.33-0.62 eye heights above it on a
    #: layered dev character, 0.46-1.33 on the renderer; 1.2 holds 88 % of 25 rendered brow boxes
    #: on average (1.0 with a 0.2 floor held 53 %).
    brow_above: float = 1.2
    #: Bottom of the band (u below the eye top): angry brows come down to the lid (0.03 eye heights).
    brow_below: float = 0.15
    #: Band widening on each side (share of the eye width): brow ends reach past the eye's corners.
    brow_widen: float = 0.10
    #: Least u (share of the face height): narrowed, smiling eyes shrink, raised brows over them do not.
    brow_face_floor: float = 0.25

    # Eyes from the face box alone (no eye measured); animeface boxes on the 28 dev sprites put eye
    # centres at 25 % / 69 % of the width and 40-51 % of the height, eye boxes 22-31 % of the width.
    #: Eye centres, viewer-left and viewer-right (shares of the face width).
    eye_x: tuple[float, float] = (0.30, 0.70)
    #: Eye centre height (share of the face height).
    eye_y: float = 0.48
    #: Eye box width (share of the face width).
    eye_w: float = 0.26
    #: Eye box height (share of the face height).
    eye_h: float = 0.20

    # Mouth from the two eyes (both measured).
    #: Mouth centre below the eye centres (d): 0.6 d on the sprites, 0.55-0.9 d on the tight dev
    #: crops, 0.82 d on the renderer.
    mouth_below_eyes: float = 0.7
    #: Mouth box width (d).
    mouth_w_eyes: float = 0.5
    #: Mouth box height (d): room for an open mouth.
    mouth_h_eyes: float = 0.4

    # Mouth from the face box alone (an eye estimated); sprites: centre at 51 % / 78 %.
    #: Mouth centre across (share of the face width).
    mouth_x: float = 0.50
    #: Mouth centre down (share of the face height).
    mouth_y: float = 0.78
    #: Mouth box width (share of the face width).
    mouth_w: float = 0.30
    #: Mouth box height (share of the face height).
    mouth_h: float = 0.14


PARAMS = Params()


class Regions(dict):
    """``{region: Box | None}`` with ``estimated``: the names placed by proportion, not measured."""

    def __init__(self, boxes: dict[str, Box | None], estimated: set[str] | frozenset[str] = frozenset()):
        super().__init__(boxes)
        self.estimated: frozenset[str] = frozenset(estimated)

    def measured(self, name: str) -> bool:
        """Whether region ``name`` has a box that a detector measured."""
        return self.get(name) is not None and name not in self.estimated


def face_regions(face: Face, image_shape: Sequence[int], p: Params = PARAMS) -> Regions:
    """Region boxes of ``face`` in an image of shape ``(H, W[, C])``; ``p``: the proportions.

    Returns a :class:`Regions` mapping with keys :data:`REGION_KEYS`. ``eyes`` is the union of both
    eyes, ``brows`` the union of both brow bands; ``left``/``right`` are the viewer's.
    """
    if len(image_shape) < 2 or min(image_shape[:2]) < 1:
        raise ValueError(f"`image_shape` must be (H, W[, C]) with H, W >= 1, got {tuple(image_shape)}.")
    shape = (int(image_shape[0]), int(image_shape[1]))
    fx0, fy0, fx1, fy1 = (float(v) for v in face.box)
    fw, fh = fx1 - fx0, fy1 - fy0
    if fw <= 0 or fh <= 0:
        raise ValueError(f"`face.box` must have x1 > x0 and y1 > y0, got {face.box}.")
    est: set[str] = set()
    boxes: dict[str, tuple[float, ...] | None] = {"face": face.box}

    left, right = face.parts.get("left_eye"), face.parts.get("right_eye")
    if left is not None and right is not None and _cx(left) > _cx(right):
        left, right = right, left  # a detector that named them from the character's side
    if left is None and right is None:
        for name, cx in zip(("left_eye", "right_eye"), p.eye_x, strict=True):
            x, y = fx0 + cx * fw, fy0 + p.eye_y * fh
            hw, hh = p.eye_w * fw / 2, p.eye_h * fh / 2
            boxes[name] = (x - hw, y - hh, x + hw, y + hh)
            est.add(name)
    else:
        boxes["left_eye"], boxes["right_eye"] = left, right
        if left is None or right is None:
            known, missing = (right, "left_eye") if left is None else (left, "right_eye")
            mid2 = fx0 + fx1  # reflect x about the face's centre line: x' = (fx0 + fx1) - x
            boxes[missing] = (mid2 - known[2], known[1], mid2 - known[0], known[3])
            est.add(missing)

    le, re = boxes["left_eye"], boxes["right_eye"]
    for side, eye in (("left_brow", le), ("right_brow", re)):
        if face.parts.get(side) is not None:
            boxes[side] = face.parts[side]
            continue
        ew, eh = eye[2] - eye[0], eye[3] - eye[1]
        u = max(eh, p.brow_face_floor * fh)
        boxes[side] = (
            eye[0] - p.brow_widen * ew,
            eye[1] - p.brow_above * u,
            eye[2] + p.brow_widen * ew,
            eye[1] + p.brow_below * u,
        )
        est.add(side)
    if face.parts.get("left_brow") is not None and face.parts.get("right_brow") is not None:
        lb, rb = face.parts["left_brow"], face.parts["right_brow"]
        if _cx(lb) > _cx(rb):
            boxes["left_brow"], boxes["right_brow"] = rb, lb

    if face.parts.get("mouth") is not None:
        boxes["mouth"] = face.parts["mouth"]
    else:
        est.add("mouth")
        if {"left_eye", "right_eye"} & est == set():
            d = max(1.0, _cx(re) - _cx(le))
            x, y = (_cx(le) + _cx(re)) / 2, (_cy(le) + _cy(re)) / 2 + p.mouth_below_eyes * d
            w, h = p.mouth_w_eyes * d, p.mouth_h_eyes * d
        else:
            x, y = fx0 + p.mouth_x * fw, fy0 + p.mouth_y * fh
            w, h = p.mouth_w * fw, p.mouth_h * fh
        boxes["mouth"] = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)

    out: dict[str, Box | None] = {k: _clip(boxes.get(k), shape) for k in REGION_KEYS if k in boxes}
    out["eyes"] = _union(out["left_eye"], out["right_eye"])
    out["brows"] = _union(out["left_brow"], out["right_brow"])
    # a union is only as measured as its least measured half
    if {"left_eye", "right_eye"} & est:
        est.add("eyes")
    if {"left_brow", "right_brow"} & est:
        est.add("brows")
    return Regions({k: out.get(k) for k in REGION_KEYS}, {k for k in est if out.get(k) is not None})


def _cx(b: Sequence[float]) -> float:
    return (b[0] + b[2]) / 2


def _cy(b: Sequence[float]) -> float:
    return (b[1] + b[3]) / 2


def _clip(b: Sequence[float] | None, shape: tuple[int, int]) -> Box | None:
    if b is None:
        return None
    h, w = shape
    x0, y0 = int(round(min(max(b[0], 0), w))), int(round(min(max(b[1], 0), h)))
    x1, y1 = int(round(min(max(b[2], 0), w))), int(round(min(max(b[3], 0), h)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
