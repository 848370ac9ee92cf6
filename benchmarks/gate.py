"""CI regression gate: compare a run's metrics with a committed baseline JSON.

A metric *regresses* when it moves the bad way by more than ``max_drop`` (absolute, metrics are in
[0, 1]): ``baseline - current > max_drop`` for harmony, perfect_rate, target_match;
``current - baseline > max_drop`` for broken_rate. It is checked overall and for every target emotion
the baseline lists. When the baseline stores per-image harmony and verdicts, the images that moved
most and the verdicts that changed are reported; ``max_image_delta`` (optional, "strict" mode) also
fails the check when any image moved further than that in either direction, changed verdict or is
missing (the project's own gate uses it: any change to the evaluator's scores is seen).

A gate judges the baseline's images, not whatever the run still has: when the baseline stores
per-image values, metrics are computed over the baseline's images only. An image the run lost (no
row, an ``error`` row, or no harmony where the baseline had one) counts against it: harmony 0 and
verdict ``broken``. Coverage (images scored, faces read) is a check of its own: a drop of more than
``max_coverage_drop`` images fails. Images new in the run are reported, not judged. ``max_changed``
fails the gate when more images than that changed (verdict, or harmony by more than the per-image
tolerance, or lost). Before this, a run that lost half its faces passed: harmony was averaged over
the faces still found.

The baseline file (its format, writing, reading and validation) is ``benchmarks.baselines``; its
functions are re-exported here, so ``from benchmarks.gate import read_baseline`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .baselines import (
    FORMAT,
    config_hash,
    make_baseline,
    mean_or_none,
    read_baseline,
    round_metric,
    run_metrics,
    write_baseline,
)
from .runs import Run, RunError
from .summary import METRICS, groups, metric_values

__all__ = [
    "COVERAGE",
    "DEFAULT_METRICS",
    "FORMAT",
    "CheckResult",
    "CheckRow",
    "align",
    "check",
    "config_hash",
    "format_result",
    "make_baseline",
    "read_baseline",
    "run_metrics",
    "write_baseline",
]
_EPS = 1e-9  # float noise: a drop of exactly max_drop passes
#: Metrics checked when none is named: verdict rates as well as harmony (a run can keep its mean
#: harmony and still break more faces).
DEFAULT_METRICS = ("harmony", "perfect_rate", "broken_rate")
#: Coverage checks: name -> does a row count (images with a verdict; faces that got a harmony).
COVERAGE = {
    "images_scored": lambda r: r.get("verdict") is not None,
    "faces_read": lambda r: r.get("harmony") is not None,
}


@dataclass
class CheckRow:
    scope: str
    metric: str
    baseline: float | None
    current: float | None
    n: int
    status: str  # ok | REGRESSED | missing

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


@dataclass
class CheckResult:
    rows: list[CheckRow]
    max_drop: float
    image_moves: list[tuple[str, float, float | None]] = field(default_factory=list)  # (image, base, now)
    images_missing: int = 0
    verdict_changes: list[tuple[str, str | None, str | None]] = field(
        default_factory=list
    )  # (image, was, now)
    max_image_delta: float | None = None
    notes: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # baseline images without a score in the run
    new_images: list[str] = field(default_factory=list)  # run images the baseline does not have
    changed: list[str] = field(default_factory=list)  # images beyond the per-image tolerance
    max_changed: int | None = None
    warnings: list[str] = field(default_factory=list)  # what was not compared like with like
    strict: bool = False  # warnings fail the check

    @property
    def image_failures(self) -> list[tuple[str, float, float | None]]:
        if self.max_image_delta is None:
            return []
        return [m for m in self.image_moves if m[2] is None or abs(m[2] - m[1]) > self.max_image_delta + _EPS]

    @property
    def too_many_changed(self) -> bool:
        return self.max_changed is not None and len(self.changed) > self.max_changed

    @property
    def passed(self) -> bool:
        strict = self.max_image_delta is not None  # per-image mode: any moved image or verdict fails
        return (
            all(r.status == "ok" for r in self.rows)
            and not (strict and (self.image_failures or self.images_missing or self.verdict_changes))
            and not self.too_many_changed
            and not (self.strict and self.warnings)
        )


def align(baseline: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's rows for the baseline's images, in the baseline's order, and the images it lost.

    A lost image (no row, an ``error`` row, or no harmony where the baseline had one) gets verdict
    ``broken`` and harmony 0, so it lowers the run's metrics instead of leaving their denominator.
    Without per-image values in the baseline the rows are returned as they are."""
    images = baseline.get("images") or {}
    verdicts = baseline.get("verdicts") or {}
    keys = list(dict.fromkeys([*images, *verdicts]))
    if not keys:
        return rows, []
    targets = baseline.get("targets") or {}
    now = {r["image"]: r for r in rows}
    out, lost = [], []
    for img in keys:
        r = dict(now.get(img) or {"image": img, "status": "missing", "target": targets.get(img)})
        if verdicts.get(img) is not None and r.get("verdict") is None:
            r["verdict"] = "broken"
        if images.get(img) is not None and r.get("harmony") is None:
            r["harmony"] = 0.0
        if img not in now or r != now[img]:
            lost.append(img)
        out.append(r)
    return out, lost


def _coverage(baseline: dict[str, Any], rows: list[dict[str, Any]], max_drop: int) -> list[CheckRow]:
    """Images scored and faces read: the baseline's count (over its images) against the run's."""
    images, verdicts = baseline.get("images") or {}, baseline.get("verdicts") or {}
    keys = set(images) | set(verdicts)
    if keys:
        base = {"images_scored": sum(v is not None for v in verdicts.values()) if verdicts else None,
                "faces_read": sum(h is not None for h in images.values()) if images else None}  # fmt: skip
        rows = [r for r in rows if r["image"] in keys]
    else:  # a baseline without per-image values: its counts per metric
        n_by = baseline.get("n_by_metric") or {}
        base = {"images_scored": n_by.get("perfect_rate"), "faces_read": n_by.get("harmony")}
    out = []
    for name, counts in COVERAGE.items():
        if base[name] is None:
            continue
        now = sum(bool(counts(r)) for r in rows)
        status = "REGRESSED" if base[name] - now > max_drop else "ok"
        out.append(CheckRow("coverage", name, base[name], now, len(keys) or len(rows), status))
    return out


def check(
    baseline: dict[str, Any],
    run: Run,
    metrics: list[str] | tuple[str, ...] = DEFAULT_METRICS,
    max_drop: float = 0.05,
    max_image_delta: float | None = None,
    max_changed: int | None = None,
    max_coverage_drop: int = 0,
    strict: bool = False,
) -> CheckResult:
    """Compare ``run`` with ``baseline`` on ``metrics`` over the baseline's images (see the module
    docstring); raises :class:`RunError` when a metric can't be checked."""
    if max_drop < 0:
        raise ValueError(f"`max_drop` must be >= 0, got {max_drop}")
    if max_changed is not None and max_changed < 0:
        raise ValueError(f"`max_changed` must be >= 0, got {max_changed}")
    judged, lost = align(baseline, run.rows)
    rows: list[CheckRow] = []
    warnings: list[str] = []
    current, counts = run_metrics(judged)
    by_target = groups(judged, "target")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"Unknown metric {m!r}; choose from {list(METRICS)}.")
        if baseline["metrics"].get(m) is None:
            raise RunError(
                f"the baseline has no value for {m!r} (it has {sorted(k for k, v in baseline['metrics'].items() if v is not None)}); "
                "rewrite it with --write-baseline or pick another --metric"
            )
        if m == "target_match" and not any(r.get("target") for r in run.rows):
            raise RunError(f"{run.path}: no image has a target, so target_match cannot be checked; score with "
                           "--targets CSV or a manifest.jsonl, or pick another --metric")  # fmt: skip
        # Other metrics without a value (e.g. harmony when no image has a face) are a regression, not
        # bad input: _row marks them "missing", which fails the check.
        rows.append(_row("overall", m, baseline["metrics"][m], current[m], counts[m], max_drop))
        for emotion, base in (baseline.get("by_emotion") or {}).items():
            if base.get(m) is None:  # skipped silently before: say so, and fail under --strict
                warnings.append(f"the baseline has no {m} for emotion={emotion}: not checked there")
                continue
            if emotion not in by_target:
                rows.append(CheckRow(f"emotion={emotion}", m, base[m], None, 0, "missing"))
                continue
            vals = metric_values(by_target[emotion], m)
            rows.append(_row(f"emotion={emotion}", m, base[m], mean_or_none(vals), len(vals), max_drop))
    rows += _coverage(baseline, run.rows, max_coverage_drop)
    unlisted = sorted(set(by_target) - set(baseline.get("by_emotion") or {}) - {None})
    if unlisted and baseline.get("by_emotion") is not None:
        warnings.append(
            f"emotion(s) {unlisted} are in the run but not in the baseline: not checked per emotion"
        )
    result = CheckResult(rows, max_drop, max_image_delta=max_image_delta, lost=lost, max_changed=max_changed,
                         warnings=warnings, strict=strict)  # fmt: skip
    images = baseline.get("images") or {}
    verdicts = baseline.get("verdicts") or {}
    now_rows = {r["image"]: r for r in run.rows}
    if images or verdicts:
        result.new_images = [img for img in now_rows if img not in images and img not in verdicts]
    if images:
        now = {img: r.get("harmony") for img, r in now_rows.items()}
        moves = [(img, h, now.get(img)) for img, h in images.items() if h is not None and img in now]
        result.images_missing = sum(img not in now for img in images)
        moves.sort(key=lambda m: -(abs(m[2] - m[1]) if m[2] is not None else 2.0))
        result.image_moves = moves
    if verdicts:
        now_v = {img: r.get("verdict") for img, r in now_rows.items()}
        result.verdict_changes = [
            (img, v, now_v[img]) for img, v in verdicts.items() if img in now_v and now_v[img] != v
        ]
    tol = max_image_delta if max_image_delta is not None else max_drop
    lost_set = set(lost)
    for img in dict.fromkeys([*images, *verdicts]):
        r = now_rows.get(img, {})
        b, h = images.get(img), r.get("harmony")
        moved = b is not None and h is not None and abs(h - b) > tol + _EPS
        if img in lost_set or moved or (verdicts and r.get("verdict") != verdicts.get(img)):
            result.changed.append(img)
    if (images or verdicts) and not any(img in now_rows for img in [*images, *verdicts]):
        result.notes.append(
            f"no baseline image is in the run (baseline names e.g. {next(iter(images or verdicts))!r}, "
            f"run names e.g. {next(iter(now_rows), None)!r}): score the same images"
        )
    h = config_hash(run)
    if baseline.get("config_hash") and h and h != baseline["config_hash"]:
        result.warnings.append(
            f"scoring config differs from the baseline's (config_hash {h} vs {baseline['config_hash']}): "
            "scores may differ because the settings did; rescore with the baseline's settings or rewrite it"
        )
    return result


def _row(scope: str, metric: str, base: float, now: float | None, n: int, max_drop: float) -> CheckRow:
    if now is None:
        return CheckRow(scope, metric, base, None, n, "missing")
    now = round_metric(now)  # the baseline stores 6 decimals: compare like with like (no "-0.0000" changes)
    loss = (base - now) if METRICS[metric] else (now - base)
    return CheckRow(scope, metric, base, now, n, "REGRESSED" if loss > max_drop + _EPS else "ok")


def _names(items: list[str], top: int) -> str:
    return ", ".join(items[:top]) + (f" ... (+{len(items) - top})" if len(items) > top else "")


def format_result(result: CheckResult, top: int = 10) -> str:
    """Readable report: the table of checks, the images that moved most, and a one-line verdict."""

    def f(v: float | None, sign: bool = False) -> str:
        if isinstance(v, int):  # coverage counts
            return f"{v:+d}" if sign else str(v)
        return "-" if v is None else (f"{v:+.4f}" if sign else f"{v:.4f}")

    head = ("scope", "metric", "baseline", "current", "change", "n", "status")
    body = [
        (r.scope, r.metric, f(r.baseline), f(r.current), f(r.change, True), str(r.n), r.status)
        for r in result.rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]
    ]
    if result.image_moves:
        moved = [m for m in result.image_moves[:top] if m[2] is None or abs(m[2] - m[1]) > 0]
        if moved:
            lines += ["", f"images that moved most (harmony, of {len(result.image_moves)} matched):"]
            lines += [
                f"  {img}: {f(b)} -> "
                + ("no harmony (no face read)" if n is None else f"{f(n)} ({f(n - b, True)})")
                for img, b, n in moved
            ]
        else:
            lines += ["", f"all {len(result.image_moves)} images have the baseline's harmony"]
    if result.verdict_changes:
        lines += ["", f"verdicts that changed ({len(result.verdict_changes)}):"]
        lines += [f"  {img}: {was} -> {now}" for img, was, now in result.verdict_changes[:top]]
    if result.images_missing:
        lines.append(f"{result.images_missing} baseline image(s) are not in the run")
    if result.lost:
        lines.append(
            f"{len(result.lost)} baseline image(s) lost their score in the run (judged as harmony 0, "
            f"broken): {_names(result.lost, top)}"
        )
    if result.new_images:
        lines.append(
            f"{len(result.new_images)} image(s) not in the baseline (reported, not judged): "
            + _names(result.new_images, top)
        )
    if result.max_changed is not None:
        lines.append(
            f"{len(result.changed)} image(s) changed beyond tolerance (allowed {result.max_changed})"
        )
    lines += [f"note: {n}" for n in result.notes]
    lines += [
        f"warning: {w}" + (" (fails under --strict)" if not result.strict else "") for w in result.warnings
    ]
    bad = [r for r in result.rows if r.status != "ok"]
    lines.append("")
    if result.passed:
        lines.append(
            f"OK: {len(result.rows)} check(s) within {result.max_drop} of the baseline"
            + (f"; every image within {result.max_image_delta}" if result.max_image_delta is not None else "")
        )
    else:
        what = [f"{r.scope} {r.metric}" for r in bad]
        if result.image_failures:
            what.append(f"{len(result.image_failures)} image(s) moved by more than {result.max_image_delta}")
        if result.max_image_delta is not None and result.images_missing:
            what.append(f"{result.images_missing} baseline image(s) missing")
        if result.max_image_delta is not None and result.verdict_changes:
            what.append(f"{len(result.verdict_changes)} verdict(s) changed")
        if result.strict and result.warnings:
            what.append(f"--strict: {len(result.warnings)} warning(s)")
        if result.too_many_changed:
            what.append(
                f"{len(result.changed)} image(s) changed (more than --max-changed {result.max_changed})"
            )
        missing = " or have no value" if any(r.status == "missing" for r in bad) else ""
        lines.append(
            f"FAILED ({len(bad)} of {len(result.rows)} checks regressed by more than the tolerance{missing}): "
            + "; ".join(what)
        )
    return "\n".join(lines)
