"""Write the workflow notebooks (run: ``.venv/bin/python notebooks/build.py``).

Each notebook is short, imports `interp` for every computation and keeps budgets small, so
it runs top to bottom on the embedded SmolLM2 on a CPU within a couple of minutes. They
write to the store named by ``$INTERP_STORE`` (default: the data root's store), so their
results show up in the dashboard (``interp app``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
import torch
torch.set_num_threads(2)

from interp.models import load_model
from interp.store import Store

model = load_model("smollm2-135m")
store = Store(os.environ.get("INTERP_STORE"))  # default: the data root's store
model"""

NOTEBOOKS = {
    "01_quick_tour": [
        "# A quick tour of interp\n\nLoad the embedded SmolLM2-135M, look at a prediction, decode one "
        "neuron through the LM head, clamp it, and see what the feature store holds.",
        SETUP,
        "## A prediction\nEvery site of the model is a TransformerLens-style hook name; the adapter "
        "runs the model and caches any of them.",
        """\
prompt = "The capital of France is"
probs = model.logits(prompt)[0, -1].softmax(-1)
top = probs.topk(5)
[(model.decode([i]), round(p, 3)) for i, p in zip(top.indices.tolist(), top.values.tolist())]""",
        """\
sites = model.sites(10)
run = model.run(prompt, names=[sites.resid_post, sites.mlp_hidden])
{name: tuple(act.shape) for name, act in run.cache.items()}""",
        "## Decode neurons through the LM head\nEach neuron's output direction, read through the final "
        "norm and the unembedding, gives a logit per token. The specialisation score `z` is how many "
        "standard deviations the top token's logit stands above the vocabulary's mean. The five "
        "highest in the last layer write mostly pronoun and function-word families:",
        """\
from interp.methods.neurons.decoding import decode_neurons

decoded = decode_neurons(model, 29)
best = decoded.z.argsort(descending=True)[:5].tolist()
[(i, round(float(decoded.z[i]), 1), [model.decode([t]) for t in decoded.top_ids[i, :5].tolist()]) for i in best]""",
        "Neuron 808 of the same layer writes animals - the one a search for ' dog' finds first:",
        """\
index = 808
round(float(decoded.z[index]), 1), [model.decode([t]) for t in decoded.top_ids[index, :8].tolist()]""",
        "## Clamp it\nClamping the neuron high during generation pulls the text towards its token.",
        """\
from interp.methods.neurons.clamping import greedy_generate
from interp.models import ClampUnit

clamp = ClampUnit(model.sites(29).mlp_hidden, index, 20.0)
{"clean": greedy_generate(model, "Yesterday I saw a", 12),
 "clamped": greedy_generate(model, "Yesterday I saw a", 12, interventions=[clamp])}""",
        "## The feature store\nJobs (`interp map-neurons`, `interp train`, `interp obsprop`, "
        "`interp complexity`, ...) write there; `interp app` browses it.",
        """\
info = store.info()
{k: v["rows"] for k, v in info["tables"].items()}""",
    ],
    "02_neurons": [
        "# Neuron mapping and clamping\n\nDecode MLP neurons through the LM head (Davies et al.), store "
        "their top tokens, then verify one by clamping it against random control neurons.",
        SETUP,
        "## Map a few layers into the store\nA whole model is `interp map-neurons --model smollm2-135m` "
        "(a few minutes); three layers here.",
        """\
from interp.jobs.neuron_map import map_model

summary = map_model(store, model, layers=[15, 22, 29], progress=False)
summary""",
        """\
from interp.viz.neurons import specialisation_overview

neurons = store.features(model="smollm2-135m", kind="neuron")
specialisation_overview(neurons)""",
        "The ranking score is `logit_z`: the z-score of a neuron's top (or bottom) logit over the "
        "vocabulary, in [0, sqrt(d_vocab - 1)]. The older `specialisation` (the softmax's max "
        "probability) is kept beside it; it saturates at 1 for thousands of neurons.",
        """\
best = neurons.sort_values("logit_z", ascending=False).head(5)
best[["site", "index", "logit_z", "specialisation"]]""",
        "## Find a neuron by its token\nThe most specialised mapped neuron with ' dog' among its top "
        "ten tokens, as the dashboard's search finds it:",
        """\
from interp.features import FeatureId
from interp.viz.neurons import token_table_figure

tokens = store.read("feature_tokens", where={"model": "smollm2-135m", "kind": "neuron", "end": "top"})
hits = tokens[(tokens["token_str"].str.strip().str.lower() == "dog") & (tokens["rank"] < 10)]
found = neurons.merge(hits[["site", "index"]].drop_duplicates()).sort_values("logit_z", ascending=False)
neuron = FeatureId.from_record(found.iloc[0])
token_table_figure(store.feature_tokens(neuron))""",
        "## Clamping dose-response\np(' dog') as the neuron is clamped to larger values, against "
        "four random neurons of the same layer clamped the same way.",
        """\
from interp.methods.neurons.clamping import ClampConfig, clamp_sweep, greedy_generate
from interp.models import ClampUnit
from interp.viz.neurons import dose_response_figure

layer, target = int(neuron.site.split(".")[1]), model.token_id(" dog")
result = clamp_sweep(model, layer, neuron.index, "I love my", target,
                     ClampConfig(values=(0.0, 5.0, 10.0, 20.0), n_controls=4, neutral_prompts=()))
dose_response_figure(result, " dog")""",
        "And in generation, clamped at 20:",
        """\
clamp = ClampUnit(neuron.site, neuron.index, 20.0)
{"clean": greedy_generate(model, "Yesterday I saw a", 12),
 "clamped": greedy_generate(model, "Yesterday I saw a", 12, interventions=[clamp])}""",
    ],
    "03_transcoders": [
        "# Training and evaluating a transcoder\n\nA TopK transcoder replaces the MLP of layer 15 "
        "(Dunefsky et al.). The budget here is tiny (10k training tokens); "
        "`interp train` and `interp sweep` use real ones.",
        SETUP,
        """\
from interp.jobs.dictionaries import DataConfig, train_and_publish
from interp.dictionaries.training import TrainConfig

train = TrainConfig(kind="transcoder", arch="topk", k=16, expansion=4, batch_size=256, train_tokens=10_000)
published = train_and_publish(model, store, train, 15, progress=False,
                              data=DataConfig(corpus="imdb", eval_tokens=512, dashboard_tokens=512))
m = published.metrics
{"name": published.name, "l0": m.l0, "fvu": round(m.fvu, 3), "ce_clean": round(m.ce_clean, 3),
 "ce_spliced": round(m.ce_spliced, 3), "ce_recovered": round(m.ce_recovered, 3)}""",
        "## L0 vs spliced CE, latent density",
        """\
import pandas as pd
from interp.viz.dictionaries import density_histogram_figure, l0_vs_ce_figure

row = {"name": published.name, "kind": "transcoder", "l0": m.l0, "ce_spliced": m.ce_spliced,
       "ce_clean": m.ce_clean, "ce_recovered": m.ce_recovered}
l0_vs_ce_figure(pd.DataFrame([row]))""",
        "density_histogram_figure(m.density_histogram)",
        "## A latent's dashboard\nTop-activating held-out contexts of the most active latent, as the "
        "dashboard's feature page shows them.",
        """\
from IPython.display import HTML
from interp.features import FeatureId
from interp.viz.store_views import context_html

latents = store.features(model="smollm2-135m", source=published.name).sort_values("max_act", ascending=False)
latent = FeatureId.from_record(latents.iloc[0])
examples = store.examples(latent, group="top").head(5)
HTML("".join(context_html(list(e.tokens), list(e.acts), max_pos=e.max_pos) for e in examples.itertuples()))""",
    ],
    "04_obsprop": [
        "# Observable propagation\n\nFeature vectors for the observable `logit(' she') - logit(' he')` "
        "(Dunefsky & Cohan): which attention heads and MLPs write it, with no training data.",
        SETUP,
        """\
from interp.methods.obsprop.propagation import obsprop
from interp.methods.obsprop.observables import logit_diff
from interp.viz.obsprop import component_ranking_figure

prompts = ["The nurse said that", "My sister told me that", "The engineer said that", "His brother thinks"]
observable = logit_diff(model, " she", " he")
result = obsprop(model, observable, prompts)
component_ranking_figure(result.ranking(), top=15)""",
        "## Data efficiency\nObsProp against a linear probe and a difference of means trained on k "
        "labelled examples per class (small k and two seeds here).",
        """\
from interp.methods.obsprop.efficiency import EfficiencyConfig, data_efficiency
from interp.viz.obsprop import data_efficiency_figure

eff = data_efficiency(model, "pronoun", EfficiencyConfig(ks=(1, 4, 16), seeds=2))
data_efficiency_figure(eff.table, ceiling=eff.ceiling_auroc)""",
    ],
    "05_reagent": [
        "# ReAGent with faithfulness\n\nToken attributions for the model's next token by ReAGent "
        "(Zhao & Shan) and the usual baselines, scored by soft sufficiency / comprehensiveness. "
        "`interp attribute` does the same over many prompts and stores the results.",
        SETUP,
        """\
from interp.methods.attribution.registry import attribute
from interp.methods.attribution.reagent import ReagentConfig
from interp.viz.attribution import methods_heatmap, token_heatmap

prompt = "The capital of France is"
methods = ("reagent", "attention_rollout", "input_x_gradient", "integrated_gradients", "occlusion", "random")
small = {"reagent": ReagentConfig(num_probes=8, max_probe_steps=300)}
results = {m: attribute(model, prompt, method=m, config=small.get(m)) for m in methods}
token_heatmap(results["reagent"])""",
        "methods_heatmap(list(results.values()))",
        "## Faithfulness\nHigher Soft-NS / Soft-NC = more faithful; the random baseline is the floor. "
        "The table uses the ReAGent authors' convention (`convention=\"reagent\"`, the default: "
        "importances normalised to sum to 1, squared Hellinger, BOS masked, each mask clipped), so its "
        "numbers sit beside the paper's; the second table scores the same attributions under interp's "
        "earlier convention (`\"interp\"`: min-max importances, Hellinger, BOS kept). Each row gives "
        "the masks behind it (`n_masks`) and a 95% bootstrap interval over them.",
        """\
import pandas as pd
from interp.methods.attribution.targets import resolve_target
from interp.methods.attribution.faithfulness import FaithfulnessConfig, faithfulness

target = resolve_target(model, results["reagent"].token_ids, None)
pd.DataFrame({m: faithfulness(model, r, target, FaithfulnessConfig(n_samples=4)).to_dict()
              for m, r in results.items()}).T""",
        """\
pd.DataFrame({m: faithfulness(model, r, target, FaithfulnessConfig(n_samples=4, convention="interp")).to_dict()
              for m, r in results.items()}).T""",
        "## The benchmark\nConfident next tokens after IMDB sentence prefixes, every method, Soft-NS / "
        "Soft-NC means (the authors' convention; the `convention` column says so) with 95% bootstrap "
        "intervals over prompts. Here on three prompts with light settings; "
        "`benchmarks/bench_reagent.py faith` runs 110 at the paper's settings and stores them.",
        """\
from interp.methods.attribution.baselines import BaselineConfig
from interp.jobs.faithfulness_benchmark import confident_prefixes, evaluate_prompt, summarise

prompts = confident_prefixes(model, 3)
records = [evaluate_prompt(model, item, i, ReagentConfig(num_probes=8, max_probe_steps=100),
                           BaselineConfig(n_steps=16), FaithfulnessConfig(n_samples=4))
           for i, item in enumerate(prompts)]
summarise(records).round(3)""",
        "## The stored benchmark\nThe full run, when this store has one: table, figure, and "
        "ReAGent minus each method per prompt.",
        """\
from interp.jobs.faithfulness_benchmark import paired_differences
from interp.methods.attribution.store import stored_records, stored_summary
from interp.viz.attribution import faithfulness_figure

found = stored_summary(store)
if found is None:  # this store has none: the figure of the three prompts above
    print("no stored benchmark: python benchmarks/bench_reagent.py faith --n 110, then ... aggregate")
    tag, table, runs = "this notebook", summarise(records), records
else:
    tag, table = found
    runs = stored_records(store, tag)
convention = table["convention"].iloc[0] if "convention" in table else "interp"  # tables stored before conventions
display(faithfulness_figure(table, title=f"Faithfulness over {int(table['n'].max())} prompts ({tag}, {convention} convention)"))
display(table.round(3))
display(paired_differences(runs).round(3))""",
    ],
    "06_complexity": [
        "# Feature complexity\n\nHow much computation a feature needs (Fel et al.): how well each "
        "earlier residual stream linearly decodes it. Forty neurons of two layers on a small corpus slice.",
        SETUP,
        """\
from interp.jobs.complexity import RunConfig, run_complexity

config = RunConfig(n_tokens=64 * 64, ctx_len=64, importance_windows=4, flow=False)
run = run_complexity(model, "neurons:5:0-19; neurons:20:0-19", config, store=store)
run.frame[["site", "index", "K", "first_decodable_layer", "importance"]].sort_values("K").head()""",
        """\
from interp.viz.complexity import curve_figure, distribution_figure, importance_figure

curve_figure(run.frame, max_lines=8)""",
        "distribution_figure(run.frame)",
        "importance_figure(run.frame)",
    ],
}


def build() -> list[Path]:
    """Write every notebook (outputs empty) and return their paths."""
    paths = []
    for name, cells in NOTEBOOKS.items():
        # a cell starting with a markdown heading is prose, any other is code
        nb = new_notebook(cells=[new_markdown_cell(c) if c.startswith(("# ", "## ")) else new_code_cell(c)
                                 for c in cells])
        for i, cell in enumerate(nb.cells):  # stable ids keep rebuilt notebooks diff-free
            cell.id = f"cell-{i}"
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build():
        print(p)
