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

#: fitting options ``option_curves`` compares by default: before / after the cross-validated choice of
#: feature set (``calibration.fit._with_features``), mirror augmentation (``calibration.augment``)
VARIANTS = {
    "anatomy+desc": {"features": "all"},
    "features auto": {"features": "auto"},
    "anatomy+desc mirrored": {"features": "all", "mirror": True},
}


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
    items: list, scorer, min_labels: int = 16, repeats: int = 5, seeds: int = 10, orders: int = 2,
    progress: bool = False,
) -> dict[str, dict]:  # fmt: skip
    """Within-source learning curves of the learned face reader (anatomy + crop descriptor features,
    ``--model full``: ``auto`` keeps the backend's reading until a learned one beats it, which
    flattens the curve) for every source with ``min_labels`` labelled faces and all sources pooled:
    ``repeats`` random orders and ``orders`` suggested ones (k-means seeds) on each of ``seeds``
    fixed test splits (30 %); per split and size the mean, then means over splits. ``progress``: a
    bar over the splits (hundreds of fits a split on a few hundred labels)."""
    from tqdm.auto import tqdm

    from calibration.curve import default_sizes, learning_curve, split
    from calibration.fit import FitOptions

    out: dict[str, dict] = {}
    opts = FitOptions(model="full", method="temperature")
    datasets = _source_datasets(items, scorer, min_labels, faceless=True)
    bar = tqdm(total=seeds * len(datasets), desc="learning curves", unit="split", disable=not progress)
    for name, ds in datasets.items():
        runs: dict[str, list[dict]] = {"random": [], "suggested": []}
        bar.set_postfix_str(name)
        for seed in range(seeds):
            pool, _ = split(ds, 0.3, seed)
            sizes = default_sizes(len(pool), len(FOUR))
            runs["random"].append(learning_curve(ds, opts, sizes=sizes, repeats=repeats, seed=seed))
            sug = [
                learning_curve(ds, opts, sizes=sizes, order=suggested_order(ds, pool, sizes, o), seed=seed)
                for o in range(orders)
            ]
            runs["suggested"].append(_mean_curve(sug))
            bar.update()
        out[name] = {how: _mean_curve(cs) for how, cs in runs.items()}
        out[name]["suggested_minus_random"] = _paired(runs["suggested"], runs["random"])
    bar.close()
    return out


def calibrated_on(
    items: list, scorer, sizes: list[int], draws: int = 10, min_rest: int = 8, progress: bool = False
) -> dict[str, dict]:
    """What ``calibrate`` gives a user who labels ``N`` images of their own style and scores the rest:
    per source with ``N + min_rest`` labelled originals (and pooled), for each ``N`` of ``sizes``,
    ``draws`` seeded draws of ``N`` labelled images (whole copy groups: a sprite's copy on white never
    lands on the judged side), the reader fitted on those with a face and judged on every other
    labelled image (no face = wrong): with calibrate's default options (``auto``: the backend's
    reading is kept unless a learned model beats it in cross-validation) and with ``--model full``,
    beside the backend's own reading of the same images. ``{source: {N: {"auto": {"mean", "ci95"},
    "full": {...}, "default", "n_train" / "n_rest" (means), "draws"}}}``, ``ci95`` the 2.5-97.5
    percentile over the draws; a size the source cannot hold is left out."""
    from tqdm.auto import tqdm

    from calibration.curve import face_accuracy
    from calibration.fit import FitOptions

    options = {"auto": FitOptions(), "full": FitOptions(model="full")}
    datasets = _source_datasets(items, scorer, min(sizes) + min_rest, faceless=True)
    out: dict[str, dict] = {}
    bar = tqdm(total=draws * len(sizes) * len(datasets), desc="calibrated on N", unit="draw",
               disable=not progress)  # fmt: skip
    for name, ds in datasets.items():
        labelled = [i for i in range(len(ds.items)) if ds.label(i, "emotion")]
        groups = ds.groups_of(labelled) or labelled
        members: dict[int, list[int]] = {}  # copy group -> its labelled images
        for i, g in zip(labelled, groups, strict=True):
            members.setdefault(g, []).append(i)
        out[name] = {}
        for n in sizes:
            if n + min_rest > len(labelled):
                bar.update(draws)
                continue
            acc: dict[str, list[float]] = {k: [] for k in ("default", *options)}
            n_train, n_rest = [], []
            for seed in range(draws):
                train, drawn = [], set()
                for j in np.random.default_rng(seed).permutation(len(labelled)):
                    if len(train) >= n:
                        break
                    if groups[j] not in drawn:
                        drawn.add(groups[j])
                        train += members[groups[j]]
                rest = [i for i, g in zip(labelled, groups, strict=True) if g not in drawn]
                fit_on = [i for i in train if ds.usable(i, "emotion")]
                acc["default"].append(face_accuracy(ds, [], rest, options["auto"]))
                for key, opts in options.items():
                    acc[key].append(face_accuracy(ds, fit_on, rest, opts))
                n_train.append(len(train))
                n_rest.append(len(rest))
                bar.update()
            out[name][n] = {
                **{
                    key: {
                        "mean": round(float(np.mean(acc[key])), 4),
                        "ci95": [round(float(np.percentile(acc[key], q)), 4) for q in (2.5, 97.5)],
                    }
                    for key in options
                },
                "default": round(float(np.mean(acc["default"])), 4),
                "n_train": round(float(np.mean(n_train)), 1),
                "n_rest": round(float(np.mean(n_rest)), 1),
                "draws": draws,
            }
    bar.close()
    return out


def _source_datasets(items: list, scorer, min_labels: int, faceless: bool = False) -> dict:
    """``{source: Dataset}`` of the labelled originals of every source with ``min_labels`` of them,
    and ``pooled`` (all sources) when there are three or more; ``faceless``: with the images no face
    was found in (they count as wrong)."""
    from calibration.evaluate import Dataset
    from calibration.labels import Labels

    by_source = {
        s: [it for it in items if it.case.source == s] for s in sorted({it.case.source for it in items})
    }
    if len(by_source) >= 3:
        by_source["pooled"] = items
    out = {}
    for name, its in by_source.items():
        its = [it for it in its if it.case.kind == "original" and it.case.label and (faceless or it.named)]
        if len(its) >= min_labels:
            labels = Labels(
                [{"file": it.case.path, "emotion": it.case.label} for it in its], ["emotion"], name
            )
            # copies of one drawing (a sprite on white and as RGBA) on one side of every split
            groups = [it.drawings[0] for it in its] if all(it.drawings for it in its) else None
            out[name] = Dataset(labels, [it.scored for it in its], scorer, list(FOUR), groups=groups)
    return out


def option_curves(
    items: list, scorer, variants: dict[str, dict] | None = None, *, seeds: int = 10, repeats: int = 4,
    sizes: tuple[int, ...] = (8, 16, 32, 48), min_labels: int = 8,
) -> dict[str, dict]:  # fmt: skip
    """Within-source learning curves of the face reader (``full`` + temperature) under each of
    ``variants`` (name -> ``FitOptions`` fields), on the same ``seeds`` fixed 30 % test splits and the
    same ``repeats`` random label orders per split, so variants pair up: per source the mean curve
    of each and ``"<variant> - <first>"``, the paired difference (mean and SE over splits). Sizes
    are ``sizes`` below the pool, then the whole pool."""
    from calibration.curve import learning_curve, split
    from calibration.fit import FitOptions

    variants = variants or VARIANTS
    out: dict[str, dict] = {}
    for name, ds in _source_datasets(items, scorer, min_labels).items():
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for seed in range(seeds):
            pool, _ = split(ds, 0.3, seed)
            at = [n for n in sizes if n < len(pool)] + [len(pool)]
            for v, kw in variants.items():
                opts = FitOptions(**{"model": "full", "method": "temperature", **kw})
                runs[v].append(learning_curve(ds, opts, sizes=at, repeats=repeats, seed=seed))
        first = next(iter(variants))
        out[name] = {v: _mean_curve(cs) for v, cs in runs.items()}
        out[name].update({f"{v} - {first}": _paired(runs[v], runs[first]) for v in variants if v != first})
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.validity_curves [--shared ../shared/data] [--json OUT] [--seeds 10]``:
    ``option_curves`` over every labelled source, printed as paired differences."""
    import argparse
    import json
    import tempfile
    from pathlib import Path

    from benchmarks.validity_data import ROOT, collect_cases
    from benchmarks.validity_fit import score_cases

    ap = argparse.ArgumentParser(prog="python -m benchmarks.validity_curves")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=4)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases = collect_cases(a.shared if a.shared.is_dir() else None, Path(tmp))
        scorer, items = score_cases(cases, Path(tmp))
        res = option_curves(items, scorer, seeds=a.seeds, repeats=a.repeats)
    for src, r in res.items():
        for k, c in r.items():
            vals = (
                [f"{m:+.3f}+-{e:.3f}" for m, e in zip(c["mean"], c["se"], strict=True)]
                if "se" in c
                else [f"{m:.3f}" for m in c["mean"]]
            )
            print(f"{src:11s} {k:40s} at {c['sizes']}: {' '.join(vals)}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1), encoding="utf-8")
    return 0


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


if __name__ == "__main__":
    raise SystemExit(main())
