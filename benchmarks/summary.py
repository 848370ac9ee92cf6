"""Aggregate one run into rates with bootstrap intervals: overall and by archetype, emotion, CFG, LoRA scale.

Definitions (``n`` = images in the group):

- ``perfect_rate`` / ``acceptable_rate`` / ``broken_rate`` = share of the group's *scored* images
  (verdict not null; ``error`` rows have no verdict and are counted in ``errors`` instead);
- ``target_match`` = share of images with a target whose top emotion equals the target (an image
  with no face shows no emotion, so it counts as a miss);
- ``harmony`` = mean harmony over images that have one;
- flags: share of all images carrying each flag;
- region confusion: for each region, target (rows) x the region's top emotion (columns, ``missing``
  when the region was not read), and the share of images where the region agrees with the target.

Every estimate carries a seeded percentile-bootstrap 95% interval (``stats.bootstrap_rate``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harmony_eval.verdict import FLAGS

from .runs import VERDICTS, Run
from .stats import N_BOOT, SEED, Estimate, bootstrap_mean, bootstrap_rate

#: Grouping dimensions: (row key, label in tables).
DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("archetype", "archetype"),
    ("target", "emotion"),
    ("cfg", "CFG"),
    ("lora_scale", "LoRA scale"),
)
#: Metrics in table order; ``higher_is_better`` per metric (used by compare and check).
METRICS: dict[str, bool] = {
    "perfect_rate": True,
    "acceptable_rate": True,
    "broken_rate": False,
    "target_match": True,
    "harmony": True,
}
CONFUSION_REGIONS = ("overall", "eyes", "left_eye", "right_eye", "brows", "mouth", "face")


def _top(probs: dict[str, float] | None) -> str | None:
    if not probs:
        return None
    return max(probs, key=lambda e: probs[e])


def region_emotion(row: dict[str, Any], region: str) -> str | None:
    """Top emotion of a region (``overall`` = the row's ``emotion``); ``None`` when not read."""
    if region == "overall":
        return row.get("emotion")
    reg = (row.get("regions") or {}).get(region) or {}
    return _top(reg.get("probs"))


def metric_values(rows: list[dict[str, Any]], metric: str) -> list[float]:
    """Per-image values whose mean is ``metric`` (0/1 for rates; harmony values); rows without one skipped."""
    if metric == "harmony":
        return [float(r["harmony"]) for r in rows if r.get("harmony") is not None]
    if metric == "target_match":
        return [float(r.get("emotion") == r["target"]) for r in rows if r.get("target")]
    if metric.endswith("_rate") and metric[: -len("_rate")] in VERDICTS:
        verdict = metric[: -len("_rate")]
        return [float(r["verdict"] == verdict) for r in rows if r.get("verdict") is not None]
    raise ValueError(f"Unknown metric {metric!r}; choose one of {list(METRICS)}.")


def metric_estimate(
    rows: list[dict[str, Any]], metric: str, n_boot: int = N_BOOT, seed: int = SEED
) -> Estimate:
    values = metric_values(rows, metric)
    if metric == "harmony":
        return bootstrap_mean(values, n_boot=n_boot, seed=seed)
    return bootstrap_rate([v > 0.5 for v in values], n_boot=n_boot, seed=seed)


def group_metrics(rows: list[dict[str, Any]], n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Any]:
    """``{"n", "scored", "errors", "no_face", <metric>: Estimate dict}`` for one group of rows."""
    out: dict[str, Any] = {
        "n": len(rows),
        "scored": sum(r.get("verdict") is not None for r in rows),
        "errors": sum(r.get("status") == "error" for r in rows),
        "no_face": sum(r.get("status") == "no_face" for r in rows),
    }
    for m in METRICS:
        out[m] = metric_estimate(rows, m, n_boot, seed).to_dict()
    return out


def _sort_key(dim: str) -> Callable[[Any], Any]:
    if dim in ("cfg", "lora_scale"):
        return lambda v: (0, float(v)) if isinstance(v, (int, float)) else (1, str(v))
    if dim == "target":
        try:
            from harmony_eval.resources import emotions_table

            order = list(emotions_table())
        except Exception:  # prompts folder unavailable: fall back to alphabetical
            order = []
        return lambda v: (order.index(v) if v in order else len(order), str(v))
    return lambda v: str(v)


def groups(rows: list[dict[str, Any]], dim: str) -> dict[Any, list[dict[str, Any]]]:
    """Rows split by ``dim`` (rows where it is ``None`` left out), values in display order."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get(dim) is not None:
            out.setdefault(r[dim], []).append(r)
    if dim in ("cfg", "lora_scale", "target"):
        return {k: out[k] for k in sorted(out, key=_sort_key(dim))}
    # anything else (archetypes): the grid's order, i.e. the first manifest row of each value
    return {k: out[k] for k in sorted(out, key=lambda k: min(r.get("order", 1 << 30) for r in out[k]))}


def confusion(rows: list[dict[str, Any]], region: str) -> dict[str, Any] | None:
    """Target x region top emotion counts; ``None`` when no row with a target has this region read."""
    with_target = [r for r in rows if r.get("target")]
    preds = [region_emotion(r, region) for r in with_target]
    if not any(p is not None for p in preds):
        return None
    targets = list(groups(with_target, "target"))
    labels = sorted({p for p in preds if p is not None} | set(targets), key=_sort_key("target"))
    cols = [*labels, "missing"]
    matrix = {t: dict.fromkeys(cols, 0) for t in targets}
    for r, p in zip(with_target, preds, strict=True):
        matrix[r["target"]][p if p is not None else "missing"] += 1
    return {"columns": cols, "rows": matrix}


def summarize(run: Run, n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Any]:
    """JSON-ready summary of a loaded run (see the module docstring for every definition)."""
    rows = run.rows
    summary: dict[str, Any] = {
        "run": str(run.path),
        "n": len(rows),
        "has_manifest": run.has_manifest,
        "unmatched_results": run.unmatched,
        "not_scored": run.not_scored,
        "backend": sorted({str(r.get("backend")) for r in rows if r.get("backend")}),
        "reader": run.meta.get("reader"),  # run.json's: which reader, calibrated or not, its accuracy
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "method": "percentile"},
        "overall": group_metrics(rows, n_boot, seed),
        "groups": {},
        "flags": {},
        "region_match": {},
        "confusion": {},
    }
    for dim, _ in DIMENSIONS:
        g = groups(rows, dim)
        if g:
            summary["groups"][dim] = {str(k): group_metrics(v, n_boot, seed) for k, v in g.items()}
    for flag in FLAGS:
        est = bootstrap_rate([flag in (r.get("flags") or []) for r in rows], n_boot=n_boot, seed=seed)
        summary["flags"][flag] = est.to_dict()
    for region in CONFUSION_REGIONS:
        c = confusion(rows, region)
        if c is None:
            continue
        summary["confusion"][region] = c
        hits = [region_emotion(r, region) == r["target"] for r in rows if r.get("target")]
        summary["region_match"][region] = bootstrap_rate(hits, n_boot=n_boot, seed=seed).to_dict()
    return summary


# -- Markdown -----------------------------------------------------------------------------------------
def fmt(e: dict[str, Any] | None, digits: int = 2) -> str:
    """``0.42 [0.28, 0.56]`` from an Estimate dict (``-`` when empty)."""
    if not e or e.get("value") is None:
        return "-"
    return Estimate(**e).fmt(digits)


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _metric_row(label: str, g: dict[str, Any]) -> list[str]:
    counts = "/".join(str(g[f"{v}_rate"]["count"] or 0) for v in VERDICTS)
    return [label, str(g["n"]), counts, *(fmt(g[m]) for m in METRICS)]


METRIC_HEADER = ["n", "P/A/B", "perfect", "acceptable", "broken", "target match", "harmony"]


def main_table(summary: dict[str, Any]) -> str:
    """One table: the overall row, then one row per group of every dimension present."""
    body = [_metric_row("**overall**", summary["overall"])]
    for dim, label in DIMENSIONS:
        for value, g in summary["groups"].get(dim, {}).items():
            body.append(_metric_row(f"{label}={value}", g))
    return _table(["group", *METRIC_HEADER], body)


def to_markdown(summary: dict[str, Any], matrices: bool = True) -> str:
    """The Markdown report: main table, flags, region agreement and (``matrices``) the confusion matrices."""
    b = summary["bootstrap"]
    parts = [
        f"# Summary of {summary['run']}",
        "",
        f"{summary['n']} images; backend {', '.join(summary['backend']) or '-'}. Rates are over scored images "
        f"(P/A/B = perfect/acceptable/broken counts), harmony is the mean over images with a face; brackets are {int(b['level'] * 100)}% percentile-bootstrap "
        f"intervals ({b['n_boot']} resamples, seed {b['seed']}).",
    ]
    if isinstance(summary.get("reader"), dict):
        from harmony_eval.reader_info import summary_line

        parts.append("\n" + summary_line(summary["reader"]).replace("reader:", "**Reader:**", 1))
    if summary["not_scored"]:
        parts.append(
            f"\n**Warning:** {len(summary['not_scored'])} manifest image(s) have no results row "
            f"(first: {summary['not_scored'][0]})."
        )
    parts += ["", main_table(summary), "", "## Flags", ""]
    flag_rows = [[f, str(e["count"]), fmt(e)] for f, e in summary["flags"].items() if e["count"]]
    parts.append(_table(["flag", "count", "rate"], flag_rows) if flag_rows else "No flags raised.")
    if summary["region_match"]:
        parts += [
            "",
            "## Regions against the target",
            "",
            _table(
                ["region", "agrees with target"], [[r, fmt(e)] for r, e in summary["region_match"].items()]
            ),
        ]
        for region, c in summary["confusion"].items() if matrices else ():
            parts += [
                "",
                f"### {region}: target (rows) x top emotion (columns)",
                "",
                _table(
                    ["target", *c["columns"]],
                    [[t, *(str(row[col]) for col in c["columns"])] for t, row in c["rows"].items()],
                ),
            ]
    return "\n".join(parts) + "\n"
