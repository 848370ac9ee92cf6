"""Locating the data files: ``prompts/`` (vocabulary, archetypes, templates, probes) and the
package's own config files. Installed wheels carry ``prompts/`` inside ``harmony_eval/``; a source
checkout keeps it at the repository root. ``HARMONY_EVAL_PROMPTS`` overrides both.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

_PKG = Path(__file__).resolve().parent


def prompts_dir() -> Path:
    """The ``prompts/`` folder in use."""
    env = os.environ.get("HARMONY_EVAL_PROMPTS")
    candidates = [Path(env)] if env else []
    candidates += [_PKG / "prompts", _PKG.parent / "prompts"]
    for c in candidates:
        if (c / "emotions.yaml").is_file():
            return c
    raise FileNotFoundError(
        "Could not find the prompts/ data folder (looked in "
        + ", ".join(str(c) for c in candidates)
        + "). Set HARMONY_EVAL_PROMPTS to a folder holding emotions.yaml."
    )


def config_path(name: str) -> Path:
    """Path of a config file shipped in ``harmony_eval/config/``."""
    return _PKG / "config" / name


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; errors name the file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


@lru_cache(maxsize=8)
def _emotions_table(folder: str) -> dict:
    return load_yaml(Path(folder) / "emotions.yaml")["emotions"]


def emotions_table() -> dict:
    """The full ``emotions.yaml`` table (every emotion, active or not)."""
    return _emotions_table(str(prompts_dir()))


def default_emotions() -> list[str]:
    """Emotions with ``active: true``, in file order: the default vocabulary."""
    return [k for k, v in emotions_table().items() if v.get("active", False)]


def resolve_emotions(emotions: list[str] | str | None) -> list[str]:
    """Validate a vocabulary: ``None`` -> default; a comma string or a list of known names."""
    if emotions is None:
        return default_emotions()
    if isinstance(emotions, str):
        emotions = [e.strip() for e in emotions.split(",") if e.strip()]
    known = emotions_table()
    unknown = [e for e in emotions if e not in known]
    if unknown:
        raise ValueError(
            f"Unknown emotion(s) {unknown}; emotions.yaml defines {list(known)}. "
            "Add them to prompts/emotions.yaml or pick from that list."
        )
    if len(set(emotions)) < 2 or len(set(emotions)) != len(emotions):
        raise ValueError(f"`emotions` must name at least two distinct emotions, got {emotions}")
    return list(emotions)
