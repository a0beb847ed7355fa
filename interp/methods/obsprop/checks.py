"""Checks of ObsProp's claims on real activations (Dunefsky & Cohan 2023, secs. 4-6).

1. Norm approximation (`norm_angles`): ObsProp takes a vector ``w`` back through a norm as
   ``P w`` (``w`` already carries the gain), dropping the data-dependent scalar. The exact
   gradient of ``w . normalize(x)`` w.r.t. the norm's input ``x`` is
   ``(P w - (xhat . w) xhat / d) / s(x)`` (``xhat = P x / s``); we report the cosine between
   the two, computed by autograd on real residual-stream activations.
2. Component ranking (`ablation_ranking`): the feature norm ``||y||`` of each head/MLP is
   compared with the actual change of the observable when the component's output is
   ablated (zero or mean over the prompts' positions), via Spearman rank correlation; the
   exact direct contribution ``out . v / s`` is reported beside it.
3. Coupling (`coupling_check`): ``C(y1, y2) = y1.y2 / ||y1||^2`` against the least-squares
   slope of real y2-scores on y1-scores (with r^2) over many inputs at the same site.
4. Data efficiency lives in `interp.methods.obsprop.efficiency`.

Every check keeps its sample size and a 95% interval (`interp.stats`): the t interval of the
mean cosine over token positions (positions treated as independent, so neighbouring tokens'
correlation makes it optimistic), Fisher-z intervals of the Spearman correlations over
components, and the t interval of the coupling slope from its standard error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from interp.methods.obsprop.propagation import Component, ObsPropResult, coupling, reference_inputs
from interp.models import ReplaceActivation

ABLATIONS = ("zero", "mean")


# ----------------------------------------------------------------------------- 1. norm angle
def norm_gradient_cosines(norm, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Cosine between ``P w`` and the exact gradient of ``w . normalize(x)`` per row of x (n, d)."""
    x = x.detach().to(w.dtype).clone().requires_grad_(True)
    with torch.enable_grad():
        exact = torch.autograd.grad((norm.normalize(x) @ w).sum(), x)[0]  # (n, d)
    approx = w - w.mean() if norm.kind == "layer" else w
    return torch.nn.functional.cosine_similarity(exact, approx[None].expand_as(exact), dim=-1)


@dataclass(frozen=True)
class NormAngles:
    """Cosines between propagated and exact-gradient directions, per norm."""

    table: pd.DataFrame
    """One row per (norm site, component): mean_cos, min_cos, std_cos, cos_lo, cos_hi (95% t
    interval of the mean), angle_deg, n."""

    @property
    def mean_cos(self) -> float:
        return float(np.average(self.table["mean_cos"], weights=self.table["n"]))

    @property
    def n(self) -> int:
        """Cosines behind `mean_cos` (token positions x rows)."""
        return int(self.table["n"].sum())

    @property
    def mean_cos_ci(self) -> tuple[float, float]:
        """95% t interval of `mean_cos` from the rows' pooled variance (all cosines as one sample)."""
        from scipy.stats import t

        n, m = self.table["n"].to_numpy(float), self.table["mean_cos"].to_numpy(float)
        std = self.table["std_cos"].to_numpy(float) if "std_cos" in self.table else np.full_like(m, np.nan)
        total, mean = n.sum(), self.mean_cos
        if total < 2:
            return (float("nan"), float("nan"))
        # Pooled sum of squares: within-row (n_i - 1) s_i^2 plus between-row n_i (m_i - mean)^2.
        ss = float(np.nansum((n - 1) * std ** 2) + np.sum(n * (m - mean) ** 2))
        half = float(t.ppf(0.975, total - 1) * np.sqrt(ss / (total - 1) / total))
        return (mean - half, mean + half)


def norm_angles(adapter, result: ObsPropResult, prompts, top: int = 10) -> NormAngles:
    """Cosines at the final norm and at the input norms of the `top` components by feature norm.

    `prompts`: strings or `Tokenized`; every real token position is used.
    """
    batch = prompts if hasattr(prompts, "lengths") else adapter.tokenize(list(prompts))
    comps = [Component.parse(c) for c in result.ranking().head(top)["component"]]
    resid = {c: (adapter.sites(c.layer).resid_pre if c.kind == "head" or adapter.info.parallel_attn_mlp
                 else adapter.sites(c.layer).resid_mid) for c in comps}
    names = sorted({adapter.final_resid_site, *resid.values()})
    cache = adapter.run(batch.tokens, names=names).cache
    mask = torch.arange(batch.tokens.shape[1])[None] < batch.lengths[:, None]  # real tokens only
    fn = adapter.weights.final_norm
    u = adapter.weights.W_U @ result.observable.vector.to(adapter.weights.W_U.dtype)
    rows = [_angle_row("final", adapter.final_resid_site, norm_gradient_cosines(fn, cache[adapter.final_resid_site][mask], fn.gain * u))]
    for c in comps:
        lw = adapter.weights.layer(c.layer)
        norm = lw.ln1 if c.kind == "head" else lw.ln2
        # The feature vector lives at the normalised site, so it is already the gain-weighted w.
        cos = norm_gradient_cosines(norm, cache[resid[c]][mask], result.vector(c).vector)
        rows.append(_angle_row(str(c), resid[c], cos))
    return NormAngles(pd.DataFrame(rows))


def _angle_row(component: str, site: str, cos: torch.Tensor) -> dict:
    from interp.stats import mean_interval

    values = cos.double().numpy()
    lo, hi = mean_interval(values)
    return {"component": component, "site": site, "mean_cos": float(values.mean()), "min_cos": float(values.min()),
            "std_cos": float(values.std(ddof=1)) if values.size > 1 else float("nan"), "cos_lo": lo, "cos_hi": hi,
            "angle_deg": float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).mean()), "n": int(cos.numel())}


# ----------------------------------------------------------------------------- 2. ablation ranking
@dataclass(frozen=True)
class AblationRanking:
    """Feature norms next to measured ablation effects."""

    table: pd.DataFrame
    """component, kind, layer, head, norm, direct (mean exact direct contribution), effect
    (mean change of the observable when ablated), abs_effect."""
    spearman_norm: float
    """Spearman rho between ||y|| and |ablation effect|."""
    spearman_direct: float
    """Spearman rho between |direct contribution| and |ablation effect|."""
    ablation: str
    spearman_heads: float = float("nan")
    """Spearman rho between ||y|| and |ablation effect| over the heads only (nan if < 3 heads)."""

    @property
    def n(self) -> int:
        """Components ranked (the sample size of the correlations)."""
        return len(self.table)

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """95% Fisher-z intervals of the three correlations (`interp.stats.spearman_interval`)."""
        from interp.stats import spearman_interval

        n_heads = int((self.table["kind"] == "head").sum())
        return {"spearman_norm": spearman_interval(self.spearman_norm, self.n),
                "spearman_direct": spearman_interval(self.spearman_direct, self.n),
                "spearman_heads": spearman_interval(self.spearman_heads, n_heads)}


def _last_index(batch):
    return torch.arange(batch.tokens.shape[0]), batch.lengths - 1


def _direct_contributions(adapter, result: ObsPropResult, batch) -> tuple[dict, torch.Tensor, dict]:
    """Mean direct contribution ``out_c . v / s`` per component at the last token, the clean
    observable values (p,), and per-layer mean activations for mean ablation."""
    info = adapter.info
    names = [adapter.final_resid_site]
    for l in range(info.n_layers):
        names += [adapter.sites(l).attn_z, adapter.sites(l).mlp_out]
    run = adapter.run(batch.tokens, names=names)
    rows, last = _last_index(batch)
    x = run.cache[adapter.final_resid_site][rows, last]  # (p, d_model)
    fn = adapter.weights.final_norm
    s = (x - x.mean(-1, keepdim=True) if fn.kind == "layer" else x).pow(2).mean(-1).add(fn.eps).sqrt()  # (p,)
    v = result.final
    direct, means = {}, {}
    mask = torch.arange(batch.tokens.shape[1])[None] < batch.lengths[:, None]
    for l in range(info.n_layers):
        sites = adapter.sites(l)
        z, mlp_out = run.cache[sites.attn_z], run.cache[sites.mlp_out]
        W_O = adapter.weights.layer(l).attn.W_O
        per_head = torch.einsum("phd,hdm,m->ph", z[rows, last], W_O, v) / s[:, None]  # (p, n_heads)
        for h in range(info.n_heads):
            direct[Component("head", l, h)] = float(per_head[:, h].mean())
        direct[Component("mlp", l)] = float(((mlp_out[rows, last] @ v) / s).mean())
        means[sites.attn_z], means[sites.mlp_out] = z[mask].mean(0), mlp_out[mask].mean(0)
    clean = result.observable.value(run.output[rows, last])
    return direct, clean, means


def _ablation_hooks(adapter, chunk: Sequence[Component], n_prompts: int, ablation: str, means: dict):
    """Interventions ablating component chunk[i] in rows i*p..(i+1)*p of a repeated batch."""
    hooks = []
    for layer in sorted({c.layer for c in chunk}):
        sites = adapter.sites(layer)
        head_mask = torch.ones(len(chunk) * n_prompts, adapter.info.n_heads)
        mlp_mask = torch.ones(len(chunk) * n_prompts)
        for i, c in enumerate(chunk):
            if c.layer == layer and c.kind == "head":
                head_mask[i * n_prompts:(i + 1) * n_prompts, c.head] = 0
            elif c.layer == layer:
                mlp_mask[i * n_prompts:(i + 1) * n_prompts] = 0

        def ablate_z(act, m=head_mask, mean=means[sites.attn_z]):  # act: (rows, pos, head, d_head)
            fill = torch.zeros_like(act) if ablation == "zero" else mean.expand_as(act)
            m = m[:, None, :, None].to(act.dtype)
            return act * m + fill * (1 - m)

        def ablate_mlp(act, m=mlp_mask, mean=means[sites.mlp_out]):  # act: (rows, pos, d_model)
            fill = torch.zeros_like(act) if ablation == "zero" else mean.expand_as(act)
            m = m[:, None, None].to(act.dtype)
            return act * m + fill * (1 - m)

        if (head_mask == 0).any():
            hooks.append(ReplaceActivation(sites.attn_z, ablate_z))
        if (mlp_mask == 0).any():
            hooks.append(ReplaceActivation(sites.mlp_out, ablate_mlp))
    return hooks


def ablation_ranking(adapter, result: ObsPropResult, prompts, components: Sequence | None = None,
                     ablation: str = "zero", max_tokens_per_pass: int = 4096, progress: bool = False) -> AblationRanking:
    """Ablate each head/MLP in turn on `prompts` and compare the observable's change with ||y||."""
    from scipy.stats import spearmanr

    if ablation not in ABLATIONS:
        raise ValueError(f"ablation {ablation!r} is not valid; valid: {', '.join(ABLATIONS)}")
    batch = prompts if hasattr(prompts, "lengths") else adapter.tokenize(list(prompts))
    ranking = result.ranking()
    comps = [Component.parse(c) for c in (components if components is not None else ranking["component"])]
    if len(comps) < 2:
        raise ValueError(f"ablation_ranking needs at least 2 components to rank, got {len(comps)}")
    direct, clean, means = _direct_contributions(adapter, result, batch)
    p, width = batch.tokens.shape
    per_pass = max(1, max_tokens_per_pass // (p * width))
    rows, last = _last_index(batch)
    effects = {}
    chunks = [comps[i:i + per_pass] for i in range(0, len(comps), per_pass)]
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="ablations", unit="pass")
    for chunk in chunks:
        tokens = batch.tokens.repeat(len(chunk), 1)  # (len(chunk) * p, pos): one block of rows per component
        out = adapter.logits(tokens, interventions=_ablation_hooks(adapter, chunk, p, ablation, means))
        values = result.observable.value(out[torch.arange(len(tokens)), last.repeat(len(chunk))])
        for i, c in enumerate(chunk):
            effects[c] = float((values[i * p:(i + 1) * p] - clean).mean())
    norms = {Component.parse(c): n for c, n in zip(ranking["component"], ranking["norm"])}
    table = pd.DataFrame([{"component": str(c), "kind": c.kind, "layer": c.layer, "head": c.head,
                           "norm": norms[c], "direct": direct[c], "effect": effects[c],
                           "abs_effect": abs(effects[c])} for c in comps])
    table = table.sort_values("norm", ascending=False, ignore_index=True)
    rho_norm = float(spearmanr(table["norm"], table["abs_effect"]).statistic)
    rho_direct = float(spearmanr(table["direct"].abs(), table["abs_effect"]).statistic)
    heads = table[table["kind"] == "head"]
    rho_heads = float(spearmanr(heads["norm"], heads["abs_effect"]).statistic) if len(heads) >= 3 else float("nan")
    return AblationRanking(table, rho_norm, rho_direct, ablation, rho_heads)


# ----------------------------------------------------------------------------- 3. coupling
@dataclass(frozen=True)
class CouplingCheck:
    """Predicted coupling against the fitted slope of real scores."""

    predicted: float
    slope: float
    intercept: float
    r2: float
    n: int
    scores: np.ndarray
    """(n, 2) the y1- and y2-scores the fit used."""
    slope_ci: tuple[float, float] = (float("nan"), float("nan"))
    """95% t interval of the slope (from the fit's standard error, n - 2 degrees of freedom)."""


def coupling_check(y1: torch.Tensor, y2: torch.Tensor, acts: torch.Tensor) -> CouplingCheck:
    """Fit y2-scores on y1-scores over `acts` (n, d) and compare the slope with C(y1, y2)."""
    from scipy.stats import linregress

    if acts.ndim != 2 or acts.shape[0] < 3:
        raise ValueError(f"coupling_check needs activations of shape (n >= 3, d), got {tuple(acts.shape)}")
    s1 = (acts @ y1.to(acts.dtype)).double().numpy()
    s2 = (acts @ y2.to(acts.dtype)).double().numpy()
    from interp.stats import slope_interval

    fit = linregress(s1, s2)
    return CouplingCheck(coupling(y1, y2), float(fit.slope), float(fit.intercept), float(fit.rvalue ** 2),
                         len(s1), np.stack([s1, s2], 1), slope_interval(float(fit.slope), float(fit.stderr), len(s1)))


def site_activations(adapter, prompts, site: str, positions: str = "all") -> torch.Tensor:
    """Activations at `site` over the real tokens of `prompts`: (n, d) ('all') or last tokens."""
    batch = prompts if hasattr(prompts, "lengths") else adapter.tokenize(list(prompts))
    acts = adapter.run(batch.tokens, names=[site]).cache[site]
    if positions == "last":
        rows, last = _last_index(batch)
        return acts[rows, last]
    if positions != "all":
        raise ValueError(f"positions {positions!r} is not valid; valid: all, last")
    mask = torch.arange(batch.tokens.shape[1])[None] < batch.lengths[:, None]
    return acts[mask]


__all__ = ["AblationRanking", "CouplingCheck", "NormAngles", "ablation_ranking", "coupling_check",
           "norm_angles", "norm_gradient_cosines", "reference_inputs", "site_activations"]
