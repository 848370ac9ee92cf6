"""Learning curves of ``benchmarks.validity --curves``: labels taken in random order vs in the order
``calibrate --suggest`` would ask for them, on the same fixed test splits, per source and pooled.

    curves = label_curves(items, scorer)        # {source: {"random": curve, "suggested": curve}}

The suggested order is what a user gets who labels in batches and runs ``--suggest`` again after each
(``suggested_order``): the first batch by diversity alone (nothing is labelled yet), each later batch
from a reader fitted on the labels given so far. Only labels of images already suggested are read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.validity_data import FOUR


def suggested_order(ds, pool: list[int], sizes: list[int], seed: int = 0) -> list[int]:
    """``pool`` (dataset indices) in ``--suggest`` order, batch by batch up to each of ``sizes``: the
    batch up to ``sizes[k]`` is suggested knowing the labels of the ``sizes[k-1]`` images before it."""
    from calibration.suggest import suggest_order

    rows = [ds.items[i].row for i in pool]
    named = [ds.named[i] for i in pool]
    picked: list[int] = []  # positions in pool
    for n in sorted(set(sizes)):
        if n <= len(picked):
            continue
        labels = [ds.label(pool[j], "emotion") for j in picked]
        more = suggest_order(
            rows, named, n - len(picked), labelled=picked, labels=labels, emotions=ds.emotions, seed=seed
        )
        if not more:
            break
        picked += more
    rest = [j for j in range(len(pool)) if j not in set(picked)]  # faceless images, never suggested
    return [pool[j] for j in picked + rest]


def label_curves(
    items: list, scorer, min_labels: int = 16, repeats: int = 5, seeds: int = 10, orders: int = 2
) -> dict[str, dict]:
    """Within-source learning curves of the learned face reader (anatomy + crop descriptor features,
    ``--model full``: ``auto`` keeps the backend's reading until a learned one beats it, which
    flattens the curve) for every source with ``min_labels`` labelled faces and all sources pooled:
    ``repeats`` random orders and ``orders`` suggested ones (k-means seeds) on each of ``seeds``
    fixed test splits (30 %); per split and size the mean, then means over splits."""
    from calibration.curve import default_sizes, learning_curve, split
    from calibration.evaluate import Dataset
    from calibration.fit import FitOptions
    from calibration.labels import Labels

    out: dict[str, dict] = {}
    groups = {
        s: [it for it in items if it.case.source == s] for s in sorted({it.case.source for it in items})
    }
    if len(groups) >= 3:
        groups["pooled"] = items
    opts = FitOptions(model="full", method="temperature")
    for name, its in groups.items():
        its = [it for it in its if it.case.kind == "original" and it.case.label]
        if len(its) < min_labels:
            continue
        labels = Labels([{"file": it.case.path, "emotion": it.case.label} for it in its], ["emotion"], name)
        ds = Dataset(labels, [it.scored for it in its], scorer, list(FOUR))
        runs: dict[str, list[dict]] = {"random": [], "suggested": []}
        for seed in range(seeds):
            pool, _ = split(ds, 0.3, seed)
            sizes = default_sizes(len(pool), len(FOUR))
            runs["random"].append(learning_curve(ds, opts, sizes=sizes, repeats=repeats, seed=seed))
            sug = [
                learning_curve(ds, opts, sizes=sizes, order=suggested_order(ds, pool, sizes, o), seed=seed)
                for o in range(orders)
            ]
            runs["suggested"].append(_mean_curve(sug))
        out[name] = {how: _mean_curve(cs) for how, cs in runs.items()}
        out[name]["suggested_minus_random"] = _paired(runs["suggested"], runs["random"])
    return out


def _paired(a: list[dict], b: list[dict]) -> dict[str, list]:
    """Per size, the mean over splits of ``a - b`` (same split, same test faces) and its standard
    error: the splits differ far more than the orders on one split (N=8 on 6-33 test faces: sd
    0.1-0.2), so only the paired difference can tell an order that wins from one that was lucky."""
    sizes = sorted(set.intersection(*(set(c["sizes"]) for c in a + b)))
    d = np.array([[x["mean"][x["sizes"].index(n)] - y["mean"][y["sizes"].index(n)] for n in sizes]
                  for x, y in zip(a, b, strict=True)])  # fmt: skip
    se = d.std(axis=0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.zeros(len(sizes))
    return {
        "sizes": sizes,
        "mean": [round(float(v), 4) for v in d.mean(axis=0)],
        "se": [round(float(v), 4) for v in se],
    }


def _mean_curve(curves: list[dict]) -> dict[str, Any]:
    """Curves of several splits or orders on the sizes they share: mean of means, min / max of the
    intervals, the spread (sd) of the means across them."""
    sizes = sorted(set.intersection(*(set(c["sizes"]) for c in curves)))
    at = [{n: k for k, n in enumerate(c["sizes"])} for c in curves]
    means = np.array([[c["mean"][a[n]] for n in sizes] for c, a in zip(curves, at, strict=True)])
    return {
        "sizes": sizes,
        "mean": [round(float(v), 4) for v in means.mean(axis=0)],
        "sd": [round(float(v), 4) for v in means.std(axis=0)],
        "ci95": [
            [
                min(c["ci95"][a[n]][0] for c, a in zip(curves, at, strict=True)),
                max(c["ci95"][a[n]][1] for c, a in zip(curves, at, strict=True)),
            ]
            for n in sizes
        ],  # fmt: skip
        "n_test": curves[0]["n_test"],
        "repeats": sum(c["repeats"] for c in curves),
        "splits": len(curves),
    }
