"""Helpers of the review page tests: a small scored run of bundled examples, and the page's server
running in a thread on a free port."""

from __future__ import annotations

import csv
import shutil
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: five bundled examples: clear, unsure and broken faces, so the ranking has something to order
PICK = ("happy_01.png", "sad_01.png", "angry_mismatch_01.png", "neutral_02.png", "happy_mismatch_01.png")


def make_run(base: Path) -> Path:
    """Score ``PICK`` (copied to ``base/images``) into ``base/run`` with the offline backend."""
    from harmony_eval.runner import score_folder

    images = base / "images"
    images.mkdir(parents=True)
    for name in PICK:
        shutil.copy(ROOT / "examples" / name, images / name)
    score_folder(str(images), base / "run", backend="anatomy", workers=1, progress=False, report=False)
    return base / "run"


def copy_run(run: Path, dst: Path) -> Path:
    """A fresh run folder (results + run.json) over the same images, without labels."""
    dst.mkdir(parents=True)
    for name in ("results.jsonl", "run.json"):
        shutil.copy(run / name, dst / name)
    return dst


def argmax(p: dict | None) -> str:
    return max(p, key=p.get) if p else ""


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class LiveServer:
    """``with LiveServer(app) as url:`` serves ``app`` with uvicorn in a thread until the block ends."""

    def __init__(self, app):
        import uvicorn

        from harmony_eval.review.cli import free_port

        self.port = free_port()
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > 10:
                raise RuntimeError("review server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
