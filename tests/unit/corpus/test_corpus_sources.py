"""Document loaders: built-in corpora, user files, hub errors."""

import json
import sys
import types
from pathlib import Path

import pytest

from interp.corpus import CORPORA, Document, load_documents


def test_imdb_has_25k_reviews_with_both_labels():
    docs = load_documents("imdb")
    assert len(docs) == 25_000
    assert {d.label for d in docs} == {0, 1}
    assert len({d.doc_id for d in docs}) == len(docs)
    assert not any("<br" in d.text for d in docs[:500])  # html line breaks cleaned


def test_python_is_the_stdlib_without_tests():
    docs = load_documents("python")
    ids = {d.doc_id for d in docs}
    assert "python:os.py" in ids and "python:json/__init__.py" in ids
    assert not any("/test/" in i or "site-packages" in i or i.startswith("python:test/") for i in ids)
    assert "def " in next(d.text for d in docs if d.doc_id == "python:os.py")
    assert [d.doc_id for d in docs] == sorted(d.doc_id for d in docs)


@pytest.mark.skipif(not Path("/usr/include/stdio.h").exists(), reason="no C headers on this machine")
def test_c_headers_are_c():
    docs = load_documents("c")
    stdio = next(d for d in docs if d.doc_id == "c:stdio.h")
    assert "printf" in stdio.text
    assert not any(d.doc_id.startswith("c:c++/") for d in docs)


def test_c_without_headers_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="C headers"):
        load_documents("c", include_dir=tmp_path)


def test_text_file_splits_at_blank_lines(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("first para\nstill first\n\n\nsecond\n  \nthird\n")
    docs = load_documents(f"text:{path}")
    assert [d.text for d in docs] == ["first para\nstill first", "second", "third"]
    assert len({d.doc_id for d in docs}) == 3


def test_text_directory_is_one_document_per_file(tmp_path):
    (tmp_path / "b.txt").write_text("bee\n\nstill bee")
    (tmp_path / "a.txt").write_text("ay")
    (tmp_path / "skip.md").write_text("not text")
    docs = load_documents(f"text:{tmp_path}")
    assert [d.text for d in docs] == ["ay", "bee\n\nstill bee"]


def test_jsonl_default_and_named_field(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"text": "one", "body": "uno", "label": 1}) + "\n\n"
                    + json.dumps({"text": "two", "body": "dos"}) + "\n")
    assert [(d.text, d.label) for d in load_documents(f"jsonl:{path}")] == [("one", 1), ("two", None)]
    assert [d.text for d in load_documents(f"jsonl:{path}:body")] == ["uno", "dos"]
    with pytest.raises(ValueError, match="'missing'.*keys"):
        load_documents(f"jsonl:{path}:missing")


@pytest.mark.parametrize("form", ["text", "jsonl"])
def test_missing_file_names_the_path(tmp_path, form):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_documents(f"{form}:{tmp_path / 'nope.txt'}")


@pytest.mark.parametrize("name", ["wikipedia", "", "text:", "imdb2"])
def test_unknown_corpus_lists_valid_names(name):
    with pytest.raises(ValueError, match="imdb, python, c, text:PATH"):
        load_documents(name)
    assert CORPORA == ("imdb", "python", "c")


def _fake_datasets(monkeypatch, load_dataset):
    # A stand-in module: importing the real `datasets` is slow and it must never go online here.
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


def test_hub_offline_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'stanfordnlp/imdb' on the Hub (LocalEntryNotFoundError)")

    _fake_datasets(monkeypatch, offline)
    with pytest.raises(ConnectionError, match=r"hub is unreachable.*Offline corpora: imdb, python, c"):
        load_documents("hf:stanfordnlp/imdb")


def test_hub_dataset_rows_become_documents(monkeypatch):
    calls = []

    class Rows(list):
        column_names = ["content", "label"]

    def load_dataset(name, split):
        calls.append((name, split))
        return Rows([{"content": "hello", "label": 1}, {"content": " ", "label": 0}])

    _fake_datasets(monkeypatch, load_dataset)
    docs = load_documents("hf:some/set:validation:content")
    assert calls == [("some/set", "validation")]
    assert docs == [Document("hello", "hf:some/set:validation:content", "hf:some/set:validation:content#0", 1)]
