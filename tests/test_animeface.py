"""The animeface detector: its passes (sizes, padding, tiny and stretched views, exhaustive mode) and
its own box fixes (a face piece in a tight crop, the mouth box grown onto the drawn mouth).

Faces are drawn by the project renderer (``face_support.rendered``), whose boxes are the ground truth.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from face_support import StubDetector, centre_in, cover, rendered, shifted, tight_crop

from harmony_eval.detect import find_faces
from harmony_eval.detect._geometry import flat_share, make_view, stretch_contrast
from harmony_eval.detect.animeface import PARAMS, AnimeFaceDetector, Pass
from harmony_eval.types import Face

# --------------------------------------------------------- box fixes: tight crops, mouth growth


def test_part_of_a_face_in_a_small_square_crop_becomes_the_whole_image():
    # animeface boxed only a 130 px piece at the edge of a 350 px TV crop
    img = np.zeros((350, 350, 3), np.uint8)
    piece = Face((220, 28, 350, 182), 0.9, "animeface", {"mouth": (260, 150, 290, 160)})
    faces = AnimeFaceDetector().tight_crop(img, [piece])
    assert [f.box for f in faces] == [(0, 0, 350, 350)]  # the face fills it
    assert faces[0].parts == {}  # parts from the piece are not trusted: regions place them by proportion


def test_small_or_inner_or_large_faces_are_kept_as_found():
    det = AnimeFaceDetector()
    inner = Face((130, 130, 220, 220), 0.9, "animeface")  # well inside: a thumbnail, not a piece of a face
    assert det.tight_crop(np.zeros((350, 350, 3), np.uint8), [inner]) == [inner]
    edge = Face((0, 40, 150, 190), 0.9, "animeface")
    big = np.zeros((512, 512, 3), np.uint8)  # larger than a tight crop (generated images are 512+)
    assert det.tight_crop(big, [edge]) == [edge]
    wide = np.zeros((350, 700, 3), np.uint8)  # not square: a screenshot or a banner
    assert det.tight_crop(wide, [edge]) == [edge]
    # the cascade itself leaves every detector's boxes alone: the fix is animeface's own
    assert (
        find_faces(np.zeros((350, 350, 3), np.uint8), [StubDetector("animeface", [edge.box])])[0][0].box
        == edge.box
    )


def test_crop_test_replaces_a_partial_animeface_box_when_it_accepts_the_image():
    crop, _ = tight_crop(*rendered(seed=0))
    h, w = crop.shape[:2]
    assert max(h, w) <= 400 and 0.8 <= w / h <= 1.25, crop.shape  # a small tight crop
    faces = AnimeFaceDetector().tight_crop(crop, [Face((0, 0, w // 3, h // 3), 0.9, "animeface")])
    assert faces[0].detector == "crop"  # the eye-layout test accepted the crop, its eyes and mouth are used
    assert faces[0].box[2] - faces[0].box[0] > 0.5 * w and "left_eye" in faces[0].parts


def test_animeface_mouth_box_is_grown_down_and_to_a_face_scale_width():
    parts = {
        "left_eye": (150, 200, 190, 230),
        "right_eye": (230, 200, 270, 230),
        "mouth": (200, 280, 220, 290),
    }
    grown = AnimeFaceDetector().grow_mouth(Face((120, 140, 300, 340), 0.9, "animeface", parts), (512, 512))
    g = grown.parts["mouth"]
    assert g[3] - 290 == pytest.approx(0.8 * 10, abs=1)  # animeface boxes sit above the drawn mouth
    assert 280 - g[1] == pytest.approx(0.3 * 10, abs=1)  # a little up too: smirks curl above it
    assert g[2] - g[0] == pytest.approx(0.22 * 180, abs=1)  # 20 px box -> 22 % of the face
    assert (g[0] + g[2]) / 2 == pytest.approx(210, abs=1)  # widened about its centre
    assert grown.parts["left_eye"] == parts["left_eye"]  # eyes untouched


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_grown_mouth_box_holds_a_drawn_mouth_the_raw_box_cuts(seed):
    # on these rendered angry mouths animeface's own box holds 47-51 % of the drawn mouth (too high)
    img, truth = rendered(seed, mouth="angry")
    raw_params = replace(PARAMS, mouth_up=0.0, mouth_down=0.0, mouth_min_w=0.0)
    [raw] = AnimeFaceDetector(params=raw_params).detect(img)
    [face] = AnimeFaceDetector().detect(img)
    a, b = cover(truth["mouth"], raw.parts["mouth"]), cover(truth["mouth"], face.parts["mouth"])
    assert b >= 0.8 and b > a + 0.2, (a, b)  # the grown box reaches the drawn mouth


# --------------------------------------------------------------------------------------- passes


def test_noise_views_are_skipped_and_art_views_kept():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (600, 600, 3), dtype=np.uint8)
    assert flat_share(make_view(noise, 384).pixels) < PARAMS.min_flat  # texture: the pass is skipped
    img, _ = rendered(seed=1, size=512)
    assert flat_share(make_view(img, 384).pixels) > 2 * PARAMS.min_flat  # drawn art: flat skin, background
    assert AnimeFaceDetector().detect(noise) == []


def test_animeface_finds_drawn_face_with_viewer_left_eye_first():
    img, truth = rendered(seed=0)
    [face] = AnimeFaceDetector().detect(img)
    assert face.detector == "animeface" and face.score >= 0.5
    assert centre_in(face.box, truth["face"])
    le, re, mouth = face.parts["left_eye"], face.parts["right_eye"], face.parts["mouth"]
    assert le[0] < re[0]  # viewer-left eye is the one with the smaller x
    assert centre_in(le, truth["left_eye"]) and centre_in(re, truth["right_eye"])
    assert mouth[1] > le[3]  # mouth below the eyes


def test_tight_crop_found_by_padding_pass_and_mapped_back():
    img, truth = rendered(seed=0)
    crop, offset = tight_crop(img, truth)  # forehead and hair cut off: the face touches every side
    only_tight = AnimeFaceDetector(passes=(Pass("tight", 72, 0.6, "edge"),))
    [face] = only_tight.detect(crop)
    h, w = crop.shape[:2]
    assert face.box[0] >= 0 and face.box[3] <= h  # clipped to the crop, not the padded view
    assert (face.box[2] - face.box[0]) * (face.box[3] - face.box[1]) > 0.5 * w * h  # the face fills it
    for side in ("left_eye", "right_eye"):
        t_crop = shifted(truth[side], offset)
        # (v - pad) / scale mapping: the eye lands on the drawn eye (72 px view, so a few px slack)
        assert centre_in(face.parts[side], t_crop), (side, face.parts[side], t_crop)


def test_small_image_is_enlarged_and_boxes_scaled_back():
    img, truth = rendered(seed=2, size=512)
    small = cv2.resize(img, (192, 192), interpolation=cv2.INTER_AREA)  # face ~80 px
    det = AnimeFaceDetector(passes=(Pass("base", None),))
    assert det.views(small)[0][1] == 384  # enlarged to the base size
    [face] = det.detect(small)
    k = 192 / 512
    for side in ("left_eye", "right_eye"):
        t = tuple(v * k for v in truth[side])
        assert centre_in(face.parts[side], t), (side, face.parts[side], t)


def test_blurred_face_found_by_the_tiny_pass():
    img, truth = rendered(seed=3, blur=4.0)  # the base and large passes miss it at this blur
    det = AnimeFaceDetector()
    faces = det.detect(img)
    assert faces and centre_in(faces[0].box, truth["face"])
    # and not by the passes before it: the tiny pass is what rescues soft images
    assert AnimeFaceDetector(passes=det.passes[:4]).detect(img) == []


def test_washed_out_face_found_by_the_stretched_passes_only():
    img, truth = rendered(seed=1)
    low = (100 + img.astype(np.float32) * 60 / 255).astype(np.uint8)  # grey levels squeezed to 100-160
    det = AnimeFaceDetector()
    plain = AnimeFaceDetector(passes=tuple(p for p in det.passes if not p.stretch))
    assert plain.detect(low) == []  # too little line contrast for animeface at any size
    faces = det.detect(low)
    assert faces and centre_in(faces[0].box, truth["face"])  # found once stretched, in the right place


def test_stretch_contrast_maps_the_value_range_and_leaves_full_range_images_alone():
    img, _ = rendered(seed=1)
    low = (100 + img.astype(np.float32) * 60 / 255).astype(np.uint8)
    out = stretch_contrast(low)
    lo, hi = np.percentile(out, (1, 99))
    assert lo <= 5 and hi >= 250  # 100-160 spread to (nearly) 0-255
    full = np.tile(np.arange(256, dtype=np.uint8), (8, 1))[..., None].repeat(3, 2)
    assert stretch_contrast(full) is full  # nothing to gain: the same array, no copy
    flat = np.full((8, 8, 3), 128, np.uint8)
    assert stretch_contrast(flat) is flat  # a blank image is not blown up into noise


def test_exhaustive_mode_finds_every_face_of_a_collage():
    tiles = [rendered(seed=s, size=256)[0] for s in range(4)]
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    faces = AnimeFaceDetector(exhaustive=True).detect(grid)
    cells = {(int((f.box[0] + f.box[2]) / 2 // 256), int((f.box[1] + f.box[3]) / 2 // 256)) for f in faces}
    assert len(cells) >= 3, faces  # one face per tile, duplicates across passes merged
    assert len(faces) <= 4
