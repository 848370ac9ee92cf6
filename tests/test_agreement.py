"""Agreement formulas against hand computations and the directions they must have."""

import numpy as np
import pytest

from harmony_eval.agreement import agree, agreement_scores, compatibility_matrix, harmony, pool

E = ["neutral", "happy", "sad", "angry"]
C = compatibility_matrix(E, {"neutral-happy": 0.5, "sad-angry": 0.25})


def onehot(e, p=1.0):
    v = np.full(len(E), (1 - p) / (len(E) - 1))
    v[E.index(e)] = p
    return v


def test_compatibility_matrix_symmetric_unit_diagonal():
    assert np.allclose(C, C.T)
    assert np.allclose(np.diag(C), 1.0)
    assert C[E.index("happy"), E.index("neutral")] == 0.5
    assert C[E.index("happy"), E.index("angry")] == 0.0  # unlisted pairs do not fit


def test_compatibility_matrix_rejects_bad_entries():
    with pytest.raises(ValueError, match="neutral happy"):
        compatibility_matrix(E, {"neutral happy": 0.5})
    with pytest.raises(ValueError, match="1.5"):
        compatibility_matrix(E, {"neutral-happy": 1.5})


def test_agree_equals_hand_computation():
    p, q = np.array([0.1, 0.6, 0.2, 0.1]), np.array([0.3, 0.3, 0.1, 0.3])

    def inner(x, y):
        return sum(x[a] * y[b] * C[a, b] for a in range(4) for b in range(4))

    assert agree(p, q, C) == pytest.approx(inner(p, q) / np.sqrt(inner(p, p) * inner(q, q)))


def test_agreement_is_about_direction_not_confidence():
    weak, strong = onehot("angry", 0.5), onehot("angry", 0.95)
    assert agree(weak, strong, C) > 0.8  # both lean angry: they agree
    uniform = np.full(4, 0.25)
    assert 0.3 < agree(uniform, strong, C) < 0.8  # an unreadable region neither agrees nor clashes


def test_agree_directions():
    same = agree(onehot("happy", 0.9), onehot("happy", 0.9), C)
    clash = agree(onehot("happy", 0.9), onehot("angry", 0.9), C)
    partial = agree(onehot("happy", 0.9), onehot("neutral", 0.9), C)
    assert same > partial > clash  # neutral partly fits a smile; anger does not
    assert clash >= 0.0 and same <= 1.0


def test_pool_is_log_linear_and_normalised():
    a, b = np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.4, 0.4, 0.1, 0.1])
    out = pool({"eyes": a, "mouth": b, "brows": None}, {"eyes": 1.0, "mouth": 3.0})
    hand = np.exp(0.25 * np.log(a) + 0.75 * np.log(b))
    assert out.sum() == pytest.approx(1.0)
    assert np.allclose(out, hand / hand.sum())
    assert pool({"eyes": None}, {"eyes": 1.0}) is None


def test_scores_high_when_regions_agree_low_when_they_clash():
    agree_faces = {"eyes": onehot("angry", 0.8), "brows": onehot("angry", 0.8), "mouth": onehot("angry", 0.8)}
    clash_faces = {"eyes": onehot("happy", 0.8), "brows": onehot("angry", 0.8), "mouth": onehot("happy", 0.8)}
    w = {"eyes": 0.35, "brows": 0.25, "mouth": 0.4}
    s_ok = agreement_scores(agree_faces, pool(agree_faces, w), C, w, target_index=E.index("angry"))
    s_bad = agreement_scores(clash_faces, pool(clash_faces, w), C, w, target_index=E.index("angry"))
    assert s_ok["eyes_mouth"] > 0.6 and s_ok["brows_tension"] > 0.6
    assert s_bad["brows_tension"] < s_ok["brows_tension"]  # angry brows on a smiling face
    assert s_bad["coherence"] < s_ok["coherence"]
    assert s_bad["target_match"] < s_ok["target_match"]  # the clash reads happy, not the angry target
    for s in (*s_ok.values(), *s_bad.values()):
        assert 0.0 <= s <= 1.0


def test_missing_regions_give_none_scores():
    s = agreement_scores({"eyes": onehot("happy"), "brows": None, "mouth": None}, onehot("happy"), C, {})
    assert s["eyes_mouth"] is None and s["brows_tension"] is None and s["target_match"] is None
    assert s["coherence"] == pytest.approx(1.0)  # the only region is the holistic reading


def test_harmony_weighted_mean_of_present_scores():
    w = {"eyes_mouth": 1.0, "brows_tension": 1.0, "coherence": 2.0, "target_match": 1.0}
    assert harmony(
        {"eyes_mouth": 0.2, "brows_tension": None, "coherence": 0.8, "target_match": None}, w
    ) == pytest.approx((0.2 + 1.6) / 3)
    assert harmony(dict.fromkeys(w), w) is None
