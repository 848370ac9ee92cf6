"""A run's scoring settings in ``run.json``: written, compared on resume, and turned back into a ``Scorer``.

``run.json`` ``config`` holds the resolved values that decide rows (``backend``, ``emotions``,
``thresholds``, weights...: what summaries and the regression gate read), ``options`` (the flat
options that differ from the defaults, as JSON values) and ``scorer``: the whole
``config.ScorerConfig`` as JSON, which :func:`scorer_from_run` loads back. Options used to be saved
as ``str(v)``, so a run could not be rebuilt from its own record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Scorer

#: Resolved values compared on resume besides the scorer config (they also follow from files the
#: config names: a calibration's thresholds, a verdict.yaml's weights, which can change on disk).
_RESOLVED = ("backend", "emotions", "detectors", "calibration", "verdict_config", "thresholds",
             "compatibility", "pool_weights", "harmony_weights")  # fmt: skip


def scoring_config(scorer: Scorer) -> dict[str, Any]:
    """What decides the rows' values, JSON-ready: a resumed run must use the same."""
    return {
        "backend": scorer.backend_name,
        "emotions": list(scorer.emotions),
        "detectors": scorer.detector_names or "default",
        "calibration": scorer.calibration_path,
        "verdict_config": scorer.config.source,
        "thresholds": scorer.config.thresholds,
        "compatibility": scorer.config.compatibility,
        "pool_weights": scorer.config.pool_weights,
        "harmony_weights": scorer.config.harmony_weights,
        "options": dict(sorted(scorer.options.items())),
        "scorer": scorer.settings.to_dict(),
    }


def config_changes(before: dict[str, Any], scorer: Scorer) -> list[tuple[str, Any, Any]]:
    """``(setting, before, now)`` for every setting that differs from a run.json ``config``."""
    from .config import ScorerConfig

    now = json.loads(json.dumps(scoring_config(scorer)))  # same JSON types as the file
    changes = [(k, before[k], now[k]) for k in _RESOLVED if k in before and before[k] != now[k]]
    if isinstance(before.get("scorer"), dict):
        try:
            old = ScorerConfig.from_dict(before["scorer"], "run.json config.scorer").scoring_fields()
        except (TypeError, ValueError) as e:  # written by another version: say so, do not guess
            return [*changes, ("scorer", f"unreadable ({e})", "this version's config")]
        new = json.loads(json.dumps(scorer.settings.scoring_fields()))
        changes += [(k, old[k], new[k]) for k in new if old.get(k) != new[k]]
    elif "options" in before:  # a run.json from before the typed config: options as text
        now_text = {k: str(v) for k, v in now["options"].items()}
        if before["options"] != now_text:
            changes.append(("options", before["options"], now_text))
    return changes


def check_resume(out: Path, scorer: Scorer) -> None:
    """Refuse to append rows computed with other settings to an existing run (they would mix)."""
    info = out / "run.json"
    if not info.is_file():
        return
    try:
        before = json.loads(info.read_text(encoding="utf-8")).get("config", {})
    except (json.JSONDecodeError, OSError, AttributeError):
        return  # an unreadable run.json is rewritten at the end; the rows themselves are intact
    changed = config_changes(before, scorer)
    if changed:
        detail = "; ".join(f"{k}: {b!r} -> {n!r}" for k, b, n in changed[:3])
        raise ValueError(
            f"{out}: already holds results scored with other settings ({detail}). "
            "Use another --out, or delete results.jsonl there to rescore everything."
        )


def scorer_from_run(cls: type[Scorer], run_dir: str | Path, **overrides: Any) -> Scorer:
    """``cls`` built from ``RUN/run.json``'s ``config.scorer``, targets from the run's rows (by path)
    unless ``targets=`` is given; other ``overrides`` are flat options."""
    from .config import ScorerConfig
    from .jsonl import read_jsonl
    from .targets import TargetResolver

    info = Path(run_dir) / "run.json"
    try:
        meta = json.loads(info.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{info}: not found; is {run_dir} a run folder of `harmony-eval score`?"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{info}: not valid JSON ({e})") from None
    data = (meta.get("config") or {}).get("scorer") if isinstance(meta, dict) else None
    if not isinstance(data, dict):
        raise ValueError(
            f"{info}: has no config.scorer (written before harmony-eval recorded its full config); "
            "rescore the folder to get one"
        )
    config = ScorerConfig.from_dict(data, f"{info} config.scorer")
    targets = overrides.pop("targets", None)
    if targets is None:
        results = Path(run_dir) / "results.jsonl"
        rows = [r for _, r in read_jsonl(results)] if results.is_file() else []
        targets = TargetResolver(
            list(config.emotions or []) or None, mapping={r["path"]: r.get("target") for r in rows}
        )
    return cls(config, targets=targets, **overrides)
