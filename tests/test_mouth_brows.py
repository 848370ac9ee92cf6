"""Mouth teeth and brows under a fringe, on faces drawn by the project's renderer.

The renderer (``harmony_eval.testing.render``) draws gritted teeth as a white row inside the mouth's
outline and an open mouth with a pink tongue; strands of a fringe are painted over a brow here with
OpenCV (hair-coloured strips with a dark outline, as anime fringes are drawn). Boxes are loosened
as a detector gives them.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from harmony_eval.backends.anatomy import brows as brows_mod
from harmony_eval.backends.anatomy import measure_face, region_readings
from harmony_eval.backends.anatomy import mouth as mouth_mod
from harmony_eval.backends.anatomy.common import make_canvas
from harmony_eval.backends.anatomy.mapping import load_params
from harmony_eval.types import Face, FaceInput

render = pytest.importorskip("harmony_eval.testing.render")
HAIR, HAIR_LINE = (120, 80, 55), (50, 35, 25)


def _input(img: np.ndarray, boxes: dict, loose: float = 0.2) -> FaceInput:
    def grow(b):
        w, h = b[2] - b[0], b[3] - b[1]
        return (int(b[0] - loose * w), int(b[1] - loose * h), int(b[2] + loose * w), int(b[3] + loose * h))

    return FaceInput(img, Face(boxes["face"], 1.0, "render"), {k: grow(v) for k, v in boxes.items()})


def _face(brows: str = "neutral", mouth: str = "neutral", seed: int = 0, **kw) -> tuple[np.ndarray, dict]:
    img, boxes = render.render_face_info("neutral", brows, mouth, seed=seed, **kw)
    return np.asarray(img).copy(), boxes


def _fringe(img: np.ndarray, box, strands: int = 3, width: int = 2, solid: bool = False) -> np.ndarray:
    """Paint hair over a brow box: ``strands`` steep strips ``width`` px wide crossing it from above
    (the brow shows between them), or one solid lock hiding the whole band (``solid``)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h = y1 - y0
    if solid:
        cv2.rectangle(img, (x0 - 6, y0 - h), (x1 + 6, y1 + 2), HAIR, -1)
        return img
    for i in range(strands):
        xa = int(x0 + (i + 0.5) * (x1 - x0) / strands)
        pts = np.array(
            [[xa - width // 2, y0 - h], [xa + width // 2, y0 - h], [xa + width // 2 + 8, y1 + 4], [xa - width // 2 + 8, y1 + 4]],
            np.int32,
        )  # fmt: skip
        cv2.fillPoly(img, [pts], HAIR)
        cv2.polylines(img, [pts], True, HAIR_LINE, 3)
    return img


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_teeth_read_inside_gritted_mouth_not_in_tongue_or_line(seed):
    gritted = measure_face(_input(*_face(mouth="angry", seed=seed, mouth_shape="teeth"))).parts["mouth"]
    tongue = measure_face(_input(*_face(mouth="angry", seed=seed, mouth_shape="open"))).parts["mouth"]
    closed = measure_face(_input(*_face(seed=seed))).parts["mouth"]
    # the same opening, once filled with a white row of teeth, once with a pink tongue
    assert abs(gritted["open"] - tongue["open"]) < 0.02
    assert gritted["teeth"] > 0.1, gritted
    assert tongue["teeth"] < 0.05, tongue  # pink is not teeth
    assert closed["teeth"] == 0.0  # a closed line has no inside


def test_teeth_follow_their_params():
    img, boxes = _face(mouth="angry", mouth_shape="teeth")
    inp = _input(img, boxes)
    cv = make_canvas(inp.image, boxes["face"])
    box = cv.to_canvas(inp.regions["mouth"])
    kept, _ = mouth_mod.measure_mouth(cv, box)
    # no pixel is colourless enough when the chroma line is 0: the white row stops counting
    none, _ = mouth_mod.measure_mouth(cv, box, replace(mouth_mod.PARAMS, teeth_chroma=0.0))
    assert kept["teeth"] > 0.1 and none["teeth"] == 0.0
    assert {k: v for k, v in kept.items() if k != "teeth"} == {k: v for k, v in none.items() if k != "teeth"}


@pytest.mark.parametrize(("brows", "seed", "sign"), [("sad", 0, -1), ("sad", 1, -1), ("angry", 1, 1)])
def test_brow_found_between_thin_strands(brows, seed, sign):
    img, boxes = _face(brows=brows, seed=seed)
    bare = measure_face(_input(img, boxes)).parts["right_brow"]
    under = measure_face(_input(_fringe(img, boxes["right_brow"]), boxes)).parts["right_brow"]
    assert bare["visible"] > 0.9
    # strands crossing the brow are cut by the horizontal opening: the brow between them is read
    assert under["visible"] > 0.6, under
    assert sign * under["inner_drop"] > 0.15, under  # raised inner ends (sad) / the V (angry) kept
    assert abs(under["inner_drop"] - bare["inner_drop"]) < 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_brow_hidden_by_a_lock_gives_no_reading(seed):
    img, boxes = _face(brows="angry", seed=seed)
    for side in ("left_brow", "right_brow"):
        img = _fringe(img, boxes[side], solid=True)
    m = measure_face(_input(img, boxes))
    assert m.parts["right_brow"]["visible"] < 0.1 and m.parts["left_brow"]["visible"] < 0.1
    # nothing to read: the brows reading flattens to uniform instead of reading the hair
    p = region_readings(load_params(None), m.features, ["neutral", "happy", "sad", "angry"])["brows"]
    assert max(p.values()) - min(p.values()) < 0.02, p


def test_brows_follow_their_params():
    img, boxes = _face(brows="sad")
    inp = _input(img, boxes)
    cv = make_canvas(inp.image, boxes["face"])
    box = cv.to_canvas(inp.regions["right_brow"])
    seen, _ = brows_mod.measure_brow(cv, box, False, None, None)
    # a contrast line above any stroke's darkness: no brow passes
    blind, _ = brows_mod.measure_brow(cv, box, False, None, None, p=replace(brows_mod.PARAMS, bh_min=500.0))
    assert seen["visible"] > 0.9 and blind["visible"] == 0.0
