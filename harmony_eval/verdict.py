"""Verdict, flags and a one-line reason from agreement scores: the seed's three-point checklist.

1. eyes vs mouth      -> ``eyes_mouth``    >= ``thresholds.checks.eyes_mouth``
2. brows vs tension   -> ``brows_tension`` >= ``thresholds.checks.brows_tension``
3. holistic coherence -> ``coherence``     >= ``thresholds.checks.coherence``

- broken: a flag from ``broken_flags`` (no face, collage, missing eyes / mouth, blur, wrong emotion),
  ``harmony < broken_harmony``, or at least ``broken_failed_checks`` failed checks;
- perfect: every check passed with a margin (``>= perfect_min_check``), no flag at all,
  ``harmony >= perfect_harmony``;
- acceptable: everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .agreement import compatibility_matrix
from .resources import config_path, load_yaml

CHECKS = ("eyes_mouth", "brows_tension", "coherence")
FLAGS = (
    "no_face",
    "multiple_faces",
    "missing_eyes",
    "missing_mouth",
    "blurry",
    "small_face",  # face narrower than thresholds.small_face_px: its reading changes with size alone
    "low_confidence",
    "wrong_emotion",
    "mixed_signals",
    "raters_disagree",  # several raters (--raters) lean to incompatible emotions; see backends/raters.py
)
_CHECK_NAMES = {"eyes_mouth": "eyes vs mouth", "brows_tension": "brows vs tension", "coherence": "coherence"}
_CHECK_TEXT = {
    "eyes_mouth": ("eyes", "mouth"),
    "brows_tension": ("brows", "eyes and mouth"),
}


@dataclass
class VerdictConfig:
    """``config/verdict.yaml`` parsed; ``thresholds`` may be overridden by a calibration file."""

    compatibility: dict[str, float]
    pool_weights: dict[str, float]
    harmony_weights: dict[str, float]
    thresholds: dict[str, Any]
    broken_flags: list[str] = field(default_factory=list)
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None) -> VerdictConfig:
        p = Path(path) if path else config_path("verdict.yaml")
        raw = load_yaml(p)
        missing = [
            k for k in ("compatibility", "pool_weights", "harmony_weights", "thresholds") if k not in raw
        ]
        if missing:
            raise ValueError(f"{p}: missing section(s) {missing}; see harmony_eval/config/verdict.yaml")
        unknown = [f for f in raw.get("broken_flags", []) if f not in FLAGS]
        if unknown:
            raise ValueError(f"{p}: unknown broken_flags {unknown}; valid flags are {list(FLAGS)}")
        return cls(
            compatibility=dict(raw["compatibility"]),
            pool_weights=dict(raw["pool_weights"]),
            harmony_weights=dict(raw["harmony_weights"]),
            thresholds=dict(raw["thresholds"]),
            broken_flags=list(raw.get("broken_flags", [])),
            source=str(p),
        )

    def with_thresholds(self, overrides: Mapping[str, Any] | None) -> VerdictConfig:
        """A copy whose thresholds are updated (nested ``checks`` merged key by key)."""
        if not overrides:
            return self
        t = {**self.thresholds, **{k: v for k, v in overrides.items() if k != "checks"}}
        t["checks"] = {**self.thresholds.get("checks", {}), **overrides.get("checks", {})}
        return VerdictConfig(
            self.compatibility, self.pool_weights, self.harmony_weights, t, self.broken_flags, self.source
        )

    def compat(self, emotions: list[str]) -> np.ndarray:
        return compatibility_matrix(emotions, self.compatibility)


def _top(p: Mapping[str, float] | None) -> tuple[str, float] | None:
    if not p:
        return None
    k = max(p, key=p.get)
    return k, float(p[k])


def _says(region: str, p: Mapping[str, float] | None) -> str:
    top = _top(p)
    return (
        f"{region} read{'s' if region not in ('eyes', 'brows') else ''} {top[0]} ({top[1]:.2f})"
        if top
        else f"{region} unread"
    )


def compute_flags(
    *,
    n_faces: int,
    face_areas: list[int],
    region_probs: Mapping[str, Mapping[str, float] | None],
    holistic: Mapping[str, float] | None,
    scores: Mapping[str, float | None],
    quality: Mapping[str, float],
    target: str | None,
    config: VerdictConfig,
    face_width: float | None = None,
) -> list[str]:
    """The flags of ``FLAGS`` that apply, in ``FLAGS`` order. ``face_width``: the main face's box
    width in the pixels it was measured in."""
    t = config.thresholds
    flags = set()
    if n_faces == 0:
        return ["no_face"]
    if len(face_areas) > 1 and face_areas[1] >= t["second_face_ratio"] * face_areas[0]:
        flags.add("multiple_faces")
    if region_probs.get("eyes") is None or quality.get("eyes_visible", 1.0) < t["visible"]:
        flags.add("missing_eyes")
    if region_probs.get("mouth") is None or quality.get("mouth_visible", 1.0) < t["visible"]:
        flags.add("missing_mouth")
    if quality.get("sharpness", 1.0) < t["blurry"]:
        flags.add("blurry")
    small = t.get("small_face_px")  # .get: verdict.yaml copies written before it existed
    if small is not None and face_width is not None and face_width < small:
        flags.add("small_face")
    top = _top(holistic)
    if top and top[1] < t["low_confidence"]:
        flags.add("low_confidence")
    read = [p for r in ("eyes", "brows", "mouth") if (p := region_probs.get(r))]
    near = t.get("near_prior")  # .get: verdict.yaml copies written before it existed
    if near is not None and read and all(max(p.values()) < 1.0 / len(p) + near for p in read):
        # near-uniform readings agree almost perfectly under the cosine, so noise a detector took
        # for a face could be "perfect" (1 of 29 noise faces): no region read an expression
        flags.add("low_confidence")
    if target and holistic and top and top[0] != target and holistic.get(target, 0.0) < t["target_match"]:
        flags.add("wrong_emotion")
    confident = {r: _top(region_probs.get(r)) for r in ("eyes", "brows", "mouth")}
    confident = {r: v for r, v in confident.items() if v and v[1] >= t["region_confident"]}
    for check, (a, b) in (("eyes_mouth", ("eyes", "mouth")), ("brows_tension", ("brows", "mouth"))):
        s = scores.get(check)
        if (
            s is not None
            and s < t["mixed_signals"]
            and a in confident
            and b in confident
            and confident[a][0] != confident[b][0]
        ):
            flags.add("mixed_signals")
    return [f for f in FLAGS if f in flags]


def decide(
    scores: Mapping[str, float | None], harmony: float | None, flags: list[str], config: VerdictConfig
) -> tuple[str, list[str]]:
    """Verdict and the list of failed checks."""
    t = config.thresholds
    failed = [c for c in CHECKS if scores.get(c) is not None and scores[c] < t["checks"][c]]
    if (
        any(f in config.broken_flags for f in flags)
        or harmony is None
        or harmony < t["broken_harmony"]
        or len(failed) >= t["broken_failed_checks"]
    ):
        return "broken", failed
    clear = all(scores.get(c) is None or scores[c] >= t.get("perfect_min_check", 0.0) for c in CHECKS)
    if not failed and not flags and clear and harmony >= t["perfect_harmony"]:
        return "perfect", failed
    return "acceptable", failed


def reason(
    verdict: str,
    flags: list[str],
    failed: list[str],
    region_probs: Mapping[str, Mapping[str, float] | None],
    holistic: Mapping[str, float] | None,
    scores: Mapping[str, float | None],
    target: str | None,
    n_faces: int,
    harmony: float | None = None,
) -> str:
    """One readable sentence saying why, most important cause first."""
    top = _top(holistic)
    if "no_face" in flags:
        return "no face found"
    if "multiple_faces" in flags:
        return f"{n_faces} faces found: looks like a collage, not one portrait"
    if "missing_eyes" in flags:
        return "no eyes found in the face"
    if "missing_mouth" in flags:
        return "no mouth found in the face"
    if "blurry" in flags:
        return "face is too blurry to read"
    if "wrong_emotion" in flags and top and target:
        return (
            f"target is {target} but the face reads {top[0]} ({top[1]:.2f}; {target} {holistic[target]:.2f})"
        )
    if failed:
        worst = min(failed, key=lambda c: scores[c])
        if worst == "coherence":
            spread = ", ".join(
                _says(r, region_probs.get(r)) for r in ("eyes", "brows", "mouth") if region_probs.get(r)
            )
            return f"regions disagree with the whole face ({top[0] if top else '?'}): {spread}"
        a, b = _CHECK_TEXT[worst]
        first_region = "mouth" if worst == "brows_tension" else a
        second_region = "brows" if worst == "brows_tension" else b
        p1, p2 = region_probs.get(first_region), region_probs.get(second_region)
        t1, t2 = _top(p1), _top(p2)
        if t1 and t2 and t1[0] == t2[0]:
            return f"{first_region} and {second_region} both lean {t1[0]} but only weakly ({t1[1]:.2f}, {t2[1]:.2f})"
        return f"{_says(first_region, p1)} but {_says(second_region, p2)}"
    if top is None:
        return "no region could be read"
    if "small_face" in flags:
        return (
            f"face too small to read reliably; it reads {top[0]} ({top[1]:.2f}), but readings of faces "
            "this small change with size alone"
        )
    if "low_confidence" in flags:
        return f"weak expression: best reading {top[0]} ({top[1]:.2f})"
    if "mixed_signals" in flags:
        return "regions send mixed signals: " + ", ".join(
            _says(r, region_probs.get(r)) for r in ("eyes", "brows", "mouth") if region_probs.get(r)
        )
    if verdict == "perfect":
        return f"eyes, brows and mouth agree on {top[0]} ({top[1]:.2f})"
    present = [c for c in CHECKS if scores.get(c) is not None]
    weakest = min(present, key=lambda c: scores[c]) if present else None
    link = f"; weakest link {_CHECK_NAMES[weakest]} {scores[weakest]:.2f}" if weakest else ""
    return f"face reads {top[0]} ({top[1]:.2f}), regions mostly agree (harmony {harmony or 0.0:.2f}{link})"
