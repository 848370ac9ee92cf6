"""The parametric face renderer: detectable by animeface, deterministic, parameters do what they say."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval.resources import emotions_table
from harmony_eval.testing.render import EYES, render_face, render_face_info, render_scenery
from harmony_eval.testing.sets import make_examples, render_collage

animeface = pytest.importorskip("animeface")

UPRIGHT = {"rotation": 0.0}
REPO = Path(__file__).resolve().parents[1]


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _inside(point, box, pad=0) -> bool:
    return box[0] - pad <= point[0] <= box[2] + pad and box[1] - pad <= point[1] <= box[3] + pad


def _af_centre(part) -> tuple[float, float]:
    return part.pos.x + part.pos.width / 2, part.pos.y + part.pos.height / 2


@pytest.mark.parametrize("emotion", list(EYES))
@pytest.mark.parametrize("seed", [0, 1])
def test_animeface_finds_the_face_and_its_parts(emotion, seed):
    img, boxes = render_face_info(emotion, emotion, emotion, seed=seed)
    faces = animeface.detect(img)
    assert len(faces) == 1, f"animeface should find exactly the one drawn face ({emotion}, seed {seed})"
    f = faces[0]
    # animeface's left_eye is the character's left eye, i.e. the one on the viewer's right
    assert _inside(_af_centre(f.left_eye), boxes["right_eye"]), "left_eye box should land on the drawn eye"
    assert _inside(_af_centre(f.right_eye), boxes["left_eye"]), "right_eye box should land on the drawn eye"
    # its mouth box is placed from the face geometry; within 0.1 face width of the drawn mouth
    pad = 0.1 * (boxes["face"][2] - boxes["face"][0])
    assert _inside(_af_centre(f.mouth), boxes["mouth"], pad), "mouth box should land on the drawn mouth"
    assert _inside(
        _centre(boxes["eyes"]),
        (f.face.pos.x, f.face.pos.y, f.face.pos.x + f.face.pos.width, f.face.pos.y + f.face.pos.height),
    ), "face box holds the eyes"


def test_same_arguments_give_identical_pixels_and_seeds_differ():
    a = np.asarray(render_face("sad", "angry", "happy", seed=5, size=256))
    b = np.asarray(render_face("sad", "angry", "happy", seed=5, size=256))
    c = np.asarray(render_face("sad", "angry", "happy", seed=6, size=256))
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b), "rendering must be deterministic"
    assert np.abs(a.astype(int) - c).mean() > 5, "another seed should change colours/proportions"


def test_boxes_follow_the_anatomy():
    _, b = render_face_info(size=512, seed=3, style=UPRIGHT)
    assert b["left_eye"][2] < b["right_eye"][0], "left_eye is the viewer's left, so further left"
    assert b["brows"][3] <= b["eyes"][1] + 2, "brows sit above the eyes"
    assert b["mouth"][1] > b["eyes"][3], "mouth sits below the eyes"
    face_h = b["face"][3] - b["face"][1]
    eye_rel = (_centre(b["eyes"])[1] - b["face"][1]) / face_h
    assert 0.45 < eye_rel < 0.65, f"anime eyes sit near the middle of the head, got {eye_rel:.2f}"


def _dark_rows(img: Image.Image, box, columns) -> list[float]:
    """Mean row of dark (ink) pixels in the given columns of ``box``: where a drawn line is."""
    a = np.asarray(img.convert("L")).astype(int)
    x0, y0, x1, y1 = box
    rows = []
    for x in columns:
        ys = np.nonzero(a[y0:y1, x] < 140)[0]
        rows.append(y0 + ys.mean() if len(ys) else np.nan)
    return rows


def test_mouth_curve_moves_the_corners():
    rows = {}
    for curve in (1.0, -1.0):
        img, b = render_face_info(mouth_curve=curve, seed=2, style=UPRIGHT)
        x0, y0, x1, y1 = b["mouth"]
        left, mid, right = _dark_rows(img, (x0, y0 - 2, x1, y1 + 2), [x0 + 3, (x0 + x1) // 2, x1 - 4])
        rows[curve] = (left + right) / 2 - mid  # > 0: corners lower than the middle
    assert rows[1.0] < -3, "mouth_curve=+1: corners drawn above the middle (a smile)"
    assert rows[-1.0] > 3, "mouth_curve=-1: corners drawn below the middle (a frown)"


def test_brow_angle_raises_or_lowers_the_inner_ends():
    slope = {}
    for angle in (25.0, -25.0):
        img, b = render_face_info(brow_angle=angle, seed=4, style=UPRIGHT)
        x0, y0, x1, y1 = b["left_brow"]  # viewer's left brow: its inner end is on the right
        outer, inner = _dark_rows(img, (x0, y0, x1, y1), [x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 6])
        slope[angle] = outer - inner  # > 0: inner end higher in the image
    assert slope[25.0] > 4, "brow_angle > 0 raises the inner ends (sad brows)"
    assert slope[-25.0] < -4, "brow_angle < 0 lowers the inner ends (angry V)"


def test_eye_open_and_brow_height_sweeps_are_monotonic():
    heights = [render_face_info(eye_open=v, seed=1, style=UPRIGHT)[1]["left_eye"] for v in (0.4, 0.8, 1.2)]
    h = [b[3] - b[1] for b in heights]
    assert h[0] < h[1] < h[2], f"eye box height should grow with eye_open, got {h}"
    gaps = []
    for v in (0.5, 1.0, 2.0):
        b = render_face_info(brow_height=v, seed=1, style=UPRIGHT)[1]
        gaps.append(b["eyes"][1] - b["brows"][3])
    assert gaps[0] < gaps[1] < gaps[2], f"brow-eye gap should grow with brow_height, got {gaps}"


def test_blur_and_missing_regions():
    sharp, b = render_face_info("happy", "happy", "happy", seed=2)
    blurry = render_face("happy", "happy", "happy", seed=2, blur=4)

    def lap_var(im):
        a = np.asarray(im.convert("L")).astype(float)
        return (a[1:-1, 2:] + a[1:-1, :-2] + a[2:, 1:-1] + a[:-2, 1:-1] - 4 * a[1:-1, 1:-1]).var()

    assert lap_var(blurry) < 0.2 * lap_var(sharp), "blur removes fine edges"
    no_mouth, nb = render_face_info("happy", "happy", "happy", seed=2, draw_mouth=False)
    assert "mouth" not in nb and "eyes" in nb
    x0, y0, x1, y1 = b["mouth"]
    region = np.asarray(no_mouth)[y0:y1, x0:x1].astype(int)
    assert np.ptp(region.reshape(-1, 3), axis=0).max() < 40, "without a mouth the area is plain skin"
    assert "eyes" not in render_face_info(seed=2, draw_eyes=False)[1]


def test_collage_has_several_faces_and_scenery_none():
    assert len(animeface.detect(render_collage(4, seed=0))) >= 2, "a collage shows several faces"
    assert animeface.detect(render_scenery(seed=0)) == [], "the landscape has no face"


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="`mouth`='smirk'"):
        render_face(mouth="smirk")
    with pytest.raises(ValueError, match="mouth_kurve"):
        render_face(mouth_kurve=1.0)
    with pytest.raises(ValueError, match="rotaton"):
        render_face(style={"rotaton": 0})
    with pytest.raises(ValueError, match="`size`"):
        render_face(size=16)
    with pytest.raises(ValueError, match="`n`"):
        render_collage(1)


def _emotion_words(stem: str) -> set[str]:
    tokens = set(re.split(r"[^a-z]+", stem.lower()))
    return {emo for emo, spec in emotions_table().items() for w in spec["words"] if w in tokens}


@pytest.mark.slow
def test_make_examples_matches_the_bundled_set(tmp_path):
    paths = make_examples(tmp_path)
    assert 12 <= len(paths) <= 16 and sum(p.stat().st_size for p in paths) < 2_000_000
    with open(tmp_path / "targets.csv", encoding="utf-8") as f:
        targets = {r["file"]: r["emotion"] for r in csv.DictReader(f)}
    for p in paths:
        words = _emotion_words(p.stem)
        # a file name names its target with exactly one emotion, and names none when it has none
        assert words == ({targets[p.name]} if p.name in targets else set()), (p.name, words)
    bundled = REPO / "examples"
    for p in paths:  # the committed images are what the renderer draws today
        committed = np.asarray(Image.open(bundled / p.name).convert("RGB")).astype(int)
        assert np.abs(committed - np.asarray(Image.open(p))).mean() < 1.0, f"examples/{p.name} is stale"
    assert (bundled / "targets.csv").read_text() == (tmp_path / "targets.csv").read_text()
