"""Tokenise documents and pack them into fixed-length context windows, with a disk cache.

How `token_windows` builds its answer:

1. Load the corpus's documents (`interp.corpus.sources.load_documents`).
2. Keep one split. A document is held out when the first 8 bytes of sha256(doc_id), read as
   a fraction of 2**64, fall below `HELDOUT_FRACTION`; this depends on nothing but the id, so
   the held-out set is the same for every seed, budget and context length.
3. Shuffle the split's documents with ``numpy.random.default_rng(seed)``.
4. Tokenise in small batches (``add_special_tokens=False``) until the token budget is met,
   join documents with a separator (EOS by default) and cut the stream into rows of
   ``ctx_len - 1`` tokens, each prefixed with BOS; a final partial row is dropped.
5. Cache the result as safetensors under ``cache_dir()/corpus/`` (written to a temporary
   file, then renamed, so a crash never leaves a half-written cache behind).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from interp.corpus.sources import Document, load_documents
from interp.paths import cache_dir

HELDOUT_FRACTION = 0.1
"""Share of documents (by doc_id hash) that training never sees."""

SPLITS = ("train", "heldout")
_CACHE_FORMAT = "1"
_TOKENIZE_BATCH = 64  # small enough that a budget stops tokenising soon after it is met


@dataclass(frozen=True)
class TokenWindows:
    """Fixed-length token windows, each row starting with BOS."""

    tokens: torch.Tensor
    """(n_windows, ctx_len) int64 token ids; column 0 is BOS."""
    doc_index: torch.Tensor
    """(n_windows, ctx_len) int64 index into `documents` of each token's document; -1 at BOS."""
    documents: tuple[str, ...]
    """doc_ids of the documents used, in stream order."""
    bos_token_id: int
    sep_token_id: int
    corpus: str = "custom"
    split: str | None = None
    seed: int | None = None
    tokenizer: str = ""

    def __post_init__(self):
        if self.tokens.ndim != 2 or self.tokens.dtype != torch.int64:
            raise ValueError(f"tokens must be a 2-d int64 tensor, got {tuple(self.tokens.shape)} {self.tokens.dtype}")
        if self.doc_index.shape != self.tokens.shape:
            raise ValueError(f"doc_index shape {tuple(self.doc_index.shape)} != tokens shape {tuple(self.tokens.shape)}")

    @property
    def n_windows(self) -> int:
        return self.tokens.shape[0]

    @property
    def ctx_len(self) -> int:
        return self.tokens.shape[1]

    @property
    def n_tokens(self) -> int:
        return self.tokens.numel()

    @property
    def doc_ids(self) -> list[tuple[str, ...]]:
        """Per window, the doc_ids its tokens come from, in order."""
        out = []
        for row in self.doc_index.tolist():
            seen = dict.fromkeys(i for i in row if i >= 0)  # ordered unique
            out.append(tuple(self.documents[i] for i in seen))
        return out

    def describe(self) -> dict:
        """Provenance for run records."""
        return {"corpus": self.corpus, "split": self.split, "seed": self.seed, "ctx_len": self.ctx_len,
                "n_windows": self.n_windows, "n_tokens": self.n_tokens, "tokenizer": self.tokenizer}


@dataclass(frozen=True)
class WindowsConfig:
    """What `token_windows` builds; also the cache key (with the tokenizer)."""

    corpus: str
    """Corpus name, see `interp.corpus.CORPORA`."""
    split: str = "train"
    """'train' or 'heldout' (a fixed ~10% of documents by doc_id hash)."""
    ctx_len: int = 128
    """Tokens per window, BOS included."""
    max_tokens: int | None = 200_000
    """Token budget: at most max_tokens // ctx_len windows; None packs the whole split."""
    seed: int = 0
    """Seed of the document shuffle within the split."""
    extra: dict = field(default_factory=dict)
    """Anything else that changes the result (special token ids, file fingerprints)."""

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not isinstance(self.ctx_len, int) or self.ctx_len < 2:
            raise ValueError(f"ctx_len must be an int >= 2 (BOS plus at least one token), got {self.ctx_len!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < self.ctx_len):
            raise ValueError(f"max_tokens must be None or an int >= ctx_len ({self.ctx_len}), got {self.max_tokens!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


def is_heldout(doc_id: str, fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether a document belongs to the held-out split; a pure function of its id."""
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_documents(documents: list[Document], split: str) -> list[Document]:
    """The documents of one split, order kept."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    want_heldout = split == "heldout"
    return [d for d in documents if is_heldout(d.doc_id) == want_heldout]


def shuffle_documents(documents: list[Document], seed: int) -> list[Document]:
    order = np.random.default_rng(seed).permutation(len(documents))
    return [documents[i] for i in order]


def _special_id(tokenizer, given: int | None, attr: str, what: str) -> int:
    token_id = given if given is not None else getattr(tokenizer, attr, None)
    if token_id is None:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no {attr}; pass {what} explicitly")
    if not 0 <= int(token_id) < len(tokenizer):
        raise ValueError(f"{what}={token_id} is outside the tokenizer's vocabulary (0..{len(tokenizer) - 1})")
    return int(token_id)


def pack(documents: list[Document], tokenizer, ctx_len: int = 128, *, bos_token_id: int | None = None,
         sep_token_id: int | None = None, max_tokens: int | None = None) -> TokenWindows:
    """Tokenise `documents` in order and pack them into BOS-prefixed windows.

    `tokenizer` is a HF ``PreTrainedTokenizerBase``. BOS defaults to ``tokenizer.bos_token_id``
    and the separator between documents to ``tokenizer.eos_token_id`` (else BOS).
    Returns (n_windows, ctx_len) windows, n_windows = max_tokens // ctx_len when given.
    """
    if ctx_len < 2:
        raise ValueError(f"ctx_len must be >= 2 (BOS plus at least one token), got {ctx_len}")
    if max_tokens is not None and max_tokens < ctx_len:
        raise ValueError(f"max_tokens ({max_tokens}) must be at least ctx_len ({ctx_len})")
    bos = _special_id(tokenizer, bos_token_id, "bos_token_id", "bos_token_id")
    if sep_token_id is None and getattr(tokenizer, "eos_token_id", None) is None:
        sep_token_id = bos
    sep = _special_id(tokenizer, sep_token_id, "eos_token_id", "sep_token_id")
    body = ctx_len - 1
    needed = (max_tokens // ctx_len) * body if max_tokens is not None else None

    token_chunks, index_chunks, used = [], [], []
    have = 0
    for start in range(0, len(documents), _TOKENIZE_BATCH):
        batch = documents[start:start + _TOKENIZE_BATCH]
        # verbose=False: whole files exceed model_max_length, which is harmless before packing
        ids = tokenizer([d.text for d in batch], add_special_tokens=False, verbose=False)["input_ids"]
        for doc, doc_ids in zip(batch, ids):
            token_chunks.append(np.asarray(list(doc_ids) + [sep], dtype=np.int64))
            index_chunks.append(np.full(len(doc_ids) + 1, len(used), dtype=np.int64))
            used.append(doc.doc_id)
            have += len(doc_ids) + 1
            if needed is not None and have >= needed:
                break
        if needed is not None and have >= needed:
            break

    n_windows = have // body if needed is None else min(have, needed) // body
    if n_windows == 0:
        raise ValueError(f"{len(documents)} documents give {have} tokens, fewer than one window of {ctx_len}")
    stream = np.concatenate(token_chunks)[: n_windows * body].reshape(n_windows, body)  # (n, ctx_len - 1)
    index = np.concatenate(index_chunks)[: n_windows * body].reshape(n_windows, body)
    tokens = torch.from_numpy(np.concatenate([np.full((n_windows, 1), bos, np.int64), stream], axis=1))
    doc_index = torch.from_numpy(np.concatenate([np.full((n_windows, 1), -1, np.int64), index], axis=1))
    n_used = int(index.max()) + 1  # documents cut off after the last full window are not "used"
    return TokenWindows(tokens, doc_index, tuple(used[:n_used]), bos, sep,
                        tokenizer=str(getattr(tokenizer, "name_or_path", "")))


def _tokenizer_key(tokenizer) -> dict:
    # name_or_path alone is empty for in-memory tokenizers, so the vocabulary itself is hashed too.
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode("utf-8")
    return {"name": str(getattr(tokenizer, "name_or_path", "")), "vocab_size": len(tokenizer),
            "vocab_sha": hashlib.sha256(vocab).hexdigest()[:16]}


def _source_fingerprint(corpus: str) -> list:
    """Size and mtime of user files, so an edited file is not served from a stale cache."""
    kind, _, rest = corpus.partition(":")
    if kind not in ("text", "jsonl"):
        return []
    path = Path(rest) if kind == "text" or Path(rest).exists() else Path(rest.rsplit(":", 1)[0])
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path] if path.is_file() else []
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _cache_path(config: WindowsConfig, tokenizer) -> Path:
    key = {"format": _CACHE_FORMAT, "corpus": config.corpus, "split": config.split, "ctx_len": config.ctx_len,
           "max_tokens": config.max_tokens, "seed": config.seed, "heldout": HELDOUT_FRACTION,
           "tokenizer": _tokenizer_key(tokenizer), "extra": config.extra,
           "files": _source_fingerprint(config.corpus)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:20]
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in config.corpus)[:40]
    return cache_dir() / "corpus" / f"{safe_name}-{config.split}-{digest}.safetensors"


def _save(path: Path, windows: TokenWindows) -> None:
    from safetensors.torch import save_file

    meta = {"format": _CACHE_FORMAT, "documents": json.dumps(windows.documents),
            "fields": json.dumps({"bos_token_id": windows.bos_token_id, "sep_token_id": windows.sep_token_id,
                                  "corpus": windows.corpus, "split": windows.split, "seed": windows.seed,
                                  "tokenizer": windows.tokenizer})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file({"tokens": windows.tokens.contiguous(), "doc_index": windows.doc_index.contiguous()}, tmp,
                  metadata=meta)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a cache is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> TokenWindows | None:
    """The cached windows, or None when absent or unreadable (then they are rebuilt)."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != _CACHE_FORMAT:
                return None
            tensors = {k: f.get_tensor(k) for k in ("tokens", "doc_index")}
        return TokenWindows(tensors["tokens"], tensors["doc_index"], tuple(json.loads(meta["documents"])),
                            **json.loads(meta["fields"]))
    except Exception:  # a corrupt cache is only a miss: it is recomputable by definition
        return None


def token_windows(corpus: str, tokenizer, *, split: str = "train", ctx_len: int = 128,
                  max_tokens: int | None = 200_000, seed: int = 0, bos_token_id: int | None = None,
                  sep_token_id: int | None = None, use_cache: bool = True) -> TokenWindows:
    """BOS-prefixed (n_windows, ctx_len) windows of one split of `corpus`, cached on disk.

    The main entry point for methods that need "some text". Deterministic in
    (corpus, tokenizer, split, ctx_len, max_tokens, seed).
    """
    bos = _special_id(tokenizer, bos_token_id, "bos_token_id", "bos_token_id")
    config = WindowsConfig(corpus, split, ctx_len, max_tokens, seed,
                           extra={"bos": bos, "sep": sep_token_id})
    path = _cache_path(config, tokenizer)
    if use_cache and (cached := _load(path)) is not None:
        return cached
    documents = shuffle_documents(split_documents(load_documents(corpus), split), seed)
    if not documents:
        raise ValueError(f"corpus {corpus!r} has no documents in split {split!r}")
    packed = pack(documents, tokenizer, ctx_len, bos_token_id=bos, sep_token_id=sep_token_id,
                  max_tokens=max_tokens)
    windows = TokenWindows(packed.tokens, packed.doc_index, packed.documents, packed.bos_token_id,
                           packed.sep_token_id, corpus=corpus, split=split, seed=seed, tokenizer=packed.tokenizer)
    if use_cache:
        _save(path, windows)
    return windows
