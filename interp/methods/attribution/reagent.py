"""ReAGent: recursive attribution generator (Zhao & Shan, 2024).

"ReAGent: A Model-agnostic Feature Attribution Method for Generative Language Models",
AAAI ReLM workshop 2024 (arXiv:2402.00794). No gradients and no internals: the model is only
run on perturbed copies of the input.

For one target value ``v(x)`` at the last position (by default ``p(y | x)`` of the next token
y; see `interp.methods.attribution.targets`) and an input x of T tokens, A of them attributable
(special tokens such as BOS are never replaced and get importance 0):

1. Initialise logit-scale importances ``s ~ Uniform(0, 1)^T`` for each of P probes (seeded).
2. Each step every probe draws a random subset R of ``round(replacing_ratio * A)`` attributable
   positions and replaces them with samples of a token replacer (`interp.methods.attribution.replacers`),
   giving x~. With ``delta = v(x) - v(x~)`` (for unbounded targets such as a neuron, divided
   by ``|v(x)|`` and clipped to [-1, 1]):

       s_i += logit((delta + 1) / 2)   for i in R
       s_i -= logit((delta + 1) / 2)   for i not in R

   A replaced token whose removal lowers the target gains importance; the kept ones lose it.
3. Stopping condition, after every update: keep the ``keep_top_n`` most important tokens of the
   probe (or ``keep_top_ratio`` of A), replace all other attributable ones; the probe has
   converged when the target is still retained - for a token, y is still among the model's
   top-``top_k`` predictions (``k = max(top_k, rank of y in the original + 1)``, so a user-named
   token the model does not rank in its top k can still converge). With ``keep >= A`` nothing is
   replaced and every probe converges after its first update (``extra["stop_keeps_all"]``):
   the stopping rule says nothing on prompts that short.
4. Converged probes stop updating. After all converged or ``max_probe_steps``, the importance
   of a probe is ``softmax(s)`` over its attributable tokens; the result is the mean over the
   converged probes, or over all probes with a warning when none converged.

Batching: the P probes run as one batch, and each step's single forward pass holds both the
replaced inputs of the still-running probes and the stopping-condition inputs for the
importances left by the previous step's update (so one pass per step, never 2P passes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from interp.methods.attribution.targets import AttributionResult, Target, check_tokens, evaluate, resolve_target, special_mask
from interp.methods.attribution.replacers import REPLACERS, Replacer, make_replacer, sample_replacements


IMPORTANCE = ("softmax", "minmax")


@dataclass(frozen=True)
class ReagentConfig:
    """Settings of `reagent` (defaults: the paper's)."""

    replacing_ratio: float = 0.3
    """Fraction of the attributable tokens replaced per step, in (0, 1]."""
    keep_top_n: int = 5
    """Stopping condition: number of most important tokens kept (others replaced)."""
    keep_top_ratio: float | None = None
    """If set, keep this fraction of the attributable tokens instead of `keep_top_n`."""
    top_k: int = 3
    """Stopping condition: the target token must stay within the top-k predictions."""
    num_probes: int = 16
    """Independent probes, run together as one batch."""
    max_probe_steps: int = 3000
    """Cap on update steps per probe."""
    importance: str = "softmax"
    """How a probe's logit-scale scores s become importances: 'softmax' (the spec's default) or
    'minmax' (s rescaled to [0, 1]: same ranking, graded rather than peaked)."""
    replacer: str = "uniform"
    """Token replacer when none is passed: one of uniform, frequency, prediction, masked_lm."""
    seed: int = 0
    """Seeds the initial importances, the replaced subsets and the replacement draws."""

    def __post_init__(self) -> None:
        if not 0 < self.replacing_ratio <= 1:
            raise ValueError(f"replacing_ratio must be in (0, 1], got {self.replacing_ratio}")
        if self.keep_top_n < 1:
            raise ValueError(f"keep_top_n must be >= 1, got {self.keep_top_n}")
        if self.keep_top_ratio is not None and not 0 < self.keep_top_ratio <= 1:
            raise ValueError(f"keep_top_ratio must be in (0, 1] or None, got {self.keep_top_ratio}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.num_probes < 1:
            raise ValueError(f"num_probes must be >= 1, got {self.num_probes}")
        if self.max_probe_steps < 1:
            raise ValueError(f"max_probe_steps must be >= 1, got {self.max_probe_steps}")
        if self.importance not in IMPORTANCE:
            raise ValueError(f"unknown importance {self.importance!r}; valid: {', '.join(IMPORTANCE)}")
        if self.replacer not in REPLACERS:
            raise ValueError(f"unknown replacer {self.replacer!r}; valid: {', '.join(REPLACERS)}")


def _random_subsets(attributable: torch.Tensor, n_rows: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(n_rows, pos) bool masks, each with `size` attributable positions chosen uniformly."""
    noise = torch.rand(n_rows, attributable.numel(), generator=gen).to(attributable.device)
    noise = noise.masked_fill(~attributable, -1.0)
    chosen = noise.topk(size, dim=-1).indices
    return torch.zeros_like(noise, dtype=torch.bool).scatter_(1, chosen, True)


def _stop_masks(scores: torch.Tensor, attributable: torch.Tensor, keep: int) -> torch.Tensor:
    """(rows, pos) bool: attributable positions outside each row's top-`keep` scores."""
    ranked = scores.masked_fill(~attributable, -math.inf)
    kept = torch.zeros_like(ranked, dtype=torch.bool).scatter_(1, ranked.topk(keep, dim=-1).indices, True)
    return attributable & ~kept


def _delta_logit(target: Target, v0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    delta = v0 - v
    if not target.bounded:
        delta = delta / v0.abs().clamp_min(1e-6)
    delta = delta.clamp(-1 + 1e-6, 1 - 1e-6)
    return torch.logit((delta + 1) / 2)


def _effective_top_k(target: Target, logits0: torch.Tensor, top_k: int) -> int:
    token_id = getattr(target, "token_id", None)
    if token_id is None:
        return top_k
    last = logits0[0, -1]
    rank = int((last > last[token_id]).sum())
    return max(top_k, rank + 1)


@dataclass
class _Probes:
    scores: torch.Tensor  # (P, pos) logit-scale importances
    converged: torch.Tensor  # (P,) bool
    steps: torch.Tensor  # (P,) updates applied


def _run_probes(adapter, tokens, target: Target, probs, config: ReagentConfig, gen) -> _Probes:
    attributable = ~special_mask(adapter, tokens)
    n_attr = int(attributable.sum())
    n_replace = max(1, round(config.replacing_ratio * n_attr))
    keep = config.keep_top_n if config.keep_top_ratio is None else max(1, round(config.keep_top_ratio * n_attr))
    keep = min(keep, n_attr)
    v0, logits0, _ = evaluate(adapter, target, tokens[None])
    top_k = _effective_top_k(target, logits0, config.top_k)
    P = config.num_probes
    state = _Probes(torch.rand(P, tokens.numel(), generator=gen).to(tokens.device),
                    torch.zeros(P, dtype=torch.bool, device=tokens.device),
                    torch.zeros(P, dtype=torch.long, device=tokens.device))
    for step in range(config.max_probe_steps + 1):
        active = (~state.converged).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        rows, n_upd = [], active.numel() if step < config.max_probe_steps else 0
        if n_upd:
            subsets = _random_subsets(attributable, n_upd, n_replace, gen)
            rows.append(sample_replacements(probs, tokens, subsets, gen))
        if step > 0:  # check the importances the previous step's update produced
            rows.append(sample_replacements(probs, tokens, _stop_masks(state.scores[active], attributable, keep), gen))
        # One forward pass: (n_upd + n_check, pos)
        v, logits, cache = evaluate(adapter, target, torch.cat(rows))
        done = torch.zeros_like(active, dtype=torch.bool)
        if step > 0:
            check = slice(n_upd, None)
            done = target.retained(None if logits is None else logits[check], {k: a[check] for k, a in cache.items()},
                                   v0, top_k)
            state.converged[active[done]] = True
        if n_upd:
            update = _delta_logit(target, v0, v[:n_upd])[:, None]  # (n_upd, 1)
            step_scores = torch.where(subsets, update, -update) * attributable
            live = ~done
            state.scores[active[live]] += step_scores[live]
            state.steps[active[live]] += 1
    return state


def aggregate_probes(scores: torch.Tensor, converged: torch.Tensor, attributable: torch.Tensor,
                     importance: str = "softmax") -> torch.Tensor:
    """(P, pos) logit-scale probe scores -> (pos,) importances: mean over converged probes
    (over all when none converged) of softmax(s) or min-max(s) over the attributable tokens."""
    attributable = attributable.to(scores.device)
    if importance == "softmax":
        per_probe = torch.softmax(scores.masked_fill(~attributable, -math.inf), dim=-1)
    elif importance == "minmax":
        lo = scores.masked_fill(~attributable, math.inf).min(-1, keepdim=True).values
        hi = scores.masked_fill(~attributable, -math.inf).max(-1, keepdim=True).values
        per_probe = ((scores - lo) / (hi - lo).clamp_min(1e-12)) * attributable
    else:
        raise ValueError(f"unknown importance {importance!r}; valid: {', '.join(IMPORTANCE)}")
    chosen = per_probe[converged] if converged.any() else per_probe
    return chosen.mean(0)


def reagent(adapter, tokens, target=None, config: ReagentConfig = ReagentConfig(),
            replacer: Replacer | None = None) -> AttributionResult:
    """ReAGent importances of the input tokens for `target`.

    Args:
        adapter: a `ModelAdapter`.
        tokens: a prompt string or (pos,) token ids (BOS included if wanted).
        target: None (the model's next token), a token string/id, or a Target.
        config: `ReagentConfig`.
        replacer: a replacer object; default `make_replacer(config.replacer, adapter)`.
    Returns:
        `AttributionResult` with scores (pos,) summing to 1 over the attributable tokens.
    """
    tokens = check_tokens(adapter, tokens)
    target = resolve_target(adapter, tokens, target)
    replacer = replacer if replacer is not None else make_replacer(config.replacer, adapter)
    probs = replacer.distribution(adapter, tokens)
    gen = torch.Generator().manual_seed(config.seed)
    probs_cpu = probs.cpu()  # sampling with a CPU generator keeps runs reproducible across devices
    state = _run_probes(adapter, tokens, target, probs_cpu, config, gen)
    attributable = ~special_mask(adapter, tokens)
    n_conv = int(state.converged.sum())
    n_attr = int(attributable.sum())
    keep = config.keep_top_n if config.keep_top_ratio is None else max(1, round(config.keep_top_ratio * n_attr))
    if not n_conv:
        warnings.warn(f"ReAGent: none of {config.num_probes} probes converged within {config.max_probe_steps} "
                      "steps; averaging all probes (consider more steps, a larger keep_top_n or a larger top_k)",
                      RuntimeWarning, stacklevel=2)
    scores = aggregate_probes(state.scores, state.converged, attributable, config.importance)
    return AttributionResult(
        tokens=adapter.to_str_tokens(tokens), token_ids=tokens.cpu(), scores=scores.cpu(), method="reagent",
        target=target.label,
        extra={"converged_probes": n_conv, "stop_keeps_all": keep >= n_attr, "probe_scores": state.scores.cpu().tolist(),
               "converged": state.converged.cpu().tolist(), "num_probes": config.num_probes, "steps": state.steps.tolist(),
               "replacer": getattr(replacer, "name", type(replacer).__name__), **config.__dict__},
    )
