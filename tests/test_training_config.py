"""Training inputs without a model: the config file (errors name the key), the seed's example configs,
caption layouts, `harmony-eval captions`, aspect-ratio buckets and the dataset check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from harmony_eval.cli import main
from training.captions import layout_caption, write_captions
from training.config import load_config, total_steps
from training.data import crop_image, find_captioned_images, load_image
from training.dataset import BatchStream, make_buckets

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "permissive"


def _draw(path, colour, size=(40, 48)):
    """A face-like test card: a coloured disc with two eye dots and a mouth bar on grey."""
    im = Image.new("RGB", size, (128, 128, 128))
    d = ImageDraw.Draw(im)
    d.ellipse((4, 6, size[0] - 4, size[1] - 6), fill=colour)
    d.ellipse((12, 18, 16, 22), fill=(0, 0, 0))
    d.ellipse((24, 18, 28, 22), fill=(0, 0, 0))
    d.rectangle((14, 32, 26, 34), fill=(120, 0, 0))
    im.save(path)
    return path


def test_seed_configs_load_with_their_hyperparameters():
    v1 = load_config(ROOT / "training/configs/seed_v1.yaml")
    v2 = load_config(ROOT / "training/configs/seed_v2.yaml")
    assert (v1.rank, v1.epochs, v1.lr) == (16, 12, 5e-5)
    assert (v2.rank, v2.epochs, v2.lr) == (64, 30, 2e-4)
    # epochs become steps from the data: 10 images at batch 1 = 10 batches; 12 epochs / accumulation 1
    assert total_steps(v1, 10) == 120
    over = load_config(ROOT / "training/configs/seed_v1.yaml", {"steps": 7, "rank": 8, "lr": None})
    assert (over.steps, over.epochs, over.rank, over.lr) == (7, None, 8, 5e-5)  # flags win; None = not given


@pytest.mark.parametrize(
    "text, needle",
    [
        ("rnk: 16\n", "`rnk` is not a training key (did you mean `rank`?); valid keys: model, data"),
        ("rank: sixteen\n", "`rank` must be int, got 'sixteen'"),
        ("rank: true\n", "`rank` must be int, got True"),  # YAML true is not rank 1
        ("rank: 0\n", "`rank` must be an integer >= 1, got 0"),
        ("lr_scheduler: cosin\n", "`lr_scheduler` must be one of constant"),
        ("steps: 10\nepochs: 2\n", "`steps` must be unset when epochs is given"),
        ("warmup_steps: 5\n", "`warmup_steps` must be 0 with lr_scheduler constant"),
        ("best_metric: loss\n", "`best_metric` must be one of perfect_rate"),
        ("validation_cfgs: [seven]\n", "`validation_cfgs` must be a list of float"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert needle in str(e.value)


def test_train_cli_config_errors_exit_2_before_loading(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("rank: 4\nbatch_sise: 2\n")
    assert main(["train", "--config", str(path), "--model", "tiny-random", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "`batch_sise` is not a training key (did you mean `batch_size`?)" in err and str(path) in err
    path.write_text("rank: 4\n")
    assert main(["train", "--config", str(path), "--model", "tiny-random"]) == 2
    assert "missing `data`, `out`" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_caption_layouts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _draw(data / "a.png", (250, 220, 200))
    (data / "a.txt").write_text("anime girl, happy expression\n")
    assert find_captioned_images(data) == [(data / "a.png", "anime girl, happy expression")]
    meta = tmp_path / "meta"
    (meta / "img").mkdir(parents=True)
    _draw(meta / "img" / "a.png", (255, 0, 0))
    (meta / "metadata.jsonl").write_text(json.dumps({"file_name": "img/a.png", "text": "red"}) + "\n")
    assert find_captioned_images(meta) == [(meta / "img" / "a.png", "red")]
    gen = tmp_path / "gen"
    (gen / "images").mkdir(parents=True)
    _draw(gen / "images" / "x.png", (0, 255, 0))
    (gen / "manifest.jsonl").write_text(json.dumps({"file": "images/x.png", "prompt": "green"}) + "\n")
    assert find_captioned_images(gen) == [(gen / "images" / "x.png", "green")]  # a generate run trains as is
    (data / "b.png").write_bytes((data / "a.png").read_bytes())
    with pytest.raises(ValueError, match=r"1 of 2 images have no caption file \(first: b.png needs b.txt\)"):
        find_captioned_images(data)


def test_captions_from_folder_layout(tmp_path, capsys):
    root = tmp_path / "set"
    for rel in (
        "Soft/happy/1.png",
        "stoic/Angry/2.png",
        "Soft/smiling/3.png",
        "misc/4_sad.png",
        "misc/5.png",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _draw(root / rel, (200, 200, 200))
    (root / "misc" / "5.txt").write_text("hand-written caption\n")
    assert main(["captions", str(root), "--trigger", "hrmny"]) == 0
    out = capsys.readouterr()
    assert "4 caption(s) written, 1 existing kept" in out.out
    soft_happy = (root / "Soft/happy/1.txt").read_text().strip()
    # trigger first, then the archetype's and the emotion's prompt phrases from prompts/*.yaml
    assert soft_happy == ("hrmny, gentle soft-featured anime girl, warm kind look, pastel colours, "
                          "happy smiling expression, cheerful")  # fmt: skip
    assert (root / "stoic/Angry/2.txt").read_text().startswith("hrmny, stoic composed anime girl")
    assert (
        (root / "stoic/Angry/2.txt").read_text().strip().endswith("angry expression, furrowed brows, glaring")
    )
    assert (root / "Soft/smiling/3.txt").read_text().strip().endswith("happy smiling expression, cheerful")
    assert (
        root / "misc/4_sad.txt"
    ).read_text().strip() == "hrmny, misc, sad expression, teary eyes, downcast"
    assert (root / "misc/5.txt").read_text() == "hand-written caption\n"  # kept without --overwrite
    assert layout_caption(Path("x/9.png"), {}, {"happy": {}})[2] is None  # no emotion anywhere
    r = write_captions(root, overwrite=True)
    assert r["written"] == 5 and (root / "misc/5.txt").read_text().strip() == "misc"


def test_captions_tagger_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import training.captions as cap

    _draw(tmp_path / "1.png", (200, 200, 200))

    def missing():
        raise ValueError("--tagger: the image tagger is not available (x); install the tagger extra")

    monkeypatch.setattr(cap, "load_tagger", missing)
    assert main(["captions", str(tmp_path), "--tagger"]) == 2
    assert "--tagger: the image tagger is not available" in capsys.readouterr().err
    assert not (tmp_path / "1.txt").exists()  # nothing half-written

    monkeypatch.setattr(
        cap, "load_tagger", lambda: lambda paths, **kw: {p: ["smile", "open_mouth"] for p in paths}
    )
    write_captions(tmp_path, "t", tagger=True)
    assert (tmp_path / "1.txt").read_text().strip() == "t, smile, open_mouth"


def test_crops_and_buckets(tmp_path):
    im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent, wider than tall
    im.paste((255, 0, 0, 255), (0, 0, 20, 20))  # opaque red left half
    im.save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png", 16)
    assert tuple(x.shape) == (3, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    # centre crop of a 32x16 resize: left quarter red, right quarter transparent -> white
    assert x[:, 8, 0].tolist() == pytest.approx([1.0, -1.0, -1.0], abs=0.02)
    assert x[:, 8, 15].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    px, orig, crop = crop_image(tmp_path / "a.png", 24, 8)
    assert (
        tuple(px.shape) == (3, 8, 24) and orig == (20, 40) and crop == (2, 0)
    )  # 24x12 resize, 4 rows cut: 2 above

    buckets = make_buckets(64, 8)
    assert (64, 64) in buckets and all(w * h <= 64 * 64 and w % 8 == 0 == h % 8 for w, h in buckets)
    assert max(max(w / h, h / w) for w, h in buckets) <= 2.0
    for name, size in (
        ("wide.png", (80, 40)),
        ("tall.png", (30, 60)),
        ("sq.png", (50, 50)),
        ("sq2.png", (40, 41)),
    ):
        Image.new("RGB", size, (9, 9, 9)).save(tmp_path / name)
    records = [(tmp_path / n, "c") for n in ("wide.png", "tall.png", "sq.png", "sq2.png")]
    cfg = load_config(None, {"resolution": 64, "bucket_step": 8, "aspect_buckets": True, "batch_size": 2})
    stream = BatchStream(records, cfg)
    w, h = stream.sizes[0]
    assert (w, h) == max(buckets, key=lambda b: b[0] / b[1])  # 2:1 goes to the widest bucket (80x48)
    assert stream.sizes[1] == min(buckets, key=lambda b: b[0] / b[1])  # 1:2 to the tallest
    assert stream.sizes[2] == stream.sizes[3] == (64, 64)
    assert stream.batches_per_epoch == 3  # wide alone, tall alone, the two squares together
    shapes = sorted(tuple(stream.batch(k)["pixel_values"].shape) for k in range(3))
    assert shapes == sorted([(1, 3, h, w), (1, 3, *stream.sizes[1][::-1]), (2, 3, 64, 64)])
    # deterministic: the same step draws the same batch in a new stream (what resume relies on)
    again = BatchStream(records, cfg)
    assert [again.epoch_batches(e) for e in (0, 1)] == [stream.epoch_batches(e) for e in (0, 1)]


def test_dataset_check_lists_unreadable_uncaptioned_and_broken(tmp_path, capsys):
    d = tmp_path / "set"
    d.mkdir()
    good = FIXTURES / "renpy_eileen_happy.png"
    (d / "good.png").write_bytes(good.read_bytes())
    (d / "good.txt").write_text("girl, happy smiling")
    a = Image.open(good).convert("RGB")
    b = Image.open(FIXTURES / "renpy_lucy_happy.png").convert("RGB").resize(a.size)
    collage = Image.new("RGB", (a.width * 2, a.height), "white")
    collage.paste(a, (0, 0))
    collage.paste(b, (a.width, 0))
    collage.save(d / "collage.png")  # two portraits side by side: what a bad training image looks like
    (d / "collage.txt").write_text("girl, happy")
    (d / "nocap.png").write_bytes(good.read_bytes())
    (d / "trunc.png").write_bytes(good.read_bytes()[:300])
    (d / "trunc.txt").write_text("girl")
    report = tmp_path / "problems.csv"
    assert main(["dataset-check", str(d), "--report", str(report), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "4 image(s), captions from .txt sidecars: 1 unreadable, 1 without caption, 1 scored broken" in out
    assert "trunc.png: cannot decode" in out and "nocap.png: no caption" in out
    assert "collage.png: 2 faces found: looks like a collage" in out
    kinds = sorted(line.split(",")[0] for line in report.read_text().splitlines()[1:])
    assert kinds == ["broken", "missing_caption", "unreadable"]
    # --check-data refuses to train on it, before any model is loaded
    args = ["train", "--model", "tiny-random", "--data", str(d), "--out", str(tmp_path / "o"), "--check-data"]
    (d / "nocap.txt").write_text("girl")
    (d / "trunc.png").unlink()
    (d / "trunc.txt").unlink()
    assert main([*args, "--no-progress"]) == 2
    assert "--check-data: 1 problem(s)" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_validation_metrics_follow_summarize_definitions():
    from training.validate import summarize_rows

    rows = [
        {"target": "happy", "emotion": "happy", "harmony": 0.8, "verdict": "perfect"},
        {"target": "happy", "emotion": "sad", "harmony": 0.4, "verdict": "acceptable"},
        {"target": "angry", "emotion": None, "harmony": None, "verdict": "broken"},  # no face: a miss
        {"target": "angry", "emotion": "angry", "harmony": 0.6, "verdict": "broken"},
    ]
    m = summarize_rows(rows, ["happy", "angry"])
    assert m["harmony"] == pytest.approx(0.6) and m["target_match"] == 0.5
    assert (m["perfect_rate"], m["acceptable_rate"], m["broken_rate"]) == (0.25, 0.25, 0.5)
    assert m["harmony_happy"] == pytest.approx(0.6) and m["harmony_angry"] == pytest.approx(0.6)


def test_keep_best_and_early_stop_follow_the_metric_direction(tmp_path):
    from training.validate import Validator

    saved = []
    cfg = load_config(None, {"model": "tiny-random", "best_metric": "broken_rate", "keep_best": True,
                             "early_stop_patience": 2})  # fmt: skip
    v = Validator(cfg, tmp_path)
    for step, broken in ((2, 0.5), (4, 0.25), (6, 0.5), (8, None)):  # lower broken_rate is better
        v._update_best({"step": step, "broken_rate": broken}, lambda d, s=step: saved.append((s, d.name)))
        assert v.should_stop() == (step == 8)  # two validations in a row without a better one
    assert v.best == {"step": 4, "value": 0.25, "metric": "broken_rate"}
    assert saved == [(2, "best"), (4, "best")]  # the LoRA is exported only when the best improves
    assert json.loads((tmp_path / "best" / "best.json").read_text())["step"] == 4


def test_set_overrides_any_key_and_flags_win(tmp_path):
    from training.cli import parse_set

    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-4\nrank: 8\n")  # PyYAML reads 1e-4 as a string: still the number
    over = parse_set(["validation-size=128", "validation_cfgs=[5, 7]", "rank=16"])
    cfg = load_config(path, {**over, "rank": 32})
    assert (cfg.lr, cfg.validation_size, cfg.validation_cfgs, cfg.rank) == (1e-4, 128, [5.0, 7.0], 32)
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_set(["rank"])
    with pytest.raises(
        ValueError, match="`validation_size` must be a positive multiple of 8 or unset, got 100"
    ):
        load_config(None, parse_set(["validation_size=100"]))
