"""The obsprop family in the store: vectors, study checks and data-efficiency sweeps.

- Vectors (`save_obsprop` / `load_obsprop`): one safetensors bundle
  ``obsprop/<model>/<source>`` (one tensor per path label, plus ``final``), one `features`
  row per vector (kind ``obsprop``, site = the first component's input hook, index = the
  head number or 0, source = the observable's run name, ``<source>@<path>`` for multi-hop
  paths) and a `results` row ``obsprop_ranking`` with the component ranking.
- Study checks (`save_study`): `results` rows ``obsprop_norm_angles``, ``obsprop_ablation``
  and ``obsprop_coupling``, key ``<model>/<source>``.
- Data efficiency (`save_efficiency`): `results` rows ``obsprop_data_efficiency`` (table and
  summary) and, when a figure is given, ``obsprop_data_efficiency_figure``, key
  ``<model>/<task>``.
"""

from __future__ import annotations

import re

import pandas as pd
import torch

from interp.features import FeatureId, FeatureKind
from interp.methods.obsprop.checks import AblationRanking, NormAngles
from interp.methods.obsprop.efficiency import EfficiencyResult
from interp.methods.obsprop.propagation import FeatureVector, ObsPropResult


def store_source(text: str) -> str:
    """A store-safe source name from an observable name (``' she' -' he'`` -> ``she_vs_he``)."""
    pos = re.findall(r"(?:^|\+)\s*(?:[\d.]+\*)?'([^']*)'", text)
    neg = re.findall(r"-\s*(?:[\d.]+\*)?'([^']*)'", text)
    name = "_".join(t.strip() for t in pos) + ("_vs_" + "_".join(t.strip() for t in neg) if neg else "")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name or text).strip("._") or "observable"
    return name[:80]


def save_obsprop(store, adapter, result: ObsPropResult, run_id: str, source: str | None = None,
                 paths: tuple[FeatureVector, ...] = ()) -> str:
    """Write `result` (and extra multi-hop `paths`) to `store`; returns the source name used."""
    source = source or store_source(result.observable.name)
    model = adapter.store_name
    bundle = f"obsprop/{model}/{source}"
    vectors = {**{fv.label: fv.vector for fv in result.vectors}, **{fv.label: fv.vector for fv in paths}}
    meta = {"observable": result.observable.to_record(), "config": result.config.__dict__,
            "n_reference": result.n_reference, "model": adapter.store_name,
            "sites": {fv.label: fv.site for fv in (*result.vectors, *paths)}}
    store.save_tensors(bundle, {**vectors, "final": result.final}, meta, run_id=run_id)
    rows = []
    for fv in (*result.vectors, *paths):
        src = source if len(fv.path) == 1 else f"{source}@{fv.label}"
        ident = FeatureId(model, fv.site, FeatureKind.OBSPROP, fv.component.index, src)
        rows.append({**ident.to_record(), "label": f"{result.observable.name} via {fv.label}",
                     "metrics": {"norm": fv.norm, "path": fv.label, "bundle": bundle,
                                 "observable": result.observable.name, "mlp_method": result.config.mlp_method}})
    store.write("features", rows, run_id=run_id)
    ranking = result.ranking()
    store.write("results", [{"name": "obsprop_ranking", "key": f"{model}/{source}",
                             "payload": {"observable": result.observable.to_record(),
                                         "ranking": ranking.to_dict("records")}}], run_id=run_id)
    return source


def load_obsprop(store, adapter, source: str) -> dict[str, torch.Tensor]:
    """The stored vectors of `source`: path label -> (d_model,) tensor (``final`` included)."""
    return store.load_tensors(f"obsprop/{adapter.store_name}/{source}")


def save_study(store, adapter, source: str, run_id: str, angles: NormAngles, ablation: AblationRanking,
               couplings: pd.DataFrame) -> None:
    """The pronoun study's checks of vectors `source` as `results` rows (see the module docstring)."""
    key = f"{adapter.store_name}/{source}"
    store.write("results", [
        {"name": "obsprop_norm_angles", "key": key,
         "payload": {"mean_cos": angles.mean_cos, "rows": angles.table.to_dict("records")}},
        {"name": "obsprop_ablation", "key": key,
         "payload": {"ablation": ablation.ablation, "spearman_norm": ablation.spearman_norm,
                     "spearman_direct": ablation.spearman_direct, "spearman_heads": ablation.spearman_heads,
                     "rows": ablation.table.to_dict("records")}},
        {"name": "obsprop_coupling", "key": key, "payload": {"rows": couplings.to_dict("records")}},
    ], run_id=run_id)


def save_efficiency(store, adapter, result: EfficiencyResult, run_id: str, figure: str | None = None) -> None:
    """The sweep's table and summary as a `results` row, plus `figure` (plotly JSON) when given."""
    key = f"{adapter.store_name}/{result.task}"
    summary = result.table.groupby(["k", "method"])[["auroc", "corr"]].mean().reset_index()
    rows = [{"name": "obsprop_data_efficiency", "key": key,
             "payload": {"component": str(result.component), "ceiling_auroc": result.ceiling_auroc,
                         "ks": list(result.config.ks), "seeds": result.config.seeds,
                         "rows": result.table.to_dict("records"), "summary": summary.to_dict("records")}}]
    if figure is not None:
        rows.append({"name": "obsprop_data_efficiency_figure", "key": key, "payload": {"figure": figure}})
    store.write("results", rows, run_id=run_id)
