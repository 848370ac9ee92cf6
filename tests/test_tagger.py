"""WD tagger backend with a tiny ONNX tagger built here (onnx.helper): tag probability =
sigmoid(8 * mean(channel) / 255 - 4) for the B, G and R channels of the input as the model sees it,
so every output says which channel order, padding and batch it was fed."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from harmony_eval.backends.clip import crop_square  # noqa: E402
from harmony_eval.backends.tagger import TaggerBackend, caption_tags, load_tag_map  # noqa: E402
from harmony_eval.backends.tagger_model import TaggerModelError, load_tagger, resolve_model_files  # noqa: E402
from harmony_eval.types import REGIONS, Face, FaceInput  # noqa: E402

EMOTIONS = ["neutral", "happy", "sad", "angry"]
# output j reads input channel CHANNEL[j] (0 = first channel fed = blue for a BGR model)
TAGS = [("smile", 0, 0), ("tears", 0, 1), ("v-shaped_eyebrows", 0, 2), ("general", 9, 0)]


def write_tagger(folder, size=32, layout="NHWC", input_name="input_1"):
    """model.onnx + selected_tags.csv in the WD layout; returns the folder."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    w = np.zeros((3, len(TAGS)), np.float32)
    for j, (_, _, ch) in enumerate(TAGS):
        w[ch, j] = 8.0 / 255.0
    shape = ["N", size, size, 3] if layout == "NHWC" else ["N", 3, size, size]
    axes = [1, 2] if layout == "NHWC" else [2, 3]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [input_name], ["m"], axes=axes, keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["zb"]),
            helper.make_node("Sigmoid", ["zb"], ["output"]),
        ],
        "tiny_tagger",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", len(TAGS)])],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.full(len(TAGS), -4.0, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    rows = "".join(f"{i},{n},{c},100\n" for i, (n, c, _) in enumerate(TAGS))
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n" + rows, encoding="utf-8")
    return folder


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tagger(tmp_path_factory.mktemp("tagger"))


def face_of(color, size=64) -> FaceInput:
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = color
    h = size // 4
    regions = {"eyes": (8, 16, 56, 16 + h), "brows": (8, 4, 56, 14), "mouth": (20, 44, 44, 56)}
    return FaceInput(img, Face((0, 0, size, size), 1.0, "test"), regions, key=str(color))


def test_input_spec_is_read_from_the_model(tmp_path):
    t = load_tagger(str(write_tagger(tmp_path / "a", size=24, input_name="pixels")), device="cpu")
    assert (t.input_name, t.size, t.layout, t.fixed_batch) == ("pixels", 24, "NHWC", None)
    assert t.tags == [n for n, _, _ in TAGS] and t.categories == [c for _, c, _ in TAGS]
    t = load_tagger(str(write_tagger(tmp_path / "b", size=16, layout="NCHW")), device="cpu")
    assert (t.size, t.layout) == (16, "NCHW")
    x = t.preprocess([np.zeros((16, 16, 3), np.uint8)])
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32


def test_preprocessing_is_bgr_0_255_padded_on_white(model_dir):
    t = load_tagger(str(model_dir), device="cpu")
    red = np.zeros((10, 30, 3), np.uint8)
    red[..., 0] = 255  # RGB red, three times wider than tall
    crop = crop_square(red, (0, 0, 30, 10), 0.0, t.size)
    x = t.preprocess([crop])
    assert x.shape == (1, 32, 32, 3) and x.dtype == np.float32 and x.max() == 255.0
    mid = x[0, 16, 16]
    assert mid.tolist() == [0.0, 0.0, 255.0]  # BGR: red is the last channel
    assert (x[0, 0] == 255.0).all() and (x[0, -1] == 255.0).all()  # rows above and below are white
    p = t.run([crop])[0]
    b, g, r = x[0].mean(axis=(0, 1))
    np.testing.assert_allclose(p, sig(8 * np.array([b, g, r, b]) / 255 - 4), atol=1e-5)
    assert p[2] > p[0]  # the red channel drives v-shaped_eyebrows: channels were not left in RGB


def test_batch_of_three_equals_three_singles(model_dir):
    t = load_tagger(str(model_dir), device="cpu")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    together = t.run(crops, batch_size=3)
    singles = np.concatenate([t.run([c], batch_size=1) for c in crops])
    np.testing.assert_allclose(together, singles, atol=1e-6)
    assert not np.allclose(together[0], together[1])  # different crops, different tags


def test_tag_map_reads_hand_set_scores():
    m = load_tag_map()
    p = np.zeros(len(m.tags))
    p[m.tags.index("smile")] = 1.0
    q = m.read("mouth", p, EMOTIONS)
    w = m.weights["mouth"]["smile"]
    z = np.array([m.priors["mouth"].get(e, 0) + w.get(e, 0) for e in EMOTIONS])
    np.testing.assert_allclose(q, np.exp(z) / np.exp(z).sum())  # softmax(prior + p @ W)
    assert EMOTIONS[int(np.argmax(q))] == "happy"  # a smiling mouth reads happy
    p[:] = 0
    p[m.tags.index("v-shaped_eyebrows")] = 0.9
    assert EMOTIONS[int(np.argmax(m.read("brows", p, EMOTIONS)))] == "angry"
    p[:] = 0
    assert EMOTIONS[int(np.argmax(m.read("face", p, EMOTIONS)))] == "neutral"  # no tag: resting face


def test_backend_reads_regions_from_tags(model_dir):
    b = TaggerBackend(tagger_model=str(model_dir), tagger_device="cpu")
    red, blue = face_of((255, 0, 0)), face_of((0, 0, 255))  # RGB: red -> v-shaped brows, blue -> smile
    preds = b.predict([red, blue, red], EMOTIONS)
    assert b.stats["session_calls"] == 1 and b.stats["crops"] == 3  # every face in one call
    for p in preds:
        assert set(p.probs) == set(REGIONS)
        for r in ("eyes", "brows", "mouth", "face"):
            assert sum(p.probs[r].values()) == pytest.approx(1.0)
            assert p.feature_names[r] == [f"tag_{t}" for t in b.tagmap.tags]
        assert p.probs["left_eye"] is None  # no box found for it: unread, as with the other backends
    tags = dict(zip(preds[0].feature_names["tags"], preds[0].features["tags"], strict=True))
    assert tags["v-shaped_eyebrows"] > 0.9 and tags["smile"] < 0.5  # the white margin lifts B a little
    assert tags["angry"] == 0.0  # mapped, but this model has no such tag
    assert max(preds[0].probs["brows"], key=preds[0].probs["brows"].get) == "angry"
    assert max(preds[1].probs["mouth"], key=preds[1].probs["mouth"].get) == "happy"
    own = TaggerBackend(tagger_model=str(model_dir), tagger_device="cpu", tagger_crops="regions")
    own.predict([red], EMOTIONS)
    assert own.stats["crops"] == 4  # face + eyes + brows + mouth crops


def test_missing_model_errors_name_repo_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HARMONY_EVAL_OFFLINE", "1")
    with pytest.raises(TaggerModelError) as e:
        resolve_model_files("someone/wd-missing-tagger", cache_dir=str(tmp_path))
    msg = str(e.value)
    assert "someone/wd-missing-tagger" in msg and "HARMONY_EVAL_OFFLINE" in msg and "--tagger-model" in msg
    with pytest.raises(TaggerModelError, match="lacks"):
        resolve_model_files(str(tmp_path))  # a folder without the files
    with pytest.raises(ValueError, match="tagger_crops"):
        TaggerBackend(tagger_model=str(tmp_path), tagger_crops="everything")


def test_score_cli_exits_2_for_a_missing_tagger(tmp_path, capsys):
    from harmony_eval.cli import main
    from harmony_eval.testing.render import render_face

    render_face("happy", "happy", "happy", size=256).save(tmp_path / "a.png")  # a face: the backend is needed
    rc = main(["score", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--backend", "tagger",
               "--tagger-model", str(tmp_path / "nowhere"), "--no-report"])  # fmt: skip
    assert rc == 2 and "`tagger_model`" in capsys.readouterr().err  # one line naming the option


def test_caption_tags(model_dir, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "blue.png")
    caps = caption_tags([tmp_path / "red.png", tmp_path / "blue.png"], model=str(model_dir), device="cpu")
    # half the padded square is white: B and G means 127.5 -> p = 0.5 >= 0.35, after R's 0.98
    assert caps[str(tmp_path / "red.png")] == ["v-shaped eyebrows", "smile", "tears"]
    assert caps[str(tmp_path / "blue.png")] == ["smile"]  # no padding on a square; rating tag left out
    strict = caption_tags([tmp_path / "red.png"], model=str(model_dir), threshold=0.6, device="cpu")
    assert strict == {str(tmp_path / "red.png"): ["v-shaped eyebrows"]}


def test_tagger_rows_keep_the_tags(model_dir):
    import harmony_eval
    from harmony_eval.pipeline import ROW_KEYS
    from harmony_eval.testing.render import render_face

    images = [np.asarray(render_face(e, e, e, size=256, seed=i)) for i, e in enumerate(["happy", "sad"])]
    df = harmony_eval.score(images, backend="tagger", tagger_model=str(model_dir), tagger_device="cpu")
    assert list(df.columns) == list(ROW_KEYS)  # the contract's keys; tags ride inside regions.face
    for _, row in df.iterrows():
        assert row["status"] == "ok" and row["backend"] == "tagger"
        tags = row["regions"]["face"]["tags"]
        assert set(tags) <= {n for n, _, _ in TAGS} and tags["v-shaped_eyebrows"] > 0.01
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)


def test_speed_benchmark_stand_in_tagger_runs_in_the_backend(tmp_path):
    from benchmarks.speed_readers import build_stand_in_tagger

    folder = build_stand_in_tagger(tmp_path / "stand_in", width=8, blocks=1)
    b = TaggerBackend(tagger_model=str(folder), tagger_device="cpu")
    assert (b.tagger.layout, b.tagger.size) == ("NHWC", 448) and not b.missing_tags  # every mapped tag
    [p] = b.predict([face_of((200, 120, 40), size=128)], EMOTIONS)
    v = p.features["tags"]
    assert v.shape == (len(b.tagmap.tags),) and ((v >= 0) & (v <= 1)).all() and v.std() > 0  # sigmoid outputs


def test_missing_onnxruntime_says_which_extra(model_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ValueError, match=r"harmony-eval\[tagger\]") as e:  # a ValueError: CLIs exit 2
        load_tagger(str(model_dir))
    assert isinstance(e.value, ImportError)
