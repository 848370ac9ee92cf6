"""Whether CLIP weights are on this machine, without downloading anything: ``--backend auto`` asks
``clip_weights_available`` and picks the CLIP backend only when it says yes.

Looks at local files (a checkpoint path, a ``local-dir:`` folder, a transformers folder) and the
Hugging Face Hub caches (``clip_cache_dir`` and the default one) with ``try_to_load_from_cache``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _hub_caches(cache_dir: str | None) -> list[Path]:
    from huggingface_hub import constants

    dirs = [Path(cache_dir)] if cache_dir else []
    return [*dirs, Path(constants.HF_HUB_CACHE)]


def _hf_cached(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> bool:
    """Whether any of ``filenames`` of ``repo_id`` is in a local Hub cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for d in _hub_caches(cache_dir):
        for f in filenames:
            hit = try_to_load_from_cache(repo_id, f, cache_dir=str(d))
            if isinstance(hit, str) and os.path.isfile(hit):
                return True
    return False


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_OC_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def clip_weights_available(
    clip_model: str = "ViT-B-32",
    clip_pretrained: str | None = "laion2b_s34b_b79k",
    clip_loader: str = "open_clip",
    clip_cache_dir: str | None = None,
    clip_random_init: bool = False,
    clip_prebuilt: Any = None,
    **_: Any,
) -> bool:
    """Whether ``load_clip`` with these options would find its weights locally. Never downloads.

    Cheap in the common offline case: open_clip (a 7 s import here) is imported only when a Hub
    cache holds some model at all, to map a pretrained tag to its repository.
    """
    import importlib.util

    if clip_prebuilt is not None:
        return True
    if importlib.util.find_spec("torch") is None:
        return False
    if clip_random_init:  # asked for explicitly: no weights needed
        return True
    try:
        name = str(clip_model)
        if clip_loader == "transformers":
            p = Path(name)
            if p.is_dir():
                return (p / "config.json").is_file() and any((p / f).is_file() for f in _WEIGHT_FILES)
            return _hf_cached(name, ("config.json",), clip_cache_dir) and _hf_cached(
                name, _WEIGHT_FILES, clip_cache_dir
            )
        if importlib.util.find_spec("open_clip") is None:
            return False
        if name.startswith("local-dir:"):
            p = Path(name[len("local-dir:") :])
            return (p / "open_clip_config.json").is_file() and any(
                p.glob(g) for g in ("*.safetensors", "*.bin", "*.pth")
            )
        if name.startswith("hf-hub:"):
            repo = name[len("hf-hub:") :]
            return _hf_cached(repo, ("open_clip_config.json",), clip_cache_dir) and _hf_cached(
                repo, _OC_WEIGHT_FILES, clip_cache_dir
            )
        if not clip_pretrained:
            return False
        if os.path.isfile(clip_pretrained):
            return True
        url_cache = Path(clip_cache_dir or Path.home() / ".cache" / "clip")
        if not url_cache.is_dir() and not any(
            d.is_dir() and any(d.glob("models--*")) for d in _hub_caches(clip_cache_dir)
        ):
            return False
        import open_clip

        cfg = open_clip.get_pretrained_cfg(name.replace("/", "-"), clip_pretrained)
        if not cfg:
            return False
        if cfg.get("file"):
            return os.path.isfile(cfg["file"])
        hub = cfg.get("hf_hub", "")
        if hub:  # "org/repo/" = default file names, "org/repo/file.bin" = that file (or .safetensors)
            if hub.endswith("/"):
                repo, names = hub.rstrip("/"), _OC_WEIGHT_FILES
            else:
                repo, fname = os.path.split(hub)
                names = (fname[:-4] + ".safetensors", fname) if fname.endswith((".bin", ".pth")) else (fname,)
            return _hf_cached(repo, names, clip_cache_dir)
        if cfg.get("url"):
            return (url_cache / os.path.basename(cfg["url"])).is_file()
    except Exception:  # any surprise means "not available": auto then picks the offline backend
        return False
    return False
