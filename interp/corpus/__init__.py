"""Offline token streams and labelled probe sets.

- `load_documents(name)` - the documents of a corpus (`CORPORA`, or text:/jsonl:/hf: forms).
- `token_windows(corpus, tokenizer, ...)` - BOS-prefixed (n_windows, ctx_len) windows of a
  train or held-out split, deterministic by seed and cached on disk; `pack` does the packing
  for documents you already have.
- `labelled_set(name, ...)` - balanced labelled texts for probes (`LABELLED_SETS`).
"""

from interp.corpus.labelled import LABELLED_SETS, LabelledSet, LabelledSplit, labelled_set
from interp.corpus.packing import HELDOUT_FRACTION, TokenWindows, WindowsConfig, is_heldout, pack, token_windows
from interp.corpus.sources import CORPORA, CORPUS_FORMS, Document, load_documents

__all__ = ["CORPORA", "CORPUS_FORMS", "Document", "HELDOUT_FRACTION", "LABELLED_SETS", "LabelledSet",
           "LabelledSplit", "TokenWindows", "WindowsConfig", "is_heldout", "labelled_set", "load_documents",
           "pack", "token_windows"]
