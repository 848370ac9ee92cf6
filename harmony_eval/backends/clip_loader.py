"""Loading a CLIP model behind one small interface, from open_clip or transformers, and checking
whether its weights are on this machine without downloading anything.

``load_clip(...) -> LoadedClip``: ``encode_image`` takes ``(N, 3, S, S)`` float pixels already
normalised with ``mean``/``std``, ``encode_text`` takes strings; both return ``(N, D)`` float32
embeddings, *not* normalised. ``model_id`` names the exact weights and precision: the embedding cache
is keyed by it.

Sources (``clip_loader="open_clip"``): a built-in name with a pretrained tag (``ViT-B-32`` +
``laion2b_s34b_b79k``) or a checkpoint file (``clip_pretrained=/path/model.safetensors``),
``hf-hub:org/repo``, ``local-dir:/path`` (open_clip's own schemes), or a model config JSON file
(``clip_model=/path/tiny.json``, registered with ``open_clip.add_model_config``).
``clip_loader="transformers"``: a Hugging Face ``CLIPModel`` folder or repo id.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clip_weights import clip_weights_available

# OpenAI CLIP's normalisation; open_clip and transformers use it unless the weights say otherwise.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_RANDOM_SEED = 0  # random-init weights are seeded so that two runs (and the cache) agree
_OFFLINE_HINT = (
    "point --clip-pretrained at a local checkpoint file (or --clip-model local-dir:/path, or a "
    "transformers folder with --clip-loader transformers), or download the weights once on a connected "
    "machine into --clip-cache-dir and set HF_HUB_OFFLINE=1; --backend anatomy needs no weights"
)


class ClipWeightsError(FileNotFoundError):
    """CLIP weights are not on this machine and could not be fetched."""


@dataclass
class LoadedClip:
    """A CLIP model ready for inference. ``kind`` is ``open_clip`` or ``transformers``."""

    model: Any
    tokenizer: Any
    kind: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    logit_scale: float
    model_id: str
    device: Any
    dtype: Any
    context_length: int = 77

    def encode_image(self, pixels):
        """``(N, 3, S, S)`` normalised pixels -> ``(N, D)`` float32 embeddings."""
        import torch

        with torch.inference_mode():
            x = pixels.to(self.device, self.dtype)
            if self.kind == "open_clip":
                out = self.model.encode_image(x)
            else:  # vision tower + projection: the same in transformers 4 and 5
                out = self.model.visual_projection(self.model.vision_model(pixel_values=x).pooler_output)
            return out.float()

    def encode_text(self, texts: list[str]):
        """``M`` prompts -> ``(M, D)`` float32 embeddings."""
        import torch

        with torch.inference_mode():
            if self.kind == "open_clip":
                tokens = self.tokenizer(texts).to(self.device)
                return self.model.encode_text(tokens).float()
            enc = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt"
            )
            out = self.model.text_model(
                input_ids=enc["input_ids"].to(self.device),
                attention_mask=enc["attention_mask"].to(self.device),
            )
            return self.model.text_projection(out.pooler_output).float()


def resolve_device(device: str = "auto"):
    """``auto`` -> cuda, then mps, then cpu; anything else is checked to exist."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"`clip_device` is {device!r}; expected auto, cpu, cuda, cuda:N or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`clip_device` is {device!r} but torch sees no CUDA GPU; use --clip-device cpu")
    return torch.device(device)


def resolve_precision(precision: str, device) -> str:
    """``auto`` -> fp16 on CUDA (half the memory, ~2x faster on tensor cores), fp32 elsewhere."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"`clip_precision` is {precision!r}; expected auto, fp32, fp16 or bf16")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("`clip_precision` fp16 needs a GPU (CPU kernels lack it); use fp32 or bf16 on CPU")
    return precision


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _file_id(path: str | Path) -> str:
    st = Path(path).stat()
    return f"{Path(path).resolve()}@{st.st_size}:{int(st.st_mtime)}"


def _params_fingerprint(model) -> str:
    """sha1 of every parameter's bytes: an id for a model built in memory (tests, notebooks)."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _transform_norm(preprocess) -> tuple[int | None, tuple | None, tuple | None]:
    """Image size, mean and std read from a torchvision ``Compose`` (open_clip's preprocess)."""
    size = mean = std = None
    for t in getattr(preprocess, "transforms", []):
        if type(t).__name__ == "Normalize":
            mean, std = tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
        if type(t).__name__ in ("Resize", "CenterCrop") and getattr(t, "size", None) is not None:
            s = t.size
            size = int(s if isinstance(s, int) else s[0])
    return size, mean, std


def from_prebuilt(model, preprocess=None, tokenizer=None, *, device="cpu", precision="fp32") -> LoadedClip:
    """Wrap a model built in memory: an open_clip ``CLIP`` or a transformers ``CLIPModel``."""
    import torch

    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    kind = "open_clip" if hasattr(model, "encode_image") else "transformers"
    size, mean, std = _transform_norm(preprocess)
    if kind == "open_clip":
        if tokenizer is None:
            import open_clip

            ctx = int(getattr(model, "context_length", 77))
            tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=ctx)
        vsize = getattr(model.visual, "image_size", 224)
        size = size or int(vsize[0] if isinstance(vsize, (tuple, list)) else vsize)
        ctx_len = int(getattr(model, "context_length", 77))
    else:
        if tokenizer is None:
            raise ValueError("a prebuilt transformers CLIPModel needs its `tokenizer` too")
        size = size or int(model.config.vision_config.image_size)
        ctx_len = int(model.config.text_config.max_position_embeddings)
    model = model.to(dev, _dtype(prec)).eval()
    with torch.no_grad():
        scale = float(model.logit_scale.exp().float())
    return LoadedClip(
        model, tokenizer, kind, size, mean or OPENAI_MEAN, std or OPENAI_STD, scale,
        f"prebuilt:{kind}:{_params_fingerprint(model)}:{prec}", dev, _dtype(prec), ctx_len,
    )  # fmt: skip


def load_clip(
    clip_model: str = "ViT-B-32",
    clip_pretrained: str | None = "laion2b_s34b_b79k",
    clip_loader: str = "open_clip",
    clip_cache_dir: str | None = None,
    clip_device: str = "auto",
    clip_precision: str = "auto",
    clip_random_init: bool = False,
) -> LoadedClip:
    """Load a CLIP model; see the module docstring for the accepted sources.

    Raises ``ClipWeightsError`` (one line, says how to point at local weights) when weights are
    missing and cannot be downloaded.
    """
    if not clip_random_init and not clip_weights_available(
        clip_model, clip_pretrained, clip_loader, clip_cache_dir
    ):  # fail in a second, not after a minute of download retries (measured: 52 s here, offline)
        why = "HF_HUB_OFFLINE is set" if _offline() else _unreachable()
        if why:
            what = (
                clip_model
                if clip_loader == "transformers" or not clip_pretrained
                else f"{clip_model} / {clip_pretrained}"
            )
            raise ClipWeightsError(
                f"CLIP weights for {what} are not on this machine and {why}; {_OFFLINE_HINT}"
            )
    if clip_loader == "open_clip":
        return _load_open_clip(
            clip_model, clip_pretrained, clip_cache_dir, clip_device, clip_precision, clip_random_init
        )
    if clip_loader == "transformers":
        return _load_transformers(clip_model, clip_cache_dir, clip_device, clip_precision, clip_random_init)
    raise ValueError(f"`clip_loader` is {clip_loader!r}; expected open_clip or transformers")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")


def _unreachable(timeout: float = 3.0) -> str:
    """Why the Hub cannot be reached ("" when it can): one TCP connect to ``HF_ENDPOINT``'s host."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host} cannot be reached ({type(e).__name__})"
    return ""


def _load_open_clip(name, pretrained, cache_dir, device, precision, random_init) -> LoadedClip:
    import open_clip
    import torch

    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    model_name = str(name)
    if model_name.endswith(".json"):
        if not Path(model_name).is_file():
            raise FileNotFoundError(f"`clip_model` {model_name!r}: model config file not found")
        open_clip.add_model_config(model_name)
        model_name = Path(model_name).stem
    has_schema = model_name.startswith(("hf-hub:", "local-dir:"))
    source = model_name if has_schema else f"{model_name}:{pretrained}"
    if not has_schema and pretrained and os.path.isfile(pretrained):
        source = f"{model_name}:{_file_id(pretrained)}"
    if random_init:
        source = f"{model_name}:random-init-seed{_RANDOM_SEED}"
    logging.disable(logging.ERROR)  # open_clip logs the failure itself; ours says it in one line
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_RANDOM_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=None if (random_init or has_schema) else pretrained,
                load_weights=not random_init,
                precision=prec,
                device=dev,
                cache_dir=cache_dir,
            )
    except RuntimeError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "not found in built-ins" in msg:
            raise ValueError(
                f"`clip_model` {model_name!r} is not an open_clip model; see open_clip.list_models(), "
                "or pass a model config .json / hf-hub:org/repo / local-dir:/path"
            ) from None
        if "not a known tag" in msg:
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            raise ValueError(
                f"`clip_pretrained` {pretrained!r} is neither a file nor a tag of {model_name}; tags: {tags}"
            ) from None
        raise ClipWeightsError(
            f"CLIP weights for {source} unavailable ({msg[:160]}); {_OFFLINE_HINT}"
        ) from None
    except (OSError, ValueError) as e:
        raise ClipWeightsError(
            f"CLIP weights for {source} unavailable ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"{_OFFLINE_HINT}"
        ) from None
    finally:
        logging.disable(logging.NOTSET)
    model.eval()
    size, mean, std = _transform_norm(preprocess)
    vsize = getattr(model.visual, "image_size", 224)
    size = size or int(vsize[0] if isinstance(vsize, (tuple, list)) else vsize)
    ctx = int(getattr(model, "context_length", 77) or 77)
    tokenizer = open_clip.get_tokenizer(model_name, context_length=ctx)
    with torch.no_grad():
        scale = float(model.logit_scale.exp().float())
    return LoadedClip(
        model, tokenizer, "open_clip", size, mean or OPENAI_MEAN, std or OPENAI_STD, scale,
        f"open_clip:{source}:{prec}", dev, _dtype(prec), ctx,
    )  # fmt: skip


def _load_transformers(name, cache_dir, device, precision, random_init) -> LoadedClip:
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    kw = {"cache_dir": cache_dir, "local_files_only": _offline()}
    try:
        if random_init:
            cfg = CLIPConfig.from_pretrained(name, **kw)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_RANDOM_SEED)
                model = CLIPModel(cfg)
        else:
            model = CLIPModel.from_pretrained(name, **kw)
        tokenizer = AutoTokenizer.from_pretrained(name, **kw)
    except (OSError, ValueError) as e:
        raise ClipWeightsError(
            f"transformers CLIP {name!r} unavailable ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"{_OFFLINE_HINT}"
        ) from None
    mean, std, size = OPENAI_MEAN, OPENAI_STD, int(model.config.vision_config.image_size)
    try:  # the folder's own preprocessing, when it ships one
        from transformers import CLIPImageProcessor

        proc = CLIPImageProcessor.from_pretrained(name, **kw)
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
    except (OSError, ValueError, ImportError):
        pass
    model = model.to(dev, _dtype(prec)).eval()
    local = Path(name)
    ident = _file_id(local / "config.json") if (local / "config.json").is_file() else name
    if random_init:
        ident = f"{ident}:random-init-seed{_RANDOM_SEED}"
    with torch.no_grad():
        scale = float(model.logit_scale.exp().float())
    ctx = int(model.config.text_config.max_position_embeddings)
    return LoadedClip(
        model, tokenizer, "transformers", size, mean, std, scale,
        f"transformers:{ident}:{prec}", dev, _dtype(prec), ctx,
    )  # fmt: skip
