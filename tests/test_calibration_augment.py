"""Mirror augmentation and the feature set of the learned readers (issue 7 s.2): a mirrored face's
descriptors are those of the mirrored image, mirrored rows only ever train, and the cross-validated
choice between anatomy-only and all features follows where the signal is."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.augment import mirror_name, mirrored_matrix
from calibration.fit import FitOptions, cv_losses, fit_estimator, fit_model, full_proba, matrix
from calibration.metrics import balanced_accuracy
from harmony_eval.descriptors import SPECS, descriptor_length, mirror_order, region_descriptors

EMOTIONS = ["neutral", "happy", "sad", "angry"]
BOXES = {"eyes": (40, 50, 200, 100), "brows": (45, 20, 195, 50), "mouth": (90, 130, 150, 160), "face": (20, 10, 220, 190)}  # fmt: skip


@pytest.fixture(scope="module")
def image():
    """Smooth random texture: no exactly horizontal gradient inside a crop (see ``mirror_order``)."""
    import cv2

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((200, 240, 3)) * 255).astype(np.float32), (0, 0), 3)
    return np.clip((img - img.mean()) * 8 + 128, 0, 255).astype(np.uint8)


def _mirrored(image):
    w = image.shape[1]
    return image[:, ::-1].copy(), {k: (w - b[2], b[1], w - b[0], b[3]) for k, b in BOXES.items()}


@pytest.mark.parametrize("kind", ["lbp", "grey"])
def test_permuted_descriptor_is_the_mirrored_images(image, kind):
    a = region_descriptors(image, BOXES, kind)
    b = region_descriptors(*_mirrored(image), kind)
    for g, spec in SPECS.items():
        assert not np.allclose(a[g], b[g])  # the crops are not symmetric: mirroring changes them
        np.testing.assert_allclose(a[g][mirror_order(spec, kind)], b[g], atol=1e-6)


def test_permuted_hog_is_the_mirrored_images_but_for_the_horizontal_bins(image):
    # scikit-image bins an exactly horizontal gradient (every pixel of a crop's first and last row,
    # where it sets the vertical gradient to 0) as 0 degrees, mirrored or not, so bins 0 and n-1
    # trade mass; the other bins agree up to the block renormalisation that trade causes
    a = region_descriptors(image, BOXES)
    b = region_descriptors(*_mirrored(image))
    for g, spec in SPECS.items():
        o = spec.orientations
        d = np.abs(a[g][mirror_order(spec)] - b[g]).reshape(-1, o)
        assert d[:, 1:-1].max() < 0.02, g
        assert np.abs(a[g] - b[g]).reshape(-1, o)[:, 1:-1].max() > 0.05, g  # unpermuted: far off


def test_mirrored_features_swap_sides_and_permute_descriptors(image):
    lbp = region_descriptors(image, BOXES, "lbp")
    lbp_m = region_descriptors(*_mirrored(image), "lbp")
    named = {"left_eye:logp_happy": -0.1, "right_eye:logp_happy": -2.0, "mouth:curve": 0.3}
    named.update({f"{g}:lbp{i}": float(v) for g, vec in lbp.items() for i, v in enumerate(vec)})
    names = list(named)
    Xm = mirrored_matrix([named], names)[0]
    got = dict(zip(names, Xm, strict=True))
    assert got["left_eye:logp_happy"] == -2.0 and got["right_eye:logp_happy"] == -0.1
    assert got["mouth:curve"] == 0.3  # measured from inner / outer ends: a mirror keeps it
    for g, vec in lbp_m.items():
        np.testing.assert_allclose([got[f"{g}:lbp{i}"] for i in range(len(vec))], vec, atol=1e-6)
    assert mirror_name("quality:sharpness") == "quality:sharpness"


def _named(n, seed, signal="anatomy"):
    """Faces whose emotion shows in the ``signal`` group; the other group is noise. The descriptor
    group is left-right symmetric in its signal (column 0 and its mirror partner carry it alike)."""
    rng = np.random.default_rng(seed)
    n_desc = descriptor_length(SPECS["mouth_desc"])
    y = np.array(EMOTIONS)[np.arange(n) % 4]
    onehot = np.eye(4)[np.arange(n) % 4]
    anat = rng.normal(size=(n, 4)) + (2.0 * onehot if signal == "anatomy" else 0)
    desc = rng.normal(size=(n, n_desc))
    if signal == "descriptors":
        desc[:, :4] += 2.0 * onehot
        desc[:, mirror_order(SPECS["mouth_desc"])[:4]] += 2.0 * onehot
    rows = []
    for i in range(n):
        d = {f"mouth:a{j}": float(anat[i, j]) for j in range(4)}
        d.update({f"mouth_desc:hog{j}": float(desc[i, j]) for j in range(n_desc)})
        rows.append(d)
    return rows, y


def test_mirroring_doubles_training_rows_not_judged_rows():
    named, y = _named(24, 0)
    names = list(named[0])
    X, Xm = matrix(named, names), mirrored_matrix(named, names)
    assert not np.allclose(X, Xm)  # the descriptor columns move
    est, pipe, _, how = fit_estimator(X, y, FitOptions(method="temperature"), X_mirror=Xm)
    scaler = pipe.steps[1][1]
    np.testing.assert_allclose(scaler.mean_, np.vstack([X, Xm]).mean(axis=0))  # fitted on 2N rows
    assert "24 images and their 24 mirror images" in how["calibration"]
    opts = FitOptions(model="full", method="temperature", mirror=True, features="all")
    losses, w = cv_losses("full", named, y, model="mouth", label="mouth", opts=opts, k=3)
    assert losses.shape == (24,) and w.shape == (24,)  # judged on the images as they are, once each


@pytest.mark.parametrize("signal", ["anatomy", "descriptors"])
def test_auto_feature_set_follows_the_signal(signal):
    named, y = _named(60, 1, signal)
    m = fit_model(named, y, model="mouth", label="mouth", opts=FitOptions(model="full", method="temperature"))
    assert m.summary["features"] == ("anatomy" if signal == "anatomy" else "all")
    assert any(f.startswith("mouth_desc:") for f in m.features) == (signal == "descriptors")


@pytest.mark.parametrize("mirror", [False, True])
def test_more_labels_do_not_make_the_reader_worse_on_a_fixed_split(mirror):
    named, y = _named(120, 2, "descriptors")
    test = list(range(80, 120))
    opts = FitOptions(model="full", method="temperature", mirror=mirror)
    acc = []
    for n in (12, 40, 80):
        m = fit_model(named[:n], y[:n], model="mouth", label="mouth", opts=opts, vocabulary=EMOTIONS)
        p = full_proba(m, [named[i] for i in test], EMOTIONS)
        acc.append(balanced_accuracy(list(y[test]), [EMOTIONS[k] for k in p.argmax(axis=1)]))
    assert acc[0] <= acc[1] + 0.05 and acc[1] <= acc[2] + 0.05, acc  # one split's noise: 2 of 40 faces
    assert acc[2] > 0.6  # and the signal is learned
