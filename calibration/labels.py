"""Human labels for calibration: a CSV or a Label Studio JSON export -> one checked table.

CSV: a ``file`` column (path relative to ``--images``, or absolute) and any of ``emotion`` (whole
face), ``eyes``, ``brows``, ``mouth`` (region labels) and ``verdict`` (perfect / acceptable / broken).
Other columns are ignored; an empty cell means "no label" for that column.

Label Studio: the JSON export (a list of tasks with ``data`` and ``annotations[].result[]`` choices,
``from_name`` = one of the label columns) or the JSON-MIN export (flat objects). Upload names that
Label Studio prefixed with ``<8 hex>-`` are matched to the original file name.

Every problem is reported at once: unknown labels (with the vocabulary, or ``ignore_unknown`` to drop
those rows), files that do not exist, files listed twice.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from harmony_eval.textio import read_utf8

TARGETS = ("emotion", "eyes", "brows", "mouth", "verdict")
VERDICTS = ("perfect", "acceptable", "broken")
_LS_PREFIX = re.compile(r"^[0-9a-f]{8}-")
_SHOW = 10  # list at most this many offending rows in an error


@dataclass
class Labels:
    """Checked labels. ``rows``: ``{"file": abs path, "line": source line, target: label or None}``."""

    rows: list[dict[str, str | int | None]]
    targets: list[str]  # label columns present, in TARGETS order
    source: str
    dropped: list[dict[str, str | int]] = field(default_factory=list)  # rows dropped, with the reason

    def column(self, target: str) -> list[str | None]:
        return [r.get(target) for r in self.rows]


def _norm(v: object) -> str | None:
    s = "" if v is None else str(v).strip().lower()
    return s or None


def _read_csv(path: Path) -> list[dict]:
    with io.StringIO(read_utf8(path, "--labels"), newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "file" not in cols:
            raise ValueError(f"--labels {path}: no `file` column (columns: {reader.fieldnames}); add one")
        out = []
        for i, row in enumerate(reader, start=2):
            rec = {k.strip().lower(): v for k, v in row.items() if k is not None}
            rec["_line"] = i
            out.append(rec)
    return out


def _read_label_studio(path: Path) -> list[dict]:
    try:
        data = json.loads(read_utf8(path, "--labels"))
    except json.JSONDecodeError as e:
        raise ValueError(f"--labels {path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, list):
        raise ValueError(f"--labels {path}: expected a Label Studio export (a JSON list of tasks)")
    out = []
    for i, task in enumerate(data, start=1):
        if not isinstance(task, dict):
            raise ValueError(f"--labels {path}: task {i} is not an object")
        if "annotations" in task or "data" in task:  # full export
            d = task.get("data", {})
            rec = {"file": d.get("file") or d.get("image") or d.get("img") or ""}
            done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
            for res in done[-1]["result"] if done else []:
                choices = (res.get("value") or {}).get("choices") or []
                if res.get("from_name") and choices:
                    rec[res["from_name"].strip().lower()] = choices[0]
        else:  # JSON-MIN: flat
            rec = {k.strip().lower(): v for k, v in task.items()}
            rec["file"] = rec.get("file") or rec.get("image") or ""
        rec["_line"] = i
        out.append(rec)
    return out


def _resolve(images: Path, name: str) -> Path | None:
    """The image a label names: as given, under ``images``, or its Label Studio upload name."""
    name = re.sub(r"^/data/(upload|local-files)/(\d+/)?", "", name.split("?d=")[-1])
    for cand in (
        Path(name),
        images / name,
        images / Path(name).name,
        images / _LS_PREFIX.sub("", Path(name).name),
    ):
        if cand.is_file():
            return cand.resolve()
    return None


def read_labels(
    path: str | Path,
    images: str | Path,
    emotions: list[str],
    ignore_unknown: bool = False,
    keep: tuple[str, ...] = (),
) -> Labels:
    """Read and check a labels file; raises ``ValueError`` / ``FileNotFoundError`` listing every problem.
    ``keep``: more columns (lower-case names) copied into each row as read, e.g. ``character``."""
    p, img_dir = Path(path), Path(images)
    if not p.is_file():
        raise FileNotFoundError(f"--labels {p}: file not found")
    if not img_dir.is_dir():
        raise FileNotFoundError(f"--images {img_dir}: folder not found")
    raw = _read_label_studio(p) if p.suffix.lower() == ".json" else _read_csv(p)
    # a column counts once something is written in it: ``--suggest`` writes every label column,
    # and an empty one is no target (an empty `mouth` column would shut out the face labels' weak
    # labels for the mouth; an empty `verdict` one crashed the verdict thresholds' fit)
    targets = [t for t in TARGETS if any(_norm(r.get(t)) is not None for r in raw)]
    if not targets:
        present = [t for t in TARGETS if any(t in r for r in raw)]
        raise ValueError(
            f"--labels {p}: " + (f"the label column(s) {present} are empty; fill in at least one label"
            if present else f"no label column; expected at least one of {list(TARGETS)}")
        )  # fmt: skip
    vocab = {t: (list(VERDICTS) if t == "verdict" else list(emotions)) for t in targets}

    rows, dropped, unknown, missing, seen, dups = [], [], [], [], {}, []
    for rec in raw:
        line, name = rec["_line"], str(rec.get("file") or "").strip()
        labels = {t: _norm(rec.get(t)) for t in targets}
        bad = {t: v for t, v in labels.items() if v is not None and v not in vocab[t]}
        if bad:
            if ignore_unknown:
                dropped.append({"line": line, "file": name, "reason": f"unknown label(s) {bad}"})
                continue
            unknown.append((line, name, bad))
            continue
        if all(v is None for v in labels.values()):
            dropped.append({"line": line, "file": name, "reason": "no label"})
            continue
        f = _resolve(img_dir, name) if name else None
        if f is None:
            missing.append((line, name))
            continue
        if f in seen:
            dups.append((line, name, seen[f]))
            continue
        seen[f] = line
        rows.append({"file": str(f), "line": line, **labels, **{k: rec.get(k) for k in keep}})

    problems = []
    if unknown:
        values = sorted({f"{t}={v}" for _, _, b in unknown for t, v in b.items()})
        problems.append(
            f"{len(unknown)} row(s) have labels outside the vocabulary ({', '.join(values)}), e.g. "
            + "; ".join(f"line {ln} {n}" for ln, n, _ in unknown[:_SHOW])
            + f". Vocabulary: {', '.join(f'{t}: {vocab[t]}' for t in targets)}. Fix them, pick another "
            "vocabulary with --emotions, or drop those rows with --ignore-unknown"
        )
    if missing:
        problems.append(
            f"{len(missing)} labelled file(s) not found under --images {img_dir}: "
            + ", ".join(f"line {ln} {n!r}" for ln, n in missing[:_SHOW])
            + " (paths are relative to --images; for a scored run, to the folder its images share)"
        )
    if dups:
        problems.append(
            f"{len(dups)} duplicate row(s): "
            + ", ".join(f"line {ln} {n!r} (first on line {first})" for ln, n, first in dups[:_SHOW])
            + "; keep one row per file"
        )
    if problems:
        raise ValueError(f"--labels {p}: " + " | ".join(problems))
    if not rows:
        raise ValueError(f"--labels {p}: no usable labelled row ({len(dropped)} dropped)")
    return Labels(rows, targets, str(p), dropped)
