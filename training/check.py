"""Dataset check before training: train on what you want the model to learn.

Lists, for a training folder:

- ``unreadable``: files that are missing or that Pillow cannot decode;
- ``missing_caption``: images with no caption (no ``.txt``, empty text, or not listed in the
  ``metadata.jsonl`` / ``manifest.jsonl`` the folder uses);
- ``broken``: images harmony_eval itself scores broken with the anatomy backend (collages of several
  faces, no face, missing eyes or mouth, blur, or a face that reads another emotion than the one
  its caption names). The target emotion of an image is the one emotion word in its caption, if
  exactly one is there (the words of ``prompts/emotions.yaml``).

``harmony-eval dataset-check DIR`` prints the lists (exit 1 when anything is listed);
``harmony-eval train --check-data`` runs it first and refuses to train on a folder with problems.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .data import caption_table

# flags that mean "this image teaches the wrong thing"; the rest (low confidence, mixed signals)
# are judgement calls the verdict already weighs
BAD_FLAGS = ("no_face", "multiple_faces", "missing_eyes", "missing_mouth", "blurry", "wrong_emotion")


def caption_target(caption: str | None, emotions: list[str]) -> str | None:
    """The one emotion a caption names (None for none or several)."""
    from harmony_eval.targets import emotions_in

    found = emotions_in(caption or "", emotions)
    return found[0] if len(found) == 1 else None


def _readable(path: Path) -> str | None:
    from PIL import Image

    if not path.is_file():
        return "file not found"
    try:
        with Image.open(path) as im:
            im.load()  # decode the pixels: a truncated file opens fine and fails here
    except (OSError, ValueError) as e:
        return f"cannot decode ({type(e).__name__}: {e})"
    return None


def check_dataset(folder: str | Path, *, score: bool = True, progress: bool = False) -> dict[str, Any]:
    """``{"folder", "source", "n_images", "unreadable": [{path, problem}], "missing_caption": [...],
    "broken": [{path, problem, flags, harmony, target, emotion}], "n_problems"}``."""
    from harmony_eval.pipeline import Scorer
    from harmony_eval.resources import default_emotions
    from harmony_eval.targets import TargetResolver

    source, table = caption_table(folder)
    report: dict[str, Any] = {"folder": str(folder), "source": source, "n_images": len(table),
                              "unreadable": [], "missing_caption": [], "broken": []}  # fmt: skip
    readable = []
    for path, caption in tqdm(table.items(), desc="reading", unit="img", disable=not progress):
        problem = _readable(path)
        if problem:
            report["unreadable"].append({"path": str(path), "problem": problem})
            continue
        if caption is None:
            report["missing_caption"].append(
                {
                    "path": str(path),
                    "problem": f"no caption ({source}: add {path.with_suffix('.txt').name})"
                    if source == ".txt sidecars"
                    else f"no caption: not listed in {source}",
                }  # fmt: skip
            )
        readable.append((path, caption))
    if score and readable:
        emotions = default_emotions()
        targets = {str(p): caption_target(c, emotions) for p, c in readable}
        scorer = Scorer(
            backend="anatomy", emotions=emotions, targets=TargetResolver(emotions, mapping=targets)
        )
        for path, _ in tqdm(readable, desc="scoring", unit="img", disable=not progress):
            row = scorer.score_one(str(path), str(path))
            bad = [f for f in row.get("flags") or [] if f in BAD_FLAGS]
            if row.get("verdict") == "broken" and (bad or row.get("status") != "ok"):
                report["broken"].append({"path": str(path), "problem": row.get("reason"), "flags": bad,
                                         "harmony": row.get("harmony"), "target": row.get("target"),
                                         "emotion": row.get("emotion")})  # fmt: skip
    report["n_problems"] = sum(len(report[k]) for k in ("unreadable", "missing_caption", "broken"))
    return report


def format_report(report: dict[str, Any], limit: int = 20) -> str:
    """Human-readable lines: one summary line, then up to ``limit`` entries per list."""
    lines = [
        f"{report['folder']}: {report['n_images']} image(s), captions from {report['source']}: "
        f"{len(report['unreadable'])} unreadable, {len(report['missing_caption'])} without caption, "
        f"{len(report['broken'])} scored broken"
    ]
    for key in ("unreadable", "missing_caption", "broken"):
        entries = report[key]
        for e in entries[:limit]:
            lines.append(f"  {key}: {e['path']}: {e['problem']}")
        if len(entries) > limit:
            lines.append(f"  {key}: ... and {len(entries) - limit} more")
    return "\n".join(lines)


def write_report_csv(report: dict[str, Any], path: str | Path) -> Path:
    """One line per problem: ``kind, path, problem, flags``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "path", "problem", "flags"])
        for key in ("unreadable", "missing_caption", "broken"):
            for e in report[key]:
                w.writerow([key, e["path"], e["problem"], ";".join(e.get("flags", []))])
    return Path(path)
