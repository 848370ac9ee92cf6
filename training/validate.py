"""Validation in the training loop: draw a fixed grid with the current LoRA, score it, log harmony.

Every ``validate_every`` steps the prompt grid (``generation.grid``; the configured archetypes x
emotions x CFGs x seeds, ``trigger`` prepended) is drawn with the same per-image seeds, so the rows
differ only by what the LoRA learned. The images are scored by ``harmony_eval`` with the anatomy
backend (no weights to download; the target is each image's prompt emotion) and kept::

    OUT/validation/step_000002/images/*.png, manifest.jsonl, results.jsonl
    OUT/validation.csv   one row per validation: step, loss (mean since the last one), harmony,
                         perfect_rate, acceptable_rate, broken_rate, target_match, harmony_<emotion>
    OUT/validation.png   loss and harmony metrics against step
    OUT/best/            the LoRA of the best validation so far (keep_best), with best.json

Metric definitions are those of ``harmony-eval summarize`` (``benchmarks.summary.metric_values``).
The grid is drawn inside ``torch.random.fork_rng``, so validating does not change the training run
(a run with and without validation takes the same steps).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import TrainConfig

CSV_NAME = "validation.csv"
PLOT_NAME = "validation.png"
METRIC_COLUMNS = ("harmony", "perfect_rate", "acceptable_rate", "broken_rate", "target_match")


def step_folder(out: Path, step: int) -> Path:
    return out / "validation" / f"step_{step:06d}"


def summarize_rows(rows: list[dict[str, Any]], emotions: list[str]) -> dict[str, float | None]:
    """The validation metrics of one grid's score rows (None where no image has a value)."""
    from benchmarks.summary import metric_values

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    out: dict[str, float | None] = {m: mean(metric_values(rows, m)) for m in METRIC_COLUMNS}
    for e in emotions:
        out[f"harmony_{e}"] = mean(metric_values([r for r in rows if r.get("target") == e], "harmony"))
    return out


class Validator:
    """Draws, scores and logs validation grids for one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, out: str | Path) -> None:
        from benchmarks.summary import METRICS
        from generation.grid import build_grid
        from harmony_eval.resources import default_emotions

        self.cfg = cfg
        self.out = Path(out)
        items = build_grid(
            cfg.validation_archetypes, cfg.validation_emotions, cfg.validation_cfgs, cfg.validation_seeds
        )
        if cfg.trigger:
            items = [replace(it, prompt=f"{cfg.trigger}, {it.prompt}") for it in items]
        self.items = items
        self.emotions = list(dict.fromkeys(it.emotion for it in items))
        self.vocab = default_emotions() + [e for e in self.emotions if e not in default_emotions()]
        self.columns = ["step", "loss", *METRIC_COLUMNS, *(f"harmony_{e}" for e in self.emotions)]
        self.higher_is_better = METRICS[cfg.best_metric]
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None  # {"step", "value"}
        self.bad = 0  # validations since the best one
        self._scorer: Any = None

    # -- state kept in checkpoints ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"best": json.dumps(self.best), "bad": self.bad}

    def restore(self, state: dict[str, Any] | None, step: int) -> None:
        """Continue a resumed run: drop CSV rows and grids after ``step`` (made after the checkpoint;
        they are redrawn), restore best / patience."""
        path = self.out / CSV_NAME
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
            self.rows = [{k: _num(v) for k, v in r.items()} for r in rows]
        for d in (self.out / "validation").glob("step_*"):
            if d.name[5:].isdigit() and int(d.name[5:]) > step:
                shutil.rmtree(d)
        if state:
            self.best = json.loads(state.get("best", "null"))
            self.bad = int(state.get("bad", 0))
        self._write_csv()

    # -- one validation -----------------------------------------------------------------------
    def run(self, pipe: Any, step: int, loss: float | None, export: Callable[[Path], Any]) -> dict[str, Any]:
        """Draw + score the grid at ``step``; append the row; update plot and best. ``export(folder)``
        saves the current LoRA (for keep_best)."""
        import torch

        from generation.pipeline import sampler_name, set_scheduler
        from generation.run import generate_images
        from generation.tiny import TINY_MODELS

        folder = step_folder(self.out, step)
        shutil.rmtree(folder, ignore_errors=True)  # never mix images of two LoRA states
        size = self.cfg.validation_size or self.cfg.resolution
        steps = self.cfg.validation_steps or (2 if self.cfg.model in TINY_MODELS else 20)
        original = pipe.scheduler
        devices = [pipe.device] if pipe.device.type == "cuda" else []
        amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.cfg.mixed_precision)
        autocast = torch.autocast(pipe.device.type, dtype=amp) if amp else contextlib.nullcontext()
        modes = [
            (m, m.training)
            for m in (pipe.unet, pipe.text_encoder, getattr(pipe, "text_encoder_2", None))
            if m is not None
        ]
        try:
            for m, _ in modes:
                m.eval()  # LoRA dropout off while drawing
            pipe.set_progress_bar_config(disable=True)  # one bar per image would drown the training bar
            if self.cfg.validation_scheduler:
                set_scheduler(pipe, self.cfg.validation_scheduler)
            with torch.random.fork_rng(devices=devices), torch.no_grad(), autocast:
                generate_images(
                    pipe, self.items, folder, steps=steps, width=size, height=size,
                    model=str(self.cfg.model), scheduler=sampler_name(pipe, self.cfg.validation_scheduler),
                    progress=False,
                )  # fmt: skip
        finally:
            pipe.scheduler = original
            for m, was in modes:
                m.train(was)
        rows = self._score(folder)
        row = {
            "step": step,
            "loss": None if loss is None else round(loss, 6),
            **summarize_rows(rows, self.emotions),
        }
        self.rows.append(row)
        self._write_csv()
        self.plot()
        self._update_best(row, export)
        return row

    def _score(self, folder: Path) -> list[dict[str, Any]]:
        from harmony_eval.pipeline import Scorer
        from harmony_eval.runner import dumps_row
        from harmony_eval.targets import TargetResolver

        if self._scorer is None:  # one scorer for the run: detectors are built once
            self._scorer = Scorer(backend="anatomy", emotions=self.vocab)
        paths = [str(folder / it.file) for it in self.items]
        self._scorer.targets = TargetResolver(
            self.vocab, mapping={p: it.emotion for p, it in zip(paths, self.items, strict=True)}
        )
        rows = [self._scorer.score_one(p, p) for p in paths]
        with open(folder / "results.jsonl", "w", encoding="utf-8") as f:
            f.writelines(dumps_row(r) for r in rows)
        return rows

    def _update_best(self, row: dict[str, Any], export: Callable[[Path], Any]) -> None:
        value = row.get(self.cfg.best_metric)
        if value is None:
            self.bad += 1
            return
        better = self.best is None or (
            value > self.best["value"] if self.higher_is_better else value < self.best["value"]
        )
        if not better:
            self.bad += 1
            return
        self.best, self.bad = {"step": row["step"], "value": value, "metric": self.cfg.best_metric}, 0
        if self.cfg.keep_best:
            best = self.out / "best"
            best.mkdir(parents=True, exist_ok=True)
            export(best)
            (best / "best.json").write_text(
                json.dumps({**self.best, "row": row}, indent=2) + "\n", encoding="utf-8"
            )

    def should_stop(self) -> bool:
        """Early stop: ``early_stop_patience`` validations in a row without a new best."""
        return bool(self.cfg.early_stop_patience) and self.bad >= self.cfg.early_stop_patience

    def summary(self) -> dict[str, Any]:
        """For the model card and the kohya metadata: the last row and the best one."""
        return {"n_validations": len(self.rows), "last": self.rows[-1] if self.rows else None, "best": self.best,
                "grid": {"n_images": len(self.items), "emotions": self.emotions, "backend": "anatomy"}}  # fmt: skip

    # -- files --------------------------------------------------------------------------------
    def _write_csv(self) -> None:
        if not self.rows:
            return
        with open(self.out / CSV_NAME, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)

    def plot(self) -> Path | None:
        """``validation.png``: loss (top) and the harmony metrics (bottom) against step."""
        if not self.rows:
            return None
        from matplotlib.figure import Figure  # object API: no pyplot, no global backend

        steps = [r["step"] for r in self.rows]

        def series(k: str) -> list[float]:
            return [math.nan if r.get(k) is None else float(r[k]) for r in self.rows]

        fig = Figure(figsize=(7, 5.5), dpi=100)
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(steps, series("loss"), "o-", color="#455a64")
        top.set_ylabel("training loss\n(mean since last validation)")
        top.grid(alpha=0.3)
        styles = {"harmony": "#1565c0", "perfect_rate": "#2e7d32", "acceptable_rate": "#f9a825",
                  "broken_rate": "#c62828", "target_match": "#6a1b9a"}  # fmt: skip
        for k, colour in styles.items():
            values = series(k)
            label = k if any(not math.isnan(v) for v in values) else f"{k} (no face read)"
            bottom.plot(steps, values, "o-", color=colour, label=label)
        if self.best:
            bottom.axvline(
                self.best["step"], color="#9e9e9e", ls="--", lw=1, label=f"best {self.best['metric']}"
            )
        bottom.set_ylim(-0.02, 1.02)
        from matplotlib.ticker import MaxNLocator

        if len(steps) <= 12:
            bottom.set_xticks(steps)  # one tick per validation
        else:
            bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        bottom.set_xlabel("step")
        bottom.set_ylabel("validation grid (anatomy backend)")
        bottom.grid(alpha=0.3)
        bottom.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{len(self.items)} validation images per step: {self.cfg.model}", fontsize=10)
        fig.tight_layout()
        path = self.out / PLOT_NAME
        fig.savefig(path)
        return path


def _num(v: str) -> Any:
    if v in ("", None):
        return None
    try:
        return int(v) if v.lstrip("-").isdigit() else float(v)
    except ValueError:
        return v
