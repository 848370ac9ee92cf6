"""Files written by ``harmony-eval summarize``: summary.md / .csv / .json, a PNG plot and an HTML image grid.

The HTML references the images as files (relative links from the run folder), so it stays small and
opens in any browser next to the images; nothing is inlined.
"""

from __future__ import annotations

import csv
import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harmony_eval.reader_info import READER_CSS, reader_html

from .runs import Run
from .summary import DIMENSIONS, METRICS, groups, to_markdown

_COLOURS = {"perfect": "#2e7d32", "acceptable": "#f9a825", "broken": "#c62828", None: "#757575"}
_CSV_FIELDS = ["section", "dimension", "group", "metric", "count", "n", "value", "lo", "hi"]


def write_csv(summary: dict[str, Any], path: Path) -> None:
    """Long ("tidy") table: one line per (section, group, metric) with count, n, value and interval."""
    lines: list[dict[str, Any]] = []

    def add(section: str, dim: str, group: str, metric: str, e: dict[str, Any]) -> None:
        lines.append(
            {
                "section": section,
                "dimension": dim,
                "group": group,
                "metric": metric,
                **{k: e.get(k) for k in ("count", "n", "value", "lo", "hi")},
            }
        )

    for m in METRICS:
        add("metrics", "overall", "all", m, summary["overall"][m])
    for dim, by_value in summary["groups"].items():
        for value, g in by_value.items():
            for m in METRICS:
                add("metrics", dim, value, m, g[m])
    for flag, e in summary["flags"].items():
        add("flags", "overall", "all", flag, e)
    for region, e in summary["region_match"].items():
        add("region_match", "region", region, "agrees_with_target", e)
    for region, c in summary["confusion"].items():
        for target, row in c["rows"].items():
            for col, count in row.items():
                lines.append(
                    {
                        "section": f"confusion_{region}",
                        "dimension": "target",
                        "group": target,
                        "metric": col,
                        "count": count,
                        "n": sum(row.values()),
                    }
                )
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
        w.writeheader()
        w.writerows(lines)


def write_plot(summary: dict[str, Any], path: Path) -> None:
    """Verdict rates with 95% error bars, one panel per dimension present among emotion and CFG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on CI machines
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [
        (dim, label) for dim, label in DIMENSIONS if dim in ("target", "cfg") and dim in summary["groups"]
    ]
    data = [(label, summary["groups"][dim]) for dim, label in panels] or [
        ("overall", {"all": summary["overall"]})
    ]
    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 3.8), squeeze=False)
    for ax, (label, by_value) in zip(axes[0], data, strict=True):
        names = list(by_value)
        x = np.arange(len(names))
        for i, verdict in enumerate(("perfect", "acceptable", "broken")):
            est = [by_value[v][f"{verdict}_rate"] for v in names]
            vals = np.array([e["value"] if e["value"] is not None else np.nan for e in est])
            lo = np.array([e["lo"] if e["lo"] is not None else np.nan for e in est])
            hi = np.array([e["hi"] if e["hi"] is not None else np.nan for e in est])
            ax.bar(
                x + (i - 1) * 0.27,
                vals,
                0.27,
                yerr=[vals - lo, hi - vals],
                capsize=3,
                color=_COLOURS[verdict],
                label=verdict,
            )
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1.2)  # headroom for the legend above 100%
        ax.set_xlabel(label)
        ax.set_ylabel("share of images")
        ax.set_title(f"verdicts by {label} (95% bootstrap CI)")
    axes[0][0].legend(loc="upper left", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cell(row: dict[str, Any], run_dir: Path) -> str:
    src = quote(Path(os.path.relpath(row["file"], run_dir)).as_posix())
    verdict = row.get("verdict")
    label = verdict or row.get("status", "?")
    h = row.get("harmony")
    tip = html.escape(f"{row['image']}: {row.get('reason') or ''} flags={','.join(row.get('flags') or [])}")
    score = f" {h:.2f}" if h is not None else ""
    seed = f" s{row['seed']}" if row.get("seed") is not None else ""
    if row.get("lora_scale") is not None:
        seed += f" LoRA {row['lora_scale']:g}"
    return (
        f'<figure title="{tip}"><img src="{src}" loading="lazy" alt="{html.escape(row["image"])}">'
        f'<figcaption><span class="badge" style="background:{_COLOURS.get(verdict, "#757575")}">'
        f"{html.escape(label)}</span>{score} {html.escape(str(row.get('emotion') or '-'))}{seed}"
        "</figcaption></figure>"
    )


def write_html(run: Run, summary: dict[str, Any], path: Path) -> None:
    """Image grid: rows = archetype x emotion, columns = CFG (whatever of those the run has)."""
    rows = sorted(run.rows, key=lambda r: r.get("order", 0))  # grid order when there is a manifest
    row_dims = [d for d in ("archetype", "target") if any(r.get(d) is not None for r in rows)]
    cfgs = list(groups(rows, "cfg")) or [None]
    grid: dict[tuple, dict[Any, list[dict]]] = {}
    for r in rows:
        key = tuple(r.get(d) for d in row_dims)
        grid.setdefault(key, {}).setdefault(r.get("cfg"), []).append(r)
    head = "".join(f"<th>{html.escape(d if d != 'target' else 'emotion')}</th>" for d in row_dims)
    head += "".join(f"<th>CFG {c}</th>" if c is not None else "<th>images</th>" for c in cfgs)
    body = []
    for key, by_cfg in grid.items():
        cells = "".join(f"<th>{html.escape(str(v))}</th>" for v in key)
        for c in cfgs:
            cells += "<td>" + "".join(_cell(r, path.parent) for r in by_cfg.get(c, [])) + "</td>"
        body.append(f"<tr>{cells}</tr>")
    o = summary["overall"]
    counts = ", ".join(f"{v} {o[f'{v}_rate']['count']}" for v in ("perfect", "acceptable", "broken"))
    harmony = "-" if o["harmony"]["value"] is None else f"{o['harmony']['value']:.3f}"
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>harmony-eval summary: {html.escape(run.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 4px; vertical-align: top; }}
figure {{ display: inline-block; margin: 2px; text-align: center; }}
img {{ width: 160px; height: auto; display: block; }}
figcaption {{ font-size: 12px; }}
.badge {{ color: white; border-radius: 3px; padding: 0 4px; }}
{READER_CSS}</style></head><body>
<h1>{html.escape(run.name)}</h1>
{reader_html(summary.get("reader"))}
<p>{summary["n"]} images: {counts}. Harmony {harmony}. Tables: <a href="summary.md">summary.md</a>,
<a href="summary.csv">summary.csv</a>. Hover an image for its reason and flags.</p>
<p><img src="summary.png" style="width:auto;max-width:100%" alt="verdict rates"></p>
<table><tr>{head}</tr>
{chr(10).join(body)}
</table></body></html>
"""
    path.write_text(doc, encoding="utf-8")


def write_summary(run: Run, summary: dict[str, Any], out_dir: Path | None = None) -> dict[str, Path]:
    """Write summary.md, .csv, .json, .png and .html into ``out_dir`` (default: the run folder)."""
    out = Path(out_dir) if out_dir else run.path
    out.mkdir(parents=True, exist_ok=True)
    files = {ext: out / f"summary.{ext}" for ext in ("md", "csv", "json", "png", "html")}
    files["md"].write_text(to_markdown(summary), encoding="utf-8")
    write_csv(summary, files["csv"])
    files["json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_plot(summary, files["png"])
    write_html(run, summary, files["html"])
    return files
