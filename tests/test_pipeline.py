"""End to end: rendered faces with known expressions through harmony_eval.score / score_folder / CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import harmony_eval
from harmony_eval.cli import main
from harmony_eval.pipeline import ROW_KEYS
from harmony_eval.runner import read_rows, score_folder
from harmony_eval.testing.render import render_face


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    for name, (eyes, brows, mouth) in {
        "happy_coherent.png": ("happy", "happy", "happy"),
        "angry_coherent.png": ("angry", "angry", "angry"),
        "sad_coherent.png": ("sad", "sad", "sad"),
        "clash_a.png": ("happy", "angry", "sad"),
        "clash_b.png": ("angry", "sad", "happy"),
    }.items():
        render_face(eyes, brows, mouth, seed=3).save(d / name)
    Image.new("RGB", (256, 256), (240, 240, 240)).save(d / "blank.png")
    return d


@pytest.fixture(scope="module")
def df(faces_dir):
    return harmony_eval.score(faces_dir, backend="anatomy").set_index("path", drop=False)


def _row(df, name):
    return df[df["path"].str.endswith(name)].iloc[0]


def test_columns_are_the_output_contract(df):
    assert list(df.columns) == list(ROW_KEYS)
    assert len(df) == 6


def test_probabilities_sum_to_one_and_scores_in_range(df):
    ok = df[df["status"] == "ok"]
    assert len(ok) == 5  # every rendered face is found
    for _, row in ok.iterrows():
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        for r in ("eyes", "brows", "mouth"):
            assert sum(row["regions"][r]["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert all(0 <= v <= 1 for v in row["scores"].values() if v is not None)
        assert row["verdict"] in ("perfect", "acceptable", "broken") and row["reason"]


def test_blank_image_has_no_face(df):
    row = _row(df, "blank.png")
    assert (row["status"], row["verdict"], row["flags"]) == ("no_face", "broken", ["no_face"])


def test_coherent_faces_read_their_emotion_and_beat_clashing_ones(df):
    for e in ("happy", "angry", "sad"):
        row = _row(df, f"{e}_coherent.png")
        assert row["target"] == e  # the emotion word in the file name
        assert row["emotion"] == e, (row["probs"], row["reason"])
    coherent = [_row(df, f"{e}_coherent.png") for e in ("happy", "angry", "sad")]
    clashing = [_row(df, n) for n in ("clash_a.png", "clash_b.png")]
    # regions drawn with different emotions must score lower, and never pass as perfect
    assert np.mean([r["harmony"] for r in coherent]) > np.mean([r["harmony"] for r in clashing]) + 0.1
    assert all(r["verdict"] != "perfect" for r in clashing)
    assert sum(r["verdict"] == "perfect" for r in coherent) >= 2


def test_in_memory_images_and_target_mapping():
    img = np.asarray(render_face("happy", "happy", "happy", seed=1))
    out = harmony_eval.score([img, Image.fromarray(img)], backend="anatomy", targets={"<image 0>": "sad"})
    assert list(out["path"]) == ["<image 0>", "<image 1>"]
    assert out.loc[0, "target"] == "sad" and out.loc[1, "target"] is None
    assert out.loc[0, "scores"]["target_match"] < 0.5  # a smiling face is a poor match for "sad"


def test_score_folder_writes_every_output_and_resumes(faces_dir, tmp_path):
    out = tmp_path / "run"
    s = score_folder(faces_dir, out, backend="anatomy", progress=False)
    for f in ("results.jsonl", "results.csv", "results.parquet", "run.json", "report.html"):
        assert (out / f).is_file(), f
    rows = read_rows(out / "results.jsonl")
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)  # input order
    assert s.n_scored == 6 and s.exit_code == 0
    info = json.loads((out / "run.json").read_text())
    assert (
        info["config"]["backend"] == "anatomy"
        and "numpy" in info["versions"]
        and info["timings"]["seconds"] > 0
    )
    before = (out / "results.jsonl").read_bytes()
    again = score_folder(faces_dir, out, backend="anatomy", progress=False, report=False)
    assert again.n_scored == 0 and again.n_total == 6  # everything already scored
    assert (out / "results.jsonl").read_bytes() == before


def test_resuming_with_other_settings_is_refused(faces_dir, tmp_path):
    out = tmp_path / "run"
    score_folder(faces_dir, out, backend="anatomy", progress=False, report=False)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ValueError, match="other settings.*emotions"):  # rows would mix two vocabularies
        score_folder(
            faces_dir, out, backend="anatomy", emotions="neutral,happy", progress=False, report=False
        )
    assert (out / "results.jsonl").read_bytes() == before  # nothing already computed is lost


def test_same_input_same_bytes(faces_dir, tmp_path):
    a = score_folder(faces_dir, tmp_path / "a", backend="anatomy", progress=False, report=False, workers=1)
    b = score_folder(faces_dir, tmp_path / "b", backend="anatomy", progress=False, report=False, workers=2)
    assert (a.out_dir / "results.jsonl").read_bytes() == (b.out_dir / "results.jsonl").read_bytes()


def test_cli_exit_codes(faces_dir, tmp_path):
    assert (
        main(["score", str(faces_dir), "--out", str(tmp_path / "o"), "--backend", "anatomy", "--no-report"])
        == 0
    )
    assert main(["score", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
    assert main(["score", str(faces_dir), "--backend", "telepathy", "--out", str(tmp_path / "o3")]) == 2


def test_importing_the_library_imports_no_workflow_or_torch():
    code = (
        "import sys, harmony_eval, harmony_eval.pipeline, harmony_eval.runner;"
        "bad = [m for m in ('generation', 'training', 'benchmarks', 'calibration', 'torch', 'diffusers')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
