"""Region boxes from a face: measured parts kept, missing ones placed by anime proportions."""

from __future__ import annotations

import numpy as np
import pytest

from harmony_eval.detect.animeface import AnimeFaceDetector
from harmony_eval.regions import REGION_KEYS, Regions, face_regions
from harmony_eval.testing.render import render_face_info
from harmony_eval.types import REGIONS, Face

SHAPE = (512, 512, 3)


def _inside(box, outer, slack: int = 0) -> bool:
    return (
        box[0] >= outer[0] - slack
        and box[1] >= outer[1] - slack
        and box[2] <= outer[2] + slack
        and box[3] <= outer[3] + slack
    )


def _cover(inner, outer) -> float:
    """Share of ``inner``'s area inside ``outer``."""
    ix = max(0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    return ix * iy / max(1, (inner[2] - inner[0]) * (inner[3] - inner[1]))


def _cy(b) -> float:
    return (b[1] + b[3]) / 2


def test_keys_cover_the_output_contract():
    r = face_regions(Face((100, 100, 300, 300), 0.9, "x"), SHAPE)
    assert isinstance(r, Regions) and set(REGIONS) <= set(r) and tuple(r) == REGION_KEYS


def test_face_box_only_places_every_part_inside_the_face():
    face = Face((100, 120, 300, 320), 0.9, "x")
    r = face_regions(face, SHAPE)
    assert r.estimated == frozenset(REGION_KEYS) - {"face"}  # nothing but the face was measured
    assert not r.measured("mouth") and r.measured("face")
    for k in ("left_eye", "right_eye", "mouth", "eyes"):
        assert _inside(r[k], face.box), k
    assert r["left_eye"][2] <= r["right_eye"][0] + 1  # viewer-left eye on the left, no overlap
    assert r["left_brow"][3] <= r["left_eye"][3] and r["left_brow"][1] < r["left_eye"][1]  # brows above
    assert r["mouth"][1] > r["eyes"][3]  # mouth below the eyes
    assert r["eyes"] == (r["left_eye"][0], r["left_eye"][1], r["right_eye"][2], r["right_eye"][3])


def test_measured_parts_are_kept_and_only_brows_estimated():
    parts = {
        "left_eye": (150, 200, 190, 230),
        "right_eye": (230, 200, 270, 230),
        "mouth": (195, 280, 225, 295),
    }
    r = face_regions(Face((120, 140, 300, 340), 0.9, "mediapipe", parts), SHAPE)
    assert r["left_eye"] == parts["left_eye"] and r["mouth"] == parts["mouth"]
    assert r.estimated == {"left_brow", "right_brow", "brows"}
    for side in ("left", "right"):
        brow, eye = r[f"{side}_brow"], r[f"{side}_eye"]
        assert brow[1] < eye[1] and _cy(brow) < _cy(eye)  # band above the eye
        assert brow[0] < eye[0] and brow[2] > eye[2]  # a little wider than the eye
        assert brow[3] > eye[1]  # overlaps the lid: angry brows come down onto it
    assert r["brows"] == (r["left_brow"][0], r["left_brow"][1], r["right_brow"][2], r["right_brow"][3])


def test_closed_eyes_still_get_a_brow_band_of_face_scale():
    # a closed eye is a thin arc (4 px); the band height follows the face, not the eye
    parts = {"left_eye": (150, 220, 190, 224), "right_eye": (230, 220, 270, 224)}
    r = face_regions(Face((120, 140, 300, 340), 0.9, "x", parts), SHAPE)
    band_h = r["left_brow"][3] - r["left_brow"][1]
    assert band_h >= 0.25 * 200  # >= a quarter of the 200 px face height, far more than 4 px


def test_swapped_eyes_are_put_back_in_viewer_order():
    parts = {"left_eye": (230, 200, 270, 230), "right_eye": (150, 200, 190, 230)}  # character's side
    r = face_regions(Face((120, 140, 300, 340), 0.9, "x", parts), SHAPE)
    assert r["left_eye"] == (150, 200, 190, 230) and r["right_eye"] == (230, 200, 270, 230)


def test_missing_eye_is_mirrored_about_the_face_centre():
    r = face_regions(Face((100, 100, 300, 300), 0.9, "x", {"left_eye": (130, 180, 170, 210)}), SHAPE)
    assert r["right_eye"] == (230, 180, 270, 210)  # x' = (100 + 300) - x
    assert "right_eye" in r.estimated and "eyes" in r.estimated and "left_eye" not in r.estimated


def test_mouth_from_eyes_sits_below_and_between_them():
    parts = {"left_eye": (150, 200, 190, 230), "right_eye": (250, 200, 290, 230)}
    r = face_regions(Face((100, 120, 340, 380), 0.9, "x", parts), SHAPE)
    m = r["mouth"]
    assert "mouth" in r.estimated
    assert abs((m[0] + m[2]) / 2 - 220) <= 1  # centred between the eye centres (170 and 270)
    assert _cy(m) == pytest.approx(215 + 0.7 * 100, abs=1)  # 0.7 x eye distance below the eye line


def test_measured_mouth_boxes_are_used_as_given_whatever_the_detector():
    parts = {
        "left_eye": (150, 200, 190, 230),
        "right_eye": (230, 200, 270, 230),
        "mouth": (200, 280, 220, 290),
    }
    for det in ("mediapipe", "animeface", "x"):  # box fixes belong to the detector, not here
        assert face_regions(Face((120, 140, 300, 340), 0.9, det, parts), SHAPE)["mouth"] == parts["mouth"]


def test_boxes_are_clipped_to_the_image():
    # a face cut by the top-left corner: the brow band would start above the image
    parts = {"left_eye": (5, 2, 40, 30), "right_eye": (70, 2, 105, 30)}
    r = face_regions(Face((0, 0, 120, 100), 0.9, "x", parts), (100, 120, 3))
    for k, b in r.items():
        assert b is None or _inside(b, (0, 0, 120, 100)), (k, b)
    assert r["left_brow"][1] == 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="face.box"):
        face_regions(Face((10, 10, 5, 20), 0.9, "x"), SHAPE)
    with pytest.raises(ValueError, match="image_shape"):
        face_regions(Face((0, 0, 5, 5), 0.9, "x"), (0, 10))


@pytest.mark.parametrize(("brows", "eyes"), [("neutral", "neutral"), ("angry", "angry"), ("sad", "happy")])
def test_regions_on_a_drawn_face_hold_the_drawn_parts(brows, eyes):
    im, truth = render_face_info(eyes, brows, "happy", seed=3, size=384)
    img = np.array(im)
    [face] = AnimeFaceDetector().detect(img)
    r = face_regions(face, img.shape)
    for side in ("left", "right"):
        # the brow band (estimated from the detected eye) holds most of the drawn brow
        assert _cover(truth[f"{side}_brow"], r[f"{side}_brow"]) >= 0.6, (side, truth[f"{side}_brow"], r)
        t = truth[f"{side}_eye"]
        e = r[f"{side}_eye"]
        assert t[0] <= (e[0] + e[2]) / 2 <= t[2] and t[1] <= _cy(e) <= t[3]  # eye box on the drawn eye
        assert _cy(r[f"{side}_brow"]) < _cy(r[f"{side}_eye"]) < _cy(r["mouth"])  # brows, eyes, mouth
    assert _cover(truth["mouth"], r["mouth"]) >= 0.5
