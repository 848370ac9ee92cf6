"""Suggestion ranking (``harmony_eval.suggest.rank_rows``) on hand-made rows."""

from __future__ import annotations

import pytest

from harmony_eval.suggest import informativeness, rank_rows
from harmony_eval.verdict import VerdictConfig

TH = {
    "perfect_harmony": 0.7,
    "broken_harmony": 0.4,
    "checks": {"eyes_mouth": 0.5, "brows_tension": 0.45, "coherence": 0.55},
}
E = ("neutral", "happy", "sad", "angry")


def onehot(e: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(E) - 1)
    return {k: (p if k == e else rest) for k in E}


def row(face="happy", p=0.9, eyes="happy", brows="happy", mouth="happy", rp=0.9, checks=0.95, harmony=0.95,
        target="happy", verdict="perfect", status="ok"):  # fmt: skip
    return {
        "status": status, "target": target, "verdict": verdict, "harmony": harmony,
        "probs": onehot(face, p) if face else None,
        "regions": {r: {"box": [0, 0, 1, 1], "probs": onehot(e, rp)} for r, e in
                    (("eyes", eyes), ("brows", brows), ("mouth", mouth))},
        "scores": {"eyes_mouth": checks, "brows_tension": checks, "coherence": checks},
    }  # fmt: skip


def test_each_part_follows_its_formula():
    sure = informativeness(row(), TH)
    assert sure["uncertainty"] == pytest.approx((1 - 0.9) / (1 - 1 / 4))
    assert sure["disagreement"] == pytest.approx(0.5 * 0 + 0.5 * (1 - 0.95))  # regions agree
    assert sure["near_threshold"] == 0.0  # 0.95 is 0.25 from the nearest line (perfect 0.7)
    split = informativeness(row(eyes="sad", brows="angry", checks=0.2), TH)
    assert split["disagreement"] == pytest.approx(0.5 * 1 + 0.5 * 0.8)  # three regions, three readings
    near = informativeness(row(harmony=0.68), TH)
    assert near["near_threshold"] == pytest.approx(1 - 0.02 / 0.1)  # 0.02 below perfect_harmony
    assert sure["score"] == pytest.approx(
        sum(sure[k] for k in ("uncertainty", "disagreement", "near_threshold")) / 3
    )


def test_unsure_disagreeing_and_borderline_rows_come_before_clear_ones():
    rows = [
        row(target="happy"),  # clear and confident
        row(face="sad", p=0.3, target="sad", verdict="acceptable", harmony=0.6),  # unsure
        row(
            eyes="angry", mouth="happy", checks=0.3, target="angry", verdict="broken", harmony=0.3
        ),  # regions differ
        row(harmony=0.71, target="neutral", face="neutral"),  # just over the perfect line
    ]
    order = rank_rows(rows, TH)
    assert sorted(order) == [0, 1, 2, 3]
    assert order[-1] == 0  # the one row nobody needs to look at is last
    assert order.index(3) < order.index(0)  # borderline beats clear


def test_rows_without_a_reading_follow_every_scored_row():
    rows = [
        {"status": "error", "target": None, "verdict": None},
        {"status": "no_face", "target": None, "verdict": "broken", "probs": None, "flags": ["no_face"]},
        row(),
        row(face="sad", p=0.4, target="sad"),
    ]
    order = rank_rows(rows, TH)
    assert order[2:] == [1, 0]  # no_face, then the error: neither teaches the region readers
    assert set(order[:2]) == {2, 3}


def test_near_identical_rows_are_interleaved_with_other_groups():
    # six near-identical unsure happy/broken rows (scores 0.60 .. 0.55) and three of another group
    # just below them: without the diversity step all six would come first in one block
    a = [row(face="happy", p=0.40 + 0.01 * i, target="happy", verdict="broken") for i in range(6)]
    b = [row(face="sad", p=0.47 + 0.01 * i, target="sad", verdict="acceptable") for i in range(3)]
    rows = a + b
    order = rank_rows(rows, TH)
    groups = ["a" if i < 6 else "b" for i in order]
    longest = max(len(run) for run in "".join(groups).replace("ab", "a b").replace("ba", "b a").split())
    assert longest <= 2, groups
    assert order[0] == 0  # the most informative row still comes first
    within_a = [i for i in order if i < 6]
    assert within_a == sorted(within_a)  # inside a group, most informative first (lower p = more unsure)


def test_default_thresholds_are_the_packaged_verdict_config():
    rows = [row(harmony=h, target=str(h)) for h in (0.95, 0.41, 0.71, 0.2)]
    assert rank_rows(rows) == rank_rows(rows, VerdictConfig.load().thresholds)
    assert rank_rows([]) == []
