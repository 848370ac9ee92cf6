"""Label files for `harmony-eval calibrate`: CSV and Label Studio exports, and clear errors for unknown
labels, missing files and duplicate rows."""

from __future__ import annotations

import json

import pytest

from calibration.labels import read_labels

VOCAB = ["neutral", "happy", "sad", "angry"]


@pytest.fixture()
def images(tmp_path):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        (d / name).write_bytes(b"not read here")
    return d


def write(tmp_path, text, name="labels.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_with_extra_columns_and_region_labels(tmp_path, images):
    p = write(tmp_path, "file,notes,emotion,mouth,verdict\na.png,x,Happy,happy,perfect\nsub/c.png,,sad,,\n")
    lab = read_labels(p, images, VOCAB)
    assert lab.targets == ["emotion", "mouth", "verdict"]  # `notes` ignored
    assert [r["emotion"] for r in lab.rows] == ["happy", "sad"]  # case and spaces normalised
    assert lab.rows[1]["mouth"] is None  # empty cell = no label
    assert lab.rows[1]["file"] == str((images / "sub" / "c.png").resolve())


def test_an_empty_column_is_no_target(tmp_path, images):
    """``--suggest`` writes every label column; one left empty is not labelled: the face labels
    still stand for the regions (weak labels), and no verdict model is fitted on nothing."""
    p = write(tmp_path, "file,emotion,eyes,brows,mouth,verdict,rank\na.png,happy,,,,,1\nb.png,sad,,,,,2\n")
    assert read_labels(p, images, VOCAB).targets == ["emotion"]
    p = write(tmp_path, "file,emotion,mouth\na.png,,\nb.png,,\n")
    with pytest.raises(ValueError, match=r"label column\(s\) \['emotion', 'mouth'\] are empty"):
        read_labels(p, images, VOCAB)


def test_unknown_labels_listed_with_the_vocabulary(tmp_path, images):
    p = write(tmp_path, "file,emotion\na.png,other\nb.png,happy\nsub/c.png,surprised\n")
    with pytest.raises(ValueError) as e:
        read_labels(p, images, VOCAB)
    msg = str(e.value)
    assert "emotion=other" in msg and "emotion=surprised" in msg  # every unknown value listed
    assert "['neutral', 'happy', 'sad', 'angry']" in msg and "--ignore-unknown" in msg  # and how to fix
    lab = read_labels(p, images, VOCAB, ignore_unknown=True)
    assert [r["emotion"] for r in lab.rows] == ["happy"] and len(lab.dropped) == 2


def test_missing_files_and_duplicates_are_errors(tmp_path, images):
    p = write(tmp_path, "file,emotion\na.png,happy\nnope.png,sad\n")
    with pytest.raises(ValueError, match=r"not found under --images .*line 3 'nope.png'"):
        read_labels(p, images, VOCAB)
    p = write(tmp_path, "file,emotion\na.png,happy\nb.png,sad\na.png,sad\n")
    with pytest.raises(ValueError, match=r"duplicate row.*line 4 'a.png' \(first on line 2\)"):
        read_labels(p, images, VOCAB)


def test_bad_files_and_columns(tmp_path, images):
    with pytest.raises(FileNotFoundError, match="--labels"):
        read_labels(tmp_path / "none.csv", images, VOCAB)
    with pytest.raises(ValueError, match="no `file` column"):
        read_labels(write(tmp_path, "path,emotion\na.png,happy\n"), images, VOCAB)
    with pytest.raises(ValueError, match="no label column"):
        read_labels(write(tmp_path, "file,notes\na.png,x\n"), images, VOCAB)
    with pytest.raises(ValueError, match="verdict=fine"):
        read_labels(write(tmp_path, "file,verdict\na.png,fine\n"), images, VOCAB)


def test_label_studio_export(tmp_path, images):
    tasks = [
        {
            "data": {"image": "/data/upload/3/0a1b2c3d-a.png"},  # upload name with Label Studio's prefix
            "annotations": [
                {"was_cancelled": False, "result": [
                    {"from_name": "emotion", "type": "choices", "value": {"choices": ["angry"]}},
                    {"from_name": "brows", "type": "choices", "value": {"choices": ["angry"]}},
                ]},
            ],
        },
        {"data": {"image": "b.png"}, "annotations": [{"result": [{"from_name": "emotion", "value": {"choices": ["neutral"]}}]}]},
    ]  # fmt: skip
    lab = read_labels(write(tmp_path, json.dumps(tasks), "export.json"), images, VOCAB)
    assert [(r["emotion"], r.get("brows")) for r in lab.rows] == [("angry", "angry"), ("neutral", None)]
    assert lab.rows[0]["file"].endswith("a.png")
    minimal = [{"image": "a.png", "emotion": "sad"}]  # JSON-MIN export
    assert (
        read_labels(write(tmp_path, json.dumps(minimal), "min.json"), images, VOCAB).rows[0]["emotion"]
        == "sad"
    )
