"""Compare runs: the summary tables side by side and paired tests of every run against the first.

Images are paired across runs on the same prompt + seed (+ CFG and whatever else makes the key unique,
see ``runs.pairing_fields``; a run sweeping LoRA scales is split into one run per scale first), or on the image file when a run has no manifest (two scorings of one
folder). Binary outcomes (perfect, broken, target match) use the exact McNemar test, harmony the paired
bootstrap (``stats``). p-values are per comparison and not adjusted: with 4 metrics x 2 challengers =
8 tests of equal runs, the chance of at least one p < 0.05 is up to 1 - 0.95^8 = 0.34 (compare p
with alpha / 8, Bonferroni, when that matters).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .runs import Run, pair_key, pairing_fields
from .stats import N_BOOT, SEED, mcnemar_test, paired_bootstrap
from .summary import DIMENSIONS, METRICS, fmt, summarize

#: Metrics tested pairwise and their per-image outcome (acceptable is neither good nor bad: not tested).
TESTED = ("perfect_rate", "broken_rate", "target_match", "harmony")
_LABELS = {
    "perfect_rate": "perfect rate",
    "broken_rate": "broken rate",
    "target_match": "target-match rate",
    "harmony": "mean harmony",
    "acceptable_rate": "acceptable rate",
}
_OUTCOME = {"perfect_rate": "perfect", "broken_rate": "broken", "target_match": "on target"}


def run_labels(runs: list[Run]) -> list[str]:
    """Folder names, or full paths when two runs share a folder name."""
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def _outcome(row: dict[str, Any], metric: str) -> float | None:
    if metric == "harmony":
        return row.get("harmony")
    if metric == "target_match":
        return None if not row.get("target") else float(row.get("emotion") == row["target"])
    if row.get("verdict") is None:
        return None
    return float(row["verdict"] == metric.removesuffix("_rate"))


def paired(a: Run, b: Run, fields: list[str], metric: str, n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """Paired test of ``b`` against ``a`` on ``metric`` over images both runs have an outcome for."""
    index = {pair_key(r, fields): r for r in a.rows}
    xs, ys = [], []
    for rb in b.rows:
        ra = index.get(pair_key(rb, fields))
        if ra is None:
            continue
        x, y = _outcome(ra, metric), _outcome(rb, metric)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    if metric == "harmony":
        t = paired_bootstrap(xs, ys, n_boot=n_boot, seed=seed).to_dict()
        t["floor"] = t["p"] is not None and t["p"] <= 1 / (n_boot + 1) + 1e-12
        return t
    return mcnemar_test([x > 0.5 for x in xs], [y > 0.5 for y in ys]).to_dict()


def sentence(
    metric: str, t: dict[str, Any], name_a: str, name_b: str, alpha: float
) -> tuple[str | None, bool, str]:
    """``(better run or None, significant, one plain sentence)`` for a paired test result."""
    label = _LABELS[metric]
    if t["n"] == 0:
        return None, False, f"{label}: no paired images with this outcome in both runs; not compared."
    higher_better = METRICS[metric]
    diff = t["diff"]
    digits = 3
    values = f"{name_a} {t['a']:.{digits}f} vs {name_b} {t['b']:.{digits}f}, difference {diff:+.{digits}f}"
    if t["test"] == "mcnemar":
        what = _OUTCOME[metric]
        how = (
            f"exact McNemar p = {t['p']:.3g} ({t['only_a']} images {what} only in {name_a}, {t['only_b']} "
            f"only in {name_b}, of {t['n']} pairs)"
        )
    else:
        # with no resample as extreme as the observed difference, p is 1 / (n_boot + 1): a bound
        p = f"p <= {t['p']:.2g}" if t.get("floor") else f"p = {t['p']:.3g}"
        how = f"paired bootstrap 95% CI [{t['lo']:+.3f}, {t['hi']:+.3f}], {p}, {t['n']} pairs"
    if abs(diff) < 1e-12:
        return None, False, f"{label}: {name_a} and {name_b} are equal ({values}; {how})."
    better = name_b if (diff > 0) == higher_better else name_a
    significant = t["p"] is not None and t["p"] < alpha
    if significant:
        return better, True, f"{label}: {better} is better ({values}); {how}: significant at {alpha}."
    return (
        better,
        False,
        (
            f"{label}: no significant difference ({values}); {how}: {better} is ahead, but by a "
            f"margin chance can explain (p >= {alpha})."
        ),
    )


def choose_pairing(runs: list[Run]) -> list[str]:
    """Prompt + seed (+ ...) pairing, unless pairing on the image file matches more images (e.g. a run
    whose prompts were reworded but whose grid and file names are the same)."""
    options = [pairing_fields(runs), ["image"]]

    def matched(fields: list[str]) -> int:
        base = {pair_key(r, fields) for r in runs[0].rows}
        return sum(len(base & {pair_key(r, fields) for r in run.rows}) for run in runs[1:])

    return max(options, key=matched)  # ties keep the first: prompt + seed


def split_lora_sweeps(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Runs and their labels, with every challenger that sweeps LoRA scales (``generate --lora-scales
    0,0.5,1``) split into one run per scale, labelled ``NAME (LoRA 0.5)``.

    Each scale is then compared with the reference on prompt + seed (+ CFG); left as one run, the
    sweep made ``lora_scale`` part of the pairing key, which the base run (no LoRA) never matched:
    "0 paired images" and every test "=".
    """
    labels = run_labels(runs)
    out_runs, out_labels = [runs[0]], [labels[0]]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        scales = sorted({r["lora_scale"] for r in run.rows if r.get("lora_scale") is not None})
        if not run.has_manifest or len(scales) < 2:
            out_runs.append(run)
            out_labels.append(label)
            continue
        for s in scales:
            out_runs.append(replace(run, rows=[r for r in run.rows if r.get("lora_scale") == s]))
            out_labels.append(f"{label} (LoRA {s:g})")
    return out_runs, out_labels


def compare_runs(
    runs: list[Run], alpha: float = 0.05, n_boot: int = N_BOOT, seed: int = SEED
) -> dict[str, Any]:
    """Summaries of every run and paired tests of runs[1:] against runs[0] (JSON-ready)."""
    if len(runs) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(runs)}")
    runs, names = split_lora_sweeps(runs)
    fields = choose_pairing(runs)
    out: dict[str, Any] = {
        "runs": names,
        "paths": [str(r.path) for r in runs],
        "pairing": fields,
        "alpha": alpha,
        "summaries": [summarize(r, n_boot, seed) for r in runs],
        "tests": [],
    }
    for run_b, name_b in zip(runs[1:], names[1:], strict=True):
        keys_a = {pair_key(r, fields) for r in runs[0].rows}
        keys_b = {pair_key(r, fields) for r in run_b.rows}
        entry: dict[str, Any] = {
            "a": names[0],
            "b": name_b,
            "n_pairs": len(keys_a & keys_b),
            "only_in_a": len(keys_a - keys_b),
            "only_in_b": len(keys_b - keys_a),
            "metrics": {},
        }
        for m in TESTED:
            t = paired(runs[0], run_b, fields, m, n_boot, seed)
            better, significant, text = sentence(m, t, names[0], name_b, alpha)
            entry["metrics"][m] = {**t, "better": better, "significant": significant, "sentence": text}
        out["tests"].append(entry)
    return out


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def to_markdown(result: dict[str, Any]) -> str:
    """Side-by-side tables (one per metric: groups x runs), then the paired tests and their sentences."""
    names, sums = result["runs"], result["summaries"]
    parts = [
        f"# Comparison of {', '.join(names)}",
        "",
        f"Pairing on {' + '.join(result['pairing'])}; every run is tested against {names[0]}; "
        "brackets are 95% bootstrap intervals.",
        "",
    ]
    group_rows: list[tuple[str, str | None, str | None]] = [("**overall**", None, None)]
    for dim, label in DIMENSIONS:
        values: list[str] = []
        for s in sums:
            values += [v for v in s["groups"].get(dim, {}) if v not in values]
        group_rows += [(f"{label}={v}", dim, v) for v in values]
    for m in METRICS:
        body = []
        for label, dim, value in group_rows:
            cells = []
            for s in sums:
                g = s["overall"] if dim is None else s["groups"].get(dim, {}).get(value)
                cells.append(f"{fmt(g[m])} (n={g['n']})" if g else "-")
            body.append([label, *cells])
        parts += [f"## {_LABELS[m]}", "", _table(["group", *names], body), ""]
    parts += ["## Paired tests", ""]
    for t in result["tests"]:
        parts.append(
            f"### {t['b']} vs {t['a']} ({t['n_pairs']} paired images; {t['only_in_a']} only in {t['a']}, "
            f"{t['only_in_b']} only in {t['b']})"
        )
        parts.append("")
        body = [
            [
                _LABELS[m],
                f"{r['a']:.3f}" if r["a"] is not None else "-",
                f"{r['b']:.3f}" if r["b"] is not None else "-",
                f"{r['diff']:+.3f}" if r["diff"] is not None else "-",
                r["test"],
                f"{r['p']:.3g}" if r["p"] is not None else "-",
                (r["better"] or "=") + (" *" if r["significant"] else ""),
            ]
            for m, r in t["metrics"].items()
        ]
        parts += [
            _table(["metric", t["a"], t["b"], "B - A", "test", "p", "better (* significant)"], body),
            "",
        ]
        parts += [f"- {r['sentence']}" for r in t["metrics"].values()]
        parts.append("")
    return "\n".join(parts)
