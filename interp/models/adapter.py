"""`ModelAdapter`: the one interface every method uses to talk to a model.

Methods never import ``transformer_lens`` or ``transformers``; they call this class.

Tokenisation
    ``to_tokens`` / ``tokenize`` / ``to_str_tokens`` / ``decode`` / ``token_id``. BOS policy:
    ``adapter.prepend_bos`` (set at load; the model family's default) is used unless a call
    overrides it. Batches of strings are right-padded; `Tokenized.lengths` gives real lengths
    (causal attention means right padding never changes earlier positions).
Forward passes
    ``run(tokens, names=[...], stop_at_layer=None, interventions=(), keep_grad=False)`` caches
    only the requested hook names; ``logits(tokens)``.
Interventions
    ``with adapter.intervene(ClampUnit(...), ...):`` - removed on exit, even on error.
Weights and sites
    ``adapter.weights`` (`ModelWeights`, one convention for all architectures) and
    ``adapter.sites(layer)`` (`LayerSites`, the standard hook names). Norms are not folded:
    see `interp.sites` for why and how folded weights are obtained.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from interp.models.interventions import Intervention
from interp.models.registry import store_model_name
from interp.models.weights import ModelWeights
from interp.sites import EMBED, FINAL_NORMALIZED, FINAL_RESID, UNEMBED_IN, LayerSites, layer_of, layer_sites


@dataclass(frozen=True)
class ModelInfo:
    """Architecture facts of a loaded model."""

    name: str
    architecture: str
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_vocab: int
    n_ctx: int
    norm: str
    """'rms' (RMSNorm) or 'layer' (LayerNorm)."""
    act_fn: str
    gated_mlp: bool
    parallel_attn_mlp: bool
    positional: str
    bos_token_id: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Tokenized:
    """A right-padded token batch."""

    tokens: torch.Tensor
    """(batch, pos) int64."""
    lengths: torch.Tensor
    """(batch,) number of real tokens per row."""


@dataclass(frozen=True)
class RunOutput:
    """What `ModelAdapter.run` returns."""

    output: torch.Tensor | None
    """(batch, pos, d_vocab) logits, or the residual stream (batch, pos, d_model) when
    stopped early with `stop_at_layer`."""
    cache: dict[str, torch.Tensor]
    """Requested hook name -> activation."""


class ModelAdapter:
    """A loaded model behind one interface (see the module docstring)."""

    def __init__(self, name: str, bridge, prepend_bos: bool | None = None) -> None:
        self.name = name
        self.bridge = bridge
        self.tokenizer = bridge.tokenizer
        cfg = bridge.cfg
        self.info = self._info(name, cfg, self.tokenizer)
        if prepend_bos is None:
            prepend_bos = bool(getattr(cfg, "default_prepend_bos", True)) and self.info.bos_token_id is not None
        self.prepend_bos = prepend_bos
        self.weights = ModelWeights(bridge, self.info.norm, self.info.act_fn, float(getattr(cfg, "eps", 1e-5)))
        self._hook_points = dict(bridge.hook_dict)
        self._hook_names = frozenset(self._hook_points)
        self._vocab_strings = None

    @staticmethod
    def _info(name: str, cfg, tokenizer) -> ModelInfo:
        n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
        arch = getattr(cfg, "architecture", None) or getattr(cfg, "original_architecture", None) or "unknown"
        return ModelInfo(
            name=name, architecture=str(arch), n_layers=cfg.n_layers, d_model=cfg.d_model, d_mlp=cfg.d_mlp,
            n_heads=cfg.n_heads, n_kv_heads=n_kv, d_head=cfg.d_head, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx,
            norm="rms" if str(cfg.normalization_type).upper().startswith("RMS") else "layer",
            act_fn=str(cfg.act_fn), gated_mlp=bool(getattr(cfg, "gated_mlp", False)),
            parallel_attn_mlp=bool(getattr(cfg, "parallel_attn_mlp", False)),
            positional=str(cfg.positional_embedding_type), bos_token_id=tokenizer.bos_token_id,
        )

    def __repr__(self) -> str:
        i = self.info
        return f"ModelAdapter({self.name!r}, {i.n_layers} layers, d_model={i.d_model}, d_mlp={i.d_mlp}, vocab={i.d_vocab})"

    # ----- the store's name for this model -------------------------------------------------
    @property
    def store_name(self) -> str:
        """The model name every store row of this model carries (`registry.store_model_name`):
        aliases and hub ids as they are, a local directory by its folder name."""
        return store_model_name(self.name)

    def record(self, store, run_id: str) -> None:
        """Write this model's ``models`` row (architecture and shapes) into `store` for run `run_id`."""
        info = self.info
        store.write("models", [{
            "model": self.store_name, "architecture": info.to_dict(), "n_layers": info.n_layers,
            "d_model": info.d_model, "d_mlp": info.d_mlp, "d_vocab": info.d_vocab, "n_heads": info.n_heads,
            "n_ctx": info.n_ctx, "info": {"prepend_bos": self.prepend_bos, "norms_folded": False},
        }], run_id=run_id)

    # ----- devices -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.weights.W_E.device

    # ----- validation ----------------------------------------------------------------------
    def check_layer(self, layer: int) -> int:
        """Return `layer` if valid (negative counts from the end); else a clear ValueError."""
        n = self.info.n_layers
        if not isinstance(layer, int) or not -n <= layer < n:
            raise ValueError(f"layer {layer!r} is out of range for {self.name}: valid layers are 0..{n - 1}")
        return layer % n

    def check_site(self, site: str) -> str:
        """Return `site` if it is a hook name of this model; else a ValueError with examples."""
        if site not in self._hook_names:
            try:
                layer = layer_of(site)
            except ValueError:  # not a hook name at all: the message below names the valid ones
                layer = None
            if layer is not None:
                self.check_layer(layer)
            examples = ", ".join(self.sites(0).all()[:4])
            raise ValueError(f"unknown site {site!r} for {self.name}; standard sites look like: {examples}")
        return site

    def site_dim(self, site: str) -> int:
        """Size of the last axis of the activation at `site` (per head sites excluded)."""
        self.check_site(site)
        if site.endswith(("mlp.hook_post", "mlp.hook_pre", "mlp.hook_pre_linear")):
            return self.info.d_mlp
        if site == "hook_unembed" or site.endswith("unembed.hook_out"):
            return self.info.d_vocab
        return self.info.d_model

    def check_index(self, site: str, index: int) -> int:
        """Return `index` if it is a valid unit of `site`; else a ValueError naming the range."""
        dim = self.site_dim(site)
        if not isinstance(index, int) or not 0 <= index < dim:
            raise ValueError(f"index {index!r} is out of range for {site} of {self.name}: valid 0..{dim - 1}")
        return index

    # ----- sites -----------------------------------------------------------------------------
    def sites(self, layer: int) -> LayerSites:
        """The standard hook names of block `layer`."""
        return layer_sites(self.check_layer(layer), self.info.parallel_attn_mlp)

    embed_site = EMBED
    final_resid_site = FINAL_RESID
    final_normalized_site = FINAL_NORMALIZED

    # ----- tokenisation -------------------------------------------------------------------
    def _bos(self, prepend_bos: bool | None) -> bool:
        return self.prepend_bos if prepend_bos is None else prepend_bos

    def _encode(self, text: str, prepend_bos: bool | None) -> list[int]:
        if not isinstance(text, str) or not text:
            raise ValueError(f"prompt must be a non-empty string, got {text!r}")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self._bos(prepend_bos):
            ids = [self.info.bos_token_id] + ids
        if len(ids) > self.info.n_ctx:
            raise ValueError(
                f"prompt is {len(ids)} tokens long but {self.name} has a context of {self.info.n_ctx} tokens"
            )
        return ids

    def tokenize(self, texts: str | Sequence[str], prepend_bos: bool | None = None) -> Tokenized:
        """Tokenise one string or a batch (right-padded)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("tokenize needs at least one prompt, got an empty list")
        rows = [self._encode(t, prepend_bos) for t in texts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        tokens = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return Tokenized(tokens.to(self.device), torch.tensor([len(r) for r in rows]))

    def to_tokens(self, texts: str | Sequence[str], prepend_bos: bool | None = None) -> torch.Tensor:
        """(batch, pos) token ids."""
        return self.tokenize(texts, prepend_bos).tokens

    def to_str_tokens(self, text_or_tokens, prepend_bos: bool | None = None) -> list[str]:
        """The string of each token (of a string, or of a 1-D token tensor/list)."""
        if isinstance(text_or_tokens, str):
            ids = self._encode(text_or_tokens, prepend_bos)
        else:
            ids = [int(t) for t in torch.as_tensor(text_or_tokens).reshape(-1)]
        return [self.tokenizer.decode([i]) for i in ids]

    def decode(self, tokens) -> str:
        return self.tokenizer.decode([int(t) for t in torch.as_tensor(tokens).reshape(-1)])

    def vocab_strings(self) -> np.ndarray:
        """(d_vocab,) object array: the decoded string of every token id, as `decode` gives it (cached)."""
        if self._vocab_strings is None:
            ids = [[i] for i in range(self.info.d_vocab)]
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is not None and not getattr(self.tokenizer, "clean_up_tokenization_spaces", False):
                # The Rust tokenizer decodes the whole vocabulary in a batch; `batch_decode` converts
                # every id list to Python objects first (~10x slower).
                strings = backend.decode_batch(ids, skip_special_tokens=False)
            else:
                strings = self.tokenizer.batch_decode(ids)
            self._vocab_strings = np.array(strings, dtype=object)
        return self._vocab_strings

    def token_id(self, token: str) -> int:
        """The id of `token` if it is exactly one token; else a ValueError showing its split."""
        ids = self.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            pieces = [self.tokenizer.decode([i]) for i in ids]
            raise ValueError(
                f"{token!r} is not a single token of {self.name}: it tokenises as {pieces!r} "
                "(mind the leading space, e.g. ' she')"
            )
        return ids[0]

    # ----- forward passes -------------------------------------------------------------------
    def _as_tokens(self, tokens) -> torch.Tensor:
        if isinstance(tokens, (str, list, tuple)) and (not tokens or isinstance(tokens[0] if not isinstance(tokens, str) else "", str)):
            return self.to_tokens(tokens)
        tokens = torch.as_tensor(tokens, device=self.device)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.shape[-1] == 0:
            raise ValueError("empty token sequence: nothing to run")
        if tokens.shape[-1] > self.info.n_ctx:
            raise ValueError(f"sequence of {tokens.shape[-1]} tokens exceeds the context of {self.info.n_ctx}")
        return tokens

    def run(
        self,
        tokens,
        names: Iterable[str] = (),
        *,
        stop_at_layer: int | None = None,
        interventions: Sequence[Intervention] = (),
        keep_grad: bool = False,
        last_position: bool = False,
    ) -> RunOutput:
        """One forward pass caching only `names`.

        Args:
            tokens: (batch, pos) ids, a 1-D id tensor, a string or a list of strings.
            names: hook names to cache.
            stop_at_layer: stop before block `stop_at_layer` (output is then the residual stream).
            interventions: applied during this call only.
            keep_grad: run with autograd on and keep cached tensors in the graph (for
                gradient-based methods); otherwise the pass runs under ``torch.no_grad``.
            last_position: only the last position goes through the unembedding (logits
                (batch, 1, d_vocab)): for next-token methods, which spare the unembedding of
                every other position (a fifth of SmolLM2's forward at 15 tokens). Every other
                site keeps all positions.
        """
        tokens = self._as_tokens(tokens)
        names = [self.check_site(n) for n in names]
        if stop_at_layer is not None and not 0 < stop_at_layer <= self.info.n_layers:
            raise ValueError(f"stop_at_layer {stop_at_layer} out of range: valid 1..{self.info.n_layers}")
        if last_position and stop_at_layer is not None:
            raise ValueError("last_position applies to the logits; with stop_at_layer the output is the residual stream")
        cache: dict[str, torch.Tensor] = {}

        def make_store(name):
            def store(act, hook):
                cache[name] = act if keep_grad else act.detach()

            return store

        hooks = [(i.site, self._intervention_hook(i)) for i in interventions]
        if last_position:
            hooks.append((UNEMBED_IN, lambda act, hook: act[:, -1:]))
        hooks += [(n, make_store(n)) for n in names]
        # Without keep_grad no autograd graph is built: faster, and nothing holds activations.
        with torch.set_grad_enabled(keep_grad), self._hooks(hooks):
            if stop_at_layer == self.info.n_layers:
                output = self.bridge(tokens, return_type="logits")
            else:
                output = self.bridge(tokens, return_type="logits", stop_at_layer=stop_at_layer)
        return RunOutput(output, cache)

    def logits(self, tokens, interventions: Sequence[Intervention] = (), keep_grad: bool = False) -> torch.Tensor:
        """(batch, pos, d_vocab) logits."""
        return self.run(tokens, interventions=interventions, keep_grad=keep_grad).output

    # ----- interventions ---------------------------------------------------------------------
    def _intervention_hook(self, intervention: Intervention):
        self.check_site(intervention.site)
        return lambda act, hook: intervention.apply(act)

    @contextlib.contextmanager
    def _hooks(self, fwd_hooks, bwd_hooks=()):
        """Install hooks on cached hook points for one block; always removed.

        The bridge's own ``hooks()`` rebuilds its alias table once per hooked name (~30 ms per
        name on SmolLM2), which dominated runs caching many sites; the hook points never
        change after load, so they are looked up once (`self._hook_points`) and the hooks are
        added at a context level of their own, so hooks installed outside survive.
        """
        bridge = self.bridge
        level = bridge.context_level + 1
        added = []
        bridge.context_level = level
        try:
            for direction, hooks in (("fwd", fwd_hooks), ("bwd", bwd_hooks)):
                for name, fn in hooks:
                    point = self._hook_points[name]
                    point.add_hook(fn, dir=direction, level=level)
                    added.append((point, direction))
            yield
        finally:
            for point, direction in added:
                point.remove_hooks(dir=direction, level=level)
            bridge.context_level = level - 1

    @contextlib.contextmanager
    def intervene(self, *interventions: Intervention):
        """Apply `interventions` to every forward pass inside the block; always removed."""
        hooks = [(i.site, self._intervention_hook(i)) for i in interventions]
        with self._hooks(hooks):
            yield self

    def hooks(self, fwd_hooks: Sequence[tuple[str, object]] = (), bwd_hooks: Sequence[tuple[str, object]] = ()):
        """Raw scoped hooks ``(site, fn(act, hook) -> act | None)``; removed on exit."""
        for site, _ in list(fwd_hooks) + list(bwd_hooks):
            self.check_site(site)
        return self._hooks(list(fwd_hooks), list(bwd_hooks))
