"""Exporting a trained LoRA: diffusers format, kohya / A1111 format, and a model card.

- diffusers: ``pytorch_lora_weights.safetensors`` via ``save_lora_weights`` with keys
  ``unet.<module>.lora_A.weight`` / ``lora_B`` (and ``text_encoder[_2].``), the peft config as
  metadata; loads with ``pipe.load_lora_weights(folder)``.
- kohya (what sd-scripts writes and A1111 / ComfyUI / diffusers read): for each adapted module
  ``<prefix>_<module path with . -> _>.lora_down.weight`` (= peft ``lora_A``), ``.lora_up.weight``
  (= ``lora_B``) and ``.alpha`` (a scalar; scale = alpha / rank, as peft's ``lora_alpha / r``).
  Prefixes: ``lora_unet``, ``lora_te`` (SD 1.x) or ``lora_te1`` / ``lora_te2`` (SDXL). Module paths
  are the diffusers UNet's, which is how sd-scripts names SD 1.x LoRAs and what A1111's loader maps
  (``convert_diffusers_name_to_compvis``). Text-encoder paths are CLIP's ``text_model.encoder...``.
  Metadata: kohya's ``ss_*`` keys plus ``harmony_eval_config`` / ``harmony_eval_validation`` (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ADAPTER = "default"
LORA_FILE = "pytorch_lora_weights.safetensors"
MODEL_CARD = "model_card.json"


def adapted(pipe: Any) -> dict[str, Any]:
    """``{component name: model}`` of the pipeline's parts that carry the training adapter."""
    out = {}
    for name in ("unet", "text_encoder", "text_encoder_2"):
        m = getattr(pipe, name, None)
        if m is not None and any(".lora_A." in n for n, _ in m.named_parameters()):
            out[name] = m
    return out


def peft_states(pipe: Any) -> dict[str, dict[str, Any]]:
    """``{component: {"<module>.lora_A.weight": tensor, ...}}`` (peft's keys, adapter name removed)."""
    from peft.utils import get_peft_model_state_dict

    return {n: get_peft_model_state_dict(m, adapter_name=ADAPTER) for n, m in adapted(pipe).items()}


def save_diffusers(pipe: Any, folder: str | Path, lora_config: dict[str, Any] | None = None) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` (see the module docstring)."""
    from diffusers.utils import convert_state_dict_to_diffusers

    states = {k: convert_state_dict_to_diffusers(v) for k, v in peft_states(pipe).items()}
    kwargs: dict[str, Any] = {"unet_lora_layers": states["unet"]}
    meta = {"unet_lora_adapter_metadata": pipe.unet.peft_config[ADAPTER].to_dict()}
    models = adapted(pipe)
    for name in ("text_encoder", "text_encoder_2"):
        if name in states:
            kwargs[f"{name}_lora_layers"] = states[name]
            # without its peft config diffusers cannot rebuild the text-encoder adapter on load
            meta[f"{name}_lora_adapter_metadata"] = models[name].peft_config[ADAPTER].to_dict()
    type(pipe).save_lora_weights(
        save_directory=str(folder), weight_name=LORA_FILE, safe_serialization=True, **kwargs, **meta
    )
    return Path(folder) / LORA_FILE


def kohya_prefixes(pipe: Any) -> dict[str, str]:
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    te = {"text_encoder": "lora_te1", "text_encoder_2": "lora_te2"} if sdxl else {"text_encoder": "lora_te"}
    return {"unet": "lora_unet", **te}


def _kohya_module(component: str, module: str) -> str:
    # transformers 5 names CLIPTextModel's layers without the `text_model.` level; kohya and A1111
    # always have it
    if component.startswith("text_encoder") and not module.startswith("text_model."):
        module = "text_model." + module
    return module.replace(".", "_")


def to_kohya(states: dict[str, dict[str, Any]], alphas: dict[str, float], prefixes: dict[str, str]) -> dict:
    """peft states (:func:`peft_states`) -> one kohya state dict; ``alphas[component]`` = lora_alpha."""
    import torch

    out = {}
    for comp, sd in states.items():
        for key, a in sd.items():
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[: -len(".lora_A.weight")]
            name = f"{prefixes[comp]}_{_kohya_module(comp, module)}"
            out[f"{name}.lora_down.weight"] = a.detach().cpu().contiguous()
            out[f"{name}.lora_up.weight"] = sd[f"{module}.lora_B.weight"].detach().cpu().contiguous()
            out[f"{name}.alpha"] = torch.tensor(float(alphas[comp]))
    return out


def from_kohya(kohya: dict[str, Any], modules: dict[str, list[str]], prefixes: dict[str, str]) -> dict:
    """The inverse of :func:`to_kohya`: kohya names are ambiguous on their own (``to_q`` vs ``to.q``),
    so they are matched against the model's own module paths ``modules[component]``. Returns
    ``({component: peft state}, {component: alpha})``; ValueError names a key that matches nothing."""
    lookup = {f"{prefixes[c]}_{_kohya_module(c, m)}": (c, m) for c, names in modules.items() for m in names}
    states: dict[str, dict[str, Any]] = {}
    alphas: dict[str, float] = {}
    for key, t in kohya.items():
        name, _, kind = key.partition(".")
        if name not in lookup:
            raise ValueError(f"kohya key {key!r} matches no LoRA module of this model")
        comp, module = lookup[name]
        if kind == "alpha":
            alphas[comp] = float(t)
            continue
        peft_kind = {"lora_down.weight": "lora_A.weight", "lora_up.weight": "lora_B.weight"}[kind]
        states.setdefault(comp, {})[f"{module}.{peft_kind}"] = t
    return states, alphas


def lora_modules(states: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {c: sorted({k.rsplit(".lora_", 1)[0] for k in sd}) for c, sd in states.items()}


def save_kohya(pipe: Any, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the kohya / A1111 file; ``metadata`` values that are not strings are stored as JSON."""
    from safetensors.torch import save_file

    models = adapted(pipe)
    alphas = {c: m.peft_config[ADAPTER].lora_alpha for c, m in models.items()}
    sd = to_kohya(peft_states(pipe), alphas, kohya_prefixes(pipe))
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    save_file(sd, str(path), metadata=meta)
    return Path(path)


def kohya_metadata(cfg: Any, steps: int, sdxl: bool, validation: dict | None, name: str) -> dict[str, Any]:
    """kohya's ``ss_*`` keys (what A1111's and civitai's readers show) plus our own JSON blobs."""
    alpha = cfg.alpha or cfg.rank
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(cfg.rank),
        "ss_network_alpha": str(alpha),
        "ss_network_dropout": str(cfg.dropout),
        "ss_steps": str(steps),
        "ss_learning_rate": str(cfg.lr),
        "ss_lr_scheduler": cfg.lr_scheduler,
        "ss_resolution": f"({cfg.resolution}, {cfg.resolution})",
        "ss_seed": str(cfg.seed),
        "ss_noise_offset": str(cfg.noise_offset),
        "ss_min_snr_gamma": str(cfg.snr_gamma),
        "ss_mixed_precision": cfg.mixed_precision,
        "ss_base_model_version": "sdxl_base_v1-0" if sdxl else "sd_v1",
        "ss_sd_model_name": str(cfg.model),
        "ss_output_name": name,
        "ss_network_train_text_encoder": str(cfg.text_encoder_lora),
        "modelspec.architecture": ("stable-diffusion-xl-v1-base" if sdxl else "stable-diffusion-v1")
        + "/lora",
        "modelspec.title": name,
        "harmony_eval_config": cfg.to_dict(),
        "harmony_eval_validation": validation or {},
    }


def write_model_card(out: str | Path, card: dict[str, Any]) -> Path:
    """``OUT/model_card.json``: base model, settings, data, steps, files, validation summary."""
    path = Path(out) / MODEL_CARD
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
