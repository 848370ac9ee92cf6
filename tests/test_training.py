"""`harmony-eval train`: caption folders, and LoRA training end to end on the tiny random pipeline
(a few steps, checkpoints, the saved LoRA loads back, changes the output, and `generate --lora` uses it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("peft")

from generation.pipeline import limit_torch_threads, load_lora, set_lora_scale  # noqa: E402
from generation.tiny import tiny_pipeline, tiny_sdxl_pipeline  # noqa: E402
from harmony_eval.cli import main  # noqa: E402
from training.data import CaptionDataset, find_captioned_images, load_image  # noqa: E402
from training.lora import TrainConfig, train_lora  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with limit_torch_threads(1):  # tiny models: one thread is 10-300x faster on a shared 2-core box
        yield


def _draw(path, colour, size=(40, 48)):
    """A face-like test card: a coloured disc with two eye dots and a mouth bar on grey."""
    from PIL import ImageDraw

    im = Image.new("RGB", size, (128, 128, 128))
    d = ImageDraw.Draw(im)
    d.ellipse((4, 6, size[0] - 4, size[1] - 6), fill=colour)
    d.ellipse((12, 18, 16, 22), fill=(0, 0, 0))
    d.ellipse((24, 18, 28, 22), fill=(0, 0, 0))
    d.rectangle((14, 32, 26, 34), fill=(120, 0, 0))
    im.save(path)
    return path


@pytest.fixture
def caption_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i, (name, colour) in enumerate(
        [("happy", (250, 220, 200)), ("sad", (200, 210, 250)), ("angry", (250, 150, 150))]
    ):
        _draw(data / f"{i}_{name}.png", colour)
        (data / f"{i}_{name}.txt").write_text(f"anime girl, {name} expression\n")
    return data


def test_caption_layouts(tmp_path, caption_folder):
    recs = find_captioned_images(caption_folder)
    assert [c for _, c in recs] == ["anime girl, happy expression", "anime girl, sad expression",
                                    "anime girl, angry expression"]  # fmt: skip
    meta = tmp_path / "meta"
    (meta / "img").mkdir(parents=True)
    _draw(meta / "img" / "a.png", (255, 0, 0))
    (meta / "metadata.jsonl").write_text(json.dumps({"file_name": "img/a.png", "text": "red"}) + "\n")
    assert find_captioned_images(meta) == [(meta / "img" / "a.png", "red")]
    gen = tmp_path / "gen"
    (gen / "images").mkdir(parents=True)
    _draw(gen / "images" / "x.png", (0, 255, 0))
    (gen / "manifest.jsonl").write_text(
        json.dumps({"file": "images/x.png", "prompt": "green", "emotion": "sad"}) + "\n"
    )
    assert find_captioned_images(gen) == [(gen / "images" / "x.png", "green")]  # a generate run trains as is


def test_caption_errors_name_the_problem(tmp_path, caption_folder):
    (caption_folder / "1_sad.txt").unlink()
    with pytest.raises(
        ValueError, match=r"1 of 3 images have no caption file \(first: 1_sad.png needs 1_sad.txt\)"
    ):
        find_captioned_images(caption_folder)
    (caption_folder / "metadata.jsonl").write_text('{"file": "nope.png", "text": "x"}\n')
    with pytest.raises(ValueError, match="1 listed image"):
        find_captioned_images(caption_folder)
    (caption_folder / "metadata.jsonl").write_text('{"file": "0_happy.png"}\n')
    with pytest.raises(ValueError, match="metadata.jsonl:1: expected string keys"):
        find_captioned_images(caption_folder)
    with pytest.raises(ValueError, match="not a folder"):
        find_captioned_images(tmp_path / "missing")


def test_training_images_are_square_vae_range_tensors(tmp_path):
    im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent, wider than tall
    im.paste((255, 0, 0, 255), (0, 0, 20, 20))  # opaque red left half
    im.save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png", 16)
    assert tuple(x.shape) == (3, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    # centre crop of a 32x16 resize: left quarter red, right quarter transparent -> white
    assert x[:, 8, 0].tolist() == pytest.approx([1.0, -1.0, -1.0], abs=0.02)
    assert x[:, 8, 15].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    with pytest.raises(ValueError, match="divisible by 8"):
        CaptionDataset([], resolution=30)


def _np(pipe, seed=0):
    import torch

    return pipe("anime girl, happy expression", num_inference_steps=2, height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(seed)).images[0]  # fmt: skip


def test_train_cli_end_to_end_then_generate_with_the_lora(tmp_path, caption_folder, capsys):
    out = tmp_path / "lora_v1"
    args = ["train", "--model", "tiny-random", "--data", str(caption_folder), "--out", str(out), "--steps", "4",
            "--resolution", "32", "--checkpoint-every", "2", "--lr", "1e-2", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "trained 4 steps on 3 image(s)" in capsys.readouterr().out
    lora = out / "pytorch_lora_weights.safetensors"
    assert lora.is_file() and (out / "checkpoint-2" / "pytorch_lora_weights.safetensors").is_file()
    assert not (out / "checkpoint-4").exists()  # the last step is the final file, not a checkpoint
    s = json.loads((out / "train_summary.json").read_text())
    assert s["steps"] == 4 and len(s["losses"]) == 4 and all(np.isfinite(s["losses"]))
    assert s["model"] == "tiny-random" and s["n_images"] == 3 and s["config"]["rank"] == 4
    # rank 4 x (8 in + 8 out) per projection; 4 projections x 2 attentions (self, cross) x 4 transformer
    # blocks (1 down, 1 mid, 2 up) in the tiny UNet, every width 8
    assert s["trainable_parameters"] == 4 * (8 + 8) * 4 * 2 * 4

    from safetensors import safe_open

    with safe_open(str(lora), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert len(keys) == 4 * 2 * 4 * 2  # an A and a B matrix per adapted projection
    assert all(k.startswith("unet.") and "lora" in k for k in keys)  # diffusers layout
    assert {k.split(".lora")[0].rsplit(".", 1)[-1] for k in keys} >= {"to_q", "to_k", "to_v", "0"}
    assert json.loads(meta["lora_adapter_metadata"])["unet.r"] == 4

    # loads back into a fresh pipeline: scale 0 is the base model, scale 1 changes the image
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    base = _np(pipe)
    load_lora(pipe, out)
    with_lora = _np(pipe)
    set_lora_scale(pipe, 0.0)
    assert np.abs(_np(pipe) - base).max() < 1e-6
    assert np.abs(with_lora - base).mean() > 1e-3  # 4 steps at lr 1e-2 move the output

    # generate --lora with a scale sweep
    run = tmp_path / "run"
    gen = ["generate", "--model", "tiny-random", "--out", str(run), "--width", "32", "--height", "32", "--steps", "2",
           "--device", "cpu", "--archetypes", "Soft", "--emotions", "happy", "--cfgs", "7", "--lora", str(out),
           "--lora-scales", "0,1", "--no-progress"]  # fmt: skip
    assert main(gen) == 0
    rows = [json.loads(x) for x in (run / "manifest.jsonl").read_text().splitlines()]
    assert [(r["lora"], r["lora_scale"]) for r in rows] == [(str(out), 0.0), (str(out), 1.0)]
    ims = [np.asarray(Image.open(run / r["file"]), dtype=np.int16) for r in rows]
    assert np.abs(ims[0] - ims[1]).max() > 0  # the sweep's two scales draw different pictures
    assert "Lora: lora_v1, Lora scale: 1" in Image.open(run / rows[1]["file"]).info["parameters"]


def test_training_leaves_the_pipeline_unchanged_and_refuses_sdxl(tmp_path, caption_folder):
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    before = _np(pipe)
    recs = find_captioned_images(caption_folder)
    s = train_lora(
        pipe, recs, tmp_path / "l", TrainConfig(steps=2, resolution=32, checkpoint_every=0), progress=False
    )
    assert s["checkpoints"] == [] and not list((tmp_path / "l").glob("checkpoint-*"))
    assert np.array_equal(_np(pipe), before)  # adapter removed: the caller's pipeline is the base again
    with pytest.raises(ValueError, match="SDXL-style"):
        train_lora(tiny_sdxl_pipeline(), recs, tmp_path / "x", TrainConfig(steps=1, resolution=32))


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--resolution", "30"], "`resolution` must be a positive multiple of 8, got 30"),
        (["--rank", "0"], "`rank` must be an integer >= 1"),
        (["--mixed-precision", "fp8"], "`mixed_precision` must be one of no, fp16, bf16"),
    ],
)
def test_train_bad_arguments_exit_2(tmp_path, caption_folder, capsys, extra, needle):
    args = ["train", "--model", "tiny-random", "--data", str(caption_folder), "--out", str(tmp_path / "o"),
            "--device", "cpu", *extra]  # fmt: skip
    assert main(args) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
