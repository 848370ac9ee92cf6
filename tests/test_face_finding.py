"""The face-finding benchmark's stress variants and grid checks (benchmarks.face_finding): each variant
keeps the true face where it says, and the grid counts catch a second face in a tile."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.face_finding import VARIANTS, grid_false, grid_tiles, variant


def _face_image() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    img = np.full((300, 200, 3), 240, np.uint8)
    box = (60, 40, 140, 120)
    img[box[1] : box[3], box[0] : box[2]] = (30, 60, 200)  # a distinct patch marks the face
    return img, box


@pytest.mark.parametrize("kind", VARIANTS)
def test_every_variant_keeps_the_face_inside_its_returned_box(kind: str) -> None:
    img, box = _face_image()
    out, (x0, y0, x1, y1) = variant(kind, img, box)
    assert 0 <= x0 < x1 <= out.shape[1] and 0 <= y0 < y1 <= out.shape[0]
    centre = out[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert abs(centre - (30, 60, 200)).max() < 40  # the marked patch is under the box's centre
    if kind in ("tall", "body"):
        assert out.shape[0] > 1.5 * img.shape[0]  # the figure got taller below the face
    if kind in ("chin", "tight"):
        assert y1 == out.shape[0]  # the close-up is cut inside the face, above its chin
        assert max(out.shape[:2]) == 640  # close-ups are shown large, as a frame-filling sprite


def test_grid_tiles_reads_the_period_and_grid_false_counts_doubles_and_misfits() -> None:
    tile = 64
    img = np.full((4 * tile, 4 * tile, 3), 255, np.uint8)
    rng = np.random.default_rng(0)
    for i in range(4):
        for j in range(4):  # textured tiles, plain 4-px gutters
            img[i * tile + 4 : (i + 1) * tile, j * tile + 4 : (j + 1) * tile] = rng.integers(
                0, 256, (60, 60, 3)
            )
    assert grid_tiles(img) == tile
    one_each = [
        (j * tile + 8, i * tile + 8, j * tile + 56, i * tile + 56) for i in range(2) for j in range(2)
    ]
    assert grid_false(one_each, tile) == 0
    assert grid_false([*one_each, (10, 10, 40, 40)], tile) == 1  # a second face in the first tile
    assert grid_false([(0, 0, 8, 8)], tile) == 1  # far smaller than a tile


def test_sibling_rows_count_fires_hits_and_non_siblings_taken_as_misses() -> None:
    """benchmarks.face_siblings on a drawn folder: three finds and a miss of one drawing (the miss
    fires, on the true box), and a blank / noise / other drawing taken as misses never fire."""
    from dataclasses import replace

    from benchmarks.face_siblings import sibling_rows
    from harmony_eval.detect.siblings import PARAMS, signature
    from harmony_eval.types import Face

    def sprite(face_colour: tuple[int, int, int], body_x: int = 60) -> np.ndarray:
        img = np.full((400, 200, 3), 255, np.uint8)
        img[150:390, body_x : body_x + 80] = (90, 120, 200)  # the body: same in every sibling
        img[40:120, 60:140] = face_colour  # the face: what differs between expressions
        img[70:80, 80:90] = 0
        return img

    box = (60, 40, 140, 120)
    found = [Face(box, 0.9, "animeface")]
    entries = [
        ("f", "a", signature(sprite((250, 200, 180))), found, box),
        ("f", "b", signature(sprite((240, 190, 170))), found, box),
        ("f", "c", signature(sprite((230, 180, 160))), found, box),
        ("f", "miss", signature(sprite((200, 150, 140))), [], box),
    ]
    thumbs = [("other", sprite((250, 200, 180), body_x=10))]  # another pose: not a sibling
    rows = sibling_rows({"src": entries}, thumbs)
    assert rows["sib/src"]["fired"] == 1 and rows["sib/src"]["sib_hit"] == 1.0
    assert rows["loo/src"] == {"tried": 3, "fired": 3, "hit": 3}  # each find, as a miss, gets its box back
    assert rows["fp/sib_blank"] == {"tried": 1, "fired": 0}
    assert rows["fp/sib_noise"] == {"tried": 1, "fired": 0}
    assert rows["fp/sib_other"] == {"tried": 1, "fired": 0}
    strict = replace(PARAMS, min_siblings=4)  # the rows judge the constants they are given
    assert sibling_rows({"src": entries}, thumbs, strict)["sib/src"]["fired"] == 0
    assert sibling_rows({"src": entries}, thumbs, strict)["loo/src"]["fired"] == 0
    del entries[1:3]  # one find left: one box could be the detector's slip, no fire
    assert sibling_rows({"src": entries}, [])["sib/src"]["fired"] == 0


def test_finder_and_cli_take_detector_params(capsys, tmp_path) -> None:
    """``--param`` reaches the benchmark's cascade (a drawn face cut tight is found by the crop test
    alone, not with an eye-peak line no mark reaches); a bad name is a one-line error, exit 2."""
    from benchmarks.face_finding import default_finder, main
    from harmony_eval.testing.render import render_face_info

    img, truth = render_face_info(size=256, seed=0)
    x0, y0, x1, y1 = truth["face"]
    tight = np.ascontiguousarray(np.asarray(img)[y0 + 10 : y1 - 20, x0 + 5 : x1 - 5, :3])
    assert [f.detector for f in default_finder()(tight)] == ["animeface"]
    no_anime = ["animeface.min_flat=1.01", "animeface.flat_min_side=1"]  # every view taken as texture
    assert [f.detector for f in default_finder(no_anime)(tight)] == ["crop"]
    assert default_finder([*no_anime, "crop.min_peak=1000"])(tight) == []
    assert main(["--data", str(tmp_path), "--param", "crop.min_pek=1"]) == 2
    assert "did you mean 'min_peak'" in capsys.readouterr().err
    # a constant this table cannot see is refused, not silently judged as "no change"
    assert main(["--data", str(tmp_path), "--param", "mouth.teeth_dark=10"]) == 2
    assert "mouth.teeth_dark changes readings, not face finding" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--param", "siblings.min_siblings=3"]) == 2
    assert "add --siblings" in capsys.readouterr().err
