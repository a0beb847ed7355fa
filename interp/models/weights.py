"""Weights in one documented convention, per layer, for any supported architecture.

Convention (TransformerLens's): activations are row vectors, ``y = x @ W + b``.

- ``W_E``  (d_vocab, d_model)            token embedding
- ``W_U``  (d_model, d_vocab), ``b_U`` (d_vocab,)   unembedding
- norms: `NormWeights` (kind 'rms' or 'layer', gain (d_model,), bias (d_model,) or None, eps)
- attention, per head: ``W_Q`` (n_heads, d_model, d_head), ``W_K``/``W_V``
  (n_kv_heads, d_model, d_head) - grouped-query attention keeps one K/V block per KV head,
  and query head h reads KV head ``h // (n_heads // n_kv_heads)`` (`AttentionWeights.kv_head`);
  ``W_O`` (n_heads, d_head, d_model); biases are zeros where the model has none.
- MLP: ``W_in`` (d_model, d_mlp) the up/linear projection, ``W_gate`` (d_model, d_mlp) or
  None, ``W_out`` (d_mlp, d_model); hidden = act(x W_gate) * (x W_in) for gated MLPs,
  act(x W_in + b_in) otherwise.

With ``fold_norms=True`` the preceding norm's gain (and LayerNorm bias) is folded into the
reading weights, so they apply to the ``*.hook_normalized`` sites directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

_ACTIVATIONS = {
    "silu": torch.nn.functional.silu,
    "swish": torch.nn.functional.silu,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "gelu_new": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
}


def activation_fn(name: str):
    """The elementwise nonlinearity called `name` in the model config."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unsupported MLP activation {name!r}; supported: {', '.join(_ACTIVATIONS)}") from None


@dataclass(frozen=True)
class NormWeights:
    kind: str
    """'rms' or 'layer'."""
    gain: torch.Tensor
    bias: torch.Tensor | None
    eps: float

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The ``hook_normalized`` value: centred (LayerNorm) and scaled, before gain/bias."""
        if self.kind == "layer":
            x = x - x.mean(-1, keepdim=True)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.normalize(x) * self.gain
        return out + self.bias if self.bias is not None else out


@dataclass(frozen=True)
class AttentionWeights:
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    b_Q: torch.Tensor
    b_K: torch.Tensor
    b_V: torch.Tensor
    b_O: torch.Tensor

    @property
    def n_heads(self) -> int:
        return self.W_Q.shape[0]

    def kv_head(self, head: int) -> int:
        """The KV head that query head `head` reads (grouped-query attention)."""
        return head // (self.W_Q.shape[0] // self.W_K.shape[0])

    def W_OV(self, head: int) -> torch.Tensor:
        """(d_model, d_model) map from a source residual (normalised) to the head's output."""
        return self.W_V[self.kv_head(head)] @ self.W_O[head]


@dataclass(frozen=True)
class MLPWeights:
    W_in: torch.Tensor
    W_gate: torch.Tensor | None
    W_out: torch.Tensor
    b_in: torch.Tensor
    b_gate: torch.Tensor | None
    b_out: torch.Tensor
    act_fn: str

    @property
    def gated(self) -> bool:
        return self.W_gate is not None

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden activation for an input `x` (batch..., d_model) in this weight's basis."""
        act = activation_fn(self.act_fn)
        linear = x @ self.W_in + self.b_in
        if self.gated:
            return act(x @ self.W_gate + self.b_gate) * linear
        return act(linear)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x) @ self.W_out + self.b_out


@dataclass(frozen=True)
class LayerWeights:
    layer: int
    ln1: NormWeights
    ln2: NormWeights
    attn: AttentionWeights
    mlp: MLPWeights


def _fold(norm: NormWeights, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold y = (n * g + beta) @ W + b into n @ W' + b' (W: (d_model, ...) with heads moved)."""
    shape = W.shape
    # Move d_model to the front so the gain scales the input axis whatever the head layout.
    W2 = W.transpose(0, -2) if W.ndim == 3 else W
    W_f = W2 * norm.gain.view(-1, *([1] * (W2.ndim - 1)))
    b_f = b
    if norm.bias is not None:
        b_f = b + torch.einsum("d,d...->...", norm.bias, W2)
    W_f = W_f.transpose(0, -2) if W.ndim == 3 else W_f
    assert W_f.shape == shape
    return W_f, b_f


class ModelWeights:
    """Read-only weight views of a loaded bridge (see the module docstring)."""

    def __init__(self, bridge, norm_kind: str, act_fn: str, eps: float) -> None:
        self._bridge = bridge
        self._norm_kind = norm_kind
        self._act_fn = act_fn
        self._eps = eps

    @property
    def W_E(self) -> torch.Tensor:
        return self._bridge.W_E.detach()

    @property
    def W_U(self) -> torch.Tensor:
        return self._bridge.W_U.detach()

    @property
    def b_U(self) -> torch.Tensor:
        b = self._bridge.b_U
        return torch.zeros(self.W_U.shape[1]) if b is None else b.detach()

    def _norm(self, module) -> NormWeights:
        inner = getattr(module, "_original_component", module)
        bias = getattr(inner, "bias", None)
        eps = getattr(inner, "variance_epsilon", getattr(inner, "eps", self._eps))
        return NormWeights(self._norm_kind, inner.weight.detach(), None if bias is None else bias.detach(), float(eps))

    @property
    def final_norm(self) -> NormWeights:
        return self._norm(self._bridge.ln_final)

    def layer(self, layer: int, fold_norms: bool = False) -> LayerWeights:
        """Weights of block `layer`; with `fold_norms`, ln1/ln2 gains are folded in."""
        block = self._bridge.blocks[layer]
        a, m = block.attn, block.mlp

        def get(obj, attr, zeros_shape):
            t = getattr(obj, attr, None)
            return torch.zeros(zeros_shape) if t is None else t.detach()

        W_Q, W_K, W_V, W_O = (getattr(a, n).detach() for n in ("W_Q", "W_K", "W_V", "W_O"))
        attn = AttentionWeights(
            W_Q, W_K, W_V, W_O,
            get(a, "b_Q", W_Q.shape[::2]), get(a, "b_K", W_K.shape[::2]), get(a, "b_V", W_V.shape[::2]),
            get(a, "b_O", (W_O.shape[-1],)),
        )
        W_gate = getattr(m, "W_gate", None)
        W_gate = None if W_gate is None else W_gate.detach()
        mlp = MLPWeights(
            W_in=m.W_in.detach(), W_gate=W_gate, W_out=m.W_out.detach(),
            b_in=get(m, "b_in", (m.W_in.shape[1],)),
            b_gate=None if W_gate is None else torch.zeros(W_gate.shape[1]),
            b_out=get(m, "b_out", (m.W_out.shape[1],)), act_fn=self._act_fn,
        )
        ln1, ln2 = self._norm(block.ln1), self._norm(block.ln2)
        if fold_norms:
            attn = self._fold_attn(ln1, attn)
            mlp = self._fold_mlp(ln2, mlp)
            unit = lambda n: NormWeights(n.kind, torch.ones_like(n.gain), None, n.eps)  # noqa: E731
            ln1, ln2 = unit(ln1), unit(ln2)
        return LayerWeights(layer, ln1, ln2, attn, mlp)

    @staticmethod
    def _fold_attn(ln: NormWeights, attn: AttentionWeights) -> AttentionWeights:
        W_Q, b_Q = _fold(ln, attn.W_Q, attn.b_Q)
        W_K, b_K = _fold(ln, attn.W_K, attn.b_K)
        W_V, b_V = _fold(ln, attn.W_V, attn.b_V)
        return replace(attn, W_Q=W_Q, W_K=W_K, W_V=W_V, b_Q=b_Q, b_K=b_K, b_V=b_V)

    @staticmethod
    def _fold_mlp(ln: NormWeights, mlp: MLPWeights) -> MLPWeights:
        W_in, b_in = _fold(ln, mlp.W_in, mlp.b_in)
        if not mlp.gated:
            return replace(mlp, W_in=W_in, b_in=b_in)
        W_gate, b_gate = _fold(ln, mlp.W_gate, mlp.b_gate)
        return replace(mlp, W_in=W_in, b_in=b_in, W_gate=W_gate, b_gate=b_gate)
