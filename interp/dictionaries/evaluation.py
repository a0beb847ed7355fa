"""Evaluation of a trained dictionary on held-out tokens.

Metrics (Dunefsky et al. 2024 section 4; the SAELens / Gao et al. conventions):

1. L0 = mean number of active latents per token.
2. FVU = sum ||y_hat - y||^2 / sum ||y - mean(y)||^2 (relative to the *mean*: predicting
   the mean gives exactly 1); explained variance = 1 - FVU.
3. Spliced next-token cross-entropy: the model runs with the target site replaced by the
   reconstruction (a transcoder replaces the MLP output with its output on the MLP input;
   an SAE replaces its site with its reconstruction). Baselines: the clean CE, and the CE
   with the site zero-ablated and mean-ablated. Then::

       CE loss recovered = (CE_ablate - CE_spliced) / (CE_ablate - CE_clean)
       delta CE          = CE_spliced - CE_clean
       KL                = mean_pos KL(p_clean || p_spliced)

   The BOS position is never replaced (dictionaries are trained without it: its activations
   are outliers, see `interp.dictionaries.activations`); the same holds for the ablations.
4. Latent density = share of tokens on which a latent fires; dead = never fired on the
   evaluation tokens, dense = fires on more than `dense_threshold` of them; a histogram of
   log10 density.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from interp.dictionaries.dictionary import Dictionary
from interp.models.interventions import ReplaceActivation


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate a dictionary."""

    batch_size: int = 8
    """Token windows per forward pass."""
    dense_threshold: float = 0.1
    """A latent firing on more than this share of tokens is dense."""
    histogram_bins: int = 30
    """Bins of the log10-density histogram (from 1e-6 to 1)."""

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not 0 < self.dense_threshold <= 1:
            raise ValueError(f"dense_threshold must be in (0, 1], got {self.dense_threshold!r}")
        if self.histogram_bins < 1:
            raise ValueError(f"histogram_bins must be >= 1, got {self.histogram_bins!r}")


@dataclass
class DictionaryMetrics:
    """Everything `evaluate_dictionary` measures (all on held-out tokens)."""

    n_tokens: int
    l0: float
    fvu: float
    explained_variance: float
    ce_clean: float
    ce_spliced: float
    ce_zero_ablation: float
    ce_mean_ablation: float
    ce_recovered: float
    """Against zero ablation."""
    ce_recovered_mean: float
    """Against mean ablation."""
    delta_ce: float
    kl: float
    dead_fraction: float
    dense_fraction: float
    density_histogram: dict
    """{'log10_edges': [...], 'counts': [...], 'dead': n} over latents."""

    def to_dict(self) -> dict:
        return asdict(self)


def fvu(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of variance unexplained of y (n, d) by y_hat, relative to y's mean."""
    if y_hat.shape != y.shape or y.ndim != 2:
        raise ValueError(f"fvu needs two (n, d) tensors of one shape, got {tuple(y_hat.shape)} and {tuple(y.shape)}")
    denom = (y - y.mean(0)).pow(2).sum()
    if denom <= 0:
        raise ValueError("fvu is undefined for a constant target (zero variance)")
    return float((y_hat - y).pow(2).sum() / denom)


def density_histogram(density: torch.Tensor, bins: int = 30) -> dict:
    """Histogram of log10 latent density over (1e-6, 1]; dead latents counted apart."""
    alive = density[density > 0]
    counts = torch.histc(alive.clamp_min(1e-6).log10(), bins=bins, min=-6.0, max=0.0)
    edges = torch.linspace(-6.0, 0.0, bins + 1)
    return {"log10_edges": edges.tolist(), "counts": [int(c) for c in counts], "dead": int((density == 0).sum())}


def _next_token_ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(batch, pos-1) next-token cross-entropy."""
    logp = logits[:, :-1].float().log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)


def _kl(clean: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """(batch, pos) KL(p_clean || p_other)."""
    p = clean.float().log_softmax(-1)
    q = other.float().log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1)


def _splice(site: str, replacement: torch.Tensor) -> ReplaceActivation:
    """Replace every position but BOS at `site` with `replacement` (batch, pos-1, d)."""
    return ReplaceActivation(site, lambda act: torch.cat([act[:, :1], replacement.to(act.dtype)], 1))


@dataclass
class Baseline:
    """What every dictionary on the same sites and tokens shares: the clean pass (logits,
    activations) and the ablation CEs. Build once with `baseline`, pass to several
    `evaluate_dictionary` calls (a sweep then pays one extra forward pass per dictionary)."""

    tokens: torch.Tensor
    site_in: str
    site_out: str
    batches: list[dict]
    """Per batch of windows: tokens, clean logits, x and y (BOS dropped), CE sums."""


@torch.no_grad()
def baseline(adapter, tokens: torch.Tensor, site_in: str, site_out: str, config: EvalConfig = EvalConfig(),
             target_mean: torch.Tensor | None = None, progress: bool = False) -> Baseline:
    """Clean, zero-ablated and mean-ablated passes over windows `tokens` (n, ctx).

    `target_mean` (d_out,) is the mean-ablation value; by default the mean of `site_out` over
    `tokens`, from the clean passes themselves.
    """
    from tqdm.auto import tqdm

    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be (n_windows, ctx >= 2), got shape {tuple(tokens.shape)}")
    batches = []
    for start in tqdm(range(0, tokens.shape[0], config.batch_size), desc="clean passes", disable=not progress,
                      leave=False):
        batch = tokens[start:start + config.batch_size]
        run = adapter.run(batch, names=list(dict.fromkeys([site_in, site_out])))
        batches.append({"tokens": batch, "logits": run.output, "x": run.cache[site_in][:, 1:].float(),
                        "y": run.cache[site_out][:, 1:].float(),
                        "ce_clean": float(_next_token_ce(run.output, batch).sum())})
    if target_mean is None:
        target_mean = torch.cat([b["y"].reshape(-1, b["y"].shape[-1]) for b in batches]).mean(0)
    for b in tqdm(batches, desc="ablations", disable=not progress, leave=False):
        for key, value in (("ce_zero_ablation", torch.zeros_like(b["y"])),
                           ("ce_mean_ablation", target_mean.expand_as(b["y"]))):
            logits = adapter.logits(b["tokens"], interventions=[_splice(site_out, value)])
            b[key] = float(_next_token_ce(logits, b["tokens"]).sum())
    return Baseline(tokens, site_in, site_out, batches)


@torch.no_grad()
def evaluate_dictionary(adapter, dictionary: Dictionary, tokens: torch.Tensor | None, site_in: str, site_out: str,
                        config: EvalConfig = EvalConfig(), *, shared: Baseline | None = None,
                        progress: bool = False) -> DictionaryMetrics:
    """Evaluate `dictionary` (reading `site_in`, reconstructing `site_out`) on windows (n, ctx).

    `shared`: a `baseline` of the same sites (its tokens are used; `tokens` may be None).
    """
    if shared is None:
        shared = baseline(adapter, tokens, site_in, site_out, config, progress=progress)
    elif (shared.site_in, shared.site_out) != (site_in, site_out):
        raise ValueError(f"baseline is for {shared.site_in} -> {shared.site_out}, not {site_in} -> {site_out}")
    sums = dict(ce_clean=0.0, ce_spliced=0.0, ce_zero_ablation=0.0, ce_mean_ablation=0.0, kl=0.0, err=0.0, l0=0.0)
    fired = torch.zeros(dictionary.d_sae)
    n_pred = n_tokens = 0
    for b in shared.batches:
        x, y = b["x"], b["y"]  # (batch, pos-1, d)
        latents = dictionary.encode(x)  # (batch, pos-1, d_sae)
        y_hat = dictionary(x)
        fired += (latents > 0).reshape(-1, dictionary.d_sae).sum(0).float()
        sums["l0"] += float((latents > 0).sum())
        sums["err"] += float((y_hat - y).pow(2).sum())
        logits = adapter.logits(b["tokens"], interventions=[_splice(site_out, y_hat)])
        sums["ce_spliced"] += float(_next_token_ce(logits, b["tokens"]).sum())
        sums["kl"] += float(_kl(b["logits"][:, :-1], logits[:, :-1]).sum())
        for key in ("ce_clean", "ce_zero_ablation", "ce_mean_ablation"):
            sums[key] += b[key]
        n_pred += b["tokens"].shape[0] * (b["tokens"].shape[1] - 1)
        n_tokens += y.shape[0] * y.shape[1]
    y_all = torch.cat([b["y"].reshape(-1, b["y"].shape[-1]) for b in shared.batches])
    return _metrics(sums, y_all, n_tokens, n_pred, fired, config)


def _metrics(sums: dict, y: torch.Tensor, n_tokens: int, n_pred: int, fired: torch.Tensor,
             config: EvalConfig) -> DictionaryMetrics:
    ce = {k: sums[k] / n_pred for k in ("ce_clean", "ce_spliced", "ce_zero_ablation", "ce_mean_ablation")}
    fvu_value = sums["err"] / float((y - y.mean(0)).pow(2).sum().clamp_min(1e-12))
    density = fired / n_tokens

    def recovered(ablate: float) -> float:
        gap = ablate - ce["ce_clean"]
        return float("nan") if abs(gap) < 1e-9 else (ablate - ce["ce_spliced"]) / gap

    return DictionaryMetrics(
        n_tokens=n_tokens, l0=sums["l0"] / n_tokens, fvu=fvu_value, explained_variance=1 - fvu_value, **ce,
        ce_recovered=recovered(ce["ce_zero_ablation"]), ce_recovered_mean=recovered(ce["ce_mean_ablation"]),
        delta_ce=ce["ce_spliced"] - ce["ce_clean"], kl=sums["kl"] / n_pred,
        dead_fraction=float((density == 0).float().mean()),
        dense_fraction=float((density > config.dense_threshold).float().mean()),
        density_histogram=density_histogram(density, config.histogram_bins),
    )
