"""Shared fixtures. ``shared_data`` is ../shared/data (real anime art for internal checks only);
tests that use it skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `--backend auto` downloads CLIP weights when the Hub answers: tests never do (those of the auto
# path fake the Hub and lift this themselves).
os.environ.setdefault("HARMONY_EVAL_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARMONY_EVAL_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = SHARED / "data"
    if not d.is_dir():
        pytest.skip(f"{d} is absent: real-art checks need ../shared/data beside the repository")
    return d


@pytest.fixture(scope="session")
def face_landmarker_model() -> Path:
    p = SHARED / "models" / "face_landmarker.task"
    if not p.is_file():
        pytest.skip(f"{p} is absent: MediaPipe checks need face_landmarker.task")
    return p
