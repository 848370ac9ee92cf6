"""Learning curve: how the calibrated face reading improves with the number of labels.

    curve = learning_curve(ds, opts, repeats=5)
    curve["sizes"], curve["mean"], curve["ci95"]      # balanced accuracy vs number of labels

One stratified test split is fixed (``test_share`` of the face-labelled images); the rest is the pool.
For each repeat the pool is put in an order (seeded random, or ``order`` given: the ``--suggest``
ranking) and the face reader is fitted on growing prefixes of it (each prefix holds the previous
ones), then judged on the fixed test split. ``N = 0`` is the backend's own reading. The interval
is the 2.5-97.5 percentile over repeats of the balanced accuracy, so it shows how much the choice
of which images were labelled matters; a user reads from it how many labels their style needs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .evaluate import Dataset
from .fit import FitOptions, fit_model, full_proba
from .metrics import balanced_accuracy
from .models import group_holdout, has_copies


def default_sizes(n_pool: int, n_classes: int) -> list[int]:
    """Label counts to try: from two per class up to the whole pool, about doubling."""
    sizes, n = [], max(2 * n_classes, 8)
    while n < n_pool:
        sizes.append(n)
        n *= 2
    return [*sizes, n_pool]


def split(ds: Dataset, test_share: float, seed: int) -> tuple[list[int], list[int]]:
    """``(pool, test)`` indices of the face-labelled images, the test split stratified and fixed;
    copies of one drawing (``Dataset.groups``) are all on one side."""
    from sklearn.model_selection import train_test_split

    idx = [i for i in range(len(ds.items)) if ds.usable(i, "emotion")]
    y = [ds.label(i, "emotion") for i in idx]
    groups = ds.groups_of(idx)
    if has_copies(groups):
        tr, te = group_holdout(y, groups, test_share, seed)  # type: ignore[arg-type]
        return sorted(idx[j] for j in tr), sorted(idx[j] for j in te)
    counts = {c: y.count(c) for c in set(y)}
    strat = y if min(counts.values()) >= 2 else None
    pool, test = train_test_split(idx, test_size=test_share, random_state=seed, stratify=strat)
    return sorted(pool), sorted(test)


def _interleaved(ds: Dataset, order: Sequence[int]) -> list[int]:
    """``order`` with each class's first image moved to the front (a reader needs two classes)."""
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(ds.label(i, "emotion"), i)
    head = sorted(first.values(), key=list(order).index)
    return head + [i for i in order if i not in set(head)]


def face_accuracy(ds: Dataset, train: Sequence[int], test: Sequence[int], opts: FitOptions) -> float:
    """Balanced accuracy on ``test`` of the face reader fitted on ``train`` (the backend's reading when
    ``train`` cannot fit one: empty, or fewer than two classes with two images). A test image without
    a face reads ``none``: wrong."""
    y = [ds.label(i, "emotion") for i in test]
    model = None
    if train:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model = fit_model(
                    [ds.named[i] for i in train], [ds.label(i, "emotion") for i in train],
                    model="face", label="emotion", opts=opts, vocabulary=ds.emotions,
                    groups=ds.groups_of(train),
                )  # fmt: skip
            except ValueError:
                model = None
    found = [i for i in test if ds.items[i].ok]
    if model is None:
        read = {i: ds.items[i].row.get("emotion") or "none" for i in found}
    else:
        p = full_proba(model, [ds.named[i] for i in found], ds.emotions) if found else np.zeros((0, 1))
        read = {i: ds.emotions[k] for i, k in zip(found, p.argmax(axis=1), strict=True)}
    return balanced_accuracy(y, [read.get(i, "none") for i in test])


def learning_curve(
    ds: Dataset,
    opts: FitOptions,
    *,
    sizes: Sequence[int] | None = None,
    repeats: int = 5,
    test_share: float = 0.3,
    seed: int = 0,
    order: Sequence[int] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Balanced accuracy of the face reading vs labels used (see the module docstring).
    ``order``: image indices in the order they would be labelled (then one repeat: it is fixed)."""
    pool, test = split(ds, test_share, seed)
    if len(pool) < 2 or len(test) < 2:
        raise ValueError(
            f"learning curve: {len(pool) + len(test)} face-labelled images; label at least 4 to draw one"
        )
    sizes = sorted({min(int(n), len(pool)) for n in (sizes or default_sizes(len(pool), len(ds.emotions)))})
    orders = []
    if order is not None:
        orders = [_interleaved(ds, [i for i in order if i in set(pool)])]
    else:
        rng = np.random.default_rng(seed)
        orders = [_interleaved(ds, [pool[j] for j in rng.permutation(len(pool))]) for _ in range(repeats)]
    acc = np.zeros((len(orders), len(sizes)))
    steps = [(r, k) for r in range(len(orders)) for k in range(len(sizes))]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="learning curve", unit="fit")
    for r, k in steps:
        acc[r, k] = face_accuracy(ds, orders[r][: sizes[k]], test, opts)
    base = face_accuracy(ds, [], test, opts)
    return {
        "sizes": [0, *sizes],
        "mean": [round(base, 4), *[round(float(v), 4) for v in acc.mean(axis=0)]],
        "ci95": [[round(base, 4)] * 2]
        + [[round(float(np.percentile(a, 2.5)), 4), round(float(np.percentile(a, 97.5)), 4)] for a in acc.T],
        "n_test": len(test),
        "repeats": len(orders),
        "order": "given" if order is not None else "random",
    }


def plot_curve(curves: dict[str, dict[str, Any]], path, chance: float | None = None) -> None:
    """``{label: learning_curve(...)}`` on one axis, intervals shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, ax = plt.subplots(figsize=(6, 4))
    for label, c in curves.items():
        x, m = np.array(c["sizes"]), np.array(c["mean"])
        lo, hi = np.array(c["ci95"]).T
        ax.plot(x, m, marker="o", label=label)
        ax.fill_between(x, lo, hi, alpha=0.2)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
    ax.set_xlabel("labelled images used to fit")
    ax.set_ylabel("balanced accuracy (fixed test split)")
    ax.set_ylim(0, 1)
    ax.set_title("Learning curve of the face reading")
    ax.legend(loc="lower right", fontsize=8)
    f.tight_layout()
    f.savefig(path, dpi=100)
    plt.close(f)
