"""End-to-end ObsProp jobs: the gendered-pronoun study and the paper's claims on all tasks.

`pronoun_study` (what ``make run`` calls, ~1-2 min on SmolLM2 on a laptop CPU):

1. ObsProp vectors of ``" she" - " he"`` for every head/MLP/embedding, MLP gradients averaged
   over `n_reference` occupation sentences (both stereotypes); stored as kind ``obsprop``.
2. Norm approximation: cosines between propagated and exact-gradient directions.
3. Ranking by feature norm vs zero-ablation of the `top_ablation` largest-norm components
   plus as many others drawn at random (Spearman rho over those).
4. Coupling of ``" she" - " he"`` with related observables (``" her" - " his"``, ``" woman"
   - " man"``) and an occupation observable (``" nurse" - " engineer"``) at the input of the
   top-ranked head, against the fitted slope of real scores over all token positions.
5. Optionally a small data-efficiency run on the pronoun task.

`claims` runs the data-efficiency sweep on every task in `obsprop_tasks.TASKS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.methods.obsprop.propagation import Component, ObsPropConfig, obsprop, path_vector
from interp.methods.obsprop.checks import AblationRanking, NormAngles, ablation_ranking, coupling_check, norm_angles, site_activations
from interp.methods.obsprop.store import Provenance, check_source, save_efficiency, save_obsprop, save_study, store_source
from interp.methods.obsprop.efficiency import TASKS, EfficiencyConfig, EfficiencyResult, data_efficiency
from interp.methods.obsprop.observables import logit_diff

COUPLING_PARTNERS = ((" her", " his"), (" woman", " man"), (" nurse", " engineer"))


@dataclass(frozen=True)
class PronounStudy:
    run_id: str
    source: str
    ranking: pd.DataFrame
    angles: NormAngles
    ablation: AblationRanking
    couplings: pd.DataFrame
    """observable pair, site, predicted coupling, slope, r2, n."""
    efficiency: EfficiencyResult | None


def _couplings(adapter, obs, component: Component, prompts, partners) -> pd.DataFrame:
    site = component.input_site(adapter)
    acts = site_activations(adapter, prompts, site, positions="all")
    y1 = path_vector(adapter, obs, [component], prompts).vector
    rows = []
    for a, b in partners:
        other = logit_diff(adapter, a, b)
        check = coupling_check(y1, path_vector(adapter, other, [component], prompts).vector, acts)
        rows.append({"y1": obs.name, "y2": other.name, "component": str(component), "site": site,
                     "predicted": check.predicted, "slope": check.slope, "slope_lo": check.slope_ci[0],
                     "slope_hi": check.slope_ci[1], "r2": check.r2, "n": check.n,
                     "abs_diff": abs(check.predicted - check.slope)})
    return pd.DataFrame(rows)


def pronoun_study(adapter, store, n_reference: int = 8, top_ablation: int = 20, n_ablation_prompts: int = 4,
                  efficiency: EfficiencyConfig | None = EfficiencyConfig(ks=(1, 2, 4, 8, 16), seeds=3),
                  seed: int = 0, progress: bool = False, tokens: tuple[str, str] = (" she", " he"),
                  partners: tuple[tuple[str, str], ...] = COUPLING_PARTNERS, replace: bool = False) -> PronounStudy:
    """Run and store the gendered-pronoun study (module docstring); returns its tables.

    `tokens`: the observable ``tokens[0] - tokens[1]``; `partners`: the observables its
    coupling is checked against. A source holding vectors of another configuration (e.g. from
    ``interp obsprop --mlp-method linear``) is refused before any work unless `replace`.
    """
    from interp.corpus import labelled_set

    data = labelled_set("pronoun_occupation")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    reference = [data.texts[i] for i in order[:n_reference]]
    ablate_prompts = [data.texts[i] for i in order[n_reference:n_reference + n_ablation_prompts]]
    coupling_prompts = [data.texts[i] for i in order[:64]]
    obs = logit_diff(adapter, *tokens)
    prop_config = ObsPropConfig()
    provenance = Provenance.of(obs, prop_config, reference)
    check_source(store, adapter.store_name, store_source(obs.name), provenance, replace)
    config = {"observable": obs.name, "n_reference": n_reference, "top_ablation": top_ablation,
              "n_ablation_prompts": n_ablation_prompts, "mlp_method": prop_config.mlp_method,
              "config_hash": provenance.config_hash}
    with store.run("obsprop pronoun_study", config, corpus={"labelled": "pronoun_occupation"}, seed=seed) as run_id:
        result = obsprop(adapter, obs, prompts=reference, config=prop_config)
        source = save_obsprop(store, adapter, result, run_id, prompts=reference, replace=replace)
        angles = norm_angles(adapter, result, reference)
        ranking = result.ranking()
        rest = ranking["component"].iloc[top_ablation:].tolist()
        extra = [rest[i] for i in sorted(rng.permutation(len(rest))[:top_ablation])]
        ablation = ablation_ranking(adapter, result, ablate_prompts, ranking["component"].iloc[:top_ablation].tolist() + extra,
                                    progress=progress)
        top_head = Component.parse(ranking[ranking["kind"] == "head"]["component"].iloc[0])
        couplings = _couplings(adapter, obs, top_head, coupling_prompts, partners)
        task = dataclasses.replace(TASKS["pronoun"], terms=((tokens[0], 1.0), (tokens[1], -1.0)))
        eff = data_efficiency(adapter, task, efficiency, dataset=data, progress=progress) if efficiency else None
        save_study(store, adapter, source, run_id, angles, ablation, couplings)
        if eff is not None:
            _save_efficiency(store, adapter, eff, run_id)
    return PronounStudy(run_id, source, ranking, angles, ablation, couplings, eff)


def _save_efficiency(store, adapter, result: EfficiencyResult, run_id: str) -> None:
    """The sweep with its figure (`interp.viz.obsprop.data_efficiency_figure`)."""
    from interp.viz.obsprop import data_efficiency_figure

    figure = data_efficiency_figure(result.table, title=f"{result.task} ({result.component} input)",
                                    ceiling=result.ceiling_auroc).to_json()
    save_efficiency(store, adapter, result, run_id, figure)


def claims(adapter, store, tasks: tuple[str, ...] = tuple(TASKS), config: EfficiencyConfig = EfficiencyConfig(),
           progress: bool = False) -> dict[str, EfficiencyResult]:
    """The data-efficiency sweep on each task, stored; returns task -> result."""
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r}; valid: {', '.join(TASKS)}")
    out = {}
    with store.run("obsprop claims", {"tasks": list(tasks), "ks": list(config.ks), "seeds": config.seeds,
                   "component": config.component}, seed=0) as run_id:
        for t in tasks:
            out[t] = data_efficiency(adapter, t, config, progress=progress)
            _save_efficiency(store, adapter, out[t], run_id)
    return out
