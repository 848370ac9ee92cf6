"""benchmarks/speed.py runs and prints one JSON object with the documented figures (numbers are not
asserted: speed is measured by running the script, not by tests)."""

from __future__ import annotations

import json

import pytest

from benchmarks.speed import main
from harmony_eval.testing.render import render_face


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("speed_imgs")
    for i, e in enumerate(["happy", "angry", "sad"]):
        render_face(e, e, e, size=320, seed=i).save(d / f"{e}.png")
    return d


def test_anatomy_speed_json(images, capsys):
    assert (
        main(["--backend", "anatomy", "--images", str(images), "--workers", "1", "--repeat", "1", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and out["ok"] == 3 and out["images_per_s"] > 0


@pytest.mark.slow
def test_clip_speed_json_with_a_tiny_model(images, tmp_path, capsys):
    pytest.importorskip("open_clip")
    cfg = tmp_path / "tiny-clip-speed.json"
    cfg.write_text(json.dumps({
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }), encoding="utf-8")  # fmt: skip
    argv = [
        "--backend",
        "clip",
        "--clip-model",
        str(cfg),
        "--random-init",
        "--clip-device",
        "cpu",
        "--trials",
        "1",
    ]
    assert main([*argv, "--images", str(images), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("encoder_crops_per_s", "pipeline_crops_per_s", "ratio", "rescore_speedup"):
        assert out[k] > 0, k
    assert out["crops"] == 6 * out["faces"] == 18  # six regions per face, one face per image
