"""Leave-one-source-out validity: how well each reader reads faces from art it was never fitted on.

    python -m benchmarks.validity [--shared ../shared/data] [--readers default,anatomy,hog,anatomy+lbp]
                                  [--json OUT.json] [--markdown OUT.md] [--curves OUT.png]
                                  [--source NAME=labels.csv ...] [--calibrated 100 [--draws 10]]

For every labelled source (``validity_data``: the bundled permissive sprites always, the dev sets of
``../shared/data`` when present, and each ``--source`` of your own: a labels file as ``calibrate``
reads it, with a ``character`` column for sprite sets) and every reader, the figures of that reader on that source when it
was fitted **without** it (with one source only, without the character instead). Readers:

- ``default``: the shipped offline reader as is (anatomy measurements through the hand-set mapping of
  ``config/anatomy.json``). Nothing is fitted here, but its priors were set while looking at the dev
  sets (seraphina, afc, zundamon): its figures there are in-sample and marked so; only sources it
  never saw (permissive, and the CEO's held-out sprites) say what it is worth;
- ``anatomy``, ``hog`` / ``lbp`` / ``grey``, ``anatomy+<kind>``: the learned readers of
  ``harmony-eval calibrate`` over the anatomy measurements, one kind of crop descriptor
  (``harmony_eval.descriptors``) or both; fitted as ``benchmarks.validity_fit`` says.

Figures per source and pooled over sources (each image judged by a reader that did not see its
source): faces found; 4-class balanced accuracy (no face = wrong) with a bootstrap 95 % interval;
recall per class; region accuracy (``*`` = weak, against the face label), and on the swapped faces
alone the eyes' and the mouth's accuracy against the sprite each came from; harmony AUC of agreeing
faces vs region-swapped ones (no target given); ECE of the face reading. ``--curves``: learning
curves, random vs suggested order (``benchmarks.validity_curves``). ``--calibrated N``: within each
source, ``calibrate`` (default options) fitted on N of its labelled images drawn at random and judged
on all the others, as a user who labels N images of their style would see it
(``validity_curves.calibrated_on``).

Copies of one drawing (``harmony_eval.copies``: a sprite as RGBA and on white, a JPEG of it), in one
source or in two, are kept apart: an item showing a drawing of the unit judged never trains its
reader (``validity_fit.held_out_split``; a unit left with nothing to learn from gets no learned
figure, and the reason), the curves' splits keep copies on one side, and the table counts them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.validity_curves import calibrated_on, label_curves
from benchmarks.validity_data import FOUR, ROOT, collect_cases
from benchmarks.validity_fit import (
    READERS,
    REGION_MODELS,
    Item,
    fit_reader,
    held_out_rows,
    held_out_split,
    reader_kind,
    region_label,
    score_cases,
    with_kind,
)

#: sources whose images the shipped default reader was tuned on (its figures there are in-sample)
TUNED_ON = ("seraphina", "afc", "zundamon")
__all__ = ["READERS", "Item", "fit_reader", "held_out_rows", "score_cases", "label_curves", "main"]


def _auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def swap_auc(items: list[Item], rows: list[dict]) -> tuple[float | None, int, int]:
    """``(AUC, originals, swaps)``: how often a labelled original's harmony is above a region-swapped
    face's, over pairs from one source only (ties count half). Pooled over sources, a pair across
    two sources would compare styles (TV crops have no swaps, and their harmony runs lower than the
    sprites'), so only sources with swaps count, each original against its own source's swaps."""
    by_src: dict[str, tuple[list[float], list[float]]] = {}
    for it, r in zip(items, rows, strict=True):
        if r["harmony"] is None or (it.case.kind == "original" and not it.case.label):
            continue
        pos, neg = by_src.setdefault(it.case.source, ([], []))
        (neg if it.case.kind == "swapped" else pos).append(r["harmony"])
    pairs = [(pos, neg) for pos, neg in by_src.values() if pos and neg]
    n_pos, n_neg = sum(len(p) for p, _ in pairs), sum(len(n) for _, n in pairs)
    if not pairs:
        return None, n_pos, n_neg
    weight = sum(len(p) * len(n) for p, n in pairs)
    auc = sum(_auc(p, n) * len(p) * len(n) for p, n in pairs) / weight  # type: ignore[operator]
    return float(auc), n_pos, n_neg


def _region_acc(pairs: list[tuple[Item, dict]], reg: str, truth=region_label) -> float | None:
    """Balanced accuracy of region ``reg``'s top reading against ``truth(case, reg)`` (default: the
    true region label, else the face label), over the found faces of ``pairs`` that read it."""
    from calibration.metrics import balanced_accuracy

    got = [
        (t, max(p, key=p.get))
        for it, r in pairs
        if (t := truth(it.case, reg)) and r["status"] == "ok" and (p := r["regions"][reg]["probs"])
    ]
    return balanced_accuracy(*zip(*got, strict=False)) if got else None


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
    both = list(zip(items, rows, strict=True))
    for reg in REGION_MODELS:
        out[f"{reg}_acc"] = _region_acc(both, reg)
        out[f"{reg}_weak"] = not any(reg in it.case.regions for it in items)
    # the swapped faces alone: does each part read as the sprite it came from (eyes: the upper face's
    # emotion, mouth: the donor's); a reader that reads the face as a whole gets the mouth wrong here
    swapped = [(it, r) for it, r in both if it.case.kind == "swapped"]
    for reg in ("eyes", "mouth"):
        out[f"swapped_{reg}_acc"] = _region_acc(swapped, reg, lambda c, g: c.regions.get(g))
    auc, n_pos, n_neg = swap_auc(items, rows)
    out["swap_auc"], out["n_swap"] = auc, [n_pos, n_neg]
    out["verdicts"] = {
        v: sum(r.get("verdict") == v for _, r in orig) for v in ("perfect", "acceptable", "broken")
    }
    return out


def run(
    shared: Path | None, readers: list[str], workers: int = 2, n_boot: int = 1000, progress: bool = True,
    curves: bool = False, added: dict[str, Path] | None = None, calibrated: list[int] | None = None,
    draws: int = 10,
) -> dict:  # fmt: skip
    """Every reader's held-out figures per source and pooled: ``{reader: {source: figures}}``.
    ``added``: more labelled sources, name -> labels file (``validity_data.labelled_cases``);
    ``calibrated``: label counts for ``validity_curves.calibrated_on`` (``draws`` draws each)."""
    for reader in readers:  # before the scoring: a typo costs nothing
        if reader not in READERS:
            raise ValueError(f"--readers: unknown reader {reader!r}; choose from {list(READERS)}")
    with tempfile.TemporaryDirectory(prefix="validity_") as tmp:
        cases = collect_cases(shared, Path(tmp), added)
        scorer, items = score_cases(cases, Path(tmp), workers=workers, progress=progress)
        # descriptor kind -> the items described with it (the images, some in tmp, read once)
        kinds = {k: with_kind(items, k, scorer) for k in sorted({reader_kind(r) for r in readers})}
    sources = sorted({it.case.source for it in items})
    unit = "source" if len(sources) >= 2 else "group"
    out: dict[str, Any] = {
        "unit": unit,
        "sources": sources,
        "tuned_on": [s for s in TUNED_ON if s in sources],
        "copies": copies_report(items, unit),
    }
    for reader in readers:
        its = kinds[reader_kind(reader)]
        unfitted: dict[str, str] = {}
        rows = held_out_rows(its, reader, scorer, unit, unfitted)
        res = {}
        for src in [*sources, *(["pooled"] if len(sources) > 1 else [])]:
            mine = [(it, r) for it, r in zip(its, rows, strict=True) if src in ("pooled", it.case.source)]
            read = [(it, r) for it, r in mine if r is not None]
            why = {getattr(it.case, unit): unfitted[getattr(it.case, unit)] for it, r in mine if r is None}
            if read:
                res[src] = figures([it for it, _ in read], [r for _, r in read], n_boot)
            else:  # no reader could be fitted without it: no figure, and why
                res[src] = {"n": sum(it.case.kind == "original" and bool(it.case.label) for it, _ in mine)}
            if why:
                res[src]["unfitted"] = why
        out[reader] = res
    if curves:
        out["curves"] = label_curves(items, scorer, progress=progress)
    if calibrated:
        out["calibrated"] = calibrated_on(items, scorer, calibrated, draws, progress=progress)
    return out


def copies_report(items: list[Item], unit: str) -> dict[str, dict]:
    """Copies of one drawing (``Item.drawings``) the figures had to keep apart. ``across``: per held-out
    unit, how many items of the other units each learned reader's fit left out because they show one
    of its drawings (``held_out_split``), by source; ``within``: per source, labelled originals that
    are a copy of another (kept on one side of every learning-curve split)."""
    across = {}
    for key in sorted({getattr(it.case, unit) for it in items}):
        _, _, left = held_out_split(items, unit, key)
        if left:
            by = Counter(it.case.source for it in left)
            across[key] = {"left_out": len(left), "from": dict(sorted(by.items()))}
    within = {}
    for src in sorted({it.case.source for it in items}):
        drawn = [it.drawings[0] for it in items if it.case.source == src and it.case.kind == "original"
                 and it.case.label and it.drawings]  # fmt: skip
        if len(set(drawn)) < len(drawn):
            within[src] = len(drawn) - len(set(drawn))
    return {"across": across, "within": within}


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(res: dict) -> str:
    """The table the README shows: one line per reader and source."""
    unit = res["unit"]
    lines = [
        f"Held out: each {unit} is scored by a reader fitted without it. `default` is fitted on nothing, "
        f"but was tuned on {', '.join(res['tuned_on']) or 'none of these'}: those cells (in-sample) are in italics.",
        "",
        "| reader | source | n | found | bal. acc. 4-class [95% CI] | recall n/h/s/a | eyes / brows / mouth acc. "
        "| swapped: eyes / mouth acc. | swap AUC (n) | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for reader in [k for k in res if k in READERS]:
        for src, f in res[reader].items():
            if "ba4" not in f:
                if f.get("unfitted"):
                    why = "; ".join(f"{k}: {v}" for k, v in f["unfitted"].items())
                    lines.append(f"| {reader} | {src} | {f['n']} | - | no reader fitted without it ({why}) "
                                 "| - | - | - | - | - |")  # fmt: skip
                continue
            ci = f["ba4_ci"]
            rec = "/".join(_f(f["recall"][c]) for c in FOUR)
            reg = " / ".join(_f(f[f"{r}_acc"]) + ("*" if f[f"{r}_weak"] else "") for r in REGION_MODELS)
            auc = (
                f"{_f(f['swap_auc'])} ({f['n_swap'][0]} vs {f['n_swap'][1]})"
                if f["swap_auc"] is not None
                else "-"
            )
            swapped = " / ".join(_f(f.get(f"swapped_{r}_acc")) for r in ("eyes", "mouth"))
            swapped = "-" if swapped == "- / -" else swapped
            ba = f"{f['ba4']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
            in_sample = reader.startswith("default") and (
                src in res["tuned_on"] or (src == "pooled" and res["tuned_on"])
            )
            if in_sample:
                ba = f"*{ba}*"
            lines.append(
                f"| {reader} | {src} | {f['n']} | {f['found']:.2f} | {ba} | {rec} | {reg} | {swapped} | {auc} | {_f(f.get('ece'))} |"
            )
    lines.append("")
    lines.append("`*` after a region figure: weak labels (the face label stands for the region).")
    copies = res.get("copies") or {}
    if copies.get("across"):
        parts = [
            f"{key} {c['left_out']} ({', '.join(f'{n} of {src}' for src, n in c['from'].items())})"
            for key, c in copies["across"].items()
        ]
        lines.append(
            f"Copies of one drawing in two {unit}s (the same sprite on white and as RGBA, a JPEG of it): "
            f"left out of the learned readers' fit that judges the {unit} holding the other copy, so no "
            f"reader is judged on a drawing it was fitted on: {'; '.join(parts)}."
        )
    if copies.get("within"):
        parts = [f"{src} {n}" for src, n in copies["within"].items()]
        lines.append(
            "Labelled copies of another labelled image of the same source (each set kept on one side of "
            f"every learning-curve split, counted once): {'; '.join(parts)}."
        )
    cal = [(src, n, c) for src, by_n in (res.get("calibrated") or {}).items() for n, c in by_n.items()]
    if cal:
        lines += [
            "",
            f"Calibrated on N labels of the source's own style: {cal[0][2]['draws']} random draws of N "
            "labelled images (copies of one drawing drawn together), `calibrate` fitted on them and every "
            "other labelled image judged (no face = wrong); balanced accuracy, mean [2.5-97.5 percentile "
            "over the draws]. `auto` is calibrate's default (it keeps the backend's reading unless a learned "
            "model beats it in cross-validation: where the default is in-sample, so is that), `full` its "
            "`--model full`.",
            "",
            "| source | N | judged | default | calibrate (auto) | calibrate --model full |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for src, n, c in cal:
            cells = [
                f"{c[k]['mean']:.2f} [{c[k]['ci95'][0]:.2f}, {c[k]['ci95'][1]:.2f}]" for k in ("auto", "full")
            ]
            lines.append(
                f"| {src} | {n} | {c['n_rest']:.0f} | {c['default']:.2f} | {cells[0]} | {cells[1]} |"
            )
        lines.append("")
    elif "calibrated" in res:
        lines.append("Calibrated on N labels: no source holds N labelled images and 8 more to judge.")
    shown = [r for r in ("default", "default+T") if r in res] or [k for k in res if k in READERS][:1]
    for reader in shown:  # what a user of that reader would be told about these images
        counts = [
            f"{src} {f['verdicts']['perfect']} / {f['verdicts']['acceptable']} / {f['verdicts']['broken']}"
            for src, f in res[reader].items()
            if "verdicts" in f
        ]
        if counts:  # none where no reader could be fitted
            lines.append(
                f"Verdicts of `{reader}` on the originals (perfect / acceptable / broken): {'; '.join(counts)}."
            )
    return "\n".join(lines) + "\n"


def _added_sources(specs: list[str]) -> dict[str, Path]:
    """``--source NAME=LABELS`` values -> ``{name: labels file}``; a malformed or repeated one raises."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = (part.strip() for part in spec.partition("="))
        if not sep or not name or not path:
            raise ValueError(f"--source {spec!r}: expected NAME=LABELS (a labels CSV or Label Studio JSON)")
        if name in out:
            raise ValueError(f"--source {name!r}: given twice")
        out[name] = Path(path)
    return out


def _label_counts(spec: str, draws: int) -> list[int]:
    """``--calibrated 50,100`` -> ``[50, 100]``; anything but whole numbers of 2 or more raises."""
    try:
        sizes = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 2:
        raise ValueError(f"--calibrated {spec!r}: expected label counts of 2 or more, e.g. 100 or 50,100")
    if draws < 1:
        raise ValueError(f"--draws {draws}: expected 1 or more")
    return sorted(set(sizes))


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
    ap.add_argument(
        "--calibrated",
        default=None,
        metavar="N[,N...]",
        help="also measure, per source, calibrate fitted on N of its own labelled images and judged on the rest",
    )
    ap.add_argument("--draws", type=int, default=10, help="random draws of N labels for --calibrated")
    ap.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=LABELS",
        help="one more labelled source: a labels CSV or Label Studio JSON as calibrate reads it, image "
        "paths relative to its folder; a `character` column makes it a sprite set (swaps measured)",
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
        added = _added_sources(a.source)
        sizes = _label_counts(a.calibrated, a.draws) if a.calibrated else None
        res = run(shared, readers, a.workers, a.bootstrap, not a.no_progress, bool(a.curves), added,
                  sizes, a.draws)  # fmt: skip
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = markdown(res)
    print(md)
    if a.curves and res.get("curves"):
        from calibration.curve import plot_curve

        flat = {
            f"{src}, {how} order": c
            for src, cs in res["curves"].items()
            for how, c in cs.items()
            if how in ("random", "suggested")
        }
        plot_curve(flat, a.curves, chance=0.25)
        for label, c in flat.items():
            print(
                f"learning curve {label}: "
                + ", ".join(f"{n}: {m:.2f}" for n, m in zip(c["sizes"], c["mean"], strict=True))
            )
        for src, cs in res["curves"].items():
            d = cs["suggested_minus_random"]
            print(
                f"suggested - random, {src} (paired over {cs['random']['splits']} splits, mean +- SE): "
                + ", ".join(
                    f"{n}: {m:+.2f} +- {e:.2f}"
                    for n, m, e in zip(d["sizes"], d["mean"], d["se"], strict=True)
                )
            )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    if a.markdown:
        Path(a.markdown).write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
