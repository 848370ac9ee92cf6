"""The measurement constants of the anatomy eyes / canvas, the tight-crop test, the box helpers and the
region proportions are frozen ``Params`` (issue 8): fixed unless replaced, every field read by the
code (a replaced field moves what is measured), and no measurement number left in a function body."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from functools import cache

import numpy as np
import pytest

from harmony_eval import regions
from harmony_eval.backends.anatomy import common, eyes
from harmony_eval.detect import _geometry, crop, crop_params
from harmony_eval.regions import face_regions
from harmony_eval.testing.render import render_face_info
from harmony_eval.types import Face

#: Modules whose function bodies are checked; crop's Params live in crop_params.
MODULES = (eyes, common, crop, crop_params, _geometry, regions)
PARAM_MODULES = (eyes, common, crop, _geometry, regions)


@cache
def _drawn(eyes_: str = "neutral", size: int = 384) -> tuple[np.ndarray, dict]:
    img, truth = render_face_info(eyes_, "neutral", "neutral", size=size, seed=0, style={"rotation": 0})
    return np.asarray(img), truth


def _canvas_eye(eyes_: str, p: common.Params = common.PARAMS):
    img, truth = _drawn(eyes_)
    cv = common.make_canvas(img, truth["face"], p)
    return cv, cv.to_canvas(truth["left_eye"])


def _tight_crop() -> np.ndarray:
    """The drawn face from a quarter down its box to a tenth above its chin, full face width: an
    image that is a face, as the TV crops the crop test is built for."""
    img, truth = _drawn()
    x0, y0, x1, y1 = truth["face"]
    top = y0 + (y1 - y0) // 4
    return np.ascontiguousarray(img[top : y1 - (y1 - y0) // 10, x0:x1])


@pytest.mark.parametrize("mod", PARAM_MODULES, ids=lambda m: m.__name__)
def test_params_are_frozen_and_have_a_default_instance(mod):
    p = mod.PARAMS
    assert isinstance(p, mod.Params) and dataclasses.is_dataclass(p)
    field = dataclasses.fields(p)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(p, field, 0)  # a measurement constant changes only through replace(), never in place
    assert dataclasses.replace(p) == p  # the defaults are plain values, comparable and copyable


@pytest.mark.parametrize("mod", PARAM_MODULES, ids=lambda m: m.__name__)
def test_every_field_is_read_by_its_module(mod):
    # a field no function reads would be a knob that turns nothing
    src = inspect.getsource(mod)
    unread = [
        f.name
        for f in dataclasses.fields(mod.Params)
        if not re.search(r"\b(p|params|PARAMS)\." + f.name + r"\b", src)
    ]
    assert unread == []


def test_eye_openness_line_moves_the_closed_reading():
    cv, box = _canvas_eye("neutral")
    base, _ = eyes.measure_eye(cv, box, inner_is_right=True)
    assert base["open"] > 0.4 and base["closed"] < 0.5  # a drawn open eye
    # move the closed -> open ramp above this eye's openness: the same drawing now reads closed
    lo = base["open"] + 0.05
    p = dataclasses.replace(eyes.PARAMS, closed_ramp=(lo, lo + 0.2))
    moved, _ = eyes.measure_eye(cv, box, inner_is_right=True, p=p)
    assert moved["closed"] == 1.0 > base["closed"]
    assert moved["open"] == base["open"]  # only the ramp moved, not the measured height


def test_eye_clip_bounds_the_openness():
    cv, box = _canvas_eye("surprised")
    base, _ = eyes.measure_eye(cv, box, inner_is_right=True)
    p = dataclasses.replace(eyes.PARAMS, max_open=base["open"] / 2)
    moved, _ = eyes.measure_eye(cv, box, inner_is_right=True, p=p)
    assert moved["open"] == pytest.approx(base["open"] / 2)


def test_canvas_margin_and_width_follow_params():
    img, truth = _drawn()
    base = common.make_canvas(img, truth["face"])
    wide = common.make_canvas(img, truth["face"], dataclasses.replace(common.PARAMS, margin=0.4))
    half = common.make_canvas(img, truth["face"], dataclasses.replace(common.PARAMS, face_px=128))
    assert wide.lab.shape[0] > base.lab.shape[0] and wide.lab.shape[1] > base.lab.shape[1]
    assert half.face[2] - half.face[0] == pytest.approx(128)
    assert base.face[2] - base.face[0] == pytest.approx(common.FACE_PX)
    # a larger black-hat kernel sees thicker strokes as darker than their surroundings
    big = common.make_canvas(img, truth["face"], dataclasses.replace(common.PARAMS, blackhat_kernel=21))
    assert float(big.blackhat.sum()) > float(base.blackhat.sum())


def test_canvas_error_names_the_least_face_size():
    img, _ = _drawn()
    with pytest.raises(ValueError, match="smaller than 12 px"):
        common.make_canvas(img, (10, 10, 20, 40), dataclasses.replace(common.PARAMS, min_face_px=12))


def test_crop_score_and_peak_line_follow_params():
    img = _tight_crop()
    [face] = crop.CropDetector().detect(img)
    assert face.score <= crop.PARAMS.max_score
    low = crop.CropDetector(params=dataclasses.replace(crop.PARAMS, max_score=0.1)).detect(img)
    assert len(low) == 1 and low[0].score < face.score and low[0].box == face.box
    # eyes must now be darker marks than any drawing has: the same crop is no face
    strict = dataclasses.replace(crop.PARAMS, min_peak=1000.0)
    assert crop.CropDetector(params=strict).detect(img) == []
    assert crop.Params is crop_params.Params  # crop re-exports its Params


def test_geometry_params_move_flatness_and_nms():
    img, _ = _drawn()
    base = _geometry.flat_share(img)
    stricter = _geometry.flat_share(img, p=dataclasses.replace(_geometry.PARAMS, flat_grad=2.0))
    assert stricter < base
    assert _geometry.flat_share(img, 2.0) == stricter  # an explicit argument overrides the field
    outer = Face((0, 0, 100, 100), 0.9, "x")
    inner = Face((0, 0, 60, 60), 0.5, "x")  # IoU 0.36, wholly inside the outer box
    assert _geometry.nms([outer, inner]) == [outer]
    loose = dataclasses.replace(_geometry.PARAMS, nms_inside=1.01)
    assert _geometry.nms([outer, inner], p=loose) == [outer, inner]


def test_region_proportions_follow_params():
    img, truth = _drawn()
    parts = {k: truth[k] for k in ("left_eye", "right_eye")}
    face = Face(tuple(truth["face"]), 0.9, "x", parts)
    base = face_regions(face, img.shape)
    higher = face_regions(face, img.shape, dataclasses.replace(regions.PARAMS, brow_above=2.0))
    assert higher["left_brow"][1] < base["left_brow"][1]  # the band reaches further above the eye
    lower = face_regions(face, img.shape, dataclasses.replace(regions.PARAMS, mouth_below_eyes=1.0))
    assert lower["mouth"][1] > base["mouth"][1]


# -- no measurement number inside a function ---------------------------------------------------------

#: Literals any function may hold: indices and counts (0, 1, 2), an identity factor or step (1),
#: the midpoint of two values (0.5), ``2 * r + 1`` kernel sides.
ANY = {0, 1, 2, 0.5}
#: ``(module, function, value)``: structural numbers of one function, each with its reason.
ALLOWED = {
    ("common", "make_canvas", 3): "a grey image becomes 3 RGB channels",
    ("common", "fill_holes", 4): "cv2.floodFill's mask is 2 px larger than the 1 px-padded image",
    ("common", "bend", 4): "a parabola (3 unknowns) needs at least 4 points to have a residual",
    ("crop", "CropDetector.detect", 3): "RGB images have 3 dimensions, grey ones 2",
    ("_geometry", "stretch_contrast", 255): "the uint8 value range 0-255 of the lookup table",
    ("_geometry", "stretch_contrast", 256): "the uint8 lookup table's length",
    ("_geometry", "make_view", 255): "white padding (255, 255, 255)",
}
#: Keyword arguments whose value is an OpenCV mode, not a measurement (8-connected components).
MODE_KEYWORDS = {"connectivity"}


def _numbers(src: str) -> list[tuple[str, int, float]]:
    """``(function, line, value)`` of every numeric literal in a function body or default of the
    source ``src``, leaving out subscripts (array positions and slices) and mode keywords."""
    tree = ast.parse(src)
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    out = []

    def owner(node):
        names, inside = [], False
        while node in parents:
            child, node = node, parents[node]
            if isinstance(node, ast.Subscript) and child is node.slice:
                return None
            if isinstance(node, ast.keyword) and node.arg in MODE_KEYWORDS:
                return None
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                inside = inside or isinstance(node, ast.FunctionDef)
                names.append(node.name)
        return ".".join(reversed(names)) if inside else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            fn = owner(node)
            if fn is not None:
                out.append((fn, node.lineno, node.value))
    return out


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_function_bodies_hold_no_measurement_numbers(mod):
    short = mod.__name__.rsplit(".", 1)[-1]
    found = [
        (fn, line, v)
        for fn, line, v in _numbers(inspect.getsource(mod))
        if v not in ANY and (short, fn, v) not in ALLOWED
    ]
    assert found == [], f"move these numbers into {short}.Params (function, line, value): {found}"


def test_the_literal_check_sees_numbers():
    # the check itself must catch a default and a threshold, and pass a subscript, a mode keyword
    # and a class-level field default
    src = (
        "class P:\n    limit: float = 0.9\n\n"
        "def f(x, y=0.3):\n    return x[3] > 0.7 and g(x, connectivity=8)\n"
    )
    assert sorted(v for _, _, v in _numbers(src)) == [0.3, 0.7]
