"""Dev-set evaluation of the anatomy backend on real anime art in ``../shared/data/dev`` (internal only).

    python -m benchmarks.anatomy_eval [--data ../shared/data/dev] [--params FILE] [--json OUT]

Prints:
- per-region accuracy on zundamon parts (each labelled part composed on a neutral face);
- 4-class (neutral/happy/sad/angry) balanced accuracy of the holistic reading (agreement.pool with the
  weights of config/verdict.yaml) on labelled faces: anime_face_classifier crops, seraphina sprites,
  zundamon faces whose parts agree; with the hand-set mapping and cross-validated after refitting
  (mapping.fit_params, stratified 5-fold);
- AUC of harmony separating agreeing zundamon faces from region-swapped ones;
- milliseconds per face of the measurements.

The faces and their region boxes (python ``animeface``, or fixed proportions on the tight classifier
crops) come from ``benchmarks.dev_faces``; this module scores them and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from harmony_eval import agreement
from harmony_eval.backends.anatomy import FEATURE_NAMES, AnatomyBackend
from harmony_eval.backends.anatomy.mapping import fit_params, region_probs
from harmony_eval.numerics import balanced_accuracy
from harmony_eval.resources import config_path, load_yaml

from .dev_faces import (
    FIVE,
    FOUR,
    Item,
    Zundamon,
    labelled_faces,
    write_zundamon_sprites,
    zundamon_faces,
    zundamon_items,
)

# dev_eval, detection and validity_data import the zundamon composer and these helpers from here
__all__ = [
    "FIVE",
    "FOUR",
    "Item",
    "Zundamon",
    "auc",
    "balanced_accuracy",
    "holistic",
    "labelled_faces",
    "main",
    "write_zundamon_sprites",
    "zundamon_faces",
    "zundamon_items",
]


def auc(pos: list[float], neg: list[float]) -> float:
    """P(score of a positive > score of a negative), ties count half."""
    pos_a, neg_a = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((pos_a > neg_a).sum() + 0.5 * (pos_a == neg_a).sum()) / (pos_a.size * neg_a.size))


def holistic(
    feats: dict[str, np.ndarray], params: dict, emotions: list[str], weights: dict, brow_conf: float
) -> np.ndarray:
    readings = {
        r: region_probs(params, r, feats[r], emotions, brow_conf if r == "brows" else 1.0)
        for r in ("eyes", "brows", "mouth")
    }
    return agreement.pool(readings, weights)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dev")
    ap.add_argument(
        "--params", default=None, help="anatomy parameter JSON (default: shipped hand-set priors)"
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--verbose", action="store_true", help="print every face's reading")
    args = ap.parse_args(argv)
    root = Path(args.data)
    if not (root / "zundamon" / "parts.csv").is_file():
        print(f"--data {root}: no zundamon/parts.csv there; point it at shared/data/dev", file=sys.stderr)
        return 2
    backend = AnatomyBackend(params=args.params)
    verdict = load_yaml(config_path("verdict.yaml"))
    weights = verdict["pool_weights"]
    figures: dict[str, float] = {}

    parts, originals, swapped = zundamon_items(root / "zundamon")
    faces = labelled_faces(root)
    t0 = time.perf_counter()
    every = parts + originals + swapped + faces
    preds = {it.name + it.group: backend.predict([it.inp], FIVE)[0] for it in every}
    ms = 1000 * (time.perf_counter() - t0) / len(every)
    figures["ms_per_face"] = ms

    # 1. Per-region accuracy on zundamon parts (5 emotions: the parts include surprised).
    for region in ("eyes", "brows", "mouth"):
        its = [it for it in parts if region in it.labels]
        hits = []
        for it in its:
            p = preds[it.name + it.group].probs[region]
            guess = max(p, key=p.get) if p else "none"
            hits.append(guess == it.labels[region])
            if args.verbose:
                print(f"  {region:6s} {it.labels[region]:10s} -> {guess:10s} {it.name}")
        figures[f"zundamon_{region}_acc5"] = float(np.mean(hits))

    # 2. 4-class balanced accuracy of the holistic reading.
    four = [it for it in faces + originals if it.labels["face"] in FOUR]
    y, guess = [], []
    for it in four:
        pred = preds[it.name + it.group]
        conf = min(1.0, pred.features["brows"][0] / 0.6)
        h = holistic(pred.features, backend.params, FOUR, weights, conf)
        y.append(it.labels["face"])
        guess.append(FOUR[int(np.argmax(h))])
        if args.verbose:
            print(f"  face {it.labels['face']:8s} -> {guess[-1]:8s} {it.group}:{it.name}")
    for group in ("afc", "seraphina", "zundamon"):
        idx = [i for i, it in enumerate(four) if it.group == group]
        figures[f"ba4_{group}"] = balanced_accuracy([y[i] for i in idx], [guess[i] for i in idx])
    figures["ba4_all"] = balanced_accuracy(y, guess)

    # 3. Cross-validated after refitting (stratified 5-fold, 3 shuffles averaged): (a) each region's
    # model refitted on the face labels with mapping.fit_params, shrunk 30 % towards the hand-set
    # priors, pooled as above; (b) one logistic regression over every region's features plus the
    # priors' region log-probabilities (what a calibration "face" model over backend features does).
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {r: np.array([preds[it.name + it.group].features[r] for it in four]) for r in FEATURE_NAMES}
    ya = np.array(y, dtype=object)
    logp = np.hstack(
        [np.log([region_probs(backend.params, r, row, FOUR) for row in x[r]]) for r in FEATURE_NAMES]
    )
    xall = np.hstack([*(x[r] for r in FEATURE_NAMES), logp])
    per_region, joint = [], []
    for seed in range(3):
        g_region = np.empty(len(four), dtype=object)
        g_joint = np.empty(len(four), dtype=object)
        for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(ya, ya):
            fitted = fit_params(
                {r: v[train] for r, v in x.items()},
                list(ya[train]),
                FEATURE_NAMES,
                FOUR,
                prior=backend.params,
                c=0.1,
                prior_weight=0.3,
            )
            for i in test:
                feats = {r: v[i] for r, v in x.items()}
                g_region[i] = FOUR[int(np.argmax(holistic(feats, fitted, FOUR, weights, 1.0)))]
            clf = make_pipeline(
                StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=3000)
            )
            g_joint[test] = clf.fit(xall[train], ya[train]).predict(xall[test])
        per_region.append(balanced_accuracy(list(ya), list(g_region)))
        joint.append(balanced_accuracy(list(ya), list(g_joint)))
    figures["ba4_all_cv_refit"] = float(np.mean(per_region))
    figures["ba4_all_cv_joint"] = float(np.mean(joint))

    # 4. Harmony AUC: agreeing zundamon faces vs region-swapped ones.
    compat = agreement.compatibility_matrix(FOUR, verdict["compatibility"])
    compat5 = agreement.compatibility_matrix(FIVE, verdict["compatibility"])

    def harmony_of(it: Item, emotions: list[str], c: np.ndarray) -> float:
        pred = preds[it.name + it.group]
        readings = {
            r: (agreement.as_vector(pred.probs[r], emotions) if pred.probs[r] else None)
            for r in ("eyes", "brows", "mouth")
        }
        if emotions != FIVE:  # renormalise the five-way reading to the vocabulary in use
            readings = {
                r: (v / v.sum() if v is not None else None)
                for r, v in (
                    (
                        r,
                        agreement.as_vector(pred.probs[r], FIVE)[[FIVE.index(e) for e in emotions]]
                        if pred.probs[r]
                        else None,
                    )
                    for r in readings
                )
            }
        h = agreement.pool(readings, weights)
        scores = agreement.agreement_scores(readings, h, c, weights)
        return agreement.harmony(scores, verdict["harmony_weights"]) or 0.0

    figures["auc_swap_5"] = auc(
        [harmony_of(it, FIVE, compat5) for it in originals], [harmony_of(it, FIVE, compat5) for it in swapped]
    )
    o4 = [it for it in originals if it.labels["face"] in FOUR]
    s4 = [it for it in swapped if it.labels["face"] in FOUR]
    figures["auc_swap_4"] = auc(
        [harmony_of(it, FOUR, compat) for it in o4], [harmony_of(it, FOUR, compat) for it in s4]
    )
    figures.update(n_parts=len(parts), n_originals=len(originals), n_swapped=len(swapped), n_faces4=len(four))
    for k, v in figures.items():
        print(f"{k:22s} {v:.3f}" if isinstance(v, float) else f"{k:22s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
