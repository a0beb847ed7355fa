"""The store's read API: what the dashboard (and a notebook) asks of a `Store`.

Plain functions of a `Store` and keyword arguments returning pandas DataFrames, dicts or
named results; no streamlit, no caching (the app caches them in `app.state`). A notebook
calls them with the same arguments the app does::

    from interp.store import Store, read
    page, total = read.search(Store(), read.SearchQuery(token="Paris", limit=10))

- `overview`: table_counts, feature_summary, facets, read_table, runs, dictionaries, results,
  figures, result_names, layer_stats, feature_sample
- `search`: SearchQuery, SORTABLE, search, top_tokens
- `feature`: parse_key, feature_row, feature_tokens, feature_examples, feature_complexity,
  feature_results, neighbours, clamp_sweeps
- `examples`: feature_histogram (corpus activation histogram), nearest_by_direction
  (write-direction cosine)
- `methods`: circuits, circuit_payload, circuits_with, attributions, faithfulness_summary,
  complexity_features
- `lists`: list_names, read_list (named feature lists; written by `interp.store.lists`)
- `dictionary_evals`: probing_results, tpp_results, meta_results (``interp dict-eval``)
- `sql`: the literal helpers and the features view they share (IDENTITY, parse_json)
"""

from interp.store.read.dictionary_evals import meta_results, probing_results, tpp_results
from interp.store.read.examples import feature_histogram, nearest_by_direction
from interp.store.read.lists import list_names, read_list
from interp.store.read.feature import (feature_complexity, feature_examples, feature_results,
                                       feature_row, feature_tokens, neighbours, parse_key)
from interp.store.read.methods import (CIRCUIT, attributions, circuit_payload, circuits, circuits_with,
                                       complexity_features, faithfulness_summary)
from interp.store.read.overview import (dictionaries, facets, feature_sample, feature_summary, figures, layer_stats,
                                        read_table, result_names, results, runs, table_counts)
from interp.store.read.search import SORTABLE, SearchQuery, search, top_tokens
from interp.store.read.complexity import FEATURES_NAME as COMPLEXITY_FEATURES
from interp.store.read.sql import IDENTITY, parse_json

__all__ = [
    "CIRCUIT", "COMPLEXITY_FEATURES", "IDENTITY", "SORTABLE", "SearchQuery", "attributions",
    "circuit_payload", "circuits", "circuits_with", "complexity_features", "dictionaries", "facets",
    "faithfulness_summary", "feature_complexity", "feature_examples", "feature_histogram", "feature_results",
    "feature_row", "feature_sample", "feature_summary", "feature_tokens", "figures", "layer_stats", "list_names",
    "meta_results", "nearest_by_direction", "neighbours", "parse_json", "parse_key", "probing_results", "read_list",
    "read_table", "result_names", "results", "runs", "search", "table_counts", "top_tokens", "tpp_results",
]
