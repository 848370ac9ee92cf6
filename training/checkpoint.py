"""Training checkpoints that resume exactly: LoRA tensors, optimiser, LR scheduler, RNG states, step.

Layout of ``OUT/checkpoint-<step>/``::

    pytorch_lora_weights.safetensors   the LoRA in diffusers format (usable with generate --lora)
    adapter_state.safetensors          every trainable tensor by parameter name (what resume loads)
    training_state.pt                  optimiser + scheduler state dicts, RNG states, step, losses,
                                       validation state, the config (JSON text)

``training_state.pt`` holds only tensors and plain containers (dict, list, str, int, float, None),
so it is read with ``torch.load(weights_only=True)``: a checkpoint from someone else cannot run code.
A checkpoint is written to ``checkpoint-<step>.tmp`` and renamed, so a run killed mid-save never
leaves a half checkpoint that ``--resume`` would pick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

ADAPTER_STATE = "adapter_state.safetensors"
TRAINING_STATE = "training_state.pt"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def trainable_tensors(models: dict[str, Any]) -> dict[str, Any]:
    """``{"<model>.<param name>": tensor}`` of every parameter that trains (the LoRA matrices)."""
    return {
        f"{m}.{n}": p.detach().to("cpu").contiguous().clone()
        for m, model in models.items()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def rng_states(generator: Any) -> dict[str, Any]:
    import torch

    states: dict[str, Any] = {"torch": torch.get_rng_state(), "noise": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any], generator: Any) -> None:
    import torch

    torch.set_rng_state(states["torch"])  # LoRA dropout draws from the global generator
    generator.set_state(states["noise"])  # noise, timesteps, VAE posterior samples
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def checkpoints(out: str | Path) -> list[Path]:
    """Complete checkpoints under ``out``, oldest first (by step number, not name)."""
    found = []
    for p in Path(out).glob("checkpoint-*"):
        m = _NAME.match(p.name)
        if m and (p / TRAINING_STATE).is_file() and (p / ADAPTER_STATE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: str | Path) -> Path | None:
    found = checkpoints(out)
    return found[-1] if found else None


def save_checkpoint(
    out: str | Path,
    step: int,
    models: dict[str, Any],
    optimizer: Any,
    lr_scheduler: Any,
    generator: Any,
    extra: dict[str, Any],
    export: Callable[[Path], Any],
    keep_last: int | None = None,
) -> Path:
    """Write ``OUT/checkpoint-<step>/`` (see the module docstring); ``export(folder)`` writes the
    diffusers LoRA file. ``extra`` must be JSON-like. Then keep only the ``keep_last`` newest."""
    import torch
    from safetensors.torch import save_file

    final = Path(out) / f"checkpoint-{step}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_tensors(models), str(tmp / ADAPTER_STATE))
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": lr_scheduler.state_dict(),
        "rng": rng_states(generator),
        **extra,
    }
    torch.save(state, tmp / TRAINING_STATE)
    export(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if keep_last:
        for old in checkpoints(out)[:-keep_last]:
            shutil.rmtree(old)
    return final


def read_state(folder: str | Path) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint (tensors and plain containers only: weights_only)."""
    import torch

    return torch.load(Path(folder) / TRAINING_STATE, map_location="cpu", weights_only=True)


def restore(
    folder: str | Path,
    state: dict[str, Any],
    models: dict[str, Any],
    optimizer: Any,
    lr_scheduler: Any,
    generator: Any,
) -> None:
    """Load a checkpoint's LoRA tensors, optimiser, scheduler and RNG states into the live objects."""
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    tensors = load_file(str(folder / ADAPTER_STATE))
    live = {
        f"{m}.{n}": p for m, model in models.items() for n, p in model.named_parameters() if p.requires_grad
    }
    bad = sorted(set(tensors) ^ set(live)) or [
        k for k in live if tuple(tensors[k].shape) != tuple(live[k].shape)
    ]
    if bad:
        raise ValueError(
            f"{folder}: checkpoint holds other LoRA layers than this run trains (e.g. {bad[0]}); resume "
            "with the checkpoint's rank / target modules, or use another --out"
        )
    with torch.no_grad():
        for k, p in live.items():
            p.copy_(tensors[k].to(p.device, p.dtype))
    optimizer.load_state_dict(state["optimizer"])
    lr_scheduler.load_state_dict(state["scheduler"])
    set_rng_states(state["rng"], generator)


def saved_config(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(state.get("config", "{}"))
