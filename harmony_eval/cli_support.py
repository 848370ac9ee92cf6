"""Pieces of the command line that are not commands: plain help text, usage errors, missing extras.

typer 0.29 vendors its own click (``typer._click``) and does not install ``click``, so the CLI must
never import ``click``: usage errors are typer's own exception classes, imported from wherever the
installed typer keeps them (:data:`UsageError`, :data:`ClickException`; ``typer.Abort`` is public).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from typer.core import TyperArgument, TyperCommand

try:  # typer 0.29 vendors click; older releases use the click package itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

__all__ = [
    "ClickException",
    "MissingExtraError",
    "PlainHelpCommand",
    "UsageError",
    "missing_extra_message",
    "require_extra",
]

#: extra -> the import names it provides (what `pip install "harmony-eval[extra]"` brings).
EXTRAS: dict[str, tuple[str, ...]] = {
    "clip": ("torch", "torchvision", "open_clip", "transformers", "safetensors"),
    "gen": ("torch", "diffusers", "transformers", "safetensors", "accelerate"),
    "train": ("torch", "diffusers", "transformers", "safetensors", "accelerate", "peft"),
}
#: command -> the extra its heavy dependencies come from (torch means this extra for this command).
COMMAND_EXTRA = {
    "generate": "gen",
    "benchmark": "gen",
    "train": "train",
    "score": "clip",
    "calibrate": "clip",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def _extra_for(command: str | None, module: str) -> str | None:
    top = module.split(".")[0]
    by_command = COMMAND_EXTRA.get(command or "")
    if by_command and top in EXTRAS[by_command]:
        return by_command
    return next((x for x, mods in EXTRAS.items() if top in mods), None)


def missing_extra_message(command: str | None, module: str | None) -> str:
    """One line for a ``ModuleNotFoundError`` of ``module`` met while running ``command``."""
    top = (module or "?").split(".")[0]
    extra = _extra_for(command, top)
    what = f"`harmony-eval {command}`" if command else "this command"
    if extra is None:  # a base dependency: the install itself is incomplete
        return f"{what} needs the Python package {top!r}, which is not installed: pip install harmony-eval"
    return f'{what} needs {top}, which is not installed: pip install "harmony-eval[{extra}]"'


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtraError` naming every missing package of ``extra`` that ``what`` needs."""
    missing = [m for m in (modules or EXTRAS[extra]) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f'{what} needs {", ".join(missing)} (not installed): pip install "harmony-eval[{extra}]"'
        )


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


class PlainHelpCommand(TyperCommand):
    """typer's command with help a person reads: ``INPUTS...`` in the usage line (typer 0.29 prints
    ``{inputs}...``), ``<path>...`` for a list argument (not ``<list[Path]>``) and nothing beside
    on/off flags (not ``<bool>``)."""

    def get_params(self, ctx: Any) -> list:
        params = super().get_params(ctx)  # includes --help, which typer adds here
        for p in params:
            if isinstance(p, TyperArgument):
                if p.nargs != 1 and "display_type_rich" not in vars(p):
                    inner = p.type_descriptor.annotation.__args__[0]
                    label = f"<{getattr(inner, '__name__', str(inner)).lower()}>..."
                    p.display_type_rich = lambda ctx, _label=label: _label  # type: ignore[method-assign]
            elif getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, TyperArgument):
                name = (p.metavar or (p.name or "arg").upper()) + ("..." if p.nargs != 1 else "")
                pieces.append(name if p.required else f"[{name}]")
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces
