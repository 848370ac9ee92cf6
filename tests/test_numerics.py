"""The shared numeric helpers against independent references (scipy, scikit-learn), and that the
codebase defines each of them once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from sklearn.metrics import balanced_accuracy_score

from harmony_eval.numerics import balanced_accuracy, softmax

ROOT = Path(__file__).resolve().parents[1]


def test_softmax_matches_scipy_on_any_axis_and_does_not_overflow():
    z = np.random.default_rng(0).normal(0, 5, (7, 4))
    for axis in (0, 1, -1):
        np.testing.assert_allclose(softmax(z, axis=axis), scipy_softmax(z, axis=axis), rtol=1e-12)
    assert softmax(np.array([1e4, 1e4 - np.log(3)])).round(6).tolist() == [0.75, 0.25]  # exp(1e4) overflows


def test_balanced_accuracy_matches_sklearn():
    rng = np.random.default_rng(1)
    labels = np.array(["neutral", "happy", "sad", "angry"])
    for _ in range(20):
        y, p = labels[rng.integers(0, 4, 50)], labels[rng.integers(0, 3, 50)]  # "angry" never predicted
        assert balanced_accuracy(list(y), list(p)) == pytest.approx(balanced_accuracy_score(y, p))
    with pytest.raises(ValueError, match="length"):
        balanced_accuracy(["a"], [])
    assert np.isnan(balanced_accuracy([], []))


def test_each_helper_is_defined_once():
    defs = re.compile(r"^\s*def (_?softmax|balanced_accuracy|_?image_key)\(", re.M)
    found = {}
    for folder in ("harmony_eval", "benchmarks", "calibration", "training", "generation"):
        for f in (ROOT / folder).rglob("*.py"):
            for name in defs.findall(f.read_text(encoding="utf-8")):
                found.setdefault(name.lstrip("_"), []).append(f.relative_to(ROOT).as_posix())
    assert found == {
        "softmax": ["harmony_eval/numerics.py"],
        "balanced_accuracy": ["harmony_eval/numerics.py"],
        "image_key": ["harmony_eval/imageio.py"],
    }
