"""A WD tagger (SmilingWolf's Danbooru taggers, Apache-2.0) run with onnxruntime.

A model is a folder (or Hugging Face repo) holding ``model.onnx`` and ``selected_tags.csv``
(``tag_id,name,category,count``; category 0 = general, 4 = character, 9 = rating). The v3 taggers take
``(N, S, S, 3)`` float32 **BGR** pixels in 0..255 (NHWC), the picture padded to a square on white and
resized to ``S`` (448); they output ``(N, T)`` sigmoid probabilities, one per row of the CSV. Input
name, size and layout (NHWC or NCHW) are read from the model, not assumed.

``load_tagger(model, cache_dir, device) -> Tagger``; ``Tagger.run(crops)`` takes ``(S, S, 3)`` uint8 RGB
crops (``clip.crop_square`` already pads on white and resizes) and returns ``(N, T)`` float32.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TAGGER = "SmilingWolf/wd-vit-tagger-v3"
MODEL_FILE, TAGS_FILE = "model.onnx", "selected_tags.csv"
_DEFAULT_SIZE = 448  # the v3 taggers' input side, for a model whose input shape is symbolic
_LOADED: dict[tuple[str, ...], Tagger] = {}


class TaggerModelError(FileNotFoundError):
    """The tagger's files are not here and could not be fetched (the CLI exits 2 with the message)."""


class TaggerUnavailable(ImportError, ValueError):
    """onnxruntime is not installed: an ImportError, and a ValueError so that CLIs exit 2 with it."""


def _local_hint(repo: str) -> str:
    return (
        f"download {MODEL_FILE} and {TAGS_FILE} of {repo} once on a connected machine (any run with "
        f"--backend tagger fills the Hugging Face cache) or put them in a folder and pass "
        f"--tagger-model /that/folder"
    )


def resolve_model_files(model: str = DEFAULT_TAGGER, cache_dir: str | None = None) -> tuple[Path, Path]:
    """``(model.onnx, selected_tags.csv)`` for a local folder or a Hub repo id (downloaded once)."""
    p = Path(str(model)).expanduser()
    looks_local = p.exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") != 1
    if looks_local:
        if not p.is_dir():
            raise TaggerModelError(
                f"`tagger_model` {model!r}: no such folder; expected a folder with {MODEL_FILE} and "
                f"{TAGS_FILE}, or a Hugging Face repo id such as {DEFAULT_TAGGER}"
            )
        missing = [f for f in (MODEL_FILE, TAGS_FILE) if not (p / f).is_file()]
        if missing:
            raise TaggerModelError(f"`tagger_model` folder {p} lacks {missing}; a WD tagger folder has both")
        return p / MODEL_FILE, p / TAGS_FILE
    import huggingface_hub

    from .auto import hub_unreachable, offline_requested

    cached = [
        huggingface_hub.try_to_load_from_cache(model, f, cache_dir=cache_dir) for f in (MODEL_FILE, TAGS_FILE)
    ]
    if all(isinstance(c, str) and Path(c).is_file() for c in cached):
        return Path(cached[0]), Path(cached[1])
    why = (f"{v} is set" if (v := offline_requested()) else "") or hub_unreachable()
    if why:
        raise TaggerModelError(f"tagger model {model!r} is not in the cache and {why}; {_local_hint(model)}")
    try:  # huggingface_hub shows a progress bar per file
        files = [
            huggingface_hub.hf_hub_download(model, f, cache_dir=cache_dir) for f in (MODEL_FILE, TAGS_FILE)
        ]
    except Exception as e:  # repo missing, gated, network dropped: one line, with the way out
        first = str(e).splitlines()[0][:160] if str(e) else ""
        raise TaggerModelError(
            f"tagger model {model!r} could not be downloaded ({type(e).__name__}: {first}); {_local_hint(model)}"
        ) from None
    return Path(files[0]), Path(files[1])


def load_tag_names(path: str | Path) -> tuple[list[str], list[int]]:
    """Tag names and categories, in the order of the model's outputs."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"name", "category"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns tag_id,name,category,count; got {reader.fieldnames}")
        rows = list(reader)
    try:
        return [r["name"] for r in rows], [int(r["category"]) for r in rows]
    except ValueError:
        raise ValueError(f"{path}: `category` must be an integer on every row") from None


def providers(device: str = "auto") -> list[str]:
    """onnxruntime providers for ``auto`` (CUDA when onnxruntime has it), ``cpu`` or ``cuda``."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if device == "auto":
        return (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if "CUDAExecutionProvider" in have
            else ["CPUExecutionProvider"]
        )
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in have:
            raise ValueError(
                "`tagger_device` is 'cuda' but this onnxruntime has no CUDA provider "
                f"(it has {have}); pip install onnxruntime-gpu, or use --tagger-device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"`tagger_device` is {device!r}; expected auto, cpu or cuda")


@dataclass
class Tagger:
    """An onnxruntime session with what its input wants. ``model_id`` names the exact files."""

    session: Any
    input_name: str
    size: int
    layout: str  # "NHWC" or "NCHW"
    fixed_batch: int | None
    tags: list[str]
    categories: list[int]
    model_id: str

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(S, S, 3)`` uint8 RGB crops -> the model's input: float32 BGR 0..255, NHWC or NCHW."""
        bad = [c.shape for c in crops if c.shape != (self.size, self.size, 3)]
        if bad:
            raise ValueError(f"tagger crops must be {(self.size, self.size, 3)}; got {bad[0]}")
        x = np.stack(crops)[..., ::-1].astype(np.float32)  # RGB -> BGR, as the WD taggers were trained
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def run(self, crops: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """``(N, T)`` tag probabilities, ``batch_size`` crops per session call."""
        step = self.fixed_batch or max(1, int(batch_size))
        out = [
            self.session.run(None, {self.input_name: self.preprocess(crops[i : i + step])})[0]
            for i in range(0, len(crops), step)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.tags)), np.float32)


def _input_spec(session: Any, source: str) -> tuple[str, int, str, int | None]:
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ValueError(
            f"{source}: input {inp.name!r} has shape {shape}; expected (N, S, S, 3) or (N, 3, S, S)"
        )
    layout = "NHWC" if shape[3] == 3 else "NCHW"
    side = shape[1] if layout == "NHWC" else shape[2]
    size = side if isinstance(side, int) and side > 0 else _DEFAULT_SIZE
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return inp.name, size, layout, batch


def load_tagger(model: str = DEFAULT_TAGGER, cache_dir: str | None = None, device: str = "auto") -> Tagger:
    """Load (once per process) the tagger named by a repo id or a folder; see the module docstring."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise TaggerUnavailable(
            "the WD tagger needs onnxruntime: pip install 'harmony-eval[tagger]'"
        ) from None
    onnx_path, tags_path = resolve_model_files(model, cache_dir)
    st = onnx_path.stat()
    key = (str(onnx_path.resolve()), str(st.st_size), str(int(st.st_mtime)), device)
    if key not in _LOADED:
        tags, cats = load_tag_names(tags_path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # onnxruntime's provider chatter is not the user's business
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=providers(device))
        except Exception as e:  # a truncated download or a non-ONNX file
            raise ValueError(
                f"{onnx_path}: not a loadable ONNX model ({type(e).__name__}: {str(e)[:160]})"
            ) from None
        name, size, layout, batch = _input_spec(session, str(onnx_path))
        n_out = session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(tags):
            raise ValueError(
                f"{onnx_path} outputs {n_out} tags but {tags_path} lists {len(tags)}; use the pair"
            )
        _LOADED.clear()  # one tagger at a time: a ViT tagger is ~400 MB
        ident = f"tagger:{model}@{st.st_size}:{int(st.st_mtime)}"
        _LOADED[key] = Tagger(session, name, size, layout, batch, tags, cats, ident)
    return _LOADED[key]
