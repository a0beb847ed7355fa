"""Write every workflow notebook, circuits.ipynb included (run: ``.venv/bin/python notebooks/build.py``).

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

TRANSCODERS_VS_SAES = (
    "## Transcoders vs SAEs at matched L0\n\nThe comparison of Dunefsky et al. (Fig. 2): at equal L0, "
    "is a transcoder's spliced CE on par with an SAE's on the MLP output? The cell below draws every "
    "comparison this store holds (`benchmarks/bench_transcoder_vs_sae.py` trains eight dictionaries "
    "on one 2M-token pass; `interp sweep` a smaller one).")

MEASURED_COMPARISON = (
    "## The comparison at 2M training tokens\n\nMeasured with `benchmarks/bench_transcoder_vs_sae.py "
    "--tokens 2000000 --eval-tokens 20480 --ks 16 32 --variant dens=topk_resample_bias:density` and again "
    "with `--ks 8 64` (layer 15, expansion 4, the recipe with the density bias for resampled latents; both "
    "runs on the same 20,538 held-out tokens, clean CE 4.0995), exported by "
    "`benchmarks/export_comparison.py --merge` into one table in `benchmarks/results/`. Intervals are 95% "
    "bootstrap intervals over held-out windows. Negative spliced CE differences favour the transcoder.")

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
        "### Neuron 808 of the same layer writes animals - the one a search for ' dog' finds first:",
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
        "### The ranking score is `logit_z`: the z-score of a neuron's top (or bottom) logit over the "
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
        "### And in generation, clamped at 20:",
        """\
clamp = ClampUnit(neuron.site, neuron.index, 20.0)
{"clean": greedy_generate(model, "Yesterday I saw a", 12),
 "clamped": greedy_generate(model, "Yesterday I saw a", 12, interventions=[clamp])}""",
        "## Steering while sampling\nThe steering workbench (what the dashboard's Steering page runs): several "
        "directions at once - here the neuron, added, and a difference-of-means probe direction (dog prompts minus "
        "car prompts at layer 12's residual stream), stored as a probe feature - with the same seed and sampling "
        "settings for the default and the steered continuations, attention frozen to the clean prompt's patterns "
        "or live, and the side effect as the KL on a few neutral prompts.",
        """\
from interp.methods.steering import (DirectionSpec, GenerateConfig, SteeringConfig, mean_difference, run_steering,
                                     save_directions)
from interp.viz.steering import comparison_frame, concept_probability_figure, side_effect_frame

site = model.sites(12).resid_post
probe = mean_difference(model, ["I love my dog", "The dog barked at the mailman"],
                        ["I love my car", "The car stopped at the light"], site)
with store.run("notebook probe", {"site": site}) as run_id:
    [probe_id] = save_directions(store, model, "dog_vs_car", site, probe, ["dog - car prompts"], run_id)
specs = [DirectionSpec(neuron.key, strength=20.0), DirectionSpec(probe_id.key, strength=4.0)]
run = run_steering(model, "I went to the park with my", specs, GenerateConfig(max_tokens=16, seed=0),
                   SteeringConfig(attention=("frozen", "live"), kl=True), store)
comparison_frame(run)""",
        "### Per generated token, the probability of each direction's concept tokens (its top decoded tokens)",
        """\
concept_probability_figure(run)""",
        "### The side effect: KL(clean || steered) of the next token on neutral prompts",
        """\
side_effect_frame(run)""",
        "### Save the run; the Steering page reopens it at `steering?run=KEY`",
        """\
from interp.methods.steering.store import load_run, save_run

key = save_run(store, run)
key, load_run(store, key).steered["live"].text == run.steered["live"].text""",
    ],
    "03_transcoders": [
        "# Training and evaluating a transcoder\n\nA TopK transcoder replaces the MLP of layer 15 "
        "(Dunefsky et al.). The budget here is tiny (10k training tokens); "
        "`interp train` and `interp sweep` use real ones.",
        SETUP,
        """\
from interp.jobs.dictionaries import DataConfig, train_and_publish
from interp.dictionaries.train_config import TrainConfig

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
        TRANSCODERS_VS_SAES,
        """\
import json

from IPython.display import Markdown, display

sweeps = store.read("results", where={"name": "dictionary_sweep"})
if sweeps.empty:
    display(Markdown("This store holds no comparison yet: run `python benchmarks/bench_transcoder_vs_sae.py` "
                     "(or `interp sweep`) and rerun this cell."))
else:
    for key, payload in zip(sweeps["key"], sweeps["payload"]):
        payload = json.loads(payload) if isinstance(payload, str) else payload
        table = pd.DataFrame(payload["table"])
        display(l0_vs_ce_figure(table, title=f"{key}: {payload['train_tokens']:,} training tokens"))
        display(table[[c for c in ("kind", "k", "l0", "fvu", "ce_spliced", "ce_recovered", "dead_fraction")
                       if c in table]].round(4))""",
        MEASURED_COMPARISON,
        """\
from pathlib import Path

import interp
from interp.viz.dictionaries import kind_differences

results = Path(interp.__file__).resolve().parent.parent / "benchmarks" / "results"
measured = sorted(results.glob("*_L15_topk-2000000*.csv")) if results.is_dir() else []
if not measured:
    display(Markdown("No measured comparison beside this checkout (`benchmarks/results/`)."))
for path in measured:
    table = pd.read_csv(path)
    display(l0_vs_ce_figure(table, title=f"{path.stem}: 2,000,000 training tokens each, "
                                         f"{int(table['n_tokens'].iloc[0]):,} held-out"))
    display(kind_differences(table).round(4))""",
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


CIRCUITS = [  # a worked transcoder circuit on SmolLM2: indirect-object identification. It uses the
    # store's transcoders (``smollm2-135m/quick/L*``: TopK, k=16, 4x, trained briefly; if none are
    # stored it trains three small ones first) and writes its graph to the store.
    "# Transcoder circuits: indirect-object identification in SmolLM2\n\n"
    "Dunefsky, Chlenski & Nanda (2024) show that transcoders (sparse, wide replacements of MLP "
    "sublayers) make circuits through MLPs readable from the weights: a latent's effect on a later "
    "latent is its *activation* (input-dependent) times a *connection weight* "
    "`W_dec[i] . W_enc[:, j]` (input-invariant). Attention heads enter through their OV circuits "
    "with the pattern frozen, and every transcoder's error term stays in the picture.\n\n"
    "Behaviour: `When Mary and John went to the store, John gave a drink to` -> ` Mary` "
    "(the indirect object), not ` John`. Target: the logit difference ` Mary` - ` John`.",
    """\
import os
import torch
torch.set_num_threads(2)

from interp.models import load_model
from interp.store import Store

model = load_model("smollm2-135m")
store = Store(os.environ.get("INTERP_STORE"))  # default: the data root's store
model""",
    "## Transcoders\nTopK transcoders read from the store (`smollm2-135m/quick/...`: k=16, 4x, trained "
    "briefly: 64k training tokens over 8k distinct IMDB tokens). Layers without one keep their MLP as one opaque `mlp` node. "
    "Quick transcoders leave large error terms: the graph shows exactly how large. Better ones "
    "(`interp train --kind transcoder ...`) shrink them; nothing else changes.",
    """\
from interp.methods.circuits.transcoders import load_transcoders

PREFIX = "smollm2-135m/quick/"
NAMES = [n for n in store.read("dictionaries", columns=["name"])["name"] if n.startswith(PREFIX)]
if not NAMES:  # none stored yet: train three small ones (a few minutes on a CPU)
    from interp.jobs.dictionaries import DataConfig, train_and_publish
    from interp.dictionaries.train_config import TrainConfig
    train = TrainConfig(kind="transcoder", arch="topk", k=16, expansion=4, train_tokens=64_000, lr=2e-3,
                        dead_after_tokens=20_000)
    data = DataConfig(activation_tokens=8_000, eval_tokens=256, dashboard_tokens=0)
    for layer in (0, 1, 2):
        NAMES.append(train_and_publish(model, store, train, layer, data=data, progress=False,
                                       name=f"{PREFIX}L{layer}-transcoder-topk-k16-x4").name)
transcoders, names = load_transcoders(store, NAMES, model)
metrics = store.read("dictionaries", where={"name": NAMES}, columns=["name", "metrics"])
import json, pandas as pd
pd.DataFrame([{"name": r.name.split("/")[-1], **{k: json.loads(r.metrics).get(k) for k in ("fvu", "l0", "ce_recovered")}}
              for r in metrics.itertuples()]).sort_values("name", key=lambda s: s.str.extract(r"L(\\d+)")[0].astype(int)).head(30)""",
    "## The behaviour\nThe model strongly prefers the indirect object.",
    """\
from interp.methods.circuits.targets import parse_target

prompt = "When Mary and John went to the store, John gave a drink to"
probs = model.logits(prompt)[0, -1].softmax(-1)
target = parse_target(model, 'logitdiff:" Mary"," John"')
print(f"p(' Mary') = {probs[target.token]:.3f}, p(' John') = {probs[target.other]:.3f}")
print(list(enumerate(model.to_str_tokens(prompt))))  # positions, as the graph labels them""",
    "## Exact direct attribution\nOne forward pass of the *unmodified* model (transcoders only read). "
    "Every component's direct contribution to the logit difference: latents (activation x weight), "
    "heads per source position, embeddings, transcoder errors and biases. They add up to the "
    "actual value.",
    """\
from interp.methods.circuits.attribution import attribute, trace

tr = trace(model, transcoders, prompt)
attr = attribute(model, transcoders, prompt, target, tr=tr)
print(f"{attr.target}: actual {attr.value:.4f}, sum of contributions + bias {attr.total:.4f} "
      f"(residual {attr.residual:.1e})")
print(f"share of |contributions|: heads {attr.share('head'):.1%}, latents {attr.share('latent'):.1%}, "
      f"transcoder errors {attr.share('error'):.1%}, MLPs without a transcoder {attr.share('mlp'):.1%}")
attr.frame.head(15)[["label", "kind", "contribution"]]""",
    "## The circuit\nGreedy path search from the target (3 hops, 8 contributors per node), pruned to the "
    "fewest nodes covering 80% of the total influence. Edge weights are in logit-difference units; "
    "a node's influence is everything it passes to the target along the graph.",
    """\
from interp.methods.circuits.graph import GraphConfig, build_graph
from interp.viz.circuits import circuit_figure

meta = {"model": model.name, "prompt": prompt, "target": {"spec": 'logitdiff:" Mary"," John"'},
        "dictionaries": {str(k): v for k, v in names.items()}}
graph = build_graph(model, tr, target, GraphConfig(hops=3, top_k=8, share=0.8), meta)
s = graph.meta["stats"]
print(f"{len(graph.nodes)} nodes / {len(graph.edges)} edges kept of {s['n_nodes_full']} / {s['n_edges_full']}; "
      f"covered {s['covered_share']:.0%} of |influence|")
print(f"unexplained share (transcoder errors + MLPs without one): {s['direct_error_share']:.1%} of the direct "
      f"contributions, {s['error_share']:.1%} of the kept graph's influence")
circuit_figure(graph)""",
    """\
pd.DataFrame([{"node": n.label, "type": n.type, "influence": n.influence, "activation": n.activation,
               "unexpanded rest": n.rest, "error in": n.error_in}
              for n in sorted(graph.nodes, key=lambda n: -abs(n.influence))]).head(20)""",
    "## Does ablation agree?\nRemove each of the top 20 direct contributors from the real forward pass "
    "and measure the change of the logit difference. The direct attribution ignores what later layers "
    "and the norms do in response, so agreement is approximate.",
    """\
from interp.methods.circuits.validation import ablation_check

check = ablation_check(model, tr, target, attr, top_n=20)
print(f"pearson {check.pearson:.3f}, slope {check.slope:.3f} over {len(check.frame)} contributors")
check.frame""",
    "## Input-invariant connections\nFor the strongest latent in the attribution, its top upstream latents in "
    "the nearest earlier transcoder by connection weight `C[i, j] = W_dec[i] . W_enc[:, j]` (RMSNorm: no "
    "centring; the norm's scale is left out, scale = 1), beside the same pairs' attribution on this prompt "
    "(activation x weight x this prompt's 1/sigma).",
    """\
from interp.methods.circuits.connections import top_connections

frame = attr.frame
# the strongest latent in the direct attribution that has a transcoder below it
latents = frame[(frame["kind"] == "latent") & (frame["layer"] > min(transcoders))]
if len(latents):
    row = latents.iloc[0]
    layer, pos, index = int(row["layer"]), int(row["source"]), int(row["index"])
    up_layer = max(l for l in transcoders if l < layer)
    table = top_connections(transcoders[up_layer], transcoders[layer], k=10, norm=model.info.norm)
    up = table.upstream(index)
    lt = tr.layers[up_layer]
    z = {int(i): float(v) for i, v in zip(lt.active_idx[pos], lt.active_val[pos])}
    c = float(tr.layers[layer].ln2_scale[pos])
    up["activation_here"] = [z.get(i, 0.0) for i in up["index"]]
    up["attribution_here"] = up["weight"] * up["activation_here"] * c
    print(f"upstream of {row['label']} in the layer-{up_layer} transcoder")
    display(up)""",
    "## Store and export\nThe graph goes to the store (results table, name `circuit`, plus a tensor "
    "bundle) and exports as JSON (schema `interp.circuit/1`, documented in "
    "`interp.methods.circuits.graph`) for other tools: `interp circuit export KEY -o graph.json`.",
    """\
from interp.methods.circuits.graph import CircuitGraph
from interp.methods.circuits.store import save_graph

run = store.start_run("notebook circuits", {"prompt": prompt, "target": meta["target"]}, seed=0)
key = save_graph(store, graph, run)
store.finish_run(run, "done")
payload = graph.to_json()
assert CircuitGraph.from_json(payload).to_json() == payload
key, sorted(payload), payload["nodes"][1]""",
    "## Attribution graph (circuit-tracer's algorithm)\nThe same prompt as circuit-tracer builds graphs: every "
    "active latent, one error node per layer and position, the token embeddings and the top next-token logits "
    "(demeaned), with attention patterns and norm scales frozen so each node's input is exactly the sum of its "
    "edges. Rows are visited by influence on the logits up to `max_feature_nodes`; pruning keeps the nodes "
    "covering 80% of the influence and the edges covering 98%. The replacement and completeness scores say how "
    "much runs through latents rather than error nodes.",
    """\
from interp.methods.circuits import AttributionConfig, attribution_graph
from interp.viz.circuits import attribution_graph_figure

ag = attribution_graph(model, transcoders, prompt, AttributionConfig(max_feature_nodes=500, max_n_logits=5),
                       meta={"model": model.store_name, "dictionaries": {str(k): v for k, v in names.items()}},
                       on_estimate=lambda cost: print("estimate:", cost.describe()))
s = ag.meta["scores"]
print(f"{ag.n_features} latent nodes of {len(ag.active_features)} active, logits {ag.logit_strings}; "
      f"replacement {s['replacement']:.3f}, completeness {s['completeness']:.3f}, {ag.meta['seconds']:.1f} s")
attribution_graph_figure(ag)  # pruned: nodes by position and layer, edge width by |weight|""",
    "## Pin, group, export\nThe graph goes to the store (`interp circuit graph` does the same); pins, supernodes "
    "and annotations are saved into its `qParams` (the Circuits page writes them the same way), so the exported "
    "file opens in circuit-tracer's frontend or Neuronpedia with them: "
    "`interp circuit export KEY --format circuit-tracer -o graph.json`.",
    """\
from interp.methods.circuits import load_attribution_graph, save_attribution_graph, to_circuit_tracer
from interp.methods.circuits.store import update_graph_params
from interp.viz.circuits import subgraph_figure

run = store.start_run("notebook circuits graph", {"prompt": prompt, "config": ag.meta["config"]}, seed=0)
ag_key = save_attribution_graph(store, ag, run)
store.finish_run(run, "done")
data = to_circuit_tracer(ag)
latents = sorted((n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder"),
                 key=lambda n: n["influence"])  # cumulative influence: smallest = most influential
logits = [n["node_id"] for n in data["nodes"] if n["feature_type"] == "logit"]
top = [n["node_id"] for n in latents[:6]]
update_graph_params(store, ag_key, pinned=top + logits[:1], supernodes=[["top latents", *top[:3]]],
                    annotations={top[0]: "most influential latent"})
exported = to_circuit_tracer(load_attribution_graph(store, ag_key))  # what `interp circuit export` writes
import tempfile
from pathlib import Path
path = Path(tempfile.gettempdir()) / f"{ag_key}.json"
path.write_text(json.dumps(exported))
print(path, exported["qParams"]["pinnedIds"], len(exported["nodes"]), "nodes", len(exported["links"]), "links")
subgraph_figure(exported)""",
]

NOTEBOOKS["circuits"] = CIRCUITS


def build() -> list[Path]:
    """Write every notebook (outputs empty) and return their paths."""
    paths = []
    for name, cells in NOTEBOOKS.items():
        # a cell starting with a markdown heading is prose, any other is code
        nb = new_notebook(cells=[new_markdown_cell(c) if c.startswith(("# ", "## ", "### ")) else new_code_cell(c)
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
