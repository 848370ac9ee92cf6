"""The calibration report: ``report.json`` (machine-readable), ``report.md``, ``report.html`` and PNG plots
(confusion matrices, reliability diagrams before / after) in ``plots/``.

``report.json``: ``n``, ``cv``, and per target (``face``, ``eyes``, ``brows``, ``mouth``, ``verdict``,
plus ``holistic``) ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``kappa``, ``ece_before``,
``ece_after`` (after calibration unless named ``_before``), each with ``[low, high]`` under ``ci95``;
``before`` holds the uncalibrated tool's figures; ``confusion`` the after-calibration matrix.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M

TITLES = {
    "face": "Whole-face emotion (face model)",
    "holistic": "Tool output `probs` (pooled regions) vs the emotion label",
    "eyes": "Eyes",
    "brows": "Brows",
    "mouth": "Mouth",
    "verdict": "Verdict",
}
_ROWS = ("accuracy", "balanced_accuracy", "macro_f1", "kappa")


def figures(results: dict[str, dict[str, Any]], n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Metrics with bootstrap intervals for every target of ``evaluate.evaluate``."""
    out = {}
    for target, d in results.items():
        probs = target != "verdict"
        after = M.evaluate(
            d["y"], d["after"], classes=d["classes"], n_boot=n_boot, seed=seed,
            proba_before=d.get("proba_before") if probs else None, proba_after=d.get("proba_after") if probs else None,
        )  # fmt: skip
        before = M.evaluate(d["y"], d["before"], classes=d["classes"], n_boot=n_boot, seed=seed)
        after["before"] = {k: before[k] for k in _ROWS} | {"ci95": {k: before["ci95"][k] for k in _ROWS}}
        after["before"]["confusion"] = before["confusion"]
        if not probs:
            after["ece_note"] = "the verdict is a decision, not a probability: no calibration error"
        out[target] = after
    return out


def _plot_confusions(target: str, fig: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (name, conf) in zip(
        axes, (("before", fig["before"]["confusion"]), ("after", fig["confusion"])), strict=True
    ):
        m, labels = np.array(conf["matrix"]), conf["labels"]
        ax.imshow(m, cmap="Blues")
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted"), ax.set_ylabel("human label")
        ax.set_title(f"{target}: {name} calibration")
    f.tight_layout()
    f.savefig(path, dpi=100)
    plt.close(f)


def _plot_reliability(target: str, d: dict[str, Any], fig: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = {c: k for k, c in enumerate(d["classes"])}
    y_idx = np.array([col.get(t, -1) for t in d["y"]])
    f, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    for name, proba, style in (("before", d["proba_before"], "o-"), ("after", d["proba_after"], "s-")):
        r = M.reliability(proba, y_idx)
        keep = r["count"] > 0
        ece = fig[f"ece_{name}"]
        ax.plot(r["confidence"][keep], r["accuracy"][keep], style, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (top probability)"), ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_title(f"{target}: reliability")
    ax.legend(loc="upper left", fontsize=8)
    f.tight_layout()
    f.savefig(path, dpi=100)
    plt.close(f)


def _fmt(v: float | None, ci: list | None = None) -> str:
    if v is None:
        return "n/a"
    s = f"{v:.3f}"
    if ci and ci[0] is not None:
        s += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return s


def _tables(figs: dict[str, dict[str, Any]]) -> list[tuple[str, list[list[str]]]]:
    out = []
    for target in ("face", "holistic", "eyes", "brows", "mouth", "verdict"):
        if target not in figs:
            continue
        f = figs[target]
        rows = [["metric", "before calibration", "after calibration"]]
        for k in _ROWS:
            rows.append([k, _fmt(f["before"][k], f["before"]["ci95"][k]), _fmt(f[k], f["ci95"][k])])
        if target != "verdict":
            rows.append(
                [
                    "ece",
                    _fmt(f["ece_before"], f["ci95"]["ece_before"]),
                    _fmt(f["ece_after"], f["ci95"]["ece_after"]),
                ]
            )
        out.append((f"{TITLES[target]} (n={f['n']})", rows))
    return out


def write_report(
    out_dir: Path,
    summary: dict[str, Any],
    results: dict[str, dict[str, Any]],
    figs: dict[str, dict[str, Any]],
) -> dict[str, Path]:
    """Write report.json / .md / .html and plots; returns their paths."""
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    images: dict[str, list[str]] = {}
    for target, f in figs.items():
        _plot_confusions(target, f, plots / f"confusion_{target}.png")
        images[target] = [f"plots/confusion_{target}.png"]
        if target != "verdict":
            _plot_reliability(target, results[target], f, plots / f"reliability_{target}.png")
            images[target].append(f"plots/reliability_{target}.png")
    report = {**summary, **figs}
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")

    how = f"{summary['cv']}-fold cross-validation" if summary.get("cv") else "a stratified 25% hold-out split"
    intro = [
        f"Labels: `{summary['labels']}` ({summary['n_labelled']} rows used, {summary['n_dropped']} dropped); "
        f"images: `{summary['images']}`; backend: `{summary['backend']}`; emotions: {', '.join(summary['emotions'])}.",
        f"Scored: {summary['n']} images ({summary['n_no_face']} without a face, {summary['n_error']} unreadable).",
        f"Figures are out-of-sample, from {how}: each image is judged by a calibration fitted without it. "
        "Brackets: 95% bootstrap intervals. ECE: expected calibration error of the top label, 10 bins; "
        "resampling repeats images, which adds noise to the bins and biases ECE upwards, so its "
        "interval can lie above the point value.",
        f"Calibration file: `{summary['calibration_file']}` (fitted on all labelled images).",
    ]
    copies = [
        f"Copies: {summary['n_copies']} labelled images are copies of another labelled image (the same "
        "drawing: for example an RGBA sprite and the same sprite on white). Copies of one drawing are kept "
        "on one side of every split (hold-out or folds, model choice, learning curve) and count as one "
        "labelled drawing, so no figure here is measured on a copy of an image the calibration was fitted on."
    ] if summary.get("n_copies") else []  # fmt: skip
    for d in summary.get("copies_labelled_differently") or ():
        pairs = ", ".join(
            f"`{Path(f).name}` {v or '(none)'}" for f, v in zip(d["files"], d["labels"], strict=True)
        )
        copies.append(f"Copies labelled differently ({d['target']}), check them: {pairs}.")
    intro[2:2] = copies  # after what was scored, before how the figures were measured
    for region, m in summary.get("models", {}).items():
        kind = "the backend's reading" if m.get("kind") == "scaling" else "a classifier on the features"
        ll = ", ".join(f"{c} {v}" for c, v in (m.get("cv_log_loss") or {}).items())
        rare = ", ".join(m.get("dropped_classes") or ())
        intro.append(
            f"Model `{region}`: {kind}, {m.get('calibration', '')}"
            + (f" (CV log loss: {ll})" if ll else "")
            + (
                f"; too few labels (under 2 drawings) for {rare}: the backend's reading of those stands"
                if rare
                else ""
            )
            + "."
        )
    if summary.get("verdict_thresholds"):
        intro.append(f"Verdict thresholds chosen: {json.dumps(summary['verdict_thresholds'])}.")
    md = ["# Calibration report", "", *[f"- {s}" for s in intro], ""]
    body = ["<h1>Calibration report</h1>", "<ul>", *[f"<li>{html.escape(s)}</li>" for s in intro], "</ul>"]
    for (title, rows), target in zip(_tables(figs), [t for t in TITLES if t in figs], strict=True):
        md += [f"## {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        md += ["", *[f"![{target}]({p})" for p in images[target]], ""]
        body += [f"<h2>{html.escape(title)}</h2>", "<table>"]
        body += ["<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:]]
        body += ["</table>", *[f'<img src="{p}" alt="{target}">' for p in images[target]]]
    lc = summary.get("learning_curve")
    if lc:
        title = "Learning curve: how many labels your style needs"
        if "error" in lc:
            md += [f"## {title}", "", f"Not drawn: {lc['error']}", ""]
            body += [f"<h2>{title}</h2>", f"<p>Not drawn: {html.escape(lc['error'])}</p>"]
        else:
            text = (
                f"Balanced accuracy of the face reading on a fixed test split of {lc['n_test']} images, fitted "
                f"on the first N of the other labelled images ({lc['repeats']} random orders; brackets: the "
                "range over orders). N = 0 is the backend's reading without calibration."
            )
            cells = [
                f"{n}: {m:.2f} [{lo:.2f}, {hi:.2f}]"
                for n, m, (lo, hi) in zip(lc["sizes"], lc["mean"], lc["ci95"], strict=True)
            ]
            md += [
                f"## {title}",
                "",
                text,
                "",
                "; ".join(cells),
                "",
                "![learning curve](plots/learning_curve.png)",
                "",
            ]
            body += [
                f"<h2>{title}</h2>",
                f"<p>{html.escape(text)}</p>",
                f"<p>{html.escape('; '.join(cells))}</p>",
            ]
            body += ['<img src="plots/learning_curve.png" alt="learning curve">']
    weak = [r for r, m in summary.get("models", {}).items() if m.get("weak_labels")]
    if weak:
        note = (
            f"Weak labels: {', '.join(weak)} had no label column, so each face's emotion label stood for "
            "its region's. Region readers fitted this way learn what the whole face shows; label regions "
            "(eyes, brows, mouth columns) where they disagree."
        )
        md += [f"- {note}", ""]
        body += [f"<p>{html.escape(note)}</p>"]
    paths["md"].write_text("\n".join(md) + "\n", encoding="utf-8")
    style = "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:100%}"
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Calibration report</title><style>{style}</style></head><body>\n"
        + "\n".join(body) + "\n</body></html>\n", encoding="utf-8",
    )  # fmt: skip
    return paths
