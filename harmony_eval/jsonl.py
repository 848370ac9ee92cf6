"""Reading JSONL files (results, manifests) with errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``.

    A last line without its newline is a row torn by a killed writer: it is skipped, and with
    ``repair`` cut from the file so appending can go on. Raises ``FileNotFoundError`` for a missing
    file and ``ValueError`` naming the file and line for undecodable text, bad JSON or a non-object.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: file not found") from None
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if repair:
            with open(p, "r+b") as f:
                f.truncate(cut)
        data = data[:cut]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: cannot be read as UTF-8 text ({e})") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}, line {i}: not valid JSON ({e.msg}); fix or delete that line") from None
        if not isinstance(row, dict):
            raise ValueError(f"{p}, line {i}: expected a JSON object, got {type(row).__name__}")
        rows.append((i, row))
    return rows
