"""Reading a run folder: ``results.jsonl`` joined with the generation ``manifest.jsonl`` when there is one.

A run is any folder with a ``results.jsonl`` (from ``harmony-eval score`` or ``benchmark``). Each
loaded row is the results row plus:

- ``image``: a stable identity of the image: the manifest's ``file`` when joined, else the path
  relative to the deepest folder all images share (so two scorings of one folder match up);
- ``file``: absolute path of the image (for HTML links);
- ``target``: the results' target, else the manifest's ``emotion`` (what the image was asked to show);
- ``archetype``, ``cfg``, ``lora_scale``, ``seed``, ``prompt``, ... from the manifest (``None`` without);
- ``order``: the manifest row number (grid order; absent without a manifest).

Bad input raises :class:`RunError` naming the file, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmony_eval import jsonl

RESULTS = "results.jsonl"
MANIFEST = "manifest.jsonl"
VERDICTS = ("perfect", "acceptable", "broken")
#: Manifest fields copied onto each row (the generation manifest contract).
MANIFEST_KEYS = (
    "prompt",
    "negative",
    "archetype",
    "cfg",
    "seed",
    "steps",
    "scheduler",
    "model",
    "lora",
    "lora_scale",
    "width",
    "height",
)
_REQUIRED = ("path", "status", "verdict", "harmony")


class RunError(ValueError):
    """A run folder or file that cannot be read (missing, not JSON, wrong shape)."""


@dataclass
class Run:
    """One loaded run: ``rows`` (one dict per image), where it came from, and ``run.json`` if present."""

    path: Path
    rows: list[dict[str, Any]]
    has_manifest: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    unmatched: int = 0  # results rows that found no manifest row
    not_scored: list[str] = field(default_factory=list)  # manifest files missing from results

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; :class:`RunError` naming the file (and line) when it is missing or garbled."""
    try:
        return [row for _, row in jsonl.read_jsonl(path)]
    except (OSError, ValueError) as e:
        raise RunError(str(e)) from None


def _resolve(p: str, bases: list[Path]) -> Path:
    """Absolute path of an image path from a results row: as is, or the first base where it exists."""
    path = Path(p)
    if path.is_absolute():
        return path.resolve()
    for base in bases:
        if (base / path).exists():
            return (base / path).resolve()
    return (bases[0] / path).resolve()


def _common_root(paths: list[Path]) -> Path | None:
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else None
    except ValueError:  # different drives on Windows
        return None


def find_manifest(folder: Path, meta: dict[str, Any]) -> Path | None:
    """``RUN/manifest.jsonl``, else one in (or just above) the folder ``score`` read its images from
    (``run.json`` ``inputs``), as ``harmony-eval score RUN/images --out OTHER`` leaves it."""
    candidates = [folder / MANIFEST]
    for inp in meta.get("inputs") or []:
        p = Path(str(inp))
        if not p.is_absolute():
            p = folder / p if (folder / p).exists() else Path.cwd() / p
        candidates += [p / MANIFEST, p.parent / MANIFEST]
    return next((c for c in candidates if c.is_file()), None)


def load_run(run: str | os.PathLike) -> Run:
    """Load ``RUN/results.jsonl`` (``RUN`` may also be the file itself) and join ``RUN/manifest.jsonl``.

    The manifest is ``RUN/manifest.jsonl`` or one beside the scored images (:func:`find_manifest`).
    The join is on the image file: the results ``path`` (absolute, or relative to the run folder or
    the working directory) against ``manifest folder / file``; if no path matches, on the file name
    when it is unique in the manifest.
    """
    p = Path(run)
    if p.is_file() and p.name.endswith(".jsonl"):
        results_path, folder = p, p.parent
    elif p.is_dir():
        results_path, folder = p / RESULTS, p
        if not results_path.exists() and (p / MANIFEST).is_file():  # `generate` output, never scored
            raise RunError(
                f"{p}: generated but not scored yet (a {MANIFEST}, no {RESULTS}); score it first: "
                f"harmony-eval score {p / 'images'} --out {p}"
            )
    else:
        raise RunError(
            f"{p}: no such run folder; expected a folder holding {RESULTS} (from `score` or `benchmark`)"
        )
    rows = read_jsonl(results_path)
    if not rows:
        raise RunError(f"{results_path}: no rows; score some images first")
    for i, row in enumerate(rows, 1):
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise RunError(
                f"{results_path}, row {i}: missing key(s) {missing}; is this a harmony-eval results.jsonl?"
            )
        if row["verdict"] not in (*VERDICTS, None):
            raise RunError(
                f"{results_path}, row {i}: verdict {row['verdict']!r}; expected one of "
                f"{list(VERDICTS)} or null"
            )
        h = row["harmony"]
        if h is not None and not (isinstance(h, (int, float)) and 0.0 <= h <= 1.0):
            raise RunError(f"{results_path}, row {i}: harmony {h!r}; expected a number in [0, 1] or null")

    meta: dict[str, Any] = {}
    if (folder / "run.json").is_file():
        try:
            meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{folder / 'run.json'}: not valid JSON ({e})") from None

    manifest_path = find_manifest(folder, meta)
    manifest = read_jsonl(manifest_path) if manifest_path else []
    by_path: dict[Path, dict] = {}
    by_name: dict[str, list[dict]] = {}
    for i, m in enumerate(manifest, 1):
        m["_order"] = i  # grid order, for tables (results.jsonl is in file-name order)
        if "file" not in m:
            raise RunError(f"{manifest_path}, line {i}: no `file` key; expected a generation manifest row")
        full = (manifest_path.parent / m["file"]).resolve()
        by_path[full] = m
        by_name.setdefault(Path(m["file"]).name, []).append(m)

    out: list[dict[str, Any]] = []
    unmatched, seen = 0, set()
    for row in rows:
        full = _resolve(str(row["path"]), [folder, Path.cwd()])
        m = by_path.get(full)
        if m is None and manifest:
            cands = by_name.get(Path(str(row["path"])).name, [])
            m = cands[0] if len(cands) == 1 else None
        r = dict(row)
        r["file"] = full
        if m is not None:
            seen.add(id(m))
            r["image"] = Path(m["file"]).as_posix()
            r["order"] = m["_order"]
            for k in MANIFEST_KEYS:
                r[k] = m.get(k)
            r["target"] = row.get("target") or m.get("emotion")
        else:
            unmatched += bool(manifest)
            for k in MANIFEST_KEYS:
                r.setdefault(k, None)
        out.append(r)

    root = _common_root([r["file"] for r in out if "image" not in r])
    for r in out:
        if "image" not in r:
            r["image"] = Path(os.path.relpath(r["file"], root)).as_posix() if root else r["file"].name
    not_scored = [m["file"] for m in manifest if id(m) not in seen]
    return Run(
        folder, out, has_manifest=bool(manifest), meta=meta, unmatched=unmatched, not_scored=not_scored
    )


def pairing_fields(runs: list[Run]) -> list[str]:
    """Manifest fields that pair images across runs: prompt + seed (+ cfg, ...) as far as needed.

    Starts from ``prompt, seed`` and adds ``cfg``, ``lora_scale``, ``width``, ``height``, ``steps``,
    ``scheduler`` until the key is unique within every run. Without manifests it is ``image``.
    """
    if not all(r.has_manifest for r in runs):
        return ["image"]
    fields = ["prompt", "seed"]
    for extra in (None, "cfg", "lora_scale", "width", "height", "steps", "scheduler"):
        if extra:
            fields.append(extra)
        if all(len({tuple(row.get(f) for f in fields) for row in r.rows}) == len(r.rows) for r in runs):
            return fields
    return [*fields, "image"]


def pair_key(row: dict[str, Any], fields: list[str]) -> tuple:
    return tuple(json.dumps(row.get(f), sort_keys=True, default=str) for f in fields)
