"""`Dictionary`: one sparse dictionary module for SAEs and (skip) transcoders.

Weights follow SAELens's convention so the same tensors load into its classes
(`interp.dictionaries.io`) and the circuit code can read them directly:

- ``W_enc`` (d_in, d_sae), ``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_out), ``b_dec`` (d_out,)
- ``threshold`` (d_sae,) for JumpReLU, ``W_skip`` (d_out, d_in) for skip transcoders.

Forward pass (x: (batch, d_in) -> y_hat: (batch, d_out))::

    pre   = (x - b_dec if apply_b_dec_to_input else x) @ W_enc + b_enc
    z     = relu(pre)                              # 'relu'
          | relu(pre) * [pre > threshold]          # 'jumprelu'
          | relu(topk(pre, k)), zeros elsewhere    # 'topk'
    y_hat = z @ W_dec + b_dec (+ x @ W_skip.T)

An SAE (target = input) subtracts ``b_dec`` from its input (SAELens's default); a
transcoder cannot, since ``b_dec`` lives in the output space.

TopK runs sparse end to end: the encoder's backward and the decoder touch only the k active
latents per token (`sparse_topk_encode` and ``embedding_bag``), so a TopK step costs about one
dense matmul instead of the five of a dense ReLU step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

ARCHS = ("relu", "topk", "jumprelu")
KINDS = ("transcoder", "sae")
JUMPRELU_BANDWIDTH = 1e-3
"""Width of the rectangle kernel of JumpReLU's straight-through gradient (Rajamanoharan et al. 2024)."""


class Encoded(NamedTuple):
    """Latent activations, dense or as the k active entries per token."""

    acts: torch.Tensor | None
    """(batch, d_sae) dense activations (relu/jumprelu), else None."""
    values: torch.Tensor | None
    """(batch, k) activations of the active latents (topk), else None."""
    indices: torch.Tensor | None
    """(batch, k) their latent indices (topk), else None."""

    def dense(self, d_sae: int) -> torch.Tensor:
        """(batch, d_sae) activations whatever the representation."""
        if self.acts is not None:
            return self.acts
        out = torch.zeros(self.values.shape[0], d_sae, dtype=self.values.dtype, device=self.values.device)
        return out.scatter_(1, self.indices, self.values)

    def l0(self) -> torch.Tensor:
        """(batch,) number of active latents per token."""
        if self.acts is not None:
            return (self.acts > 0).sum(-1).float()
        return (self.values > 0).sum(-1).float()


class _SparseTopK(torch.autograd.Function):
    """relu(topk((x - b_pre) @ W + b)) with a backward that only touches the k active latents.

    Autograd through a dense ``topk`` would compute ``x.T @ grad_pre`` with a (batch, d_sae)
    gradient that is zero except k entries per row; here that product is a sparse matmul, and
    the input bias gets its gradient from the per-latent gradient sums (x needs none: it is data).
    """

    @staticmethod
    def forward(ctx, x, W_enc, b_enc, b_pre, k: int):
        x_c = x if b_pre is None else x - b_pre  # (batch, d_in)
        pre = torch.addmm(b_enc, x_c, W_enc)  # (batch, d_sae)
        values, indices = pre.topk(k, dim=-1, sorted=False)
        values = values.relu()
        ctx.save_for_backward(x_c, W_enc, values, indices)
        return values, indices

    @staticmethod
    def backward(ctx, grad_values, _grad_indices):
        x_c, W_enc, values, indices = ctx.saved_tensors
        batch, k = indices.shape
        d_sae = W_enc.shape[1]
        g = (grad_values * (values > 0)).reshape(-1)  # relu gate, (batch * k,)
        flat = indices.reshape(-1)
        grad_W = grad_b = grad_b_pre = None
        g_sum = torch.zeros(d_sae, dtype=g.dtype, device=g.device).index_add_(0, flat, g)  # (d_sae,)
        if ctx.needs_input_grad[1]:
            rows = torch.arange(batch, device=g.device).repeat_interleave(k)
            # (d_sae, batch) sparse gradient of the pre-activations, transposed.
            g_sparse = torch.sparse_coo_tensor(torch.stack([flat, rows]), g, (d_sae, batch), check_invariants=False)
            grad_W = torch.sparse.mm(g_sparse, x_c).T  # (d_in, d_sae)
        if ctx.needs_input_grad[2]:
            grad_b = g_sum
        if ctx.needs_input_grad[3]:
            grad_b_pre = -(W_enc @ g_sum)  # (d_in,)
        return None, grad_W, grad_b, grad_b_pre, None


def sparse_topk_encode(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int,
                       b_pre: torch.Tensor | None = None):
    """(values, indices), each (batch, k): relu of the k largest of ``(x - b_pre) @ W_enc + b_enc``.

    `x` is treated as data (no gradient); `b_pre` (d_in,) is an SAE's decoder bias.
    """
    return _SparseTopK.apply(x, W_enc, b_enc, b_pre, k)


class _JumpReLU(torch.autograd.Function):
    """z = pre * [pre > t]; straight-through gradient for t with a rectangle kernel."""

    @staticmethod
    def forward(ctx, pre, threshold):
        ctx.save_for_backward(pre, threshold)
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = JUMPRELU_BANDWIDTH
        near = ((pre - threshold).abs() < eps / 2).to(pre.dtype)
        grad_t = (-(threshold / eps) * near * grad).sum(0)
        return grad * (pre > threshold), grad_t


class _Step(torch.autograd.Function):
    """[pre > t] (for the L0 penalty); straight-through gradient for t only."""

    @staticmethod
    def forward(ctx, pre, threshold):
        ctx.save_for_backward(pre, threshold)
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = JUMPRELU_BANDWIDTH
        near = ((pre - threshold).abs() < eps / 2).to(pre.dtype)
        return None, (-(1.0 / eps) * near * grad).sum(0)


class Dictionary(nn.Module):
    """A sparse dictionary (see the module docstring for the maths and weight shapes)."""

    def __init__(self, d_in: int, d_sae: int, d_out: int, *, kind: str = "transcoder", arch: str = "topk",
                 k: int | None = None, skip: bool = False, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not valid; choose one of {KINDS}")
        if arch not in ARCHS:
            raise ValueError(f"arch {arch!r} is not valid; choose one of {ARCHS}")
        if arch == "topk" and not (isinstance(k, int) and 0 < k <= d_sae):
            raise ValueError(f"topk needs k in 1..d_sae={d_sae}, got {k!r}")
        if kind == "sae" and (d_in != d_out or skip):
            raise ValueError(f"an SAE maps a site onto itself: d_in ({d_in}) must equal d_out ({d_out}), no skip")
        self.kind, self.arch, self.k, self.skip = kind, arch, k, skip
        self.d_in, self.d_sae, self.d_out = d_in, d_sae, d_out
        # Zeros, not torch.empty: a dictionary built by hand and only partly set must not
        # carry uninitialised memory (a NaN there turns 0 * W_dec into NaN). `init_weights`
        # gives the training start.
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(d_sae, dtype=dtype))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_out, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(d_out, dtype=dtype))
        if arch == "jumprelu":
            self.threshold = nn.Parameter(torch.full((d_sae,), 1e-3, dtype=dtype))
        if skip:
            self.W_skip = nn.Parameter(torch.zeros(d_out, d_in, dtype=dtype))

    @property
    def apply_b_dec_to_input(self) -> bool:
        return self.kind == "sae"

    def extra_repr(self) -> str:
        k = f", k={self.k}" if self.arch == "topk" else ""
        return f"{self.kind} {self.arch}: d_in={self.d_in}, d_sae={self.d_sae}, d_out={self.d_out}{k}, skip={self.skip}"

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """W_dec rows: random unit vectors; W_enc = W_dec.T (a common, stable start)."""
        W = torch.randn(self.d_sae, self.d_out, generator=generator, dtype=self.W_dec.dtype)
        self.W_dec.copy_(W / W.norm(dim=-1, keepdim=True))
        if self.d_in == self.d_out:
            self.W_enc.copy_(self.W_dec.T)
        else:
            W = torch.randn(self.d_in, self.d_sae, generator=generator, dtype=self.W_enc.dtype)
            self.W_enc.copy_(W / W.norm(dim=0, keepdim=True))
        self.b_enc.zero_()

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.b_dec if self.apply_b_dec_to_input else x

    def encode_sparse(self, x: torch.Tensor) -> Encoded:
        """Latent activations of x (batch, d_in), sparse for TopK."""
        if self.arch == "topk":
            b_pre = self.b_dec if self.apply_b_dec_to_input else None
            values, indices = sparse_topk_encode(x, self.W_enc, self.b_enc, self.k, b_pre)
            return Encoded(None, values, indices)
        pre = torch.addmm(self.b_enc, self._input(x), self.W_enc)
        if self.arch == "relu":
            return Encoded(pre.relu(), None, None)
        return Encoded(_JumpReLU.apply(pre.relu(), self.threshold), None, None)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, d_sae) encoder pre-activations."""
        return torch.addmm(self.b_enc, self._input(x), self.W_enc)

    def decode_sparse(self, enc: Encoded, x: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, d_out) reconstruction; `x` is needed for the skip term."""
        if enc.acts is not None:
            out = torch.addmm(self.b_dec, enc.acts, self.W_dec)
        else:
            # Gather-and-sum of the k active decoder rows: no (batch, d_sae) matrix.
            out = nn.functional.embedding_bag(enc.indices, self.W_dec, per_sample_weights=enc.values,
                                              mode="sum") + self.b_dec
        if self.skip:
            if x is None:
                raise ValueError("a skip transcoder needs its input x to decode")
            out = out + x @ self.W_skip.T
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) -> (..., d_sae) dense latent activations."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        return self.encode_sparse(flat).dense(self.d_sae).reshape(*shape[:-1], self.d_sae)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) -> (..., d_out) reconstruction of the target."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        return self.decode_sparse(self.encode_sparse(flat), flat).reshape(*shape[:-1], self.d_out)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale W_dec rows to unit norm, moving the scale into the encoder (output unchanged
        for relu/jumprelu, whose thresholds scale too; TopK's selection may change)."""
        norms = self.W_dec.norm(dim=-1).clamp_min(1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms[None, :])
        self.b_enc.mul_(norms)
        if self.arch == "jumprelu":
            self.threshold.mul_(norms)

    @torch.no_grad()
    def renormalize_decoder(self) -> None:
        """Put W_dec's rows back on the unit sphere (training; changes the output slightly)."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    def l0_penalty_terms(self, x: torch.Tensor) -> torch.Tensor:
        """(batch,) differentiable L0 of JumpReLU (straight-through in the threshold)."""
        pre = self.pre_activations(x).relu()
        return _Step.apply(pre, self.threshold).sum(-1)
