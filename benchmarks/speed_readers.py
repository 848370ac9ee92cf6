"""Pretrained readers' speed against their bare models on the same crops (prints JSON; a benchmark).

    python -m benchmarks.speed_readers                       # tagger stand-in + ViT-B-32 random init
    python -m benchmarks.speed_readers --tagger-model DIR    # a real WD tagger folder instead

For each reader, over the bundled ``examples/`` (``--repeat`` times):

- ``bare_crops_per_s``: the model alone (onnxruntime session / CLIP image encoder) on the very crops
  the backend cuts, preprocessed outside the clock, at the backend's batch size;
- ``stage_crops_per_s``: the backend's ``predict`` on the prepared faces (crop, preprocess, model,
  tag mapping or zero-shot, features); ``stage_ratio`` = stage / bare (goal >= 0.8);
- ``pipeline_crops_per_s``: ``harmony_eval.score`` end to end (load, detect, regions, backend,
  verdict), ``pipeline_ratio`` = pipeline / bare; detection costs the same whatever the reader, so
  this ratio is low for small models and near the stage ratio for big ones.

Without ``--tagger-model`` the tagger is a stand-in built here with onnx.helper in the v3 layout
(NHWC BGR 448 input, a 16x16 patch convolution to ``--tagger-width`` channels, ``--tagger-blocks``
token MLP blocks, sigmoid over the tags of prompts/tags.yaml): the real models are not downloadable
here. The CLIP figures come from ``benchmarks.speed.clip_speed`` (random-init weights).
Each timing is the fastest of ``--trials`` runs (a shared machine's other jobs only slow runs down).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from .speed import ROOT, _images, _prepared_inputs, clip_speed


def build_stand_in_tagger(folder: Path, size: int = 448, width: int = 384, blocks: int = 2) -> Path:
    """A WD-layout ``model.onnx`` + ``selected_tags.csv`` of ViT-like cost (random fixed weights)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from harmony_eval.backends.tagger import load_tag_map

    tags = load_tag_map().tags + [f"filler_{i}" for i in range(64)]
    rng = np.random.default_rng(0)
    w = {
        "patch": rng.normal(0, 0.02, (width, 3, 16, 16)),
        "head": rng.normal(0, 0.05, (width, len(tags))),
        **{f"up{i}": rng.normal(0, 0.05, (width, 4 * width)) for i in range(blocks)},
        **{f"down{i}": rng.normal(0, 0.05, (4 * width, width)) for i in range(blocks)},
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    inits.append(numpy_helper.from_array(np.array([0, width, -1], np.int64), "shape"))
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "patch"], ["feat"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Reshape", ["feat", "shape"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["h0"], perm=[0, 2, 1]),  # (N, tokens, width)
    ]
    for i in range(blocks):
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"up{i}"], [f"u{i}"]),
            helper.make_node("Relu", [f"u{i}"], [f"r{i}"]),
            helper.make_node("MatMul", [f"r{i}", f"down{i}"], [f"d{i}"]),
            helper.make_node("Add", [f"h{i}", f"d{i}"], [f"h{i + 1}"]),
        ]
    nodes += [
        helper.make_node("ReduceMean", [f"h{blocks}"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["pooled", "head"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stand_in_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", len(tags)])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    rows = "".join(f"{i},{t},0,1\n" for i, t in enumerate(tags))
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n" + rows, encoding="utf-8")
    return folder


def tagger_speed(
    images: Path, model: str, repeat: int = 1, trials: int = 3, batch_size: int = 32
) -> dict[str, Any]:
    """The tagger figures of the module docstring (face crops: one per face)."""
    import harmony_eval
    from harmony_eval.backends.clip import crop_square
    from harmony_eval.backends.tagger import TaggerBackend
    from harmony_eval.pipeline import Scorer

    files = _images(images, repeat)
    opts = {"tagger_model": model, "tagger_device": "cpu", "tagger_batch_size": batch_size}
    harmony_eval.score(files[:1], backend="tagger", **opts)  # load the session once, outside the clock
    scorer = Scorer(backend="tagger", **opts)
    inputs = _prepared_inputs(files, scorer)
    backend: TaggerBackend = scorer.backend
    t = backend.tagger
    margin = float(backend.options["tagger_margin"])
    crops = [crop_square(inp.image, inp.face.box, margin, t.size) for inp in inputs]
    batches = [t.preprocess(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]

    def bare() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for x in batches:
            t.session.run(None, {t.input_name: x})
        return time.perf_counter() - t0, time.process_time() - c0

    def stage() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        backend.predict(inputs, scorer.emotions)
        return time.perf_counter() - t0, time.process_time() - c0

    def pipeline() -> float:
        t0 = time.perf_counter()
        harmony_eval.score(files, backend="tagger", workers=1, **opts)
        return time.perf_counter() - t0

    t_bare, t_stage, t_pipe, c_bare, c_stage = [], [], [], [], []
    for _ in range(trials):
        (tb, cb), (ts, cs) = bare(), stage()
        (
            t_bare.append(tb),
            c_bare.append(cb),
            t_stage.append(ts),
            c_stage.append(cs),
            t_pipe.append(pipeline()),
        )
    n = len(crops)
    bare_rate = n / min(t_bare)
    return {
        "reader": "tagger", "model": t.model_id, "input": [t.layout, t.size], "images": len(files),
        "crops": n, "batch_size": batch_size, "trials": trials,
        "bare_crops_per_s": round(bare_rate, 2), "stage_crops_per_s": round(n / min(t_stage), 2),
        "pipeline_crops_per_s": round(n / min(t_pipe), 2),
        "stage_ratio": round(min(t_bare) / min(t_stage), 3), "pipeline_ratio": round(min(t_bare) / min(t_pipe), 3),
        # the stage ratio in CPU seconds of this process (all threads): what other jobs do not move
        "stage_ratio_cpu_time": round(min(c_bare) / min(c_stage), 3),
    }  # fmt: skip


def clip_figures(images: Path, repeat: int, trials: int, model: str) -> dict[str, Any]:
    """``speed.clip_speed`` (random init) in this file's terms."""
    r = clip_speed(
        images, repeat=repeat, trials=trials, clip_model=model, clip_random_init=True, clip_device="cpu"
    )
    s = r["seconds"]
    return {
        "reader": "clip", "model": r["model"], "images": r["images"], "crops": r["crops"], "trials": trials,
        "bare_crops_per_s": r["encoder_crops_per_s"],
        "stage_crops_per_s": round(r["encoder_crops_per_s"] * s["encoder"] / s["region_stage"], 2),
        "pipeline_crops_per_s": r["pipeline_crops_per_s"],
        "stage_ratio": round(s["encoder"] / s["region_stage"], 3), "pipeline_ratio": r["ratio"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=ROOT / "examples")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--tagger-model", help="a WD tagger folder or repo id (default: the stand-in built here)")
    ap.add_argument("--tagger-width", type=int, default=384)
    ap.add_argument("--tagger-blocks", type=int, default=2)
    ap.add_argument("--clip-model", default="ViT-B-32")
    ap.add_argument("--readers", default="tagger,clip", help="which readers to time, comma separated")
    a = ap.parse_args(argv)
    readers = [r.strip() for r in a.readers.split(",") if r.strip()]
    unknown = [r for r in readers if r not in ("tagger", "clip")]
    if unknown:
        ap.error(f"--readers {unknown}: expected tagger and/or clip")
    out = []
    if "tagger" in readers:
        model = a.tagger_model or str(
            build_stand_in_tagger(
                Path(tempfile.mkdtemp(prefix="tagger_")), width=a.tagger_width, blocks=a.tagger_blocks
            )
        )
        out.append(tagger_speed(a.images, model, a.repeat, a.trials))
    if "clip" in readers:
        out.append(clip_figures(a.images, a.repeat, a.trials, a.clip_model))
    for r in out:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
