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

   The first `EvalConfig.skip` positions are never replaced (dictionaries are trained without
   them: BOS and, on SmolLM2, the token after it are outliers, see
   `interp.dictionaries.activations`); the same holds for the ablations, and CE and KL are
   averaged over the predictions made at the replaced positions only. KL is computed on the
   clean distribution's top `kl_top` tokens plus one bucket for the rest of the vocabulary (a
   lower bound of the full KL by the log-sum inequality; it keeps a 10k-token evaluation from
   holding 10k x vocab clean logits).
4. Latent density = share of tokens on which a latent fires; dead = never fired on the
   evaluation tokens, dense = fires on more than `dense_threshold` of them; a histogram of
   log10 density.
5. 95% intervals: every sum above is kept per window, and `bootstrap` resamples of the
   windows (with replacement) recompute each metric as a ratio of resampled sums; the interval
   is the 2.5-97.5 percentile range. The dead share is a count of latents never seen firing,
   and a resample holds fewer distinct windows (about 63%), so its bootstrap distribution
   sits wholly above the point value; its interval is shifted by the bootstrap's estimated
   bias (mean of the resamples minus the point value), the usual bias-corrected percentile
   interval, so that it brackets the value the evaluation measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    skip: int = 1
    """Leading positions left unspliced and unscored (1 = BOS; the jobs use `ARTEFACT_POSITIONS`)."""
    kl_top: int = 256
    """Clean top tokens kept for the KL (the rest of the vocabulary is one bucket)."""
    bootstrap: int = 1000
    """Window resamples behind the 95% intervals (0 = none)."""
    seed: int = 0
    """Seed of the bootstrap."""

    def __post_init__(self) -> None:
        if not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError(f"skip must be an int >= 0, got {self.skip!r}")
        if self.kl_top < 1 or self.bootstrap < 0:
            raise ValueError(f"need kl_top >= 1 and bootstrap >= 0, got {self.kl_top}, {self.bootstrap}")
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
    """Evaluated (spliced) tokens."""
    n_windows: int
    """Windows they come from (the bootstrap's unit)."""
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
    intervals: dict = field(default_factory=dict)
    """{metric: [lo, hi]} 95% bootstrap intervals (over windows) of l0, fvu, ce_recovered,
    ce_recovered_mean, delta_ce, kl, dead_fraction."""

    def to_dict(self) -> dict:
        return asdict(self)


NO_FIT_FVU = 1.0
"""Held-out FVU at or above which a dictionary reconstructs its target no better than the
target's mean (a run that did not fit or diverged): its latents are not features to read."""


def fits(fvu: float) -> bool:
    """Whether a held-out FVU is below `NO_FIT_FVU`."""
    return fvu < NO_FIT_FVU


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


def _next_token_ce(logits: torch.Tensor, tokens: torch.Tensor, skip: int) -> torch.Tensor:
    """(batch,) summed next-token cross-entropy of the predictions made at positions >= skip."""
    logp = logits[:, skip:-1].float().log_softmax(-1)
    return -logp.gather(-1, tokens[:, skip + 1:, None]).squeeze(-1).sum(-1)


def _clean_top(logits: torch.Tensor, skip: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean log-probs of the top `k` tokens plus a last 'rest' bucket: (batch, pos', k + 1), indices."""
    logp = logits[:, skip:-1].float().log_softmax(-1)
    top, idx = logp.topk(min(k, logp.shape[-1]), dim=-1)
    rest = torch.log1p(-top.exp().sum(-1, keepdim=True).clamp(max=1 - 1e-7))
    return torch.cat([top, rest], -1), idx


def _kl(clean_top: torch.Tensor, idx: torch.Tensor, other: torch.Tensor, skip: int) -> torch.Tensor:
    """(batch,) summed KL(p_clean || p_other) over the clean top tokens plus the rest bucket."""
    q = other[:, skip:-1].float().log_softmax(-1)
    q_top = q.gather(-1, idx)
    q_rest = torch.log1p(-q_top.exp().sum(-1, keepdim=True).clamp(max=1 - 1e-7))
    q_all = torch.cat([q_top, q_rest], -1)
    return (clean_top.exp() * (clean_top - q_all)).sum(-1).clamp_min(0).sum(-1)


def _splice(site: str, replacement: torch.Tensor, skip: int) -> ReplaceActivation:
    """Replace every position from `skip` on at `site` with `replacement` (batch, pos - skip, d)."""
    return ReplaceActivation(site, lambda act: torch.cat([act[:, :skip], replacement.to(act.dtype)], 1))


@dataclass
class Baseline:
    """What every dictionary on the same sites and tokens shares: the clean pass (top clean
    log-probs, activations) and the ablation CEs. Build once with `baseline`, pass to several
    `evaluate_dictionary` calls (a sweep then pays one extra forward pass per dictionary)."""

    tokens: torch.Tensor
    site_in: str
    site_out: str
    batches: list[dict]
    """Per batch of windows: tokens, clean top log-probs, x and y (positions >= skip), and
    per-window CE sums (ce_clean, ce_zero_ablation, ce_mean_ablation), each (batch,)."""
    skip: int = 1


@torch.no_grad()
def baseline(adapter, tokens: torch.Tensor, site_in: str, site_out: str, config: EvalConfig = EvalConfig(),
             target_mean: torch.Tensor | None = None, progress: bool = False) -> Baseline:
    """Clean, zero-ablated and mean-ablated passes over windows `tokens` (n, ctx).

    `target_mean` (d_out,) is the mean-ablation value; by default the mean of `site_out` over
    `tokens` (positions >= skip), from the clean passes themselves.
    """
    from tqdm.auto import tqdm

    skip = config.skip
    if tokens.ndim != 2 or tokens.shape[1] < skip + 2:
        raise ValueError(f"tokens must be (n_windows, ctx >= {skip + 2}), got shape {tuple(tokens.shape)}")
    batches = []
    for start in tqdm(range(0, tokens.shape[0], config.batch_size), desc="clean passes", disable=not progress,
                      leave=False):
        batch = tokens[start:start + config.batch_size]
        run = adapter.run(batch, names=list(dict.fromkeys([site_in, site_out])))
        top, idx = _clean_top(run.output, skip, config.kl_top)
        batches.append({"tokens": batch, "clean_top": top, "clean_idx": idx,
                        "x": run.cache[site_in][:, skip:].float(), "y": run.cache[site_out][:, skip:].float(),
                        "ce_clean": _next_token_ce(run.output, batch, skip)})
    if target_mean is None:
        target_mean = torch.cat([b["y"].reshape(-1, b["y"].shape[-1]) for b in batches]).mean(0)
    for b in tqdm(batches, desc="ablations", disable=not progress, leave=False):
        for key, value in (("ce_zero_ablation", torch.zeros_like(b["y"])),
                           ("ce_mean_ablation", target_mean.expand_as(b["y"]))):
            logits = adapter.logits(b["tokens"], interventions=[_splice(site_out, value, skip)])
            b[key] = _next_token_ce(logits, b["tokens"], skip)
    return Baseline(tokens, site_in, site_out, batches, skip)


@torch.no_grad()
def evaluate_dictionary(adapter, dictionary: Dictionary, tokens: torch.Tensor | None, site_in: str, site_out: str,
                        config: EvalConfig = EvalConfig(), *, shared: Baseline | None = None,
                        progress: bool = False) -> DictionaryMetrics:
    """Evaluate `dictionary` (reading `site_in`, reconstructing `site_out`) on windows (n, ctx).

    `shared`: a `baseline` of the same sites (its tokens and skip are used; `tokens` may be None).
    """
    if shared is None:
        shared = baseline(adapter, tokens, site_in, site_out, config, progress=progress)
    elif (shared.site_in, shared.site_out) != (site_in, site_out):
        raise ValueError(f"baseline is for {shared.site_in} -> {shared.site_out}, not {site_in} -> {site_out}")
    per: dict[str, list[torch.Tensor]] = {k: [] for k in ("ce_clean", "ce_spliced", "ce_zero_ablation",
                                                          "ce_mean_ablation", "kl", "err", "l0", "y_sum", "y_sq",
                                                          "fired")}
    for b in shared.batches:
        x, y = b["x"], b["y"]  # (batch, pos - skip, d)
        latents = dictionary.encode(x)  # (batch, pos - skip, d_sae)
        y_hat = dictionary(x)
        logits = adapter.logits(b["tokens"], interventions=[_splice(site_out, y_hat, shared.skip)])
        per["ce_spliced"].append(_next_token_ce(logits, b["tokens"], shared.skip))
        per["kl"].append(_kl(b["clean_top"], b["clean_idx"], logits, shared.skip))
        per["fired"].append((latents > 0).sum(1).to(torch.int32))  # (batch, d_sae)
        per["l0"].append((latents > 0).sum((1, 2)).double())
        per["err"].append((y_hat - y).pow(2).sum((1, 2)).double())
        per["y_sum"].append(y.sum(1).double())
        per["y_sq"].append(y.pow(2).sum((1, 2)).double())
        for key in ("ce_clean", "ce_zero_ablation", "ce_mean_ablation"):
            per[key].append(b[key].double())
    w = {k: torch.cat(v) for k, v in per.items()}
    n_pos = shared.batches[0]["y"].shape[1]
    return _metrics(w, n_pos, config)


def _ratios(s: dict[str, torch.Tensor], n_tok: torch.Tensor, n_pred: torch.Tensor, config: EvalConfig):
    """Metric values from (resampled) sums; every tensor has a leading (replicates,) axis."""
    var = s["y_sq"] - s["y_sum"].pow(2).sum(-1) / n_tok
    ce = {k: s[k] / n_pred for k in ("ce_clean", "ce_spliced", "ce_zero_ablation", "ce_mean_ablation")}

    def recovered(ablate):
        gap = ablate - ce["ce_clean"]
        return torch.where(gap.abs() < 1e-9, torch.full_like(gap, float("nan")), (ablate - ce["ce_spliced"]) / gap)

    density = s["fired"] / n_tok[..., None]
    return {"l0": s["l0"] / n_tok, "fvu": s["err"] / var.clamp_min(1e-12), **ce,
            "ce_recovered": recovered(ce["ce_zero_ablation"]), "ce_recovered_mean": recovered(ce["ce_mean_ablation"]),
            "delta_ce": ce["ce_spliced"] - ce["ce_clean"], "kl": s["kl"] / n_pred,
            "dead_fraction": (density == 0).double().mean(-1),
            "dense_fraction": (density > config.dense_threshold).double().mean(-1)}, density


BIASED_METRICS = ("dead_fraction",)
"""Metrics whose window bootstrap is biased by construction (see step 5): intervals bias-corrected."""
INTERVAL_METRICS = ("l0", "fvu", "ce_recovered", "ce_recovered_mean", "delta_ce", "kl", "dead_fraction")


def _metrics(w: dict[str, torch.Tensor], n_pos: int, config: EvalConfig) -> DictionaryMetrics:
    """Point values and bootstrap intervals from per-window sums `w` (each (n_windows, ...))."""
    n_w = w["err"].shape[0]
    sums = {k: v.double().sum(0, keepdim=True) for k, v in w.items()}
    n_tok = torch.tensor([float(n_w * n_pos)], dtype=torch.float64)
    point, density = _ratios(sums, n_tok, n_tok - n_w, config)
    intervals = {}
    if config.bootstrap:
        g = torch.Generator().manual_seed(config.seed)
        picks = torch.randint(0, n_w, (config.bootstrap, n_w), generator=g)
        counts = torch.zeros(config.bootstrap, n_w, dtype=torch.float64).scatter_add_(
            1, picks, torch.ones_like(picks, dtype=torch.float64))  # (B, n_windows) resample weights
        res = {k: torch.einsum("bw,w...->b...", counts, v.double()) for k, v in w.items()}
        boot, _ = _ratios(res, torch.full((config.bootstrap,), float(n_w * n_pos), dtype=torch.float64),
                          torch.full((config.bootstrap,), float(n_w * (n_pos - 1)), dtype=torch.float64), config)
        for k in INTERVAL_METRICS:
            v = boot[k][~boot[k].isnan()]
            if len(v):
                shift = float(v.mean()) - float(point[k][0]) if k in BIASED_METRICS else 0.0
                intervals[k] = [float(v.quantile(0.025)) - shift, float(v.quantile(0.975)) - shift]
    values = {k: float(v[0]) for k, v in point.items()}
    return DictionaryMetrics(
        n_tokens=n_w * n_pos, n_windows=n_w, **values, explained_variance=1 - values["fvu"],
        density_histogram=density_histogram(density[0].float(), config.histogram_bins), intervals=intervals)
