"""CLIP loading: a tiny transformers ``CLIPModel`` saved to disk and read back through the transformers
loader, the offline error, and ``clip_weights_available`` (used by ``--backend auto``) never downloading."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harmony_eval.backends.clip import ClipBackend, ClipWeightsError, clip_weights_available  # noqa: E402
from harmony_eval.testing.render import render_face_info  # noqa: E402
from harmony_eval.types import REGIONS, Face, FaceInput  # noqa: E402

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def char_tokenizer():
    """A CLIP BPE tokenizer with a character vocabulary (no merges): real tokenisation, tiny vocab."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[]), vocab


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    tok, vocab = char_tokenizer()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=len(vocab), max_position_embeddings=128, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
        ),
        projection_dim=12,
    )  # fmt: skip
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_hf_clip")
    CLIPModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def face() -> FaceInput:
    img, boxes = render_face_info("happy", "happy", "happy", size=256)
    return FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "test"), boxes, key="hf-face")


def test_transformers_folder_loads_and_predicts(hf_dir, face):
    b = ClipBackend(clip_loader="transformers", clip_model=str(hf_dir), clip_device="cpu")
    assert b.clip.kind == "transformers" and b.clip.image_size == 32
    [p] = b.predict([face], EMOTIONS)
    for r in REGIONS:
        assert sum(p.probs[r].values()) == pytest.approx(1.0, abs=1e-6)
        names = p.feature_names[r]
        assert names[: 12 + len(EMOTIONS)] == [f"emb{j}" for j in range(12)] + [f"zs_{e}" for e in EMOTIONS]
        assert p.features[r].shape == (len(names),)  # projection_dim + zero-shot scores (+ anatomy)


def test_transformers_ensembling_equals_hand_computation(hf_dir):
    from transformers import AutoTokenizer, CLIPModel

    b = ClipBackend(clip_loader="transformers", clip_model=str(hf_dir), clip_device="cpu")
    model, tok = CLIPModel.from_pretrained(hf_dir).eval(), AutoTokenizer.from_pretrained(hf_dir)
    from harmony_eval.backends.clip import region_prompts

    rows = []
    with torch.no_grad():
        for e in EMOTIONS:
            enc = tok(region_prompts(b.banks, "brows", e), padding=True, return_tensors="pt")
            out = model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            t = model.text_projection(out.pooler_output).numpy()
            t /= np.linalg.norm(t, axis=1, keepdims=True)
            rows.append(t.mean(0) / np.linalg.norm(t.mean(0)))
    np.testing.assert_allclose(b.zero_shot_weights(EMOTIONS)["brows"], np.stack(rows), atol=1e-5)
    w = b.zero_shot_weights(EMOTIONS)["brows"]
    assert not np.allclose(w[0], w[1])  # prompts of different emotions embed differently


def test_transformers_random_init_reads_only_the_config(hf_dir, face):
    b = ClipBackend(
        clip_loader="transformers", clip_model=str(hf_dir), clip_random_init=True, clip_device="cpu"
    )
    assert "random-init" in b.clip.model_id
    [p] = b.predict([face], EMOTIONS)
    assert sum(p.probs["mouth"].values()) == pytest.approx(1.0, abs=1e-6)


def test_missing_weights_give_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ClipWeightsError) as e:
        ClipBackend(clip_loader="transformers", clip_model=str(tmp_path / "nowhere"), clip_device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and "--clip-pretrained" in msg  # says how to fix it


def test_default_tag_offline_fails_fast_with_the_fix(monkeypatch, tmp_path):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ClipWeightsError, match="laion2b_s34b_b79k.*HF_HUB_OFFLINE"):
        ClipBackend(clip_cache_dir=str(tmp_path), clip_device="cpu")  # the default ViT-B-32 tag
    assert time.perf_counter() - t0 < 5  # no download retries (they took 52 s here)


def test_weights_available_checks_locally_only(hf_dir, tmp_path, monkeypatch):
    import huggingface_hub

    def no_download(*a, **k):
        raise AssertionError("clip_weights_available must never download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    assert clip_weights_available(clip_loader="transformers", clip_model=str(hf_dir))  # a complete folder
    assert not clip_weights_available(clip_loader="transformers", clip_model=str(tmp_path / "missing"))
    assert not clip_weights_available(clip_cache_dir=str(tmp_path / "empty"))  # default tag, nothing cached
    ckpt = tmp_path / "w.safetensors"
    ckpt.write_bytes(b"x")
    assert clip_weights_available(clip_pretrained=str(ckpt))  # a local checkpoint file
    assert not clip_weights_available(clip_model="local-dir:" + str(tmp_path / "missing"))
    assert clip_weights_available(clip_random_init=True)  # asked for explicitly: no weights needed
