"""Captions from the folder layout (``DIR/<archetype>/<emotion>/img.png``), as the seed's scripts made.

Each folder name on an image's path (below ``DIR``) is matched, case-insensitively, to an archetype
of ``prompts/archetypes.yaml`` or an emotion of ``prompts/emotions.yaml`` (its name or one of its
``words``: a folder ``smiling`` is ``happy``); with no emotion folder the file name is tried. The
caption is ``trigger, <archetype prompt>, <emotion prompt>`` with the prompt phrases of those files,
so training captions use the words the validation grid prompts with; a folder that is neither
archetype nor emotion adds its own name (``school_uniform`` -> ``school uniform``). With a tagger,
its tags are appended. Existing ``.txt`` files are kept unless ``overwrite``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data import list_images

TAGGER_THRESHOLD = 0.35  # the usual WD14 tagger cut-off for general tags


def layout_caption(
    rel: Path, archetypes: dict[str, str], emotions: dict[str, dict], trigger: str | None = None
) -> tuple[str, str | None, str | None]:
    """``(caption, archetype or None, emotion or None)`` for an image path relative to the folder."""
    from harmony_eval.targets import emotions_in

    by_lower = {a.lower(): a for a in archetypes}
    vocab = list(emotions)
    archetype = emotion = None
    extra = []
    for part in rel.parts[:-1]:
        found = emotions_in(part, vocab)
        if part.lower() in by_lower and archetype is None:
            archetype = by_lower[part.lower()]
        elif len(found) == 1 and emotion is None:
            emotion = found[0]
        else:
            extra.append(part.replace("_", " ").replace("-", " ").strip())
    if emotion is None:
        found = emotions_in(rel.stem, vocab)
        emotion = found[0] if len(found) == 1 else None
    parts = [trigger] if trigger else []
    if archetype:
        parts.append(archetypes[archetype])
    parts += [e for e in extra if e]
    if emotion:
        parts.append(emotions[emotion].get("prompt") or f"{emotion} expression")
    return ", ".join(parts), archetype, emotion


def load_tagger() -> Callable[..., Any]:
    """``harmony_eval.backends.tagger.caption_tags``, or ValueError saying how to get it."""
    try:
        from harmony_eval.backends.tagger import caption_tags
    except ImportError as e:
        raise ValueError(
            f"--tagger: the image tagger is not available ({e}); install the tagger extra "
            "(pip install 'harmony-eval[tagger]') and its model, or drop --tagger"
        ) from None
    return caption_tags


def _tags_for(result: Any, paths: list[Path]) -> list[list[str]]:
    """Normalise the tagger's answer (a list in input order, or a dict by path) to tag lists."""
    if isinstance(result, dict):
        result = [result.get(str(p), result.get(p, [])) for p in paths]
    out = []
    for tags in result:
        if isinstance(tags, dict):  # {tag: confidence}
            tags = sorted(tags, key=lambda t: -tags[t])
        out.append([tags] if isinstance(tags, str) else [str(t) for t in tags])
    return out


def write_captions(
    folder: str | Path,
    trigger: str | None = None,
    *,
    tagger: bool = False,
    tagger_model: str | None = None,
    tagger_threshold: float = TAGGER_THRESHOLD,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a ``.txt`` caption beside every image under ``folder``; returns counts and examples."""
    from generation.grid import load_archetypes
    from harmony_eval.resources import emotions_table

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"captions {folder}: not a folder")
    images = list_images(root)
    if not images:
        raise ValueError(f"captions {folder}: no images found")
    todo = [p for p in images if overwrite or not p.with_suffix(".txt").is_file()]
    archetypes, emotions = load_archetypes(), emotions_table()
    captions = {p: layout_caption(p.relative_to(root), archetypes, emotions, trigger) for p in todo}
    if tagger and todo:
        caption_tags = load_tagger()
        kwargs: dict[str, Any] = {"threshold": tagger_threshold}
        if tagger_model:
            kwargs["model"] = tagger_model
        try:
            tags = _tags_for(caption_tags([str(p) for p in todo], **kwargs), todo)
        except (FileNotFoundError, OSError, RuntimeError) as e:
            raise ValueError(f"--tagger: {e}") from None
        for p, t in zip(todo, tags, strict=True):
            text, a, e = captions[p]
            captions[p] = (", ".join([text, *t]) if text else ", ".join(t), a, e)
    no_emotion = []
    for p, (text, _, emotion) in captions.items():
        p.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        if emotion is None:
            no_emotion.append(str(p))
    return {
        "n_images": len(images),
        "written": len(todo),
        "kept": len(images) - len(todo),
        "without_emotion": no_emotion,
        "examples": [(str(p), c[0]) for p, c in list(captions.items())[:3]],
        "metadata_jsonl_present": (root / "metadata.jsonl").is_file() or (root / "manifest.jsonl").is_file(),
    }
