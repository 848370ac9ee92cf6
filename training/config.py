"""The training configuration: one dataclass, read from YAML, overridden by flags, validated by key.

``harmony-eval train --config FILE.yaml --lr 1e-4`` reads the file, then every flag given on the command
line replaces its key. Errors name the key, the value and what was expected; an unknown key names the
valid ones (with the closest match), so a typo never silently trains with a default.

>>> cfg = load_config("training/configs/seed_v1.yaml", {"steps": 10})   # doctest: +SKIP
>>> cfg.rank, cfg.epochs, cfg.steps                                    # doctest: +SKIP
(16, None, 10)
"""

from __future__ import annotations

import contextlib
import difflib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]  # UNet attention projections, as diffusers' example
TEXT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "out_proj"]  # CLIP attention projections
MIXED_PRECISION = ("no", "fp16", "bf16")
# diffusers.optimization.SchedulerType values that need no extra arguments beyond warm-up and cycles
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
DEFAULT_STEPS = 500


@dataclass
class TrainConfig:
    """Every training setting; defaults are diffusers' LoRA example unless the comment says why."""

    # what to train on and where to write
    model: str | None = None  # Hub id, diffusers folder, single .safetensors (SD 1.5 or SDXL), tiny-random
    data: str | None = None  # image folder with .txt sidecars, metadata.jsonl or a generation manifest
    out: str | None = None
    arch: str = "auto"  # single-file checkpoints: auto | sd15 | sdxl
    model_config: str | None = None  # single-file checkpoints: local diffusers folder with the configs
    device: str = "auto"
    # the adapter
    rank: int = 4  # 4 is the example's default; the seed used 16 and 64
    alpha: float | None = None  # None = rank, i.e. a LoRA scale of 1.0 at load time
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(TARGET_MODULES))
    text_encoder_lora: bool = False  # off: the seed's LoRAs were UNet-only, and it halves the file
    text_encoder_target_modules: list[str] = field(default_factory=lambda: list(TEXT_TARGET_MODULES))
    text_encoder_lr: float | None = None  # None = lr
    # optimisation
    lr: float = 1e-4
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    lr_cycles: int = 1  # cosine_with_restarts only
    steps: int | None = None  # optimiser steps; give steps or epochs (neither = 500 steps)
    epochs: int | None = None
    batch_size: int = 1
    gradient_accumulation: int = 1
    mixed_precision: str = "no"  # frozen weights in that dtype, LoRA kept in fp32
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-2
    seed: int = 0
    # images
    resolution: int = 512  # SD 1.5's native size; 1024 for SDXL
    center_crop: bool = True
    random_flip: bool = False  # off: a mirrored face swaps which eye is which (region scores read sides)
    aspect_buckets: bool = False  # batch images by aspect ratio instead of square-cropping them
    bucket_step: int = 64  # bucket sides are multiples of this (64 as kohya; 8 for tiny models)
    noise_offset: float = 0.0  # 0.05-0.1 lets the model draw darker/brighter images than mid-grey
    snr_gamma: float | None = None  # min-SNR loss weighting (Hang et al. 2023); 5.0 is the paper's value
    # checkpoints
    checkpoint_every: int = 500  # 0 = only at the end
    keep_last: int | None = None  # keep the K newest checkpoints (None = all)
    # validation in the loop
    validate_every: int = 0  # 0 = no validation
    trigger: str | None = None  # prepended to the validation prompts ("trigger, prompt")
    validation_archetypes: list[str] | None = None  # None = all in prompts/archetypes.yaml
    validation_emotions: list[str] | None = None  # None = the active emotions
    validation_cfgs: list[float] = field(default_factory=lambda: [7.0])  # SD 1.5's usual guidance
    validation_seeds: list[int] = field(default_factory=lambda: [0])
    validation_steps: int | None = None  # None = 20; 2 for tiny-random (its images are noise at any count)
    validation_scheduler: str | None = None  # None = the model's own
    validation_size: int | None = None  # None = resolution
    best_metric: str = "harmony"  # harmony | perfect_rate | acceptable_rate | broken_rate | target_match
    keep_best: bool = False  # copy the LoRA of the best validation to OUT/best/
    early_stop_patience: int = 0  # stop after this many validations without a better best_metric; 0 = off

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad key; returns self."""
        from benchmarks.summary import METRICS

        checks: list[tuple[str, bool, str]] = [
            ("rank", self.rank >= 1, "an integer >= 1"),
            ("alpha", self.alpha is None or self.alpha > 0, "> 0 or unset"),
            ("dropout", 0.0 <= self.dropout < 1.0, "in [0, 1)"),
            ("target_modules", bool(self.target_modules), "a non-empty list of module names"),
            ("text_encoder_target_modules", bool(self.text_encoder_target_modules), "a non-empty list"),
            ("text_encoder_lr", self.text_encoder_lr is None or self.text_encoder_lr > 0, "> 0 or unset"),
            ("lr", self.lr > 0, "> 0"),
            ("lr_scheduler", self.lr_scheduler in LR_SCHEDULERS, f"one of {', '.join(LR_SCHEDULERS)}"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            (
                "warmup_steps",
                self.warmup_steps == 0 or self.lr_scheduler != "constant",
                "0 with lr_scheduler constant (which has no warm-up; use constant_with_warmup)",
            ),
            ("lr_cycles", self.lr_cycles >= 1, "an integer >= 1"),
            ("steps", self.steps is None or self.steps >= 1, "an integer >= 1 or unset"),
            ("epochs", self.epochs is None or self.epochs >= 1, "an integer >= 1 or unset"),
            ("steps", self.steps is None or self.epochs is None, "unset when epochs is given (pick one)"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("gradient_accumulation", self.gradient_accumulation >= 1, "an integer >= 1"),
            ("mixed_precision", self.mixed_precision in MIXED_PRECISION, "one of no, fp16, bf16"),
            ("max_grad_norm", self.max_grad_norm > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("seed", self.seed >= 0, "a non-negative integer"),
            ("resolution", self.resolution >= 8 and self.resolution % 8 == 0, "a positive multiple of 8"),
            ("bucket_step", self.bucket_step >= 8 and self.bucket_step % 8 == 0, "a positive multiple of 8"),
            ("noise_offset", self.noise_offset >= 0, ">= 0"),
            ("snr_gamma", self.snr_gamma is None or self.snr_gamma > 0, "> 0 or unset"),
            ("checkpoint_every", self.checkpoint_every >= 0, ">= 0 (0 = only at the end)"),
            ("keep_last", self.keep_last is None or self.keep_last >= 1, "an integer >= 1 or unset"),
            ("validate_every", self.validate_every >= 0, ">= 0 (0 = no validation)"),
            ("validation_cfgs", bool(self.validation_cfgs), "a non-empty list of guidance scales"),
            ("validation_seeds", bool(self.validation_seeds), "a non-empty list of seeds"),
            (
                "validation_steps",
                self.validation_steps is None or self.validation_steps >= 1,
                "an integer >= 1",
            ),
            (
                "validation_size",
                self.validation_size is None or (self.validation_size >= 8 and self.validation_size % 8 == 0),
                "a positive multiple of 8 or unset",
            ),
            ("best_metric", self.best_metric in METRICS, f"one of {', '.join(METRICS)}"),
            ("early_stop_patience", self.early_stop_patience >= 0, ">= 0 (0 = off)"),
            ("arch", self.arch in ("auto", "sd15", "sdxl"), "one of auto, sd15, sdxl"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}")
        return self

    def require_paths(self) -> None:
        """``model``, ``data`` and ``out`` must be set (in the file or as flags) before training."""
        missing = [k for k in ("model", "data", "out") if not getattr(self, k)]
        if missing:
            flags = ", ".join(f"--{k}" for k in missing)
            raise ValueError(
                f"missing {', '.join(f'`{k}`' for k in missing)}: set it in --config or pass {flags}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
_HINTS = typing.get_type_hints(TrainConfig)


def _expected(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args and typing.get_origin(tp) in (typing.Union, types.UnionType) else tp
    opt = " or null" if type(None) in typing.get_args(tp) else ""
    if typing.get_origin(base) is list:
        inner = typing.get_args(base)[0].__name__
        return f"a list of {inner}{opt}"
    return f"{getattr(base, '__name__', base)}{opt}"


def coerce(key: str, value: Any, where: str = "") -> Any:
    """``value`` checked against ``key``'s type (an int is accepted for a float, a single value for a
    list); ValueError names the key otherwise."""
    if key not in _HINTS:
        hint = difflib.get_close_matches(key, KEYS, n=1)
        did = f" (did you mean `{hint[0]}`?)" if hint else ""
        raise ValueError(f"{where}`{key}` is not a training key{did}; valid keys: {', '.join(KEYS)}")
    tp = _HINTS[key]
    if value is None:
        if type(None) in typing.get_args(tp):
            return None
        raise ValueError(f"{where}`{key}` must be {_expected(tp)}, got null")
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args and typing.get_origin(tp) in (typing.Union, types.UnionType) else tp
    if typing.get_origin(base) is list:
        inner = typing.get_args(base)[0]
        items = value if isinstance(value, list) else [value]
        return [_scalar(key, inner, v, where, _expected(tp)) for v in items]
    return _scalar(key, base, value, where, _expected(tp))


def _scalar(key: str, tp: type, v: Any, where: str, expected: str) -> Any:
    if tp is float and isinstance(v, str):
        # PyYAML reads `lr: 1e-4` (no dot: YAML 1.1) as a string; it is plainly a number
        with contextlib.suppress(ValueError):
            v = float(v)
    # bool is an int subclass in Python: `rank: true` must not mean rank 1
    ok = (
        (tp is bool and isinstance(v, bool))
        or (tp is int and isinstance(v, int) and not isinstance(v, bool))
        or (tp is float and isinstance(v, (int, float)) and not isinstance(v, bool))
        or (tp is str and isinstance(v, str))
    )
    if not ok:
        raise ValueError(f"{where}`{key}` must be {expected}, got {v!r} ({type(v).__name__})")
    return float(v) if tp is float else v


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read ``path`` (YAML mapping of :data:`KEYS`), apply ``overrides`` (None values = not given),
    validate. A key written with dashes (``batch-size``) is read as its underscore name."""
    from harmony_eval.resources import load_yaml

    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--config {path}: file not found")
        for k, v in load_yaml(p).items():
            key = str(k).replace("-", "_")
            raw[key] = coerce(key, v, f"{p}: ")
    for k, v in (overrides or {}).items():
        if v is not None:
            raw[k] = coerce(k, v, f"--{k.replace('_', '-')}: ")
    # a flag --steps overrides a file's epochs (and --epochs a file's steps): the flag is the newer wish
    if (overrides or {}).get("steps") is not None and (overrides or {}).get("epochs") is None:
        raw["epochs"] = None
    if (overrides or {}).get("epochs") is not None and (overrides or {}).get("steps") is None:
        raw["steps"] = None
    return TrainConfig(**raw).validate()


def total_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Optimiser steps to run: ``steps``, or ``ceil(epochs x batches / gradient_accumulation)``."""
    if cfg.steps is not None:
        return cfg.steps
    if cfg.epochs is None:
        return DEFAULT_STEPS
    return -(-cfg.epochs * batches_per_epoch // cfg.gradient_accumulation)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """The resolved config as YAML (what ``--config`` reads back)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")


# keys a resumed run may change: where it runs, how often it reports, and how long it goes on
RESUMABLE_CHANGES = {
    "device", "out", "steps", "epochs", "checkpoint_every", "keep_last", "validate_every",
    "keep_best", "early_stop_patience",
}  # fmt: skip


def resume_conflicts(before: dict[str, Any], now: TrainConfig) -> list[str]:
    """Keys whose value differs from the checkpointed run's (and would change what is learned)."""
    cur = now.to_dict()
    return [k for k in KEYS if k not in RESUMABLE_CHANGES and k in before and before[k] != cur[k]]
