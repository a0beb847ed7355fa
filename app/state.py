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
- `prompt_pass(model, prompt)`: the one forward pass every view of the Prompt page reads
  (`app.live.forward`), cached per (model, prompt); `lens_grid` and `live_latents` build on it.
- `guard()`: a context manager that turns the errors interp raises for bad input into
  `st.error` boxes and lets the page go on.
- `save_graph_params(key, ...)`: a reader's pins, supernodes and annotations saved into a
  stored attribution graph's qParams (`interp.methods.circuits.store.update_graph_params`);
  `save_steering_run(run)`: a steering run saved as a ``results`` row
  (`interp.methods.steering.store.save_run`). These are the app's only writes; each clears the
  cached reads.
- `steer(model_name, ...)`: a steering run (`interp.methods.steering.run_steering`) on the
  cached model, one at a time (its hooks sit on the shared model while it runs).
  `write(fn, ...)`: the app's other writes (label edits, feature lists) through their
  library function; both clear the cached reads.
"""

from __future__ import annotations

import contextlib
import threading
import logging
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app.model_cache import DEFAULT_MAX_MODELS, MAX_MODELS_ENV, ModelCache, max_models  # noqa: F401
from interp.methods.circuits import store as circuit_store
from interp.methods.lenses import store as lens_store
from interp.methods.labels import store as label_store
from interp.methods.neurons import store as neuron_store
from interp.methods.steering import store as steering_store
from interp.methods.steering.strength import suggest_strength
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
    "feature_labels": label_store.feature_labels, "label_agreement": label_store.label_agreement,
    # feature lists
    "list_names": read.list_names, "read_list": read.read_list,
    # method results
    "circuits": read.circuits, "circuit_payload": read.circuit_payload, "circuits_with": read.circuits_with,
    "attributions": read.attributions, "faithfulness_summary": read.faithfulness_summary,
    "complexity_features": read.complexity_features,
    "attribution_graphs": circuit_store.attribution_graph_table,
    "attribution_graph_file": circuit_store.attribution_graph_file,
    # steering
    "steering_run": steering_store.load_run, "suggested_strength": suggest_strength,
    "tuned_lens": lens_store.tuned_lens_record,
}
"""What the pages may ask of the store: a name -> its `interp.store.read` function."""

STORE_ENV = "INTERP_STORE"
QUERY_TTL_S = 30
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


def model(name: str, load: bool = True):
    """The loaded adapter for `name`, or None after showing why it could not be loaded.

    `load=False` only checks that the app may load `name` (`model_key`, no loading): True or None."""
    try:
        key = model_key(name)
        if not load:
            return True
        with st.spinner(f"Loading {name[:80]}..."):
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


@st.cache_resource(show_spinner=False, max_entries=16)
def _prompt_pass(key: str, prompt: str):
    from app import live as live_fns

    return live_fns.forward(_model(key), prompt)


def prompt_pass(model_name: str, prompt: str):
    """`app.live.forward`: the one forward pass of `prompt` that every Prompt-page view reads, cached."""
    return _prompt_pass(model_key(model_name), prompt)


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _live_latents(model_name: str, root: str, name: str, site: str, prompt: str, k: int, include_bos: bool):
    from app import live as live_fns

    return live_fns.active_latents(_model(model_name), _dictionary(root, name), site,
                                   _prompt_pass(model_name, prompt), k, include_bos)


def live_latents(model_name: str, name: str, site: str, prompt: str, k: int = 3, include_bos: bool = False):
    """`app.live.active_latents` for store dictionary `name` (reading `site`), cached."""
    return _live_latents(model_key(model_name), str(store_root()), name, site, prompt, k, include_bos)


@st.cache_resource(show_spinner=False, max_entries=4)
def _tuned_lens(root: str, key: str, run_id: str):
    return lens_store.load_tuned_lens(_store(root), _model(key))


@st.cache_resource(show_spinner=False, max_entries=16)
def _lens_grid(key: str, prompt: str, root: str, tuned_run: str | None):
    from app import live as live_fns

    tuned = _tuned_lens(root, key, tuned_run) if tuned_run else None
    return live_fns.lens(_model(key), _prompt_pass(key, prompt), tuned)


def lens_grid(model_name: str, prompt: str, tuned: bool = False):
    """`app.live.lens` of `prompt` on the shared forward pass: the logit lens, or the model's stored
    tuned lens (cached by the run that stored it, so a retrained lens is picked up)."""
    key = model_key(model_name)
    run = tuned_lens_run(key) if tuned else None
    if tuned and run is None:
        raise FileNotFoundError(lens_store.missing_lens_message(store(), _store_name(key)))
    return _lens_grid(key, prompt, str(store_root()), run)


def tuned_lens_run(model_name: str) -> str | None:
    """The run id of the tuned lens stored for `model_name`, or None when it has none."""
    record = query("tuned_lens", _store_name(model_name))
    return None if record is None else str(record["run_id"])


def _store_name(model_name: str) -> str:
    from interp.models.registry import store_model_name

    return store_model_name(model_name)


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


_STEER_LOCK = threading.Lock()


def steer(model_name: str, prompt: str, specs: list, generate, config):
    """`run_steering` on the cached model with this store's features (uncached: computed on submit).

    One run at a time: the steering hooks live on the shared model while it generates."""
    from interp.methods.steering import run_steering

    adapter = _model(model_key(model_name))
    with _STEER_LOCK:
        return run_steering(adapter, prompt, specs, generate, config, store())


def save_steering_run(run) -> str:
    """Store `run` (a ``steering_run`` results row); returns its key and clears the cached reads."""
    key = steering_store.save_run(store(), run)
    _cached.clear()
    return key


def feature_model(key: str) -> str | None:
    """The model a feature key belongs to: its stored row's, else the part before ``//`` of a
    neuron key (neurons need no row); None when neither says."""
    try:
        return read.parse_key(store(), key).model
    except (ValueError, StoreError):
        head, sep, _ = str(key).partition("//")
        return head if sep and head else None
def write(fn: Callable, /, *args, **kwargs):
    """`fn(store, *args, **kwargs)` for a library write (`save_edit`, `add_to_list`, ...);
    clears the cached reads so the next rerun shows it."""
    result = fn(store(), *args, **kwargs)
    _cached.clear()
    return result


# ----------------------------------------------------------------------------- links
def feature_link(key: str) -> str:
    """Relative URL of the feature page for a feature key."""
    return "feature?feature=" + urllib.parse.quote(key, safe="")


def steering_link(feature: str | None = None, strength: float | None = None, run: str | None = None) -> str:
    """Relative URL of the Steering page: on a feature (and strength), or reopening a saved run."""
    params = {"run": run} if run else {"feature": feature, **({"strength": f"{strength:g}"} if strength is not None
                                                              else {})}
    return "steering?" + urllib.parse.urlencode({k: v for k, v in params.items() if v})
def list_link(name: str) -> str:
    """Relative URL of the Lists page opened on list `name`."""
    return "lists?list=" + urllib.parse.quote(name, safe="")


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
