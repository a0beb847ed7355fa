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
6. Going further upstream (`interp.methods.circuits.graph`): an active latent has
   ``z_i = pre_i`` (ReLU, TopK and JumpReLU all pass the pre-activation through), so its
   contribution is linear in its own read ``u' = (W_dec[i] . u) c P W_enc[:, i]`` (bias
   ``(W_dec[i] . u) b_enc[i]``); a head's source term is linear in ``r[s]`` with
   ``u' = A_h[p,s] c_s P (W_V W_O u)``.

Step 1 lives in `interp.methods.circuits.trace` (`trace`, and the `Transcoder` protocol: SAELens's
transcoder classes and `interp.dictionaries.Dictionary` both qualify).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd
import torch

from interp.methods.circuits.trace import DTYPES, LayerTrace, Trace, Transcoder, trace

__all__ = ["KINDS", "DTYPES", "LatentTarget", "LogitTarget", "Target", "Trace", "Transcoder", "trace", "Contributions",
           "direct_contributions", "Read", "target_read", "component_label", "Attribution", "contributions_frame",
           "attribute"]

KINDS = ("embed", "pos_embed", "head", "attn_bias", "latent", "error", "tc_bias", "skip", "mlp")
"""Component kinds: ``mlp`` is the whole output of an MLP that has no transcoder."""


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
