"""Scoring a folder into a run directory: ``results.jsonl`` row by row, resumable, in parallel.

``OUT/results.jsonl`` is appended and flushed one complete line per image as it is scored (input
order, but a folder's misses wait for its last image: the sibling pass), and put in input order at
the end. A rerun on the same ``OUT`` skips every path that already has a row; a half-written last
line (a killed run) is cut off first, so a row is never lost twice nor written twice. At the end ``results.csv``,
``results.parquet``, ``run.json`` and ``report.html`` are rewritten from all rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from .jsonl import read_jsonl
from .pipeline import ROW_KEYS, Scorer
from .runguard import check_workers, guarded_run, output_exclusions, raise_if_interrupted, require_images

log = logging.getLogger(__name__)
RESULTS = "results.jsonl"
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
_BATCH = 16  # images per backend batch when the backend runs in the main process (CLIP)


@dataclass
class RunSummary:
    out_dir: Path
    n_total: int
    n_scored: int  # scored in this call (the rest were already in results.jsonl)
    n_errors: int
    seconds: float
    rows: list[dict[str, Any]]
    reader: dict[str, Any] | None = None  # reader_info.describe_reader: what the verdicts are worth

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.n_errors else EXIT_OK


def dumps_row(row: dict[str, Any]) -> str:
    """One JSONL line: contract keys in order, no NaN, UTF-8 kept readable."""
    return json.dumps({k: row.get(k) for k in ROW_KEYS}, ensure_ascii=False, allow_nan=False) + "\n"


def read_rows(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl`` (none when it does not exist yet). With ``repair``, a torn last line
    (killed writer) is cut from the file. ``ValueError`` names the file and line of a corrupt row."""
    if not Path(path).exists():
        return []
    return [row for _, row in read_jsonl(path, repair=repair)]


def _rows(scorer: Scorer, jobs: list[tuple[Any, str]], workers: int) -> Iterator[dict[str, Any]]:
    """Rows as they are scored (``Scorer.iter_scored``: workers load + detect, + the cheap backend):
    input order, except that a folder's misses follow its last image (they wait for the sibling
    pass; the rows of faces found do not wait for them)."""
    for _, _, row in scorer.iter_scored(jobs, workers=workers, batch=_BATCH, in_order=False):
        yield row


def auto_workers(n_jobs: int) -> int:
    """Worker processes: 1 for small jobs (pool start-up costs ~1 s), else one per core, at most 8."""
    return 1 if n_jobs < 8 else max(1, min(8, os.cpu_count() or 1))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "harmony-eval",
        "numpy",
        "opencv-contrib-python",
        "opencv-python",
        "pillow",
        "animeface",
        "mediapipe",
        "scikit-learn",
        "pandas",
        "torch",
        "open_clip_torch",
        "transformers",
        "ray",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def flatten(rows: list[dict[str, Any]], emotions: list[str] | None = None) -> pd.DataFrame:
    """One flat table: nested probs/scores/regions become ``prob_<e>``, ``score_<k>``,
    ``<region>_box`` ("x0 y0 x1 y1") and ``<region>_<e>`` columns; flags joined with ``;``."""
    flat = []
    for row in rows:
        f = {k: row.get(k) for k in ROW_KEYS if k not in ("probs", "regions", "scores", "flags")}
        f["flags"] = ";".join(row.get("flags") or [])
        for e, p in (row.get("probs") or {}).items():
            f[f"prob_{e}"] = p
        for k, v in (row.get("scores") or {}).items():
            f[f"score_{k}"] = v
        for r, reg in (row.get("regions") or {}).items():
            f[f"{r}_box"] = " ".join(map(str, reg["box"])) if reg.get("box") else None
            for e, p in (reg.get("probs") or {}).items():
                f[f"{r}_{e}"] = p
        flat.append(f)
    df = pd.DataFrame(flat)
    if emotions and not df.empty:  # stable column set even when no row had a face
        for e in emotions:
            df[f"prob_{e}"] = df.get(f"prob_{e}")
    return df


@guarded_run  # one run per folder at a time; SIGTERM stops every worker
def score_folder(
    inputs: str | Path | list,
    out_dir: str | Path,
    *,
    workers: int = 0,
    progress: bool = True,
    report: bool = True,
    targets_csv: str | Path | None = None,
    manifest: str | Path | None = None,
    scorer: Scorer | None = None,
    argv: list[str] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    **scorer_options: Any,
) -> RunSummary:
    """Score every image under ``inputs`` into ``out_dir`` (created). See the module docstring.

    ``workers=0`` picks automatically (``auto_workers``). ``engine="ray"`` scores on Ray Data actor
    pools instead of local processes (``ray_engine``; ``ray_address`` as ``ray.init``'s, None for a
    local Ray), with the same rows. Remaining keyword arguments build the ``Scorer`` (backend,
    emotions, detectors, calibration, ...).
    """
    from tqdm.auto import tqdm

    from .imageio import list_images
    from .targets import TargetResolver

    if engine not in ("local", "ray"):
        raise ValueError(f"--engine {engine!r} is not an engine; choose local or ray.")
    if engine == "ray":  # before anything is written: a missing Ray is a usage error
        from .ray_engine import require_ray

        require_ray()
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = list_images(inputs, exclude=output_exclusions(out))  # never its own outputs
    roots = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    root = roots[0] if len(roots) == 1 and roots[0].is_dir() else None
    require_images(roots, paths)  # none at all: exit 2, not "0 image(s)"; an empty folder: a warning
    resolver = None
    if scorer is not None and (scorer_options or targets_csv or manifest):
        given = [*scorer_options, *(["targets_csv"] if targets_csv else [])]
        given += ["manifest"] if manifest else []
        raise TypeError(
            f"score_folder: {given} would be ignored with scorer=...; build the Scorer with them "
            "(targets: Scorer(..., targets=TargetResolver(targets_csv=..., manifest=...)))"
        )
    if scorer is None:
        resolver = TargetResolver(
            scorer_options.get("emotions"), targets_csv=targets_csv, manifest=manifest, root=root
        )
        scorer = Scorer(targets=resolver, **scorer_options)
    from .reader_info import describe_reader

    reader = describe_reader(scorer, images=root)  # before scoring: a broken reader card fails now
    results = out / RESULTS
    done_rows = read_rows(results, repair=True)
    if done_rows:
        _check_resume(out, scorer)
    else:  # a killed run still leaves the settings its rows were scored with
        (out / "run.json").write_text(
            json.dumps({"config": _scoring_config(scorer), "status": "running"}, indent=2) + "\n",
            encoding="utf-8",
        )
    done = {r["path"] for r in done_rows}
    jobs = [(str(p), str(p)) for p in paths if str(p) not in done]
    if engine == "ray":
        from .ray_engine import RayOptions, ray_rows

        produced = ray_rows(scorer, jobs, RayOptions(address=ray_address, workers=workers))
    else:
        workers = check_workers(workers or auto_workers(len(jobs)), len(jobs))  # the count really used
        produced = _rows(scorer, jobs, workers)
    new_rows = []
    bar = tqdm(total=len(jobs), desc="scoring", unit="img", disable=not progress or not jobs)
    with open(results, "a", encoding="utf-8") as f:
        for row in produced:
            f.write(dumps_row(row))
            f.flush()
            new_rows.append(row)
            raise_if_interrupted()  # a signal whose exception was dropped (see runguard)
            bar.update(1)
            bar.set_postfix_str(f"{row['verdict'] or row['status']}", refresh=False)
    bar.close()
    if resolver is not None and targets_csv:
        for p in paths:  # workers matched in their own copies; replay the (cheap) CSV lookups here
            resolver.target_for(p)
    if resolver is not None and targets_csv and (unused := resolver.unused_csv_rows()):
        log.warning(
            "%s: %d row(s) matched no scored image (typo?): %s",
            targets_csv,
            len(unused),
            ", ".join(map(str, unused[:5])) + (" ..." if len(unused) > 5 else ""),
        )
    rows = _in_input_order(done_rows + new_rows, paths, results)
    seconds = time.perf_counter() - t0
    _write_tables(rows, out, scorer.emotions)
    run_info = {
        "argv": argv if argv is not None else sys.argv,
        "inputs": [str(r) for r in roots],
        "out": str(out),
        "config": {**_scoring_config(scorer), "workers": workers, "engine": engine},
        "reader": reader,
        "versions": _versions(),
        "counts": {
            "images": len(rows),
            "scored_now": len(new_rows),
            "resumed": len(done_rows),
            **{s: sum(r["status"] == s for r in rows) for s in ("ok", "no_face", "error")},
            **{v: sum(r.get("verdict") == v for r in rows) for v in ("perfect", "acceptable", "broken")},
        },
        "timings": {
            "seconds": round(seconds, 3),
            "images_per_s": round(len(new_rows) / seconds, 3) if new_rows else None,
        },
    }
    (out / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report:
        from .report import write_report

        write_report(rows, out, run_info=run_info)
    n_errors = sum(r["status"] == "error" for r in rows)
    return RunSummary(out, len(rows), len(new_rows), n_errors, seconds, rows, reader)


def _scoring_config(scorer: Scorer) -> dict[str, Any]:
    """What decides the rows' values (``runrecord``: JSON values, the full scorer config included)."""
    from .runrecord import scoring_config

    return scoring_config(scorer)


def _check_resume(out: Path, scorer: Scorer) -> None:
    """Refuse to append rows computed with other settings to an existing run (``runrecord``)."""
    from .runrecord import check_resume

    check_resume(out, scorer)


def _in_input_order(rows: list[dict[str, Any]], paths: list, results: Path) -> list[dict[str, Any]]:
    """``rows`` in the order of ``paths`` (rows of other paths last, as they were), and
    ``results.jsonl`` rewritten so when the order differs: rows are appended as they are scored, and a
    folder's misses follow its last image (they wait for the sibling pass). The rewrite goes through a
    temporary file and ``os.replace``, so a kill leaves the old or the new file, never half of one."""
    index = {str(p): i for i, p in enumerate(paths)}
    ordered = sorted(rows, key=lambda r: index.get(r["path"], len(index)))  # stable: others keep order
    if [r["path"] for r in ordered] != [r["path"] for r in rows]:
        tmp = results.with_name(results.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(dumps_row(r) for r in ordered)
        os.replace(tmp, results)
    return ordered


def _write_tables(rows: list[dict[str, Any]], out: Path, emotions: list[str]) -> None:
    df = flatten(rows, emotions)
    df.to_csv(out / "results.csv", index=False)
    df.to_parquet(out / "results.parquet", index=False)
