"""CLIP region backend (``--backend clip``): zero-shot emotion probes per region, read by CLIP.

For each face it cuts six crops (``eyes``, ``left_eye``, ``right_eye``, ``brows``, ``mouth``, ``face``),
squares each around its box with a margin, and runs the crops of the whole batch through the image
encoder together. Each region has a prompt bank (``prompts/probes/*.yaml``, region x emotion, several
templates). Text side, as open_clip's zero-shot classifier: for emotion ``k`` of region ``r``

    w_rk = normalise(mean_t normalise(text_encoder(prompt_t)))        (D,)

computed once per (model, emotions, prompt banks). Image side ``e = normalise(image_encoder(crop))``;
then ``sims_r = W_r e`` (K,) and ``probs_r = softmax(logit_scale * sims_r)``.

``RegionPrediction.features[r]`` = ``[e (D), sims_r (K)]`` named ``emb0..emb{D-1}``, ``zs_<emotion>``,
the input of the calibrated classifier (``harmony_eval.calibrated``). Crop embeddings are kept in an
on-disk cache (``clip_embed_cache``) keyed by image content hash + box + margin, per model: scoring
again after new prompts or a new calibration does not run the image encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..embed_cache import EmbeddingCache
from ..imageio import image_key
from ..numerics import softmax
from ..resources import emotions_table, load_yaml, prompts_dir, resolve_emotions
from ..types import REGIONS, Box, FaceInput, RegionPrediction
from .clip_loader import ClipWeightsError, LoadedClip, from_prebuilt, load_clip
from .clip_weights import clip_weights_available

__all__ = [
    "ClipBackend",
    "ClipWeightsError",
    "clip_weights_available",
    "load_probe_banks",
    "region_prompts",
    "crop_square",
]

_OPTIONS = {
    "clip_model": "ViT-B-32",
    "clip_pretrained": "laion2b_s34b_b79k",
    "clip_loader": "open_clip",
    "clip_cache_dir": None,
    "clip_device": "auto",
    "clip_precision": "auto",
    "clip_embed_cache": None,
    "clip_random_init": False,
    "clip_prebuilt": None,  # (model, preprocess, tokenizer) built in memory (tests, notebooks)
    # 64 crops per encoder call: ViT-B-32 on CPU runs at the same crops/s from 32 up (measured), and
    # a 16-image pipeline batch gives ~96 crops, so one or two calls per batch.
    "clip_batch_size": 64,
    "clip_probes": None,  # folder of probe banks; default prompts/probes
    "clip_margin": 0.15,  # context around a region box, fraction of its longer side on each side
}
_LOAD_KEYS = (
    "clip_model", "clip_pretrained", "clip_loader", "clip_cache_dir", "clip_device", "clip_precision",
    "clip_random_init",
)  # fmt: skip
#: loaded model + its prompt embeddings (normalised, by prompt text), shared by backends in a process
_LOADED: dict[tuple[str, ...], tuple[LoadedClip, dict[str, np.ndarray]]] = {}
# Region -> the emotions.yaml description used when a bank lacks an emotion.
_FALLBACK_KEY = {"eyes": "eyes", "left_eye": "eyes", "right_eye": "eyes", "brows": "brows", "mouth": "mouth"}
_FALLBACK_TEMPLATES = ["{}", "an anime illustration of {}"]


def load_probe_banks(folder: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """``{region: {"templates": [...], "emotions": {emotion: [phrases]}, "source": file}}`` from every
    ``*.yaml`` in ``folder`` (default ``prompts/probes``). Each file names the regions it serves."""
    d = Path(folder) if folder else prompts_dir() / "probes"
    files = sorted(d.glob("*.yaml")) if d.is_dir() else []
    if not files:
        raise FileNotFoundError(f"`clip_probes` folder {d}: no *.yaml prompt banks found")
    banks: dict[str, dict[str, Any]] = {}
    for f in files:
        raw = load_yaml(f)
        regions, templates, emos = raw.get("regions"), raw.get("templates", ["{}"]), raw.get("emotions")
        if not isinstance(regions, list) or not isinstance(emos, dict) or not templates:
            raise ValueError(f"{f}: expected keys regions (list), templates (list), emotions (mapping)")
        bad = [t for t in templates if "{}" not in t]
        if bad:
            raise ValueError(f"{f}: templates {bad} lack the '{{}}' placeholder for the phrase")
        for r in regions:
            if r in banks:
                raise ValueError(f"{f}: region {r!r} already has a bank in {banks[r]['source']}")
            banks[r] = {"templates": list(templates), "emotions": emos, "source": str(f)}
    return banks


def region_prompts(banks: dict[str, dict[str, Any]], region: str, emotion: str) -> list[str]:
    """Every prompt of (region, emotion): each phrase in each template. Falls back to the region's
    description in ``emotions.yaml`` (the whole-face ``prompt`` for ``face``) when the bank lacks it."""
    bank = banks.get(region, {"templates": _FALLBACK_TEMPLATES, "emotions": {}})
    phrases = bank["emotions"].get(emotion)
    if not phrases:
        spec = emotions_table()[emotion]
        key = _FALLBACK_KEY.get(region)
        phrases = [f"anime {key}: {spec['regions'][key]}" if key else f"anime face, {spec['prompt']}"]
    return [t.format(p) for t in bank["templates"] for p in phrases]


def crop_square(image: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """Square crop of ``box`` grown by ``margin`` (fraction of the longer side, each side), padded
    with white outside the image, resized to ``(size, size, 3)`` uint8. Squaring first keeps the
    aspect of wide crops (both eyes) instead of CLIP's centre crop cutting their ends off."""
    import cv2

    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 2) * (1.0 + 2.0 * margin)
    s = max(2, int(round(side)))
    sx0, sy0 = int(round((x0 + x1 - s) / 2)), int(round((y0 + y1 - s) / 2))
    h, w = image.shape[:2]
    canvas = np.full((s, s, 3), 255, np.uint8)
    ix0, iy0, ix1, iy1 = max(sx0, 0), max(sy0, 0), min(sx0 + s, w), min(sy0 + s, h)
    if ix1 > ix0 and iy1 > iy0:
        canvas[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = image[iy0:iy1, ix0:ix1, :3]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(canvas, (size, size), interpolation=interp)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ClipBackend:
    """Region backend over a CLIP model; options are the ``clip_*`` keys documented in ``_OPTIONS``
    (any other raises ``TypeError``). ``stats`` counts encoder calls and cache use."""

    name = "clip"

    def __init__(self, **options: Any) -> None:
        from ..config import check_keys

        check_keys(options, _OPTIONS, "CLIP option")  # TypeError naming it: nothing is ignored
        self.options = {**_OPTIONS, **options}
        o = self.options
        if o["clip_prebuilt"] is not None:
            model, preprocess, tokenizer = (*tuple(o["clip_prebuilt"]), None, None)[:3]
            self.clip: LoadedClip = from_prebuilt(
                model, preprocess, tokenizer, device=o["clip_device"], precision=o["clip_precision"]
            )
            self._text: dict[str, np.ndarray] = {}
        else:
            key = tuple(str(o[k]) for k in _LOAD_KEYS)
            if key not in _LOADED:  # score() builds a backend per call: load each model once per process
                _LOADED.clear()  # keep one model: a second ViT-B would double the memory
                _LOADED[key] = (load_clip(*(o[k] for k in _LOAD_KEYS[:-1]), bool(o["clip_random_init"])), {})
            self.clip, self._text = _LOADED[key]
        self.margin = float(o["clip_margin"])
        self.batch_size = int(o["clip_batch_size"])
        self.banks = load_probe_banks(o["clip_probes"])
        root = o["clip_embed_cache"]
        self.cache = EmbeddingCache(root, self.clip.model_id) if root else None
        self.text_cache = EmbeddingCache(root, self.clip.model_id + "|text") if root else None
        self._weights: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        self.stats = {"encoder_calls": 0, "crops_encoded": 0, "crops_cached": 0, "texts_encoded": 0}

    # -- text side --------------------------------------------------------------------------------
    def text_embeddings(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Normalised ``(D,)`` embedding per prompt; memory, then disk cache, then the text encoder."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text]
        if todo and self.text_cache is not None:
            self._text.update(self.text_cache.get(todo))
            todo = [t for t in todo if t not in self._text]
        new: dict[str, np.ndarray] = {}
        for i in range(0, len(todo), 256):
            chunk = todo[i : i + 256]
            emb = _normalise(self.clip.encode_text(chunk).cpu().numpy())
            new.update(zip(chunk, emb, strict=True))
            self.stats["texts_encoded"] += len(chunk)
        self._text.update(new)
        if new and self.text_cache is not None:
            self.text_cache.put(new)
        return {t: self._text[t] for t in texts}

    def zero_shot_weights(self, emotions: list[str]) -> dict[str, np.ndarray]:
        """``{region: (K, D)}`` ensembled class embeddings, rows in ``emotions`` order."""
        key = tuple(emotions)
        if key not in self._weights:
            prompts = {(r, e): region_prompts(self.banks, r, e) for r in REGIONS for e in emotions}
            emb = self.text_embeddings([p for ps in prompts.values() for p in ps])
            self._weights[key] = {
                r: _normalise(np.stack([np.mean([emb[p] for p in prompts[r, e]], axis=0) for e in emotions]))
                for r in REGIONS
            }
        return self._weights[key]

    # -- image side -------------------------------------------------------------------------------
    def _encode_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 crops -> ``(N, D)`` normalised embeddings, ``batch_size`` at a time."""
        import torch

        mean = torch.tensor(self.clip.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.clip.std).view(1, 3, 1, 1)
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(np.stack(crops[i : i + self.batch_size])).permute(0, 3, 1, 2).float() / 255.0
            x = (x - mean) / std
            out.append(self.clip.encode_image(x).cpu().numpy())
            self.stats["encoder_calls"] += 1
        self.stats["crops_encoded"] += len(crops)
        return _normalise(np.concatenate(out)).astype(np.float32)

    def embed(self, batch: list[FaceInput]) -> list[dict[str, np.ndarray]]:
        """``[{region: (D,) normalised embedding}]`` per input; cached crops skip the encoder."""
        jobs: list[tuple[int, str, str, Box]] = []
        for i, inp in enumerate(batch):
            img_key = inp.key or image_key(inp.image)
            for r in REGIONS:
                box = inp.face.box if r == "face" else inp.regions.get(r)
                if box is None or box[2] <= box[0] or box[3] <= box[1]:
                    continue  # a 1-px-tall box is fine (a closed mouth drawn as a line): crops are squared
                box = tuple(int(v) for v in box)
                jobs.append((i, r, f"{img_key}|{box}|m{self.margin:g}|s{self.clip.image_size}", box))
        found = self.cache.get(k for _, _, k, _ in jobs) if self.cache is not None else {}
        missing: dict[str, tuple[int, Box]] = {}  # key -> first (input, box): same crop, one encoding
        for i, _, k, b in jobs:
            if k not in found:
                missing.setdefault(k, (i, b))
        self.stats["crops_cached"] += len(jobs) - len(missing)
        if missing:
            crops = [
                crop_square(batch[i].image, b, self.margin, self.clip.image_size) for i, b in missing.values()
            ]
            emb = self._encode_crops(crops)
            new = dict(zip(missing, emb, strict=True))
            found = {**found, **new}
            if self.cache is not None:
                self.cache.put(new)
        out: list[dict[str, np.ndarray]] = [{} for _ in batch]
        for i, r, k, _ in jobs:
            out[i][r] = found[k]
        return out

    def predict(self, batch: list[FaceInput], emotions: list[str]) -> list[RegionPrediction]:
        """One ``RegionPrediction`` per input: probs for every region with a box, and features.

        ``features[r]`` = CLIP embedding + zero-shot scores. The drawn-part measurements
        (``anat_*`` features) and ``quality`` are the measurement stage's (``harmony_eval.measure``),
        added by the pipeline for every backend alike; this backend only reads crops.
        """
        emotions = resolve_emotions(list(emotions))
        weights = self.zero_shot_weights(emotions)
        preds = []
        for emb in self.embed(batch):
            probs: dict[str, dict[str, float] | None] = dict.fromkeys(REGIONS)
            feats, fnames = {}, {}
            for r, e in emb.items():
                sims = weights[r] @ e
                p = softmax(self.clip.logit_scale * sims)
                probs[r] = {k: float(v) for k, v in zip(emotions, p, strict=True)}
                feats[r] = np.concatenate([e, sims]).astype(np.float64)
                fnames[r] = [f"emb{j}" for j in range(e.shape[0])] + [f"zs_{k}" for k in emotions]
            preds.append(RegionPrediction(probs, feats, fnames))
        return preds
