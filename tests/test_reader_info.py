"""Every run says what its reading is worth: run.json, the report header and the CLI's last line name
the reader, whether it was calibrated (on how many labels), its measured accuracy and of which kind,
and, when uncalibrated, how to calibrate. Figures come from the reader cards / calibration file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harmony_eval import reader_info
from harmony_eval.calibrated import Calibration
from harmony_eval.cli import main
from harmony_eval.pipeline import Scorer
from harmony_eval.resources import config_path
from harmony_eval.testing.sets import write_labelled_faces

EMOTIONS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """8 drawn faces (2 per emotion) with a labels.csv."""
    return write_labelled_faces(tmp_path_factory.mktemp("faces"), EMOTIONS, seeds=2, size=224)


def _score(faces: Path, out: Path, capsys, *extra: str) -> tuple[int, str, str]:
    rc = main(["score", str(faces), "--out", str(out), "--backend", "anatomy", "--detectors", "crop",
               "--no-progress", "--workers", "1", *extra])  # fmt: skip
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _header(out: Path) -> str:
    html = (out / "report.html").read_text(encoding="utf-8")
    return html[html.index("<header>") : html.index("</header>")]


def _card(tmp_path: Path, **oos) -> Path:
    figures = {"balanced_accuracy": 0.31, "ci95": [0.12, 0.55], "n": 23, "sources": ["src_a", "src_b"],
               "chance": 0.25, "classes": EMOTIONS, "measured_with": "python -m benchmarks.validity"}  # fmt: skip
    figures.update(oos)
    card = {"format": "harmony_eval.readers", "version": 1, "readers": {
        "anatomy": {"description": "test card", "holistic_temperature": 1.0, "out_of_source": figures}}}  # fmt: skip
    p = tmp_path / "readers.json"
    p.write_text(json.dumps(card), encoding="utf-8")
    return p


def test_uncalibrated_run_names_reader_accuracy_and_advice(faces, tmp_path, capsys):
    card = json.loads(config_path("readers.json").read_text(encoding="utf-8"))["readers"]["anatomy"]
    oos = card["out_of_source"]  # the shipped figures: whatever benchmarks.validity last measured
    out = tmp_path / "run"
    rc, stdout, _ = _score(faces, out, capsys)
    assert rc == 0
    reader = json.loads((out / "run.json").read_text(encoding="utf-8"))["reader"]
    assert reader["backend"] == "anatomy" and reader["calibrated"] is False and reader["n_labels"] is None
    acc = reader["accuracy"]
    assert acc["kind"] == reader_info.OUT_OF_SOURCE
    assert (acc["balanced_accuracy"], acc["ci95"], acc["n"]) == (
        oos["balanced_accuracy"],
        oos["ci95"],
        oos["n"],
    )
    assert f"--images {faces} --suggest 50" in reader["advice"]  # the scored folder, ready to paste
    assert "--backend tagger" in reader["advice"]  # ... or a pretrained reader
    ba = f"{oos['balanced_accuracy']:.2f}"
    last = stdout.strip().splitlines()[-1]  # the last line says what the counts above are worth
    assert last.startswith("reader: anatomy") and "uncalibrated" in last and ba in last
    assert f"{oos['n']} faces never tuned on" in last and "calibrate --images" in last and "--suggest" in last
    assert "perfect" in stdout.strip().splitlines()[-2]  # the counts line comes just before it
    header = _header(out)  # in the header itself, not folded into the run-information details
    assert "uncalibrated" in header and ba in header and "out-of-source" in header
    assert "<code>harmony-eval calibrate --images" in header
    assert main(["summarize", str(out), "--n-boot", "20"]) == 0  # the summary files carry the line too
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "**Reader:** anatomy" in md and "uncalibrated" in md and ba in md
    summary_html = (out / "summary.html").read_text(encoding="utf-8")
    assert 'class="reader"' in summary_html and "uncalibrated" in summary_html


def test_figures_come_from_the_card(faces, tmp_path, monkeypatch):
    path = _card(tmp_path)
    info = reader_info.describe_reader(Scorer(backend="anatomy"), cards=reader_info.load_reader_cards(path))
    line = reader_info.summary_line(info)
    assert "0.31 [0.12, 0.55] on 23 faces" in line and "the interval reaches chance" in line  # 0.12 < 0.25
    # the interval above chance: no such warning; and a vocabulary other than the card's is said
    path = _card(tmp_path, balanced_accuracy=0.72, ci95=[0.61, 0.83])
    scorer = Scorer(backend="anatomy", emotions="happy,sad")
    info = reader_info.describe_reader(scorer, cards=reader_info.load_reader_cards(path))
    line = reader_info.summary_line(info)
    assert "0.72 [0.61, 0.83]" in line and "reaches chance" not in line
    assert "measured over neutral, happy, sad, angry" in line
    # no card for the backend: "not measured", never a number borrowed from another reader
    info = reader_info.describe_reader(Scorer(backend="anatomy"), cards={})
    assert (
        info["accuracy"]["kind"] == reader_info.NOT_MEASURED and info["accuracy"]["balanced_accuracy"] is None
    )
    assert "accuracy not measured" in reader_info.summary_line(info) and info["advice"]


def test_the_harmony_figure_is_said_with_what_it_means(tmp_path):
    """The verdicts rest on harmony: where the card measured how well it tells a sprite from the same
    sprite with another expression's mouth, the line says so, and near chance that verdicts say little."""
    for auc, little in ((0.52, True), (0.81, False)):
        path = _card(tmp_path, harmony_swap_auc=auc, n_swap=[19, 24])
        info = reader_info.describe_reader(
            Scorer(backend="anatomy"), cards=reader_info.load_reader_cards(path)
        )
        assert info["harmony"]["swap_auc"] == auc and info["harmony"]["n_swap"] == [19, 24]
        line = reader_info.summary_line(info)
        assert f"another expression's mouth at AUC {auc:.2f} out of source (19 vs 24 faces" in line
        assert ("verdicts on new art say little" in line) is little
        assert f"AUC {auc:.2f}" in reader_info.reader_html(info)
    info = reader_info.describe_reader(
        Scorer(backend="anatomy"), cards=reader_info.load_reader_cards(_card(tmp_path))
    )
    assert info["harmony"] is None and "AUC" not in reader_info.summary_line(info)  # not measured: not said


def test_clip_card_without_figures_says_not_measured():
    card = json.loads(config_path("readers.json").read_text(encoding="utf-8"))["readers"]["clip"]
    info = reader_info.describe_reader(Scorer(backend="clip"))  # the card only; no weights are loaded
    assert info["reader"].startswith("clip") and not info["calibrated"]
    if card["out_of_source"] is None:  # as shipped while no CLIP weights can be measured offline
        assert (
            info["accuracy"]["kind"] == reader_info.NOT_MEASURED
            and info["accuracy"]["balanced_accuracy"] is None
        )
        assert "accuracy not measured" in reader_info.summary_line(info)
    else:
        assert info["accuracy"]["balanced_accuracy"] == card["out_of_source"]["balanced_accuracy"]
    # advice: calibrate, or the other pretrained reader (not the one already in use)
    assert "--suggest 50" in info["advice"] and "--backend tagger" in info["advice"]
    assert "--backend clip" not in info["advice"]


@pytest.fixture(scope="module")
def calibration_file(faces, tmp_path_factory) -> Path:
    """A calibration fitted on the 8 labelled faces (what `calibrate` writes, minus its report)."""
    from calibration.evaluate import Dataset, build_calibration
    from calibration.features import score_images
    from calibration.fit import FitOptions
    from calibration.labels import read_labels

    lab = read_labels(faces / "labels.csv", faces, EMOTIONS, False)
    scorer, items = score_images([str(r["file"]) for r in lab.rows], backend="anatomy", emotions=EMOTIONS,
                                 detectors=["crop"], progress=False)  # fmt: skip
    cal = build_calibration(Dataset(lab, items, scorer, EMOTIONS), list(range(len(items))), FitOptions())
    return cal.save(tmp_path_factory.mktemp("cal") / "calibration.json")


def _with_training(src: Path, dst: Path, **training) -> Path:
    d = json.loads(src.read_text(encoding="utf-8"))
    d["training"] = {k: v for k, v in {**d["training"], **training}.items() if v is not None}
    dst.write_text(json.dumps(d), encoding="utf-8")
    Calibration.load(dst)  # still a valid file
    return dst


def test_calibrated_run_shows_labels_and_cv_figure(faces, calibration_file, tmp_path, capsys):
    cv = {"balanced_accuracy": 0.68, "ci95": [0.41, 0.9], "n": 8, "folds": 4}
    cal = _with_training(calibration_file, tmp_path / "cal.json", n_labels=8, cv=cv)
    out = tmp_path / "run"
    rc, stdout, _ = _score(faces, out, capsys, "--calibration", str(cal))
    assert rc == 0
    reader = json.loads((out / "run.json").read_text(encoding="utf-8"))["reader"]
    assert reader["calibrated"] is True and reader["calibration"] == str(cal) and reader["n_labels"] == 8
    assert reader["accuracy"]["kind"] == reader_info.CROSS_VALIDATED and reader["accuracy"]["folds"] == 4
    assert reader["advice"] is None  # nothing left to do
    assert "face" in reader["calibrated_regions"]
    last = stdout.strip().splitlines()[-1]
    assert last.startswith(f"reader: anatomy + calibration {cal}, calibrated on 8 labels")
    assert "cross-validated on your labels 0.68 [0.41, 0.90]" in last and "4-fold" in last
    assert "To trust" not in last and "out-of-source" not in last  # the card's figure is not this reader's
    assert "AUC" not in last and reader["harmony"] is None  # nor the card's harmony figure
    header = _header(out)
    assert "calibrated on 8 labels" in header and "0.68" in header and "To trust" not in header


def test_calibration_without_cv_figure_says_not_measured(faces, calibration_file, tmp_path):
    # an older calibration file: no n_labels, and training.cv the fold count, not figures
    cal = _with_training(calibration_file, tmp_path / "old.json", n_labels=None, cv=5)
    info = reader_info.describe_reader(Scorer(backend="anatomy", calibration=str(cal)))
    n_images = json.loads(cal.read_text(encoding="utf-8"))["training"]["n_images"]
    assert info["calibrated"] and info["n_labels"] == n_images  # one label per labelled image
    assert (
        info["accuracy"]["kind"] == reader_info.NOT_MEASURED and info["accuracy"]["balanced_accuracy"] is None
    )
    line = reader_info.summary_line(info)
    assert f"calibrated on {n_images} labels" in line and "accuracy not measured" in line and "--cv 5" in line


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"balanced_accuracy": 1.7}, "readers.anatomy.out_of_source.balanced_accuracy"),
        ({"ci95": [0.6, 0.2]}, "readers.anatomy.out_of_source.ci95"),
        ({"n": None}, "readers.anatomy.out_of_source.n"),
        ({"sources": []}, "readers.anatomy.out_of_source.sources"),
        ({"harmony_swap_auc": 1.2, "n_swap": [3, 4]}, "readers.anatomy.out_of_source.harmony_swap_auc"),
        ({"harmony_swap_auc": 0.7}, "readers.anatomy.out_of_source.n_swap"),
    ],
)
def test_bad_card_field_is_named_with_the_file(tmp_path, change, field):
    path = _card(tmp_path, **change)
    with pytest.raises(reader_info.ReaderCardError) as e:
        reader_info.load_reader_cards(path)
    assert str(path) in str(e.value) and field in str(e.value)


def test_card_missing_field_or_broken_file(tmp_path):
    path = _card(tmp_path)
    d = json.loads(path.read_text(encoding="utf-8"))
    del d["readers"]["anatomy"]["holistic_temperature"]
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(
        reader_info.ReaderCardError, match=re.escape(f"{path}: readers.anatomy.holistic_temperature")
    ):
        reader_info.load_reader_cards(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(reader_info.ReaderCardError, match=re.escape(f"{path}: not valid JSON")):
        reader_info.load_reader_cards(path)


def test_score_with_a_broken_card_fails_before_scoring(faces, tmp_path, capsys, monkeypatch):
    bad = _card(tmp_path, ci95=[0.5])
    real = reader_info.load_reader_cards
    monkeypatch.setattr(reader_info, "load_reader_cards", lambda path=None: real(bad))
    out = tmp_path / "run"
    rc, _, stderr = _score(faces, out, capsys)
    assert rc == 2 and str(bad) in stderr and "ci95" in stderr
    assert not (out / "results.jsonl").exists()  # nothing was scored to be lost
