"""``--backend auto``: the best reader this machine can have, decided once per run.

1. CLIP weights already on disk (``clip_weights_available``)          -> ``clip``
2. none, but the Hugging Face Hub answers and nothing says offline    -> download the pinned default
   (open_clip ``ViT-B-32`` / ``laion2b_s34b_b79k``, one 605 MB safetensors file) into the cache with
   huggingface_hub's progress bar, once; later runs find it in step 1    -> ``clip``
3. offline (``HARMONY_EVAL_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or the Hub unreachable), or torch /
   open_clip not installed                                              -> ``anatomy``, with one notice
   saying what that reader is worth and how to point at local weights.

Only the default model (or another open_clip tag whose weights live on the Hub) is fetched: a
checkpoint path, ``local-dir:`` folder or transformers folder that is missing is the user's to fix.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

#: The default CLIP: open_clip name, pretrained tag, the Hub file that tag names and its revision.
#: No commit hash is pinned: none could be verified from this offline machine, and open_clip's
#: registry already ties the tag to this one file (a new upload would get a new tag).
DEFAULT_CLIP = {
    "clip_model": "ViT-B-32",
    "clip_pretrained": "laion2b_s34b_b79k",
    "repo_id": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    "filename": "open_clip_model.safetensors",
    "revision": None,
}
#: Said when the reader cards (``config/readers.json``, written by ``benchmarks.validity``) give no figure.
_NO_FIGURE = "its measured out-of-source accuracy is stated at the end of the run and in run.json"
_TRUE = ("1", "true", "yes", "on")
_noticed = False


def offline_requested() -> str:
    """The environment variable that asks for offline work ("" when none does)."""
    for var in ("HARMONY_EVAL_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return var
    return ""


def hub_unreachable() -> str:
    """Why the Hub cannot be reached ("" when it can): one TCP connect, 3 s at most."""
    from .clip_loader import _unreachable

    return _unreachable()


def _hub_file(options: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """``(repo_id, filename, revision)`` of the open_clip weights these options name, if on the Hub."""
    if options.get("clip_loader", "open_clip") != "open_clip":
        return None
    model = str(options.get("clip_model", DEFAULT_CLIP["clip_model"]))
    tag = options.get("clip_pretrained", DEFAULT_CLIP["clip_pretrained"])
    if (model, tag) == (DEFAULT_CLIP["clip_model"], DEFAULT_CLIP["clip_pretrained"]):
        return DEFAULT_CLIP["repo_id"], DEFAULT_CLIP["filename"], DEFAULT_CLIP["revision"]
    looks_like_path = (
        os.sep in str(tag) or "/" in str(tag) or str(tag).endswith((".safetensors", ".bin", ".pt"))
    )
    if not tag or looks_like_path or model.startswith(("hf-hub:", "local-dir:")) or model.endswith(".json"):
        return None  # a file or folder of the user's: not the Hub's to supply
    import open_clip  # only for a non-default tag: a 7 s import

    hub = (open_clip.get_pretrained_cfg(model, tag) or {}).get("hf_hub", "")
    if not hub:
        return None
    if hub.endswith("/"):  # "org/repo/" = open_clip's default file name
        return hub.rstrip("/"), DEFAULT_CLIP["filename"], None
    repo, fname = os.path.split(hub)
    return repo, fname, None


def download_clip(options: dict[str, Any]) -> str | None:
    """Fetch the CLIP weights the options name into ``clip_cache_dir`` (or the Hub cache), with a
    progress bar; the local path, or ``None`` when these weights do not come from the Hub."""
    import huggingface_hub

    where = _hub_file(options)
    if where is None:
        return None
    repo, fname, revision = where
    log.warning("downloading CLIP weights %s/%s once (later runs read them from the cache)", repo, fname)
    return huggingface_hub.hf_hub_download(
        repo, fname, revision=revision, cache_dir=options.get("clip_cache_dir")
    )


def offline_figure() -> str:
    """What the offline reader is worth on art it was never tuned on, from the reader cards: said
    in the notice so that nobody mistakes an offline run for a pretrained one."""
    try:
        from ..reader_info import load_reader_cards

        oos = load_reader_cards()["anatomy"]["out_of_source"]
        return (
            f"measured balanced {len(oos['classes'])}-class accuracy {oos['balanced_accuracy']:.2f} "
            f"(95% CI {oos['ci95'][0]:.2f}-{oos['ci95'][1]:.2f}, n={oos['n']}, chance {oos['chance']:.2f}) "
            "on art it was never tuned on"
        )
    except Exception:  # no cards, or no figure in them: point at where the run states it
        return _NO_FIGURE


def _notice(why: str) -> None:
    global _noticed
    if _noticed:
        return
    _noticed = True
    log.warning(
        "--backend auto: using the offline anatomy reader because %s. It reads hand-set measurements of "
        "the drawing (%s), so treat its verdicts as rough. For the pretrained CLIP reader "
        "point at local weights: --backend clip --clip-pretrained /path/open_clip_model.safetensors "
        "(or --clip-model local-dir:/folder), or run once on a connected machine to fill the cache "
        "(--clip-cache-dir).",
        why,
        offline_figure(),
    )


def resolve_auto(options: dict[str, Any] | None = None) -> str:
    """``clip`` or ``anatomy`` following the module docstring; downloads at most once."""
    options = dict(options or {})
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("open_clip") is None:
        _notice("torch / open_clip are not installed (pip install 'harmony-eval[clip]')")
        return "anatomy"
    from .clip_weights import clip_weights_available

    if clip_weights_available(**options):
        return "clip"
    if var := offline_requested():
        _notice(f"{var} is set and no CLIP weights are on this machine")
        return "anatomy"
    if why := hub_unreachable():
        _notice(f"no CLIP weights are on this machine and {why}")
        return "anatomy"
    try:
        path = download_clip(options)
    except Exception as e:  # a failed download must not cost the run: the offline reader still works
        _notice(f"downloading CLIP weights failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
        return "anatomy"
    if path is None:
        _notice("the CLIP weights named by the options are not on this machine and not on the Hub")
        return "anatomy"
    return "clip"
