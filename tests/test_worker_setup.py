"""Per-process setup of scoring workers: the local pool's workers and the Ray engine's actors share one
public seam, ``driver.init_worker_process``, so the engine leans on no private internals of the
runner or the driver (it used to copy ``_init_worker`` and name it in its docstring)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import cv2

from harmony_eval import detect, driver, ray_engine
from harmony_eval.pipeline import Scorer


def test_init_worker_process_limits_threads_and_silences_the_repeat_warning(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "unset")  # records the original value for undo, then
    monkeypatch.delenv("OMP_NUM_THREADS")  # removes it: the setup must set it
    monkeypatch.setattr(detect, "_warned_mediapipe", False)  # as in a fresh process
    before = cv2.getNumThreads()
    try:
        driver.init_worker_process()
        assert os.environ["OMP_NUM_THREADS"] == "1"  # one BLAS thread per worker process
        assert cv2.getNumThreads() == 1
        assert detect._warned_mediapipe is True  # the parent warned about a missing model already
    finally:
        cv2.setNumThreads(before)


def test_ray_actors_are_set_up_through_the_public_seam(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ray_engine, "init_worker_process", lambda: calls.append("setup"))
    scorer = Scorer(backend="anatomy")
    ray_engine._PrepareActor(scorer, full=True)
    ray_engine._PredictActor(scorer)
    assert calls == ["setup", "setup"]  # both stages' actors, once each at construction


def test_ray_engine_names_no_private_internals_of_other_modules() -> None:
    src = Path(ray_engine.__file__).read_text(encoding="utf-8")
    tree = ast.parse(src)
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert not [name for name in imported if name.startswith("_")], imported
    modules = {"runner", "driver", "pipeline", "detect", "runguard"}
    touched = [
        f"{n.value.id}.{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules
    ]
    assert not [t for t in touched if t.split(".")[1].startswith("_")], touched
    # nor in its docstrings and comments: they would send a reader to internals that may move
    assert not re.findall(r"\b(?:runner|driver|pipeline|runguard)\._\w+", src)
