"""Transposed passes of the frozen replacement model: the rows of an attribution graph.

Step 3 of `interp.methods.circuits.attribution_graph`. With attention patterns and norm scales
frozen and every MLP replaced by its transcoder's active latents, its error and constants, the
model is linear in the residual stream. A read ``u . r[p]`` (a latent's encoder row, a logit's
unembedding column) is carried down the residual stream by the transpose of that linear map:

1. Reads enter top-down: a batch is sorted by layer, so the rows carried so far are a prefix.
2. At MLP l the carried gradient ``g`` meets the layer's writers: latent slot i at position s gives
   ``a_i W_dec[i] . g[s]`` (one batched matmul over the trace's (pos, K) slots), the error node
   ``e[l, s] . g[s]``, the constant ``b_dec . sum_s g[s]``. Then layer l's own reads enter, and the
   skip term passes ``c2 P (g W_skip)`` on.
3. Attention l (patterns frozen): ``g[s] += c1[s] P sum_h W_V^h (sum_p A_h[p, s] W_O^h g[p])``,
   the pattern applied in head space (d_head < d_model), and the attention bias to the constant.
   Parallel attention/MLP blocks (both read resid_pre) add the MLP reads after the attention.
4. At the bottom: the embedding nodes ``embed[s] . g[s]``, positional embeddings to the constant.

Written out rather than taken from autograd on the model: the transpose is three matmuls per
layer on the traced tensors, with no second forward pass and no norm-scale hooks, for every
architecture the trace supports.
"""

from __future__ import annotations

import torch

from interp.methods.circuits.trace import Trace


def node_slots(lt, skip_first: bool) -> torch.Tensor:
    """(pos, K) bool: the latent slots of layer `lt` that are graph nodes."""
    active = lt.active_val != 0
    if skip_first:
        active[0] = False
    return active


def active_features(tr: Trace, skip_first: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """((n_active, 3) layer/position/index sorted, (n_active,) activations) of every active latent
    (those at position 0 left out with `skip_first`)."""
    rows, vals = [], []
    for lt in tr.layers:
        if lt.transcoder is None:
            continue
        pos, slot = torch.nonzero(node_slots(lt, skip_first), as_tuple=True)
        idx = lt.active_idx[pos, slot]
        rows.append(torch.stack([torch.full_like(pos, lt.layer), pos, idx], 1))
        vals.append(lt.active_val[pos, slot])
    if not rows:
        return torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=tr.embed.dtype)
    feats, vals = torch.cat(rows), torch.cat(vals)
    key = (feats[:, 0] * (tr.n_pos() + 1) + feats[:, 1]) * (int(feats[:, 2].max()) + 1) + feats[:, 2]
    order = torch.argsort(key)
    return feats[order], vals[order]


class TransposedPasses:
    """Batched transposed passes of the frozen model (step 3) over one trace."""

    def __init__(self, tr: Trace, feats: torch.Tensor, n_logits: int, skip_first: bool):
        self.tr, self.P, self.L = tr, tr.n_pos(), tr.n_layers
        dt = tr.embed.dtype
        self.n_active = len(feats)
        self.err0 = self.n_active
        self.tok0 = self.err0 + self.L * self.P
        self.n_cols = self.tok0 + self.P + n_logits
        width = int(feats[:, 2].max()) + 1 if len(feats) else 1
        keys = (feats[:, 0] * (self.P + 1) + feats[:, 1]) * width + feats[:, 2]  # sorted (see `active_features`)
        self.layers = []
        for lt in tr.layers:
            tc = lt.transcoder
            h, k, d = lt.W_O.shape
            W_V = lt._W_V_t.reshape(h * k, d)  # (heads * d_head, d_model): W_V^T of every head
            At = lt.pattern.transpose(1, 2).contiguous()  # (heads, source, dest)
            if tc is None:
                self.layers.append((lt, None, None, None, self._first_out(lt.mlp_out, skip_first), None, None, W_V, At))
                continue
            # Latents padded per position as the trace keeps them: (pos, K) slots, K = most active.
            active = node_slots(lt, skip_first)
            pos = torch.arange(self.P)[:, None].expand_as(active)
            slot_keys = (lt.layer * (self.P + 1) + pos) * width + lt.active_idx
            cols = torch.searchsorted(keys, slot_keys[active])  # column of each active slot
            dec = lt.active_val[..., None] * tc.W_dec.detach().to(dt)[lt.active_idx]  # (pos, K, d): a_i W_dec[i]
            dec = dec * active[..., None]
            err = lt.error
            skip = getattr(tc, "W_skip", None)
            skip = None if skip is None else skip.detach().to(dt)
            if skip_first:  # position 0's latents and error become one constant (circuit-tracer's zero_positions)
                err = err + (lt.active_val[0, :, None] * tc.W_dec.detach().to(dt)[lt.active_idx[0]]).sum(0) * (
                    torch.arange(self.P) == 0)[:, None]
            self.layers.append((lt, dec.transpose(1, 2).contiguous(), active.flatten(), cols,
                                self._first_out(err, skip_first),
                                tc.b_dec.detach().to(dt), skip, W_V, At))

    def _first_out(self, err: torch.Tensor, skip_first: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(error nodes' vectors, constant at position 0 or None): with `skip_first`, position 0's
        error is a constant, not a node, as circuit-tracer zeroes its error vectors there."""
        if not skip_first:
            return err, None
        const = err[0].clone()
        err = err.clone()
        err[0] = 0
        return err, const

    def _attn_t(self, lt, W_V, At, g: torch.Tensor) -> torch.Tensor:
        """Transpose of attention layer `lt` (patterns frozen) applied to g: (B, P, d) -> (B, P, d).

        The pattern is applied in head space (d_head < d_model) between W_O and W_V.
        """
        B, P, d = g.shape
        h, k = lt.W_O.shape[0], lt.W_O.shape[1]
        t = (g.reshape(B * P, d) @ lt._W_O_flat.T).reshape(B, P, h, k)  # W_O g per head
        t = t.permute(2, 1, 0, 3).reshape(h, P, B * k)
        s = torch.bmm(At, t).reshape(h, P, B, k)  # (heads, source, B, d_head): sum_p A_h[p, s] (.)[p]
        out = (s.permute(2, 1, 0, 3).reshape(B * P, h * k) @ W_V).reshape(B, P, d)  # sum over heads of W_V (.)
        return lt.ln1_scale[None, :, None] * self.tr.project(out)

    def rows(self, layers: torch.Tensor, positions: torch.Tensor, vecs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, n_cols) direct effects, (B,) constants) of reads `vecs` (B, d) at (`layers`, `positions`).

        Layer ``n_layers`` is the final norm (logits); layer l the input of transcoder l.
        """
        B, d = vecs.shape
        tr = self.tr
        order = torch.argsort(layers, descending=True, stable=True)  # reads enter top-down: a growing prefix
        layers, positions, vecs = layers[order], positions[order], vecs[order]
        out = torch.zeros(B, self.n_cols, dtype=vecs.dtype)
        bias = torch.zeros(B, dtype=vecs.dtype)
        g = torch.zeros(B, self.P, d, dtype=vecs.dtype)
        n = int((layers == self.L).sum())
        g[torch.arange(n), positions[:n]] += vecs[:n]
        for lt, dec, active, cols, err, b_dec, skip, W_V, At in reversed(self.layers[:int(layers.max()) + 1]):
            l = lt.layer
            # MLP l's writers meet the reads above it; layer l's own reads enter below their MLP.
            gt = g[:n].transpose(0, 1)  # (P, n, d)
            if dec is not None and n:
                e = torch.bmm(gt, dec).transpose(0, 1).reshape(n, -1)  # (n, P * K) per latent slot
                out[:n, cols] = e[:, active]
            e0 = self.err0 + l * self.P
            err, const = err
            out[:n, e0:e0 + self.P] = torch.bmm(gt, err[:, :, None])[..., 0].T
            if const is not None:
                bias[:n] += g[:n, 0] @ const
            if b_dec is not None:
                bias[:n] += g[:n].sum(1) @ b_dec
            m = n + int((layers == l).sum())
            mlp_in = torch.zeros(m, self.P, d, dtype=g.dtype)
            mlp_in[torch.arange(n, m), positions[n:m]] += vecs[n:m]
            if skip is not None:
                mlp_in[:n] += lt.ln2_scale[None, :, None] * tr.project(g[:n] @ skip)
            if tr.parallel:  # attention and MLP both read resid_pre
                bias[:n] += g[:n].sum(1) @ lt.attn_bias
                g[:n] += self._attn_t(lt, W_V, At, g[:n])
                g[:m] += mlp_in
            else:
                g[:m] += mlp_in
                bias[:m] += g[:m].sum(1) @ lt.attn_bias
                g[:m] += self._attn_t(lt, W_V, At, g[:m])
            n = m
        out[:, self.tok0:self.tok0 + self.P] = torch.einsum("bpd,pd->bp", g, tr.embed)
        bias += torch.einsum("bpd,pd->b", g, tr.pos_embed)
        back = torch.argsort(order)
        return out[back], bias[back]


def feature_reads(tr: Trace, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """((n, d) read vectors, (n,) b_enc, (n,) pre-activations) of latents `feats` (n, 3)."""
    dt = tr.embed.dtype
    u = torch.zeros(len(feats), tr.embed.shape[1], dtype=dt)
    b = torch.zeros(len(feats), dtype=dt)
    value = torch.zeros(len(feats), dtype=dt)
    for lt in tr.layers:
        mask = feats[:, 0] == lt.layer
        if not mask.any():
            continue
        pos, idx = feats[mask, 1], feats[mask, 2]
        W_enc = lt.transcoder.W_enc.detach().to(dt)[:, idx].T  # (n_l, d_model)
        b_enc = lt.transcoder.b_enc.detach().to(dt)[idx]
        u[mask] = lt.ln2_scale[pos, None] * tr.project(W_enc)
        b[mask] = b_enc
        value[mask] = (lt.mlp_in[pos] * W_enc).sum(-1) + b_enc
    return u, b, value
