"""A corpus of awkward and broken image files, made here, and what loading each one must give.

Every case is either decoded correctly (colours, orientation and size checked against what was
drawn) or refused with an ImageLoadError whose message names the file and the problem. The same
corpus is scored end to end through the runner and the CLI: one bad file must never stop a run.
The corpus itself lives in ``image_corpus`` (registry and broken files) and ``image_corpus_valid``
(awkward but valid files).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import image_corpus_valid  # noqa: F401 -- registers the valid files after the broken ones
import numpy as np
import pytest
from image_corpus import CASES, Case

from harmony_eval.imageio import ImageLoadError, list_images, load_image

# ------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_corpus")
    for c in CASES:
        if not c.skip:
            c.make(d)
    yield d
    for c in CASES:  # let pytest's tmp cleanup remove the unreadable file later
        if not c.skip and c.name == "unreadable.png":
            (d / c.name).chmod(0o644)


def test_corpus_has_at_least_15_kinds_of_bad_input():
    assert len([c for c in CASES if c.problem]) >= 15
    assert len(CASES) >= 30


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_load_image_on_corpus(corpus: Path, c: Case):
    if c.skip:
        pytest.skip(c.skip)
    path = corpus / c.name
    if c.problem is None:
        img = load_image(path)
        assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
        assert img.size == (img.rgb.shape[1], img.rgb.shape[0])
        assert len(img.key) == 64  # sha256 hex of the file bytes
        c.check(img)
        return
    with pytest.raises(ImageLoadError) as ei:
        load_image(path)
    msg = str(ei.value)
    assert msg.startswith(str(path)), msg  # names the file
    assert c.problem in msg.lower(), msg  # and says what is wrong


def test_bomb_is_refused_before_decoding(corpus: Path):
    """100 Mpx would be 300 MB as RGB; refusing from the header keeps the peak memory flat."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for _ in range(3):
        with pytest.raises(ImageLoadError):
            load_image(corpus / "bomb_10000x10000.png")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, f"peak memory grew {grown_mib:.0f} MiB: the image was decoded"


def test_pixel_limit_is_configurable(corpus: Path):
    with pytest.raises(ImageLoadError, match="48x32 = 1,536 px, over the 1,000 px limit"):
        load_image(corpus / "gray16.png", max_pixels=1000)
    assert load_image(corpus / "plain.bmp", max_pixels=64 * 64).size == (64, 64)  # exactly at the limit


def test_list_images_keeps_every_corpus_entry(corpus: Path):
    """Folder listing must keep bad entries (folder named .jpg, broken link, pipe) so the run
    reports them instead of silently dropping them."""
    names = {p.name for p in list_images(corpus)}
    expected = {c.name for c in CASES if not c.skip}
    assert expected <= names, sorted(expected - names)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks/FIFOs are POSIX cases")
def test_listing_is_deterministic(corpus: Path):
    assert list_images(corpus) == list_images(str(corpus))


# ------------------------------------------------------------------------------------- end to end


def _rows_by_name(rows: list[dict]) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in rows}


#: Readable images too small to hold a face: ``load_image`` refuses them (its ``min_side``), but the
#: pipeline reads them and reports no face: they are not broken files (exit code 0, not 1).
TOO_SMALL = {"one_pixel.png", "thin_10x200.png"}


def _check_rows(rows: list[dict]) -> None:
    by_name = _rows_by_name(rows)
    expected = {c.name: c for c in CASES if not c.skip}
    assert sorted(by_name) == sorted(expected), "one row per corpus entry, none lost, none extra"
    assert len(rows) == len(expected)
    for name, c in expected.items():
        row = by_name[name]
        if c.problem is None:
            assert row["status"] in ("ok", "no_face"), (name, row["status"], row["error"])
        elif name in TOO_SMALL:
            assert row["status"] == "no_face" and row["error"] is None, (name, row["status"])
            assert c.problem in row["reason"].lower() and row["verdict"] == "broken", row["reason"]
        else:
            assert row["status"] == "error", (name, row["status"])
            assert c.problem in row["error"].lower(), (name, row["error"])  # names the problem
            assert name in row["error"], row["error"]  # and the file
            assert row["verdict"] is None


def test_score_folder_survives_the_whole_corpus(corpus: Path, tmp_path: Path):
    runner = pytest.importorskip("harmony_eval.runner", reason="the runner is not written yet")
    summary = runner.score_folder(corpus, tmp_path / "out", workers=1, progress=False)
    _check_rows(summary.rows)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "ハッピー 笑顔 ü.png" in html and "broken_link.png" in html  # error rows and odd names reported
    assert summary.n_errors == len([c for c in CASES if c.problem and not c.skip and c.name not in TOO_SMALL])
    assert summary.exit_code == 1  # some files failed
    on_disk = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    _check_rows(on_disk)


@pytest.mark.slow
def test_cli_returns_1_when_some_files_failed(corpus: Path, tmp_path: Path, capsys):
    cli = pytest.importorskip("harmony_eval.cli", reason="the CLI is not written yet")
    out = tmp_path / "cli_out"
    # default workers: 30+ files -> a process pool, so error rows must also cross process boundaries
    code = cli.main(["score", str(corpus), "--out", str(out), "--no-report", "--no-progress"])
    assert code == 1, capsys.readouterr()
    _check_rows([json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()])
    assert "could not be scored" in capsys.readouterr().err
