"""Map every MLP neuron of whole models through the LM head, into the store (resumable).

    from interp.store import Store
    from interp.jobs.neuron_map import map_model
    map_model(Store(), "smollm2-135m", directions=("down",))          # all layers

Three modules, with no import circle: this one plans (which layers still need which
decodings) and defines the job (`NeuronMapJob`, one unit per model and layer, on the job
interface of `interp.jobs.units`); `interp.jobs.neuron_map_unit` holds the unit of work
(decode a group of layers with `interp.methods.neurons.decoding.decode_directions`, write
them); the local backend's overlapped runner (`interp.jobs.backends.local.run_local`) imports
only the unit. The rows written (tokens, feature rows, completion markers) are described in
`interp.methods.neurons.store`, the only code that writes or reads them; every row names the
model by `ModelAdapter.store_name`.

A layer counts as done when its markers exist (with the same top_k); a rerun skips done
layers and redoes the rest. Since the store's replace semantics let a redone layer's rows
supersede a killed attempt's, a job killed at any point (even ``kill -9``) and rerun leaves
the same content as an uninterrupted run. The job is one run in the store (`Store.run`):
done, or failed with its error, or cancelled.

Memory: the model, plus the working set of `decode_directions` (per thread one
``(min(chunk_size, rows), vocab_block)`` fp32 block of logits, 18 MiB at the defaults, see
`DecodeConfig.vocab_block`), plus the direction matrices of a group of layers decoded
together and their normalised copies (``2 * 4 * group * d_mlp * d_model`` bytes), and the
top/bottom-k results and store rows of at most two groups (the one being written while the
next is decoded; ``O(d_mlp * top_k)`` per layer, a few MiB); never a layer's
``(d_mlp, d_vocab)`` logits (288 MiB for SmolLM2). The bound does not grow with the number
of layers or models; `benchmarks/bench_neuron_map.py` measures it.

The job runs on the job interface (`interp.jobs.units`, one unit per model and layer): the
``local`` backend (this process: groups of layers, each decoded while the previous one is
written, `interp.jobs.backends.local`) or ``ray`` (a Ray
task per layer; workers load the model by name themselves and write straight into the store;
only small summaries come back). `device`: where the decoding GEMMs run (``auto``: a GPU when
there is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

from interp.jobs.neuron_map_unit import map_group, vocab_strings
from interp.jobs.units import BACKENDS, Job, Unit, check_backend, resolve_device, run_job, worker_model  # noqa: F401
from interp.methods.neurons.decoding import DIRECTIONS, VARIANTS, DecodeConfig
from interp.methods.neurons.store import completed_units


@dataclass(frozen=True)
class MapConfig:
    """What a neuron-mapping job computes."""

    directions: tuple[str, ...] = ("down",)
    """Neuron directions to decode: any of up, gate (gated MLPs only), down."""
    variants: tuple[str, ...] = ("folded",)
    """Decodings: folded (final norm with gain; the default) and/or raw."""
    top_k: int = 20
    """Tokens kept at each end per neuron."""
    chunk_size: int = 1536
    """Neurons per GEMM chunk (with `DecodeConfig.vocab_block`, bounds the working set)."""
    layers: tuple[int, ...] | None = None
    """Layers to map (None: all)."""
    reduction: str = "auto"
    """Block reduction of the decoding: auto, kernel or torch (`DecodeConfig.backend`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "directions", tuple(self.directions))
        object.__setattr__(self, "variants", tuple(self.variants))
        for d in self.directions:
            if d not in DIRECTIONS:
                raise ValueError(f"unknown neuron direction {d!r}; valid: {', '.join(DIRECTIONS)}")
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"unknown decoding variant {v!r}; valid: {', '.join(VARIANTS)}")
        if not self.directions or not self.variants:
            raise ValueError("directions and variants must each name at least one value")
        DecodeConfig(top_k=self.top_k, chunk_size=self.chunk_size, backend=self.reduction)  # validates all three
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))

    def units(self) -> list[tuple[str, str]]:
        return [(d, v) for d in self.directions for v in self.variants]

    def decode_config(self) -> DecodeConfig:
        """What the unit of work decodes with (its variant is set per unit)."""
        return DecodeConfig(top_k=self.top_k, chunk_size=self.chunk_size, backend=self.reduction)


@dataclass
class MapSummary:
    """What a job did."""

    run_id: str
    mapped: dict[str, list[int]] = field(default_factory=dict)
    """Model -> layers computed by this job."""
    skipped: dict[str, list[int]] = field(default_factory=dict)
    """Model -> layers already complete in the store."""
    seconds: float = 0.0


def parse_layers(text: str | None, n_layers: int | None = None) -> tuple[int, ...] | None:
    """``"0,5-7"`` -> (0, 5, 6, 7); None or "all" -> None. Checked against `n_layers` if given."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    layers: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise ValueError(f"bad layer list {text!r}: use comma-separated layers and ranges like 0,5-7") from None
    if n_layers is not None:
        bad = [layer for layer in layers if not 0 <= layer < n_layers]
        if bad:
            raise ValueError(f"layers {bad} are out of range: valid layers are 0..{n_layers - 1}")
    return tuple(sorted(set(layers)))


def pending_layers(store, model: str, layers: Sequence[int], config: MapConfig
                   ) -> dict[int, list[tuple[str, str]]]:
    """Layer -> the (direction, variant) units still to do (markers missing or other top_k)."""
    done = completed_units(store, model, layers, config.units(), config.top_k)
    todo: dict[int, list[tuple[str, str]]] = {}
    for layer in layers:
        for d, v in config.units():
            if (layer, d, v) not in done:
                todo.setdefault(layer, []).append((d, v))
    return todo


def map_model(store, model, layers: Sequence[int] | None = None, directions: Sequence[str] = ("down",),
              variants: Sequence[str] = ("folded",), top_k: int = 20, chunk_size: int = 1536,
              backend: str = "local", ray_address: str | None = None, progress: bool = True,
              force: bool = False, device: str = "auto") -> MapSummary:
    """Map one model's neurons into `store` (a `Store`); see the module docstring.

    `model`: a name (alias, hub id or local folder) or an already loaded `ModelAdapter`
    (local backend only: Ray workers load models by name).
    """
    config = MapConfig(directions=tuple(directions), variants=tuple(variants), top_k=top_k,
                       chunk_size=chunk_size, layers=None if layers is None else tuple(layers))
    return map_models(store, [model], config, backend=backend, ray_address=ray_address,
                      progress=progress, force=force, device=device)


def map_models(store, models: Sequence, config: MapConfig = MapConfig(), *, backend: str = "local",
               ray_address: str | None = None, progress: bool = True, force: bool = False,
               device: str = "auto") -> MapSummary:
    """Map several models in one job (one run in the store); resumable (see the module docstring)."""
    check_backend(backend, ray_address)
    if not models:
        raise ValueError("map_models needs at least one model name")
    if backend == "ray" and not all(isinstance(m, str) for m in models):
        raise ValueError("the ray backend needs model names (workers load the models themselves), not adapters")
    job = NeuronMapJob(models, config, backend, device)
    outcome = run_job(store, job, backend=backend, address=ray_address, progress=progress, force=force)
    summary = MapSummary(outcome.run_id, skipped=job.skipped, seconds=outcome.seconds)
    summary.mapped = {model: [] for model in job.skipped}
    for result in outcome.done.values():
        summary.mapped[result["model"]].append(result["layer"])
    summary.mapped = {model: sorted(layers) for model, layers in summary.mapped.items()}
    return summary


class NeuronMapJob(Job):
    """The neuron map on the job interface (`interp.jobs.units`): one unit per (model, layer)."""

    command = "interp map-neurons"

    def __init__(self, models: Sequence, config: MapConfig, backend: str = "local", device: str = "auto") -> None:
        self.names = [m if isinstance(m, str) else m.name for m in models]
        self._adapters = {i: m for i, m in enumerate(models) if not isinstance(m, str)}
        self.map_config, self.backend = config, backend
        self.device = resolve_device(device) if any(isinstance(m, str) for m in models) else "cpu"
        self.skipped: dict[str, list[int]] = {}

    def __getstate__(self) -> dict:
        if self._adapters:
            raise ValueError("the ray backend needs model names (workers load the models themselves), not adapters")
        return dict(self.__dict__)

    def config(self) -> dict:
        return {"models": self.names, "backend": self.backend,
                **{k: getattr(self.map_config, k) for k in self.map_config.__dataclass_fields__}}

    def adapter(self, i: int):
        return self._adapters[i] if i in self._adapters else worker_model(self.names[i], self.device)

    def plan(self, store, run_id: str, force: bool) -> tuple[list[Unit], list[str]]:
        units, skipped = [], []
        for i in range(len(self.names)):
            adapter = self.adapter(i)  # for the plan (layer count, gating) and the models row
            model = adapter.store_name
            todo = plan(store, adapter.info, model, self.map_config, force)
            layers = self.map_config.layers if self.map_config.layers is not None else range(adapter.info.n_layers)
            self.skipped[model] = [layer for layer in layers if layer not in todo]
            skipped += [f"{model}/L{layer}" for layer in self.skipped[model]]
            if todo:
                adapter.record(store, run_id)
            units += [Unit(f"{model}/L{layer}", (i, layer, tuple(todo[layer]))) for layer in sorted(todo)]
        return units, skipped

    def run(self, store, unit: Unit, run_id: str) -> dict:
        i, layer, todo = unit.spec
        adapter = self.adapter(i)
        return map_group(store, adapter, {layer: list(todo)}, self.map_config.decode_config(), run_id,
                         _vocab(self.names[i], self.device) if i not in self._adapters else None)[0]

    def run_local(self, store, units, run_id, on_done, on_error) -> None:
        """One model after another, groups of layers decoded while the previous group is written."""
        from interp.jobs.backends.local import run_local

        by_model: dict[int, dict[int, Unit]] = {}
        for unit in units:
            by_model.setdefault(unit.spec[0], {})[unit.spec[1]] = unit
        for i, layer_units in by_model.items():
            todo = {layer: list(unit.spec[2]) for layer, unit in layer_units.items()}
            written: set[int] = set()

            def done(result: dict, layer_units=layer_units, written=written) -> None:
                written.add(result["layer"])
                on_done(layer_units[result["layer"]], result)

            try:
                run_local(store, self.adapter(i), todo, self.map_config.decode_config(), run_id, on_layer=done)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - the model's unwritten layers are named at the end
                for layer, unit in layer_units.items():
                    if layer not in written:
                        on_error(unit, exc)


@lru_cache(maxsize=2)
def _vocab(name: str, device: str):
    return vocab_strings(worker_model(name, device))


def plan(store, adapter_info, model: str, config: MapConfig, force: bool) -> dict[int, list[tuple[str, str]]]:
    """Layer -> units to compute for one model (all requested ones with `force`)."""
    layers = config.layers if config.layers is not None else tuple(range(adapter_info.n_layers))
    bad = [layer for layer in layers if not 0 <= layer < adapter_info.n_layers]
    if bad:
        raise ValueError(f"layers {bad} are out of range for {model}: valid 0..{adapter_info.n_layers - 1}")
    if "gate" in config.directions and not adapter_info.gated_mlp:
        raise ValueError(f"direction 'gate' needs a gated MLP; {model} has none: use up and/or down")
    if force:
        return {layer: config.units() for layer in layers}
    return pending_layers(store, model, layers, config)


def pipeline_step(store, adapter, budget=None) -> str:
    """The ``make run`` step: every layer's down direction (folded, top/bottom 20) of `adapter`.

    `budget` is accepted for the pipeline's step signature; the map is cheap (GEMM-bound,
    ~1-2 min for SmolLM2 on 2 cores) so it is always complete.
    """
    summary = map_model(store, adapter, directions=("down",), variants=("folded",), top_k=20)
    model = adapter.store_name
    return (f"decoded {len(summary.mapped.get(model, []))} layers x {adapter.info.d_mlp} neurons (down, folded, "
            f"top/bottom 20; {len(summary.skipped.get(model, []))} layers already stored) in {summary.seconds:.0f} s")
