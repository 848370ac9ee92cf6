"""Reading the small text files a user hands over (CSV labels and targets, calibration JSON) with errors
that name the file and the option: a decoder's "'utf-8' codec can't decode byte 0xe9 in position 17"
says neither which file nor what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_utf8(path: str | os.PathLike, option: str) -> str:
    """Text of a UTF-8 file (a BOM, as Excel writes, is dropped). ``ValueError`` naming ``option`` and
    the file, with the line of the first undecodable byte, when it is in another encoding."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{option} {p}: not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}; latin-1 or "
            "cp1252?); save it as UTF-8 (Excel: 'CSV UTF-8'; iconv -f latin1 -t utf-8)"
        ) from None


def load_json_finite(text: str, where: str) -> Any:
    """``json.loads`` that refuses ``NaN`` / ``Infinity`` (Python writes them, JSON has no such values,
    and every number read here ends up in a row or run.json that must stay strict JSON)."""

    def refuse(token: str) -> float:
        raise ValueError(f"{where}: holds {token}, which is not a JSON number; expected finite numbers "
                         "(refit, or replace it with a number)")  # fmt: skip

    return json.loads(text, parse_constant=refuse)
