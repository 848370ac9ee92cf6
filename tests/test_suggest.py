"""Suggestion ranking (``harmony_eval.suggest.rank_rows``) on hand-made rows."""

from __future__ import annotations

import numpy as np
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


# --- calibrate --suggest (calibration.suggest): cold start by diversity, then the fitted reader ---


def _ok(face: str = "happy", p: float = 0.4) -> dict:
    return {"status": "ok", "probs": onehot(face, p), "regions": {}, "scores": {}, "harmony": 0.5}


def test_cold_start_takes_one_face_from_every_cluster_biggest_first():
    from calibration.suggest import suggest_order

    rng = np.random.default_rng(0)
    centres, sizes = [(0, 0), (40, 0), (0, 40), (40, 40)], [10, 6, 4, 3]
    named, blob = [], []
    for b, ((x, y), n) in enumerate(zip(centres, sizes, strict=True)):
        for _ in range(n):
            named.append({"mouth:x": x + rng.normal(), "mouth:y": y + rng.normal()})
            blob.append(b)
    rows = [_ok() for _ in named]  # the tool reads all alike: one stratum, diversity alone decides
    order = suggest_order(rows, named, n=4, emotions=E)
    assert sorted(blob[i] for i in order) == [0, 1, 2, 3]  # every kind of face gets a label
    assert blob[order[0]] == 0  # the biggest group first: its label teaches about the most faces
    # the pick is the cluster's most typical face, not an outlier of it
    first = np.array([[named[i]["mouth:x"], named[i]["mouth:y"]] for i in range(10)])
    d = np.linalg.norm(first - first.mean(axis=0), axis=1)
    assert d[order[0]] <= np.percentile(d, 50)


def test_cold_start_shares_picks_over_what_the_tool_reads():
    from calibration.suggest import cold_start

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(16, 3))
    strata = ["happy"] * 12 + ["sad"] * 2 + ["angry"] * 2  # a skewed set: most faces read happy
    picks = cold_start(Z, list(range(16)), 4, seed=0, strata=strata)
    assert len(picks) == len(set(picks)) == 4
    assert {strata[i] for i in picks} == {"happy", "sad", "angry"}
    assert [strata[i] for i in picks].count("happy") == 2  # the biggest stratum gets the remainder


def test_once_labelled_the_fitted_readers_unsure_faces_come_first():
    from calibration.suggest import suggest_order

    # two labelled classes far apart along x; candidates on each side and one in between
    named = [{"mouth:x": x} for x in (-3.0, -2.9, 3.0, 2.9)] + [{"mouth:x": x} for x in (-3.1, 0.0, 3.1)]
    labels = ["sad", "sad", "happy", "happy"]
    rows = [_ok("happy", 0.9) for _ in named]  # the tool is sure of all: only the reader can tell
    order = suggest_order(rows, named, n=2, labelled=[0, 1, 2, 3], labels=labels, emotions=E)
    assert order[0] == 5  # between the two classes: the reader fitted on 4 labels is unsure there
    assert set(order) <= {4, 5, 6}  # never a labelled image


def test_excluded_images_are_never_suggested_but_stay_in_the_descriptor_space():
    from calibration.suggest import descriptor_space, suggest_order

    named = [{"mouth:x": x} for x in (-3.0, -2.9, 3.0, 2.9)] + [{"mouth:x": x} for x in (-3.1, 0.0, 0.0, 3.1)]
    labels = ["sad", "sad", "happy", "happy"]
    rows = [_ok("happy", 0.9) for _ in named]
    kw = dict(labelled=[0, 1, 2, 3], labels=labels, emotions=E)
    assert suggest_order(rows, named, n=1, **kw)[0] in (5, 6)  # the two faces between the classes
    order = suggest_order(rows, named, n=None, exclude=[6], **kw)  # 6: a copy of 5
    assert order[0] == 5 and 6 not in order and sorted(order) == [4, 5, 7]
    # blanking the copy's features instead would move the space every other image is placed in
    blanked = [None if i == 6 else n for i, n in enumerate(named)]
    assert not np.allclose(descriptor_space(named)[7], descriptor_space(blanked)[7])


def test_suggested_order_reads_only_the_labels_of_faces_already_suggested():
    from types import SimpleNamespace

    from benchmarks.validity_curves import suggested_order

    rng = np.random.default_rng(2)
    named = [{"mouth:x": float(x), "mouth:y": float(y)} for x, y in rng.normal(size=(30, 2)) * 5]
    truth = [E[i % 4] for i in range(30)]

    def ds(labels):
        items = [SimpleNamespace(row=_ok()) for _ in named]
        return SimpleNamespace(items=items, named=named, emotions=list(E), label=lambda i, t: labels[i])

    pool = list(range(30))
    a = suggested_order(ds(truth), pool, [8, 16], seed=0)
    assert sorted(a) == pool
    other = [truth[i] if i in set(a[:8]) else "angry" for i in range(30)]  # unseen labels changed
    b = suggested_order(ds(other), pool, [8, 16], seed=0)
    assert a[:16] == b[:16]  # batch 2 was chosen knowing only batch 1's labels
    flipped = suggested_order(ds(["neutral"] * 30), pool, [8, 16], seed=0)
    assert flipped[:8] == a[:8]  # the cold start knows no label at all
