"""The dashboard's one home for caching, session state and the live model.

- `store()`: the `Store` at the root given by ``--store`` / ``$INTERP_STORE`` (default
  `interp.paths.store_dir()`), cached per process with `st.cache_resource`.
- `query(name, ...)`: the read API function `READS[name]` (`interp.store.read`) run through
  `st.cache_data` (a short TTL, so results written by a running job show up without a restart).
- `model(name)`: the loaded `ModelAdapter` of a model known to the registry or the store's
  models table, under one canonical key (`model_key`), in a process-wide LRU cache of
  ``$INTERP_APP_MAX_MODELS`` models (default 2); anything else becomes a short message.
- `page()`: the context manager every page body runs in: any error becomes one short
  `st.error` line, its traceback goes to the server log only.
- `guard()`: a context manager that turns the errors interp raises for bad input into
  `st.error` boxes and lets the page go on.
- `save_graph_params(key, ...)`: the one write the app makes: a reader's pins, supernodes
  and annotations saved into a stored attribution graph's qParams
  (`interp.methods.circuits.store.update_graph_params`); the cached reads are cleared.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from interp.methods.circuits import store as circuit_store
from interp.methods.neurons import store as neuron_store
from interp.store import Store, StoreError, read

READS = {
    # store-wide
    "table_counts": read.table_counts, "feature_summary": read.feature_summary, "facets": read.facets,
    "read_table": read.read_table, "runs": read.runs, "dictionaries": read.dictionaries,
    "results": read.results, "figures": read.figures, "result_names": read.result_names,
    "layer_stats": read.layer_stats, "feature_sample": read.feature_sample,
    "probing_results": read.probing_results, "tpp_results": read.tpp_results, "meta_results": read.meta_results,
    # search
    "search": read.search, "top_tokens": read.top_tokens,
    # one feature
    "parse_key": read.parse_key, "feature_row": read.feature_row, "feature_tokens": read.feature_tokens,
    "feature_examples": read.feature_examples, "feature_complexity": read.feature_complexity,
    "feature_results": read.feature_results, "neighbours": read.neighbours, "clamp_sweeps": neuron_store.clamp_sweeps,
    "feature_histogram": read.feature_histogram, "nearest_by_direction": read.nearest_by_direction,
    # method results
    "circuits": read.circuits, "circuit_payload": read.circuit_payload, "circuits_with": read.circuits_with,
    "attributions": read.attributions, "faithfulness_summary": read.faithfulness_summary,
    "complexity_features": read.complexity_features,
    "attribution_graphs": circuit_store.attribution_graph_table,
    "attribution_graph_file": circuit_store.attribution_graph_file,
}
"""What the pages may ask of the store: a name -> its `interp.store.read` function."""

STORE_ENV = "INTERP_STORE"
QUERY_TTL_S = 30
MAX_MODELS_ENV = "INTERP_APP_MAX_MODELS"
DEFAULT_MAX_MODELS = 2
MESSAGE_CHARS = 300
"""Error messages shown on a page are cut to one line of at most this many characters."""
BAD_INPUT = (ValueError, KeyError, StoreError, FileNotFoundError)
"""The errors interp raises for bad input: their message is shown as it is (first line)."""

log = logging.getLogger("interp.app")

FILL_COMMANDS = {
    "features": "interp map-neurons --model smollm2-135m",
    "neurons": "interp map-neurons --model smollm2-135m",
    "examples": "interp examples --model smollm2-135m",
    "dictionaries": "interp train",
    "obsprop": "interp obsprop",
    "attributions": "interp attribute",
    "complexity": "interp complexity",
    "clamp": "interp clamp",
    "circuits": "interp circuit build",
}


def store_root() -> Path:
    """The store root this app serves."""
    from interp.paths import store_dir

    env = os.environ.get(STORE_ENV)
    return Path(env).expanduser().resolve() if env else store_dir()


@st.cache_resource(show_spinner=False)
def _store(root: str) -> Store:
    return Store(root)


def store() -> Store:
    """The cached `Store`; stops the page with a message if the store cannot be opened."""
    root = store_root()
    try:
        return _store(str(root))
    except (StoreError, OSError, ValueError) as exc:
        st.error(f"Cannot open the feature store at `{root}`: {exc}")
        st.stop()


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, hash_funcs={Store: lambda s: str(s.root)})
def _cached(name: str, store_obj: Store, args: tuple, kwargs: tuple):
    return READS[name](store_obj, *args, **dict(kwargs))


def query(name: str, /, *args, **kwargs):
    """`READS[name](store, *args, **kwargs)`, cached; store errors become st.error."""
    if name not in READS:
        raise KeyError(f"no store read named {name!r}; valid: {', '.join(sorted(READS))}")
    with guard():
        return _cached(name, store(), args, tuple(sorted(kwargs.items())))
    st.stop()


def short_message(exc: BaseException) -> str:
    """One line for a page: interp's own bad-input message (first line, cut to `MESSAGE_CHARS`),
    else only the error's type - its text and traceback may name server paths."""
    if isinstance(exc, BAD_INPUT):
        text = str(exc.args[0]) if exc.args else type(exc).__name__
        lines = text.strip().splitlines() or [type(exc).__name__]
        line = lines[0]
        return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 3] + "..."
    return f"This page hit an internal error ({type(exc).__name__}); the details are in the server log."


@contextlib.contextmanager
def page():
    """Run a page body: any error shows one short `st.error` line, never a traceback.

    The full traceback goes to the server log (logger ``interp.app``). Streamlit's own control
    flow (`st.stop`, reruns, page switches) derives from BaseException and passes through.
    """
    try:
        yield
    except Exception as exc:
        log.error("error on a dashboard page", exc_info=exc)
        st.error(short_message(exc))


@contextlib.contextmanager
def guard(message: str = ""):
    """Show interp's own errors (bad input, corrupt store files) as a message box."""
    try:
        yield
    except BAD_INPUT as exc:
        log.info("bad input on a dashboard page", exc_info=exc)
        st.error(f"{message}{short_message(exc)}")


def fill_hint(what: str) -> str:
    """'run `interp ...` to fill it' for an empty part of the store."""
    command = FILL_COMMANDS.get(what, "the interp jobs")
    return f"Nothing here yet: run `{command}` (or `make run`) to fill the store at `{store_root()}`."


# ----------------------------------------------------------------------------- model
def max_models() -> int:
    """How many models the app keeps loaded at once: ``$INTERP_APP_MAX_MODELS`` (default 2)."""
    raw = os.environ.get(MAX_MODELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MODELS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_MODELS_ENV}={raw!r} must be a whole number >= 1 (models kept loaded at once)")
    return int(raw)


class ModelCache:
    """The loaded models, least recently used evicted beyond `max_size` (thread-safe)."""

    def __init__(self, max_size: int, loader: Callable[[str], object]) -> None:
        if max_size < 1:
            raise ValueError(f"a model cache holds at least 1 model, got max_size={max_size}")
        self.max_size = max_size
        self._loader = loader
        self._models: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        """The model under `key`, loaded on first use; evicts the least recently used."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loaded = self._loader(key)
            self._models[key] = loaded
            while len(self._models) > self.max_size:
                evicted, _ = self._models.popitem(last=False)
                log.info("model cache: evicted %s (holds at most %d)", evicted, self.max_size)
            return loaded

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._models)


def _load(key: str):
    import torch

    from interp.models import load_model

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return load_model(key)


@st.cache_resource(show_spinner=False)
def _model_cache(size: int) -> ModelCache:
    return ModelCache(size, _load)


def _model(key: str):
    return _model_cache(max_models()).get(key)


def model_key(name: str, stored: list[str] | None = None) -> str:
    """The one cache key of a model the app may load, or ValueError.

    Accepted: a registry alias, a model name of the store's models table, or a local model
    directory whose store name is in the models table (then keyed by its resolved path, so
    every spelling of one directory is one model). `stored`: the models table's names
    (default: read from the store).
    """
    from interp.models.registry import ALIASES, store_model_name

    name = str(name).strip()
    if name in ALIASES:
        return name
    if stored is None:
        frame = query("read_table", "models")
        stored = sorted(frame["model"]) if "model" in frame else []
    if name in stored:
        return name
    path = Path(name).expanduser()
    with contextlib.suppress(OSError, ValueError):  # a crafted name: too long, NUL bytes...
        if path.is_dir() and store_model_name(str(path.resolve())) in stored:
            return str(path.resolve())
    known = ", ".join([*ALIASES, *(m for m in stored if m not in ALIASES)])
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise ValueError(f"{shown!r} is not a model of the registry or of this store; known models: {known}")


def model(name: str):
    """The loaded adapter for `name`, or None after showing why it could not be loaded."""
    try:
        key = model_key(name)
        with st.spinner("Loading the model..."):
            return _model(key)
    except Exception as exc:  # loading goes through hub / GGUF / file libraries with many error types
        log.warning("model %r not loaded", name, exc_info=exc)
        st.warning(f"Model `{name[:80]}` could not be loaded, so live views are off: {short_message(exc)}")
        return None


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _live(name: str, model_name: str, args: tuple, kwargs: tuple):
    from app import live as live_fns

    return getattr(live_fns, name)(_model(model_name), *args, **dict(kwargs))


def live(fn: str, model_name: str, /, *args, **kwargs):
    """`app.live.<fn>(adapter, ...)` on the cached model, results cached per input."""
    return _live(fn, model_key(model_name), args, tuple(sorted(kwargs.items())))


@st.cache_resource(show_spinner="Loading the dictionary...")
def _dictionary(root: str, name: str):
    from interp.dictionaries.io import load_dictionary_dir

    return load_dictionary_dir(stored_dictionary_dir(_store(root), name))[0].eval()


def stored_dictionary_dir(store_obj: Store, name: str) -> Path:
    """The folder of store dictionary `name`, its ``dictionaries.path`` checked
    (`Store.dictionary_folder`: a path outside the store root is refused)."""
    rows = store_obj.read("dictionaries", where={"name": name}, columns=["name", "path"])
    if rows.empty:
        raise FileNotFoundError(f"no dictionary {name!r} in this store; pick one from the Dictionaries page")
    return store_obj.dictionary_folder(name, rows.iloc[0]["path"])


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _live_latents(model_name: str, root: str, name: str, site: str, prompt: str, k: int):
    from app import live as live_fns

    return live_fns.active_latents(_model(model_name), _dictionary(root, name), site, prompt, k)


def live_latents(model_name: str, name: str, site: str, prompt: str, k: int = 3):
    """`app.live.active_latents` for store dictionary `name` (reading `site`), cached."""
    return _live_latents(model_key(model_name), str(store_root()), name, site, prompt, k)


def default_model() -> str:
    """The model to load for live views: the store's first model, else interp's default."""
    from interp.models import DEFAULT_MODEL

    models = query("facets").get("model", [])
    return models[0] if models else DEFAULT_MODEL


def save_graph_params(key: str, pinned=None, supernodes=None, annotations=None) -> dict:
    """Save pins / supernodes / annotations of attribution graph `key` (None keeps a value);
    clears the cached reads so the page shows what was saved. Returns the new qParams."""
    q = circuit_store.update_graph_params(store(), key, pinned=pinned, supernodes=supernodes, annotations=annotations)
    _cached.clear()
    return q


# ----------------------------------------------------------------------------- links
def feature_link(key: str) -> str:
    """Relative URL of the feature page for a feature key."""
    return "feature?feature=" + urllib.parse.quote(key, safe="")


def show_stored_figures(prefix: str) -> int:
    """Draw the plotly figures a method stored as ``<prefix>..._figure`` results; returns how many.

    A payload is either the figure's JSON itself or ``{"figure": <figure JSON>}``.
    """
    import json

    import plotly.io as pio

    frame = query("figures", prefix)
    for row in frame.itertuples():
        with guard(f"Stored figure {row.key} is unreadable: "):
            payload = json.loads(row.payload)
            figure = payload.get("figure", payload) if isinstance(payload, dict) else payload
            fig = pio.from_json(figure if isinstance(figure, str) else json.dumps(figure))
            st.plotly_chart(fig, width="stretch", key=f"fig-{row.name}-{row.key}")
    return len(frame)


def heatmap_rows(fig, n_rows: int):
    """Give a methods x tokens heatmap room for its rows and rotated token labels."""
    fig.update_layout(height=max(fig.layout.height or 0, 220 + 45 * n_rows), margin=dict(b=90))
    return fig


def attribution_results(rows) -> list:
    """Stored attributions rows as objects with tokens / scores / method / target, the shape
    `interp.viz.attribution` draws (an `AttributionResult` without its token ids)."""
    from types import SimpleNamespace

    return [SimpleNamespace(tokens=list(r.tokens), scores=list(r.scores), method=r.method, target=r.target)
            for r in rows.itertuples()]


def run_caption(run_id) -> str:
    """'from run <id> (`command`, started <time>)' for a table's run id, from the runs table."""
    if not isinstance(run_id, str) or not run_id:
        return "from an unrecorded run"
    import pandas as pd

    runs = query("runs")
    found = runs[runs["run_id"] == run_id] if len(runs) else runs
    if found.empty:
        return f"from run `{run_id}` (not in the runs table)"
    row = found.iloc[0]
    return f"from run `{run_id}` (`{row['command']}`, started {pd.Timestamp(row['started_at']):%Y-%m-%d %H:%M:%S} UTC)"


def parse_json(value):
    """A JSON column value as Python data ({} when missing or unparseable)."""
    return read.parse_json(value)


def remember(name: str, value) -> None:
    st.session_state[name] = value


def recall(name: str, default=None):
    return st.session_state.get(name, default)
