"""circuits family: transcoder circuits of one prompt (Dunefsky et al. 2024).

Entry points:

- `trace` (`.trace`) - one forward pass with frozen patterns and norm scales; `Trace`, `Transcoder`.
- `attribute` (`.attribution`) - exact direct contributions to a `LatentTarget` / `LogitTarget`;
  `Attribution`.
- `build_graph`, `prune` (`.graph`) - greedy path search into a `CircuitGraph` (`GraphConfig`).
- `attribution_graph` (`.attribution_graph`) - circuit-tracer's attribution graph of the next-token
  logits (every active latent, error and embedding node; `AttributionConfig`, `AttributionGraph`).
- `TransposedPasses` (`.backward`) - the graph's rows: transposed passes of the frozen model.
- `prune_graph`, `graph_scores` (`.influence`) - pruning by normalised influence; replacement and
  completeness scores.
- `to_circuit_tracer`, `from_circuit_tracer`, `to_interp`, `from_interp` (`.graph_files`) - graph files
  circuit-tracer's frontend and Neuronpedia open, and interp's own.
- `node_table`, `node_edges`, `graph_params`, `check_params` (`.graph_view`) - a pruned graph file as
  tables; a reader's pins, supernodes and annotations (its qParams).
- `export_transcoder_set`, `import_transcoder_set`, `read_set_config`, `check_fits` (`.transcoder_set`) -
  circuit-tracer's transcoder-set layout, and whether a set fits a model.
- `ablation_check` (`.validation`) - predicted vs measured effects; `AblationCheck`.
- `connections`, `top_connections`, `norm_scale` (`.connections`) - input-invariant weights;
  `ConnectionTable`.
- `load_transcoders`, `transcoders_of`, `random_transcoders` (`.transcoders`).
- `parse_target`, `TARGET_FORMS` (`.targets`) - targets from their text form.
- `save_graph`, `load_graph`, `save_attribution_graph`, `load_attribution_graph`, `update_graph_params`,
  `save_connections`, `load_connections`, `save_transcoders` (`.store`; the last stores a transcoder set as
  dictionaries).
"""

from interp.methods.circuits.attribution import Attribution, LatentTarget, LogitTarget, Target, attribute
from interp.methods.circuits.attribution_graph import AttributionConfig, AttributionGraph, attribution_graph
from interp.methods.circuits.connections import ConnectionTable, connections, norm_scale, top_connections
from interp.methods.circuits.graph import CircuitGraph, GraphConfig, build_graph, prune
from interp.methods.circuits.graph_files import from_circuit_tracer, from_interp, to_circuit_tracer, to_interp
from interp.methods.circuits.influence import graph_scores, prune_graph
from interp.methods.circuits.store import (load_attribution_graph, load_connections, load_graph,
                                           save_attribution_graph, save_connections, save_graph, save_transcoders)
from interp.methods.circuits.targets import TARGET_FORMS, parse_target
from interp.methods.circuits.trace import Trace, Transcoder, trace
from interp.methods.circuits.transcoder_set import (check_fits, export_transcoder_set, import_transcoder_set,
                                                    read_set_config)
from interp.methods.circuits.transcoders import load_transcoders, random_transcoders, transcoders_of
from interp.methods.circuits.validation import AblationCheck, ablation_check

__all__ = [
    "AttributionConfig", "AttributionGraph", "attribution_graph", "from_circuit_tracer", "from_interp",
    "to_circuit_tracer", "to_interp", "graph_scores", "prune_graph", "load_attribution_graph",
    "save_attribution_graph", "export_transcoder_set", "import_transcoder_set", "read_set_config", "check_fits",
    "save_transcoders",
    "AblationCheck", "Attribution", "CircuitGraph", "ConnectionTable", "GraphConfig", "LatentTarget", "LogitTarget",
    "TARGET_FORMS", "Target", "Trace", "Transcoder", "ablation_check", "attribute", "build_graph", "connections",
    "load_connections", "load_graph", "load_transcoders", "norm_scale", "parse_target", "prune", "random_transcoders",
    "save_connections", "save_graph", "top_connections", "trace", "transcoders_of",
]
