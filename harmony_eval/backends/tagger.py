"""WD tagger region backend (``--backend tagger``): Danbooru tags read off the face, mapped to regions.

The tagger (``tagger_model.py``) reads the face crop (squared with a margin, padded on white); with
``tagger_crops="regions"`` also the eyes, brows and mouth crops, each region then reading its own crop.
``prompts/tags.yaml`` says, per region, which tags push which emotion by how much:

    logits_r = prior_r + p_r @ W_r        probs_r = softmax(logits_r)

with ``p_r`` the probabilities of the tags the file names (``(T,)``) and ``W_r`` ``(T, K)``. The same
``p_r`` is ``RegionPrediction.features[r]`` (``tag_<name>``), so ``calibrate`` refits the mapping from
labels; ``features["tags"]`` holds the face crop's tag probabilities (the row shows them under
``regions.face.tags``). Crops of every face of a batch go through the model together.

``caption_tags(paths, model, threshold)`` writes training captions the way the LoRA community does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..numerics import softmax
from ..resources import emotions_table, load_yaml, prompts_dir, resolve_emotions
from ..types import REGIONS, FaceInput, RegionPrediction
from .clip import crop_square
from .tagger_model import DEFAULT_TAGGER, TaggerModelError, load_tagger

__all__ = ["TaggerBackend", "TagMap", "TaggerModelError", "caption_tags", "load_tag_map"]

_OPTIONS = {
    "tagger_model": DEFAULT_TAGGER,  # Hugging Face repo id or a folder with model.onnx + selected_tags.csv
    "tagger_cache_dir": None,  # Hugging Face cache to use (default: the usual one)
    "tagger_device": "auto",  # auto (CUDA when onnxruntime has it) | cpu | cuda
    "tagger_batch_size": 32,  # crops per session call
    "tagger_tags": None,  # a tags.yaml to use instead of prompts/tags.yaml
    "tagger_crops": "face",  # face: every region reads the face crop | regions: each its own crop
    "tagger_margin": 0.1,  # context around the face box, fraction of its longer side on each side
}
_TABLE = {
    "eyes": "eyes",
    "left_eye": "eyes",
    "right_eye": "eyes",
    "brows": "brows",
    "mouth": "mouth",
    "face": "face",
}


@dataclass
class TagMap:
    """``prompts/tags.yaml`` parsed: ``tags`` every tag named (file order); per table a prior and weights."""

    tags: list[str]
    priors: dict[str, dict[str, float]]
    weights: dict[str, dict[str, dict[str, float]]]
    source: str = ""

    def matrix(self, table: str, emotions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(W (T, K), prior (K,))`` of one table for a vocabulary (emotions not named weigh 0)."""
        w = np.zeros((len(self.tags), len(emotions)))
        for i, t in enumerate(self.tags):
            for k, e in enumerate(emotions):
                w[i, k] = self.weights[table].get(t, {}).get(e, 0.0)
        return w, np.array([self.priors[table].get(e, 0.0) for e in emotions])

    def read(self, table: str, p: np.ndarray, emotions: list[str]) -> np.ndarray:
        """``softmax(prior + p @ W)``: a ``(K,)`` distribution from ``(T,)`` tag probabilities."""
        w, b = self.matrix(table, emotions)
        return softmax(b + np.asarray(p, dtype=float) @ w)


def load_tag_map(path: str | Path | None = None) -> TagMap:
    """Parse and check a tags.yaml (default ``prompts/tags.yaml``); errors name the file and entry."""
    p = Path(path) if path else prompts_dir() / "tags.yaml"
    raw = load_yaml(p).get("regions")
    need = sorted(set(_TABLE.values()))
    if not isinstance(raw, dict) or any(t not in raw for t in need):
        raise ValueError(f"{p}: expected `regions:` with tables {need}")
    known = set(emotions_table())
    tags: dict[str, None] = {}
    priors, weights = {}, {}
    for table in need:
        spec = raw[table] or {}
        priors[table] = {str(e): float(v) for e, v in (spec.get("prior") or {}).items()}
        weights[table] = {}
        for tag, push in (spec.get("tags") or {}).items():
            if not isinstance(push, dict):
                raise ValueError(
                    f"{p}: regions.{table}.tags.{tag} must map emotions to weights, got {push!r}"
                )
            weights[table][str(tag)] = {str(e): float(v) for e, v in push.items()}
            tags[str(tag)] = None
        bad = sorted({e for d in [priors[table], *weights[table].values()] for e in d} - known)
        if bad:
            raise ValueError(f"{p}: regions.{table} names unknown emotions {bad}; known: {sorted(known)}")
    return TagMap(list(tags), priors, weights, str(p))


class TaggerBackend:
    """Region backend over a WD tagger; options are the ``tagger_*`` keys of ``_OPTIONS`` (any other
    key raises ``TypeError`` naming it, as the CLIP backend does). ``stats`` counts session calls
    and crops."""

    name = "tagger"

    def __init__(self, **options: Any) -> None:
        from ..config import check_keys

        check_keys(options, _OPTIONS, "tagger option")  # TypeError naming it: nothing is ignored
        o = {**_OPTIONS, **{k: v for k, v in options.items() if k in _OPTIONS and v is not None}}
        if o["tagger_crops"] not in ("face", "regions"):
            raise ValueError(f"`tagger_crops` is {o['tagger_crops']!r}; expected face or regions")
        self.options = o
        self.tagmap = load_tag_map(o["tagger_tags"])
        self.tagger = load_tagger(str(o["tagger_model"]), o["tagger_cache_dir"], str(o["tagger_device"]))
        index = {t: i for i, t in enumerate(self.tagger.tags)}
        # tags the mapping names but this model lacks read as absent (probability 0)
        self._cols = np.array([index.get(t, -1) for t in self.tagmap.tags])
        self.missing_tags = [t for t, c in zip(self.tagmap.tags, self._cols, strict=True) if c < 0]
        self.stats = {"session_calls": 0, "crops": 0}

    def tag_probs(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N, T_map)`` probabilities of the mapped tags for square crops of the model's size."""
        full = self.tagger.run(crops, int(self.options["tagger_batch_size"]))
        step = self.tagger.fixed_batch or int(self.options["tagger_batch_size"])
        self.stats["session_calls"] += -(-len(crops) // max(1, step))
        self.stats["crops"] += len(crops)
        out = np.zeros((len(crops), len(self._cols)), np.float32)
        have = self._cols >= 0
        out[:, have] = full[:, self._cols[have]]
        return out

    def predict(self, batch: list[FaceInput], emotions: list[str]) -> list[RegionPrediction]:
        """One ``RegionPrediction`` per input; see the module docstring."""
        emotions = resolve_emotions(list(emotions))
        size, margin = self.tagger.size, float(self.options["tagger_margin"])
        own = self.options["tagger_crops"] == "regions"
        jobs: list[tuple[int, str]] = []
        crops: list[np.ndarray] = []
        for i, inp in enumerate(batch):
            for r in ("face", "eyes", "brows", "mouth") if own else ("face",):
                box = inp.face.box if r == "face" else inp.regions.get(r)
                if box is None or box[2] <= box[0] or box[3] <= box[1]:
                    continue
                jobs.append((i, r))
                crops.append(
                    crop_square(inp.image, tuple(int(v) for v in box), margin if r == "face" else 0.15, size)
                )
        # quality (sharpness, eyes / mouth drawn) is the measurement stage's, run in prepare
        # (harmony_eval.measure): the same for every backend, and off this process's time
        probs = self.tag_probs(crops) if crops else np.zeros((0, len(self._cols)), np.float32)
        read: list[dict[str, np.ndarray]] = [{} for _ in batch]
        for (i, r), p in zip(jobs, probs, strict=True):
            read[i][r] = p
        names = [f"tag_{t}" for t in self.tagmap.tags]
        preds = []
        for inp, got in zip(batch, read, strict=True):
            out: dict[str, dict[str, float] | None] = dict.fromkeys(REGIONS)
            feats, fnames = {}, {}
            face = got.get("face")
            for r in REGIONS:
                has_box = r == "face" or inp.regions.get(r) is not None
                src = got.get(_TABLE[r], face) if own else face
                if not has_box or src is None:
                    continue  # a region the detector did not find stays unread (missing_* flags)
                q = self.tagmap.read(_TABLE[r], src, emotions)
                out[r] = {e: float(v) for e, v in zip(emotions, q, strict=True)}
                feats[r], fnames[r] = src.astype(np.float64), names
            if face is not None:
                feats["tags"], fnames["tags"] = face.astype(np.float64), list(self.tagmap.tags)
            preds.append(RegionPrediction(out, feats, fnames))
        return preds


def _caption_name(tag: str, replace_underscore: bool) -> str:
    # kohya's rule: emoticons such as ^_^ or :d keep their underscores (3 characters or fewer)
    return tag.replace("_", " ") if replace_underscore and len(tag) > 3 else tag


def caption_tags(
    paths: Iterable[str | Path],
    model: str = DEFAULT_TAGGER,
    threshold: float = 0.35,
    *,
    cache_dir: str | None = None,
    device: str = "auto",
    batch_size: int = 16,
    categories: tuple[int, ...] = (0, 4),
    replace_underscore: bool = True,
    progress: bool = False,
) -> dict[str, list[str]]:
    """``{path: [tag, ...]}``: the tags at or above ``threshold`` of each whole image (padded to a
    square on white), most probable first, from the general (0) and character (4) categories.

    Unreadable images raise ``ImageLoadError`` naming the file (captions for a training set should
    not silently skip pictures).
    """
    from tqdm.auto import tqdm

    from ..imageio import load_image

    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"`threshold` is {threshold!r}; expected a probability strictly between 0 and 1")
    tagger = load_tagger(model, cache_dir, device)
    keep = np.isin(np.array(tagger.categories), categories)
    paths = [str(p) for p in paths]
    out: dict[str, list[str]] = {}
    for i in tqdm(range(0, len(paths), batch_size), desc="tagging", unit="batch", disable=not progress):
        chunk = paths[i : i + batch_size]
        crops = []
        for p in chunk:
            img = load_image(p).rgb
            crops.append(crop_square(img, (0, 0, img.shape[1], img.shape[0]), 0.0, tagger.size))
        for p, row in zip(chunk, tagger.run(crops, batch_size), strict=True):
            idx = [j for j in np.argsort(-row, kind="stable") if keep[j] and row[j] >= threshold]
            out[p] = [_caption_name(tagger.tags[j], replace_underscore) for j in idx]
    return out
