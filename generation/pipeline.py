"""Loading a diffusers text-to-image pipeline: model, device, dtype, scheduler, LoRA.

Models: a Hugging Face id or a local diffusers folder (``model_index.json``; SD 1.x/2.x, SDXL and
the rest via ``AutoPipelineForText2Image``), a single-file ``.safetensors`` checkpoint (SD 1.x or
SDXL via ``from_single_file``), or ``tiny-random`` / ``tiny-random-xl`` (:mod:`generation.tiny`,
random weights built in memory, for smoke runs).
``.ckpt`` files are refused: they are pickles.

Every check here runs before any weights are read, so a typo fails in milliseconds, not minutes.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .tiny import TINY_MODELS

# name -> (diffusers class, extra config, A1111 sampler name written into the PNG metadata).
# Names follow the web UIs most users know; the class is built with `from_config` from the model's
# own scheduler config, so betas and timestep spacing stay the checkpoint's.
SCHEDULERS: dict[str, tuple[str, dict, str]] = {
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpm++": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M Karras"),
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, "DPM++ 2M SDE"),
    "dpm++_sde_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
        "DPM++ 2M SDE Karras",
    ),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "pndm": ("PNDMScheduler", {}, "PNDM"),
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
    "heun": ("HeunDiscreteScheduler", {}, "Heun"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
    "deis": ("DEISMultistepScheduler", {}, "DEIS"),
}
_VARIED_OPTIONS = ("use_karras_sigmas", "algorithm_type")  # the options SCHEDULERS entries set
DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16"}
DTYPES |= {"bfloat16": "bfloat16", "bf16": "bfloat16"}
ARCHS = ("auto", "sd15", "sdxl")
LORA_ADAPTER = "harmony_lora"


class ModelLoadError(ValueError):
    """The model could not be loaded; the message is one line saying what to do. A ValueError, so
    every CLI treats it as bad input (exit code 2)."""


def check_scheduler(name: str | None) -> None:
    """Raise for a scheduler name not in :data:`SCHEDULERS` (None = keep the model's own)."""
    if name is not None and name not in SCHEDULERS:
        raise ValueError(f"Unknown `scheduler` {name!r}; choose one of {sorted(SCHEDULERS)} (or omit it)")


def check_size(width: int | None, height: int | None) -> None:
    """diffusers' rule for SD-family models: both sides divisible by 8 (None = model default)."""
    for name, v in (("width", width), ("height", height)):
        if v is not None and v <= 0:
            raise ValueError(f"`{name}` must be a positive number of pixels, got {v}")
    if (width or 8) % 8 or (height or 8) % 8:
        raise ValueError(
            f"`height` and `width` have to be divisible by 8 but are {height} and {width}. "
            f"Try {_round8(height)}x{_round8(width)} (height x width)."
        )


def _round8(v: int | None) -> int | None:
    return None if v is None else max(8, int(v / 8 + 0.5) * 8)  # nearest multiple, halves up


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must exist."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    kind = device.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unknown `device` {device!r}; use auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"`device` {device!r} asked for but torch sees no CUDA GPU; use --device cpu or auto"
        )
    if kind == "mps" and not mps:
        raise ValueError(f"`device` {device!r} asked for but MPS is not available; use --device cpu or auto")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` -> float16 on CUDA/MPS (half the memory, the usual way to run SD), float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    if dtype not in DTYPES:
        raise ValueError(f"Unknown `dtype` {dtype!r}; use auto, {', '.join(sorted(set(DTYPES.values())))}")
    if DTYPES[dtype] == "float16" and device == "cpu":
        raise ValueError("`dtype` float16 on CPU: many CPU kernels lack fp16; use float32 or bfloat16 on CPU")
    return getattr(torch, DTYPES[dtype])


def single_file_arch(path: Path) -> str:
    """``sdxl`` when the checkpoint holds SDXL's second text encoder, else ``sd15``. Reads only the
    safetensors header (key names), not the weights."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    return "sd15"


def _one_line(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:300]}"


def load_pipeline(
    model: str,
    device: str = "auto",
    dtype: str = "auto",
    scheduler: str | None = None,
    arch: str = "auto",
    config: str | None = None,
    safety_checker: bool = True,
) -> Any:
    """Load a text-to-image pipeline ready to call (progress bar off, on ``device``).

    Args:
        model: ``tiny-random[-xl]``, a local diffusers folder, a single ``.safetensors`` file or a Hub id.
        device: auto | cpu | cuda | cuda:N | mps.
        dtype: auto | float32 | float16 | bfloat16.
        scheduler: a key of :data:`SCHEDULERS`; None keeps the model's.
        arch: for single files: auto (from the checkpoint's keys) | sd15 | sdxl.
        config: for single files: a local diffusers folder (or Hub id) giving the component configs,
            needed offline because ``from_single_file`` otherwise fetches them from the Hub.
        safety_checker: False drops the model's NSFW checker (it blacks out false positives).
    Raises:
        ValueError for bad arguments, ModelLoadError (one line) when the weights cannot be read.
    """
    check_scheduler(scheduler)
    if arch not in ARCHS:
        raise ValueError(f"Unknown `arch` {arch!r}; use one of {list(ARCHS)}")
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    extra = {} if safety_checker else {"safety_checker": None, "requires_safety_checker": False}

    path = Path(model).expanduser()
    if model in TINY_MODELS:
        pipe = TINY_MODELS[model]()  # built in float32; cast below only when asked for another dtype
        if torch_dtype != pipe.unet.dtype:
            pipe = pipe.to(dtype=torch_dtype)
    elif path.is_file():
        pipe = _load_single_file(path, arch, config, torch_dtype, extra)
    elif path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"--model {model}: folder has no model_index.json; expected a diffusers pipeline folder "
                "(pipe.save_pretrained(DIR) or `hf download ID --local-dir DIR`) or a .safetensors file"
            )
        pipe = _from_pretrained(str(path), model, torch_dtype, extra)
    elif path.suffix in (".safetensors", ".ckpt") or model.startswith((".", "/", "~")):
        raise ModelLoadError(f"--model {model}: no such file or folder")
    else:
        pipe = _from_pretrained(model, model, torch_dtype, extra)

    if scheduler is not None:
        set_scheduler(pipe, scheduler)
    # Device only: the weights were loaded in `torch_dtype` already, and casting again with `to()` makes
    # diffusers warn about modules it keeps in float32.
    pipe = pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _from_pretrained(source: str, model: str, torch_dtype: Any, extra: dict) -> Any:
    from diffusers import AutoPipelineForText2Image

    try:
        with warnings.catch_warnings():
            # diffusers 0.42 still passes huggingface_hub 1.x a retired argument; the warning is noise
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            # `dtype=`: diffusers 0.42 renamed `torch_dtype` (the old name warns)
            return AutoPipelineForText2Image.from_pretrained(source, dtype=torch_dtype, **extra)
    except (OSError, ValueError) as e:  # hub errors subclass OSError (no network, no repo, no cache)
        raise ModelLoadError(
            f"--model {model}: could not load ({_one_line(e)}). Hub ids need network access or a filled "
            "HF cache; offline, point --model at a local diffusers folder or a single .safetensors file"
        ) from e


def _load_single_file(path: Path, arch: str, config: str | None, torch_dtype: Any, extra: dict) -> Any:
    if path.suffix == ".ckpt":
        raise ModelLoadError(
            f"--model {path}: .ckpt checkpoints are pickles (can run code when loaded); convert it to "
            ".safetensors or use a diffusers folder"
        )
    if path.suffix != ".safetensors":
        raise ModelLoadError(
            f"--model {path}: expected a .safetensors checkpoint, got {path.suffix or 'no suffix'}"
        )
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    kind = single_file_arch(path) if arch == "auto" else arch
    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    kwargs = dict(extra, dtype=torch_dtype)
    if config:
        kwargs["config"] = config
    try:
        return cls.from_single_file(str(path), **kwargs)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"--model {path}: could not load as {kind} ({_one_line(e)}). from_single_file reads the "
            "component configs from the Hub; offline, pass --config LOCAL_DIFFUSERS_FOLDER of the same "
            "family, or check --arch"
        ) from e


def _scheduler_options(cls: type, extra: dict) -> dict:
    """Values of the registry's varied options for ``cls``: the entry's value, else the class default.
    Passed explicitly because ``from_config`` would otherwise carry over the old scheduler's values
    (a model shipping DPM++ Karras would stay Karras under ``dpm++``; DEIS rejects DPM's
    ``algorithm_type``)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: extra.get(k, params[k].default) for k in _VARIED_OPTIONS if k in params}


def set_scheduler(pipe: Any, name: str) -> None:
    """Swap the pipeline's scheduler for ``SCHEDULERS[name]`` built from the current config (betas,
    timestep spacing and prediction type stay the checkpoint's)."""
    import diffusers

    check_scheduler(name)
    cls_name, extra, _ = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    config = {k: v for k, v in pipe.scheduler.config.items() if k not in _VARIED_OPTIONS}
    pipe.scheduler = cls.from_config(config, **_scheduler_options(cls, extra))


def sampler_name(pipe: Any, name: str | None) -> str:
    """A1111-style sampler name for the metadata: the registry's label for ``name``; with no name,
    the label of the registry entry matching the model's own scheduler (class and options), else
    the class name."""
    if name in SCHEDULERS:
        return SCHEDULERS[name][2]
    cls, config = type(pipe.scheduler), pipe.scheduler.config
    for cls_name, extra, label in SCHEDULERS.values():
        if cls_name == cls.__name__ and all(
            config.get(k) == v for k, v in _scheduler_options(cls, extra).items()
        ):
            return label
    return cls.__name__


def default_size(pipe: Any) -> tuple[int, int]:
    """The model's native (width, height): UNet sample size x VAE scale factor (512 for SD 1.5,
    1024 for SDXL, 64 for tiny-random)."""
    sample = pipe.unet.config.sample_size
    h, w = (sample, sample) if isinstance(sample, int) else sample
    f = getattr(pipe, "vae_scale_factor", 8)
    return int(w * f), int(h * f)


def resolve_lora_file(lora: str | Path) -> Path:
    """A LoRA ``.safetensors`` file, or a folder holding exactly one (``pytorch_lora_weights.safetensors``
    preferred, the name ``harmony-eval train`` and diffusers write)."""
    p = Path(lora).expanduser()
    if p.is_dir():
        preferred = p / "pytorch_lora_weights.safetensors"
        found = [preferred] if preferred.is_file() else sorted(p.glob("*.safetensors"))
        if len(found) != 1:
            raise ValueError(
                f"--lora {lora}: expected one .safetensors file in the folder, found {len(found)}; "
                "pass the file itself"
            )
        return found[0]
    if not p.is_file():
        raise ValueError(f"--lora {lora}: no such file or folder")
    if p.suffix != ".safetensors":
        raise ValueError(f"--lora {lora}: expected a .safetensors file (pickled .bin/.pt LoRAs are refused)")
    return p


def load_lora(pipe: Any, lora: str | Path) -> Path:
    """Load LoRA weights (diffusers, kohya or A1111 layout) as adapter :data:`LORA_ADAPTER`, replacing
    one loaded before; returns the file read."""
    from diffusers.utils import logging as dlogging

    path = resolve_lora_file(lora)
    level = dlogging.get_verbosity()
    # A UNet-only LoRA makes diffusers warn "No LoRA keys associated to CLIPTextModel" on every load.
    dlogging.set_verbosity_error()
    if any(LORA_ADAPTER in names for names in pipe.get_list_adapters().values()):
        pipe.delete_adapters(LORA_ADAPTER)  # a reused pipeline: replace the earlier LoRA, don't stack
    try:
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=LORA_ADAPTER)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ValueError(
            f"--lora {lora}: could not load into {type(pipe).__name__} ({_one_line(e)}); "
            "was it trained for this model family?"
        ) from e
    finally:
        dlogging.set_verbosity(level)
    return path


def set_lora_scale(pipe: Any, scale: float) -> None:
    """Scale the loaded LoRA (0 = base model, 1 = as trained) via ``set_adapters`` (diffusers >= 0.22;
    the older ``cross_attention_kwargs={"scale": s}`` works for SD 1.x only)."""
    pipe.set_adapters([LORA_ADAPTER], adapter_weights=[float(scale)])


@contextlib.contextmanager
def limit_torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily cap torch's intra-op threads. For tiny-random on a shared 2-core machine one thread
    took 11 ms per image vs 80 ms - 3.7 s with two (threads spin-waiting on each other)."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
