"""The steps of ``make run`` on the embedded default model, in order.

Each step calls one method's own entry point with a budget sized for a 2-core CPU (the whole
build is meant to take about 15 minutes on a fresh machine); `Budget.scale` multiplies the
token and prompt budgets for bigger machines.
"""

from __future__ import annotations

from interp.pipeline import Budget, Step


def _neurons(store, adapter, budget: Budget) -> str:
    from interp.jobs.neuron_map import pipeline_step

    return pipeline_step(store, adapter, budget)


def _transcoder(store, adapter, budget: Budget) -> str:
    from interp.dictionaries.sweep import pipeline_transcoder

    published = pipeline_transcoder(adapter, store, train_tokens=budget.n(20_000),
                                    dashboard_tokens=budget.n(4096))
    m = published.metrics
    return (f"transcoder {published.name}: L0 {m.l0:.1f}, FVU {m.fvu:.3f}, "
            f"CE recovered {m.ce_recovered:.3f} (vs zero ablation), dashboards for every latent")


def _obsprop(store, adapter, budget: Budget) -> str:
    from interp.methods.obsprop_pipeline import pronoun_study
    from interp.methods.obsprop_tasks import EfficiencyConfig

    study = pronoun_study(adapter, store, top_ablation=10,
                          efficiency=EfficiencyConfig(ks=(1, 4, 16), seeds=max(1, budget.n(2))))
    return (f"' she' - ' he' feature vectors for {len(study.ranking)} components; norm-approximation "
            f"cosine {study.angles.mean_cos:.4f}; rank correlation norm vs ablation "
            f"{study.ablation.spearman_norm:.2f}")


def _attribution(store, adapter, budget: Budget) -> str:
    from interp.methods.attribution import attribute_demo

    records = attribute_demo(adapter, store=store)
    return f"{len(records)} attributions (ReAGent, integrated gradients, attention rollout) with Soft-NS/NC"


def _complexity(store, adapter, budget: Budget) -> str:
    from interp.methods.complexity_run import quick_run

    run = quick_run(store, adapter, n_tokens=budget.n(24_000))
    s = run.summary
    rho = s.get("rank_correlation", {}).get("rho")
    median = s.get("K_quantiles", {}).get("0.5")
    return (f"complexity of {s['n_features']} neurons (layers 2, 8, 15): median K "
            f"{median:.3f}" + (f", rho(K, importance) {rho:.2f}" if rho is not None else ""))


def default_steps() -> list[Step]:
    """Every step of the main job, in the order they run."""
    return [
        Step("neurons", "decode every MLP neuron through the LM head", _neurons),
        Step("transcoder", "train and evaluate a small transcoder at the middle layer", _transcoder),
        Step("obsprop", "ObsProp feature vectors for ' she' - ' he'", _obsprop),
        Step("attribution", "ReAGent and baseline attributions with faithfulness", _attribution),
        Step("complexity", "V-information complexity of the neurons of three layers", _complexity),
    ]
