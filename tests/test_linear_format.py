"""One logistic-regression format (harmony_eval.linear) for the anatomy mapping and the calibration files:
round trips, one class from both writers, validator messages, the version-1 anatomy layout, and
class subsets."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from harmony_eval.backends.anatomy import mapping, upgrade
from harmony_eval.calibrated import Calibration
from harmony_eval.linear import LinearModel

FOUR = ["neutral", "happy", "sad", "angry"]


def toy_v1() -> dict:
    """A version-1 anatomy file written out by hand (two regions, three emotions)."""
    return {
        "version": 1,
        "source": "toy priors",
        "emotions": ["neutral", "happy", "sad"],
        "feature_names": {"mouth": ["open", "curve"], "eyes": ["tears"]},
        "mean": {"mouth": [0.1, 0.0], "eyes": [0.01]},
        "std": {"mouth": [0.05, 0.08], "eyes": [0.03]},
        "coef": {"mouth": [[-1.0, 0.0], [0.5, 1.5], [0.0, -1.3]], "eyes": [[0.0], [-0.2], [1.2]]},
        "intercept": {"mouth": [0.5, 0.0, -0.1], "eyes": [0.3, 0.0, -0.2]},
        "notes": {"mouth": {"curve": "corners up = smile"}},
    }


def test_shipped_anatomy_file_is_in_canonical_form(tmp_path):
    shipped = mapping.default_params_path().read_bytes()
    params = mapping.load_params()
    mapping.save_params(params, tmp_path / "a.json")
    assert (tmp_path / "a.json").read_bytes() == shipped  # load -> save gives the file back, byte for byte
    params.models["mouth"].coef[1][2] = 0.1 + 0.2  # a float whose repr is long
    mapping.save_params(params, tmp_path / "b.json")
    text = (tmp_path / "b.json").read_text()
    mapping.save_params(mapping.load_params(tmp_path / "b.json"), tmp_path / "c.json")
    assert (tmp_path / "c.json").read_text() == text  # save -> load -> save is byte-identical
    assert "0.30000000000000004" in text


def test_anatomy_file_and_fitted_calibration_hold_the_same_class(tmp_path):
    from calibration.fit import FitOptions, fit_model

    rng = np.random.default_rng(0)
    y = rng.choice(FOUR, 60)
    named = [{"mouth:curve": (FOUR.index(t) + rng.normal(0, 0.3)), "mouth:open": rng.normal()} for t in y]
    cal_model = fit_model(
        named, y, model="mouth", label="mouth", opts=FitOptions(model="full", method="none")
    )
    cal = Calibration(FOUR, {"mouth": cal_model})
    path = cal.save(tmp_path / "calibration.json")
    loaded = Calibration.load(path)
    anatomy = mapping.load_params()
    assert type(loaded.models["mouth"]) is LinearModel and type(anatomy.models["mouth"]) is LinearModel
    # one JSON form: the anatomy model's object reads back through the calibration loader and applies
    d = json.loads(path.read_text())
    d["models"]["mouth"] = anatomy.models["mouth"].to_dict()
    mixed = Calibration.from_dict(d, "mixed.json")
    x = np.array(anatomy.models["mouth"].mean) + 0.5
    np.testing.assert_array_equal(
        mixed.models["mouth"].predict_proba(x[None, :])[0],
        mapping.region_probs(anatomy, "mouth", x, anatomy.models["mouth"].classes),
    )


def test_fit_params_writes_the_format_and_matches_sklearn(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    labels = list(rng.choice(["happy", "sad", "angry"], 90))
    x = np.array([[{"happy": 2.0, "sad": -2.0, "angry": 0.0}[t], rng.normal()] for t in labels])
    x += 0.8 * rng.standard_normal(x.shape)
    params = mapping.fit_params({"mouth": x}, labels, {"mouth": ["a", "b"]}, ["happy", "sad", "angry"])
    mapping.save_params(params, tmp_path / "fitted.json")
    back = mapping.load_params(tmp_path / "fitted.json")
    assert back == params and back.models["mouth"].label == "emotion"
    z = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(z, labels)
    order = list(ref.classes_)  # sklearn sorts: angry, happy, sad
    got = np.array([mapping.region_probs(back, "mouth", row, order) for row in x])
    np.testing.assert_allclose(got, ref.predict_proba(z), atol=1e-12)


def write(tmp_path, d, name="p.json"):
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m.update(coef=m["coef"][:-1]),
            r"models.mouth.coef has shape \(4, 8\), expected \(5, 8\) \(5 classes x 8 features\)",
        ),
        (
            lambda m: m.update(scale=m["scale"] + [1.0]),
            r"models.mouth.scale has shape \(9,\), expected \(8,\)",
        ),
        (lambda m: m.pop("intercept"), r"models.mouth: missing key\(s\) \['intercept'\]"),
        (lambda m: m.update(intercep=[0.0]), r"models.mouth: unknown key\(s\) \['intercep'\]"),
        (lambda m: m.update(calibration={"method": "platt"}), r"models.mouth.calibration.method is 'platt'"),
        (lambda m: m["scale"].__setitem__(0, 0.0), r"models.mouth.scale: a value <= 0"),
        (lambda m: m["coef"][2].pop(), r"models.mouth.coef not a \(rectangular\) list"),
        (
            lambda m: m.update(classes=["happy", "happy", "sad", "angry", "neutral"]),
            r"\['happy'\] listed twice",
        ),
    ],
)
def test_validator_names_file_key_and_expected_shape(tmp_path, edit, message):
    d = mapping.load_params().to_dict()
    edit(d["models"]["mouth"])
    p = write(tmp_path, d, "bad_anatomy.json")
    with pytest.raises(ValueError, match=message) as e:
        mapping.load_params(p)
    assert str(e.value).startswith(f"{p}: ") and "fit_params" in str(e.value)  # the file and the fix


def test_calibration_file_errors_use_the_same_validator(tmp_path):
    m = mapping.load_params().models["eyes"].to_dict()
    m["mean"] = m["mean"][:3]
    p = write(tmp_path, {"format": "harmony_eval.calibration", "version": 1, "emotions": m["classes"],
                         "models": {"eyes": m}}, "calibration.json")  # fmt: skip
    with pytest.raises(
        ValueError, match=r"calibration.json: models.eyes.mean has shape \(3,\), expected \(11,\)"
    ):
        Calibration.load(p)
    with pytest.raises(ValueError, match="not a harmony_eval calibration"):
        Calibration.load(mapping.default_params_path())  # and the two containers are not confused
    with pytest.raises(ValueError, match="not an anatomy parameter file"):
        mapping.load_params(p)


def test_json_without_finite_numbers_is_refused(tmp_path):
    text = mapping.default_params_path().read_text().replace('"mean": [\n    1.0', '"mean": [\n    NaN', 1)
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(ValueError, match="nan.json: holds NaN"):
        mapping.load_params(tmp_path / "nan.json")


def test_version_1_file_loads_converted_with_one_line_warning(tmp_path):
    old = toy_v1()
    p = write(tmp_path, old, "old.json")
    with pytest.warns(UserWarning, match=r"old.json: anatomy parameters in the version-1 layout") as rec:
        params = mapping.load_params(p)
    msg = str(rec[0].message)
    assert "\n" not in msg and f"python -m harmony_eval.backends.anatomy.upgrade {p}" in msg
    for r in ("mouth", "eyes"):  # every number kept, std as scale
        m = params.models[r]
        assert (m.classes, m.features) == (old["emotions"], old["feature_names"][r])
        assert (m.mean, m.scale, m.coef, m.intercept) == (
            old["mean"][r],
            old["std"][r],
            old["coef"][r],
            old["intercept"][r],
        )
    assert params.models["mouth"].notes == old["notes"]["mouth"] and params.source == "toy priors"
    # the probabilities are the version-1 formula's: softmax(W (x - mean) / std + b)
    x = np.array([0.2, 0.1])
    logit = np.array(old["coef"]["mouth"]) @ ((x - old["mean"]["mouth"]) / np.array(old["std"]["mouth"]))
    logit += old["intercept"]["mouth"]
    np.testing.assert_allclose(
        mapping.region_probs(params, "mouth", x, old["emotions"]), np.exp(logit) / np.exp(logit).sum()
    )

    assert upgrade.main([str(p), "--out", str(tmp_path / "new.json")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file loads without a warning
        assert mapping.load_params(tmp_path / "new.json") == params
    assert json.loads((tmp_path / "new.json").read_text())["version"] == mapping.PARAMS_VERSION


def test_broken_version_1_file_and_upgrade_errors(tmp_path, capsys):
    old = toy_v1()
    old["std"]["mouth"] = [0.05]
    p = write(tmp_path, old, "old.json")
    with pytest.raises(
        ValueError,
        match=r"old.json \(version 1, std as scale\): models.mouth.scale has shape \(1,\), expected \(2,\)",
    ):
        mapping.load_params(p)
    assert upgrade.main([str(p)]) == 2
    assert "old.json" in capsys.readouterr().err
    assert upgrade.main([str(tmp_path / "missing.json")]) == 2


def test_subset_vocabulary_takes_the_matching_rows_and_renormalises():
    params = mapping.load_params()
    m = params.models["brows"]
    x = np.array(m.mean) + 0.6 * np.array(m.scale) * np.array([1, -1, 2, 0.5])
    # independent computation from the file's numbers
    logits = np.array(m.coef) @ ((x - np.array(m.mean)) / np.array(m.scale)) + np.array(m.intercept)
    for vocab in (FOUR, ["sad", "happy"], ["surprised", "angry", "neutral", "happy", "sad"]):
        rows = [m.classes.index(e) for e in vocab]
        want = np.exp(logits[rows]) / np.exp(logits[rows]).sum()
        np.testing.assert_allclose(mapping.region_probs(params, "brows", x, vocab), want, rtol=1e-12)
    np.testing.assert_allclose(
        mapping.region_probs(params, "brows", x, FOUR, confidence=0.0), 0.25
    )  # no opinion
    with pytest.raises(ValueError, match=r"\['fear'\] are not in the anatomy parameters"):
        mapping.region_probs(params, "brows", x, ["happy", "fear"])


def test_sigmoid_model_subset_renormalises_its_columns():
    m = LinearModel(region="face", classes=["a", "b", "c"], features=["f"], mean=[0.0], scale=[1.0],
                    coef=[[1.0], [-1.0], [0.5]], intercept=[0.0, 0.2, -0.1],
                    calibration={"method": "sigmoid", "a": [-1.0, -2.0, -1.5], "b": [0.1, 0.0, -0.2]})  # fmt: skip
    X = np.array([[0.3], [-1.2]])
    full = m.predict_proba(X)
    np.testing.assert_allclose(full.sum(1), 1.0)
    sub = m.predict_proba(X, ["c", "a"])
    np.testing.assert_allclose(sub, full[:, [2, 0]] / full[:, [2, 0]].sum(1, keepdims=True), rtol=1e-12)
    with pytest.raises(ValueError, match="softmax model"):
        m.predict_proba(X, confidence=0.5)
