"""LoRA fine-tuning of a Stable Diffusion 1.x/2.x or SDXL UNet (and optionally its text encoders), peft.

The loop is diffusers' ``train_text_to_image_lora[_sdxl].py`` without accelerate: encode the image
with the frozen VAE (latents ``(B, 4, h/f, w/f)`` x ``vae.config.scaling_factor``), add noise at a
uniform random timestep with the model's own betas (plus ``noise_offset`` x per-channel noise),
encode the caption with the text encoder(s), and regress the UNet's output on the noise (or the
velocity for v-prediction models) with MSE, optionally min-SNR weighted. Only LoRA matrices train.

Output folder (see also :mod:`training.validate`, :mod:`training.checkpoint`, :mod:`training.export`)::

    OUT/pytorch_lora_weights.safetensors   diffusers format (pipe.load_lora_weights(OUT))
    OUT/<OUT name>_kohya.safetensors       kohya / A1111 format with metadata
    OUT/model_card.json, OUT/train_summary.json, OUT/train_config.yaml
    OUT/checkpoint-<step>/                 every `checkpoint_every` steps and at the end (resumable)
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import checkpoint as ckpt
from . import export
from .config import TrainConfig, resume_conflicts, save_config, total_steps
from .dataset import BatchStream
from .validate import Validator

ADAPTER = export.ADAPTER


def _check_pipeline(pipe: Any) -> bool:
    """True for SDXL (two text encoders); ValueError for anything that is not an SD-family pipeline."""
    needed = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    missing = [n for n in needed if getattr(pipe, n, None) is None]
    if missing:
        raise ValueError(
            f"LoRA training supports SD 1.x/2.x and SDXL pipelines; {type(pipe).__name__} lacks {missing}"
        )
    return getattr(pipe, "text_encoder_2", None) is not None


def _add_adapters(pipe: Any, cfg: TrainConfig, sdxl: bool) -> dict[str, Any]:
    """Inject the LoRA layers; returns ``{component: model}`` of what trains."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig, inject_adapter_in_model

    def lora(targets: list[str]) -> Any:
        return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha or cfg.rank, lora_dropout=cfg.dropout,
                          init_lora_weights="gaussian", target_modules=targets)  # fmt: skip

    torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn at random (B starts at zero)
    pipe.unet.add_adapter(lora(cfg.target_modules), adapter_name=ADAPTER)
    models = {"unet": pipe.unet}
    if cfg.text_encoder_lora:
        for name in ("text_encoder", "text_encoder_2") if sdxl else ("text_encoder",):
            m = getattr(pipe, name)
            # peft directly: transformers' add_adapter demands a newer peft than diffusers does
            inject_adapter_in_model(lora(cfg.text_encoder_target_modules), m, adapter_name=ADAPTER)
            m.peft_config = {ADAPTER: lora(cfg.text_encoder_target_modules)}
            models[name] = m
    for m in models.values():
        cast_training_params(m, dtype=torch.float32)  # LoRA weights train in fp32 whatever the base dtype
    return models


def _remove_adapters(pipe: Any, models: dict[str, Any]) -> None:
    from diffusers.utils.peft_utils import recurse_remove_peft_layers

    for name, m in models.items():
        m.eval()
        if name == "unet":
            m.delete_adapters(ADAPTER)
        else:
            recurse_remove_peft_layers(m)
            with contextlib.suppress(AttributeError):
                del m.peft_config


def _encode(pipe: Any, captions: list[str], sdxl: bool, train_te: bool) -> tuple[Any, Any]:
    """``(hidden states, pooled or None)`` through the pipeline's own prompt encoder (same
    tokenisation, clip skip and SDXL concatenation as generation uses)."""
    import torch

    with contextlib.nullcontext() if train_te else torch.no_grad():
        if sdxl:
            pe, _, pooled, _ = pipe.encode_prompt(
                prompt=captions,
                device=pipe.device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=False,
            )
            return pe, pooled
        return pipe.encode_prompt(captions, pipe.device, 1, False)[0], None


def _micro_loss(
    pipe: Any, batch: dict, noise_scheduler: Any, gen: Any, cfg: TrainConfig, sdxl: bool, autocast: Any
) -> Any:
    import torch
    import torch.nn.functional as F
    from diffusers.training_utils import compute_snr

    device, vae = pipe.device, pipe.vae
    pixels = batch["pixel_values"].to(device, dtype=vae.dtype)
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.sample(generator=gen) * vae.config.scaling_factor
    hidden, pooled = _encode(pipe, batch["caption"], sdxl, cfg.text_encoder_lora)
    noise = torch.randn(latents.shape, generator=gen, device=device, dtype=latents.dtype)
    if cfg.noise_offset:  # Guttenberg's offset noise: lets the model move the image's mean brightness
        noise = noise + cfg.noise_offset * torch.randn(
            (latents.shape[0], latents.shape[1], 1, 1), generator=gen, device=device, dtype=latents.dtype
        )
    t = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=gen, device=device
    )
    noisy = noise_scheduler.add_noise(latents, noise, t)
    v_pred = noise_scheduler.config.prediction_type == "v_prediction"
    target = noise_scheduler.get_velocity(latents, noise, t) if v_pred else noise
    extra = {}
    if sdxl:  # size / crop conditioning: (original h, w, crop top, left, target h, w) per image
        h, w = pixels.shape[-2:]
        ids = [[*o, *c, h, w] for o, c in zip(batch["original_size"], batch["crop_top_left"], strict=True)]
        time_ids = torch.tensor(ids, device=device, dtype=hidden.dtype)
        extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
    with autocast:
        pred = pipe.unet(noisy, t, hidden, **extra).sample
    per_image = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if cfg.snr_gamma:  # min-SNR-gamma (Hang et al. 2023): cap the weight of low-noise timesteps
        snr = compute_snr(noise_scheduler, t)
        weight = torch.clamp(snr, max=cfg.snr_gamma) / (snr + 1 if v_pred else snr)
        per_image = per_image * weight
    return per_image.mean()


def train_lora(
    pipe: Any,
    records: list[tuple[Path, str]],
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool | None = None,
    meta: dict | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train a LoRA on ``records`` (``[(image, caption)]``) into ``config.out``; returns the summary.

    ``pipe`` is a loaded SD / SDXL pipeline on its device; it is handed back unchanged (adapters
    removed). ``resume`` continues from the newest ``OUT/checkpoint-*``; without it an ``OUT`` that
    already holds checkpoints is refused (nothing is overwritten). ``stop_after``: end this session
    after that many steps with a checkpoint, as an interrupted run would (time-sliced jobs, tests).
    """
    import torch
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    cfg = config.validate()
    cfg.require_paths()
    sdxl = _check_pipeline(pipe)
    out = Path(str(cfg.out))
    device = pipe.device
    if cfg.mixed_precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"`mixed_precision` fp16 needs a CUDA device, the model is on {device}; use no or bf16"
        )
    latest = ckpt.latest_checkpoint(out)
    if resume and latest is None:
        raise ValueError(f"--resume: {out} holds no checkpoint-N/ to resume from; run without --resume")
    if not resume and latest is not None:
        raise ValueError(
            f"--out {out}: already holds a training run ({latest.name}); pass --resume to continue it "
            "or choose another --out"
        )
    stream = BatchStream(records, cfg)
    n_steps = total_steps(cfg, stream.batches_per_epoch)
    out.mkdir(parents=True, exist_ok=True)

    for m in (pipe.unet, pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if m is not None:
            m.requires_grad_(False)
    if sdxl and pipe.vae.dtype == torch.float16 and pipe.vae.config.get("force_upcast", False):
        pipe.vae.to(torch.float32)  # SDXL's VAE overflows in fp16 (diffusers upcasts it the same way)
    models = _add_adapters(pipe, cfg, sdxl)
    try:
        groups = [{"params": [p for p in pipe.unet.parameters() if p.requires_grad], "lr": cfg.lr}]
        te = [p for n, m in models.items() if n != "unet" for p in m.parameters() if p.requires_grad]
        if te:
            groups.append({"params": te, "lr": cfg.text_encoder_lr or cfg.lr})
        n_params = sum(p.numel() for g in groups for p in g["params"])
        params = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=1e-8)
        lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps,
                                     num_training_steps=n_steps, num_cycles=cfg.lr_cycles)  # fmt: skip
        noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        validator = Validator(cfg, out) if cfg.validate_every else None
        step, losses, seconds_before, state = 0, [], 0.0, {}
        if resume:
            state = ckpt.read_state(latest)
            conflicts = resume_conflicts(ckpt.saved_config(state), cfg)
            if conflicts:
                before = ckpt.saved_config(state)
                detail = "; ".join(f"{k}: {before[k]!r} -> {getattr(cfg, k)!r}" for k in conflicts[:3])
                raise ValueError(f"--resume: {latest} was trained with other settings ({detail}); resume with "
                                 "the same settings or use another --out")  # fmt: skip
            ckpt.restore(latest, state, models, optimizer, lr_scheduler, gen)
            step, losses = int(state["step"]), list(state["losses"])
            seconds_before = float(state.get("seconds", 0.0))
            if validator:
                validator.restore(state.get("validation"), step)
        save_config(cfg, out / "train_config.yaml")
        amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision)
        # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none); disabled,
        # the scaler passes everything through unchanged
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.mixed_precision == "fp16")
        if resume and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])  # the loss scale it had reached
        autocast = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()

        def save_ckpt(s: int) -> Path:
            extra = {"losses": losses, "config": json.dumps(cfg.to_dict()), "seconds": seconds_before + time.perf_counter() - t0,
                     "validation": validator.state() if validator else None, "scaler": scaler.state_dict()}  # fmt: skip
            return ckpt.save_checkpoint(out, s, models, optimizer, lr_scheduler, gen, extra,
                                        lambda d: export.save_diffusers(pipe, d), cfg.keep_last)  # fmt: skip

        show = sys.stderr.isatty() if progress is None else progress
        t0, session_steps, since_val, stopped = time.perf_counter(), 0, [], None
        for m in models.values():
            m.train()
        updating, saved_at = False, step
        try:
            with tqdm(total=n_steps, initial=step, desc="train", unit="step", disable=not show) as bar:
                while step < n_steps:
                    micro = []
                    for k in range(cfg.gradient_accumulation):
                        batch = stream.batch(step * cfg.gradient_accumulation + k)
                        loss = _micro_loss(pipe, batch, noise_scheduler, gen, cfg, sdxl, autocast)
                        scaler.scale(loss / cfg.gradient_accumulation).backward()
                        micro.append(float(loss.detach()))
                    updating = True  # from here to the loss record, a checkpoint would mix two steps
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    session_steps += 1
                    losses.append(round(sum(micro) / len(micro), 6))
                    updating = False
                    since_val.append(losses[-1])
                    if not math.isfinite(losses[-1]):
                        raise FloatingPointError(f"loss became {losses[-1]} at step {step}; lower --lr (now {cfg.lr}) "
                                                 "or use --mixed-precision no")  # fmt: skip
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                    bar.update(1)
                    if validator and (step % cfg.validate_every == 0 or step == n_steps):
                        loss_mean = sum(since_val) / len(since_val) if since_val else None
                        row = validator.run(pipe, step, loss_mean, lambda d: export.save_diffusers(pipe, d))
                        since_val = []
                        bar.write(f"step {step}: loss {loss_mean:.4f}, harmony {row['harmony']}, "
                                  f"broken {row['broken_rate']}, target match {row['target_match']}")  # fmt: skip
                        if validator.should_stop():
                            stopped = f"early stop: no better {cfg.best_metric} in {cfg.early_stop_patience} validation(s)"
                    last = (
                        step == n_steps or stopped or (stop_after is not None and session_steps >= stop_after)
                    )
                    if last or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                        save_ckpt(step)
                        saved_at = step
                    if stopped or (stop_after is not None and session_steps >= stop_after and step < n_steps):
                        break
        except KeyboardInterrupt:
            if not updating and step > saved_at:  # keep the steps done: Ctrl-C, then --resume
                tqdm.write(f"interrupted at step {step}: saved {save_ckpt(step)}; continue with --resume")
            raise
        seconds = seconds_before + time.perf_counter() - t0
        finished = step >= n_steps or stopped is not None
        files = _export_all(pipe, cfg, out, step, sdxl, validator) if finished else {}
    finally:
        _remove_adapters(pipe, models)  # hand the pipeline back unchanged

    tail = losses[-10:]
    summary = {
        **(meta or {}),
        "config": cfg.to_dict(),
        "finished": finished,
        "stopped": stopped,
        "n_images": len(records),
        "batches_per_epoch": stream.batches_per_epoch,
        "steps": step,
        "total_steps": n_steps,
        "trainable_parameters": n_params,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_mean_last10": round(sum(tail) / len(tail), 6),
        "losses": losses,
        **files,
        "checkpoints": [str(p) for p in ckpt.checkpoints(out)],
        "validation": validator.summary() if validator else None,
        "seconds": round(seconds, 3),
        "steps_per_second": round(step / seconds, 3) if seconds > 0 else None,
        "device": str(device),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _export_all(
    pipe: Any, cfg: TrainConfig, out: Path, step: int, sdxl: bool, validator: Validator | None
) -> dict:
    """Final files: diffusers LoRA, kohya LoRA with metadata, model card."""
    val = validator.summary() if validator else None
    lora_file = export.save_diffusers(pipe, out)
    name = out.resolve().name
    kohya = export.save_kohya(
        pipe, out / f"{name}_kohya.safetensors", export.kohya_metadata(cfg, step, sdxl, val, name)
    )
    card = {
        "name": name,
        "base_model": cfg.model,
        "architecture": "sdxl" if sdxl else "sd15",
        "trigger": cfg.trigger,
        "steps": step,
        "rank": cfg.rank,
        "alpha": cfg.alpha or cfg.rank,
        "text_encoder_lora": cfg.text_encoder_lora,
        "data": cfg.data,
        "files": {"diffusers": lora_file.name, "kohya": kohya.name},
        "usage": {
            "diffusers": f"pipe.load_lora_weights({str(out)!r})",
            "harmony_eval": f"harmony-eval generate --model {cfg.model} --lora {out}",
            "a1111": f"<lora:{kohya.stem}:1>",
        },
        "validation": val,
        "config": cfg.to_dict(),
    }
    export.write_model_card(out, card)
    return {"lora_file": str(lora_file), "kohya_file": str(kohya), "model_card": str(out / export.MODEL_CARD)}
