"""Verifying decoded neurons by clamping: does forcing the neuron on promote its token?

Davies et al., "Decoding specialised feature neurons in LLMs with the final projection
layer": a neuron whose weights decode to a token ("dog") is confirmed causally by clamping
its activation and watching the token's probability (and the model's generations) move.

Algorithm, for neuron i of layer l with decoded top token t (`interp.methods.neurons.decoding`):

1. Clean run on the prompt: ``p0 = softmax(logits[last])[t]``.
2. Dose-response: for each value v of a sweep, set the neuron's post-activation
   (``adapter.sites(l).mlp_hidden``, index i) to v at every position (or only the last) and
   record ``p_v = softmax(logits[last])[t]``.
3. Controls: ``n_controls`` other neurons of the same layer, drawn at random (seeded by the
   neuron), clamped to the same values: ``p_v^(j)``. The neuron "beats the controls" when
   its rise ``p_v - p0`` at the largest value exceeds the controls' mean rise (and, the
   stricter reading, every control's rise). Significance: a one-sided permutation (rank)
   test of the neuron's rise against the controls' rises, ``p = (1 + #{controls with rise
   >= the neuron's}) / (n_controls + 1)``; the verdict is claimed only when p < `ALPHA`
   (which takes at least `MIN_CONTROLS` = 20 controls: with n controls p >= 1/(n+1)).
4. Side effect: ``KL(p_clean || p_clamped)`` of the next-token distribution at the last
   position of a few neutral prompts, averaged, per value.
5. Optionally a greedy generation with the clamp at the largest value (the paper's "always
   talks about dogs"), by repeated forward passes - fine for short continuations.
6. Report over a sample of strongly specialised neurons: the fraction that beat their
   controls.

All clamps of one sweep run as one batch: row r of the batch clamps unit ``u_r`` to
``v_r`` (a `ReplaceActivation` at the neuron site), which equals one `ClampUnit` run per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp.models import ClampUnit, ReplaceActivation, Tokenized

POSITIONS = ("all", "last")
NEUTRAL_PROMPTS = (
    "The weather today is",
    "She opened the door and",
    "In the morning, the",
    "The results of the study",
)


@dataclass(frozen=True)
class ClampConfig:
    """How to clamp and what to compare against."""

    values: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 40.0)
    """Clamp values of the dose-response sweep; the largest is used for controls' verdict and generation."""
    n_controls: int = 8
    """Random neurons of the same layer clamped the same way."""
    positions: str = "all"
    """'all' positions or only the 'last' one."""
    neutral_prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    """Prompts for the KL side effect (empty: skip)."""
    generate_tokens: int = 0
    """Greedy tokens to generate with the clamp at the largest value (0: none)."""
    seed: int = 0
    """Seed of the control draw (combined with the neuron's layer and index)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        object.__setattr__(self, "neutral_prompts", tuple(self.neutral_prompts))
        if not self.values:
            raise ValueError("values must hold at least one clamp value")
        if self.positions not in POSITIONS:
            raise ValueError(f"unknown positions {self.positions!r}; valid: {', '.join(POSITIONS)}")
        if not isinstance(self.n_controls, int) or self.n_controls < 0:
            raise ValueError(f"n_controls must be an integer >= 0, got {self.n_controls!r}")
        if not isinstance(self.generate_tokens, int) or self.generate_tokens < 0:
            raise ValueError(f"generate_tokens must be an integer >= 0, got {self.generate_tokens!r}")


ALPHA = 0.05
"""Significance level of the permutation test against the controls."""
MIN_CONTROLS = int(np.floor(1 / ALPHA - 1)) + 1
"""The fewest controls for which the smallest p, 1 / (n + 1), is below ALPHA (20 for 0.05)."""


@dataclass(frozen=True)
class ClampResult:
    """Dose-response of one neuron on one prompt."""

    layer: int
    index: int
    target_id: int
    prompt: str
    values: np.ndarray
    """(n_values,) clamp values."""
    baseline_prob: float
    """p0: the target's probability without a clamp."""
    target_probs: np.ndarray
    """(n_values,) the target's probability with the neuron clamped."""
    control_indices: np.ndarray
    """(n_controls,) the control neurons."""
    control_probs: np.ndarray
    """(n_controls, n_values) the target's probability with each control clamped."""
    kl: np.ndarray
    """(n_values,) mean KL(clean || clamped) on the neutral prompts (nats; NaN without prompts)."""
    generation: str | None = None
    baseline_generation: str | None = None

    @property
    def rise(self) -> float:
        """p_v - p0 at the largest clamp value."""
        return float(self.target_probs[int(np.argmax(self.values))] - self.baseline_prob)

    @property
    def control_rises(self) -> np.ndarray:
        return self.control_probs[:, int(np.argmax(self.values))] - self.baseline_prob

    @property
    def beats_mean(self) -> bool:
        return bool(self.rise > (self.control_rises.mean() if len(self.control_rises) else 0.0))

    @property
    def beats_all(self) -> bool:
        return bool(self.rise > (self.control_rises.max() if len(self.control_rises) else 0.0))

    @property
    def p_value(self) -> float:
        """One-sided permutation (rank) test: (1 + #controls rising at least as much) / (n + 1); NaN without controls."""
        n = len(self.control_rises)
        if not n:
            return float("nan")
        return float((1 + int(np.sum(self.control_rises >= self.rise))) / (n + 1))

    @property
    def significant(self) -> bool:
        """The rise beats the random controls at p < ALPHA (`p_value`)."""
        return bool(self.p_value < ALPHA)

    def to_payload(self) -> dict:
        """A JSON-able record (for the store's results table)."""
        return {"layer": self.layer, "index": self.index, "target_id": self.target_id, "prompt": self.prompt,
                "values": self.values.tolist(), "baseline_prob": self.baseline_prob,
                "target_probs": self.target_probs.tolist(), "control_indices": self.control_indices.tolist(),
                "control_probs": self.control_probs.tolist(),
                "kl": [None if np.isnan(k) else k for k in self.kl.tolist()],
                "rise": self.rise, "beats_mean": self.beats_mean, "beats_all": self.beats_all,
                "p_value": None if np.isnan(self.p_value) else self.p_value, "significant": self.significant,
                "generation": self.generation, "baseline_generation": self.baseline_generation}


def rowwise_clamp(site: str, units: torch.Tensor, values: torch.Tensor, last: torch.Tensor | None
                  ) -> ReplaceActivation:
    """Clamp unit ``units[r]`` to ``values[r]`` in batch row r (units < 0: row untouched).

    `last`: (batch,) position to clamp per row, or None for every position.
    """
    def fn(act: torch.Tensor) -> torch.Tensor:  # act: (batch, pos, d_mlp)
        act = act.clone()
        rows = torch.nonzero(units >= 0).view(-1)
        vals = values[rows].to(act.device, act.dtype)  # (rows,); on the activations' device
        if last is None:
            pos = torch.arange(act.shape[1])
            act[rows[:, None], pos[None, :], units[rows][:, None]] = vals[:, None].expand(-1, act.shape[1])
        else:
            act[rows, last[rows], units[rows]] = vals
        return act

    return ReplaceActivation(site, fn)


def control_neurons(d_mlp: int, layer: int, index: int, n: int, seed: int = 0) -> np.ndarray:
    """`n` distinct random neurons of the layer other than `index` (reproducible per neuron)."""
    rng = np.random.default_rng([seed, layer, index])
    others = np.delete(np.arange(d_mlp), index)
    return np.sort(rng.choice(others, size=min(n, len(others)), replace=False))


def clamp_sweep(adapter, layer: int, index: int, prompt: str, target_id: int,
                config: ClampConfig = ClampConfig()) -> ClampResult:
    """Steps 1-5 for one neuron and prompt (`adapter`: ModelAdapter)."""
    layer = adapter.check_layer(layer)
    site = adapter.sites(layer).mlp_hidden
    adapter.check_index(site, index)
    if not 0 <= int(target_id) < adapter.info.d_vocab:
        raise ValueError(f"target token id {target_id} is out of range: valid 0..{adapter.info.d_vocab - 1}")
    values = np.array(config.values)
    controls = control_neurons(adapter.info.d_mlp, layer, index, config.n_controls, config.seed)
    tokens = adapter.to_tokens(prompt)  # (1, pos)
    baseline = adapter.logits(tokens)[0, -1].softmax(-1)[target_id].item()
    units = np.concatenate([[index], controls])  # rows: (unit, value) pairs, unit-major
    row_units = torch.tensor(np.repeat(units, len(values)), dtype=torch.long)
    row_values = torch.tensor(np.tile(values, len(units)), dtype=torch.float32)
    last = None if config.positions == "all" else torch.full((len(row_units),), tokens.shape[1] - 1)
    clamp = rowwise_clamp(site, row_units, row_values, last)
    logits = adapter.logits(tokens.expand(len(row_units), -1), interventions=[clamp])
    probs = logits[:, -1].softmax(-1)[:, target_id].view(len(units), len(values)).double().cpu().numpy()
    generation = baseline_generation = None
    if config.generate_tokens:
        top = ClampUnit(site, index, float(values.max()), None if config.positions == "all" else -1)
        generation = greedy_generate(adapter, prompt, config.generate_tokens, [top])
        baseline_generation = greedy_generate(adapter, prompt, config.generate_tokens, [])
    return ClampResult(layer, index, int(target_id), prompt, values, float(baseline), probs[0], controls,
                       probs[1:], neutral_kl(adapter, site, index, values, config), generation, baseline_generation)


def last_log_probs(adapter, batch, interventions=()) -> torch.Tensor:
    """(batch, d_vocab) next-token log-probabilities at each row's last real position of a
    right-padded `batch` (`Tokenized`), under `interventions` and whatever hooks are active."""
    last = batch.lengths.to(torch.long) - 1
    logits = adapter.logits(batch.tokens, interventions=list(interventions))
    return logits[torch.arange(batch.tokens.shape[0]), last].float().log_softmax(-1)


def kl_divergence(clean: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """(rows,) ``KL(p_clean || p_other)`` in nats of two (rows, d_vocab) log-probability tables."""
    return (clean.exp() * (clean - other)).sum(-1)


def neutral_kl(adapter, site: str, index: int, values: np.ndarray, config: ClampConfig) -> np.ndarray:
    """(n_values,) mean KL(clean || clamped) of the last-position distribution (step 4)."""
    if not config.neutral_prompts:
        return np.full(len(values), np.nan)
    batch = adapter.tokenize(list(config.neutral_prompts))
    n = batch.tokens.shape[0]
    clean = last_log_probs(adapter, batch)  # (n, vocab)
    rows = Tokenized(batch.tokens.repeat(len(values), 1), batch.lengths.repeat(len(values)))  # value-major
    row_last = rows.lengths.to(torch.long) - 1
    row_values = torch.tensor(np.repeat(values, n), dtype=torch.float32)
    units = torch.full((len(row_values),), index, dtype=torch.long)
    clamp = rowwise_clamp(site, units, row_values, None if config.positions == "all" else row_last)
    kl = kl_divergence(clean.repeat(len(values), 1), last_log_probs(adapter, rows, [clamp]))
    return kl.view(len(values), n).mean(1).double().cpu().numpy()


def greedy_generate(adapter, prompt: str, n_tokens: int, interventions=()) -> str:
    """Greedy continuation of `prompt` by repeated forward passes (short outputs only)."""
    tokens = adapter.to_tokens(prompt)
    start = tokens.shape[1]
    for _ in range(n_tokens):
        if tokens.shape[1] >= adapter.info.n_ctx:
            break
        nxt = adapter.logits(tokens, interventions=list(interventions))[0, -1].argmax()
        tokens = torch.cat([tokens, nxt.view(1, 1)], dim=1)
    return adapter.decode(tokens[0, start:])


@dataclass(frozen=True)
class ClampReport:
    """Step 6: how many sampled neurons beat their random controls."""

    results: tuple[ClampResult, ...]
    """Every (neuron, prompt) sweep."""

    def table(self):
        """One row per neuron: mean rise over prompts vs the controls' mean / max mean rise."""
        import pandas as pd

        rows = {}
        for r in self.results:
            rows.setdefault((r.layer, r.index, r.target_id), []).append(r)
        out = []
        for (layer, index, target), rs in rows.items():
            rise = float(np.mean([r.rise for r in rs]))
            controls = np.mean([r.control_rises for r in rs], axis=0)
            mean_c = float(controls.mean()) if controls.size else 0.0
            max_c = float(controls.max()) if controls.size else 0.0
            p = float((1 + int(np.sum(controls >= rise))) / (controls.size + 1)) if controls.size else float("nan")
            out.append({"layer": layer, "index": index, "target_id": target, "rise": rise,
                        "control_mean_rise": mean_c, "control_max_rise": max_c,
                        "beats_mean": rise > mean_c, "beats_all": rise > max_c,
                        "p_value": p, "significant": bool(p < ALPHA)})
        return pd.DataFrame(out)

    @property
    def fraction_beats_mean(self) -> float:
        t = self.table()
        return float(t["beats_mean"].mean()) if len(t) else float("nan")

    @property
    def fraction_significant(self) -> float:
        """Share of neurons whose mean rise beats their controls' at p < ALPHA (permutation test)."""
        t = self.table()
        return float(t["significant"].mean()) if len(t) else float("nan")

    @property
    def fraction_beats_all(self) -> float:
        t = self.table()
        return float(t["beats_all"].mean()) if len(t) else float("nan")


def clamp_report(adapter, neurons, prompts, config: ClampConfig = ClampConfig()) -> ClampReport:
    """Sweep each (layer, index, target_id) in `neurons` on each prompt (step 6)."""
    if not prompts:
        raise ValueError("clamp_report needs at least one prompt")
    return ClampReport(tuple(clamp_sweep(adapter, layer, index, prompt, target, config)
                             for layer, index, target in neurons for prompt in prompts))
