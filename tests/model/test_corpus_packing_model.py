"""Packing into BOS windows, the held-out split and the on-disk cache."""

import os

import pytest

from interp.corpus import token_windows


# The user's own data root, so the model test reuses an already converted model.
_REAL_HOME = os.environ.get("INTERP_HOME")


from helpers.bpe import SENTENCES, _tokenizer  # noqa: E402,F401


@pytest.fixture(scope="module")
def tok():
    return _tokenizer()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.model
def test_real_tokenizer_windows(home, monkeypatch):
    from interp.models import load_tokenizer

    # The autouse tmp home would force a fresh model conversion (~20 s); load from the real one.
    if _REAL_HOME:
        monkeypatch.setenv("INTERP_HOME", _REAL_HOME)
    else:
        monkeypatch.delenv("INTERP_HOME")
    tok = load_tokenizer("smollm2-135m")
    monkeypatch.setenv("INTERP_HOME", str(home))
    w = token_windows("imdb", tok, max_tokens=4096, use_cache=False)
    assert w.tokens.shape == (32, 128)
    assert (w.tokens[:, 0] == 1).all() and int(w.tokens.max()) < 49152
    assert "<|im_start|>" not in tok.decode(w.tokens[0, 1:])  # the tokenizer adds no BOS of its own
