"""Face detection: registry, cascade, animeface passes and box mapping, MediaPipe, crop fallback.

Faces are drawn by the project renderer (``harmony_eval.testing.render``), whose ``render_face_info`` also
returns the drawn boxes, so every box can be checked against ground truth.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import cv2
import numpy as np
import pytest

import harmony_eval.detect as det_mod
from harmony_eval.detect import DETECTORS, build_detectors, find_faces, resolve_mediapipe_model
from harmony_eval.detect._geometry import flat_share, iou, make_view, nms, stretch_contrast
from harmony_eval.detect.animeface import PARAMS, AnimeFaceDetector, Pass
from harmony_eval.detect.crop import CropDetector
from harmony_eval.testing.render import render_face_info
from harmony_eval.types import Face


def _render(seed: int = 0, size: int = 512, **kw):
    im, truth = render_face_info(
        kw.pop("eyes", "neutral"), "neutral", kw.pop("mouth", "neutral"), seed=seed, size=size, **kw
    )
    return np.array(im), truth


def _centre_in(box, outer) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


class _Stub:
    """A detector returning fixed boxes, to test the cascade without models."""

    def __init__(self, name: str, boxes: list[tuple[int, int, int, int]]):
        self.name, self.boxes, self.calls = name, boxes, 0

    def detect(self, image):
        self.calls += 1
        return [Face(box=b, score=0.9, detector=self.name) for b in self.boxes]


# ---------------------------------------------------------------------------------- registry


def test_registry_names_and_unknown_name_lists_valid_ones():
    assert set(DETECTORS) == {"animeface", "mediapipe", "crop"}
    with pytest.raises(ValueError, match=r"Unknown detector.*'nope'.*animeface.*crop.*mediapipe"):
        build_detectors(["animeface", "nope"])
    with pytest.raises(ValueError, match="non-empty list"):
        build_detectors("animeface")  # a bare string would be split into letters
    with pytest.raises(ValueError, match="repeat"):
        build_detectors(["crop", "crop"])


def test_default_cascade_skips_mediapipe_without_model_and_warns_once(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(det_mod.MEDIAPIPE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/harmony_eval/face_landmarker.task is absent
    monkeypatch.setattr(det_mod, "_warned_mediapipe", False)  # a fresh process
    assert resolve_mediapipe_model() is None
    with caplog.at_level(logging.WARNING, logger="harmony_eval.detect"):
        names = [d.name for d in build_detectors()]
        build_detectors()
    assert names == ["animeface", "crop"]  # mediapipe left out, order kept
    # the CLI passes mediapipe_model=None when --mediapipe-model is absent: same as not given
    assert [d.name for d in build_detectors(None, {"mediapipe": {"model": None}})] == ["animeface", "crop"]
    warnings = [r for r in caplog.records if "mediapipe" in r.getMessage()]
    assert len(warnings) == 1 and "face_landmarker.task" in warnings[0].getMessage()


def test_explicit_mediapipe_without_model_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv(det_mod.MEDIAPIPE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"face_landmarker\.task.*HARMONY_EVAL_FACE_LANDMARKER"):
        build_detectors(["mediapipe"])
    with pytest.raises(FileNotFoundError, match="missing.task"):
        build_detectors(["mediapipe"], {"mediapipe": {"model": tmp_path / "missing.task"}})
    monkeypatch.setenv(det_mod.MEDIAPIPE_ENV, str(tmp_path / "nope.task"))
    with pytest.raises(FileNotFoundError, match="HARMONY_EVAL_FACE_LANDMARKER"):
        build_detectors(["mediapipe"])


def test_model_found_through_env_and_cache(monkeypatch, tmp_path):
    model = tmp_path / "m.task"
    model.write_bytes(b"not a real model: only the path is resolved here")
    monkeypatch.setenv(det_mod.MEDIAPIPE_ENV, str(model))
    assert resolve_mediapipe_model() == model
    monkeypatch.delenv(det_mod.MEDIAPIPE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    cached = tmp_path / ".cache" / "harmony_eval" / "face_landmarker.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_mediapipe_model() == cached


def test_options_reach_their_detector_and_bad_ones_are_named():
    [af] = build_detectors(["animeface"], {"animeface": {"exhaustive": True}})
    assert af.exhaustive is True  # the animeface options reached the animeface factory
    with pytest.raises(TypeError, match="'crop'"):
        build_detectors(["crop"], {"crop": {"bogus": 1}})
    with pytest.raises(ValueError, match="'clip'"):  # another stage's options are not a detector's
        build_detectors(["crop"], {"clip": {"model": "x"}})
    with pytest.raises(TypeError):  # no flat keyword bag any more (a misspelling passed unseen)
        build_detectors(["animeface"], animface_exhaustive=True)


# ---------------------------------------------------------------------------------- cascade


def test_cascade_first_detector_with_a_face_wins_and_largest_face_first():
    img = np.zeros((100, 100, 3), np.uint8)
    empty, two, never = (
        _Stub("a", []),
        _Stub("b", [(0, 0, 10, 10), (20, 20, 60, 60)]),
        _Stub("c", [(0, 0, 5, 5)]),
    )
    faces, name = find_faces(img, [empty, two, never])
    assert name == "b" and never.calls == 0  # the cascade stopped at the first detector with a face
    assert [f.box for f in faces] == [(20, 20, 60, 60), (0, 0, 10, 10)]  # main face (largest) first
    assert find_faces(img, [empty]) == ([], "none")


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
        find_faces(np.zeros((350, 350, 3), np.uint8), [_Stub("animeface", [edge.box])])[0][0].box == edge.box
    )


def test_crop_test_replaces_a_partial_animeface_box_when_it_accepts_the_image():
    img, truth = _render(seed=0)
    fx0, fy0, fx1, fy1 = truth["face"]
    top = fy0 + (fy1 - fy0) // 4
    crop = np.ascontiguousarray(img[top : fy1 - (fy1 - fy0) // 10, fx0:fx1])
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
    im, truth = render_face_info("neutral", "neutral", "angry", seed=seed, size=512)
    img = np.array(im)
    raw_params = replace(PARAMS, mouth_up=0.0, mouth_down=0.0, mouth_min_w=0.0)
    [raw] = AnimeFaceDetector(params=raw_params).detect(img)
    [face] = AnimeFaceDetector().detect(img)
    a, b = _cover(truth["mouth"], raw.parts["mouth"]), _cover(truth["mouth"], face.parts["mouth"])
    assert b >= 0.8 and b > a + 0.2, (a, b)  # the grown box reaches the drawn mouth


def test_noise_views_are_skipped_and_art_views_kept():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (600, 600, 3), dtype=np.uint8)
    assert flat_share(make_view(noise, 384).pixels) < PARAMS.min_flat  # texture: the pass is skipped
    img, _ = _render(seed=1, size=512)
    assert flat_share(make_view(img, 384).pixels) > 2 * PARAMS.min_flat  # drawn art: flat skin, background
    assert AnimeFaceDetector().detect(noise) == []


class _NeedsBigFace:
    """Finds the face at (10, 10, 60, 60) of the image it is given only when that image's long side
    is under 400 px (as animeface misses a head that is a tiny share of a tall canvas)."""

    name = "stub"

    def __init__(self):
        self.shapes = []

    def detect(self, image):
        self.shapes.append(image.shape[:2])
        return (
            [Face((10, 10, 60, 60), 0.9, self.name, {"mouth": (20, 40, 50, 50)})]
            if max(image.shape) < 400
            else []
        )


def test_small_head_on_a_tall_canvas_found_by_the_second_look():
    tall = np.full((1500, 400, 3), 255, np.uint8)
    tall[100:1400, 150:250] = 90  # a standing figure, 100 px wide, on a white canvas
    det = _NeedsBigFace()
    faces, name = find_faces(tall, [det])
    # the drawn part is 100 x 1300: its top (100 x 100) is the second look; boxes come back shifted
    assert (
        name == "stub"
        and faces[0].box == (160, 110, 210, 160)
        and faces[0].parts["mouth"] == (170, 140, 200, 150)
    )
    assert det.shapes == [(1500, 400), (1300, 100), (100, 100)]  # whole, content box, top of the figure
    assert find_faces(tall, [_NeedsBigFace()], fallback=None) == ([], "none")
    noise = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    det = _NeedsBigFace()
    assert find_faces(noise, [det]) == ([], "none") and len(det.shapes) == 1  # nothing drawn on a background


def _cover(truth, box) -> float:
    ix = max(0, min(truth[2], box[2]) - max(truth[0], box[0]))
    iy = max(0, min(truth[3], box[3]) - max(truth[1], box[1]))
    return ix * iy / max(1, (truth[2] - truth[0]) * (truth[3] - truth[1]))


def test_find_faces_rejects_non_rgb_input():
    with pytest.raises(ValueError, match=r"RGB uint8 array \(H, W, 3\)"):
        find_faces(np.zeros((10, 10), np.uint8), [])


def test_detectors_survive_a_process_pool():
    # the runner ships detectors to worker processes: they must pickle and work there
    img, truth = _render(seed=1, size=384)
    dets = build_detectors(["animeface", "crop"])
    with ProcessPoolExecutor(max_workers=1) as pool:
        faces, name = pool.submit(find_faces, img, dets).result(timeout=60)
    assert name == "animeface" and _centre_in(faces[0].box, truth["face"])


# ---------------------------------------------------------------------------------- geometry


def test_view_maps_boxes_back_through_scale_and_padding():
    img = np.zeros((300, 200, 3), np.uint8)
    view = make_view(img, 150, pad_frac=0.2, border="white")
    assert view.pixels.shape == (150 + 60, 100 + 60, 3)  # long side 150, 30 px padding each side
    assert (view.pixels[0, 0] == 255).all()
    # the view pixel (30 + 0.5 * x) holds original x: a box drawn in the view maps back exactly
    assert view.to_image((30, 30, 80, 105)) == pytest.approx((0, 0, 100, 150))
    with pytest.raises(ValueError, match="border"):
        make_view(img, 100, 0.1, border="blue")


def test_nms_merges_duplicates_and_nested_boxes():
    a = Face((0, 0, 100, 100), 0.9, "x")
    dup = Face((5, 5, 105, 105), 0.8, "x")
    nested = Face((10, 10, 50, 40), 0.7, "x")  # an eye-and-fringe box inside the face
    other = Face((200, 0, 300, 100), 0.6, "x")
    assert nms([nested, dup, a, other]) == [a, other]
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------- animeface


def test_animeface_finds_drawn_face_with_viewer_left_eye_first():
    img, truth = _render(seed=0)
    [face] = AnimeFaceDetector().detect(img)
    assert face.detector == "animeface" and face.score >= 0.5
    assert _centre_in(face.box, truth["face"])
    le, re, mouth = face.parts["left_eye"], face.parts["right_eye"], face.parts["mouth"]
    assert le[0] < re[0]  # viewer-left eye is the one with the smaller x
    assert _centre_in(le, truth["left_eye"]) and _centre_in(re, truth["right_eye"])
    assert mouth[1] > le[3]  # mouth below the eyes


def test_tight_crop_found_by_padding_pass_and_mapped_back():
    img, truth = _render(seed=0)
    fx0, fy0, fx1, fy1 = truth["face"]
    top = fy0 + (fy1 - fy0) // 4  # cut the forehead and hair off: the face touches every side
    crop = np.ascontiguousarray(img[top : fy1 - (fy1 - fy0) // 10, fx0:fx1])
    only_tight = AnimeFaceDetector(passes=(Pass("tight", 72, 0.6, "edge"),))
    [face] = only_tight.detect(crop)
    h, w = crop.shape[:2]
    assert face.box[0] >= 0 and face.box[3] <= h  # clipped to the crop, not the padded view
    assert (face.box[2] - face.box[0]) * (face.box[3] - face.box[1]) > 0.5 * w * h  # the face fills it
    for side in ("left_eye", "right_eye"):
        t = truth[side]
        t_crop = (t[0] - fx0, t[1] - top, t[2] - fx0, t[3] - top)
        # (v - pad) / scale mapping: the eye lands on the drawn eye (72 px view, so a few px slack)
        assert _centre_in(face.parts[side], t_crop), (side, face.parts[side], t_crop)


def test_small_image_is_enlarged_and_boxes_scaled_back():
    img, truth = _render(seed=2, size=512)
    small = cv2.resize(img, (192, 192), interpolation=cv2.INTER_AREA)  # face ~80 px
    det = AnimeFaceDetector(passes=(Pass("base", None),))
    assert det.views(small)[0][1] == 384  # enlarged to the base size
    [face] = det.detect(small)
    k = 192 / 512
    for side in ("left_eye", "right_eye"):
        t = tuple(v * k for v in truth[side])
        assert _centre_in(face.parts[side], t), (side, face.parts[side], t)


def test_blurred_face_found_by_the_tiny_pass():
    img, truth = _render(seed=3, blur=4.0)  # the base and large passes miss it at this blur
    det = AnimeFaceDetector()
    faces = det.detect(img)
    assert faces and _centre_in(faces[0].box, truth["face"])
    # and not by the passes before it: the tiny pass is what rescues soft images
    assert AnimeFaceDetector(passes=det.passes[:4]).detect(img) == []


def test_washed_out_face_found_by_the_stretched_passes_only():
    img, truth = _render(seed=1)
    low = (100 + img.astype(np.float32) * 60 / 255).astype(np.uint8)  # grey levels squeezed to 100-160
    det = AnimeFaceDetector()
    plain = AnimeFaceDetector(passes=tuple(p for p in det.passes if not p.stretch))
    assert plain.detect(low) == []  # too little line contrast for animeface at any size
    faces = det.detect(low)
    assert faces and _centre_in(faces[0].box, truth["face"])  # found once stretched, in the right place


def test_stretch_contrast_maps_the_value_range_and_leaves_full_range_images_alone():
    img, _ = _render(seed=1)
    low = (100 + img.astype(np.float32) * 60 / 255).astype(np.uint8)
    out = stretch_contrast(low)
    lo, hi = np.percentile(out, (1, 99))
    assert lo <= 5 and hi >= 250  # 100-160 spread to (nearly) 0-255
    full = np.tile(np.arange(256, dtype=np.uint8), (8, 1))[..., None].repeat(3, 2)
    assert stretch_contrast(full) is full  # nothing to gain: the same array, no copy
    flat = np.full((8, 8, 3), 128, np.uint8)
    assert stretch_contrast(flat) is flat  # a blank image is not blown up into noise


def test_exhaustive_mode_finds_every_face_of_a_collage():
    tiles = [_render(seed=s, size=256)[0] for s in range(4)]
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    faces = AnimeFaceDetector(exhaustive=True).detect(grid)
    cells = {(int((f.box[0] + f.box[2]) / 2 // 256), int((f.box[1] + f.box[3]) / 2 // 256)) for f in faces}
    assert len(cells) >= 3, faces  # one face per tile, duplicates across passes merged
    assert len(faces) <= 4


# ---------------------------------------------------------------------------------- crop fallback


def _negatives(size: int = 350) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {
        "white": np.full((size, size, 3), 255, np.uint8),
        "black": np.zeros((size, size, 3), np.uint8),
        "noise": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "gradient": np.repeat(np.tile(np.linspace(0, 255, size, dtype=np.uint8), (size, 1))[..., None], 3, 2),
    }
    text = np.full((size, size, 3), 255, np.uint8)
    for i in range(9):
        cv2.putText(text, f"Harmony line {i}", (8, 35 + 36 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    out["text"] = text
    land = np.zeros((size, size, 3), np.uint8)
    land[: size // 2] = (135, 190, 235)  # sky
    land[size // 2 :] = (60, 140, 50)  # grass
    for x in (size // 4, 3 * size // 4):  # two round trees side by side: an "eye pair" of blobs
        cv2.circle(land, (x, size // 2 - 40), 35, (30, 100, 40), -1)
    cv2.circle(land, (size - 50, 40), 25, (255, 240, 180), -1)
    out["landscape"] = land
    dots = np.full((size, size, 3), 230, np.uint8)
    for x in (size // 3, 2 * size // 3):
        cv2.circle(dots, (x, size // 2), 18, (20, 20, 20), -1)
    out["two_dots"] = dots
    return out


@pytest.mark.parametrize("kind", ["white", "black", "noise", "gradient", "text", "landscape", "two_dots"])
def test_crop_fallback_refuses_non_faces(kind):
    img = _negatives()[kind]
    assert CropDetector().detect(img) == []  # nothing with two drawn eyes in a face-like layout
    assert find_faces(img, build_detectors(["animeface", "crop"])) == ([], "none")


def test_crop_fallback_accepts_tight_face_crop_with_low_score():
    img, truth = _render(seed=0)
    fx0, fy0, fx1, fy1 = truth["face"]
    top = fy0 + (fy1 - fy0) // 4
    crop = np.ascontiguousarray(img[top : fy1 - (fy1 - fy0) // 10, fx0:fx1])
    [face] = CropDetector().detect(crop)
    assert face.detector == "crop" and face.score <= 0.35  # ranks below any real detector
    for side in ("left_eye", "right_eye"):
        t = truth[side]
        assert _centre_in(face.parts[side], (t[0] - fx0, t[1] - top, t[2] - fx0, t[3] - top))
    assert face.parts["mouth"][1] > face.parts["left_eye"][3]  # mouth placed below the eyes


def test_crop_fallback_refuses_a_full_body_shape_and_ranks_last_in_cascade():
    img, _ = _render(seed=0)
    tall = np.vstack([img, np.full_like(img, 240)])  # a sprite-like 1:2 canvas is no tight crop
    assert CropDetector().detect(tall) == []
    faces, name = find_faces(img, build_detectors(["animeface", "crop"]))
    assert name == "animeface"  # the fallback never runs when a real detector found the face


# ---------------------------------------------------------------------------------- mediapipe


def test_mediapipe_landmarks_give_ordered_parts(face_landmarker_model):
    from harmony_eval.detect.mediapipe import MediaPipeDetector, landmark_sets

    sets = landmark_sets()
    assert len(sets["eye_a"]) == len(sets["eye_b"]) == 16 and len(sets["lips"]) == 40
    img, truth = _render(seed=0)
    [face] = MediaPipeDetector(face_landmarker_model, num_faces=2).detect(img)
    assert face.points.shape == (478, 2)
    assert _centre_in(face.box, truth["face"])
    p = face.parts
    assert p["left_eye"][0] < p["right_eye"][0] and p["left_brow"][0] < p["right_brow"][0]
    assert p["left_brow"][1] < p["left_eye"][1] and p["mouth"][1] > p["left_eye"][3]
    assert _centre_in(
        p["mouth"], (truth["face"][0], truth["left_eye"][3], truth["face"][2], truth["face"][3])
    )


def test_mediapipe_detector_rebuilds_in_worker(face_landmarker_model):
    img, truth = _render(seed=0)
    dets = build_detectors(["mediapipe"], {"mediapipe": {"model": face_landmarker_model}})
    dets[0].detect(img)  # the landmarker now exists in this process; it must not be pickled
    with ProcessPoolExecutor(max_workers=1) as pool:
        faces, name = pool.submit(find_faces, img, dets).result(timeout=60)
    assert name == "mediapipe" and _centre_in(faces[0].box, truth["face"])
