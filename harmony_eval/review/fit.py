"""The review page's "fit calibration": ``harmony-eval calibrate`` on the labels so far, then the
run's images rescored with the fitted calibration, listing the verdicts that change.

``calibrate`` runs as a child process of the CLI entry point: the library never imports the
workflow packages (``calibration`` among them), and a crash or a large fit cannot take the page
down with it. Output goes to ``RUN/review_fit/`` (``calibration.json``, the calibration report,
``rescored.jsonl``); the labels are copied first, so labelling can go on while it fits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .run import ReviewRun

FIT_DIR = "review_fit"


def calibrate_command(run: ReviewRun, labels: Path, out: Path) -> list[str]:
    """The ``harmony-eval calibrate`` argv (after the program) that fits ``labels`` of ``run``."""
    cfg = run.config
    cmd = ["calibrate", "--images", str(run.root), "--labels", str(labels), "--out", str(out),
           "--emotions", ",".join(run.vocab), "--bootstrap", "0", "--no-progress"]  # fmt: skip
    if cfg.get("backend"):
        cmd += ["--backend", str(cfg["backend"])]
    if cfg.get("detectors") not in (None, "default"):
        cmd += ["--detectors", ",".join(cfg["detectors"])]
    opts = run_options(cfg)
    for k in ("mediapipe_model", "clip_model", "clip_pretrained", "clip_loader", "clip_embed_cache"):
        if opts.get(k) is not None:
            cmd += [f"--{k.replace('_', '-')}", str(opts[k])]
    return cmd


_SCORER_ARGS = ("backend", "emotions", "detectors", "calibration", "verdict_config", "max_pixels", "targets")


def _option(v: Any) -> Any:
    """run.json stores options as text; give booleans and None back their type."""
    return {"True": True, "False": False, "None": None}.get(v, v) if isinstance(v, str) else v


def run_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Backend / detector options the run was scored with (run.json ``config``: ``options``, and the
    ``scorer`` sections where newer runs keep them), without the ``Scorer``'s own arguments."""
    scorer = cfg.get("scorer") if isinstance(cfg.get("scorer"), dict) else {}
    merged: dict[str, Any] = dict(cfg.get("options") or {})
    for section in ("detection", "region_backend"):
        merged.update(scorer.get(section) or {})
    return {k: _option(v) for k, v in merged.items() if k not in _SCORER_ARGS and _option(v) is not None}


class FitJob:
    """One background fit at a time; ``state()`` is what the page polls."""

    def __init__(self, run: ReviewRun, labels: Path):
        self.run, self.labels = run, labels
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"state": "idle"}
        self._thread: threading.Thread | None = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def _set(self, **kv: Any) -> None:
        with self._lock:
            self._state = {**self._state, **kv}

    def start(self, n_labelled: int) -> bool:
        """Start a fit; ``False`` when one is already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._state = {"state": "running", "message": f"fitting on {n_labelled} labelled image(s)..."}
            self._thread = threading.Thread(target=self._work, name="review-fit", daemon=True)
            self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        try:
            self._set(**{"state": "done", **self._fit()})
        except Exception as e:  # any failure is a message on the page, never a dead thread
            self._set(state="failed", message=f"{type(e).__name__}: {e}")

    def _fit(self) -> dict[str, Any]:
        out = self.run.run_dir / FIT_DIR
        out.mkdir(exist_ok=True)
        if not self.labels.is_file():
            return {"state": "failed", "message": "nothing labelled yet: label some images first"}
        snap = out / "labels_used.csv"
        shutil.copyfile(self.labels, snap)  # atomically replaced file: the copy is one whole version
        cmd = calibrate_command(self.run, snap, out)
        p = subprocess.run([sys.executable, "-m", "harmony_eval.cli", *cmd], capture_output=True, text=True)
        if p.returncode != 0:
            lines = [ln for ln in (p.stderr or p.stdout).splitlines() if ln.strip()]
            errs = [ln for ln in lines if ln.startswith("error:")] or lines[-1:]
            msg = errs[-1].removeprefix("error: ") if errs else f"calibrate exited with code {p.returncode}"
            n = max(0, sum(1 for _ in snap.open(encoding="utf-8")) - 1)
            return {"state": "failed", "message": f"could not fit a calibration on {n} labelled image(s): "
                    f"{msg.rstrip('.')}. Label more images (and regions), then fit again."}  # fmt: skip
        self._set(message="rescoring the run with the fitted calibration...")
        changed = self._rescore(out / "calibration.json", out / "rescored.jsonl")
        summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        again = calibrate_command(self.run, self.labels, out)  # the same fit, on the live labels file
        return {
            "message": f"{len(changed)} verdict(s) change after rescoring with the fitted calibration.",
            "summary": summary,
            "changed": changed,
            "calibration": str(out / "calibration.json"),
            "command": "harmony-eval " + " ".join(again),
        }

    def _rescore(self, calibration: Path, out: Path) -> list[dict[str, Any]]:
        from ..pipeline import Scorer
        from ..runner import dumps_row
        from ..targets import TargetResolver

        cfg, vocab = self.run.config, self.run.vocab
        targets = {str(r["abspath"]): r.get("target") for r in self.run.rows if r.get("target") in vocab}
        detectors = cfg.get("detectors")
        verdict_config = cfg.get("verdict_config")
        scorer = Scorer(
            backend=str(cfg.get("backend") or "auto"),
            emotions=vocab,
            detectors=None if detectors in (None, "default") else list(detectors),
            calibration=calibration,
            verdict_config=verdict_config if verdict_config and Path(verdict_config).is_file() else None,
            targets=TargetResolver(vocab, mapping=targets),
            **run_options(cfg),
        )
        changed, lines = [], []
        n = len(self.run.rows)
        for i, r in enumerate(self.run.rows, 1):
            new = scorer.score_one(str(r["abspath"]), str(r["abspath"]))
            lines.append(dumps_row({**new, "path": r.get("path")}))
            if new.get("verdict") != r.get("verdict"):
                changed.append({"key": r["key"], "before": r.get("verdict"), "after": new.get("verdict"),
                                "harmony_before": r.get("harmony"), "harmony_after": new.get("harmony"),
                                "reason": new.get("reason")})  # fmt: skip
            if i % 8 == 0:
                self._set(message=f"rescoring {i} / {n}...")
        out.write_text("".join(lines), encoding="utf-8")
        return changed
