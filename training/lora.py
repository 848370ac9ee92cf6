"""LoRA fine-tuning of a Stable Diffusion UNet on captioned images (peft), saved in diffusers format.

The loop is diffusers' ``examples/text_to_image/train_text_to_image_lora.py`` without accelerate:
encode the image with the frozen VAE (latents ``(B, 4, R/f, R/f)`` x ``vae.config.scaling_factor``),
add noise at a uniform random timestep with the model's own betas (DDPM forward process), encode
the caption with the frozen text encoder, and regress the UNet's output on the noise (or on the
velocity for v-prediction models) with MSE. Only LoRA matrices on the attention projections
(``to_q``, ``to_k``, ``to_v``, ``to_out.0``) train; rank 4 on SD 1.5 is ~0.8 M parameters, a 3 MB file.

Output folder::

    OUT/pytorch_lora_weights.safetensors           final LoRA (load with pipe.load_lora_weights(OUT))
    OUT/checkpoint-<step>/pytorch_lora_weights.safetensors   every `checkpoint_every` steps
    OUT/train_summary.json                         settings, per-step losses, timings, versions
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .data import CaptionDataset

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]  # attention projections, as diffusers' example
ADAPTER = "default"
LORA_FILE = "pytorch_lora_weights.safetensors"


@dataclass
class TrainConfig:
    """Training hyperparameters; defaults are those of diffusers' LoRA example unless noted."""

    rank: int = 4  # LoRA rank r; 4 is the example's default and enough for a style/expression LoRA
    alpha: float | None = None  # lora_alpha; None = rank, i.e. a LoRA scale of 1.0 at load time
    steps: int = 500
    lr: float = 1e-4
    batch_size: int = 1
    resolution: int = 512  # SD 1.5's native size; use 768/1024 only for models trained there
    checkpoint_every: int = 500  # 0 = only the final weights
    seed: int = 0
    center_crop: bool = True
    random_flip: bool = False  # off: a mirrored face swaps which eye is which (region scores read sides)
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    mixed_precision: str = "no"  # no | fp16 | bf16: frozen weights in that dtype, LoRA kept in fp32
    target_modules: list[str] = field(default_factory=lambda: list(TARGET_MODULES))

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        checks = [
            ("rank", self.rank >= 1, "an integer >= 1"),
            ("steps", self.steps >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("resolution", self.resolution >= 8 and self.resolution % 8 == 0, "a positive multiple of 8"),
            ("checkpoint_every", self.checkpoint_every >= 0, ">= 0 (0 = no intermediate checkpoints)"),
            ("alpha", self.alpha is None or self.alpha > 0, "> 0 or unset"),
            ("mixed_precision", self.mixed_precision in ("no", "fp16", "bf16"), "one of no, fp16, bf16"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}")


def save_lora(unet: Any, folder: str | Path) -> Path:
    """Write the UNet's LoRA adapter as ``folder/pytorch_lora_weights.safetensors`` in diffusers' key
    layout (``unet.<module>.lora_A.weight``), with the peft config (rank, alpha, targets) as metadata
    so it loads back at the trained scale."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER))
    StableDiffusionPipeline.save_lora_weights(
        save_directory=str(folder),
        unet_lora_layers=state,
        weight_name=LORA_FILE,
        safe_serialization=True,
        unet_lora_adapter_metadata=unet.peft_config[ADAPTER].to_dict(),
    )
    return Path(folder) / LORA_FILE


def _check_pipeline(pipe: Any) -> None:
    needed = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    missing = [n for n in needed if getattr(pipe, n, None) is None]
    if missing or getattr(pipe, "text_encoder_2", None) is not None:
        raise ValueError(
            f"LoRA training supports SD 1.x/2.x pipelines (one text encoder); {type(pipe).__name__} "
            + (f"lacks {missing}" if missing else "is SDXL-style (two text encoders)")
            + ". Use an SD 1.5-family model, e.g. a local Anything V3 folder"
        )


def train_lora(
    pipe: Any,
    records: list[tuple[Path, str]],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    progress: bool | None = None,
    meta: dict | None = None,
) -> dict:
    """Train a UNet LoRA on ``records`` (``[(image, caption)]``) and save it under ``out_dir``.

    ``pipe`` is a loaded SD pipeline (see :func:`generation.pipeline.load_pipeline`) on its device;
    its weights are not changed (the adapter is removed again at the end). Returns the summary also
    written to ``OUT/train_summary.json`` (``meta``, e.g. model and data paths, goes in first).
    """
    import sys

    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    cfg = config or TrainConfig()
    cfg.validate()
    _check_pipeline(pipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pipe.device
    if cfg.mixed_precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"`mixed_precision` fp16 needs a CUDA device, the model is on {device}; use no or bf16"
        )

    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for m in (unet, vae, text_encoder):
        m.requires_grad_(False)
    torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn at random (B starts at zero)
    unet.add_adapter(
        LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha or cfg.rank,
            init_lora_weights="gaussian",
            target_modules=cfg.target_modules,
        ),
        adapter_name=ADAPTER,
    )
    cast_training_params(unet, dtype=torch.float32)  # LoRA weights train in fp32 whatever the base dtype
    params = [p for p in unet.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)

    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=1e-8
    )
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps
    )
    dataset = CaptionDataset(records, cfg.resolution, cfg.center_crop, cfg.random_flip, cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision)
    autocast = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
    latent_dtype = vae.dtype

    show = sys.stderr.isatty() if progress is None else progress
    losses, checkpoints = [], []
    t0 = time.perf_counter()
    step = 0
    unet.train()
    try:
        with tqdm(total=cfg.steps, desc="train", unit="step", disable=not show) as bar:
            while step < cfg.steps:
                for batch in loader:
                    pixels = batch["pixel_values"].to(device, dtype=latent_dtype)
                    ids = tokenizer(
                        batch["caption"],
                        max_length=tokenizer.model_max_length,
                        padding="max_length",
                        truncation=True,
                        return_tensors="pt",
                    ).input_ids.to(device)
                    with torch.no_grad():
                        latents = vae.encode(pixels).latent_dist.sample(generator=gen)
                        latents = latents * vae.config.scaling_factor
                        hidden = text_encoder(ids)[0]
                    noise = torch.randn(latents.shape, generator=gen, device=device, dtype=latents.dtype)
                    t = torch.randint(
                        0,
                        noise_scheduler.config.num_train_timesteps,
                        (latents.shape[0],),
                        generator=gen,
                        device=device,
                    )
                    noisy = noise_scheduler.add_noise(latents, noise, t)
                    if noise_scheduler.config.prediction_type == "v_prediction":
                        target = noise_scheduler.get_velocity(latents, noise, t)
                    else:
                        target = noise
                    with autocast:
                        pred = unet(noisy, t, hidden).sample
                    loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)

                    step += 1
                    losses.append(round(float(loss.detach()), 6))
                    if not math.isfinite(losses[-1]):
                        raise FloatingPointError(
                            f"loss became {losses[-1]} at step {step}; lower --lr (now {cfg.lr}) "
                            "or use --mixed-precision no"
                        )
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                    bar.update(1)
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                        checkpoints.append(str(save_lora(unet, out / f"checkpoint-{step}")))
                    if step >= cfg.steps:
                        break
        seconds = time.perf_counter() - t0
        lora_file = save_lora(unet, out)
    finally:
        unet.eval()
        unet.delete_adapters(ADAPTER)  # hand the pipeline back unchanged

    tail = losses[-10:]
    summary = {
        **(meta or {}),
        "config": asdict(cfg),
        "n_images": len(records),
        "steps": step,
        "trainable_parameters": n_params,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_mean_last10": round(sum(tail) / len(tail), 6),
        "losses": losses,
        "lora_file": str(lora_file),
        "checkpoints": checkpoints,
        "seconds": round(seconds, 3),
        "steps_per_second": round(step / seconds, 3) if seconds > 0 else None,
        "device": str(device),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
