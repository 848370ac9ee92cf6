"""CLIP region backend mechanics with a tiny random open_clip model built here (2 layers, width 32):
shapes, prompt ensembling against a hand computation, probabilities, the embedding cache, and the
backend inside ``harmony_eval.score``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from harmony_eval.backends.clip import ClipBackend, crop_square, load_probe_banks, region_prompts  # noqa: E402
from harmony_eval.testing.render import render_face_info  # noqa: E402
from harmony_eval.types import REGIONS, Face, FaceInput  # noqa: E402

EMOTIONS = ["neutral", "happy", "sad", "angry"]
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def tiny_model(seed: int = 0):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    return CLIP(
        embed_dim=TINY_CFG["embed_dim"],
        vision_cfg=CLIPVisionCfg(**TINY_CFG["vision_cfg"]),
        text_cfg=CLIPTextCfg(**TINY_CFG["text_cfg"]),
    ).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def faces() -> list[FaceInput]:
    out = []
    for i, (e, b, m) in enumerate([("happy", "happy", "happy"), ("angry", "sad", "neutral")]):
        img, boxes = render_face_info(e, b, m, size=256, seed=i)
        out.append(FaceInput(np.asarray(img), Face(boxes["face"], 1.0, "test"), boxes, key=f"img{i}"))
    return out


def backend(model, **kw) -> ClipBackend:
    return ClipBackend(clip_prebuilt=(model, None, None), clip_device="cpu", **kw)


class CountingEncoder:
    """Wraps ``model.encode_image`` to count the crops that really reach the image encoder."""

    def __init__(self, model):
        self.model, self.inner, self.crops = model, model.encode_image, 0

    def __enter__(self):
        def counted(x, *a, **k):
            self.crops += x.shape[0]
            return self.inner(x, *a, **k)

        self.model.encode_image = counted
        return self

    def __exit__(self, *exc):
        del self.model.encode_image  # back to the class method


def test_predict_shapes_and_distributions(model, faces):
    from harmony_eval.measure import MeasureStage, feature_names, with_measurement

    b = backend(model)
    bare = b.predict(faces, EMOTIONS)
    assert len(bare) == len(faces)
    assert all(not p.quality for p in bare)  # quality is the measurement stage's, not this backend's
    # as the pipeline does: the stage's measurements and quality join the CLIP features
    measured = MeasureStage().measure_batch(faces)
    preds = [with_measurement(p, m, True) for p, m in zip(bare, measured, strict=True)]
    d = TINY_CFG["embed_dim"]
    for p, q in zip(preds, bare, strict=True):
        assert set(p.probs) == set(REGIONS)  # every contract region, face included
        for r in REGIONS:
            assert list(p.probs[r]) == EMOTIONS  # vocabulary order kept
            assert sum(p.probs[r].values()) == pytest.approx(1.0, abs=1e-6)
            names = p.feature_names[r]
            anat = [n for n in names if n.startswith("anat_")]
            assert p.features[r].shape == (len(names),) == (d + len(EMOTIONS) + len(anat),)
            assert names[d : d + len(EMOTIONS)] == [f"zs_{e}" for e in EMOTIONS]  # one zero-shot score each
            assert bool(anat) == (r in ("eyes", "brows", "mouth"))  # drawn anatomy rides along
            assert anat == [f"anat_{n}" for n in feature_names().get(r, [])]
            assert not any(n.startswith("anat_") for n in q.feature_names[r])  # the backend reads crops only
            assert np.linalg.norm(p.features[r][:d]) == pytest.approx(1.0, abs=1e-5)  # normalised embedding
        assert 0.0 <= p.quality["sharpness"] <= 1.0
        assert (
            p.quality["eyes_visible"] > 0.3 and p.quality["mouth_visible"] > 0.3
        )  # drawn: no missing_* flag
    assert b.stats["encoder_calls"] == 1  # the 12 crops of both faces went through together


def test_ensembling_and_probs_equal_hand_computation(model, faces):
    b = backend(model)
    [pred] = b.predict(faces[:1], EMOTIONS)
    tok = open_clip.get_tokenizer("ViT-B-32", context_length=32)
    banks = load_probe_banks()
    with torch.no_grad():
        rows = []
        for e in EMOTIONS:
            prompts = region_prompts(banks, "mouth", e)
            assert len(prompts) >= 6  # several templates x phrases per emotion
            t = model.encode_text(tok(prompts)).numpy()
            t = t / np.linalg.norm(t, axis=1, keepdims=True)
            m = t.mean(axis=0)
            rows.append(m / np.linalg.norm(m))
        w = np.stack(rows)
        crop = crop_square(faces[0].image, faces[0].regions["mouth"], 0.15, 32).astype(np.float32) / 255.0
        mean, std = np.array(open_clip.OPENAI_DATASET_MEAN), np.array(open_clip.OPENAI_DATASET_STD)
        x = torch.from_numpy(((crop - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
        emb = model.encode_image(x).numpy()[0]
        emb /= np.linalg.norm(emb)
        scale = float(model.logit_scale.exp())
    np.testing.assert_allclose(b.zero_shot_weights(EMOTIONS)["mouth"], w, atol=1e-5)
    z = scale * (w @ emb)
    hand = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose([pred.probs["mouth"][e] for e in EMOTIONS], hand, atol=1e-5)
    np.testing.assert_allclose(pred.features["mouth"][: len(emb)], emb, atol=1e-5)  # the crop's embedding


def test_text_embeddings_computed_once_per_vocabulary(model, faces):
    b = backend(model)
    b.predict(faces[:1], EMOTIONS)
    first = b.stats["texts_encoded"]
    b.predict(faces[1:], EMOTIONS)
    assert first > 0 and b.stats["texts_encoded"] == first  # second batch reuses the class embeddings
    b.predict(faces[1:], ["sad", "happy", "surprised"])
    p = b.predict(faces[1:], ["sad", "happy", "surprised"])[0]
    assert list(p.probs["eyes"]) == ["sad", "happy", "surprised"]  # any subset, in the given order
    assert b.stats["texts_encoded"] > first  # only surprised's prompts were new


def test_cache_hits_skip_the_image_encoder(model, faces, tmp_path):
    with CountingEncoder(model) as count:
        first = backend(model, clip_embed_cache=str(tmp_path)).predict(faces, EMOTIONS)
        assert count.crops == 12  # 6 regions x 2 faces, cold cache
        again = backend(model, clip_embed_cache=str(tmp_path))  # a new run: only the disk cache is shared
        second = again.predict(faces, EMOTIONS)
        assert count.crops == 12 and again.stats["crops_cached"] == 12  # nothing new was encoded
    for a, b in zip(first, second, strict=True):
        for r in REGIONS:
            np.testing.assert_array_equal(a.features[r], b.features[r])
    assert list(tmp_path.glob("*/emb-*.safetensors"))  # safetensors shards, no pickle


def test_new_prompts_rescore_without_image_encoder(model, faces, tmp_path):
    cache = tmp_path / "cache"
    base = backend(model, clip_embed_cache=str(cache)).predict(faces[:1], EMOTIONS)[0]
    probes = tmp_path / "probes"
    probes.mkdir()
    for f in load_probe_banks().values():
        src = Path(f["source"])
        (probes / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    mouth = json.loads(json.dumps(load_probe_banks(probes)["mouth"]))
    mouth["emotions"]["happy"] = ["a wide toothy anime grin"]
    text = "regions: [mouth]\ntemplates: ['{}']\nemotions: " + json.dumps(mouth["emotions"]) + "\n"
    (probes / "mouth.yaml").write_text(text, encoding="utf-8")
    with CountingEncoder(model) as count:
        b = backend(model, clip_embed_cache=str(cache), clip_probes=str(probes))
        new = b.predict(faces[:1], EMOTIONS)[0]
    assert count.crops == 0  # new prompts: crops come from the cache
    assert new.probs["mouth"] != base.probs["mouth"]  # the new bank changed the reading
    assert new.probs["eyes"] == pytest.approx(base.probs["eyes"])  # other banks unchanged


def test_missing_region_has_no_reading(model, faces):
    inp = faces[0]
    regions = {**inp.regions, "mouth": None}
    [p] = backend(model).predict([FaceInput(inp.image, inp.face, regions, inp.key)], EMOTIONS)
    assert p.probs["mouth"] is None and "mouth" not in p.features  # no crop, no invented reading
    assert p.probs["eyes"] is not None


def test_options_are_checked(model):
    with pytest.raises(TypeError, match="clip_modle.*did you mean 'clip_model'"):
        ClipBackend(clip_prebuilt=(model, None, None), clip_modle="x")
    with pytest.raises(TypeError, match="mediapipe_model"):  # another stage's option is not ignored
        ClipBackend(clip_prebuilt=(model, None, None), mediapipe_model="x.task")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        ClipBackend(clip_prebuilt=(model, None, None), clip_device="cpu", clip_precision="fp16")


def test_config_file_random_init_is_deterministic(tmp_path, faces):
    cfg = tmp_path / "tiny-clip-test.json"
    cfg.write_text(json.dumps(TINY_CFG), encoding="utf-8")
    from harmony_eval.backends import clip as clip_module

    a = ClipBackend(clip_model=str(cfg), clip_random_init=True, clip_device="cpu")
    assert (
        ClipBackend(clip_model=str(cfg), clip_random_init=True, clip_device="cpu").clip is a.clip
    )  # loaded once
    clip_module._LOADED.clear()  # a new process: the model is built again
    b = ClipBackend(clip_model=str(cfg), clip_random_init=True, clip_device="cpu")
    assert b.clip is not a.clip
    assert a.clip.model_id == b.clip.model_id and "random-init" in a.clip.model_id
    pa, pb = a.predict(faces[:1], EMOTIONS)[0], b.predict(faces[:1], EMOTIONS)[0]
    assert pa.probs == pb.probs  # seeded init: the cache key stays meaningful across runs


def test_local_checkpoint_loads_those_weights(tmp_path, model, faces):
    from safetensors.torch import save_file

    cfg = tmp_path / "tiny-clip-ckpt.json"
    cfg.write_text(json.dumps(TINY_CFG), encoding="utf-8")
    ckpt = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    loaded = ClipBackend(clip_model=str(cfg), clip_pretrained=str(ckpt), clip_device="cpu")
    ref = backend(model)
    p, q = loaded.predict(faces[:1], EMOTIONS)[0], ref.predict(faces[:1], EMOTIONS)[0]
    np.testing.assert_allclose(p.features["face"], q.features["face"], atol=1e-5)  # same weights, same output


def test_backend_plugs_into_score_and_the_output_contract(tmp_path):
    import harmony_eval
    from harmony_eval.pipeline import ROW_KEYS
    from harmony_eval.testing.render import render_face

    cfg = tmp_path / "tiny-clip-score.json"
    cfg.write_text(json.dumps(TINY_CFG), encoding="utf-8")
    images = [np.asarray(render_face(e, e, e, size=320, seed=i)) for i, e in enumerate(["happy", "sad"])]
    opts = dict(
        clip_model=str(cfg), clip_random_init=True, clip_device="cpu", clip_embed_cache=str(tmp_path / "c")
    )
    df = harmony_eval.score(images, backend="clip", **opts)
    assert list(df.columns) == list(ROW_KEYS)
    for _, row in df.iterrows():
        assert row["status"] == "ok" and row["backend"] == "clip"
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        for r in REGIONS:
            box, probs = row["regions"][r]["box"], row["regions"][r]["probs"]
            assert (probs is not None) == (box is not None), r  # every region with a box is read
        assert row["verdict"] in ("perfect", "acceptable", "broken") and row["reason"]
    again = harmony_eval.score(images, backend="clip", **opts)  # from the embedding cache
    assert again["probs"].tolist() == df["probs"].tolist()  # same rows, no encoder needed


def test_calibrate_fits_a_linear_probe_per_region_on_clip_embeddings(tmp_path):
    """Labels improve CLIP as they improve the offline reader: the learned region readers of
    `calibrate` read the CLIP crop embeddings (and weak face labels train eyes / brows / mouth)."""

    from calibration.cli import run_calibration
    from harmony_eval.calibrated import Calibration
    from harmony_eval.testing.sets import write_labelled_faces

    cfg = tmp_path / "tiny-clip-cal.json"
    cfg.write_text(json.dumps(TINY_CFG), encoding="utf-8")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    write_labelled_faces(imgs, EMOTIONS, seeds=4, size=256)
    out = tmp_path / "cal"
    run_calibration(
        imgs, imgs / "labels.csv", out, backend="clip", emotions=EMOTIONS, model="full", method="temperature",
        bootstrap=0, curve=False, clip_model=str(cfg), clip_random_init=True, clip_device="cpu",
    )  # fmt: skip
    cal = Calibration.load(out / "calibration.json")
    assert cal.backend == "clip" and set(cal.models) >= {"face", "eyes", "brows", "mouth"}
    for region in ("eyes", "brows", "mouth"):
        feats = cal.models[region].features
        assert any(f.startswith(f"{region}:emb") for f in feats), region  # the CLIP crop embedding
        assert any(f.startswith(f"{region}:anat_") for f in feats), region  # the measurement stage's
        assert "weak_labels" in cal.models[region].summary
