"""Copies of one drawing among labelled images (an RGBA sprite and the same sprite on white, a PNG and
its JPEG) stay on one side of every split of `calibrate`, so no figure is measured on a copy of an
image the calibration was fitted on. Checked on the bundled MIT sprites and on drawn faces."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration.copies import copy_groups
from calibration.models import drawings_per_class, group_holdout, stratified_folds
from harmony_eval import copies
from harmony_eval.detect import build_detectors, find_faces
from harmony_eval.imageio import load_image
from harmony_eval.testing.render import render_face
from harmony_eval.testing.sets import write_labels_csv

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "permissive"
FOUR = ("neutral", "happy", "sad", "angry")


def _jpeg(rgb: np.ndarray, quality: int = 80) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _on_white(path: Path) -> Image.Image:
    im = Image.open(path).convert("RGBA")
    out = Image.new("RGB", im.size, (255, 255, 255))
    out.paste(im, mask=im.split()[3])
    return out


def _print(rgb: np.ndarray, cascade) -> copies._Print:
    faces, _ = find_faces(rgb, cascade)
    return copies.fingerprint(rgb, tuple(faces[0].box) if faces else None)


@pytest.fixture(scope="module")
def cascade():
    return build_detectors(["animeface", "crop"])


def test_a_sprite_its_jpeg_and_its_copy_on_white_are_copies_its_other_expressions_are_not(cascade):
    jane = sorted(FIXTURE.glob("dialogic_Jane_pl3*.png"))
    assert len(jane) >= 5
    rgb = [load_image(p).rgb for p in jane]
    prints = [_print(x, cascade) for x in rgb]
    jpeg = _print(_jpeg(rgb[0]), cascade)
    white = _print(np.asarray(_on_white(jane[0])), cascade)
    assert copies.are_copies(prints[0], jpeg) and copies.are_copies(prints[0], white)
    assert copies.difference(prints[0], white) == 0.0  # load_image flattens RGBA on white: the same pixels
    assert copies.are_copies(prints[0], _print(_jpeg(rgb[0], 50), cascade))  # a rougher JPEG too
    # the other expressions of the same sprite: same canvas, same body, another face, far over the line
    assert min(copies.difference(prints[0], p) for p in prints[1:]) > 2 * copies.MAX_DIFF
    groups = copies.groups_of([*prints, jpeg, white])
    assert len(set(groups[: len(prints)])) == len(prints)  # each expression alone
    assert groups[-2] == groups[-1] == groups[0]


def test_copies_need_the_same_canvas_and_the_same_face():
    a = np.asarray(render_face("happy", "happy", "happy", size=256, seed=1))
    b = np.asarray(render_face("happy", "happy", "sad", size=256, seed=1))  # the mouth alone differs
    box = (64, 64, 192, 192)
    pa, pb = copies.fingerprint(a, box), copies.fingerprint(b, box)
    assert copies.are_copies(pa, copies.fingerprint(a.copy(), box))
    assert not copies.are_copies(pa, pb)
    bigger = np.asarray(Image.fromarray(a).resize((300, 300)))
    assert not copies.are_copies(pa, copies.fingerprint(bigger, box))  # another size: never a copy
    assert not copies.are_copies(pa, copies.fingerprint(a, (10, 10, 90, 90)))  # face elsewhere
    assert not copies.are_copies(pa, copies.fingerprint(a, None))  # one has no face
    # without faces only the very same pixels are a copy: a JPEG is not, nor another mouth
    assert copies.are_copies(copies.fingerprint(a, None), copies.fingerprint(a.copy(), None))
    assert not copies.are_copies(copies.fingerprint(a, None), copies.fingerprint(_jpeg(a), None))
    assert not copies.are_copies(copies.fingerprint(a, None), copies.fingerprint(b, None))
    assert copies.groups_of([pa, None, pb, copies.fingerprint(a, box)]) == [0, 1, 2, 0]
    assert copies.n_copies([0, 1, 2, 0, 0]) == 2


def test_folds_and_hold_outs_keep_each_group_whole():
    rng = np.random.default_rng(0)
    groups = [g for g in range(30) for _ in range(int(rng.integers(1, 4)))]
    y = [FOUR[g % 4] for g in groups]
    assert drawings_per_class(y, groups) == Counter(
        {c: sum(1 for g in range(30) if FOUR[g % 4] == c) for c in FOUR}
    )
    assert drawings_per_class(y) == Counter(y)
    for tr, te in stratified_folds(y, 3, 0, groups):
        assert not {groups[i] for i in tr} & {groups[i] for i in te}
        assert {y[i] for i in te} == set(FOUR)
    tr, te = group_holdout(y, groups, 0.25, 0)
    assert not {groups[i] for i in tr} & {groups[i] for i in te}
    assert len(tr) + len(te) == len(y) and {y[i] for i in te} == set(FOUR)
    # no copies: the folds are StratifiedKFold's, as before groups existed
    from sklearn.model_selection import StratifiedKFold

    plain = list(range(len(y)))
    want = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    got = stratified_folds(y, 3, 0, plain)
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(got, want, strict=True))


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The fixture's 4-class sprites, each also flattened on white (a second file of one drawing)."""
    d = tmp_path_factory.mktemp("twins")
    rows = []
    with open(FIXTURE / "labels.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["emotion"] not in FOUR:
                continue
            src = FIXTURE / r["file"]
            (d / r["file"]).write_bytes(src.read_bytes())
            white = r["file"][:-4] + "_white.png"
            _on_white(src).save(d / white)
            rows += [{"file": r["file"], "emotion": r["emotion"]}, {"file": white, "emotion": r["emotion"]}]
    with open(d / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "emotion"])
        w.writeheader()
        w.writerows(rows)
    return d, len(rows) // 2


@pytest.mark.slow
def test_calibrate_keeps_a_sprite_and_its_copy_on_white_on_one_side_of_every_split(twins):
    from calibration.curve import split
    from calibration.evaluate import Dataset, _splits
    from calibration.features import score_images
    from calibration.labels import read_labels

    d, n = twins
    lab = read_labels(d / "labels.csv", d, list(FOUR), False)
    scorer, items = score_images([str(r["file"]) for r in lab.rows], backend="anatomy", emotions=list(FOUR),
                                 detectors=["animeface", "crop"], progress=False)  # fmt: skip
    groups = copy_groups(items)
    assert copies.n_copies(groups) == n  # every sprite found with its copy, nothing else joined
    names = [Path(s.file).name.replace("_white", "") for s in items]
    assert all(
        (groups[i] == groups[j]) == (names[i] == names[j]) for i in range(len(items)) for j in range(i)
    )
    ds = Dataset(lab, items, scorer, list(FOUR), groups=groups)
    for cv in (5, None):
        for tr, te in _splits(ds, cv, 0):
            assert not {groups[i] for i in tr} & {groups[i] for i in te}, cv
    pool, test = split(ds, 0.3, 0)
    assert not {groups[i] for i in pool} & {groups[i] for i in test}
    with pytest.raises(ValueError, match="distinct drawings"):
        _splits(ds, n + 1, 0)  # more folds than drawings, though not than files


@pytest.mark.slow
def test_calibrate_reports_the_copies_it_kept_together(twins, tmp_path):
    from harmony_eval.cli import main

    d, n = twins
    out = tmp_path / "cal"
    rc = main([
        "calibrate", "--images", str(d), "--labels", str(d / "labels.csv"), "--cv", "5", "--backend", "anatomy",
        "--bootstrap", "0", "--no-progress", "--no-curve", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["n_copies"] == n and rep["face"]["n"] == 2 * n - rep["n_no_face"]
    assert f"Copies: {n} labelled images are copies" in (out / "report.md").read_text(encoding="utf-8")
    # and `score --calibration` says how many distinct drawings taught it
    from harmony_eval.calibrated import Calibration
    from harmony_eval.reader_info import status_text

    training = Calibration.load(out / "calibration.json").training
    assert training["n_copies"] == n
    info = {"calibrated": True, "n_labels": training["n_labels"], "n_copies": training["n_copies"]}
    assert training["n_labels"] == 2 * n
    assert (
        status_text(info)
        == f"calibrated on {2 * n} labels ({n} distinct drawings: {n} are copies of another)"
    )


@pytest.mark.slow
def test_suggest_lists_one_copy_of_each_drawing_and_none_of_a_labelled_one(twins, tmp_path):
    from calibration.cli import run_suggest

    d, n = twins
    labelled = tmp_path / "labelled.csv"
    with open(d / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    first = [r for r in rows if not r["file"].endswith("_white.png")][:4]  # 4 RGBA sprites labelled
    write_labels_csv(labelled, first, ["file", "emotion"])
    given = {r["file"] for r in first}
    path = run_suggest(d, tmp_path / "sug", 2 * n, labels=labelled, backend="anatomy",
                       detectors=["animeface", "crop"])  # fmt: skip
    with open(path, newline="", encoding="utf-8") as fh:
        out = list(csv.DictReader(fh))
    # the labels given come first, as given (one file holds every batch), then the suggestions
    assert [(r["file"], r["emotion"], r["rank"]) for r in out[: len(first)]] == [
        (r["file"], r["emotion"], "") for r in first
    ]
    picked = [r["file"] for r in out[len(first) :]]
    assert all(r["rank"] and not r["emotion"] for r in out[len(first) :])
    drawings = [f.replace("_white", "") for f in picked]
    assert picked and len(drawings) == len(set(drawings))  # never both copies of one sprite
    assert not set(drawings) & given  # nor the copy of a sprite already labelled
    assert len(picked) <= n - len(given)


@pytest.mark.slow
def test_copies_labelled_differently_are_named_in_the_report(twins, tmp_path):
    from harmony_eval.cli import main

    d, _ = twins
    with open(d / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    slip = next(r for r in rows if r["file"].endswith("_white.png"))
    was = slip["emotion"]
    slip["emotion"] = next(e for e in FOUR if e != was)  # the copy on white says something else
    labels = write_labels_csv(tmp_path / "labels.csv", rows, ["file", "emotion"])
    out = tmp_path / "cal"
    rc = main([
        "calibrate", "--images", str(d), "--labels", str(labels), "--backend", "anatomy", "--bootstrap", "0",
        "--no-progress", "--no-curve", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (found,) = rep["copies_labelled_differently"]
    original = slip["file"].replace("_white", "")
    assert sorted(Path(f).name for f in found["files"]) == sorted([original, slip["file"]])
    assert sorted(found["labels"]) == sorted([was, slip["emotion"]]) and found["target"] == "emotion"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert (
        "Copies labelled differently (emotion), check them:" in md
        and f"`{slip['file']}` {slip['emotion']}" in md
    )


def test_a_large_render_keeps_a_small_print_and_still_tells_its_copies():
    """A 4k render's face region is kept at the scale fitting the image in STORE px (at full size a
    print would take tens of MB); its JPEG is still a copy, another mouth still is not."""
    a = np.asarray(render_face("happy", "happy", "happy", size=3072, seed=2))
    b = np.asarray(render_face("happy", "happy", "sad", size=3072, seed=2))
    box = (700, 700, 2400, 2400)
    pa = copies.fingerprint(a, box)
    assert max(pa.grey.shape) <= copies.STORE and pa.scale < 1.0
    assert copies.are_copies(pa, copies.fingerprint(_jpeg(a), box))
    assert not copies.are_copies(pa, copies.fingerprint(b, box))
