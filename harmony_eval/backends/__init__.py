"""Region emotion backends: a registry of names to factories (see ``types.RegionBackend``).

Entries are ``"module:attribute"`` strings so that naming a backend imports only that backend
(the CLIP one needs torch, the tagger onnxruntime; the anatomy one neither).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..types import RegionBackend

BACKENDS: dict[str, str] = {
    "anatomy": "harmony_eval.backends.anatomy:AnatomyBackend",
    "clip": "harmony_eval.backends.clip:ClipBackend",
    "tagger": "harmony_eval.backends.tagger:TaggerBackend",
    "raters": "harmony_eval.backends.raters:RatersBackend",  # several of the above (``raters=``)
}


def register_backend(name: str, target: str) -> None:
    """Add a backend: ``target`` is ``"package.module:Factory"``; ``Factory(**options)`` builds it."""
    BACKENDS[name] = target


def _factory(name: str):
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve_backend_name(name: str, options: dict[str, Any] | None = None) -> str:
    """``auto`` -> ``clip`` (local weights, or downloaded once when the Hub answers) or ``anatomy``
    (offline, with one notice); see ``backends.auto``."""
    if name in ("auto", "raters") and (options or {}).get("raters"):
        return "raters"  # raters="anatomy,clip" asks for several readers, whatever the default
    if name == "auto":
        from .auto import resolve_auto

        return resolve_auto(options)
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; choose one of {['auto', *BACKENDS]}.")
    return name


def get_backend(name: str = "auto", **options: Any) -> RegionBackend:
    """Build a backend by name (``auto``, ``anatomy``, ``clip``, or a registered one) with its own
    options only (``config.BackendConfig.options_for``); a backend raises ``TypeError`` on others.
    ``auto`` reads the ``clip_*`` ones to decide, and passes them on only when it picks CLIP."""
    resolved = resolve_backend_name(name, options)
    if name == "auto" and resolved != "clip":
        options = {k: v for k, v in options.items() if not k.startswith("clip_")}
    return _factory(resolved)(**options)
