"""Target emotions: CSV > manifest > A1111 prompt metadata > file name, with exact-one word matching."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from harmony_eval.imageio import load_image
from harmony_eval.targets import (
    TargetResolver,
    emotions_in,
    filename_target,
    prompt_of,
    prompt_target,
    tokens,
)

VOCAB = ["neutral", "happy", "sad", "angry"]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (200, 200, 200)).save(path)
    return path


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------- word matching


def test_tokens_split_on_non_letters_and_camel_case():
    assert tokens("HappyGirl_02-smile.v2") == ["happy", "girl", "smile", "v"]
    assert tokens("ANGRY face") == ["angry", "face"]  # all-caps is one word, not A-N-G-R-Y


@pytest.mark.parametrize(
    "name, expected",
    [
        ("happy_001.png", "happy"),
        ("girl-smiling-03.png", "happy"),  # a synonym from emotions.yaml `words`
        ("HappyFace.png", "happy"),  # camelCase
        ("unhappy.png", "sad"),  # whole tokens: 'unhappy' is a sad word, 'happy' is not inside it
        ("madeline.png", None),  # 'mad' (angry) only as a whole token
        ("sad_to_happy.png", None),  # two emotions: ambiguous, no target
        ("portrait_0042.png", None),  # none named
        ("surprised_01.png", None),  # not in the default vocabulary
    ],
)
def test_filename_target(name, expected):
    assert filename_target(name, VOCAB) == expected


def test_filename_uses_the_stem_not_the_folders():
    assert filename_target("happy_set/portrait.png", VOCAB) is None


def test_inactive_emotion_counts_once_in_the_vocabulary():
    assert filename_target("surprised_01.png", [*VOCAB, "surprised"]) == "surprised"


def test_prompt_part_only_negative_settings_and_lora_tags_ignored():
    params = (
        "1girl, solo, (smiling:1.2), cheerful, <lora:angry_style_v2:0.7>\n"
        "Negative prompt: sad, crying, lowres\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Model: mad_mix_v3"
    )
    assert "Negative" not in prompt_of(params) and "lora" not in prompt_of(params)
    assert prompt_target(params, VOCAB) == "happy"  # sad is only in the negative, angry only in a tag
    no_negative = "angry expression, glaring\nSteps: 20, Sampler: DPM++ 2M, Model: happy_mix"
    assert prompt_target(no_negative, VOCAB) == "angry"  # the settings line is not the prompt
    assert emotions_in("happy and sad", VOCAB) == ["happy", "sad"]
    assert prompt_target("happy and sad", VOCAB) is None


# --------------------------------------------------------------------------------------------- CSV


def test_csv_relative_path_basename_and_most_specific_match(tmp_path):
    root = tmp_path / "in"
    a, b, c = touch(root / "a" / "x.png"), touch(root / "b" / "x.png"), touch(root / "solo.png")
    csv = write_csv(tmp_path / "t.csv", "file,emotion\nx.png,sad\na/x.png,happy\nsolo.png,Angry\n")
    r = TargetResolver(VOCAB, targets_csv=csv, root=root)
    assert r.target_for(a) == ("happy", "csv")  # 'a/x.png' is more specific than 'x.png'
    assert r.target_for(b) == ("sad", "csv")  # only the basename row matches b/x.png
    assert r.target_for(c) == ("angry", "csv")  # case-insensitive emotion
    assert r.unused_csv_rows() == []


def test_csv_matches_without_root_and_reports_unused_rows(tmp_path):
    img = touch(tmp_path / "run" / "img_1.png")
    csv = write_csv(tmp_path / "t.csv", "path,label,notes\nrun\\img_1.png,neutral,x\nmissing.png,sad,y\n")
    r = TargetResolver(VOCAB, targets_csv=csv)
    assert r.target_for(img) == ("neutral", "csv")  # Windows separators and column aliases accepted
    assert r.unused_csv_rows() == ["missing.png"]  # a typo in the CSV is findable


def test_csv_with_bom_and_absolute_paths(tmp_path):
    img = touch(tmp_path / "q.png")
    (tmp_path / "t.csv").write_text(f"\ufefffile,emotion\n{img},sad\n", encoding="utf-8")
    assert TargetResolver(VOCAB, targets_csv=tmp_path / "t.csv").target_for(img) == ("sad", "csv")


def test_csv_row_is_final_even_when_it_says_no_target(tmp_path):
    img = touch(tmp_path / "happy_01.png")
    csv = write_csv(tmp_path / "t.csv", "file,emotion\nhappy_01.png,other\n")
    # the file name says happy, but the user's CSV says "none of them": the CSV wins
    assert TargetResolver(VOCAB, targets_csv=csv, root=tmp_path).target_for(img) == (None, "none")


def test_csv_unknown_emotion_lists_the_vocabulary(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "file,emotion\na.png,happy\nb.png,joyfull\n")
    with pytest.raises(ValueError, match=r"line 3: unknown emotion 'joyfull'; the vocabulary is \['neutral'"):
        TargetResolver(VOCAB, targets_csv=csv)


def test_csv_duplicate_rows_are_an_error(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "file,emotion\na.png,happy\n./a.png,happy\n")
    with pytest.raises(ValueError, match=r"line 3: './a.png' is listed twice \(first on line 2\)"):
        TargetResolver(VOCAB, targets_csv=csv)


def test_csv_needs_a_header(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "a.png,happy\nb.png,sad\n")
    with pytest.raises(ValueError, match="needs a header with columns 'file' and 'emotion'"):
        TargetResolver(VOCAB, targets_csv=csv)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TargetResolver(VOCAB, targets_csv=tmp_path / "nope.csv")


def test_csv_emotion_outside_the_vocabulary_warns_and_gives_none(tmp_path):
    img = touch(tmp_path / "a.png")
    csv = write_csv(tmp_path / "t.csv", "file,emotion\na.png,surprised\n")
    with pytest.warns(UserWarning, match="1 row"):
        r = TargetResolver(VOCAB, targets_csv=csv)
    assert r.target_for(img) == (None, "none")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with surprised active the same row is a target, no warning
        r5 = TargetResolver([*VOCAB, "surprised"], targets_csv=csv)
    assert r5.target_for(img) == ("surprised", "csv")


# ---------------------------------------------------------------------------------------- manifest


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "manifest.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def test_manifests_are_found_in_the_input_tree(tmp_path):
    root = tmp_path / "in"
    run1 = touch(root / "run1" / "images" / "0001.png")
    run2 = touch(root / "run2" / "0001.png")
    write_manifest(root / "run1", [{"file": "images/0001.png", "emotion": "sad", "seed": 1}])
    write_manifest(
        root / "run2", [{"file": "0001.png", "emotion": "angry"}, {"file": "0001.png", "emotion": "angry"}]
    )
    r = TargetResolver(VOCAB, root=root)
    assert r.target_for(run1) == ("sad", "manifest")  # file is relative to its manifest's folder
    assert r.target_for(run2) == ("angry", "manifest")  # a repeated identical row is fine


def test_manifest_in_the_images_own_folder_without_root(tmp_path):
    img = touch(tmp_path / "run" / "smiling_girl.png")
    write_manifest(tmp_path / "run", [{"file": "smiling_girl.png", "emotion": "neutral"}])
    assert TargetResolver(VOCAB).target_for(img) == ("neutral", "manifest")  # beats the file name


def test_broken_manifest_found_mid_run_warns_instead_of_stopping(tmp_path):
    img = touch(tmp_path / "run" / "happy_1.png")
    (tmp_path / "run" / "manifest.jsonl").write_text("{oops\n")
    r = TargetResolver(VOCAB)  # no root: the manifest is only found when the image comes up
    with pytest.warns(UserWarning, match=r"line 1: not valid JSON.*ignoring"):
        assert r.target_for(img) == ("happy", "filename")  # falls through to the next source


def test_explicit_manifest_and_its_errors(tmp_path):
    img = touch(tmp_path / "imgs" / "a.png")
    m = write_manifest(tmp_path / "imgs", [{"file": "a.png", "emotion": "happy"}])
    assert TargetResolver(VOCAB, manifest=m).target_for(img) == ("happy", "manifest")
    assert TargetResolver(VOCAB, manifest=m.parent).target_for(img) == ("happy", "manifest")
    m.write_text('{"file": "a.png", "emotion": "happy"}\n{"file": "a.png", "emotion": "sad"}\n')
    with pytest.raises(ValueError, match="line 2: 'a.png' already has emotion 'happy', now 'sad'"):
        TargetResolver(VOCAB, manifest=m)
    m.write_text('{"file": "a.png", "emotion": "happy"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        TargetResolver(VOCAB, root=tmp_path)  # found while walking the root: fails up front
    m.write_text('{"file": "a.png", "emotion": "gleeful"}\n')
    with pytest.raises(ValueError, match="unknown emotion 'gleeful'"):
        TargetResolver(VOCAB, manifest=m)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        TargetResolver(VOCAB, manifest=tmp_path / "missing.jsonl")


# -------------------------------------------------------------------------------- metadata, order


def save_a1111_png(path: Path, parameters: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (32, 32), (90, 90, 90)).save(path, pnginfo=info)
    return path


def test_a1111_parameters_read_from_the_png(tmp_path):
    p = save_a1111_png(
        tmp_path / "00012-123456.png", "1girl, sad expression, teary eyes\nNegative prompt: smile\n"
    )
    meta = load_image(p, min_side=1).metadata
    assert TargetResolver(VOCAB).target_for(p, meta) == ("sad", "metadata")
    assert TargetResolver(VOCAB).target_for(p) == (None, "none")  # no metadata passed, no digits-only name


def test_ambiguous_prompt_falls_through_to_the_file_name(tmp_path):
    p = save_a1111_png(tmp_path / "angry_7.png", "happy or sad, you decide")
    assert TargetResolver(VOCAB).target_for(p, load_image(p).metadata) == ("angry", "filename")


def test_priority_csv_then_manifest_then_metadata_then_filename(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    names = ["all.png", "no_csv.png", "meta_only_happy.png", "sad_name.png", "blank.png"]
    for n in names:
        save_a1111_png(root / n, "neutral calm face" if n != "sad_name.png" else "")
    # every file's name/prompt/manifest/CSV would say different things; each drops one source
    write_manifest(root, [{"file": "all.png", "emotion": "sad"}, {"file": "no_csv.png", "emotion": "angry"}])
    csv = write_csv(tmp_path / "t.csv", "file,emotion\nall.png,happy\n")
    r = TargetResolver(VOCAB, targets_csv=csv, root=root)
    got = {n: r.target_for(root / n, load_image(root / n).metadata) for n in names}
    assert got == {
        "all.png": ("happy", "csv"),
        "no_csv.png": ("angry", "manifest"),
        "meta_only_happy.png": ("neutral", "metadata"),  # the prompt outranks the name
        "sad_name.png": ("sad", "filename"),
        "blank.png": ("neutral", "metadata"),
    }
