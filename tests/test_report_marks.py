"""The report says one thing per reading: the overlay's eyes label is the card's pooled eyes reading,
and a calibrated run is marked in the header, not only inside the collapsed run information."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from harmony_eval.overlay import _region_items
from harmony_eval.report import write_report

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def probs(**p: float) -> dict[str, float]:
    return {e: p.get(e, 0.0) for e in EMOTIONS}


def test_eyes_label_is_the_pooled_eyes_reading() -> None:
    row = {
        "probs": probs(happy=0.6, neutral=0.4),
        "regions": {
            "face": {"box": [0, 0, 100, 100], "probs": None},
            "left_eye": {"box": [20, 30, 45, 45], "probs": probs(neutral=0.38, happy=0.32, sad=0.3)},
            "right_eye": {"box": [55, 30, 80, 45], "probs": probs(happy=0.7, neutral=0.3)},
            "eyes": {"box": [20, 30, 80, 45], "probs": probs(happy=0.49, neutral=0.31, sad=0.2)},
            "mouth": {"box": [35, 60, 65, 75], "probs": probs(happy=0.8, neutral=0.2)},
        },
    }
    items = {region: (top, label) for region, _, top, label in _region_items(row)}
    assert items["left_eye"][1] == "eyes: happy 0.49"  # was "eyes: neutral 0.38", the left eye alone
    assert items["right_eye"][1] == ""  # one label for both eye boxes
    assert items["left_eye"][0] == ("neutral", 0.38)  # each box is still coloured by its own reading
    assert items["mouth"][1] == "mouth: happy 0.80"


def test_calibrated_run_is_marked_in_the_header(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(img)
    row = {"path": str(img), "status": "no_face", "verdict": "broken", "flags": ["no_face"],
           "reason": "no face found", "regions": {}, "scores": {}, "n_faces": 0}  # fmt: skip
    config = {"backend": "anatomy", "emotions": EMOTIONS}
    cal = str(tmp_path / "calib" / "calibration.json")
    for calibration, expected in ((cal, True), (None, False)):
        out = tmp_path / ("cal" if calibration else "plain")
        info = {"config": {**config, "calibration": calibration}}
        html = write_report([row], out, run_info=info, progress=False).read_text(encoding="utf-8")
        header = html[html.index("<header>") : html.index("</header>")]
        assert (f"calibrated with {cal}" in header) is expected
