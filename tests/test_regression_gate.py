"""The project's own CI gate: the frozen render set, scored by this code, must match the committed
benchmarks/baseline.json. After an intended change to the scores, rewrite it with
``python -m benchmarks.frozen --write-baseline`` and commit the new baseline with the change."""

from __future__ import annotations

import json

import pytest

from benchmarks import frozen

REGENERATE = "python -m benchmarks.frozen --write-baseline"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The frozen set built and scored once for this module (the expensive part)."""
    return frozen.score(frozen.build(tmp_path_factory.mktemp("gate") / "frozen"))


def test_build_is_deterministic(tmp_path):
    a, b = frozen.build(tmp_path / "a"), frozen.build(tmp_path / "b")
    for f in frozen.FROZEN:
        name = f"images/{f.name}.png"
        assert (a / name).read_bytes() == (b / name).read_bytes(), name  # same arguments, same pixels
    assert (a / "manifest.jsonl").read_text() == (b / "manifest.jsonl").read_text()


def test_frozen_set_matches_the_committed_baseline(scored, capsys):
    if not frozen.BASELINE.is_file():
        pytest.fail(f"{frozen.BASELINE} is missing; write it with `{REGENERATE}` and commit it")
    from harmony_eval.cli import main

    metrics = [x for m in frozen.METRICS for x in ("--metric", m)]
    code = main(["check", str(scored), "--baseline", str(frozen.BASELINE), *metrics,
                 "--max-drop", str(frozen.MAX_DROP), "--max-image-delta", str(frozen.MAX_IMAGE_DELTA)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, f"the evaluator's scores moved on the frozen set:\n{out}\nIf intended: `{REGENERATE}`"


def test_gate_sees_a_change_to_the_evaluator(scored, tmp_path, monkeypatch, capsys):
    """Shrink every harmony by 5% (a plausible slip in a weight): the strict gate must fail."""
    if not frozen.BASELINE.is_file():
        pytest.skip(f"{frozen.BASELINE} missing (see the test above)")
    from harmony_eval import agreement
    from harmony_eval.cli import main

    original = agreement.harmony
    monkeypatch.setattr(
        agreement, "harmony", lambda s, w: None if original(s, w) is None else 0.95 * original(s, w)
    )
    changed = frozen.score(frozen.build(tmp_path / "frozen"))
    assert main(["check", str(changed), "--baseline", str(frozen.BASELINE),
                 "--max-image-delta", str(frozen.MAX_IMAGE_DELTA)]) == 1  # fmt: skip
    assert "images that moved most" in capsys.readouterr().out


def test_baseline_describes_the_set():
    if not frozen.BASELINE.is_file():
        pytest.skip(f"{frozen.BASELINE} missing (see test_frozen_set_matches_the_committed_baseline)")
    b = json.loads(frozen.BASELINE.read_text())
    assert b["n"] == len(frozen.FROZEN) and len(b["images"]) == len(frozen.FROZEN)
    assert set(b["by_emotion"]) == {f.target for f in frozen.FROZEN}  # a row per target emotion
    assert b["evaluator"]["backend"] == ["anatomy"]  # pinned backend (see benchmarks/frozen.py)
