"""Input-dependent circuit attribution through transcoders, exact on the real forward pass.

Dunefsky, Chlenski, Nanda (2024), "Transcoders Find Interpretable LLM Feature Circuits":
with transcoders in place of the MLPs, a target's pre-activation factors into
*activation x weight* terms of upstream latents, attention heads (patterns frozen) and
embeddings. Row-vector convention of `interp.models.weights`; one prompt at a time.

Algorithm:

1. Run the unmodified model once, caching per layer the attention input (``ln1`` output
   before its gain), the attention pattern, the MLP input ``x`` (``ln2.hook_normalized``),
   the MLP output and the residual stream at each norm. Each transcoder only *reads*: it
   gives ``z = act(x W_enc + b_enc)`` and ``y_hat = z W_dec + b_dec (+ x W_skip^T)``, and its
   error ``e = mlp_out - y_hat`` is a component of its own. The transcoders are not spliced
   in: splicing would change every later activation, so the graph would describe a
   different model; with the error terms the decomposition is exact for the real one and
   the unexplained part is always on the table.
2. The residual stream entering any reader at position p is a sum of writers::

       r[p] = embed[p] + pos_embed[p]
            + sum_{attn l before} ( sum_h sum_{s<=p} A^l_h[p,s] n^l[s] W_V^{kv(h)} W_O^h + b^l_attn )
            + sum_{mlp l before}  ( sum_i z^l_i[p] W_dec^l[i] + b_dec^l + skip^l[p] + e^l[p] )

   with ``W_V``, ``b_V`` the ln1-folded value weights, ``b_attn = b_O + sum_h b_V^{kv(h)} W_O^h``
   (pattern rows sum to 1) and ``kv(h)`` the KV head of query head h (grouped-query attention).
3. Frozen normalisation: a reader sees ``n = P r / sigma(r)`` (``P`` centres for LayerNorm, the
   identity for RMSNorm). With ``sigma`` held at its value on this prompt (``c = |n| / |P r|``),
   a linear read ``w . n`` equals ``u . r`` with ``u = c P w``.
4. Targets are reads ``w . n + b`` at a position p: transcoder latent i of layer L (the
   ``ln2`` reader of L; ``w = W_enc[:, i]``, ``b = b_enc[i]``; value = its pre-activation); the
   logit of token t (final norm; ``w = gamma_f * W_U[:, t]``, ``b = beta_f . W_U[:, t] + b_U[t]``);
   a logit difference (the difference of two).
5. Direct contribution of each writer: ``u . output[p]``. Head h of layer l from source s:
   ``A_h[p,s] n[s] . (W_V^{kv(h)} W_O^h u)`` (its OV circuit, pattern frozen); latent i:
   ``z_i (W_dec[i] . u)`` (activation x input-invariant weight). Contributions plus ``b`` add
   up to the target exactly (to float rounding; `Attribution.residual`).
6. Going further upstream (`interp.methods.circuit_graph`): an active latent has
   ``z_i = pre_i`` (ReLU, TopK and JumpReLU all pass the pre-activation through), so its
   contribution is linear in its own read ``u' = (W_dec[i] . u) c P W_enc[:, i]`` (bias
   ``(W_dec[i] . u) b_enc[i]``); a head's source term is linear in ``r[s]`` with
   ``u' = A_h[p,s] c_s P (W_V W_O u)`` (`upstream_read`).

A transcoder is anything with SAELens's `Transcoder` attributes: ``W_enc`` (d_model, d_sae),
``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_model), ``b_dec`` (d_model,), optional ``W_skip``
(d_model, d_model) and ``encode(x) -> (..., d_sae)`` dense activations (SAELens's classes and
`interp.dictionaries.Dictionary` both qualify). Its input is ``adapter.sites(L).mlp_in``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Mapping, Protocol

import pandas as pd
import torch

KINDS = ("embed", "pos_embed", "head", "attn_bias", "latent", "error", "tc_bias", "skip", "mlp")
"""Component kinds: ``mlp`` is the whole output of an MLP that has no transcoder."""
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Transcoder(Protocol):
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class LatentTarget:
    """Pre-activation of latent `index` of the transcoder at `layer`, at `position`."""

    layer: int
    index: int
    position: int = -1
    label: str = ""


@dataclass(frozen=True)
class LogitTarget:
    """Logit of `token` at `position` (minus the logit of `other` when given)."""

    token: int
    other: int | None = None
    position: int = -1
    label: str = ""


Target = LatentTarget | LogitTarget


@dataclass
class LayerTrace:
    """What one layer did on the prompt (pos = prompt length)."""

    layer: int
    attn_in: torch.Tensor
    """(pos, d_model) ln1 output before the gain."""
    pattern: torch.Tensor
    """(n_heads, pos, pos) attention pattern [head, dest, source]."""
    W_V: torch.Tensor
    """(n_heads, d_model, d_head) ln1-folded value weights per query head (its KV block)."""
    W_O: torch.Tensor
    """(n_heads, d_head, d_model)."""
    attn_bias: torch.Tensor
    """(d_model,) b_O + sum_h b_V W_O."""
    ln1_scale: torch.Tensor
    """(pos,) c = |n| / |P r| of ln1."""
    ln2_scale: torch.Tensor
    """(pos,) the same for ln2 (the transcoder's input)."""
    mlp_in: torch.Tensor
    """(pos, d_model) ln2 output before the gain: the transcoder's input."""
    mlp_out: torch.Tensor
    """(pos, d_model)."""
    transcoder: Transcoder | None = None
    active_idx: torch.Tensor | None = None
    """(pos, K) indices of active latents (padded with 0)."""
    active_val: torch.Tensor | None = None
    """(pos, K) their activations (0 in padding)."""
    skip: torch.Tensor | None = None
    """(pos, d_model) skip term, or None."""
    error: torch.Tensor | None = None
    """(pos, d_model) mlp_out - transcoder output."""

    def __post_init__(self):
        h, k, _ = self.W_O.shape
        self._W_O_flat = self.W_O.reshape(h * k, -1).contiguous()  # (heads * d_head, d_model)
        self._W_V_t = self.W_V.transpose(1, 2).contiguous()  # (heads, d_head, d_model)

    def pre_activation(self, position: int, index: int) -> float:
        """Encoder pre-activation ``x @ W_enc[:, index] + b_enc[index]`` at `position`."""
        W_enc = self.transcoder.W_enc.detach()
        return float(self.mlp_in[position] @ W_enc[:, index].to(self.mlp_in.dtype) + self.transcoder.b_enc.detach()[index])


@dataclass
class Trace:
    """One prompt's forward pass, frozen for linear attribution (see the module docstring)."""

    tokens: torch.Tensor
    """(pos,) token ids."""
    str_tokens: list[str]
    embed: torch.Tensor
    """(pos, d_model)."""
    pos_embed: torch.Tensor
    """(pos, d_model) resid_pre[0] - embed (zero for rotary models)."""
    layers: list[LayerTrace]
    final_scale: torch.Tensor
    """(pos,) c of the final norm."""
    logits: torch.Tensor
    """(pos, d_vocab)."""
    norm: str
    parallel: bool

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def n_pos(self) -> int:
        return int(self.tokens.shape[0])

    def cutoff(self, reader: str, layer: int) -> int:
        """Writers (embed=0, attn l=1+2l, mlp l=2+2l) below this index feed the reader."""
        if reader == "final":
            return 2 * self.n_layers + 1
        if reader == "attn" or (reader == "mlp" and self.parallel):
            return 1 + 2 * layer
        return 2 + 2 * layer

    def project(self, w: torch.Tensor) -> torch.Tensor:
        """P w: the norm's centring (LayerNorm) or the identity (RMSNorm). w: (..., d_model)."""
        return w - w.mean(-1, keepdim=True) if self.norm == "layer" else w


def _scale(resid: torch.Tensor, normalized: torch.Tensor, norm: str) -> torch.Tensor:
    # c = |n| / |P r| per position: exact whatever eps the norm uses.
    centred = resid - resid.mean(-1, keepdim=True) if norm == "layer" else resid
    return normalized.norm(dim=-1) / centred.norm(dim=-1).clamp_min(1e-12)


def _encode(tc: Transcoder, x: torch.Tensor, layer: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx, val), each (pos, K): the active latents of `x` (pos, d_model), padded with z = 0.

    Checks that active latents pass their pre-activation ``x @ W_enc + b_enc`` through.
    """
    z = tc.encode(x.to(tc.W_enc.dtype)).detach().to(dtype)
    k = max(int((z != 0).sum(-1).max()), 1)
    idx = z.abs().topk(k, dim=-1).indices  # the active latents first; padding has z = 0
    val = z.gather(-1, idx)
    W = tc.W_enc.detach().to(dtype)
    pre = torch.einsum("pd,dpk->pk", x, W[:, idx]) + tc.b_enc.detach().to(dtype)[idx]
    active = val != 0
    if torch.any((val - pre).abs()[active] > 1e-3 * (1 + pre.abs()[active])):
        raise ValueError(
            f"the transcoder at layer {layer} does not pass its pre-activation x @ W_enc + b_enc through on "
            "active latents (input normalisation or scaling inside encode?); fold it into W_enc/b_enc first"
        )
    return idx, val


_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _attn_weights(adapter, layer: int, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W_V per query head with the ln1 gain folded in, W_O, b_attn), cached per adapter.

    Only the value path is needed, so the fold is done here rather than folding every weight
    of the layer (`ModelWeights.layer(fold_norms=True)`) on each call.
    """
    per_model = _WEIGHTS.setdefault(adapter, {})
    if layer not in per_model:
        w = adapter.weights.layer(layer)
        a, ln1 = w.attn, w.ln1
        kv = torch.tensor([a.kv_head(h) for h in range(a.n_heads)])
        W_V, b_V = a.W_V[kv], a.b_V[kv]  # (heads, d_model, d_head), (heads, d_head)
        if ln1.bias is not None:
            b_V = b_V + torch.einsum("m,hmk->hk", ln1.bias, W_V)
        W_V = W_V * ln1.gain[None, :, None]
        per_model[layer] = (W_V, a.W_O, a.b_O + torch.einsum("hk,hkm->m", b_V, a.W_O))
    return tuple(t.to(dtype) for t in per_model[layer])


def _layer_trace(adapter, trace_cache: dict, layer: int, tc: Transcoder | None, dtype, norm: str) -> LayerTrace:
    s = adapter.sites(layer)
    get = lambda name: trace_cache[name][0].to(dtype)  # noqa: E731  (batch of one)
    W_V, W_O, attn_bias = _attn_weights(adapter, layer, dtype)
    if s.resid_mid is None:  # parallel attention + MLP: both read resid_pre
        mlp_reads = get(s.resid_pre)
    else:  # resid_mid = next resid_pre - mlp_out: one hook fewer per layer (hook setup is not free)
        after = adapter.sites(layer + 1).resid_pre if layer + 1 < adapter.info.n_layers else adapter.final_resid_site
        mlp_reads = get(after) - get(s.mlp_out)
    x = get(s.mlp_in)
    lt = LayerTrace(
        layer=layer, attn_in=get(s.attn_in), pattern=get(s.attn_pattern), W_V=W_V, W_O=W_O,
        attn_bias=attn_bias, ln1_scale=_scale(get(s.resid_pre), get(s.attn_in), norm),
        ln2_scale=_scale(mlp_reads, x, norm), mlp_in=x, mlp_out=get(s.mlp_out), transcoder=tc,
    )
    if tc is None:
        return lt
    idx, val = _encode(tc, x, layer, dtype)
    W_dec = tc.W_dec.detach().to(dtype)
    out = torch.einsum("pk,pkd->pd", val, W_dec[idx]) + tc.b_dec.detach().to(dtype)  # sparse decode
    skip = getattr(tc, "W_skip", None)
    skip = None if skip is None else x @ skip.detach().to(dtype).T
    if skip is not None:
        out = out + skip
    lt.active_idx, lt.active_val, lt.skip, lt.error = idx, val, skip, lt.mlp_out - out
    return lt


@torch.no_grad()
def trace(adapter, transcoders: Mapping[int, Transcoder], tokens, dtype: str = "float32") -> Trace:
    """Run `tokens` (one prompt: a string or (pos,) ids) once and freeze what attribution needs.

    `transcoders` maps layer -> transcoder (see the module docstring); other layers' MLPs stay
    opaque ``mlp`` components.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not valid; choose one of {list(DTYPES)}")
    dt = DTYPES[dtype]
    tokens = adapter.to_tokens(tokens) if isinstance(tokens, str) else torch.as_tensor(tokens).reshape(1, -1)
    info = adapter.info
    for layer, tc in transcoders.items():
        adapter.check_layer(layer)
        if tuple(tc.W_enc.shape)[0] != info.d_model or tuple(tc.W_dec.shape)[1] != info.d_model:
            raise ValueError(f"transcoder at layer {layer} maps {tuple(tc.W_enc.shape)[0]} -> "
                             f"{tuple(tc.W_dec.shape)[1]} dims; {adapter.name} needs d_model={info.d_model} both ways")
    names = [adapter.embed_site, adapter.sites(0).resid_pre, adapter.final_resid_site, adapter.final_normalized_site]
    for layer in range(info.n_layers):
        s = adapter.sites(layer)
        names += [s.resid_pre, s.attn_in, s.attn_pattern, s.mlp_in, s.mlp_out]
    out = adapter.run(tokens, names=names)
    cache = out.cache
    g = lambda name: cache[name][0].to(dt)  # noqa: E731
    layers = [_layer_trace(adapter, cache, layer, transcoders.get(layer), dt, info.norm) for layer in range(info.n_layers)]
    embed = g(adapter.embed_site)
    return Trace(
        tokens=tokens[0].cpu(), str_tokens=adapter.to_str_tokens(tokens[0]), embed=embed,
        pos_embed=g(adapter.sites(0).resid_pre) - embed, layers=layers,
        final_scale=_scale(g(adapter.final_resid_site), g(adapter.final_normalized_site), info.norm),
        logits=out.output[0].to(dt), norm=info.norm, parallel=info.parallel_attn_mlp,
    )


@dataclass(frozen=True)
class Contributions:
    """Direct contributions of every writer to n reads (one row per read)."""

    values: torch.Tensor
    """(n, m) contribution of component j to read i."""
    kind: torch.Tensor
    """(m,) codes into `KINDS`."""
    layer: torch.Tensor
    """(m,) writer layer; -1 for embeddings."""
    head: torch.Tensor
    """(m,) head index; -1 unless kind is head."""
    source: torch.Tensor
    """(n, m) position the component writes from (heads: the source position)."""
    index: torch.Tensor
    """(n, m) latent index; -1 unless kind is latent."""


def _block(vals, kind, layer, head, source, index):
    n, m = vals.shape
    code = KINDS.index(kind)
    head = head if head is not None else torch.full((m,), -1)
    index = index if index is not None else torch.full((n, m), -1)
    return vals, torch.full((m,), code), torch.full((m,), layer), head, source.expand(n, m), index


def _attn_blocks(lt: LayerTrace, U: torch.Tensor, pos: torch.Tensor) -> list:
    h, S = lt.pattern.shape[0], lt.pattern.shape[-1]
    n, k = len(pos), lt.W_O.shape[1]
    # Plain matmuls: torch.einsum picks a far slower path for these small batched products.
    t = (U @ lt._W_O_flat.T).reshape(n, h, k).transpose(0, 1)  # (heads, n, d_head): W_O u
    v = torch.bmm(t, lt._W_V_t)  # (heads, n, d_model): W_V W_O u
    scores = (v.reshape(h * n, -1) @ lt.attn_in.T).reshape(h, n, S).transpose(0, 1)  # (n, heads, source)
    A = lt.pattern[:, pos, :].permute(1, 0, 2)  # (n, heads, source) for each read's destination
    vals = (A * scores).reshape(len(pos), h * S)
    head = torch.arange(h).repeat_interleave(S)
    source = torch.arange(S).repeat(h)[None]
    bias = (U @ lt.attn_bias)[:, None]
    return [_block(vals, "head", lt.layer, head, source, None),
            _block(bias, "attn_bias", lt.layer, None, pos[:, None], None)]


def _mlp_blocks(lt: LayerTrace, U: torch.Tensor, pos: torch.Tensor) -> list:
    here = pos[:, None]
    dot = lambda X: (U * X[pos]).sum(-1, keepdim=True)  # noqa: E731  (n, 1)
    if lt.transcoder is None:
        return [_block(dot(lt.mlp_out), "mlp", lt.layer, None, here, None)]
    idx, val = lt.active_idx[pos], lt.active_val[pos]  # (n, K)
    W_dec = lt.transcoder.W_dec.detach().to(U.dtype)
    vals = val * torch.einsum("nkd,nd->nk", W_dec[idx], U)
    blocks = [_block(vals, "latent", lt.layer, None, here, idx),
              _block(dot(lt.error), "error", lt.layer, None, here, None),
              _block((U @ lt.transcoder.b_dec.detach().to(U.dtype))[:, None], "tc_bias", lt.layer, None, here, None)]
    if lt.skip is not None:
        blocks.append(_block(dot(lt.skip), "skip", lt.layer, None, here, None))
    return blocks


def direct_contributions(tr: Trace, U: torch.Tensor, positions: torch.Tensor, cutoff: int) -> Contributions:
    """Contributions of every writer below `cutoff` to the reads ``U[i] . r[positions[i]]``.

    U: (n, d_model) residual-space read vectors; positions: (n,) destination positions.
    Rows sum (over components) to ``U[i] . r[positions[i]]`` exactly.
    """
    pos = torch.as_tensor(positions, dtype=torch.long)
    here = pos[:, None]
    blocks = [_block((U * tr.embed[pos]).sum(-1, keepdim=True), "embed", -1, None, here, None),
              _block((U * tr.pos_embed[pos]).sum(-1, keepdim=True), "pos_embed", -1, None, here, None)]
    for lt in tr.layers:
        if 1 + 2 * lt.layer < cutoff:
            blocks += _attn_blocks(lt, U, pos)
        if 2 + 2 * lt.layer < cutoff:
            blocks += _mlp_blocks(lt, U, pos)
    cols = list(zip(*blocks))
    return Contributions(torch.cat(cols[0], 1), torch.cat(cols[1]), torch.cat(cols[2]), torch.cat(cols[3]),
                         torch.cat(cols[4], 1), torch.cat(cols[5], 1))


def _norm_position(tr: Trace, position: int) -> int:
    n = tr.n_pos()
    if not isinstance(position, int) or not -n <= position < n:
        raise ValueError(f"position {position!r} is out of range for a {n}-token prompt: valid {-n}..{n - 1}")
    return position % n


@dataclass(frozen=True)
class Read:
    """A target as a linear read of the residual stream: value = u . r[position] + bias."""

    u: torch.Tensor
    """(d_model,) residual-space read vector (frozen norm scale and centring applied)."""
    position: int
    cutoff: int
    bias: float
    value: float
    """The target's actual value on the prompt (pre-activation or logit/logit difference)."""
    label: str


def target_read(adapter, tr: Trace, target: Target) -> Read:
    """The read vector, bias and actual value of `target` on the traced prompt."""
    p = _norm_position(tr, target.position)
    dt = tr.embed.dtype
    if isinstance(target, LatentTarget):
        layer = adapter.check_layer(target.layer)
        lt = tr.layers[layer]
        if lt.transcoder is None:
            have = [t.layer for t in tr.layers if t.transcoder is not None]
            raise ValueError(f"no transcoder at layer {layer}; layers with transcoders: {have}")
        d_sae = lt.transcoder.W_enc.shape[1]
        if not isinstance(target.index, int) or not 0 <= target.index < d_sae:
            raise ValueError(f"latent index {target.index!r} is out of range: valid 0..{d_sae - 1}")
        w = lt.transcoder.W_enc.detach().to(dt)[:, target.index]
        u = lt.ln2_scale[p] * tr.project(w)
        label = target.label or f"L{layer}#{target.index}@{p}"
        return Read(u, p, tr.cutoff("mlp", layer), float(lt.transcoder.b_enc.detach()[target.index]),
                    lt.pre_activation(p, target.index), label)
    fn = adapter.weights.final_norm
    W_U, b_U = adapter.weights.W_U.to(dt), adapter.weights.b_U.to(dt)
    ids = [target.token] + ([target.other] if target.other is not None else [])
    for t in ids:
        if not isinstance(t, int) or not 0 <= t < W_U.shape[1]:
            raise ValueError(f"token id {t!r} is out of range: valid 0..{W_U.shape[1] - 1}")
    col = W_U[:, target.token] - (W_U[:, target.other] if target.other is not None else 0)
    bias = b_U[target.token] - (b_U[target.other] if target.other is not None else 0)
    if fn.bias is not None:
        bias = bias + fn.bias.to(dt) @ col
    u = tr.final_scale[p] * tr.project(fn.gain.to(dt) * col)
    value = tr.logits[p, target.token] - (tr.logits[p, target.other] if target.other is not None else 0)
    if not target.label:
        names = [repr(adapter.decode([t])) for t in ids]
        label = f"logit({names[0]})" if len(ids) == 1 else f"logit({names[0]}) - logit({names[1]})"
    else:
        label = target.label
    return Read(u, p, tr.cutoff("final", 0), float(bias), float(value), f"{label}@{p}")


def component_label(tr: Trace, kind: str, layer: int, head: int, source: int, index: int, dest: int) -> str:
    """Human-readable name of one component (e.g. ``L3H2 4->7``, ``L5#123@7``, ``err L5@7``)."""
    tok = tr.str_tokens[source] if 0 <= source < len(tr.str_tokens) else "?"
    return {
        "embed": f"emb {tok!r}@{source}", "pos_embed": f"pos@{source}",
        "head": f"L{layer}H{head} {source}->{dest}", "attn_bias": f"L{layer} attn bias@{source}",
        "latent": f"L{layer}#{index}@{source}", "error": f"err L{layer}@{source}",
        "tc_bias": f"L{layer} tc bias@{source}", "skip": f"L{layer} skip@{source}", "mlp": f"MLP L{layer}@{source}",
    }[kind]


@dataclass
class Attribution:
    """Every direct contribution to one target on one prompt (see the module docstring)."""

    target: str
    value: float
    """The target's actual value."""
    bias: float
    """The read's own bias (b_enc or the logit bias through the final norm)."""
    frame: pd.DataFrame
    """One row per nonzero component: kind, layer, head, source, index, label, contribution;
    sorted by |contribution|."""
    position: int

    @property
    def total(self) -> float:
        """Sum of contributions plus the bias (equals `value` up to float rounding)."""
        return float(self.frame["contribution"].sum() + self.bias)

    @property
    def residual(self) -> float:
        return self.value - self.total

    def share(self, kind: str) -> float:
        """Share of the total absolute contribution carried by components of `kind`."""
        a = self.frame["contribution"].abs()
        return float(a[self.frame["kind"] == kind].sum() / max(a.sum(), 1e-30))


def contributions_frame(tr: Trace, c: Contributions, row: int, dest: int) -> pd.DataFrame:
    """Long-form table of row `row` of `c`, zero entries dropped, largest |value| first."""
    vals = c.values[row]
    keep = vals != 0
    kinds = [KINDS[k] for k in c.kind[keep].tolist()]
    df = pd.DataFrame({
        "kind": kinds, "layer": c.layer[keep].tolist(), "head": c.head[keep].tolist(),
        "source": c.source[row][keep].tolist(), "index": c.index[row][keep].tolist(),
        "contribution": vals[keep].double().tolist(),
    })
    df["label"] = [component_label(tr, *r, dest) for r in
                   zip(df["kind"], df["layer"], df["head"], df["source"], df["index"])]
    order = df["contribution"].abs().sort_values(ascending=False).index
    return df.loc[order].reset_index(drop=True)


def attribute(adapter, transcoders: Mapping[int, Transcoder], tokens, target: Target,
              dtype: str = "float32", tr: Trace | None = None) -> Attribution:
    """Direct contributions of all writers to `target` on one prompt (one forward pass).

    Pass a `tr` from `trace` to reuse a forward pass across targets.
    """
    tr = tr if tr is not None else trace(adapter, transcoders, tokens, dtype)
    read = target_read(adapter, tr, target)
    c = direct_contributions(tr, read.u[None], torch.tensor([read.position]), read.cutoff)
    return Attribution(read.label, read.value, read.bias, contributions_frame(tr, c, 0, read.position), read.position)
