"""Calibration maths against independent references: metrics vs scikit-learn and a hand-computed ECE,
the JSON calibration file vs the scikit-learn estimator it was copied from (exact round trip), applying
it to a backend prediction, and fitting verdict thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score

from calibration import metrics as M
from calibration.fit import (
    FitOptions,
    FixedLogits,
    fit_estimator,
    fit_full_model,
    fit_model,
    fit_scaling_model,
    full_proba,
)
from calibration.thresholds import fit_verdict_thresholds, verdicts_for
from harmony_eval.calibrated import Calibration, prediction_features
from harmony_eval.types import RegionPrediction
from harmony_eval.verdict import VerdictConfig

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def synthetic(n=90, f=6, k=4, seed=0, missing=0.1):
    """Features with a known linear signal per class, some values missing (a region not found)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    y = np.array(EMOTIONS[:k])[np.argmax(X @ rng.normal(size=(f, k)) * 1.5 + rng.gumbel(size=(n, k)), axis=1)]
    X[rng.random((n, f)) < missing] = np.nan
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c", "d"], 60).tolist()
    p = [
        t if rng.random() < 0.5 else rng.choice(["a", "b", "c", "e"]) for t in y
    ]  # "e": predicted, never true
    assert M.accuracy(y, p) == pytest.approx(accuracy_score(y, p))
    with pytest.warns(UserWarning):  # sklearn warns about the class with no true sample; we skip it too
        ref = balanced_accuracy_score(y, p)
    assert M.balanced_accuracy(y, p) == pytest.approx(ref)
    assert M.macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert M.kappa(y, p) == pytest.approx(cohen_kappa_score(y, p))


def test_ece_equals_hand_computation():
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.45, 0.55], [0.35, 0.65]])
    y = np.array([0, 1, 1, 1])  # row 1 is wrong (top class 0, truth 1), the others right
    # bins of the top probability (width 0.1, right-closed):
    #   (0.9, 1.0]: rows 0, 1: confidence 0.95, accuracy 1/2 -> |0.5 - 0.95| * 2/4 = 0.225
    #   (0.5, 0.6]: row 2: confidence 0.55, accuracy 1      -> |1 - 0.55| * 1/4  = 0.1125
    #   (0.6, 0.7]: row 3: confidence 0.65, accuracy 1      -> |1 - 0.65| * 1/4  = 0.0875
    assert M.ece(proba, y) == pytest.approx(0.225 + 0.1125 + 0.0875)
    assert M.ece(np.eye(3), np.arange(3)) == pytest.approx(0.0)  # certain and right: perfectly calibrated


def test_evaluate_has_every_figure_with_intervals():
    rng = np.random.default_rng(0)
    y = rng.choice(EMOTIONS, 80).tolist()
    proba = rng.dirichlet(np.ones(4), 80)
    pred = [EMOTIONS[i] for i in proba.argmax(1)]
    out = M.evaluate(y, pred, proba_before=proba, proba_after=proba, classes=EMOTIONS, n_boot=200)
    for k in ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "ece_before", "ece_after"):
        lo, hi = out["ci95"][k]
        assert lo <= out[k] <= hi  # the point estimate sits inside its bootstrap interval
    assert sum(map(sum, out["confusion"]["matrix"])) == 80


@pytest.mark.parametrize("method", ["sigmoid", "temperature", "none"])
@pytest.mark.parametrize("k", [2, 4])
def test_json_model_reproduces_sklearn_exactly(method, k):
    X, y = synthetic(k=k)
    opts = FitOptions(method=method)
    est, *_ = fit_estimator(X, y, opts)
    names = [f"mouth:f{i}" for i in range(X.shape[1])]
    m = fit_full_model(X, y, model="face", label="emotion", features=names, opts=opts)
    np.testing.assert_allclose(m.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-12)
    cal = Calibration(EMOTIONS, {"face": m}, {"perfect_harmony": 0.65})
    text = cal.dumps()
    back = Calibration.from_dict(json.loads(text))
    assert back.dumps() == text  # save -> load -> save is byte-identical
    np.testing.assert_array_equal(back.models["face"].predict_proba(X), m.predict_proba(X))  # exact


def test_rare_classes_are_left_out_and_recorded():
    X, y = synthetic(n=60, k=3)
    y[0] = "angry"  # one image of a class: cannot be calibrated
    named = [{f"a:{i}": v for i, v in enumerate(row)} for row in X]
    m = fit_model(named, y, model="face", label="emotion", opts=FitOptions(model="full"))
    assert "angry" not in m.classes and m.summary["dropped_classes"] == ["angry"]


def backend_readings(n=90, seed=0, informative=True):
    """Named features as a backend gives them: its own mouth reading (logp) right ~70 % of the time
    when ``informative`` (uniform otherwise), plus a measurement that carries the label, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.choice(EMOTIONS, n)
    named = []
    for t in y:
        p = np.full(4, 0.1)
        p[EMOTIONS.index(t if rng.random() < 0.7 else rng.choice(EMOTIONS))] = 0.7
        p = p if informative else np.full(4, 0.25)
        d = {f"mouth:logp_{e}": float(np.log(v)) for e, v in zip(EMOTIONS, p, strict=True)}
        d["mouth:curve"] = (
            float(EMOTIONS.index(t) + rng.normal(0, 0.3)) if not informative else float(rng.normal())
        )
        d.update({f"mouth:noise{j}": float(rng.normal()) for j in range(8)})
        named.append(d)
    return named, y


@pytest.mark.parametrize("method", ["sigmoid", "temperature", "auto"])
def test_a_scaling_calibration_without_labels_says_so(method):
    """No labelled image left (every training image a copy of a held-out one, or none labelled): a
    clear error naming the label column, not an index error from inside the temperature fit."""
    opts = FitOptions(method=method, model="scaling")
    with pytest.raises(ValueError, match="`emotion` labels: no labelled image"):
        fit_scaling_model([], [], model="face", label="emotion", opts=opts, vocabulary=EMOTIONS)
    m = fit_scaling_model([], [], model="face", label="emotion", opts=FitOptions(method="none"),
                          vocabulary=EMOTIONS)  # fmt: skip
    assert m.calibration == {"method": "none"}  # the backend's reading as is needs no label


@pytest.mark.parametrize("method", ["sigmoid", "temperature", "none"])
def test_scaling_model_reproduces_sklearn_on_the_backend_reading(method):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import KFold

    named, y = backend_readings()
    m = fit_scaling_model(named, y, model="mouth", label="mouth", opts=FitOptions(method=method))
    X = np.array([[d[f"mouth:logp_{c}"] for c in m.classes] for d in named])
    fixed = FixedLogits().fit(X, y)
    ref = fixed
    if method != "none":  # the reference: scikit-learn's own calibration, balanced class weights
        ref = CalibratedClassifierCV(FrozenEstimator(fixed), method=method, cv=KFold(2))
        counts = {c: int((y == c).sum()) for c in set(y)}
        with pytest.warns(UserWarning, match="sample_weight"):
            ref.fit(X, y, sample_weight=np.array([len(y) / (len(counts) * counts[t]) for t in y]))
    # sigmoid / none: scikit-learn's own maps copied; temperature: our 1-D fit of the same objective
    # (class-weighted log loss) with another optimiser, so equal to optimiser tolerance
    atol = 1e-6 if method == "temperature" else 1e-12
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), rtol=0, atol=atol)
    if method == "temperature":  # one temperature never changes which emotion is on top
        assert (m.predict_proba(X).argmax(1) == X.argmax(1)).all()
    # what the report prints: a fitted temperature is not "kept as is" (it said so before)
    assert m.summary["calibration"] == {
        "none": "kept as is", "temperature": "one temperature fitted on all images",
        "sigmoid": "a sigmoid per class fitted on all images",
    }[method]  # fmt: skip


def test_auto_keeps_the_backend_reading_when_the_rest_is_noise():
    named, y = backend_readings(n=40, informative=True)
    m = fit_model(named, y, model="mouth", label="mouth", opts=FitOptions())
    assert m.summary["kind"] == "scaling"  # 40 labels: learning 10 noisy features loses to the backend
    ll = m.summary["cv_log_loss"]  # every candidate's cross-validated log loss, for the record
    assert min(v for c, v in ll.items() if c.startswith("scaling")) < min(
        v for c, v in ll.items() if c.startswith("full")
    )


def test_auto_learns_from_features_when_the_backend_reading_is_blind():
    named, y = backend_readings(n=90, informative=False)
    m = fit_model(named, y, model="mouth", label="mouth", opts=FitOptions())
    assert m.summary["kind"] == "full"  # the curve measurement carries what the flat reading lacks
    X = np.array([[d.get(f, np.nan) for f in m.features] for d in named])
    acc = np.mean(np.array(m.classes)[m.predict_proba(X).argmax(1)] == y)
    assert acc > 0.6  # well above the 0.25 of the blind reading


def _prediction(mouth_curve: float, with_mouth: bool = True) -> RegionPrediction:
    probs = {r: None for r in ("eyes", "left_eye", "right_eye", "brows", "mouth", "face")}
    probs["eyes"] = dict(zip(EMOTIONS, [0.4, 0.3, 0.2, 0.1], strict=True))
    if with_mouth:
        probs["mouth"] = dict(zip(EMOTIONS, [0.25] * 4, strict=True))
    return RegionPrediction(
        probs=probs,
        features={"mouth": np.array([mouth_curve, 0.5]), "eyes": np.array([0.2, 0.1])},
        feature_names={"mouth": ["curve", "open"], "eyes": ["open", "arc"]},
        quality={"sharpness": 0.9},
    )


def test_an_emotion_too_rare_to_fit_is_still_read_where_the_backend_sees_it():
    """Labels without angry (or with one: a class needs 2+ images) fit no angry class: the calibrated mouth
    still reads angry on a face whose backend reading is angry, and a save/load keeps that (before,
    such a calibration could never say angry again; a CV fold without the class misread it)."""
    cal = _fitted_mouth_calibration()
    assert "angry" not in cal.models["mouth"].classes
    pred = _prediction(0.0)
    pred.probs["mouth"] = dict(zip(EMOTIONS, [0.05, 0.05, 0.05, 0.85], strict=True))
    for c in (cal, Calibration.from_dict(json.loads(cal.dumps()))):
        got = c.apply(pred, EMOTIONS).probs["mouth"]
        assert max(got, key=got.get) == "angry" and got["angry"] == pytest.approx(0.85)
        assert sum(got.values()) == pytest.approx(1.0)
    full = full_proba(cal.models["mouth"], [prediction_features(pred, EMOTIONS)], EMOTIONS)[0]
    np.testing.assert_allclose(full, [cal.apply(pred, EMOTIONS).probs["mouth"][e] for e in EMOTIONS])


def _fitted_mouth_calibration() -> Calibration:
    rng = np.random.default_rng(0)
    curves = rng.normal(size=80)
    preds = [_prediction(c) for c in curves]
    named = [prediction_features(p, EMOTIONS) for p in preds]
    names = ["mouth:curve", "mouth:open", "mouth:logp_happy"]
    X = np.array([[d[n] for n in names] for d in named])
    y = np.where(curves > 0.3, "happy", np.where(curves < -0.3, "sad", "neutral"))
    m = fit_full_model(X, y, model="mouth", label="mouth", features=names, opts=FitOptions())
    return Calibration(EMOTIONS, {"mouth": m}, backend="test")


def test_apply_replaces_modelled_regions_only():
    cal = _fitted_mouth_calibration()
    up, down = cal.apply(_prediction(2.0), EMOTIONS), cal.apply(_prediction(-2.0), EMOTIONS)
    assert up.probs["mouth"]["happy"] > 0.5 > down.probs["mouth"]["happy"]  # curve up reads happy
    assert down.probs["mouth"]["sad"] > down.probs["mouth"]["happy"]  # curve down reads sad
    assert sum(up.probs["mouth"].values()) == pytest.approx(1.0)
    # never labelled: the model has no class for it, so the backend's reading of it (uniform, 0.25)
    # stands, and the model's classes share the rest in the model's own proportions
    assert "angry" not in cal.models["mouth"].classes
    assert up.probs["mouth"]["angry"] == pytest.approx(0.25)
    m = cal.models["mouth"]
    own = m.predict_proba(m.vectorize(prediction_features(_prediction(2.0), EMOTIONS)))
    got = [up.probs["mouth"][c] for c in m.classes]
    np.testing.assert_allclose(got, 0.75 * own, rtol=1e-12)
    assert up.probs["eyes"] == _prediction(2.0).probs["eyes"]  # no eyes model: backend reading kept
    assert (
        cal.apply(_prediction(2.0, with_mouth=False), EMOTIONS).probs["mouth"] is None
    )  # unseen stays unseen


def test_apply_refuses_mismatched_vocabulary_or_features():
    cal = _fitted_mouth_calibration()
    with pytest.raises(ValueError, match="--emotions neutral,happy,sad,angry"):
        cal.apply(_prediction(1.0), ["neutral", "happy", "sad"])
    other = _prediction(1.0)
    other.feature_names["mouth"] = ["width", "height"]  # another backend's measurements
    with pytest.raises(ValueError, match="refit"):
        cal.apply(other, EMOTIONS)


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a harmony_eval calibration"):
        Calibration.load(p)
    d = _fitted_mouth_calibration().to_dict()
    d["verdict_thresholds"] = {"perfect_harmoni": 0.5}
    p.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ValueError, match="perfect_harmoni"):
        Calibration.load(p)


def test_verdict_thresholds_recover_the_rule_that_made_the_labels():
    rng = np.random.default_rng(0)
    h = rng.uniform(0, 1, 120)
    rows = [
        {
            "status": "ok",
            "harmony": float(x),
            "scores": {"eyes_mouth": 0.9, "brows_tension": 0.9, "coherence": 0.9},
            "flags": [],
        }
        for x in h
    ]
    truth = verdicts_for((np.zeros(120, bool), np.ones(120, bool), h), 0.8, 0.3)  # humans' lines: 0.8 / 0.3
    config = VerdictConfig.load()
    t = fit_verdict_thresholds(rows, list(truth), config)
    got = verdicts_for(
        (np.zeros(120, bool), np.ones(120, bool), h), t["perfect_harmony"], t["broken_harmony"]
    )
    assert (got == truth).all()  # the fitted lines reproduce every human verdict
    assert abs(t["perfect_harmony"] - 0.8) <= 0.05 and abs(t["broken_harmony"] - 0.3) <= 0.05


def test_a_feature_that_barely_varied_in_training_does_not_decide_a_new_face():
    """A share that was ~1.0 on every training face (a region always fully visible) and is 0.95 on
    a new face must not outweigh the features that carry the label: its scale has a floor
    (``models.MIN_SPREAD`` of its typical size), so the value is a few, not hundreds of, standard
    deviations off."""
    from calibration.models import MIN_SPREAD

    rng = np.random.default_rng(0)
    n = 80
    y = np.array(EMOTIONS)[rng.integers(0, 4, n)]
    signal = np.eye(4)[[EMOTIONS.index(t) for t in y]] + rng.normal(0, 0.3, (n, 4))
    visible = 1.0 - np.abs(rng.normal(0, 2e-4, (n, 1)))  # 0.9996-1.0: never less than fully drawn
    X = np.hstack([signal, visible])
    names = [f"mouth:s{i}" for i in range(4)] + ["mouth:visible"]
    m = fit_full_model(X, y, model="face", label="emotion", features=names, opts=FitOptions(method="none"))
    assert m.scale[-1] == pytest.approx(MIN_SPREAD * np.abs(visible).mean())
    new = np.vstack([np.append(np.eye(4)[k], 0.95) for k in range(4)])  # clear signal, a less visible mouth
    assert [m.classes[i] for i in m.predict_proba(new).argmax(axis=1)] == EMOTIONS
    # a column that varies as much as its size keeps its own spread
    assert m.scale[0] == pytest.approx(signal[:, 0].std())


def test_verdict_parts_of_no_row_are_empty_not_a_type_error():
    """A fold with no verdict-labelled image: no rows give empty flag arrays (they were float, and
    ``forced | (h < broken)`` raised a TypeError from inside calibrate)."""
    from calibration.thresholds import _verdict_parts

    parts = _verdict_parts([], VerdictConfig.load())
    assert [p.dtype.kind for p in parts] == ["b", "b", "f"]
    assert verdicts_for(parts, 0.7, 0.4).tolist() == []
