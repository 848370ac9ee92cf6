"""Measurement constants a user sets: ``--param mouth.teeth_dark=10`` on the command line, ``params=``
on ``Scorer`` / ``harmony_eval.score``, ``"params": {"mouth.teeth_dark": 10}`` in a run config.

    overrides = normalize({"mouth.teeth_dark": 10, "eyes.closed_ramp": "0.3,0.5"})
    # (("eyes.closed_ramp", (0.3, 0.5)), ("mouth.teeth_dark", 10.0))   canonical: sorted, typed
    mp = MeasureParams.from_overrides(overrides)
    mp.mouth.teeth_dark                                                 # 10.0; every other field default

Each settable module keeps its constants in a frozen ``Params`` dataclass (``MODULES``: name -> module);
an override is ``<module>.<field>=<value>``. The canonical form (a sorted tuple of ``(name, value)``
pairs) is what ``ScorerConfig.params`` holds: hashable and comparable, so a resumed run with another
value is refused, and it keys the measurement cache (``measure.MeasureStage``).

Decisions:

- Modules are the ones a face's measurement and its regions read (the anatomy parts, its canvas,
  the quality measures, the region proportions) and the detectors' (``animeface``'s passes and
  tight-picture rule, ``crop``'s tight-crop test, also where animeface calls it, and ``siblings``'
  face-from-siblings test): ``Scorer.detectors`` and the sibling pass read them from here. The box
  helpers' constants (``detect/_geometry``) and the second looks' (``detect.Fallback``) are not
  settable: ``_geometry``'s are read by helpers that take no ``p=`` from the detectors' callers, so
  an override would reach some reads and not others.
- Errors are ``ParamError``, both a ``TypeError`` (what ``config.check_keys`` raises for an unknown
  key, as open_clip does) and a ``ValueError`` (what the CLI reports as bad input, exit 2).
- A value is checked against the field's type (``float``, ``int``, ``tuple[float, float]``, ``str``)
  and numbers must be finite: a NaN line would silently read every face as not drawn.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import math
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "MODULES",
    "MeasureParams",
    "ParamError",
    "as_dict",
    "check_calibration",
    "cli_overrides",
    "digest",
    "load_file",
    "normalize",
]

#: Settable module name -> the module holding its ``Params`` and ``PARAMS``.
MODULES: dict[str, str] = {
    "eyes": "harmony_eval.backends.anatomy.eyes",
    "brows": "harmony_eval.backends.anatomy.brows",
    "mouth": "harmony_eval.backends.anatomy.mouth",
    "common": "harmony_eval.backends.anatomy.common",
    "quality": "harmony_eval.quality",
    "regions": "harmony_eval.regions",
    "animeface": "harmony_eval.detect.animeface",
    "crop": "harmony_eval.detect.crop_params",
    "siblings": "harmony_eval.detect.siblings",
}

Overrides = tuple[tuple[str, Any], ...]


class ParamError(TypeError, ValueError):
    """An override naming no settable module or field, or a value of the wrong type."""


def _module(name: str) -> Any:
    return importlib.import_module(MODULES[name])


def _hints(module: str) -> dict[str, Any]:
    return typing.get_type_hints(_module(module).Params)


def _close(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(text: Any, kind: type, where: str) -> float | int:
    """``text`` (a number or its text) as ``kind``; ``ParamError`` naming ``where`` otherwise."""
    want = "an integer" if kind is int else "a number"
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise ParamError(f"{where}: expected {want}, got {type(text).__name__} {text!r}")
    try:
        value = float(text)
    except ValueError:
        raise ParamError(f"{where}: expected {want}, got {text!r}") from None
    if not math.isfinite(value):
        raise ParamError(f"{where}: expected a finite number, got {text!r}")
    if kind is int:
        if not value.is_integer() or (isinstance(text, str) and not text.strip().lstrip("+-").isdigit()):
            raise ParamError(f"{where}: expected an integer, got {text!r}")
        return int(value)
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's type: ``float``, ``int`` or a tuple of those (text ``"0.3,0.5"``,
    ``"[0.3, 0.5]"`` or a list)."""
    if typing.get_origin(hint) is tuple:
        kinds = typing.get_args(hint)
        items = value
        if isinstance(value, str):
            items = [t.strip() for t in value.strip().strip("[]()").split(",") if t.strip()]
        if len(kinds) == 2 and kinds[1] is Ellipsis:  # names, any number: "animeface,mediapipe"
            if not isinstance(items, (list, tuple)) or not items:
                raise ParamError(f"{where}: expected names separated by commas, got {value!r}")
            return tuple(_coerce(v, kinds[0], where) for v in items)
        if not isinstance(items, (list, tuple)) or len(items) != len(kinds):
            raise ParamError(
                f"{where}: expected {len(kinds)} numbers (e.g. {','.join(['0.5'] * len(kinds))}), got {value!r}"
            )
        return tuple(_number(v, k, where) for v, k in zip(items, kinds, strict=True))
    if hint in (int, float):
        return _number(value, hint, where)
    if hint is str:  # a named choice (e.g. a resampling); the module checks which names it knows
        if not isinstance(value, str) or not value.strip():
            raise ParamError(f"{where}: expected a name (text), got {value!r}")
        return value.strip()
    raise ParamError(f"{where}: fields of type {hint} cannot be set")  # none today; say so if one is added


def _items(given: Any, source: str) -> list[tuple[str, Any, str]]:
    """``(dotted name, raw value, where)`` of every override in ``given``: a mapping (flat dotted
    names, or ``{module: {field: value}}``), ``name=value`` strings, or ``(name, value)`` pairs."""
    if given is None:
        return []
    if isinstance(given, str):
        given = [given]
    out: list[tuple[str, Any, str]] = []
    if isinstance(given, Mapping):
        for k, v in given.items():
            if isinstance(v, Mapping):  # nested: {"mouth": {"teeth_dark": 10}}
                out += [(f"{k}.{f}", x, f"{source} {k}.{f}") for f, x in v.items()]
            else:
                out.append((str(k), v, f"{source} {k}"))
        return out
    if not isinstance(given, Iterable):
        raise ParamError(f"{source}: expected a mapping of <module>.<field> to values, got {given!r}")
    for item in given:
        if isinstance(item, str):
            name, eq, value = item.partition("=")
            if not eq:
                raise ParamError(
                    f"{source} {item!r}: expected <module>.<field>=<value>, e.g. mouth.teeth_dark=10"
                )
            out.append((name.strip(), value.strip(), f"{source} {item}"))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((str(item[0]), item[1], f"{source} {item[0]}"))
        else:
            raise ParamError(f"{source}: expected <module>.<field>=<value>, got {item!r}")
    return out


def normalize(given: Any, source: str = "params") -> Overrides:
    """The canonical overrides of ``given`` (see :func:`_items` for the forms): sorted ``(name,
    value)`` pairs, values typed as their fields. ``ParamError`` names an unknown module (listing the
    settable ones), an unknown field (listing the module's fields) or a value of the wrong type.
    ``source`` names where they came from in the messages (``--param``, a config file)."""
    out: dict[str, Any] = {}
    for name, value, where in _items(given, source):
        module, dot, field = name.partition(".")
        if module not in MODULES or not dot:
            raise ParamError(
                f"{where}: no settable module {module!r}{_close(module, MODULES)}; "
                f"give <module>.<field>=<value> with module one of {', '.join(sorted(MODULES))}"
            )
        hints = _hints(module)
        if field not in hints:
            raise ParamError(
                f"{where}: {module} has no field {field!r}{_close(field, hints)}; "
                f"{module}'s fields: {', '.join(sorted(hints))}"
            )
        out[name] = _coerce(value, hints[field], where)
    per: dict[str, dict[str, Any]] = {}
    for name, value in out.items():
        module, _, field = name.partition(".")
        per.setdefault(module, {})[field] = value
    for module, given in per.items():  # a Params that checks its own values (a choice) says so now
        try:
            replace(_module(module).PARAMS, **given)
        except (TypeError, ValueError) as e:
            raise ParamError(f"{source} {module}: {e}") from None
    return tuple(sorted(out.items()))


def as_dict(overrides: Overrides) -> dict[str, Any]:
    """JSON form: ``{"mouth.teeth_dark": 10.0, "eyes.closed_ramp": [0.3, 0.5]}``."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides}


def digest(overrides: Overrides) -> str:
    """Short sha1 of the overrides ("" for none): part of the measurement cache's key."""
    if not overrides:
        return ""
    return hashlib.sha1(json.dumps(as_dict(overrides), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MeasureParams:
    """One ``Params`` per settable module (``MODULES``), each its module's ``PARAMS`` unless
    overridden; ``overrides`` the canonical overrides it was built from."""

    eyes: Any
    brows: Any
    mouth: Any
    common: Any
    quality: Any
    regions: Any
    animeface: Any
    crop: Any
    siblings: Any
    overrides: Overrides = ()

    @classmethod
    def from_overrides(cls, overrides: Any = ()) -> MeasureParams:
        """Defaults with ``overrides`` applied (any form :func:`normalize` takes)."""
        canon = normalize(overrides)
        per: dict[str, dict[str, Any]] = {}
        for name, value in canon:
            module, _, field = name.partition(".")
            per.setdefault(module, {})[field] = value
        sets = {m: replace(_module(m).PARAMS, **per.get(m, {})) for m in MODULES}
        return cls(**sets, overrides=canon)


def check_calibration(trained: Any, now: Overrides, where: str) -> None:
    """Refuse a calibration fitted under other overrides than this run's (``trained``: its
    ``training["params"]``, JSON form; absent: fitted under the defaults). Its readers were fitted on
    features measured with those constants: under others the same face gives other numbers, and the
    readings would be off without a word (the same reason a calibration of another backend raises)."""
    before = normalize(trained or {}, f"{where} training.params")
    if before != now:
        fix = " ".join(f"--param {k}={_text(v)}" for k, v in before) or "no --param"
        raise ValueError(
            f"{where} was fitted with measurement params {as_dict(before) or 'at their defaults'}, this run "
            f"uses {as_dict(now) or 'the defaults'}; score with {fix}, or refit with `harmony-eval "
            "calibrate` under the same --param options"
        )


def _text(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def load_file(path: str | os.PathLike) -> Overrides:
    """The overrides of a JSON file: ``{"mouth.teeth_dark": 10}`` or ``{"mouth": {"teeth_dark": 10}}``
    (the ``params`` of a run config); errors name the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--param-file {p}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--param-file {p}: not valid JSON ({e})") from None
    if not isinstance(data, Mapping):
        raise ParamError(f"--param-file {p}: expected a JSON object of <module>.<field> to values")
    return normalize(data, f"--param-file {p}:")


def cli_overrides(given: Iterable[str] | None, path: str | os.PathLike | None = None) -> Overrides:
    """``--param-file`` (if any) then the ``--param`` options over it (a later one wins)."""
    merged = dict(load_file(path)) if path is not None else {}
    merged.update(normalize(list(given or []), "--param"))
    return tuple(sorted(merged.items()))
