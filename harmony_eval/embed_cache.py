"""On-disk cache of embeddings (CLIP crops and prompts), so that re-scoring after new prompts or a new
calibration costs no encoder time.

Layout: ``ROOT/<model-slug>/`` holds ``model.json`` (the full model id, for people) and shards
``emb-<time>-<pid>-<rand>.safetensors``; each shard has one float32 tensor ``embeddings`` of shape
``(N, D)`` and, in its metadata, the JSON list of the ``N`` entry ids. An entry id is the sha1 of the
caller's key string (for crops: image content hash + region box + crop margin). Shards are written to
a temporary name and renamed, so a killed run never leaves a half shard. No pickle: safetensors only.

>>> import numpy as np, tempfile
>>> c = EmbeddingCache(tempfile.mkdtemp(), "model-a")
>>> c.put({"img1|0,0,8,8": np.ones(4, np.float32)})
>>> c.get(["img1|0,0,8,8", "missing"])["img1|0,0,8,8"].tolist()
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

FORMAT = "harmony_eval.embed_cache/1"
_MAX_SHARDS = 64  # merge into one shard past this: opening a shard costs ~1 ms, a scan stays < 0.1 s


def _entry_id(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def model_slug(model_id: str) -> str:
    """A folder name for a model id: readable prefix + hash (ids hold ``:`` and ``/``)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:48].strip("_")
    return f"{readable}-{hashlib.sha1(model_id.encode()).hexdigest()[:12]}"


class EmbeddingCache:
    """Embeddings of one model, keyed by strings. ``get`` reads, ``put`` appends a shard.

    Args:
        root: cache folder (created on first ``put``).
        model_id: the exact model (weights + precision); each model has its own sub-folder.
    """

    def __init__(self, root: str | os.PathLike, model_id: str) -> None:
        self.root = Path(root)
        self.model_id = model_id
        self.dir = self.root / model_slug(model_id)
        self._rows: dict[str, np.ndarray] | None = None
        self._seen: set[str] = set()
        self.hits = 0
        self.misses = 0

    # -- reading ----------------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("emb-*.safetensors")) if self.dir.is_dir() else []

    def _load(self) -> dict[str, np.ndarray]:
        """Read shards not read yet (others may have been written by another run meanwhile)."""
        from safetensors import safe_open

        if self._rows is None:
            self._rows = {}
        for shard in self._shards():
            if shard.name in self._seen:
                continue
            try:
                with safe_open(str(shard), framework="numpy") as f:
                    meta = f.metadata() or {}
                    if meta.get("format") != FORMAT:
                        continue  # not ours: leave it alone
                    ids = json.loads(meta["ids"])
                    emb = f.get_tensor("embeddings")
            except FileNotFoundError:  # merged away by a concurrent compaction
                continue
            except Exception as e:
                raise ValueError(
                    f"{shard}: unreadable embedding cache shard ({type(e).__name__}: {e}); delete it "
                    "(the cache is rebuilt from the images)"
                ) from None
            for i, eid in enumerate(ids):
                self._rows[eid] = emb[i]
            self._seen.add(shard.name)
        return self._rows

    def get(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """``{key: (D,) float32}`` for the keys present; absent keys are left out."""
        keys = list(keys)
        rows = self._rows if self._rows is not None else self._load()
        if any(_entry_id(k) not in rows for k in keys):
            rows = self._load()  # maybe written since we last looked
        out = {k: rows[_entry_id(k)] for k in keys if _entry_id(k) in rows}
        self.hits += len(out)
        self.misses += len(keys) - len(out)
        return out

    def __len__(self) -> int:
        return len(self._load())

    # -- writing ----------------------------------------------------------------------------------
    def put(self, items: Mapping[str, np.ndarray]) -> None:
        """Store ``{key: (D,) array}`` (all the same ``D``) as one new shard."""
        if not items:
            return

        ids = [_entry_id(k) for k in items]
        emb = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in items.values()])
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "model.json"
        if not info.exists():
            info.write_text(
                json.dumps({"model_id": self.model_id, "format": FORMAT}) + "\n", encoding="utf-8"
            )
        name = f"emb-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.safetensors"
        self._write(name, ids, emb)
        rows = self._load()
        for i, eid in enumerate(ids):
            rows[eid] = emb[i]
        if len(self._seen) > _MAX_SHARDS:
            self.compact()

    def _write(self, name: str, ids: list[str], emb: np.ndarray) -> None:
        from safetensors.numpy import save_file

        tmp = self.dir / f".{name}.tmp"
        save_file(
            {"embeddings": np.ascontiguousarray(emb)},
            str(tmp),
            metadata={"format": FORMAT, "ids": json.dumps(ids)},
        )
        os.replace(tmp, self.dir / name)
        self._seen.add(name)

    def compact(self) -> None:
        """Merge every shard into one (fewer files to open on the next run)."""
        rows = self._load()
        old = [s for s in self._shards() if s.name in self._seen]
        if len(old) <= 1:
            return
        ids = list(rows)
        name = f"emb-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.safetensors"
        self._write(name, ids, np.stack([rows[i] for i in ids]))
        for s in old:
            s.unlink(missing_ok=True)
            self._seen.discard(s.name)
