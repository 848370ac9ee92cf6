"""The HTML report: files written, text escaped, overlays drawn where the boxes are, worst first, robust."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval.overlay import draw_overlay, emotion_colour
from harmony_eval.report import FILES, sort_rows, summarize, write_report
from harmony_eval.testing.render import render_face_info

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def _probs(top: str, p: float = 0.7) -> dict[str, float]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return {e: (p if e == top else rest) for e in EMOTIONS}


def _row(
    path, boxes, *, verdict="perfect", harmony=0.9, target=None, emotion="happy", regions_top=None, **kw
):
    regions_top = regions_top or {}
    regions = {
        r: {"box": list(boxes[r]) if r in boxes else None, "probs": _probs(regions_top.get(r, emotion))}
        for r in ("eyes", "left_eye", "right_eye", "brows", "mouth", "face")
    }
    row = {
        "path": str(path), "status": "ok", "error": None, "n_faces": 1, "target": target, "emotion": emotion,
        "probs": _probs(emotion), "regions": regions,
        "scores": {"eyes_mouth": harmony, "brows_tension": harmony, "coherence": harmony, "target_match": None},
        "harmony": harmony, "verdict": verdict, "flags": [], "reason": f"all regions read {emotion}",
        "backend": "anatomy", "detector": "drawn",
    }  # fmt: skip
    row.update(kw)
    return row


@pytest.fixture()
def scene(tmp_path, monkeypatch):
    """Three drawn faces under tmp_path/imgs (paths relative to cwd, as the runner gives them)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    rows = []
    specs = [
        ('happy & <em> "x".png', ("happy",) * 3, "perfect", 0.91, {}),
        ("mixed.png", ("angry", "angry", "happy"), "broken", 0.21, {"eyes": "angry", "brows": "angry"}),
        ("calm.png", ("neutral",) * 3, "acceptable", 0.55, {}),
    ]
    for i, (name, face, verdict, h, tops) in enumerate(specs):
        img, boxes = render_face_info(*face, size=400, seed=i)
        img.save(tmp_path / "imgs" / name)
        rows.append(
            _row(
                Path("imgs") / name,
                boxes,
                verdict=verdict,
                harmony=h,
                target="happy",
                emotion=face[2],
                regions_top=tops,
                reason=f'eyes say {face[0]} <but> mouth says "{face[2]}"',
            )  # fmt: skip
        )
    return tmp_path, rows


def test_writes_html_charts_and_overlays_with_escaped_text(scene):
    root, rows = scene
    path = write_report(rows, root / "out", title="run <1>", run_info={"config": {"emotions": EMOTIONS}})
    assert path == root / "out" / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    for chart in ("verdicts.png", "harmony.png"):
        with Image.open(root / "out" / FILES / chart) as im:
            assert im.size[0] > 200, f"{chart} is a real chart"
    overlays = sorted((root / "out" / FILES / "overlays").glob("*.png"))
    assert len(overlays) == 3, "one overlay per readable image"
    assert "data:image" not in text, "images are files beside the report, not inlined"
    assert "<em>" not in text and "<but>" not in text, "file names and reasons are escaped"
    assert "<title>run &lt;1&gt;</title>" in text
    for r in rows:
        assert html.escape(r["path"]) in text and html.escape(r["reason"]) in text
        assert f"<span class=badge>{r['verdict']}</span>" in text
    assert 'loading="lazy"' in text, "thumbnails load lazily so thousands of rows stay fast"
    assert text.count("<article") == 3


def test_overlay_pixels_change_on_the_boxes_only():
    img, boxes = render_face_info("sad", "sad", "sad", size=400, seed=2)
    row = _row("x.png", boxes, emotion="sad")
    ov = np.asarray(draw_overlay(img, row, emotions=EMOTIONS)).astype(int)
    src = np.asarray(img).astype(int)
    assert ov.shape[1] == 400, "a 400 px image is not resized"
    x0, y0, x1, y1 = boxes["mouth"]
    edge = ov[(y0 + y1) // 2, x0 - 1 : x0 + 2]
    assert np.abs(edge - src[(y0 + y1) // 2, x0 - 1 : x0 + 2]).max() > 60, "the mouth box outline is drawn"
    sad = np.array([int(emotion_colour("sad")[i : i + 2], 16) for i in (1, 3, 5)])
    assert np.abs(ov[boxes["face"][1] : boxes["face"][3], boxes["face"][0]] - sad).sum(1).min() < 30, (
        "the face box is drawn in the colour of its top emotion (sad)"
    )
    assert np.array_equal(ov[:40, :40], src[:40, :40]), "pixels away from every box are untouched"
    assert ov.shape[0] > 400 and (ov[400:] != 255).any(), "a legend strip is added below the image"
    big = draw_overlay(img.resize((1200, 900)), row)
    assert max(big.size) <= 512, f"overlays are at most 512 px, got {big.size}"


def test_gallery_is_sorted_worst_first(scene):
    root, rows = scene
    rows = rows + [
        {"path": "gone.png", "status": "error", "error": "file not found", "verdict": None, "harmony": None},
        {
            "path": "noface.png",
            "status": "no_face",
            "verdict": "broken",
            "harmony": None,
            "flags": ["no_face"],
        },
    ]
    order = [r["path"] for r in sort_rows(rows)]
    assert order == ["gone.png", "noface.png", "imgs/mixed.png", "imgs/calm.png", 'imgs/happy & <em> "x".png']
    text = write_report(rows, root / "out").read_text(encoding="utf-8")
    paths = re.findall(r"<div class=path>(?:<a [^>]*>)?([^<]*)", text)
    assert paths == [html.escape(p) for p in order], "the gallery shows the rows in the same order"


def test_missing_unreadable_and_malformed_rows_do_not_break_it(scene):
    root, rows = scene
    (root / "imgs" / "broken.png").write_text("not a png")
    bad = [
        {"path": "imgs/nowhere.png", "status": "error", "error": "file not found: <nowhere>", "verdict": None},
        _row("imgs/broken.png", {}, verdict="broken", harmony=0.1),
        {"path": "imgs/mixed.png", "status": "ok", "regions": {"mouth": {"box": [1, 2], "probs": "?"}},
         "scores": None, "flags": None, "probs": None, "verdict": "acceptable", "harmony": "n/a"},
        {"path": 123},
    ]  # fmt: skip
    text = write_report(rows + bad, root / "out").read_text(encoding="utf-8")
    assert text.count("<article") == len(rows) + len(bad), "every row is listed"
    assert "image file not found" in text and "image not readable" in text
    assert html.escape("file not found: <nowhere>") in text
    assert len(list((root / "out" / FILES / "overlays").glob("*.png"))) == 4, "the malformed row still draws"


def test_overlays_are_reused_redrawn_and_cleaned(scene):
    root, rows = scene
    out = root / "out"
    write_report(rows, out)
    overlays = out / FILES / "overlays"
    before = {p.name: p.stat().st_mtime_ns for p in overlays.glob("*.png")}
    image = root / rows[0]["path"]
    os.utime(image, ns=(image.stat().st_atime_ns, max(before.values()) + 10**9))  # image is now newer
    write_report(rows, out)
    after = {p.name: p.stat().st_mtime_ns for p in overlays.glob("*.png")}
    changed = {n for n in before if after[n] != before[n]}
    assert len(changed) == 1, f"only the overlay of the touched image is redrawn, got {changed}"
    rows[1]["regions"]["mouth"]["box"] = [0, 0, 50, 50]
    write_report(rows, out)
    names = {p.name for p in overlays.glob("*.png")}
    assert len(names) == 3 and names != set(after), "a changed row gets a new overlay, the old one is removed"


def test_summary_counts_and_rates(scene):
    _, rows = scene
    rows = rows + [{"path": "e.png", "status": "error", "target": "sad", "flags": ["no_face"]}]
    s = summarize(rows)
    assert s["verdicts"] == {"perfect": 1, "acceptable": 1, "broken": 1, "error": 1}
    assert s["rates"]["perfect"] == pytest.approx(0.25)
    assert s["mean_harmony"] == pytest.approx((0.91 + 0.21 + 0.55) / 3)
    # targets: happy x3 (read happy, happy, neutral) and sad (no reading) -> 2 of 4 match
    assert s["target_match_rate"] == pytest.approx(0.5) and s["with_target"] == 4
    assert s["flags"] == {"no_face": 1}


def test_a_lone_small_face_is_zoomed_in():
    img, boxes = render_face_info("happy", "happy", "happy", size=200, seed=1)
    sprite = Image.new("RGB", (800, 1600), (255, 255, 255))  # a full-body sprite: face 1/4 of the width
    sprite.paste(img, (300, 100))
    shifted = {k: (b[0] + 300, b[1] + 100, b[2] + 300, b[3] + 100) for k, b in boxes.items()}
    zoomed = np.asarray(draw_overlay(sprite, _row("s.png", shifted)))
    whole = np.asarray(draw_overlay(sprite, _row("s.png", shifted, n_faces=3)))
    assert whole.shape[1] < whole.shape[0] / 2 + 10, (
        "with several faces the whole (tall) sprite stays in view"
    )

    def ink(a):  # pixels of the drawn face (not white background, not the legend strip)
        return int((a[:-22].min(axis=2) < 200).sum())

    assert ink(zoomed) > 3 * ink(whole), "a lone small face is shown much larger than in the whole sprite"
