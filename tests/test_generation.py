"""`harmony-eval generate` with the tiny random pipeline: the full 48-image grid, manifest, PNG
metadata, resuming, and clear errors for bad arguments. CPU only, ~32 px, 2 denoising steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from generation.grid import build_grid, load_negative  # noqa: E402
from generation.pipeline import limit_torch_threads  # noqa: E402
from generation.run import MANIFEST_KEYS, a1111_parameters, read_manifest  # noqa: E402
from harmony_eval.cli import main  # noqa: E402


def _tiny(steps: int = 2) -> list[str]:
    """Options for a tiny-random run: 32x32 px, `steps` denoising steps, CPU, no progress bar."""
    return [
        "--model",
        "tiny-random",
        "--width",
        "32",
        "--height",
        "32",
        "--steps",
        str(steps),
        "--device",
        "cpu",
        "--no-progress",
    ]


TINY = _tiny()


@pytest.fixture(autouse=True)
def _one_thread():
    # The tiny models are ~35k parameters: two threads on a shared 2-core box were 10-300x slower.
    with limit_torch_threads(1):
        yield


def _rows(run):
    return [json.loads(x) for x in (run / "manifest.jsonl").read_text().splitlines() if x.strip()]


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The seed's default grid, drawn once for the tests below."""
    run = tmp_path_factory.mktemp("gen") / "run"
    assert main(["generate", *TINY, "--out", str(run)]) == 0
    return run


def test_default_grid_is_the_seeds_48_cells():
    items = build_grid()
    cells = {(i.archetype, i.emotion, i.cfg, i.seed) for i in items}
    assert len(items) == len(cells) == 48  # 4 archetypes x 4 active emotions x 3 CFGs x 1 seed
    assert {i.emotion for i in items} == {"neutral", "happy", "sad", "angry"}  # surprised is off by default
    assert {i.cfg for i in items} == {5.0, 7.0, 9.0}
    assert len({i.file for i in items}) == 48  # one file name per cell, so reruns can find them
    happy = next(i for i in items if i.emotion == "happy" and i.archetype == "Soft")
    assert "happy smiling expression" in happy.prompt and "gentle soft-featured" in happy.prompt
    assert happy.negative == load_negative() and "multiple faces" in happy.negative


def test_grid_selection_and_lora_sweep_add_dimensions():
    items = build_grid(
        ["Stoic"], ["surprised", "sad"], cfgs=[7], seeds=[1, 2], template=1, lora_scales=[0, 0.5]
    )
    assert len(items) == 1 * 2 * 1 * 2 * 2
    assert items[0].prompt.startswith("anime illustration, close-up face")  # template 1 of templates.txt
    assert {i.file.rsplit("_", 1)[1] for i in items} == {"lora0.png", "lora0.5.png"}
    assert build_grid(negative="")[0].negative == ""  # "" = no negative prompt


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"archetypes": ["soft"]}, "Unknown archetype(s) ['soft']"),
        ({"emotions": ["bored"]}, "Unknown emotion(s) ['bored']"),
        ({"template": 9}, "`template` index 9 is out of range"),
        ({"template": "a {hair} girl"}, "unknown field(s) ['hair']"),
        ({"cfgs": [7, 7]}, "no duplicates"),
        ({"seeds": [-1]}, "non-negative"),
    ],
)
def test_bad_grid_arguments_say_what_is_wrong(kwargs, needle):
    with pytest.raises(ValueError, match=None) as e:
        build_grid(**kwargs)
    assert needle in str(e.value)


def test_full_grid_manifest_and_png_metadata(full_run):
    rows = _rows(full_run)
    assert len(rows) == 48 and len({r["file"] for r in rows}) == 48
    assert all(tuple(r) == MANIFEST_KEYS for r in rows)  # exactly the COMMON.md keys, in order
    for r in rows:
        path = full_run / r["file"]
        im = Image.open(path)
        assert im.size == (32, 32) and im.format == "PNG"
        params = im.info["parameters"]
        assert params == a1111_parameters(r)  # the PNG says what the manifest says
        prompt, negative, settings = params.split("\n")
        assert prompt == r["prompt"] and negative == f"Negative prompt: {r['negative']}"
        assert f"CFG scale: {r['cfg']}, Seed: 0, Size: 32x32, Model: tiny-random" in settings
        assert settings.startswith("Steps: 2, Sampler: DDIM,")  # tiny-random's own scheduler
        assert f"Emotion: {r['emotion']}" in settings and r["emotion"] in r["file"]
    meta = json.loads((full_run / "generation.json").read_text())
    assert meta["generated"] == 48 and meta["pipeline"] == "StableDiffusionPipeline"


def test_images_follow_seed_prompt_and_cfg(full_run):
    rows = {(r["archetype"], r["emotion"], r["cfg"]): r for r in _rows(full_run)}
    a = _pixels(full_run / rows["Soft", "happy", 5.0]["file"])
    b = _pixels(full_run / rows["Soft", "happy", 9.0]["file"])
    c = _pixels(full_run / rows["Soft", "sad", 5.0]["file"])
    assert np.abs(a - b).mean() > 0.5  # guidance scale changes the picture
    # the emotion phrase (past character 130) reaches the model: the tiny tokenizer reads it all
    assert np.abs(a - c).max() > 0
    # the same cell drawn again alone, in a new folder, is pixel-identical: seeds are per image
    again = full_run.parent / "again"
    args = [
        "generate",
        *TINY,
        "--out",
        str(again),
        "--archetypes",
        "Soft",
        "--emotions",
        "happy",
        "--cfgs",
        "5",
    ]
    assert main(args) == 0
    assert np.array_equal(_pixels(again / rows["Soft", "happy", 5.0]["file"]), a)


def test_rerun_skips_and_resumes_a_killed_run(full_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    lines = (run / "manifest.jsonl").read_text().splitlines(keepends=True)
    # A killed run: the last 2 PNGs were written but not their rows, the last row is torn,
    # and 3 images were lost.
    (run / "manifest.jsonl").write_text("".join(lines[:45]) + lines[45][:40])
    lost = [json.loads(x)["file"] for x in lines[:3]]
    for f in lost:
        (run / f).unlink()
    kept = (run / json.loads(lines[10])["file"]).stat().st_mtime_ns
    capsys.readouterr()
    assert main(["generate", *TINY, "--out", str(run)]) == 0
    assert "3 generated, 45 already there" in capsys.readouterr().out
    rows = _rows(run)  # every line parses: the torn tail was cut
    assert len(rows) == 48 and len({r["file"] for r in rows}) == 48  # no duplicates, none missing
    assert all((run / f).is_file() for f in lost)
    assert (run / json.loads(lines[10])["file"]).stat().st_mtime_ns == kept  # finished images untouched
    assert read_manifest(run / "manifest.jsonl") == rows


def test_rerun_with_other_settings_is_refused(full_run, capsys):
    before = (full_run / "manifest.jsonl").read_bytes()
    assert main(["generate", *_tiny(steps=3), "--out", str(full_run)]) == 2
    err = capsys.readouterr().err
    assert "steps=2 (now 3)" in err and "new --out folder" in err
    assert (full_run / "manifest.jsonl").read_bytes() == before  # nothing drawn or appended


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--width", "30"], "`height` and `width` have to be divisible by 8 but are 32 and 30"),
        (["--scheduler", "karras"], "Unknown `scheduler` 'karras'; choose one of"),
        (["--archetypes", "Soft,Cute"], "Unknown archetype(s) ['Cute']"),
        (["--cfgs", "5,x"], "`--cfgs` expects comma-separated numbers"),
        (["--lora", "missing.safetensors"], "--lora missing.safetensors: no such file"),
        (["--lora-scales", "0,1"], "without `lora`"),
        (["--steps", "0"], "`steps` must be >= 1"),
        (["--dtype", "float16"], "float16 on CPU"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    assert main(["generate", *TINY, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
    assert not (out / "manifest.jsonl").exists()  # refused before drawing anything


def test_unloadable_models_say_how_to_point_at_a_local_folder(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network in tests
    (tmp_path / "old.ckpt").write_bytes(b"x")
    cases = [
        ("someone/not-cached-model", "local diffusers folder"),
        (str(tmp_path), "has no model_index.json"),
        (str(tmp_path / "old.ckpt"), "are pickles"),
        (str(tmp_path / "gone.safetensors"), "no such file or folder"),
    ]
    for model, needle in cases:
        assert main(["generate", "--model", model, "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert len(errors) == 1 and needle in errors[0], err  # one line that says what to do
        assert "Traceback" not in err
