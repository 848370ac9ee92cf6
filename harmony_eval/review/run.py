"""A scored run as the review page sees it: its rows, their images, vocabulary, archetypes, order.

Each row's image gets a ``key``: its path relative to the image root (the run's single input folder,
else the folder all images share), as POSIX text. The key is the ``file`` column of ``labels.csv``
(so ``calibrate --images ROOT --labels RUN/labels.csv`` finds the images) and the URL of the image
(``/img/<key>``). Only these files are ever served, and only when the real path (symlinks resolved)
lies inside the image root or the run folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jsonl import read_jsonl
from ..suggest import rank_rows
from ..targets import MANIFEST_NAME
from ..verdict import VerdictConfig

REVIEWED_STATUS = ("ok", "no_face")  # rows with an image to look at; errors are listed, not shown


@dataclass
class ReviewRun:
    run_dir: Path
    rows: list[dict[str, Any]]  # reviewable rows, each with "key", "abspath" and "archetype" added
    root: Path  # image root: ``file`` keys are relative to it
    vocab: list[str]
    config: dict[str, Any]  # run.json "config" (backend, emotions, thresholds, options...)
    order: list[int]  # indices of ``rows``, suggestion ranking (most informative first)
    skipped: list[str] = field(default_factory=list)  # why rows are not shown
    #: key -> the keys of the other images showing the same drawing (``harmony_eval.copies``): only
    #: the best-ranked of a set is queued, and a label set on it is written for all of them
    copies: dict[str, list[str]] = field(default_factory=dict)
    _by_key: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def row(self, key: str) -> dict[str, Any] | None:
        return self._by_key.get(key)

    def allowed(self, path: Path) -> bool:
        """Whether the real location of ``path`` lies inside the image root or the run folder."""
        real = Path(os.path.realpath(path))
        return any(real.is_relative_to(os.path.realpath(d)) for d in (self.root, self.run_dir))


def _resolve_image(path: str, run_dir: Path) -> Path | None:
    """A row's ``path`` (as the scoring run wrote it: absolute, or relative to where it ran)."""
    p = Path(path)
    cands = [p] if p.is_absolute() else [Path.cwd() / p, run_dir.parent / p, run_dir / p]
    for c in cands:
        if c.is_file():
            return Path(os.path.abspath(c))
    return None


def _archetypes(run_dir: Path, images: list[Path]) -> dict[str, str]:
    """{absolute image path: archetype} from generation manifests in the run folder or beside the
    images; empty when there is none (the page then has no archetype filter)."""
    out: dict[str, str] = {}
    for d in {run_dir, *(p.parent for p in images)}:
        m = d / MANIFEST_NAME
        if not m.is_file():
            continue
        try:
            entries = read_jsonl(m)
        except ValueError:
            continue  # a broken manifest only loses the filter; scoring already reported it
        for _, rec in entries:
            if rec.get("file") and rec.get("archetype"):
                out[os.path.abspath(d / str(rec["file"]))] = str(rec["archetype"])
    return out


def _copies(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``{key: other keys}`` for every image that has copies among the rows (same drawing: an RGBA
    sprite and its copy on white). Each image is read once more (a progress bar on big runs)."""
    from ..copies import groups_of_files

    def face(r: dict[str, Any]) -> tuple[int, int, int, int] | None:
        box = ((r.get("regions") or {}).get("face") or {}).get("box") if r.get("status") == "ok" else None
        return tuple(int(v) for v in box) if isinstance(box, list) and len(box) == 4 else None  # type: ignore[return-value]

    groups = groups_of_files(
        [str(r["abspath"]) for r in rows], [face(r) for r in rows], progress=len(rows) > 200,
        desc="looking for copies among the run's images",
    )  # fmt: skip
    members: dict[int, list[str]] = {}
    for r, g in zip(rows, groups, strict=True):
        members.setdefault(g, []).append(r["key"])
    return {k: [o for o in keys if o != k] for keys in members.values() if len(keys) > 1 for k in keys}


def load_run(run_dir: str | Path) -> ReviewRun:
    """Read ``RUN/results.jsonl`` (+ ``run.json`` when present). ``FileNotFoundError`` /
    ``ValueError`` name the file and the fix."""
    d = Path(run_dir)
    results = d / "results.jsonl"
    if not results.is_file():
        raise FileNotFoundError(
            f"RUN {d}: no results.jsonl there; score images first (harmony-eval score IMAGES --out {d})"
        )
    info: dict[str, Any] = {}
    if (d / "run.json").is_file():
        try:
            info = json.loads((d / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            info = {}  # run.json is rewritten at the end of a run; the rows are what count
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    raw = [row for _, row in read_jsonl(results)]
    rows, skipped = [], []
    for r in raw:
        path = str(r.get("path") or "")
        img = _resolve_image(path, d) if path else None
        if r.get("status") not in REVIEWED_STATUS:
            skipped.append(f"{path}: status {r.get('status')}")
        elif img is None:
            skipped.append(f"{path}: image file not found")
        else:
            rows.append({**r, "abspath": img})
    if not rows:
        raise ValueError(f"RUN {d}: no row of results.jsonl has an image to review ({len(skipped)} skipped: "
                         f"{'; '.join(skipped[:3])})")  # fmt: skip
    inputs = [Path(os.path.abspath(p)) for p in info.get("inputs", []) if Path(p).is_dir()]
    images = [r["abspath"] for r in rows]
    if len(inputs) == 1 and all(p.is_relative_to(inputs[0]) for p in images):
        root = inputs[0]
    else:
        root = Path(os.path.commonpath([str(p.parent) for p in images]))
    arch = _archetypes(d, images)
    for r in rows:
        r["key"] = r["abspath"].relative_to(root).as_posix()
        r["archetype"] = arch.get(str(r["abspath"]))
    vocab = [str(e) for e in config.get("emotions") or []]
    if not vocab:  # a run.json-less folder: the rows' own vocabulary, in first-seen order
        for r in rows:
            vocab += [e for e in (r.get("probs") or {}) if e not in vocab]
    thresholds = config.get("thresholds") or VerdictConfig.load().thresholds
    copies = _copies(rows)
    seen: set[str] = set()
    order = []
    for i in rank_rows(rows, thresholds):  # the best-ranked image of a set of copies stands for it
        key = rows[i]["key"]
        if not any(k in seen for k in copies.get(key, ())):
            order.append(i)
        seen.add(key)
    run = ReviewRun(d, rows, root, vocab, config, order, skipped, copies)
    run._by_key = {r["key"]: r for r in rows}
    return run


def public_row(r: dict[str, Any]) -> dict[str, Any]:
    """What the page gets of a row (no absolute paths)."""
    keep = ("key", "path", "status", "n_faces", "target", "emotion", "probs", "regions", "scores",
            "harmony", "verdict", "flags", "reason", "archetype")  # fmt: skip
    return {k: r.get(k) for k in keep}
