"""Face detection: registry, cascade, views and box geometry, crop fallback, MediaPipe.

Faces are drawn by the project renderer (``face_support.rendered``), which also returns the drawn
boxes, so every box can be checked against ground truth. The animeface detector's own passes and
box fixes are tested in ``test_animeface.py``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pytest
from face_support import StubDetector, centre_in, rendered, shifted, tight_crop

import harmony_eval.detect as det_mod
from harmony_eval.detect import DETECTORS, Fallback, build_detectors, find_faces, resolve_mediapipe_model
from harmony_eval.detect._geometry import iou, make_view, nms
from harmony_eval.detect.crop import CropDetector
from harmony_eval.types import Face

# ------------------------------------------------------------------------------------- registry


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


# -------------------------------------------------------------------------------------- cascade


def test_cascade_first_detector_with_a_face_wins_and_largest_face_first():
    img = np.zeros((100, 100, 3), np.uint8)
    empty, two, never = (
        StubDetector("a", []),
        StubDetector("b", [(0, 0, 10, 10), (20, 20, 60, 60)]),
        StubDetector("c", [(0, 0, 5, 5)]),
    )
    faces, name = find_faces(img, [empty, two, never])
    assert name == "b" and never.calls == 0  # the cascade stopped at the first detector with a face
    assert [f.box for f in faces] == [(20, 20, 60, 60), (0, 0, 10, 10)]  # main face (largest) first
    assert find_faces(img, [empty]) == ([], "none")


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
    # no background to crop to; drawn to the bottom edge, as a close-up cut at the chin: the only
    # second looks are the grown canvases (a quarter and a half more above and on each side)
    assert find_faces(noise, [det]) == ([], "none")
    assert det.shapes == [(500, 500), (625, 750), (750, 1000)]
    det = _NeedsBigFace()
    assert find_faces(noise, [det], fallback=Fallback(pad=())) == ([], "none") and len(det.shapes) == 1


class _NeedsMargin:
    """A stub that finds a face only on an image with room on its sides: a 100 px box at the centre,
    with a mouth part, on any image wider than tall (a grown canvas of a square close-up)."""

    name = "stub"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def detect(self, image: np.ndarray) -> list[Face]:
        self.shapes.append(image.shape[:2])
        h, w = image.shape[:2]
        if w <= h:
            return []
        cx, cy = w // 2, h // 2
        return [
            Face(
                (cx - 50, cy - 50, cx + 50, cy + 50),
                0.9,
                self.name,
                {"mouth": (cx - 20, cy + 20, cx + 20, cy + 40)},
            )
        ]


def test_a_close_up_cut_by_the_frame_is_looked_at_on_a_grown_canvas():
    close = np.full((500, 500, 3), 255, np.uint8)
    close[50:, 10:490] = 90  # drawn down to the bottom edge: a face the frame cuts at the chin
    det = _NeedsMargin()
    faces, name = find_faces(close, [det])
    # grown by 125 px above and on each side: the stub's centre box (325..425, 262..362) comes
    # back in the close-up's pixels
    assert det.shapes == [(500, 500), (625, 750)]
    assert name == "stub" and faces[0].box == (200, 137, 300, 237)
    assert faces[0].parts["mouth"] == (230, 207, 270, 227)
    # a drawing that ends above the bottom edge (a sprite on its canvas) gets no grown look
    floating = np.full((500, 500, 3), 255, np.uint8)
    floating[50:480, 10:490] = 90
    det = _NeedsMargin()
    assert find_faces(floating, [det]) == ([], "none") and (625, 750) not in det.shapes
    # a large close-up (a 4k render) is grown from a resized copy, at most 2048 px a side, and the
    # face comes back in its own pixels: the same place as on the small one, 6 x as large
    big = np.ascontiguousarray(np.repeat(np.repeat(close, 6, axis=0), 6, axis=1))
    det = _NeedsMargin()
    faces, _ = find_faces(big, [det])
    assert max(det.shapes[1]) <= 2048 < 1.5 * 3000
    x0, y0, x1, y1 = faces[0].box
    assert abs((x0 + x1) / 2 - 1500) <= 4 and abs((y0 + y1) / 2 - 1125) <= 4
    k = det.shapes[1][1] / (1.5 * 3000)  # the copy's scale: the stub's 100 px box is 100 / k here
    assert abs((x1 - x0) - 100 / k) <= 4
    # nor does the crop test, which would take the grown canvas itself for a face
    crop_like = _NeedsMargin()
    crop_like.name = "crop"
    assert find_faces(close, [crop_like]) == ([], "none") and crop_like.shapes == [(500, 500)]


def test_find_faces_rejects_non_rgb_input():
    with pytest.raises(ValueError, match=r"RGB uint8 array \(H, W, 3\)"):
        find_faces(np.zeros((10, 10), np.uint8), [])


def test_detectors_survive_a_process_pool():
    # the runner ships detectors to worker processes: they must pickle and work there
    img, truth = rendered(seed=1, size=384)
    dets = build_detectors(["animeface", "crop"])
    with ProcessPoolExecutor(max_workers=1) as pool:
        faces, name = pool.submit(find_faces, img, dets).result(timeout=60)
    assert name == "animeface" and centre_in(faces[0].box, truth["face"])


# ------------------------------------------------------------------------------------- geometry


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


# -------------------------------------------------------------------------------- crop fallback


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
    img, truth = rendered(seed=0)
    crop, offset = tight_crop(img, truth)
    [face] = CropDetector().detect(crop)
    assert face.detector == "crop" and face.score <= 0.35  # ranks below any real detector
    for side in ("left_eye", "right_eye"):
        assert centre_in(face.parts[side], shifted(truth[side], offset))
    assert face.parts["mouth"][1] > face.parts["left_eye"][3]  # mouth placed below the eyes


def test_crop_fallback_refuses_a_full_body_shape_and_ranks_last_in_cascade():
    img, _ = rendered(seed=0)
    tall = np.vstack([img, np.full_like(img, 240)])  # a sprite-like 1:2 canvas is no tight crop
    assert CropDetector().detect(tall) == []
    faces, name = find_faces(img, build_detectors(["animeface", "crop"]))
    assert name == "animeface"  # the fallback never runs when a real detector found the face


# ------------------------------------------------------------------------------------ mediapipe


def test_mediapipe_landmarks_give_ordered_parts(face_landmarker_model):
    from harmony_eval.detect.mediapipe import MediaPipeDetector, landmark_sets

    sets = landmark_sets()
    assert len(sets["eye_a"]) == len(sets["eye_b"]) == 16 and len(sets["lips"]) == 40
    img, truth = rendered(seed=0)
    [face] = MediaPipeDetector(face_landmarker_model, num_faces=2).detect(img)
    assert face.points.shape == (478, 2)
    assert centre_in(face.box, truth["face"])
    p = face.parts
    assert p["left_eye"][0] < p["right_eye"][0] and p["left_brow"][0] < p["right_brow"][0]
    assert p["left_brow"][1] < p["left_eye"][1] and p["mouth"][1] > p["left_eye"][3]
    assert centre_in(p["mouth"], (truth["face"][0], truth["left_eye"][3], truth["face"][2], truth["face"][3]))


def test_mediapipe_detector_rebuilds_in_worker(face_landmarker_model):
    img, truth = rendered(seed=0)
    dets = build_detectors(["mediapipe"], {"mediapipe": {"model": face_landmarker_model}})
    dets[0].detect(img)  # the landmarker now exists in this process; it must not be pickled
    with ProcessPoolExecutor(max_workers=1) as pool:
        faces, name = pool.submit(find_faces, img, dets).result(timeout=60)
    assert name == "mediapipe" and centre_in(faces[0].box, truth["face"])


def test_mediapipe_start_up_notices_are_held_back_and_anything_else_is_passed_on(capfd):
    from harmony_eval.detect.mediapipe import native_notices_held_back

    notices = (
        b"WARNING: Logging before InitGoogle() is written to STDERR\n"
        b"W0000 00:00:1796313672.212784    4664 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph "
        b"acceleration to xnnpack by default.\n"
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    )
    with native_notices_held_back():
        os.write(2, notices + b"E0000 a real error from native code\n")
    err = capfd.readouterr().err
    assert err == "E0000 a real error from native code\n"
    with pytest.raises(RuntimeError, match="model"), native_notices_held_back():
        os.write(2, notices)
        raise RuntimeError("could not read the model")
    assert capfd.readouterr().err == notices.decode()  # when building fails, every line may matter


def test_building_the_mediapipe_landmarker_prints_nothing(face_landmarker_model, capfd):
    from harmony_eval.detect.mediapipe import MediaPipeDetector

    img, _ = rendered(seed=0)
    capfd.readouterr()
    assert MediaPipeDetector(face_landmarker_model).detect(img)
    assert capfd.readouterr().err == ""


_SLOW_EXIT = """
import ctypes, sys
import numpy as np
# a library exit handler that takes longer than MediaPipe's exit watchdog allows by default (30 s);
# registered before libmediapipe loads, so it runs after the watchdog is armed in exit()
libc = ctypes.CDLL("libc.so.6")
libc.__cxa_atexit(ctypes.c_void_p(ctypes.cast(libc.sleep, ctypes.c_void_p).value), ctypes.c_void_p(35), None)
from harmony_eval.detect.mediapipe import MediaPipeDetector
MediaPipeDetector(sys.argv[1]).detect(np.full((64, 64, 3), 255, np.uint8))
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"), reason="needs glibc on x86-64")
def test_a_process_that_used_mediapipe_exits_normally_when_its_exit_is_slow(face_landmarker_model, tmp_path):
    """libmediapipe kills a process whose exit() takes over 30 s (SIGTRAP, status 133 / 139): the
    full test suite once ended "727 passed" and then crashed. ~36 s."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_EXIT_TIMEOUT_SECONDS"}
    run = subprocess.run([sys.executable, "-c", _SLOW_EXIT, str(face_landmarker_model)], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert run.stdout.strip() == "done" and "exit() hanging" not in run.stderr
