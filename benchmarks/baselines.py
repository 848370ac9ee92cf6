"""The regression gate's baseline file: written from a scored run, read back and validated.

``make_baseline`` records a run's metrics (overall and per target emotion, with how many images each
was computed on) and, by default, every image's harmony, verdict and target, so that the gate can
judge the baseline's own images (``benchmarks.gate``). ``config_hash`` fingerprints the scoring
settings of ``run.json``, so a check can warn when the run was scored differently.

Baseline format (``format: harmony-eval-baseline/1``)::

    {"format", "created", "source", "n", "evaluator": {"harmony_eval", "backend", "detector"},
     "config_hash", "metrics": {metric: value}, "n_by_metric": {metric: n},
     "by_emotion": {emotion: {"n": int, metric: value}}, "images": {image: harmony},
     "verdicts": {image: verdict}, "targets": {image: target}}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from .runs import Run, RunError
from .summary import METRICS, groups, metric_values

FORMAT = "harmony-eval-baseline/1"
#: Parts of run.json's config that decide scores (paths and worker counts left out: they differ by machine).
_HASHED = ("backend", "emotions", "thresholds", "compatibility", "pool_weights", "harmony_weights")


def config_hash(run: Run) -> str | None:
    """SHA-256 (16 hex digits) of the scoring config recorded in ``run.json``; ``None`` without one."""
    config = run.meta.get("config")
    if not isinstance(config, dict):
        return None
    data = json.dumps({k: config.get(k) for k in _HASHED}, sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def mean_or_none(values: list[float]) -> float | None:
    """The mean, or ``None`` for no values (a metric with nothing to average has no value)."""
    return sum(values) / len(values) if values else None


def run_metrics(rows: list[dict[str, Any]]) -> tuple[dict[str, float | None], dict[str, int]]:
    """Point values of every metric and how many images each was computed on."""
    values = {m: metric_values(rows, m) for m in METRICS}
    return {m: mean_or_none(v) for m, v in values.items()}, {m: len(v) for m, v in values.items()}


def make_baseline(run: Run, per_image: bool = True) -> dict[str, Any]:
    """Baseline dict from a loaded run (metrics overall and per target emotion, per-image harmony)."""
    from harmony_eval import __version__

    metrics, counts = run_metrics(run.rows)
    by_emotion = {}
    for emotion, rows in groups(run.rows, "target").items():
        m, _ = run_metrics(rows)
        by_emotion[emotion] = {"n": len(rows), **{k: round_metric(v) for k, v in m.items()}}
    baseline = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": run.path.name,
        "n": len(run.rows),
        "evaluator": {
            "harmony_eval": __version__,
            "backend": sorted({str(r["backend"]) for r in run.rows if r.get("backend")}),
            "detector": sorted({str(r["detector"]) for r in run.rows if r.get("detector")}),
        },
        "config_hash": config_hash(run),
        "metrics": {k: round_metric(v) for k, v in metrics.items()},
        "n_by_metric": counts,
        "by_emotion": by_emotion,
    }
    if per_image:
        ordered = sorted(run.rows, key=lambda r: r["image"])
        baseline["images"] = {r["image"]: r["harmony"] for r in ordered}
        baseline["verdicts"] = {r["image"]: r.get("verdict") for r in ordered}
        baseline["targets"] = {r["image"]: r.get("target") for r in ordered}
    return baseline


def round_metric(v: float | None) -> float | None:
    """6 decimals, as the baseline stores metrics (so a check compares like with like)."""
    return None if v is None else round(v, 6)


def write_baseline(run: Run, path: str | Path, per_image: bool = True) -> dict[str, Any]:
    """Write :func:`make_baseline` of ``run`` to ``path`` (folders made) and return it."""
    b = make_baseline(run, per_image)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(b, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return b


def read_baseline(path: str | Path) -> dict[str, Any]:
    """Load and validate a baseline; :class:`RunError` naming the file when it is unusable."""
    p = Path(path)
    try:
        b = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(
            f"{p}: baseline file not found; write one with `harmony-eval check --write-baseline "
            f"--baseline {p} RUN`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(b, dict) or b.get("format") != FORMAT or not isinstance(b.get("metrics"), dict):
        got = b.get("format") if isinstance(b, dict) else type(b).__name__
        raise RunError(
            f"{p}: not a harmony-eval baseline (format {got!r}, expected {FORMAT!r} with a `metrics` mapping)"
        )
    _check_numbers(b, p)
    return b


def _check_numbers(b: dict[str, Any], p: Path) -> None:
    """Every stored value is a number or null: a string there failed later as a TypeError (exit 1,
    which CI reads as "regressed") instead of as a bad baseline (exit 2)."""

    def bad(v: Any) -> bool:
        return v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))

    where = [(f"metrics.{k}", v) for k, v in b["metrics"].items()]
    for emotion, vals in (b.get("by_emotion") or {}).items():
        if not isinstance(vals, dict):
            raise RunError(f"{p}: by_emotion.{emotion} is {vals!r}; expected a mapping of metric -> number")
        where += [(f"by_emotion.{emotion}.{k}", v) for k, v in vals.items()]
    where += [(f"images.{k}", v) for k, v in (b.get("images") or {}).items()]
    for key, v in where:
        if bad(v):
            raise RunError(
                f"{p}: {key} is {v!r}; expected a number or null (fix the value, or rewrite the "
                "baseline with `harmony-eval check --write-baseline`)"
            )
