"""The main job behind ``make run``: build the feature store for one model, step by step.

1. Each step is a named function of (store, model adapter, budget) that writes its results
   into the store and returns a one-line summary; it may name steps it runs after
   (`Step.after`: the examples step covers the transcoders' latents and the ObsProp vectors,
   so it runs after both).
2. The steps are the units of one job on the job interface (`PipelineJob`,
   `interp.jobs.units`): the local backend runs them in order in this process on one loaded
   model; ``--backend ray`` runs each step as a Ray task (a worker loads the model itself),
   independent steps side by side, a step with `after` once those finished.
3. A finished step records a ``pipeline`` row in the store's ``results`` table (its last
   write, the unit's completion marker), so a second run skips it and reaches the dashboard
   within a minute; ``--force STEP`` (or ``--force all``) recomputes.
4. A step that fails is reported and the others still run: the dashboard shows whatever
   exists, and the run is recorded as failed, naming the failed steps.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from interp.jobs.units import JobFailed, ModelJob, Unit, run_job
from interp.store import Store

PIPELINE = "pipeline"


@dataclass(frozen=True)
class Budget:
    """How much work each step may do: scaled for a 2-core CPU by default."""

    scale: float = 1.0
    """Multiplies every token/prompt budget (use >1 on a GPU machine)."""

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"Budget.scale must be > 0, got {self.scale}")

    def n(self, base: int) -> int:
        return max(1, int(round(base * self.scale)))


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    fn: Callable[[Store, object, Budget], str]
    """(store, adapter, budget) -> one-line summary of what was computed and where. A module-level
    function for the ray backend (workers unpickle it by reference)."""
    after: tuple[str, ...] = ()
    """Steps that must have finished before this one starts, when they run in the same job."""


@dataclass
class PipelineReport:
    model: str
    store_root: str
    done: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _say(message: str) -> None:
    print(f"[interp run] {message}", file=sys.stderr, flush=True)


def completed_steps(store: Store, model: str) -> set[str]:
    rows = store.read("results", where={"name": PIPELINE})
    prefix = f"{model}:"
    return {k[len(prefix):] for k in rows.get("key", []) if isinstance(k, str) and k.startswith(prefix)}


class PipelineJob(ModelJob):
    """The main job's steps as units: one unit per step not yet complete in the store."""

    command = "interp run"

    def __init__(self, model, steps: list[Step], budget: Budget = Budget(), force: frozenset[str] = frozenset(),
                 device: str = "auto") -> None:
        super().__init__(model, device)
        self.steps, self.budget, self.force = list(steps), budget, frozenset(force)

    def config(self) -> dict:
        return {"model": self.model_name, "steps": [s.name for s in self.steps], "budget_scale": self.budget.scale,
                "device": self.device}

    def plan(self, store, run_id: str, force: bool):
        adapter = self.model()
        adapter.record(store, run_id)
        every = force or "all" in self.force
        done = set() if every else completed_steps(store, adapter.store_name) - set(self.force)
        names = {s.name for s in self.steps}
        units = [Unit(s.name, s.name, after=tuple(a for a in s.after if a in names))
                 for s in self.steps if s.name not in done]
        return units, [s.name for s in self.steps if s.name in done]

    def run(self, store, unit: Unit, run_id: str) -> dict:
        step = next(s for s in self.steps if s.name == unit.key)
        adapter = self.model()
        _say(f"{step.name}: {step.description} ...")
        start = time.perf_counter()
        try:
            summary = step.fn(store, adapter, self.budget)
        except Exception as exc:
            _say(f"{step.name}: FAILED - {exc}\n{traceback.format_exc()}")
            raise
        seconds = time.perf_counter() - start
        store.write("results", [{"name": PIPELINE, "key": f"{adapter.store_name}:{step.name}",
                                 "payload": {"summary": summary, "seconds": seconds}}], run_id=run_id)
        _say(f"{step.name}: {summary} ({seconds:.0f} s)")
        return {"summary": summary, "seconds": seconds}


def run_pipeline(store: Store, adapter, steps: list[Step], budget: Budget = Budget(),
                 force: set[str] = frozenset(), *, backend: str = "local", address: str | None = None,
                 device: str = "auto", progress: bool = False) -> PipelineReport:
    """Run `steps` for `adapter` (a loaded adapter, or a model name: the ray backend needs a
    name), skipping the ones already complete in `store`.

    The whole job is one run in the store: done when every step ran, failed (naming the
    failed steps and their errors) otherwise, cancelled on KeyboardInterrupt.
    """
    job = PipelineJob(adapter, steps, budget, frozenset(force), device)
    report = PipelineReport(job.model().store_name, str(store.root))
    try:
        outcome = run_job(store, job, backend=backend, address=address, progress=progress)
        done, report.skipped = outcome.done, outcome.skipped
    except JobFailed as exc:  # recorded with the run; the report says which steps failed
        report.failed = exc.failed
        done = exc.done
        report.skipped = exc.skipped
    for step in steps:  # in step order, whichever backend finished them first
        if step.name in done:
            report.done[step.name] = done[step.name]["summary"]
            report.seconds[step.name] = done[step.name]["seconds"]
    for name in report.skipped:
        _say(f"{name}: already in the store, skipped")
    return report


# The steps of `make run` on the embedded default model, in order. Each step calls one
# method's own entry point with a budget sized for a 2-core CPU; `Budget.scale` multiplies
# the token and prompt budgets for bigger machines.


def _neurons(store, adapter, budget: Budget) -> str:
    from interp.jobs.neuron_map import pipeline_step

    return pipeline_step(store, adapter, budget)


def _examples(store, adapter, budget: Budget) -> str:
    from interp.jobs.examples import pipeline_step

    return pipeline_step(store, adapter, tokens=budget.n(EXAMPLES_TOKENS))


EXAMPLES_TOKENS = 4096
"""Corpus tokens of the main job's examples step: one model pass feeds all 30 layers x 1536
neurons of SmolLM2 (top/quantile contexts, histogram, density), about a minute on 2 cores."""


def _transcoder(store, adapter, budget: Budget) -> str:
    from interp.jobs.dictionaries import pipeline_transcoders

    published = pipeline_transcoders(adapter, store, train_tokens=budget.n(TRANSCODER_TOKENS),
                                     epochs=TRANSCODER_EPOCHS, other_train_tokens=budget.n(20_000),
                                     dashboard_tokens=budget.n(4096))
    head = next((p for p in published if p.name.split("/")[-1].startswith("L15-")), published[0])
    m, ci = head.metrics, head.metrics.intervals

    def show(key: str, value: float) -> str:
        lo, hi = ci.get(key, (float("nan"), float("nan")))
        return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"

    return (f"{len(published)} transcoders (layers {', '.join(p.site_in.split('.')[1] for p in published)}); "
            f"{head.name} on {budget.n(TRANSCODER_TOKENS):,} distinct tokens x {TRANSCODER_EPOCHS} epochs, the others "
            f"on {budget.n(20_000):,}; {m.n_tokens:,} held-out tokens: "
            f"dead {show('dead_fraction', m.dead_fraction)}, FVU {show('fvu', m.fvu)}, CE recovered "
            f"{show('ce_recovered', m.ce_recovered)} (95% bootstrap intervals); dashboards for every latent")


TRANSCODER_TOKENS = 80_000
"""Distinct training tokens of the main job's layer-15 transcoder (one model pass feeds all
seven layers; the other six stop after 20k tokens)."""
TRANSCODER_EPOCHS = 4
"""Passes of the layer-15 transcoder over its tokens (the activations stay in memory)."""


def _circuit(store, adapter, budget: Budget) -> str:
    from interp.jobs.circuit import demo_attribution_graph, demo_circuit

    a = demo_attribution_graph(adapter, store)
    t, d, i = a.top_split, a.direct_shares, a.influence_shares
    c = demo_circuit(adapter, store)
    g = c.direct_shares
    return (f"attribution graph {a.key} ({a.n_features} latent nodes, {a.seconds:.0f} s): top logit {a.top_logit!r} "
            f"{a.top_value:+.2f} = latents {t['latent']:+.2f} + transcoder errors {t['error']:+.2f} + MLPs without "
            f"a transcoder {t['mlp']:+.2f} + embeddings {t['embedding']:+.2f} + constant {t['constant']:+.2f}; "
            f"latents hold {d['latent']:.0%} of the direct effects on the logits (transcoder errors {d['error']:.0%}, "
            f"other MLPs {d['mlp']:.0%}) and {i['latent']:.0%} of the influence (transcoder errors {i['error']:.0%}, "
            f"other MLPs {i['mlp']:.0%}); replacement {a.replacement:.2f}, completeness {a.completeness:.2f}. Path search "
            f"{c.key}: {c.n_nodes} nodes; latents carry {g['latent']:.0%} of the direct contributions to the "
            f"logit difference (heads {g['head']:.0%}, transcoder errors {g['error']:.0%}, MLPs without a "
            f"transcoder {g['mlp']:.0%})")


def _obsprop(store, adapter, budget: Budget) -> str:
    from interp.jobs.obsprop_study import pronoun_study
    from interp.methods.obsprop.efficiency import EfficiencyConfig

    study = pronoun_study(adapter, store, top_ablation=10,
                          efficiency=EfficiencyConfig(ks=(1, 4, 16), seeds=max(1, budget.n(2))), progress=True)
    return (f"' she' - ' he' feature vectors for {len(study.ranking)} components; norm-approximation "
            f"cosine {study.angles.mean_cos:.4f}; rank correlation norm vs ablation "
            f"{study.ablation.spearman_norm:.2f}")


def _attribution(store, adapter, budget: Budget) -> str:
    from interp.jobs.attribution_demo import attribute_demo

    records = attribute_demo(adapter, store=store, progress=True)
    runs = [r for r in records if r.get("num_probes")]
    converged = sum(bool(r["converged_probes"]) for r in runs)
    probes = f"{sum(r['converged_probes'] for r in runs)}/{sum(r['num_probes'] for r in runs)}"
    return (f"{len(records)} attributions (ReAGent, integrated gradients, attention rollout) with Soft-NS/NC; "
            f"ReAGent converged on {converged}/{len(runs)} prompts ({probes} probes)")


def _complexity(store, adapter, budget: Budget) -> str:
    from interp.jobs.complexity import quick_run

    run = quick_run(store, adapter, n_tokens=budget.n(24_000), progress=True)
    s = run.summary
    rho = s.get("rank_correlation", {}).get("rho")
    median = s.get("K_quantiles", {}).get("0.5")
    return (f"complexity of {s['n_features']} neurons (layers 2, 8, 15): median K "
            f"{median:.3f}" + (f", rho(K, importance) {rho:.2f}" if rho is not None else ""))


def default_steps() -> list[Step]:
    """Every step of the main job, in the order they run."""
    return [
        Step("neurons", "decode every MLP neuron through the LM head", _neurons),
        Step("transcoder", "train transcoders at seven layers on one model pass, evaluate, dashboards", _transcoder),
        # ObsProp before examples, so the examples step scores its vectors over the corpus too.
        Step("obsprop", "ObsProp feature vectors for ' she' - ' he'", _obsprop),
        Step("examples", "corpus examples and activation histograms of every MLP neuron, transcoder latent "
             "and ObsProp vector", _examples, after=("transcoder", "obsprop")),
        Step("circuit", "attribution graph and path search of demo prompts through the transcoders", _circuit,
             after=("transcoder",)),
        Step("attribution", "ReAGent and baseline attributions with faithfulness", _attribution),
        Step("complexity", "V-information complexity of the neurons of three layers", _complexity),
    ]
