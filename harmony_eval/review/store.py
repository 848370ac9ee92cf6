"""Human labels of a review session: ``labels.csv`` written atomically, read back to resume.

Columns ``file, emotion, eyes, brows, mouth, verdict, labelled_at``: what ``harmony-eval calibrate
--labels`` reads (``file`` relative to the run's image folder, passed there as ``--images``).

Safety: every change re-reads the file, applies one image's change and rewrites the whole file as
a temporary file + fsync + ``os.replace`` + directory fsync, under a thread lock and an advisory
file lock (a second tab, or a second server on the same file, cannot lose an update). A killed
server leaves either the old or the new file, never half of one; a failed write (full disk) leaves
the old file and raises ``StoreError`` so the page says the label was not saved.
Columns this module does not know (a ``--labels`` file from elsewhere) and rows of files outside
the run are kept as they were.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:  # POSIX advisory lock; elsewhere the thread lock alone guards one server
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

COLUMNS = ("file", "emotion", "eyes", "brows", "mouth", "verdict", "labelled_at")
FIELDS = COLUMNS[1:6]  # the label fields a reviewer sets
VERDICTS = ("perfect", "acceptable", "broken")


class StoreError(OSError):
    """The labels file could not be written; the previous file is intact."""


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # not every OS / file system lets a folder be opened
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class LabelStore:
    """The labels file of one review. ``order``: the run's ``file`` keys, the row order of the CSV
    (files outside the run follow in their previous order). ``vocab``: valid emotions."""

    def __init__(self, path: str | Path, order: Sequence[str], vocab: Sequence[str]):
        self.path = Path(path)
        self.order = list(order)
        self.vocab = list(vocab)
        self._lock = threading.Lock()
        if self.path.suffix.lower() != ".csv":
            raise ValueError(
                f"--labels {self.path}: expected a .csv file (Label Studio JSON is exported, not edited)"
            )
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"--labels {self.path}: folder {self.path.parent} does not exist; create it"
            )
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # left by a killed write
            with contextlib.suppress(OSError):
                stale.unlink()
        self._read()  # a broken existing file fails now, before the page starts

    # -- file ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if fcntl is None:
                yield
                return
            with open(self.path.parent / f".{self.path.name}.lock", "a") as lf:
                fcntl.flock(lf, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lf, fcntl.LOCK_UN)

    def _read(self) -> tuple[list[str], dict[str, dict[str, str]]]:
        """(columns, {file: row}) of the file as it is now; empty when it does not exist yet."""
        if not self.path.is_file():
            return list(COLUMNS), {}
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(
                f"--labels {self.path}: cannot be read ({e}); fix it or pass another --labels"
            ) from None
        reader = csv.DictReader(io.StringIO(text))
        cols = [c.strip().lower() for c in reader.fieldnames or []]
        if not cols:
            return list(COLUMNS), {}
        if "file" not in cols:
            raise ValueError(f"--labels {self.path}: no `file` column (columns: {reader.fieldnames}); "
                             "pass another --labels or add the column")  # fmt: skip
        columns = list(COLUMNS) + [c for c in cols if c not in COLUMNS]
        rows: dict[str, dict[str, str]] = {}
        for raw in reader:
            rec = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            if rec.get("file"):
                rows[rec["file"]] = rec  # a file listed twice: the later row wins, once rewritten
        return columns, rows

    def _write(self, columns: list[str], rows: dict[str, dict[str, str]]) -> None:
        known = [f for f in self.order if f in rows]
        rest = [f for f in rows if f not in set(self.order)]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for f in known + rest:
            w.writerow({c: rows[f].get(c, "") for c in columns})
        try:
            atomic_write_text(self.path, buf.getvalue())
        except OSError as e:
            raise StoreError(
                f"could not write {self.path} ({e.strerror or e}); the label was not saved"
            ) from e

    # -- API -------------------------------------------------------------------------------------
    def all(self) -> dict[str, dict[str, str | None]]:
        """{file: {field: value or None, labelled_at}} of every labelled file."""
        with self._locked():
            _, rows = self._read()
        return {f: self._public(r) for f, r in rows.items()}

    @staticmethod
    def _public(rec: dict[str, str]) -> dict[str, str | None]:
        return {c: (rec.get(c) or None) for c in COLUMNS}

    def check(self, changes: dict[str, Any]) -> dict[str, str | None]:
        """Validated ``{field: value or None}``; ``ValueError`` names the bad field or value."""
        out: dict[str, str | None] = {}
        for k, v in changes.items():
            if k not in FIELDS:
                raise ValueError(f"unknown label field {k!r}; expected one of {list(FIELDS)}")
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{k}: expected a string or null, got {type(v).__name__}")
            v = (v or "").strip().lower() or None
            valid = VERDICTS if k == "verdict" else self.vocab
            if v is not None and v not in valid:
                raise ValueError(f"{k}: {v!r} is not one of {list(valid)}")
            out[k] = v
        return out

    def update(
        self, file: str, changes: dict[str, Any], *, replace: bool = False, copies: Sequence[str] = ()
    ) -> dict[str, str | None] | None:
        """Set fields of ``file``'s label (``replace``: the whole label, unset fields cleared) and
        write the file; returns the new label, ``None`` when no field is left (row removed).
        ``copies``: images showing the same drawing (``harmony_eval.copies``) get the same label, in
        the same write."""
        known = set(self.order)
        for f in (file, *copies):
            if f not in known:
                raise KeyError(f)
        new = self.check(changes)
        with self._locked():
            columns, rows = self._read()
            rec = {} if replace else dict(rows.get(file, {}))
            extra = {c: v for c, v in rows.get(file, {}).items() if c not in COLUMNS}
            rec.update(extra)
            rec.update({k: v or "" for k, v in new.items()})
            rec["file"] = file
            if any(rec.get(k) for k in FIELDS):
                rec["labelled_at"] = now_utc()
                rows[file] = rec
                label = {k: rec[k] for k in COLUMNS if k in rec}
                for f in copies:  # the label fields only; a copy keeps its own other columns
                    rows[f] = {
                        **{c: v for c, v in rows.get(f, {}).items() if c not in COLUMNS},
                        **label,
                        "file": f,
                    }
            else:
                for f in (file, *copies):
                    rows.pop(f, None)
            self._write(columns, rows)
        return self._public(rec) if file in rows else None


def label_studio_tasks(labels: dict[str, dict[str, str | None]]) -> list[dict[str, Any]]:
    """Label Studio's JSON export format (one task per labelled file, one ``choices`` result per
    field), which ``calibrate --labels`` reads back as it reads the CSV."""
    tasks = []
    for i, (f, rec) in enumerate(labels.items(), start=1):
        result = [
            {"from_name": k, "to_name": "image", "type": "choices", "value": {"choices": [rec[k]]}}
            for k in FIELDS
            if rec.get(k)
        ]
        tasks.append({
            "id": i,
            "data": {"image": f},
            "annotations": [{"result": result, "was_cancelled": False, "created_at": rec.get("labelled_at")}],
        })  # fmt: skip
    return tasks
