"""Packing into BOS windows, the held-out split and the on-disk cache."""


import pytest
import torch

import interp.corpus.packing as packing
from interp.corpus import Document, WindowsConfig, is_heldout, pack, token_windows


from helpers.bpe import SENTENCES, _tokenizer  # noqa: E402,F401


@pytest.fixture(scope="module")
def tok():
    return _tokenizer()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    return tmp_path


def test_pack_by_hand(tok):
    docs = [Document(t, "toy", f"toy:{i}") for i, t in enumerate(SENTENCES)]
    w = pack(docs, tok, ctx_len=8)
    stream = []
    for t in SENTENCES:
        stream += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    n = len(stream) // 7
    assert w.tokens.shape == (n, 8) and w.tokens.dtype == torch.int64
    assert (w.tokens[:, 0] == tok.bos_token_id).all()
    assert w.tokens[:, 1:].flatten().tolist() == stream[: n * 7]
    assert (w.doc_index[:, 0] == -1).all()
    assert w.doc_ids[0][0] == "toy:0"
    assert list(w.documents) == [f"toy:{i}" for i in range(len(w.documents))]
    assert pack(docs, tok, ctx_len=8, max_tokens=16).tokens.shape == (2, 8)


def test_windows_are_deterministic_by_seed(tok):
    a = token_windows("imdb", tok, ctx_len=32, max_tokens=2048, seed=0, use_cache=False)
    b = token_windows("imdb", tok, ctx_len=32, max_tokens=2048, seed=0, use_cache=False)
    c = token_windows("imdb", tok, ctx_len=32, max_tokens=2048, seed=1, use_cache=False)
    assert a.tokens.shape == (64, 32)
    assert torch.equal(a.tokens, b.tokens) and a.documents == b.documents
    assert not torch.equal(a.tokens, c.tokens)
    assert (a.tokens[:, 0] == tok.bos_token_id).all()
    assert a.n_tokens == 2048
    assert a.describe() | {"tokenizer": None} == {"corpus": "imdb", "split": "train", "seed": 0, "ctx_len": 32,
                                                   "n_windows": 64, "n_tokens": 2048, "tokenizer": None}


def test_heldout_documents_never_reach_train(tok):
    train = token_windows("python", tok, ctx_len=64, max_tokens=16_384, use_cache=False)
    held = token_windows("python", tok, ctx_len=64, max_tokens=4096, split="heldout", use_cache=False)
    assert held.documents and not set(train.documents) & set(held.documents)
    assert all(is_heldout(d) for d in held.documents)
    assert not any(is_heldout(d) for d in train.documents)


def test_cache_hit_returns_identical_windows(tok, home, monkeypatch):
    first = token_windows("imdb", tok, ctx_len=16, max_tokens=512, seed=2)
    files = list((home / "cache" / "corpus").glob("imdb-train-*.safetensors"))
    assert len(files) == 1 and not list(files[0].parent.glob("*.tmp"))

    def no_loading(name):
        raise AssertionError("cache miss: documents were loaded again")

    monkeypatch.setattr(packing, "load_documents", no_loading)
    second = token_windows("imdb", tok, ctx_len=16, max_tokens=512, seed=2)
    assert torch.equal(first.tokens, second.tokens) and torch.equal(first.doc_index, second.doc_index)
    assert second.documents == first.documents and second.describe() == first.describe()

    files[0].write_bytes(b"garbage")  # a corrupt cache is rebuilt, not fatal
    monkeypatch.undo()
    monkeypatch.setenv("INTERP_HOME", str(home))
    assert torch.equal(token_windows("imdb", tok, ctx_len=16, max_tokens=512, seed=2).tokens, first.tokens)


def test_user_text_file(tok, tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("\n\n".join(SENTENCES * 20))
    w = token_windows(f"text:{path}", tok, ctx_len=16, max_tokens=160)
    assert w.tokens.shape == (10, 16)
    path.write_text("\n\n".join(reversed(SENTENCES * 20)))  # an edited file is not served stale
    assert not torch.equal(token_windows(f"text:{path}", tok, ctx_len=16, max_tokens=160).tokens, w.tokens)


def test_bos_required_and_config_validated(tok):
    with pytest.raises(ValueError, match="no bos_token_id; pass bos_token_id"):
        token_windows("imdb", _tokenizer(with_bos=False), max_tokens=256)
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        token_windows("imdb", tok, bos_token_id=10**6)
    with pytest.raises(ValueError, match="split must be one of"):
        WindowsConfig("imdb", split="test")
    with pytest.raises(ValueError, match="ctx_len must be"):
        WindowsConfig("imdb", ctx_len=1)
    with pytest.raises(ValueError, match="max_tokens must be"):
        WindowsConfig("imdb", ctx_len=128, max_tokens=100)
    with pytest.raises(ValueError, match="fewer than one window"):
        pack([Document("hi", "toy", "toy:0")], tok, ctx_len=64)
