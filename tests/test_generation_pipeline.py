"""Model loading for `generate`: schedulers by name, local SD / SDXL folders through the auto pipeline,
single-file architecture detection, device and dtype choice, metadata text."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers")

from generation import pipeline as gp  # noqa: E402
from generation.run import a1111_parameters, lora_name, run_generation  # noqa: E402
from generation.tiny import tiny_pipeline, tiny_sdxl_pipeline, tiny_tokenizer  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    with gp.limit_torch_threads(1):  # tiny models: one thread is 10-300x faster on a shared 2-core box
        yield


@pytest.fixture(scope="module")
def pipe():
    p = tiny_pipeline()
    p.set_progress_bar_config(disable=True)
    return p


def test_tiny_tokenizer_reads_whole_prompts_offline():
    tok = tiny_tokenizer()
    ids = tok("happy, sad").input_ids
    assert (
        len(ids) == len("happy, sad") + 2 - 1
    )  # one id per character (the space merges into "</w>"), + bos/eos
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.model_max_length >= 250  # the grid's ~220-character prompts fit, emotion phrase included


def test_every_named_scheduler_runs_and_is_named_like_a1111(pipe):
    import torch

    original = pipe.scheduler
    try:
        for name, (cls_name, _, label) in gp.SCHEDULERS.items():
            gp.set_scheduler(pipe, name)
            assert type(pipe.scheduler).__name__ == cls_name
            assert gp.sampler_name(pipe, None) == label  # the swapped-in scheduler is recognised back
            # 4 steps: PNDM's Runge-Kutta warm-up needs more than 2 on a config without skip_prk_steps
            out = pipe("a girl", num_inference_steps=4, height=32, width=32, output_type="np",
                       generator=torch.Generator().manual_seed(0)).images  # fmt: skip
            assert out.shape == (1, 32, 32, 3) and np.isfinite(out).all(), name
        gp.set_scheduler(pipe, "dpm++_karras")
        gp.set_scheduler(pipe, "dpm++")  # the Karras flag of the previous scheduler must not leak
        assert pipe.scheduler.config.use_karras_sigmas is False
    finally:
        pipe.scheduler = original


@pytest.mark.parametrize("factory, cls", [(tiny_pipeline, "StableDiffusionPipeline"),
                                          (tiny_sdxl_pipeline, "StableDiffusionXLPipeline")])  # fmt: skip
def test_local_diffusers_folders_load_through_the_auto_pipeline(tmp_path, factory, cls):
    folder = tmp_path / "model"
    factory().save_pretrained(folder)
    out = tmp_path / "run"
    s = run_generation(out, str(folder), archetypes=["Soft"], emotions=["happy", "angry"], cfgs=[7], steps=2,
                       scheduler="euler_a", device="cpu", progress=False)  # fmt: skip
    assert s["pipeline"] == cls and s["generated"] == 2
    assert (s["width"], s["height"]) == (64, 64)  # native size: UNet sample 32 x VAE factor 2
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {str(folder)} and {r["scheduler"] for r in rows} == {"Euler a"}


def test_single_file_architecture_is_read_from_key_names(tmp_path):
    import torch
    from safetensors.torch import save_file

    xl, sd = tmp_path / "xl.safetensors", tmp_path / "sd.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(1)}, str(xl))
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(1)}, str(sd))
    assert gp.single_file_arch(xl) == "sdxl"  # SDXL's second (OpenCLIP bigG) text encoder
    assert gp.single_file_arch(sd) == "sd15"
    with pytest.raises(ValueError, match="Unknown `arch` 'sd3'"):
        gp.load_pipeline(str(sd), device="cpu", arch="sd3")


def test_device_and_dtype_resolution():
    import torch

    if not torch.cuda.is_available():
        assert gp.resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            gp.resolve_device("cuda")
    with pytest.raises(ValueError, match="Unknown `device` 'tpu'"):
        gp.resolve_device("tpu")
    assert gp.resolve_dtype("auto", "cpu") == torch.float32  # fp32 on CPU, as diffusers recommends
    assert gp.resolve_dtype("auto", "cuda") == torch.float16
    assert gp.resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="Unknown `dtype` 'int8'"):
        gp.resolve_dtype("int8", "cpu")


def test_tiny_pipeline_in_bfloat16_on_cpu(tmp_path):
    s = run_generation(tmp_path, "tiny-random", archetypes=["Soft"], emotions=["sad"], cfgs=[5], steps=2,
                       width=32, height=32, device="cpu", dtype="bfloat16", progress=False)  # fmt: skip
    assert s["dtype"] == "bfloat16" and s["generated"] == 1


def test_a1111_text_and_lora_names():
    row = {"prompt": "p", "negative": "", "steps": 20, "scheduler": "Euler a", "cfg": 7.0, "seed": 3,
           "width": 512, "height": 768, "model": "anything-v3", "lora": "runs/lora_v1", "lora_scale": 0.5,
           "archetype": "Soft", "emotion": "sad"}  # fmt: skip
    assert a1111_parameters(row) == (
        "p\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 3, Size: 512x768, Model: anything-v3, "
        "Lora: lora_v1, Lora scale: 0.5, Archetype: Soft, Emotion: sad"
    )  # no "Negative prompt:" line when there is none, as A1111 writes it
    assert lora_name("out/v2/pytorch_lora_weights.safetensors") == "v2"  # diffusers' generic file name
    assert lora_name("loras/smile.safetensors") == "smile"


def test_size_check_message_suggests_a_fix():
    with pytest.raises(ValueError) as e:
        gp.check_size(500, 512)
    assert str(e.value) == (
        "`height` and `width` have to be divisible by 8 but are 512 and 500. Try 512x504 (height x width)."
    )
    gp.check_size(None, 64)  # None = the model's own size
