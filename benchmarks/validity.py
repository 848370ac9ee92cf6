"""Leave-one-source-out validity: how well each reader reads faces from art it was never fitted on.

    python -m benchmarks.validity [--shared ../shared/data] [--readers default,anatomy,hog,anatomy+hog]
                                  [--json OUT.json] [--markdown OUT.md] [--curve OUT.png]

For every labelled source (``validity_data``: the bundled permissive sprites always, the dev sets of
``../shared/data`` when present) and every reader, the figures of that reader on that source when it
was fitted **without** it (with one source only, without the character instead). Readers:

- ``default``: the shipped offline reader as is (anatomy measurements through the hand-set mapping of
  ``config/anatomy.json``). Nothing is fitted here, but its priors were set while looking at the dev
  sets (seraphina, afc, zundamon): its figures there are in-sample and marked so; only sources it
  never saw (permissive, and the CEO's held-out sprites) say what it is worth;
- ``anatomy``, ``hog``, ``anatomy+hog``: the learned readers of ``harmony-eval calibrate``
  (``calibration.fit.fit_model``, the same code) over the anatomy measurements, the HOG crop
  descriptors (``harmony_eval.descriptors``) or both: a face model on the face labels, and one model
  per region on region labels where a source has them (zundamon) and on the face label otherwise
  (a weak label: a face labelled happy is taken to have happy eyes, brows and mouth).

Figures per source and pooled over sources (each image judged by a reader that did not see its
source): faces found; 4-class balanced accuracy (no face = wrong) with a bootstrap 95 % interval;
recall per class; region accuracy (``*`` = weak, against the face label); harmony AUC of agreeing
faces vs region-swapped ones (no target given); ECE of the face reading.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.validity_data import FOUR, ROOT, Case, collect_cases, mouth_swaps

#: sources whose images the shipped default reader was tuned on (its figures there are in-sample)
TUNED_ON = ("seraphina", "afc", "zundamon")
REGION_MODELS = ("eyes", "brows", "mouth")
#: reader -> feature groups it reads (prefix before ":" of ``prediction_features`` names)
READERS: dict[str, tuple[str, ...] | None] = {
    "default": None,
    "default+T": ("pooled",),
    "anatomy": ("eyes", "left_eye", "right_eye", "brows", "mouth", "pooled", "quality"),
    "hog": ("eyes_desc", "brows_desc", "mouth_desc", "face_desc"),
    "anatomy+hog": (
        "eyes", "left_eye", "right_eye", "brows", "mouth", "pooled", "quality",
        "eyes_desc", "brows_desc", "mouth_desc", "face_desc",
    ),
}  # fmt: skip


@dataclass
class Item:
    case: Case
    scored: Any  # calibration.features.Scored
    named: dict[str, float] | None


def score_cases(
    cases: list[Case], tmp: Path, workers: int = 2, progress: bool = True
) -> tuple[Any, list[Item]]:
    """Score every case with the uncalibrated anatomy pipeline (no targets), then add mouth-swapped
    copies of the sprite sources (boxes from this detection) and score those too."""
    from calibration.features import score_images
    from harmony_eval.calibrated import prediction_features

    opts: dict[str, Any] = {}
    mp = ROOT.parent / "shared" / "models" / "face_landmarker.task"
    if mp.is_file():
        opts["mediapipe_model"] = str(mp)
    scorer, scored = score_images(
        [c.path for c in cases], backend="anatomy", emotions=FOUR, workers=workers, progress=progress, **opts
    )
    boxes = {s.file: s.prep.regions.get("mouth") for s in scored if s.ok}
    sprites = [c for c in cases if c.source in ("permissive", "seraphina")]
    swaps = mouth_swaps(sprites, {k: v for k, v in boxes.items() if v}, tmp)
    if swaps:
        _, more = score_images(
            [c.path for c in swaps],
            backend="anatomy",
            emotions=FOUR,
            workers=workers,
            progress=progress,
            **opts,
        )
        cases, scored = cases + swaps, scored + more
    pw = scorer.config.pool_weights
    items = [
        Item(c, s, prediction_features(s.pred, FOUR, pw) if s.ok else None)
        for c, s in zip(cases, scored, strict=True)
    ]
    return scorer, items


def _select(named: dict[str, float], groups: tuple[str, ...]) -> dict[str, float]:
    return {k: v for k, v in named.items() if k.split(":", 1)[0] in groups}


def region_label(c: Case, region: str) -> str | None:
    """The true region label where the source has one, else the face label (weak)."""
    return c.regions.get(region) or c.label


def fit_reader(train: list[Item], groups: tuple[str, ...], pool_weights: dict, opts=None):
    """A ``Calibration`` with a face model and region models fitted on ``train`` (originals and swaps
    with labels), reading only ``groups``: what ``harmony-eval calibrate`` fits from these labels."""
    from calibration.fit import FitOptions, fit_model
    from harmony_eval.calibrated import Calibration

    opts = opts or FitOptions(model="full", method="temperature")
    models = {}
    face = [it for it in train if it.named and it.case.label and it.case.kind == "original"]
    models["face"] = fit_model(
        [_select(it.named, groups) for it in face], [it.case.label for it in face],
        model="face", label="emotion", opts=opts, vocabulary=FOUR,
    )  # fmt: skip
    for r in REGION_MODELS:
        rows = [it for it in train if it.named and region_label(it.case, r) and it.scored.pred.probs.get(r)]
        if len({region_label(it.case, r) for it in rows}) < 2:
            continue
        models[r] = fit_model(
            [_select(it.named, groups) for it in rows], [region_label(it.case, r) for it in rows],
            model=r, label=r, opts=opts, vocabulary=FOUR,
        )  # fmt: skip
    return Calibration(emotions=list(FOUR), models=models, backend="anatomy", pool_weights=dict(pool_weights))


def fit_temperature(train: list[Item], pool_weights: dict):
    """The default reader with one temperature on its whole-face reading, fitted on ``train``'s face
    labels (``fit_scaling_model``, as ``calibrate --model scaling --method temperature``): it never
    changes which emotion is on top, only how sure the reading claims to be."""
    from calibration.fit import FitOptions, fit_scaling_model
    from harmony_eval.calibrated import Calibration

    face = [it for it in train if it.named and it.case.label and it.case.kind == "original"]
    m = fit_scaling_model(
        [it.named for it in face], [it.case.label for it in face], model="face", label="emotion",
        opts=FitOptions(model="scaling", method="temperature"), vocabulary=FOUR,
    )  # fmt: skip
    return Calibration(
        emotions=list(FOUR), models={"face": m}, backend="anatomy", pool_weights=dict(pool_weights)
    )


def held_out_rows(items: list[Item], reader: str, scorer, unit: str) -> list[dict]:
    """Each item's output row from ``reader`` fitted without the item's ``unit`` (source or group)."""
    from calibration.features import rescore

    if READERS[reader] is None:
        return [it.scored.row for it in items]
    temperature_only = reader == "default+T"
    rows: list[dict | None] = [None] * len(items)
    keys = sorted({getattr(it.case, unit) for it in items})
    for k in keys:
        test = [i for i, it in enumerate(items) if getattr(it.case, unit) == k]
        train = [it for it in items if getattr(it.case, unit) != k]
        cal = (
            fit_temperature(train, scorer.config.pool_weights)
            if temperature_only
            else fit_reader(train, READERS[reader], scorer.config.pool_weights)
        )
        for i in test:
            s = items[i].scored
            rows[i] = rescore(scorer, s, cal.apply(s.pred, FOUR)) if s.ok else s.row
    return rows  # type: ignore[return-value]


def _auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def figures(items: list[Item], rows: list[dict], n_boot: int = 1000) -> dict[str, Any]:
    """The figures of one reader on one set of items (see the module docstring)."""
    from calibration.metrics import balanced_accuracy, bootstrap_ci, ece

    orig = [(it, r) for it, r in zip(items, rows, strict=True) if it.case.kind == "original"]
    lab = [(it, r) for it, r in orig if it.case.label]
    y = [it.case.label for it, _ in lab]
    p = [r["emotion"] if r["status"] == "ok" and r["emotion"] else "none" for _, r in lab]
    out: dict[str, Any] = {"n": len(lab), "found": float(np.mean([r["status"] == "ok" for _, r in orig]))}
    if lab:
        ya, pa = np.array(y, dtype=object), np.array(p, dtype=object)
        out["ba4"] = balanced_accuracy(y, p)
        out["ba4_ci"] = bootstrap_ci(lambda ix: balanced_accuracy(list(ya[ix]), list(pa[ix])), len(y), n_boot)
        out["recall"] = {c: float(np.mean(pa[ya == c] == c)) if (ya == c).any() else None for c in FOUR}
        found = [(it, r) for it, r in lab if r["status"] == "ok" and r["probs"]]
        if found:
            proba = np.array([[r["probs"][e] for e in FOUR] for _, r in found])
            out["ece"] = ece(proba, np.array([FOUR.index(it.case.label) for it, _ in found]))
    for reg in REGION_MODELS:
        pairs = [
            (region_label(it.case, reg), max(r["regions"][reg]["probs"], key=r["regions"][reg]["probs"].get))
            for it, r in zip(items, rows, strict=True)
            if region_label(it.case, reg) and r["status"] == "ok" and r["regions"][reg]["probs"]
        ]
        weak = not any(reg in it.case.regions for it in items)
        out[f"{reg}_acc"] = balanced_accuracy(*zip(*pairs, strict=False)) if pairs else None
        out[f"{reg}_weak"] = weak
    hw = None
    pos = [
        r["harmony"]
        for it, r in zip(items, rows, strict=True)
        if it.case.kind == "original" and it.case.label and r["harmony"] is not None
    ]
    neg = [
        r["harmony"]
        for it, r in zip(items, rows, strict=True)
        if it.case.kind == "swapped" and r["harmony"] is not None
    ]
    del hw
    out["swap_auc"] = _auc(pos, neg)
    out["n_swap"] = [len(pos), len(neg)]
    out["verdicts"] = {
        v: sum(r.get("verdict") == v for _, r in orig) for v in ("perfect", "acceptable", "broken")
    }
    return out


def run(
    shared: Path | None, readers: list[str], workers: int = 2, n_boot: int = 1000, progress: bool = True,
    curves: bool = False,
) -> dict:  # fmt: skip
    """Every reader's held-out figures per source and pooled: ``{reader: {source: figures}}``."""
    with tempfile.TemporaryDirectory(prefix="validity_") as tmp:
        cases = collect_cases(shared, Path(tmp))
        scorer, items = score_cases(cases, Path(tmp), workers=workers, progress=progress)
    sources = sorted({it.case.source for it in items})
    unit = "source" if len(sources) >= 2 else "group"
    out: dict[str, Any] = {
        "unit": unit,
        "sources": sources,
        "tuned_on": [s for s in TUNED_ON if s in sources],
    }
    for reader in readers:
        if reader not in READERS:
            raise ValueError(f"--readers: unknown reader {reader!r}; choose from {list(READERS)}")
        rows = held_out_rows(items, reader, scorer, unit)
        res = {
            s: figures(
                [it for it in items if it.case.source == s],
                [r for it, r in zip(items, rows, strict=True) if it.case.source == s],
                n_boot,
            )
            for s in sources
        }
        if len(sources) > 1:
            res["pooled"] = figures(items, rows, n_boot)
        out[reader] = res
    if curves:
        out["curves"] = label_curves(items, scorer)
    return out


def label_curves(
    items: list[Item], scorer, min_labels: int = 30, repeats: int = 5, seeds: int = 3
) -> dict[str, dict]:
    """Within-source learning curves of the learned face reader (anatomy + HOG features, ``--model
    full``: ``auto`` keeps the backend's reading until a learned one beats it, which flattens the
    curve): labels taken in random order vs in ``--suggest`` order on the same fixed test split, for
    every source with ``min_labels`` labelled faces and all sources pooled; means over ``seeds`` splits."""
    from calibration.curve import learning_curve, split
    from calibration.evaluate import Dataset
    from calibration.fit import FitOptions
    from calibration.labels import Labels
    from calibration.suggest import suggest_order

    out: dict[str, dict] = {}
    groups = {
        s: [it for it in items if it.case.source == s] for s in sorted({it.case.source for it in items})
    }
    groups["pooled"] = items
    opts = FitOptions(model="full", method="temperature")
    for name, its in groups.items():
        its = [it for it in its if it.case.kind == "original"]
        if sum(bool(it.case.label) for it in its) < min_labels or (name == "pooled" and len(groups) < 3):
            continue
        labels = Labels([{"file": it.case.path, "emotion": it.case.label} for it in its], ["emotion"], name)
        ds = Dataset(labels, [it.scored for it in its], scorer, list(FOUR))
        runs: dict[str, list[dict]] = {"random": [], "suggested": []}
        for seed in range(seeds):
            pool, _ = split(ds, 0.3, seed)
            local = suggest_order([ds.items[i].row for i in pool], [ds.named[i] for i in pool])
            runs["random"].append(learning_curve(ds, opts, repeats=repeats, seed=seed))
            runs["suggested"].append(learning_curve(ds, opts, order=[pool[j] for j in local], seed=seed))
        out[name] = {how: _mean_curve(cs) for how, cs in runs.items()}
    return out


def _mean_curve(curves: list[dict]) -> dict:
    """Curves of several splits on the sizes they share: mean of means, min / max of the intervals."""
    sizes = sorted(set.intersection(*(set(c["sizes"]) for c in curves)))
    at = [{n: k for k, n in enumerate(c["sizes"])} for c in curves]
    return {
        "sizes": sizes,
        "mean": [
            round(float(np.mean([c["mean"][a[n]] for c, a in zip(curves, at, strict=True)])), 4)
            for n in sizes
        ],
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


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(res: dict) -> str:
    """The table the README shows: one line per reader and source."""
    unit = res["unit"]
    lines = [
        f"Held out: each {unit} is scored by a reader fitted without it. `default` is fitted on nothing, "
        f"but was tuned on {', '.join(res['tuned_on']) or 'none of these'}: those cells (in-sample) are in italics.",
        "",
        "| reader | source | n | found | bal. acc. 4-class [95% CI] | recall n/h/s/a | eyes / brows / mouth acc. | swap AUC (n) | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for reader in [k for k in res if k in READERS]:
        for src, f in res[reader].items():
            if "ba4" not in f:
                continue
            ci = f["ba4_ci"]
            rec = "/".join(_f(f["recall"][c]) for c in FOUR)
            reg = " / ".join(_f(f[f"{r}_acc"]) + ("*" if f[f"{r}_weak"] else "") for r in REGION_MODELS)
            auc = (
                f"{_f(f['swap_auc'])} ({f['n_swap'][0]} vs {f['n_swap'][1]})"
                if f["swap_auc"] is not None
                else "-"
            )
            ba = f"{f['ba4']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
            in_sample = reader.startswith("default") and (
                src in res["tuned_on"] or (src == "pooled" and res["tuned_on"])
            )
            if in_sample:
                ba = f"*{ba}*"
            lines.append(
                f"| {reader} | {src} | {f['n']} | {f['found']:.2f} | {ba} | {rec} | {reg} | {auc} | {_f(f.get('ece'))} |"
            )
    lines.append("")
    lines.append("`*` after a region figure: weak labels (the face label stands for the region).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared",
        default=str(ROOT.parent / "shared" / "data"),
        help="the shared data folder (absent: permissive only)",
    )
    ap.add_argument("--readers", default=",".join(READERS), help=f"comma separated, from {list(READERS)}")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--curves", default=None, help="also draw learning curves (random vs suggested order) to this PNG"
    )
    a = ap.parse_args(argv)
    shared = Path(a.shared) if Path(a.shared).is_dir() else None
    if shared is None:
        print(
            f"{a.shared} absent: measuring the bundled permissive sprites only (held out by character)",
            file=sys.stderr,
        )
    try:
        readers = [r for r in a.readers.split(",") if r]
        res = run(shared, readers, a.workers, a.bootstrap, not a.no_progress, bool(a.curves))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = markdown(res)
    print(md)
    if a.curves and res.get("curves"):
        from calibration.curve import plot_curve

        flat = {f"{src}, {how} order": c for src, cs in res["curves"].items() for how, c in cs.items()}
        plot_curve(flat, a.curves, chance=0.25)
        for label, c in flat.items():
            print(
                f"learning curve {label}: "
                + ", ".join(f"{n}: {m:.2f}" for n, m in zip(c["sizes"], c["mean"], strict=True))
            )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    if a.markdown:
        Path(a.markdown).write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
