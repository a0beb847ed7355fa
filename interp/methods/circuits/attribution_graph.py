"""Attribution graphs of a prompt through per-layer transcoders (circuit-tracer's algorithm).

Ameisen et al. (2025), "Circuit Tracing: Revealing Computational Graphs in Language Models"
(transformer-circuits.pub/2025/attribution-graphs/methods.html), as circuit-tracer builds them
(``circuit_tracer/attribution/attribute.py``), from interp's own per-layer transcoders. Row-vector
convention of `interp.models.weights`; one prompt at a time.

Algorithm:

1. Trace the prompt once (`interp.methods.circuits.trace`): attention patterns and norm scales
   frozen, each transcoder reading its layer's ``ln2`` output. The frozen model is linear in
   the residual stream; each MLP is replaced by its transcoder's active latents (each a node
   writing ``a_i W_dec[i]``), its error ``mlp_out - y_hat`` (one node per layer and position;
   the whole ``mlp_out`` where a layer has no transcoder) and its ``b_dec`` (a constant). As in
   circuit-tracer, position 0 has no latent or error nodes (`skip_first_position`): its whole
   MLP output is a constant (circuit-tracer's ``zero_positions``; the first token's latents are
   dense and say nothing about the prompt).
2. Nodes, in circuit-tracer's order: every active latent sorted by (layer, position, index),
   the error nodes [layer][position], one embedding node per position, and the logit nodes:
   the top next tokens up to `max_n_logits` or until their probability reaches
   `desired_logit_prob` (or the tokens asked for). A logit node reads the demeaned logit
   ``logit_t - mean_v logit_v``: its unembedding column minus the vocabulary's mean column.
3. Every node with inputs is a read ``u . r[p] + b`` of the residual stream (latent i of
   layer L: ``u = c2[p] P W_enc[:, i]``, ``b = b_enc[i]``, value = its pre-activation; logit t:
   ``u = c_f[p] P (gamma_f * (W_U[:, t] - mean W_U))``). Its row of the adjacency matrix (the
   direct effects ``A[t, s]`` of all sources) is one backward pass of ``u`` through the frozen
   model: down the residual stream, through each attention layer's OV circuits with frozen
   patterns (``g[s] += c1[s] P sum_h sum_p A_h[p, s] W_V^h W_O^h g[p]``) and through the skip
   term, never through an MLP. At each MLP the gradient ``g`` meets its writers: latent
   ``a_i W_dec[i] . g[s]``, error ``e[l, s] . g[s]``; at the bottom the embeddings. The
   constant writers (biases, positional embeddings) go to the row's ``bias``, so a node's
   value equals the sum of its incoming edges plus its bias exactly (to float rounding).
4. Rows are computed in batches (`batch_size` reads per backward pass): the logit rows first,
   then latent rows in order of their running influence on the logits through the rows
   computed so far (circuit-tracer's phase 4, re-ranked every `update_interval` batches) until
   `max_feature_nodes` latents are visited. Unvisited latents leave the graph (their columns
   are dropped). Adjacency rows are targets, columns sources.
5. Score the graph (`interp.methods.circuits.influence`): replacement and completeness
   scores; pruning by normalised influence is applied on export and display, with the
   thresholds stored with the graph.

Step 3's transposed passes are `interp.methods.circuits.backward`'s.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import torch

from interp.methods.circuits.backward import TransposedPasses, active_features, feature_reads
from interp.methods.circuits.influence import GraphScores, graph_scores, partial_influences
from interp.methods.circuits.trace import DTYPES, Trace, Transcoder, trace

__all__ = ["AttributionConfig", "AttributionGraph", "CostEstimate", "LogitNodes", "attribution_graph",
           "estimate_cost", "logit_nodes", "active_features"]


@dataclass
class AttributionConfig:
    """Settings of `attribution_graph` (circuit-tracer's names and defaults)."""

    max_n_logits: int = 10
    """Most logit nodes when the logits are picked by probability."""
    desired_logit_prob: float = 0.95
    """Pick top tokens until their cumulative probability reaches this."""
    max_feature_nodes: int | None = None
    """Most latent nodes (visited in order of influence); None: every active latent."""
    batch_size: int = 256
    """Reads per backward pass."""
    update_interval: int = 4
    """Batches between re-rankings of the unvisited latents."""
    node_threshold: float = 0.8
    """Pruning: keep nodes covering this share of influence."""
    edge_threshold: float = 0.98
    """Pruning: keep edges covering this share of edge influence."""
    dtype: str = "float32"
    """float32 or float64 for the trace and the backward passes."""
    max_memory_gb: float | None = None
    """Refuse a graph whose estimated peak memory exceeds this (GiB); None: no limit."""
    skip_first_position: bool = True
    """No latent or error nodes at position 0 (its MLP output a constant), as circuit-tracer does:
    the first token's latents are dense and say nothing about the prompt."""

    def __post_init__(self):
        if not isinstance(self.max_n_logits, int) or self.max_n_logits < 1:
            raise ValueError(f"max_n_logits {self.max_n_logits!r} must be a positive integer")
        if not 0.0 < self.desired_logit_prob <= 1.0:
            raise ValueError(f"desired_logit_prob {self.desired_logit_prob!r} is out of range: valid (0, 1]")
        if self.max_feature_nodes is not None and (not isinstance(self.max_feature_nodes, int)
                                                   or self.max_feature_nodes < 0):
            raise ValueError(f"max_feature_nodes {self.max_feature_nodes!r} must be a non-negative integer or None")
        for name in ("batch_size", "update_interval"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)!r} must be a positive integer")
        for name in ("node_threshold", "edge_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} {getattr(self, name)!r} is out of range: valid 0.0..1.0")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not valid; choose one of {list(DTYPES)}")
        if self.max_memory_gb is not None and not self.max_memory_gb > 0:
            raise ValueError(f"max_memory_gb {self.max_memory_gb!r} must be positive")


@dataclass
class LogitNodes:
    """The logit nodes of a graph: what each explains and its weight."""

    tokens: list[int]
    """Vocabulary ids; ``d_vocab + i`` for a custom direction (a logit difference)."""
    strings: list[str]
    probabilities: torch.Tensor
    """(n_logits,) the weights of the influence computation (softmax probabilities)."""
    vectors: torch.Tensor
    """(n_logits, d_model) residual-space read vectors at the last position (frozen final norm)."""
    bias: torch.Tensor
    """(n_logits,) the reads' own constants."""
    values: torch.Tensor
    """(n_logits,) what each node explains: demeaned logit (or the logit difference)."""


@dataclass
class AttributionGraph:
    """An unpruned attribution graph (see the module docstring); circuit-tracer's layout.

    Node order: ``selected`` latents (rows of `active_features` picked by `selected_features`),
    ``n_layers * n_pos`` error nodes [layer][pos], ``n_pos`` embedding nodes, the logit nodes.
    """

    prompt: str
    tokens: torch.Tensor
    """(pos,) token ids."""
    str_tokens: list[str]
    n_layers: int
    d_vocab: int
    active_features: torch.Tensor
    """(n_active, 3) long: layer, position, latent index of every active latent."""
    activation_values: torch.Tensor
    """(n_active,) their activations."""
    selected_features: torch.Tensor
    """(n_selected,) long: indices into `active_features` of the latent nodes, in node order."""
    adjacency: torch.Tensor
    """(n_nodes, n_nodes) direct effects [target, source]."""
    logit_tokens: list[int]
    logit_strings: list[str]
    logit_probabilities: torch.Tensor
    """(n_logits,)."""
    node_bias: torch.Tensor
    """(n_nodes,) the constant part of each node's input (zero for nodes without inputs)."""
    node_value: torch.Tensor
    """(n_nodes,) what each node's input adds up to (latent pre-activation, demeaned logit);
    NaN for nodes without inputs (errors, embeddings)."""
    meta: dict = field(default_factory=dict)
    """model, dictionaries (layer -> name), config, scores, timings, key."""
    kept_nodes: torch.Tensor | None = None
    """(n_nodes,) bool: the nodes of an already pruned graph (one read from a graph file);
    None for a graph pruned on export by the thresholds in ``meta['config']``."""
    kept_edges: torch.Tensor | None = None
    """(2, n_edges) long [source, target] of an already pruned graph, in file order."""
    node_influence: torch.Tensor | None = None
    """(n_nodes,) cumulative influence of an already pruned graph (NaN where a file had none)."""
    labels: dict = field(default_factory=dict)
    """node_id -> label (circuit-tracer's ``clerp``)."""
    qparams: dict = field(default_factory=dict)
    """The frontend's query state: pinnedIds, supernodes, linkType, clickedId, sg_pos."""

    @property
    def n_pos(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.selected_features.shape[0])

    @property
    def n_errors(self) -> int:
        return self.n_layers * self.n_pos

    @property
    def n_logits(self) -> int:
        return len(self.logit_tokens)

    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    def scores(self) -> GraphScores:
        """Replacement and completeness scores (`interp.methods.circuits.influence`)."""
        return graph_scores(self.adjacency, self.logit_probabilities, self.n_features, self.n_errors, self.n_pos)

    def node_kind(self, i: int) -> tuple[str, int, int, int]:
        """(kind, layer, position, index) of node `i`; kind in feature, error, embedding, logit."""
        nf, ne = self.n_features, self.n_errors
        if i < nf:
            layer, pos, idx = self.active_features[self.selected_features[i]].tolist()
            return "feature", layer, pos, idx
        if i < nf + ne:
            layer, pos = divmod(i - nf, self.n_pos)
            return "error", layer, pos, -1
        if i < nf + ne + self.n_pos:
            pos = i - nf - ne
            return "embedding", -1, pos, int(self.tokens[pos])
        j = i - nf - ne - self.n_pos
        return "logit", self.n_layers, self.n_pos - 1, self.logit_tokens[j]


def _selected_token_ids(logits: torch.Tensor, config: AttributionConfig) -> torch.Tensor:
    probs = torch.softmax(logits.double(), -1)
    top_p, top_idx = torch.topk(probs, min(config.max_n_logits, probs.shape[0]))
    cutoff = int(torch.searchsorted(torch.cumsum(top_p, 0), config.desired_logit_prob)) + 1
    return top_idx[:cutoff]


def logit_nodes(adapter, tr: Trace, config: AttributionConfig, targets: Sequence | None = None) -> LogitNodes:
    """Step 2's logit nodes at the last position: salient tokens, or `targets`.

    `targets`: `LogitTarget`s at the last position; a single token becomes a demeaned logit
    node with its probability as weight, a logit difference a custom direction of weight 1.
    """
    from interp.methods.circuits.attribution import LogitTarget

    dt = tr.embed.dtype
    p = tr.n_pos() - 1
    W_U, b_U = adapter.weights.W_U.to(dt), adapter.weights.b_U.to(dt)
    fn = adapter.weights.final_norm
    logits = tr.logits[p]
    probs = torch.softmax(logits.double(), -1).to(dt)
    d_vocab = W_U.shape[1]
    if targets is None:
        specs = [(int(t), None) for t in _selected_token_ids(logits, config)]
    else:
        specs = []
        for t in targets:
            if not isinstance(t, LogitTarget):
                raise ValueError(f"an attribution graph explains logits at the last position; {t!r} is not a logit "
                                 "target (trace a latent with `interp circuit build`)")
            if t.position not in (-1, p):
                raise ValueError(f"an attribution graph explains the next token after the last position ({p}); "
                                 f"the target asks for position {t.position}")
            for tok in [t.token] + ([t.other] if t.other is not None else []):
                if not isinstance(tok, int) or not 0 <= tok < d_vocab:
                    raise ValueError(f"token id {tok!r} is out of range: valid 0..{d_vocab - 1}")
            specs.append((t.token, t.other))
    cols, bias, values, weights, ids, names = [], [], [], [], [], []
    W_mean, b_mean = W_U.mean(1), b_U.mean()
    for i, (tok, other) in enumerate(specs):
        if other is None:
            cols.append(W_U[:, tok] - W_mean)
            bias.append(b_U[tok] - b_mean)
            values.append(logits[tok] - logits.mean())
            weights.append(probs[tok])
            ids.append(tok)
            names.append(adapter.decode([tok]))
        else:
            cols.append(W_U[:, tok] - W_U[:, other])
            bias.append(b_U[tok] - b_U[other])
            values.append(logits[tok] - logits[other])
            weights.append(torch.tensor(1.0, dtype=dt))
            ids.append(d_vocab + i)
            names.append(f"logit({adapter.decode([tok])!r})-logit({adapter.decode([other])!r})")
    col = torch.stack(cols)  # (n_logits, d_model)
    b = torch.stack(bias)
    if fn.bias is not None:
        b = b + col @ fn.bias.to(dt)
    u = tr.final_scale[p] * tr.project(fn.gain.to(dt) * col)
    return LogitNodes(ids, names, torch.stack(weights), u, b, torch.stack(values))


@dataclass(frozen=True)
class CostEstimate:
    """Predicted cost of a graph, printed before it runs."""

    n_active: int
    n_feature_rows: int
    n_nodes: int
    memory_gb: float
    """Peak memory of the edge rows, the final adjacency and one backward batch (GiB)."""
    seconds: float
    """Backward passes at the measured matmul rate of this machine."""

    def describe(self) -> str:
        mem = f"{self.memory_gb:.2f} GiB" if self.memory_gb >= 0.1 else f"{self.memory_gb * 1024:.1f} MiB"
        return (f"{self.n_active} active latents, {self.n_feature_rows} latent rows, {self.n_nodes} nodes: "
                f"about {self.seconds:.1f} s and {mem}")


def _matmul_rate(dtype) -> float:
    """Multiply-adds per second of a mid-sized matmul here (best of three; a 20-100 ms probe)."""
    a = torch.randn(512, 512, dtype=dtype)
    a @ a
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 512 ** 3 / max(best, 1e-6)


def estimate_cost(tr: Trace, feats: torch.Tensor, n_logits: int, config: AttributionConfig) -> CostEstimate:
    """Steps 3-4 cost from the prompt length and the active latents (before any row is computed).

    Memory: the edge rows (visited rows x every node) and the final adjacency, plus one batch's
    gradient and head-space buffers. Time: multiply-adds of the backward passes (a read of layer
    l passes l + 1 layers; W_O and W_V matmuls, patterns in head space, latent and error dot
    products) at the matmul rate measured here.
    """
    P, L = tr.n_pos(), tr.n_layers
    d = tr.embed.shape[1]
    lt = tr.layers[0]
    h, dk = lt.W_O.shape[0], lt.W_O.shape[1]
    n_active = len(feats)
    n_rows = min(config.max_feature_nodes if config.max_feature_nodes is not None else n_active, n_active)
    n_cols = n_active + (L + 1) * P + n_logits
    n_nodes = n_rows + (L + 1) * P + n_logits
    item = torch.finfo(DTYPES[config.dtype]).bits // 8
    B = min(config.batch_size, max(n_rows, n_logits))
    batch = B * (4 * P * d + 3 * P * h * dk + n_cols) * item
    mem = ((n_rows + n_logits) * n_cols + n_nodes * n_nodes) * item + batch
    k = max((int((t.active_val != 0).sum(-1).max()) for t in tr.layers if t.active_val is not None), default=0)
    per_layer = 2 * P * d * h * dk + h * P * P * dk + P * d * (k + 2)
    depth = float(feats[:, 0].double().mean()) + 1 if n_active else 0.0
    seconds = (n_logits * L + n_rows * depth) * per_layer / _matmul_rate(DTYPES[config.dtype])
    return CostEstimate(n_active, n_rows, n_nodes, mem / 2 ** 30, seconds)


def _visit(bw: TransposedPasses, tr: Trace, feats, logit: LogitNodes, config: AttributionConfig):
    """Step 4: logit rows, then latent rows by running influence. Returns (rows, row_nodes, biases)."""
    n_active, n_logits, B = len(feats), len(logit.tokens), config.batch_size
    n_rows = min(config.max_feature_nodes if config.max_feature_nodes is not None else n_active, n_active)
    rows = torch.zeros(n_rows + n_logits, bw.n_cols, dtype=logit.vectors.dtype)
    row_nodes = torch.zeros(n_rows + n_logits, dtype=torch.long)
    biases = torch.zeros(n_rows + n_logits, dtype=logit.vectors.dtype)
    logit0 = bw.n_cols - n_logits
    P, L = tr.n_pos(), tr.n_layers
    for i in range(0, n_logits, B):
        j = min(i + B, n_logits)
        r, c = bw.rows(torch.full((j - i,), L), torch.full((j - i,), P - 1), logit.vectors[i:j])
        rows[i:j], biases[i:j] = r, c + logit.bias[i:j]
        row_nodes[i:j] = torch.arange(logit0 + i, logit0 + j)
    enc, b_enc, _ = feature_reads(tr, feats)
    visited = torch.zeros(n_active, dtype=torch.bool)
    st = n_logits
    while st < n_logits + n_rows:
        if n_rows == n_active:
            pending = torch.arange(n_active)
        else:
            influence = partial_influences(rows[:st], logit.probabilities, row_nodes[:st])[:n_active]
            rank = torch.argsort(influence, descending=True)
            pending = rank[~visited[rank]][:min(config.update_interval * B, n_logits + n_rows - st)]
        for k in range(0, len(pending), B):
            idx = pending[k:k + B]
            r, c = bw.rows(feats[idx, 0], feats[idx, 1], enc[idx])
            rows[st:st + len(idx)], biases[st:st + len(idx)] = r, c + b_enc[idx]
            row_nodes[st:st + len(idx)] = idx
            visited[idx] = True
            st += len(idx)
    return rows, row_nodes, biases, visited


def attribution_graph(adapter, transcoders: Mapping[int, Transcoder], prompt, config: AttributionConfig | None = None,
                      targets: Sequence | None = None, meta: Mapping | None = None, tr: Trace | None = None,
                      on_estimate=None) -> AttributionGraph:
    """The unpruned attribution graph of `prompt` (steps 1-5 of the module docstring).

    `targets`: `LogitTarget`s at the last position (default: the salient next tokens).
    `on_estimate(CostEstimate)` is called before any row is computed (the CLI prints it);
    a graph estimated above ``config.max_memory_gb`` is refused with a ValueError.
    """
    config = config or AttributionConfig()
    start = time.perf_counter()
    tr = tr if tr is not None else trace(adapter, transcoders, prompt, config.dtype)
    feats, vals = active_features(tr, config.skip_first_position)
    logit = logit_nodes(adapter, tr, config, targets)
    cost = estimate_cost(tr, feats, len(logit.tokens), config)
    if on_estimate is not None:
        on_estimate(cost)
    if config.max_memory_gb is not None and cost.memory_gb > config.max_memory_gb:
        raise ValueError(f"the graph needs more memory than --max-memory {config.max_memory_gb:g} GiB "
                         f"({cost.describe()}); lower --max-feature-nodes or shorten the prompt")
    bw = TransposedPasses(tr, feats, len(logit.tokens), config.skip_first_position)
    rows, row_nodes, biases, visited = _visit(bw, tr, feats, logit, config)
    selected = torch.nonzero(visited).flatten()
    n_logits, n_sel = len(logit.tokens), len(selected)
    keep_cols = torch.cat([selected, torch.arange(bw.err0, bw.n_cols)])
    order = torch.argsort(row_nodes)  # selected latents in node order, then the logits
    rows, biases = rows[order][:, keep_cols], biases[order]
    n = len(keep_cols)
    adjacency = torch.zeros(n, n, dtype=rows.dtype)
    adjacency[:n_sel], adjacency[-n_logits:] = rows[:n_sel], rows[n_sel:]
    node_bias = torch.zeros(n, dtype=rows.dtype)
    node_bias[:n_sel], node_bias[-n_logits:] = biases[:n_sel], biases[n_sel:]
    node_value = torch.full((n,), float("nan"), dtype=rows.dtype)
    node_value[:n_sel] = feature_reads(tr, feats[selected])[2]
    node_value[-n_logits:] = logit.values
    graph = AttributionGraph(
        prompt=prompt if isinstance(prompt, str) else adapter.decode(tr.tokens), tokens=tr.tokens,
        str_tokens=tr.str_tokens, n_layers=tr.n_layers, d_vocab=int(tr.logits.shape[-1]), active_features=feats,
        activation_values=vals, selected_features=selected, adjacency=adjacency, logit_tokens=logit.tokens,
        logit_strings=logit.strings, logit_probabilities=logit.probabilities, node_bias=node_bias,
        node_value=node_value, meta=dict(meta or {}))
    scores = graph.scores()
    graph.meta.update(config=asdict(config), estimate=asdict(cost), seconds=time.perf_counter() - start,
                      scores={"replacement": scores.replacement, "completeness": scores.completeness})
    return graph
