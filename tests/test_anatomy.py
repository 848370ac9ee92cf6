"""Anatomy backend on faces drawn in the test: directions that must hold, quality, mapping maths.

Faces are flat skin with dark strokes (anime line art), drawn with OpenCV by ``draw_face`` below, or
by the project's renderer (``harmony_eval.testing.render``) with loosened boxes as a detector would give.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from harmony_eval.backends.anatomy import FEATURE_NAMES, AnatomyBackend, measure_face
from harmony_eval.backends.anatomy.mapping import fit_params, load_params, region_probs, save_params
from harmony_eval.quality import mouth_visible, sharpness
from harmony_eval.types import Face, FaceInput

ALL = ["neutral", "happy", "sad", "angry", "surprised"]
FOUR = ALL[:4]
SKIN = (255, 226, 205)
INK = (60, 40, 40)
MOUTH_IN = (170, 60, 70)


def draw_face(
    eyes: str = "open",
    brows: str = "flat",
    mouth: str = "flat",
    size: int = 512,
    gray: bool = False,
    blur: float = 0.0,
) -> FaceInput:
    """Draw a face. eyes: open | arcs_up | arcs_down | none; brows: flat | v | sad | none;
    mouth: flat | smile | frown | round | grin | none. ``size`` is the image side in px."""
    s = size / 512
    img = np.full((size, size, 3), 255, np.uint8)
    cx, cy = size // 2, int(280 * s)
    cv2.ellipse(img, (cx, cy), (int(190 * s), int(220 * s)), 0, 0, 360, SKIN, -1)
    cv2.ellipse(img, (cx, cy), (int(190 * s), int(220 * s)), 0, 0, 360, INK, max(1, int(4 * s)))
    t = max(1, int(6 * s))
    eye_y = int(260 * s)
    for ex in (int(175 * s), int(337 * s)):
        if eyes == "open":
            cv2.ellipse(img, (ex, eye_y), (int(32 * s), int(42 * s)), 0, 0, 360, (90, 60, 50), -1)
            cv2.circle(img, (ex - int(10 * s), eye_y - int(14 * s)), int(9 * s), (255, 255, 255), -1)
            cv2.ellipse(img, (ex, eye_y - int(10 * s)), (int(48 * s), int(36 * s)), 0, 200, 340, INK, t + 2)
        elif eyes == "arcs_up":  # ^ ^: middle higher than the ends
            cv2.ellipse(img, (ex, eye_y + int(12 * s)), (int(42 * s), int(26 * s)), 0, 180, 360, INK, t)
        elif eyes == "arcs_down":  # u u
            cv2.ellipse(img, (ex, eye_y - int(12 * s)), (int(42 * s), int(26 * s)), 0, 0, 180, INK, t)
    brow_y = int(185 * s)
    for side, ex in ((-1, int(175 * s)), (1, int(337 * s))):
        inner_x, outer_x = ex - side * int(40 * s), ex + side * int(40 * s)
        # side -1 is the viewer-left brow: its inner end (towards the nose) is its right end.
        if brows == "flat":
            dy_in, dy_out = 0, 0
        elif brows == "v":
            dy_in, dy_out = int(18 * s), int(-12 * s)
        elif brows == "sad":
            dy_in, dy_out = int(-18 * s), int(10 * s)
        else:
            continue
        cv2.line(img, (inner_x, brow_y + dy_in), (outer_x, brow_y + dy_out), INK, t + 1)
    my, mw = int(400 * s), int(50 * s)
    if mouth == "flat":
        cv2.line(img, (cx - int(22 * s), my), (cx + int(22 * s), my), INK, max(1, int(4 * s)))
    elif mouth == "smile":
        cv2.ellipse(img, (cx, my - int(20 * s)), (mw, int(26 * s)), 0, 20, 160, INK, max(1, int(5 * s)))
    elif mouth == "frown":
        cv2.ellipse(img, (cx, my + int(20 * s)), (mw, int(26 * s)), 0, 200, 340, INK, max(1, int(5 * s)))
    elif mouth == "round":
        cv2.ellipse(img, (cx, my), (int(24 * s), int(28 * s)), 0, 0, 360, MOUTH_IN, -1)
        cv2.ellipse(img, (cx, my), (int(24 * s), int(28 * s)), 0, 0, 360, INK, max(1, int(4 * s)))
    elif mouth == "grin":  # D-shaped laugh: flat top, deep round bottom
        cv2.ellipse(img, (cx, my - int(15 * s)), (mw, int(40 * s)), 0, 0, 180, MOUTH_IN, -1)
        cv2.ellipse(img, (cx, my - int(15 * s)), (mw, int(40 * s)), 0, 0, 180, INK, max(1, int(4 * s)))
        cv2.line(img, (cx - mw, my - int(15 * s)), (cx + mw, my - int(15 * s)), INK, max(1, int(4 * s)))
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if gray:
        img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    face_box = (cx - int(190 * s), cy - int(220 * s), cx + int(190 * s), cy + int(220 * s))

    def box(x, y, w, h):
        return (int(x - w / 2), int(y - h / 2), int(x + w / 2), int(y + h / 2))

    le, re = box(175 * s, eye_y, 120 * s, 110 * s), box(337 * s, eye_y, 120 * s, 110 * s)
    lb, rb = box(175 * s, brow_y, 120 * s, 70 * s), box(337 * s, brow_y, 120 * s, 70 * s)
    regions = {
        "face": face_box,
        "left_eye": le,
        "right_eye": re,
        "eyes": (le[0], le[1], re[2], re[3]),
        "left_brow": lb,
        "right_brow": rb,
        "brows": (lb[0], lb[1], rb[2], rb[3]),
        "mouth": box(cx, my - 5 * s, 150 * s, 100 * s),
    }
    return FaceInput(img, Face(face_box, 1.0, "drawn"), regions, f"{eyes}-{brows}-{mouth}")


@pytest.fixture(scope="module")
def backend() -> AnatomyBackend:
    return AnatomyBackend()


def read(backend: AnatomyBackend, inp: FaceInput, emotions: list[str] = ALL):
    return backend.predict([inp], emotions)[0]


def test_smile_reads_happier_than_frown(backend):
    up = read(backend, draw_face(mouth="smile")).probs["mouth"]
    down = read(backend, draw_face(mouth="frown")).probs["mouth"]
    assert up["happy"] > down["happy"] + 0.2  # corners drawn up vs down
    assert down["sad"] > up["sad"]  # a frown is the sad mouth
    assert max(up, key=up.get) == "happy"


def test_v_brows_read_angrier_and_raised_inner_ends_sadder(backend):
    flat = read(backend, draw_face(brows="flat")).probs["brows"]
    v = read(backend, draw_face(brows="v")).probs["brows"]
    sad = read(backend, draw_face(brows="sad")).probs["brows"]
    assert v["angry"] > flat["angry"] + 0.2  # inner ends pulled down into a V
    assert sad["sad"] > flat["sad"] + 0.2  # inner ends raised
    assert max(v, key=v.get) == "angry" and max(sad, key=sad.get) == "sad"


def test_closed_up_arcs_read_happier_than_open_eyes(backend):
    arcs = read(backend, draw_face(eyes="arcs_up")).probs
    open_ = read(backend, draw_face(eyes="open")).probs
    assert arcs["eyes"]["happy"] > open_["eyes"]["happy"] + 0.2  # ^^ is the anime smile
    assert arcs["left_eye"]["happy"] > open_["left_eye"]["happy"]  # and per eye
    assert max(open_["eyes"], key=open_["eyes"].get) == "neutral"  # plain open eyes rest


def test_round_open_mouth_reads_surprised_only_when_in_vocabulary(backend):
    o = read(backend, draw_face(mouth="round")).probs["mouth"]
    flat = read(backend, draw_face(mouth="flat")).probs["mouth"]
    assert o["surprised"] > flat["surprised"] + 0.2  # O-shaped opening
    four = read(backend, draw_face(mouth="round"), FOUR).probs["mouth"]
    assert set(four) == set(FOUR) and abs(sum(four.values()) - 1) < 1e-9


def test_grin_reads_happy(backend):
    p = read(backend, draw_face(mouth="grin")).probs["mouth"]
    assert max(p, key=p.get) == "happy"  # D-shaped open laugh


def test_missing_mouth_is_not_visible_but_a_short_line_is(backend):
    none = read(backend, draw_face(mouth="none"))
    line = read(backend, draw_face(mouth="flat"))
    assert none.quality["mouth_visible"] < 0.3  # nothing drawn there
    assert none.probs["mouth"] is None
    assert line.quality["mouth_visible"] > 0.6  # a short closed line is a mouth
    inp = draw_face(mouth="none")
    assert mouth_visible(inp.image, inp.face.box, inp.regions["mouth"]) < 0.3  # standalone helper agrees


def test_missing_eyes_and_boxes_give_none(backend):
    p = read(backend, draw_face(eyes="none"))
    assert p.quality["eyes_visible"] < 0.3 and p.probs["eyes"] is None
    inp = draw_face()
    inp.regions = {**inp.regions, "mouth": None, "left_brow": None, "right_brow": None, "brows": None}
    q = read(backend, inp)
    assert q.probs["mouth"] is None and q.probs["brows"] is None
    assert q.probs["face"] is None  # the pipeline pools the regions itself


def test_hidden_brows_give_a_flat_reading(backend):
    p = read(backend, draw_face(brows="none")).probs["brows"]
    assert max(p.values()) - min(p.values()) < 0.05  # no brow stroke: no opinion, not noise


def test_blur_lowers_sharpness():
    sharp = draw_face().image
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    assert sharpness(sharp) > 0.8  # clean line art
    assert sharpness(blurred) < 0.25  # sigma 3 at 512 px is blurry (verdict line 0.25)
    assert sharpness(np.full((64, 64, 3), 200, np.uint8)) < 0.1  # blank


def test_grayscale_and_small_faces_read_the_same_direction(backend):
    for kw in ({"gray": True}, {"size": 160}):
        up = read(backend, draw_face(mouth="smile", **kw)).probs["mouth"]
        down = read(backend, draw_face(mouth="frown", **kw)).probs["mouth"]
        assert up["happy"] > down["happy"], kw  # no colour / small size must not flip the reading


@pytest.mark.parametrize("emotions", [ALL, FOUR, ["happy", "sad"], ["surprised", "neutral", "angry"]])
def test_probabilities_sum_to_one_for_any_vocabulary(backend, emotions):
    pred = read(backend, draw_face(eyes="arcs_up", brows="v", mouth="round"), emotions)
    for region, p in pred.probs.items():
        if p is not None:
            assert list(p) == emotions, region  # the given order
            assert abs(sum(p.values()) - 1.0) < 1e-9, region


def test_features_are_fixed_length_and_finite(backend):
    for inp in (draw_face(), draw_face(eyes="none", brows="none", mouth="none")):
        pred = read(backend, inp)
        for region, names in FEATURE_NAMES.items():
            assert pred.feature_names[region] == names
            assert pred.features[region].shape == (len(names),)
            assert np.isfinite(pred.features[region]).all(), region
        assert set(pred.quality) >= {"sharpness", "eyes_visible", "mouth_visible"}
        assert all(0.0 <= v <= 1.0 for v in pred.quality.values())


def test_backend_refuses_other_backends_options():
    # it used to accept and ignore any keyword, so a misspelt option passed without a word
    with pytest.raises(TypeError, match="clip_model"):
        AnatomyBackend(clip_model="ViT-B-32")


def test_params_json_round_trip_is_exact(tmp_path):
    params = load_params()
    params.models["mouth"].coef[1][2] = 0.1 + 0.2  # a float with a long repr
    path = tmp_path / "p.json"
    save_params(params, path)
    back = load_params(path)
    assert back == params  # every float identical
    assert json.loads(path.read_text())["source"]


def test_bad_params_file_names_the_problem(tmp_path):
    params = load_params().to_dict()
    params["models"]["eyes"]["scale"] = params["models"]["eyes"]["scale"][:-1]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"bad.json: models.eyes.scale has shape \(10,\), expected \(11,\)"):
        load_params(path)


def test_subset_vocabulary_takes_matching_rows_and_renormalises():
    params = load_params()
    x = np.array(params.models["mouth"].mean) + np.array(params.models["mouth"].scale) * 0.7
    full = region_probs(params, "mouth", x, ALL)
    sub = region_probs(params, "mouth", x, ["sad", "happy"])
    expect = full[[2, 1]] / full[[2, 1]].sum()
    np.testing.assert_allclose(sub, expect, rtol=1e-12)  # same logits, renormalised
    with pytest.raises(ValueError, match="fear"):
        region_probs(params, "mouth", x, ["happy", "fear"])


def test_fit_params_recovers_a_separable_toy_problem():
    rng = np.random.default_rng(0)
    n = 60
    labels = ["happy"] * n + ["sad"] * n + ["angry"] * n
    centres = {"happy": [2.0, 0.0], "sad": [-2.0, 0.0], "angry": [0.0, 3.0]}
    x = np.array([centres[lab] for lab in labels]) + 0.3 * rng.standard_normal((3 * n, 2))
    params = fit_params({"mouth": x}, labels, {"mouth": ["a", "b"]}, ["neutral", "happy", "sad", "angry"])
    guess = [FOUR[int(np.argmax(region_probs(params, "mouth", row, FOUR)))] for row in x]
    assert np.mean([g == t for g, t in zip(guess, labels, strict=True)]) > 0.97  # separable
    # neutral had no example: it gets an intercept below the others, so it is rarely chosen
    assert params.models["mouth"].intercept[0] < min(params.models["mouth"].intercept[1:])


def test_measure_face_handles_only_group_boxes():
    inp = draw_face(eyes="arcs_up", brows="v")
    inp.regions = {k: v for k, v in inp.regions.items() if k in ("eyes", "brows", "mouth")}
    m = measure_face(inp)
    assert m.parts["left_eye"] is not None and m.parts["right_brow"] is not None  # halves of "eyes"/"brows"
    assert m.parts["left_eye"]["closed"] > 0.5  # the arcs are still found


def _renderer_input(eyes, brows, mouth, seed=0):
    render = pytest.importorskip("harmony_eval.testing.render")
    img, boxes = render.render_face_info(eyes, brows, mouth, seed=seed)

    def loosen(b, f=0.2):  # detector boxes are looser than the drawn ones
        w, h = b[2] - b[0], b[3] - b[1]
        return (int(b[0] - f * w), int(b[1] - f * h), int(b[2] + f * w), int(b[3] + f * h))

    regions = {k: loosen(v) for k, v in boxes.items()}
    return FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "render"), regions)


@pytest.mark.parametrize("seed", [0, 1])
def test_renderer_mouths_read_their_emotion(backend, seed):
    for emo in ALL:
        p = read(backend, _renderer_input("neutral", "neutral", emo, seed)).probs["mouth"]
        assert max(p, key=p.get) == emo, (emo, p)  # the renderer draws each mouth by the conventions


def test_renderer_brows_v_angrier_than_raised_inner(backend):
    angry = read(backend, _renderer_input("neutral", "angry", "neutral")).probs["brows"]
    sad = read(backend, _renderer_input("neutral", "sad", "neutral")).probs["brows"]
    assert angry["angry"] > sad["angry"] and sad["sad"] > angry["sad"]


def test_faint_thin_short_mouth_counts_as_drawn(backend):
    # Soft-shaded art draws resting mouths as short faint strokes whose darkest bit is one end
    # (seraphina's closed mouths): here a 30 px line (8 % of the 380 px face), 2 px thick and ~10 L*
    # darker than the skin, with a darker 5 px tip at its left end.
    inp = draw_face(mouth="none")
    img = inp.image.copy()
    cx, my = 256, 400
    cv2.line(img, (cx - 15, my), (cx + 15, my), (228, 196, 178), 2)
    cv2.line(img, (cx - 15, my), (cx - 11, my), (150, 100, 95), 3)
    p = read(backend, FaceInput(img, inp.face, inp.regions, "faint"))
    assert p.quality["mouth_visible"] > 0.5, p.quality  # the whole faint line is the mouth
    assert p.probs["mouth"] is not None
    blank = read(backend, inp)
    assert blank.quality["mouth_visible"] < 0.3  # bare skin is not


def test_mouth_below_a_high_detector_box_is_still_found(backend):
    inp = draw_face(mouth="flat")
    x0, y0, x1, y1 = inp.regions["mouth"]
    # Detector boxes on tight crops sat up to a box height above small mouths drawn near the chin.
    # Here the box is shrunk to the upper part of the drawn one, its bottom 25 px above the line.
    inp.regions = {**inp.regions, "mouth": (x0 + 30, y0 - 20, x1 - 30, y0 + 25)}
    p = read(backend, inp)
    assert p.quality["mouth_visible"] > 0.5, p.quality  # found below the box


def test_upper_lash_line_is_not_read_as_a_brow(backend):
    inp = draw_face(eyes="none", brows="none")
    img = inp.image.copy()
    for ex in (175, 337):  # open eyes with a thin (3 px) upper lash line clear of the iris; no brows
        cv2.ellipse(img, (ex, 275), (24, 30), 0, 0, 360, (90, 60, 50), -1)
        cv2.ellipse(img, (ex, 258), (46, 30), 0, 200, 340, INK, 3)
    # Brow bands reach down over the eye's top (regions.py: 0.15 u below it), where the lash line lies.
    regions = dict(inp.regions)
    for k, e in (("left_brow", "left_eye"), ("right_brow", "right_eye")):
        regions[k] = (regions[k][0], regions[k][1], regions[k][2], regions[e][1] + 30)
    pred = read(backend, FaceInput(img, inp.face, regions, "lashes"))
    assert pred.features["brows"][0] < 0.3  # brow visibility: nothing brow-like above the eyes
    p = pred.probs["brows"]
    assert max(p.values()) - min(p.values()) < 0.1  # so the brows carry no opinion


def test_v_brows_longer_than_their_band_still_read_angry(backend):
    inp = draw_face(brows="v")
    # A band narrower than the drawn 80 px brows (a slanted brow running past the band over the eye)
    regions = dict(inp.regions)
    for k in ("left_brow", "right_brow"):
        x0, y0, x1, y1 = regions[k]
        regions[k] = (x0 + 35, y0, x1 - 35, y1)
    inp.regions = regions
    p = read(backend, inp).probs["brows"]
    assert max(p, key=p.get) == "angry", p  # the V is measured although it leaves the band


def test_soft_but_readable_faces_are_not_blurry():
    face = draw_face().image
    # A face 175 px wide in a slightly soft video frame, shown as a 350 px crop (the TV-anime crops)
    frame = cv2.GaussianBlur(cv2.resize(face, (175, 175), interpolation=cv2.INTER_AREA), (0, 0), 0.8)
    crop = cv2.resize(frame, (350, 350), interpolation=cv2.INTER_CUBIC)
    assert sharpness(crop) > 0.25  # soft, but every stroke reads: not "blurry"
    assert sharpness(cv2.GaussianBlur(face, (0, 0), 3)) < 0.25  # sigma 3 at 512 px still is


def test_readings_from_features_match_the_backend(backend):
    from harmony_eval.backends.anatomy import region_readings

    for inp in (draw_face(eyes="arcs_up", mouth="smile"), draw_face(brows="v", mouth="frown")):
        pred = read(backend, inp, FOUR)
        again = region_readings(backend.params, pred.features, FOUR)
        for region in ("eyes", "brows", "mouth"):
            assert again[region] == pytest.approx(pred.probs[region]), region  # refits score like this


def test_eye_height_is_relative_to_the_face():
    open_ = measure_face(draw_face(eyes="open")).parts["left_eye"]
    arcs = measure_face(draw_face(eyes="arcs_up")).parts["left_eye"]
    small = measure_face(draw_face(eyes="open", size=256)).parts["left_eye"]
    assert arcs["height"] < 0.5 * open_["height"]  # a closed arc is much lower than an open eye
    assert small["height"] == pytest.approx(open_["height"], abs=0.03)  # same face, half the pixels


def test_pout_stroke_with_a_tick_is_closed_and_not_a_smile(backend):
    # A grumbling pout (zundamon's "muu"): a thick short stroke rising to the right, crossed at its
    # right end by a steep tick. The tick's columns are tall (0.07 of the face), but the shape is a
    # line, not an opening, and a parabola through its middle line finds a spurious upward bend
    # (before: open 0.07, happy 0.9).
    inp = draw_face(mouth="none")
    img = inp.image.copy()
    cx, my = 256, 400

    def pts(p):
        return np.array([[cx + 1.4 * (x - 22), my + 1.4 * (y - 14)] for x, y in p], np.int32)

    cv2.polylines(img, [pts([(4, 22), (10, 18), (18, 15), (26, 14), (34, 14)])], False, INK, 8)
    cv2.polylines(img, [pts([(42, 3), (37, 12), (34, 24)])], False, INK, 8)
    p = read(backend, FaceInput(img, inp.face, inp.regions, "pout"), FOUR)
    feats = dict(zip(FEATURE_NAMES["mouth"], p.features["mouth"], strict=True))
    assert feats["open"] < 0.035, feats  # a closed line: as tall as its stroke
    assert feats["wavy"] > 0.04, feats  # the tick leaves the line's middle off any parabola
    assert p.probs["mouth"]["happy"] < 0.4, p.probs["mouth"]  # so no smile is read into it
