"""Target emotion per image: what the image was *meant* to show, when anyone said so.

Sources, first that answers wins (``TargetResolver.target_for``):

1. ``csv``: ``--targets`` CSV with columns ``file,emotion``. ``file`` is matched by its path relative
   to the input folder, by an absolute path, or by its trailing path parts (a bare basename matches
   wherever it sits); when several rows match, the longest (most specific) wins.
2. ``manifest``: a generation ``manifest.jsonl`` (row ``file`` relative to the manifest's folder, row
   ``emotion``), given explicitly or found in the input folder tree / the image's own folder.
3. ``metadata``: emotion words in the *prompt* part of an A1111 ``parameters`` text chunk (or EXIF
   UserComment), before ``Negative prompt:``.
4. ``filename``: emotion words in the file name.

A CSV row or manifest row is authoritative: if it exists, its answer is final, even when it is "no
target" (empty, ``none``, ``other``, ...) or an emotion outside the active vocabulary. Word-based
sources (3, 4) count an emotion when any of its ``words`` in ``prompts/emotions.yaml`` (or its name)
appears as a token; exactly one emotion found gives the target, zero or several give none and the next
source is tried. Only emotions of the active vocabulary count.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
import warnings
from functools import lru_cache
from pathlib import Path

from .jsonl import read_jsonl
from .resources import emotions_table, resolve_emotions
from .textio import read_utf8

SOURCES: tuple[str, ...] = ("mapping", "csv", "manifest", "metadata", "filename", "none")
MANIFEST_NAME = "manifest.jsonl"
#: Labels meaning "this image has no target" in a CSV or manifest (the shared label files use
#: ``other`` and empty cells for "none of the emotions clearly").
NO_TARGET = frozenset({"", "none", "null", "other", "unknown", "n/a", "na", "-"})
_FILE_COLUMNS = ("file", "path", "filename", "image")
_EMOTION_COLUMNS = ("emotion", "target", "label")


# ------------------------------------------------------------------------------------- word matching


def tokens(text: str) -> list[str]:
    """Lower-case letter runs of ``text``, camelCase split: ``"HappyGirl_02-smile"`` ->
    ``["happy", "girl", "smile"]``. Digits, ``_``, ``-``, spaces and punctuation separate."""
    out: list[str] = []
    for run in re.findall(r"[^\W\d_]+", text):
        out += re.sub(r"(?<=[a-z])(?=[A-Z])", " ", run).lower().split()
    return out


@lru_cache(maxsize=16)
def _words(emotions: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    table = emotions_table()
    out = {}
    for e in emotions:
        phrases = {tuple(tokens(w)) for w in [e, *table[e].get("words", [])]}
        out[e] = tuple(sorted(p for p in phrases if p))
    return out


def emotions_in(text: str, emotions: list[str] | tuple[str, ...]) -> list[str]:
    """Emotions (in vocabulary order) with at least one of their words in ``text`` as whole tokens."""
    toks = tokens(text)
    found = []
    for e, phrases in _words(tuple(emotions)).items():
        if any(_contains(toks, ph) for ph in phrases):
            found.append(e)
    return found


def _contains(toks: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in toks
    return any(tuple(toks[i : i + n]) == phrase for i in range(len(toks) - n + 1))


def _single(found: list[str]) -> str | None:
    return found[0] if len(found) == 1 else None


def filename_target(path: str | os.PathLike, emotions: list[str]) -> str | None:
    """The one emotion named in the file name (stem only, not folders), else ``None``."""
    return _single(emotions_in(Path(path).stem, emotions))


def prompt_of(parameters: str) -> str:
    """The positive prompt of an A1111 ``parameters`` text: everything before ``Negative prompt:``
    (or before the ``Steps:`` settings line when there is no negative), ``<lora:...>`` tags removed
    (a LoRA called ``happy_v2`` says nothing about this image's target)."""
    text = parameters.split("Negative prompt:", 1)[0]
    text = re.split(r"(?m)^Steps: ", text, maxsplit=1)[0]
    return re.sub(r"<[^>]*>", " ", text)


def prompt_target(parameters: str, emotions: list[str]) -> str | None:
    """The one emotion named in an A1111 prompt's positive part, else ``None``."""
    return _single(emotions_in(prompt_of(parameters), emotions))


# ------------------------------------------------------------------------------------ label files


def _norm_key(file: str) -> str:
    """CSV/manifest ``file`` -> normalised posix path (backslashes, ``./`` and ``..`` resolved)."""
    return posixpath.normpath(file.strip().replace("\\", "/"))


def _abs_key(path: str | os.PathLike) -> str:
    """Absolute path with its folders' symlinks resolved but not the file's own (a symlinked image
    keeps its name): the key under which manifests and images meet."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(folder), name)


def _check_label(raw: object, where: str, vocab: list[str]) -> str | None:
    """A label from a file -> an emotion name, or ``None`` for "no target" / inactive emotions."""
    label = "" if raw is None else str(raw).strip().lower()
    if label in NO_TARGET:
        return None
    known = emotions_table()
    if label not in known:
        raise ValueError(
            f"{where}: unknown emotion {raw!r}; the vocabulary is {vocab} "
            f"(emotions.yaml also defines {[e for e in known if e not in vocab]}; "
            f"use one of {sorted(NO_TARGET - {''})} or an empty cell for no target)"
        )
    return label if label in vocab else None


def read_targets_csv(path: str | os.PathLike, emotions: list[str]) -> dict[str, str | None]:
    """``--targets`` CSV -> ``{normalised file: emotion or None}``.

    Header required: a file column (``file``/``path``/``filename``/``image``) and an emotion column
    (``emotion``/``target``/``label``); other columns are ignored. Unknown emotion words and a file
    listed twice are errors naming the line. Emotions defined in emotions.yaml but not in the active
    vocabulary give no target (with one warning saying how many rows).
    """
    p = Path(path)
    try:
        text = read_utf8(p, "--targets")  # Excel's BOM dropped; other encodings named
    except FileNotFoundError:
        raise FileNotFoundError(f"--targets {p}: file not found") from None
    reader = csv.DictReader(text.splitlines())
    cols = {c.strip().lower(): c for c in reader.fieldnames or [] if c}
    fcol = next((cols[c] for c in _FILE_COLUMNS if c in cols), None)
    ecol = next((cols[c] for c in _EMOTION_COLUMNS if c in cols), None)
    if fcol is None or ecol is None:
        raise ValueError(
            f"--targets {p}: needs a header with columns 'file' and 'emotion', found "
            f"{reader.fieldnames}; write a first line `file,emotion`"
        )
    out: dict[str, str | None] = {}
    first_line: dict[str, int] = {}
    inactive = 0
    known = emotions_table()
    for row in reader:
        line = reader.line_num
        file = (row.get(fcol) or "").strip()
        if not file:
            raise ValueError(f"--targets {p}, line {line}: empty file name")
        key = _norm_key(file)
        if key in out:
            raise ValueError(
                f"--targets {p}, line {line}: {file!r} is listed twice (first on line {first_line[key]}); "
                "keep one row per file"
            )
        raw = row.get(ecol)
        label = _check_label(raw, f"--targets {p}, line {line}", emotions)
        if label is None and (raw or "").strip().lower() in known:
            inactive += 1
        out[key], first_line[key] = label, line
    if inactive:
        warnings.warn(
            f"--targets {p}: {inactive} row(s) name emotions outside the vocabulary {emotions}; "
            "they get no target (add them with --emotions to score against them)",
            stacklevel=2,
        )
    return out


def read_manifest(path: str | os.PathLike, emotions: list[str]) -> dict[str, str | None]:
    """Generation ``manifest.jsonl`` -> ``{absolute normalised image path: emotion or None}``.

    ``file`` is relative to the manifest's folder. Blank lines are skipped; a line that is not a
    JSON object with ``file``, an unknown emotion, or one file given two different emotions is an
    error naming the line. A repeated row with the same emotion (a resumed generation) is fine.
    """
    p = Path(path)
    base = p.parent
    out: dict[str, str | None] = {}
    for n, row in read_jsonl(p):
        if not isinstance(row.get("file"), str):
            raise ValueError(f"{p}, line {n}: expected an object with a 'file' string, got {row!r:.80}")
        key = _abs_key(os.path.normpath(base / _norm_key(row["file"])))
        label = _check_label(row.get("emotion"), f"{p}, line {n}", emotions)
        if key in out and out[key] != label:
            raise ValueError(
                f"{p}, line {n}: {row['file']!r} already has emotion {out[key]!r}, now {label!r}"
            )
        out[key] = label
    return out


# -------------------------------------------------------------------------------------- resolver


class TargetResolver:
    """Decides each image's target emotion; see the module docstring for the sources and order.

    ``emotions``: active vocabulary (``None`` = default). ``targets_csv``: the ``--targets`` file.
    ``manifest``: a manifest.jsonl (or a folder holding one); when ``None``, every manifest.jsonl
    under ``root`` is read up front (so a broken one fails the run early, not image by image) and
    images outside ``root`` look for one in their own folder. ``root``: the input folder(s) that
    CSV paths are relative to.
    """

    def __init__(
        self,
        emotions: list[str] | str | None = None,
        targets_csv: str | os.PathLike | None = None,
        manifest: str | os.PathLike | None = None,
        root: str | os.PathLike | list[str | os.PathLike] | None = None,
        mapping: dict[str, str | None] | None = None,
    ):
        self.emotions = resolve_emotions(emotions)
        # ``mapping``: the Python API's ``targets={path_or_name: emotion}``; keys match the image's
        # path as given, or its file name. Checked like CSV rows.
        self._mapping = {str(k): v for k, v in (mapping or {}).items()}
        bad = sorted({v for v in self._mapping.values() if v is not None and v not in self.emotions})
        if bad:
            raise ValueError(f"targets: unknown emotion(s) {bad}; the active vocabulary is {self.emotions}")
        roots = [root] if isinstance(root, (str, os.PathLike)) else list(root or [])
        self.roots = [Path(os.path.realpath(r)) for r in roots if Path(r).is_dir()]
        self._csv = read_targets_csv(targets_csv, self.emotions) if targets_csv else {}
        self._csv_by_name: dict[str, list[str]] = {}
        for key in self._csv:
            self._csv_by_name.setdefault(posixpath.basename(key), []).append(key)
        self._csv_used: set[str] = set()
        self._manifest: dict[str, str | None] = {}
        self._seen_dirs: set[str] = set()
        self._auto = manifest is None
        if manifest is not None:
            m = Path(manifest)
            m = m / MANIFEST_NAME if m.is_dir() else m
            if not m.is_file():
                raise FileNotFoundError(f"manifest {manifest}: file not found (expected a {MANIFEST_NAME})")
            self._manifest.update(read_manifest(m, self.emotions))
        else:
            for r in self.roots:
                for dirpath, dirnames, filenames in os.walk(r):
                    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                    self._seen_dirs.add(dirpath)
                    if MANIFEST_NAME in filenames:
                        self._add_manifest(Path(dirpath, MANIFEST_NAME))

    def _add_manifest(self, m: Path) -> None:
        for key, label in read_manifest(m, self.emotions).items():
            if key in self._manifest and self._manifest[key] != label:
                raise ValueError(
                    f"{m}: {key} has emotion {label!r} here but {self._manifest[key]!r} in another manifest"
                )
            self._manifest[key] = label

    def target_for(
        self, path: str | os.PathLike, metadata: dict[str, str] | None = None
    ) -> tuple[str | None, str]:
        """``(emotion or None, source)`` for one image; ``source`` is one of :data:`SOURCES`
        (``"none"`` whenever the emotion is ``None``). ``metadata`` is ``LoadedImage.metadata``."""
        p = Path(path)
        for key in (str(path), p.name):
            if key in self._mapping:
                label = self._mapping[key]
                return (label, "mapping") if label else (None, "none")
        found, label = self._from_csv(p)
        if found:
            return (label, "csv") if label else (None, "none")
        found, label = self._from_manifest(p)
        if found:
            return (label, "manifest") if label else (None, "none")
        for k in ("parameters", "UserComment"):
            text = (metadata or {}).get(k)
            if text and (e := prompt_target(text, self.emotions)):
                return e, "metadata"
        if e := filename_target(p, self.emotions):
            return e, "filename"
        return None, "none"

    def _from_csv(self, p: Path) -> tuple[bool, str | None]:
        if not self._csv:
            return False, None
        absolute = Path(_abs_key(p))
        for r in self.roots:
            if absolute.is_relative_to(r) and (key := absolute.relative_to(r).as_posix()) in self._csv:
                return self._use(key)
        for key in (_norm_key(str(absolute)), _norm_key(os.path.abspath(p))):
            if key in self._csv:
                return self._use(key)
        parts = p.parts
        best = None
        for key in self._csv_by_name.get(p.name, []):  # trailing-parts match, most specific wins
            kp = tuple(key.split("/"))
            if parts[-len(kp) :] == kp and (best is None or len(kp) > best[0]):
                best = (len(kp), key)
        return self._use(best[1]) if best else (False, None)

    def _use(self, key: str) -> tuple[bool, str | None]:
        self._csv_used.add(key)
        return True, self._csv[key]

    def _from_manifest(self, p: Path) -> tuple[bool, str | None]:
        absolute = _abs_key(p)
        folder = os.path.dirname(absolute)
        if self._auto and folder not in self._seen_dirs:  # an image outside the walked roots
            self._seen_dirs.add(folder)
            if os.path.isfile(m := os.path.join(folder, MANIFEST_NAME)):
                try:
                    self._add_manifest(Path(m))
                except (ValueError, OSError) as e:
                    # found mid-run: one broken manifest must not stop the run (one warning, no targets)
                    warnings.warn(f"{e}; ignoring {m} (its images get no manifest target)", stacklevel=3)
        if absolute in self._manifest:
            return True, self._manifest[absolute]
        return False, None

    def unused_csv_rows(self) -> list[str]:
        """CSV ``file`` entries no image has matched so far (call after scoring, to warn about typos)."""
        return sorted(set(self._csv) - self._csv_used)
