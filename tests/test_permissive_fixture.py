"""Real MIT-licensed sprites bundled in tests/fixtures/permissive, and the bundled examples: face
finding and a five-emotion brow reading checked on art the rules were not tuned on."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harmony_eval.detect import build_detectors, find_faces
from harmony_eval.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "permissive"


@pytest.fixture(scope="module")
def cascade():
    return build_detectors(["animeface", "crop"])  # MediaPipe's model is optional: not needed here


def _rows(source: str) -> list[dict[str, str]]:
    with open(FIXTURE / "labels.csv", newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["source"].startswith(source)]


@pytest.mark.parametrize(("source", "least"), [("renpy", 13), ("dialogic", 20)])
def test_faces_found_on_the_permissive_sprites(cascade, source, least):
    rows = _rows(source)
    missed = [r["file"] for r in rows if not find_faces(load_image(FIXTURE / r["file"]).rgb, cascade)[0]]
    # measured 13/13 and 20/25 (the 5 missed: closed eyes in single-colour line art, eyes in shadow,
    # face parts without an outline); a ratchet: fewer means detection got worse on unseen art
    assert len(rows) - len(missed) >= least, missed


def test_permissive_heads_on_a_taller_canvas_are_still_found(cascade):
    # a full-body sprite with a small face: the same sprite on a canvas 2.5 x as tall, as the
    # held-out full-body sprites are; found through the second look on the drawn part
    import numpy as np

    found = without = 0
    for r in _rows("dialogic")[:9]:  # one character's 9 sprites, 512 x 768 (7 found as they are)
        img = load_image(FIXTURE / r["file"]).rgb
        tall = np.full((int(2.5 * img.shape[0]), img.shape[1], 3), 255, np.uint8)
        tall[: img.shape[0]] = img
        found += bool(find_faces(tall, cascade)[0])
        without += bool(find_faces(tall, cascade, fallback=None)[0])
    assert found >= 7 and without <= 4, (found, without)  # measured 7/7 with the second look, 4 without


@pytest.mark.parametrize("name", ["sad_01.png", "sad_02.png"])
def test_sad_brows_do_not_read_surprised_when_surprised_is_in_the_vocabulary(name):
    from harmony_eval.pipeline import Scorer

    row = Scorer(
        backend="anatomy", emotions="neutral,happy,sad,angry,surprised", detectors=["animeface", "crop"]
    ).score_one(str(ROOT / "examples" / name))
    brows = row["regions"]["brows"]["probs"]
    # raised inner ends are a slant: sadness, not the even lift of surprise
    assert max(brows, key=brows.get) == "sad" and brows["sad"] > brows["surprised"], brows
    assert row["emotion"] == "sad" and row["verdict"] == "perfect", row["reason"]
