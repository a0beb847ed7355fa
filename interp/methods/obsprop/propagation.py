"""Observable propagation (ObsProp): feature vectors of a task with almost no data.

Dunefsky & Cohan (2023), "Observable Propagation: A Data-Efficient Approach to Uncover
Feature Vectors in Transformers". A task is an observable ``n`` (a vector over the
vocabulary, `interp.methods.obsprop.observables`); its value is ``n . logits``. A *feature vector*
``y`` of a component is the direction in the component's input space whose dot product
with the input gives the component's contribution to the observable.

Algorithm (row-vector convention of `interp.models.weights`):

1. Unembed: ``u = W_U n`` (d_model), the observable's gradient w.r.t. the final norm's output.
2. Through a norm (RMSNorm or LayerNorm) ``N(x) = gamma (.) P x / s(x) + beta``:
   the data-dependent scalar ``1/s(x)`` rescales but does not turn the direction, so the
   propagated direction is ``P (gamma (.) u)`` with ``P = I - 11^T/d`` for LayerNorm (its mean
   projection) and ``P = I`` for RMSNorm. For the final norm this gives ``v``, the
   observable's direction in the residual stream (`final_vector`). `obsprop_eval` measures
   the angle this costs against the exact gradient.
3. Attention head h of layer l, attention patterns held constant: the head writes
   ``sum_j A_ij N1(x_j) W_V,kv(h) W_O,h``, so its feature vector at its input (the
   ``ln1.hook_normalized`` site, before the gain) is ``y = gamma1 (.) W_V,kv(h) W_O,h v``
   (`head_vector`). Under grouped-query attention ``kv(h) = h // (n_heads / n_kv_heads)``.
   Exactly: ``head contribution . v = sum_j A_ij a_j . y + const`` (a_j = input at j).
4. MLP of layer l: only locally linear. Feature vector at its input (``ln2.hook_normalized``):
   - ``gradient`` (the default): ``y = mean_i J_i^T v``, the gradient of ``v . MLP(x)``
     averaged over the inputs ``x_i`` of a few reference prompts (this is the "almost no
     data"); exact for each reference input.
   - ``linear``: the nonlinearity replaced by the identity, ``y = gamma2 (.) W_in diag(1)
     W_out v``. For a gated MLP ``act(x W_gate) * (x W_in)`` the identity makes the block
     quadratic with zero slope at 0, so the gate is held at 1: ``y_up = W_in W_out v``;
     `mlp_linear_vectors` also returns ``y_gate = W_gate W_out v``.
5. Embeddings: the embedding is added to the residual directly, so ``y_embed = v``.
6. Paths (e.g. embed -> L3H5 -> M7 -> logits): compose the transposes from the logits
   back, turning each component's input vector into a residual-stream vector with its norm
   (step 2: ``P y``) before the next component upstream (`path_vector`).
7. Feature score of an input: ``x . y`` (`feature_scores`); coupling coefficient between
   feature vectors ``C(y1, y2) = y1 . y2 / ||y1||^2`` (`coupling`): the expected y2-score of
   an input whose y1-score is 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import torch

from interp.methods.obsprop.observables import Observable

MLP_METHODS = ("gradient", "linear")
POSITIONS = ("last", "all")
_HEAD_RE = re.compile(r"^L(\d+)\.?H(\d+)$", re.I)
_MLP_RE = re.compile(r"^(?:(?:M|mlp)(\d+)|L(\d+)\.?(?:M|mlp))$", re.I)


@dataclass(frozen=True)
class Component:
    """One component on a path: ``embed``, head ``L3H5`` or MLP ``M7``."""

    kind: str
    """'embed', 'head' or 'mlp'."""
    layer: int = -1
    head: int = -1

    @classmethod
    def parse(cls, spec: "str | Component") -> "Component":
        """From ``'embed'``, ``'L3H5'`` or ``'M7'`` / ``'mlp7'``."""
        if isinstance(spec, Component):
            return spec
        text = str(spec).strip()
        if text.lower() == "embed":
            return cls("embed")
        if m := _HEAD_RE.match(text):
            return cls("head", int(m.group(1)), int(m.group(2)))
        if m := _MLP_RE.match(text):
            return cls("mlp", int(m.group(1) or m.group(2)))
        raise ValueError(f"unknown component {spec!r}; valid forms: 'embed', 'L3H5' (layer 3 head 5), 'M7' (MLP 7)")

    def __str__(self) -> str:
        return {"embed": "embed", "head": f"L{self.layer}H{self.head}", "mlp": f"M{self.layer}"}[self.kind]

    @property
    def index(self) -> int:
        """The unit index at its input site (the head number; 0 for MLPs and embeddings)."""
        return self.head if self.kind == "head" else 0

    def input_site(self, adapter) -> str:
        """The hook name of the component's input (the normalised input for heads and MLPs)."""
        if self.kind == "embed":
            return adapter.embed_site
        sites = adapter.sites(self.layer)
        return sites.attn_in if self.kind == "head" else sites.mlp_in

    def check(self, adapter) -> "Component":
        if self.kind != "embed":
            adapter.check_layer(self.layer)
        if self.kind == "head" and not 0 <= self.head < adapter.info.n_heads:
            raise ValueError(f"head {self.head} of {self} is out of range: valid 0..{adapter.info.n_heads - 1}")
        return self


@dataclass(frozen=True)
class ObsPropConfig:
    """How MLPs are crossed and which reference positions count."""

    mlp_method: str = "gradient"
    """'gradient' (default; averaged over reference inputs) or 'linear' (nonlinearity as identity)."""
    positions: str = "last"
    """Reference positions for MLP gradients: 'last' real token of each prompt, or 'all'."""

    def __post_init__(self) -> None:
        if self.mlp_method not in MLP_METHODS:
            raise ValueError(f"mlp_method {self.mlp_method!r} is not valid; valid: {', '.join(MLP_METHODS)}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions {self.positions!r} is not valid; valid: {', '.join(POSITIONS)}")


@dataclass(frozen=True)
class FeatureVector:
    """The feature vector of one path at its first component's input site."""

    path: tuple[Component, ...]
    """Components from input to logits; a direct path has one."""
    site: str
    vector: torch.Tensor
    """(d_model,) at `site`."""

    @property
    def component(self) -> Component:
        return self.path[0]

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    @property
    def label(self) -> str:
        return ">".join(str(c) for c in self.path)


@dataclass(frozen=True)
class ObsPropResult:
    """Direct-path feature vectors of every component for one observable."""

    observable: Observable
    final: torch.Tensor
    """(d_model,) the observable's direction in the residual stream before the final norm."""
    vectors: tuple[FeatureVector, ...]
    config: ObsPropConfig = field(default_factory=ObsPropConfig)
    n_reference: int = 0
    """Number of reference positions the MLP gradients averaged over."""

    def vector(self, component: str | Component) -> FeatureVector:
        comp = Component.parse(component)
        for fv in self.vectors:
            if fv.path == (comp,):
                return fv
        raise KeyError(f"no feature vector for {comp}; components: {', '.join(f.label for f in self.vectors[:5])}, ...")

    def ranking(self, kinds: Sequence[str] = ("head", "mlp")):
        """A DataFrame of components sorted by feature norm (largest first)."""
        import pandas as pd

        rows = [{"component": fv.label, "kind": fv.component.kind, "layer": fv.component.layer,
                 "head": fv.component.head, "site": fv.site, "norm": fv.norm}
                for fv in self.vectors if fv.component.kind in kinds]
        return pd.DataFrame(rows).sort_values("norm", ascending=False, ignore_index=True)


# ----------------------------------------------------------------------------- primitives
def through_norm(norm, vector: torch.Tensor) -> torch.Tensor:
    """Residual-side direction of `vector` taken back through `norm` (step 2): ``P (gamma (.) v)``."""
    out = vector * norm.gain.to(vector.dtype)
    return _center(out) if norm.kind == "layer" else out


def _center(v: torch.Tensor) -> torch.Tensor:
    return v - v.mean(-1, keepdim=True)


def unembed_vector(adapter, observable: Observable) -> torch.Tensor:
    """``W_U n`` (d_model,): the observable's gradient at the final norm's output."""
    if observable.d_vocab != adapter.info.d_vocab:
        raise ValueError(f"observable {observable.name!r} has {observable.d_vocab} entries but {adapter.name} "
                         f"has a vocabulary of {adapter.info.d_vocab}")
    W_U = adapter.weights.W_U
    return W_U @ observable.vector.to(W_U.dtype).to(W_U.device)


def final_vector(adapter, observable: Observable) -> torch.Tensor:
    """(d_model,) the observable's direction in the residual stream before the final norm."""
    return through_norm(adapter.weights.final_norm, unembed_vector(adapter, observable))


def head_vector(adapter, layer: int, head: int, v: torch.Tensor) -> torch.Tensor:
    """(d_model,) ``gamma1 (.) W_V,kv(h) W_O,h v`` at the head's ``ln1.hook_normalized`` input."""
    attn = adapter.weights.layer(adapter.check_layer(layer), fold_norms=True).attn
    Component("head", layer, head).check(adapter)
    return attn.W_V[attn.kv_head(head)] @ (attn.W_O[head] @ v)


def mlp_linear_vectors(adapter, layer: int, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(up, gate) vectors ``W_in W_out v`` and ``W_gate W_out v`` at ``ln2.hook_normalized``."""
    mlp = adapter.weights.layer(adapter.check_layer(layer), fold_norms=True).mlp
    hidden = mlp.W_out @ v  # (d_mlp,)
    return mlp.W_in @ hidden, (mlp.W_gate @ hidden if mlp.gated else None)


def mlp_gradient_vector(adapter, layer: int, v: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean gradient of ``v . MLP(x)`` over `inputs` (n, d_model) at ``ln2.hook_normalized``."""
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise ValueError(f"MLP reference inputs must be (n >= 1, d_model), got shape {tuple(inputs.shape)}")
    mlp = adapter.weights.layer(adapter.check_layer(layer), fold_norms=True).mlp
    x = inputs.detach().to(v.dtype).clone().requires_grad_(True)
    with torch.enable_grad():
        (mlp(x) @ v).sum().backward()
    return x.grad.mean(0)


def feature_scores(acts: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``x . y`` for activations (..., d) and a feature vector (d,) -> (...)."""
    return acts @ vector.to(acts.dtype).to(acts.device)


def coupling(y1: torch.Tensor, y2: torch.Tensor) -> float:
    """``C(y1, y2) = y1 . y2 / ||y1||^2``: expected y2-score at y1-score 1."""
    denom = float(y1 @ y1)
    if denom == 0:
        raise ValueError("coupling is undefined for a zero feature vector y1")
    return float(y1 @ y2) / denom


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1)).item())


# ----------------------------------------------------------------------------- reference inputs
def reference_inputs(adapter, prompts, layers: Sequence[int], positions: str = "last") -> dict[int, torch.Tensor]:
    """MLP inputs (``ln2.hook_normalized``) of reference prompts: layer -> (n, d_model).

    `prompts`: strings or a `Tokenized`; `positions`: 'last' real token per prompt or 'all'.
    """
    from interp.models.adapter import Tokenized

    if positions not in POSITIONS:
        raise ValueError(f"positions {positions!r} is not valid; valid: {', '.join(POSITIONS)}")
    batch = prompts if isinstance(prompts, Tokenized) else adapter.tokenize(list(prompts))
    layers = sorted({adapter.check_layer(int(l)) for l in layers})
    if not layers:
        return {}
    sites = {l: adapter.sites(l).mlp_in for l in layers}
    cache = adapter.run(batch.tokens, names=list(sites.values()), stop_at_layer=max(layers) + 1).cache
    lengths = batch.lengths.to(batch.tokens.device)
    if positions == "last":
        rows = torch.arange(len(lengths), device=lengths.device)
        return {l: cache[s][rows, lengths - 1] for l, s in sites.items()}
    mask = torch.arange(batch.tokens.shape[1], device=lengths.device)[None] < lengths[:, None]
    return {l: cache[s][mask] for l, s in sites.items()}  # (n_real_tokens, d_model)


# ----------------------------------------------------------------------------- entry points
def _component_vector(adapter, comp: Component, v: torch.Tensor, config: ObsPropConfig,
                      inputs: dict[int, torch.Tensor] | None) -> torch.Tensor:
    if comp.kind == "embed":
        return v
    if comp.kind == "head":
        return head_vector(adapter, comp.layer, comp.head, v)
    if config.mlp_method == "linear":
        return mlp_linear_vectors(adapter, comp.layer, v)[0]
    if not inputs or comp.layer not in inputs:
        raise ValueError(f"{comp}: mlp_method='gradient' needs reference prompts; pass prompts, or use "
                         "ObsPropConfig(mlp_method='linear')")
    return mlp_gradient_vector(adapter, comp.layer, v, inputs[comp.layer])


def to_residual(adapter, comp: Component, y: torch.Tensor) -> torch.Tensor:
    """Input-site vector -> residual-stream vector (norm scalar dropped; LayerNorm centring kept)."""
    if comp.kind == "embed" or adapter.info.norm != "layer":
        return y
    return _center(y)


def _check_path(adapter, path: Sequence) -> tuple[Component, ...]:
    comps = tuple(Component.parse(c).check(adapter) for c in path)
    if not comps:
        raise ValueError("a path needs at least one component, e.g. ['L3H5'] or ['embed', 'M0']")
    parallel = adapter.info.parallel_attn_mlp
    order = [(-1, 0) if c.kind == "embed" else (c.layer, 1 if c.kind == "head" else 2) for c in comps]
    for a, b, ca, cb in zip(order, order[1:], comps, comps[1:]):
        # A component can feed only a later one; in parallel blocks the MLP cannot read its own layer's heads.
        if b <= a or (parallel and a[0] == b[0]):
            raise ValueError(f"path {' > '.join(map(str, comps))}: {ca} cannot feed {cb}; list components "
                             "from input to output, each in a later position of the forward pass")
    return comps


def path_vector(adapter, observable: Observable, path: Sequence, prompts=None,
                config: ObsPropConfig = ObsPropConfig()) -> FeatureVector:
    """Feature vector of a multi-hop path (input -> ... -> logits) at its first input site."""
    comps = _check_path(adapter, path)
    mlp_layers = [c.layer for c in comps if c.kind == "mlp"] if config.mlp_method == "gradient" else []
    inputs = reference_inputs(adapter, prompts, mlp_layers, config.positions) if prompts is not None else None
    v = final_vector(adapter, observable)
    for i, comp in enumerate(reversed(comps)):
        y = _component_vector(adapter, comp, v, config, inputs)
        v = to_residual(adapter, comp, y)
    return FeatureVector(comps, comps[0].input_site(adapter), y)


def obsprop(adapter, observable: Observable, prompts=None, config: ObsPropConfig = ObsPropConfig()) -> ObsPropResult:
    """Direct-path feature vectors of the embeddings, every head and every MLP.

    `prompts`: reference prompts (strings or `Tokenized`) for the MLP gradients; required
    when ``config.mlp_method == 'gradient'``.
    """
    if config.mlp_method == "gradient" and prompts is None:
        raise ValueError("obsprop with mlp_method='gradient' needs reference prompts; pass prompts=[...] "
                         "or ObsPropConfig(mlp_method='linear')")
    info = adapter.info
    inputs = (reference_inputs(adapter, prompts, range(info.n_layers), config.positions)
              if config.mlp_method == "gradient" else None)
    v = final_vector(adapter, observable)
    vectors = [FeatureVector((Component("embed"),), adapter.embed_site, v)]
    for layer in range(info.n_layers):
        w = adapter.weights.layer(layer, fold_norms=True)
        # (n_heads, d_model): y_h = W_V,kv(h) (W_O,h v) for all heads at once.
        out_side = torch.einsum("hdm,m->hd", w.attn.W_O, v)
        W_V = w.attn.W_V[[w.attn.kv_head(h) for h in range(info.n_heads)]]
        heads = torch.einsum("hmd,hd->hm", W_V, out_side)
        site = adapter.sites(layer).attn_in
        vectors += [FeatureVector((Component("head", layer, h),), site, heads[h]) for h in range(info.n_heads)]
        comp = Component("mlp", layer)
        vectors.append(FeatureVector((comp,), comp.input_site(adapter), _component_vector(adapter, comp, v, config, inputs)))
    n_ref = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    return ObsPropResult(observable, v, tuple(vectors), config, n_ref)
