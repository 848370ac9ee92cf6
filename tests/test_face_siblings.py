"""Face box from siblings (detect/siblings.py, sibling_pass.py): a miss among expression variants of
one drawing takes its siblings' box; a different drawing, a blank or noise image, another canvas
size or another folder never does; the rows do not depend on order or workers; the option turns it off."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmony_eval.detect import siblings as S
from harmony_eval.pipeline import Scorer
from harmony_eval.testing.render import render_face_info

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "permissive"
OPTS = {"backend": "anatomy", "detectors": ["animeface", "crop"]}


def _sprite(seed: int = 0, body: int = 0, **kw) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A full-body sprite: a drawn head (render) over a drawn body on a 256 x 512 white canvas;
    ``body`` shifts the body and its strap (another drawing's pose)."""
    img, boxes = render_face_info(size=256, seed=seed, style={"rotation": 0}, **kw)
    canvas = np.full((512, 256, 3), 255, np.uint8)
    canvas[:256] = np.asarray(img)[..., :3]
    canvas[256:480, 60 + body : 196 + body] = (90, 120, 200)
    canvas[300:470, 90 + 2 * body : 100 + 2 * body] = (40, 40, 60)  # a strap: detail outside the face
    return canvas, boxes["face"]


def _save(folder: Path, name: str, img: np.ndarray) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(folder / name)
    return str(folder / name)


@pytest.fixture(scope="module")
def sprite_set(tmp_path_factory) -> dict:
    """Three found expressions + one miss (no eyes drawn: animeface finds nothing) of one drawing,
    with unrelated images beside them in the same folder and the miss again elsewhere."""
    d = tmp_path_factory.mktemp("set")
    files = {e: _save(d / "a", f"{e}.png", _sprite(eyes=e, mouth=e)[0]) for e in ("neutral", "sad", "angry")}
    miss, truth = _sprite(draw_eyes=False, mouth="happy")
    files["miss"] = _save(d / "a", "miss.png", miss)
    files["other"] = _save(d / "a", "other_drawing.png", _sprite(seed=1, body=40, draw_eyes=False)[0])
    files["blank"] = _save(d / "a", "blank.png", np.full_like(miss, 255))
    rng = np.random.default_rng(0)
    files["noise"] = _save(d / "a", "noise.png", rng.integers(0, 256, miss.shape, dtype=np.uint8))
    small = np.asarray(Image.fromarray(miss).resize((240, 480), Image.LANCZOS))
    files["resized"] = _save(d / "a", "resized.png", small)
    files["elsewhere"] = _save(d / "b", "miss.png", miss)
    return {"files": files, "truth": truth}


def _rows(files: list[str], workers: int = 1, **opts) -> dict[str, dict]:
    sc = Scorer(**OPTS, **opts)
    return {r["path"]: r for _, _, r in sc.iter_scored(files, workers=workers)}


def test_a_miss_among_its_siblings_gets_their_box_and_says_so(sprite_set) -> None:
    f = sprite_set["files"]
    rows = _rows(sorted(f.values()))
    miss = rows[f["miss"]]
    assert miss["status"] == "ok" and miss["detector"] == "siblings"
    assert "face_from_siblings" in miss["flags"] and "3 sibling images" in miss["reason"]
    sib_boxes = [Scorer(**OPTS).prepare(f[e]).faces[0].box for e in ("neutral", "sad", "angry")]
    x0, y0, x1, y1 = miss["regions"]["face"]["box"]
    assert [x0, y0, x1, y1] == [int(v) for v in np.median(sib_boxes, axis=0)]  # their median box
    tx0, ty0, tx1, ty1 = sprite_set["truth"]
    assert tx0 <= (x0 + x1) / 2 <= tx1 and ty0 <= (y0 + y1) / 2 <= ty1  # on the drawn face
    assert miss["regions"]["mouth"]["probs"] is not None  # the measurement stage read the new face


def test_non_siblings_never_get_a_box(sprite_set) -> None:
    f = sprite_set["files"]
    rows = _rows(sorted(f.values()))
    for k in ("other", "blank", "noise", "resized", "elsewhere"):
        assert rows[f[k]]["status"] == "no_face", k  # another drawing / blank / noise / size / folder
        assert rows[f[k]]["detector"] == "none", k
    for e in ("neutral", "sad", "angry"):
        assert rows[f[e]]["detector"] == "animeface"  # finds are left as they were


def test_rows_do_not_depend_on_order_or_workers(sprite_set) -> None:
    files = sorted(sprite_set["files"].values())
    forward = _rows(files)
    backward = _rows(files[::-1])
    pooled = _rows(files[::-1], workers=2)
    assert forward == backward == pooled


def test_the_option_switches_it_off_and_is_validated(sprite_set) -> None:
    f = sprite_set["files"]
    rows = _rows([f["neutral"], f["sad"], f["angry"], f["miss"]], face_from_siblings=False)
    assert rows[f["miss"]]["status"] == "no_face"
    assert "face_from_siblings" in Scorer(**OPTS, face_from_siblings=False).options
    with pytest.raises(ValueError, match="face_from_siblings"):
        Scorer(**OPTS, face_from_siblings="no")
    with pytest.raises(TypeError, match="face_from_sibling"):
        Scorer(**OPTS, face_from_sibling=False)  # misspelt: unknown options raise


def _member(name: str, img: np.ndarray, box, group: str = "g") -> S.Member:
    return S.Member(name, group, S.signature(img), box, "animeface" if box else "none", name)


def test_the_decision_needs_agreeing_real_detections() -> None:
    img, _ = _sprite()
    box = (64, 80, 192, 208)
    miss = _member("miss", _sprite(draw_eyes=False)[0], None)
    two = [_member("a", img, box), _member("b", img, box)]
    assert S.sibling_box(miss, [miss, *two])[0] == box
    assert S.sibling_box(miss, [miss, two[0]]) is None  # one sibling could be the detector's slip
    crop = S.Member("c", "g", S.signature(img), box, "crop", "c")
    assert S.sibling_box(miss, [miss, two[0], crop]) is None  # a tight-crop guess is no evidence
    far = _member("f", img, (0, 300, 120, 420))
    assert S.sibling_box(miss, [miss, two[0], far]) is None  # boxes that disagree
    assert S.sibling_box(miss, [miss, *two], S.Params(min_siblings=3)) is None


def _fixture_cases() -> list[tuple[str, np.ndarray, str]]:
    from harmony_eval.imageio import load_image

    with open(FIXTURE / "labels.csv", newline="", encoding="utf-8") as fh:
        chars = {r["file"]: r["character"] for r in csv.DictReader(fh)}
    names = [n for n in sorted(chars) if chars[n] in ("Jane", "Antonio")]
    return [(n, load_image(FIXTURE / n).rgb, chars[n]) for n in names]


def test_permissive_dialogic_misses_get_their_own_characters_box() -> None:
    """The bundled MIT sprites: Antonio and Jane share a folder and a 512 x 768 canvas; each miss
    (eyes in shadow, line art) takes its own character's box, and it is the true face."""
    from benchmarks.detection import hit
    from harmony_eval.detect import build_detectors, find_faces

    truth = json.loads((ROOT / "benchmarks" / "face_boxes.json").read_text())
    dets = build_detectors(["animeface", "crop"])
    members, chars = [], {}
    for name, img, char in _fixture_cases():
        faces, det = find_faces(img, dets)
        members.append(S.Member(name, "permissive", S.signature(img), faces[0].box if faces else None, det))
        chars[name] = char
    got = S.sibling_boxes(members)
    misses = [m.name for m in members if m.box is None]
    assert len(misses) >= 3 and set(got) == set(misses)
    for name, (box, sibs) in got.items():
        assert {chars[s] for s in sibs} == {chars[name]}  # never the other character's box
        assert hit([box], tuple(truth[f"dialogic/{name}"]))


def test_cli_switch_turns_it_off_and_the_run_records_it(sprite_set, tmp_path) -> None:
    from harmony_eval.cli import main

    f = sprite_set["files"]
    folder = str(Path(f["miss"]).parent)
    args = ["score", folder, "--out", str(tmp_path / "run"), "--backend", "anatomy"]
    args += ["--detectors", "animeface,crop", "--no-report", "--workers", "1", "--no-face-from-siblings"]
    assert main(args) == 0
    rows = {json.loads(x)["path"]: json.loads(x) for x in (tmp_path / "run" / "results.jsonl").open()}
    assert rows[f["miss"]]["status"] == "no_face"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["scorer"]["detection"]["face_from_siblings"] is False


def test_the_runner_streams_found_faces_while_a_folders_misses_wait(sprite_set) -> None:
    """in_order=False (the runner): the misses of a folder follow its last image, faces found do
    not wait behind them, and every row is the one the in-order pass gives."""
    f = sprite_set["files"]
    files = [f["miss"], f["noise"], f["neutral"], f["sad"], f["angry"]]  # misses first
    sc = Scorer(**OPTS)
    ordered = [row for _, _, row in sc.iter_scored(files)]
    streamed = [row for _, _, row in sc.iter_scored(files, in_order=False)]
    assert [r["path"] for r in ordered] == files
    assert [r["path"] for r in streamed] == [f["neutral"], f["sad"], f["angry"], f["miss"], f["noise"]]
    assert sorted(streamed, key=lambda r: files.index(r["path"])) == ordered
    assert streamed[3]["detector"] == "siblings" and streamed[4]["status"] == "no_face"


def test_calibration_boxes_a_labelled_miss_from_its_unlabelled_siblings() -> None:
    """Labels cover a few images of a folder: a labelled miss whose siblings nobody labelled still
    gets the face `score` gives it over the whole folder (same box, same row), instead of no face."""
    from calibration.features import score_images

    jane = sorted(str(p) for p in FIXTURE.glob("dialogic_Jane_*.png"))
    scorer = Scorer(backend="anatomy", detectors=["animeface", "crop"])
    by_folder = {prep.path: (prep, row) for prep, _, row in scorer.iter_scored([(f, f) for f in jane])}
    boxed = [f for f, (prep, _) in by_folder.items() if prep.detector == "siblings"]
    assert boxed, "the fixture's Jane sprites hold misses that their siblings box"
    found = [f for f in jane if by_folder[f][0].detector == "animeface"]
    labelled = [boxed[0], found[0]]  # one found sibling labelled: the labelled pair alone cannot box it
    _, alone = score_images(
        labelled, backend="anatomy", detectors=["animeface", "crop"], progress=False, face_from_siblings=False
    )
    assert not alone[0].prep.faces  # a miss by itself
    _, items = score_images(labelled, backend="anatomy", detectors=["animeface", "crop"], progress=False)
    got = items[0]
    assert got.file == boxed[0] and got.prep.detector == "siblings" and got.ok
    assert got.prep.faces[0].box == by_folder[boxed[0]][0].faces[0].box
    assert got.row["emotion"] == by_folder[boxed[0]][1]["emotion"]
    assert "face_from_siblings" in got.row["flags"]
    assert items[1].prep.detector == "animeface" and items[1].row == by_folder[found[0]][1]  # kept


def _jane() -> tuple[list[str], dict]:
    jane = sorted(str(p) for p in FIXTURE.glob("dialogic_Jane_*.png"))
    scorer = Scorer(backend="anatomy", detectors=["animeface", "crop"])
    return jane, {prep.path: prep for prep, _, _ in scorer.iter_scored([(f, f) for f in jane])}


def test_calibration_detects_each_labelled_image_once(monkeypatch) -> None:
    """The second decision over a miss's folder reuses the labelled images' first-pass view: only
    the unlabelled siblings are detected then, each once, and none of them is scored again on a box
    (only the labelled miss is)."""
    from calibration.features import score_images

    jane, preps = _jane()
    boxed = [f for f in jane if preps[f].detector == "siblings"]
    found = [f for f in jane if preps[f].detector == "animeface"]
    labelled = [boxed[0], found[0]]
    detected: list[str] = []
    real = Scorer.prepare

    boxed_again: list[str] = []

    def counting(self, item, name=None, face=None):
        (detected if face is None else boxed_again).append(str(name if name is not None else item))
        return real(self, item, name, face)

    monkeypatch.setattr(Scorer, "prepare", counting)
    _, items = score_images(labelled, backend="anatomy", detectors=["animeface", "crop"], progress=False)
    assert items[0].prep.detector == "siblings"  # boxed from the unlabelled ones
    from harmony_eval.imageio import list_images

    folder = sorted(str(q) for q in list_images([FIXTURE], recursive=False))
    assert sorted(detected) == folder  # every image of the folder once, none twice
    unlabelled_misses = [f for f in boxed if f not in labelled]
    assert unlabelled_misses, "the fixture's Jane sprites hold more than one miss"
    assert boxed_again == [boxed[0]]  # the unlabelled misses are not rescored: nobody reads them


def test_calibration_unboxes_a_miss_the_whole_folder_does_not_box(monkeypatch) -> None:
    """A labelled miss boxed from the labelled few, which the decision over the whole folder leaves
    without a box, comes out as the miss it is (no face), as `score` on the folder would give it."""
    from calibration.features import score_images
    from harmony_eval.detect import siblings as siblings_module

    jane, preps = _jane()
    boxed = [f for f in jane if preps[f].detector == "siblings"]
    found = [f for f in jane if preps[f].detector == "animeface"]
    labelled = [boxed[0], *found[:3]]  # enough found siblings labelled to box it on their own
    _, first = score_images(
        labelled, backend="anatomy", detectors=["animeface", "crop"], progress=False, face_from_siblings=True
    )
    assert len(jane) > len(labelled) and first[0].prep.detector == "siblings"
    # the whole folder's decision (the only call after the first pass) gives no box
    monkeypatch.setattr(siblings_module, "sibling_boxes", lambda members, p=None: {})
    _, items = score_images(labelled, backend="anatomy", detectors=["animeface", "crop"], progress=False)
    got = items[0]
    assert not got.prep.faces and got.pred is None and got.row["status"] == "no_face"
    assert [s.row for s in items[1:]] == [s.row for s in first[1:]]  # the found ones are untouched


def test_members_are_kept_only_for_folders_holding_a_miss(sprite_set, tmp_path) -> None:
    """The sibling test's view kept for a later decision (calibrate) stays for a folder with a miss
    and is dropped for a folder where every image has its face: nobody decides over that one again."""
    import shutil

    files = sprite_set["files"]
    found = [files[e] for e in ("neutral", "sad", "angry")]
    clean = [shutil.copy(f, tmp_path / Path(f).name) for f in found]
    members: dict = {}
    items = [*found, files["miss"], *map(str, clean)]
    rows = {
        p.path: p.detector for p, _, _ in Scorer(**OPTS).iter_scored([(f, f) for f in items], members=members)
    }
    assert [rows[f] for f in found] == ["animeface"] * 3 and rows[files["miss"]] == "siblings"
    assert sorted(members) == sorted([*found, files["miss"]])  # folder a: kept; the clean copies: dropped
    assert members[files["miss"]].box is None and all(members[f].box is not None for f in found)
