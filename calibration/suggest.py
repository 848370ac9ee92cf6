"""``calibrate --suggest N``: the N unlabelled images whose labels would teach the readers most.

    order = suggest_order(rows, named, n=20, labelled=[...])   # indices into rows, best first
    write_suggestions(path, files, rows, order)                 # a labels CSV ready to fill in

Greedy uncertainty x diversity (the usual batch active-learning rule): each pick maximises

    informativeness(row) x  d / max d

where ``informativeness`` is ``harmony_eval.suggest.informativeness`` (the same score the review page
orders by: unsure whole-face reading, regions disagreeing, a verdict near its line) and ``d`` the
distance, in standardised descriptor space (anatomy measurements + HOG crop descriptors), from the
image to the nearest image already labelled or picked. Uncertainty alone picks many near-copies of
one confusing face; the distance term spreads the picks over the styles and expressions present.
Images without a face are never suggested (a label teaches no region reader there).
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: feature groups that place an image in descriptor space (prefix before ":" in prediction_features)
SPACE = ("eyes", "brows", "mouth", "face_desc", "mouth_desc", "eyes_desc", "brows_desc")


def descriptor_space(named: Sequence[dict[str, float] | None]) -> np.ndarray:
    """``(N, F)`` standardised features (missing -> 0 after standardising, i.e. the mean), rows of
    images without features all 0. Each group is scaled to unit total variance so the 500-long HOG
    vectors do not drown the 11 eye measurements."""
    names = sorted({k for d in named if d for k in d if k.split(":", 1)[0] in SPACE and ":logp_" not in k})
    X = np.array([[(d or {}).get(n, np.nan) for n in names] for d in named], dtype=float).reshape(
        len(named), len(names)
    )
    mean = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0) if len(X) else np.zeros(len(names))
    mean = np.nan_to_num(mean)
    sd = np.nanstd(X, axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-9), sd, 1.0)
    Z = np.nan_to_num((X - mean) / sd)
    groups = [n.split(":", 1)[0] for n in names]
    for g in set(groups):
        cols = [j for j, h in enumerate(groups) if h == g]
        Z[:, cols] /= np.sqrt(len(cols))
    return Z


def suggest_order(
    rows: Sequence[dict[str, Any]],
    named: Sequence[dict[str, float] | None],
    n: int | None = None,
    labelled: Sequence[int] = (),
    thresholds: dict[str, Any] | None = None,
) -> list[int]:
    """Up to ``n`` indices of ``rows`` (all candidates when ``None``), best label first; images in
    ``labelled`` are not suggested but count as covered for the distance term."""
    from harmony_eval.suggest import _default_thresholds, informativeness

    th = thresholds if thresholds is not None else _default_thresholds()
    done = set(labelled)
    cand = [
        i for i, r in enumerate(rows) if r.get("status") == "ok" and named[i] is not None and i not in done
    ]
    if not cand:
        return []
    info = np.array([informativeness(rows[i], th)["score"] for i in cand])
    Z = descriptor_space(named)
    covered = [i for i in done if named[i] is not None]
    if covered:
        d = np.min(np.linalg.norm(Z[cand][:, None, :] - Z[covered][None, :, :], axis=2), axis=1)
    else:
        d = np.full(len(cand), np.inf)
    out: list[int] = []
    left = np.ones(len(cand), bool)
    for _ in range(min(n or len(cand), len(cand))):
        finite = d[left & np.isfinite(d)]
        scale = finite.max() if finite.size and finite.max() > 0 else 1.0
        spread = np.where(np.isfinite(d), d / scale, 1.0)
        gain = np.where(left, (info + 1e-6) * (spread + 1e-6), -np.inf)
        j = int(np.argmax(gain))
        out.append(cand[j])
        left[j] = False
        d = np.minimum(d, np.linalg.norm(Z[cand] - Z[cand[j]], axis=1))
    return out


def write_suggestions(
    path: str | Path,
    files: Sequence[str],
    rows: Sequence[dict[str, Any]],
    order: Sequence[int],
    root: Path | None = None,
) -> Path:
    """A CSV ``calibrate --labels`` reads: ``file`` (relative to ``root`` when inside it) and empty
    ``emotion, eyes, brows, mouth, verdict`` to fill in, then the tool's reading as hints
    (``rank``, ``tool_emotion``, ``tool_verdict``, ``reason``; ignored when read back)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "file",
                "emotion",
                "eyes",
                "brows",
                "mouth",
                "verdict",
                "rank",
                "tool_emotion",
                "tool_verdict",
                "reason",
            ]
        )
        for rank, i in enumerate(order, start=1):
            name = Path(files[i])
            if root is not None:
                with contextlib.suppress(ValueError):
                    name = name.resolve().relative_to(root.resolve())
            r = rows[i]
            w.writerow(
                [
                    str(name),
                    "",
                    "",
                    "",
                    "",
                    "",
                    rank,
                    r.get("emotion") or "",
                    r.get("verdict") or "",
                    r.get("reason") or "",
                ]
            )
    return p
