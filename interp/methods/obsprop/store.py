"""The obsprop family in the store: vectors, study checks and data-efficiency sweeps.

- Vectors (`save_obsprop` / `load_obsprop`): one safetensors bundle
  ``obsprop/<model>/<source>`` (one tensor per path label, plus ``final``), one `features`
  row per vector (kind ``obsprop``, site = the first component's input hook, index = the
  head number or 0, source = the observable's run name, ``<source>@<path>`` for multi-hop
  paths), its decoded tokens (`feature_tokens` rows, `interp.methods.obsprop.tokens`) and a
  `results` row ``obsprop_ranking`` with the component ranking and what produced it
  (`Provenance`: observable, MLP method, positions, reference prompts, their hash).
  A source holds the vectors of one configuration: saving another configuration under a
  source that holds one is refused (`check_source`) unless ``replace=True``.
- Study checks (`save_study`): `results` rows ``obsprop_norm_angles``, ``obsprop_ablation``
  and ``obsprop_coupling``, key ``<model>/<source>``.
- Data efficiency (`save_efficiency`): `results` rows ``obsprop_data_efficiency`` (table and
  summary) and, when a figure is given, ``obsprop_data_efficiency_figure``, key
  ``<model>/<task>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from interp.features import FeatureId, FeatureKind
from interp.methods.obsprop.checks import AblationRanking, NormAngles
from interp.methods.obsprop.efficiency import EfficiencyResult
from interp.methods.obsprop.observables import Observable
from interp.methods.obsprop.propagation import FeatureVector, ObsPropConfig, ObsPropResult
from interp.methods.obsprop.tokens import decoded_token_rows

RANKING = "obsprop_ranking"


@dataclass(frozen=True)
class Provenance:
    """What produced a source's vectors; two runs with equal `config_hash` made the same vectors."""

    observable: str
    mlp_method: str
    positions: str
    n_prompts: int
    prompts_sha: str | None
    """sha256 (16 hex) of the reference prompts, None without prompts."""

    @classmethod
    def of(cls, observable: Observable, config: ObsPropConfig, prompts: Sequence[str] | None) -> "Provenance":
        sha = hashlib.sha256(json.dumps(list(prompts)).encode()).hexdigest()[:16] if prompts else None
        return cls(observable.name, config.mlp_method, config.positions, len(prompts or ()), sha)

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> str:
        return (f"observable {self.observable}, MLPs {self.mlp_method}, positions {self.positions}, "
                f"{self.n_prompts} reference prompts")


def stored_provenance(store, model: str, source: str) -> tuple[dict, str | None] | None:
    """(provenance record, run id) of the vectors stored as `source` of `model`, or None.

    Rows written before provenance was recorded give the bundle metadata's config (no hash).
    """
    found = store.read("results", where={"name": RANKING, "key": f"{model}/{source}"})
    if found.empty:
        return None
    row = found.iloc[0]
    payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else dict(row["payload"])
    record = payload.get("provenance")
    if record is None:  # older rows: the bundle metadata says which config made them
        try:
            meta = store.tensor_metadata(f"obsprop/{model}/{source}")
        except FileNotFoundError:
            meta = {}
        config = meta.get("config", {})
        record = {"observable": payload.get("observable", {}).get("name"), "mlp_method": config.get("mlp_method"),
                  "positions": config.get("positions"), "n_reference": meta.get("n_reference")}
    return record, row.get("run_id")


def check_source(store, model: str, source: str, provenance: Provenance, replace: bool = False) -> None:
    """Refuse to store `provenance`'s vectors under `source` when it holds another configuration's.

    Same configuration (equal hash, or for older rows the same observable, MLP method and
    positions): the rerun replaces them. `replace=True` allows any overwrite.
    """
    found = stored_provenance(store, model, source)
    if replace or found is None:
        return
    record, run_id = found
    if "config_hash" in record:
        same = record["config_hash"] == provenance.config_hash
    else:
        same = (record.get("observable"), record.get("mlp_method"), record.get("positions")) == (
            provenance.observable, provenance.mlp_method, provenance.positions)
    if same:
        return
    held = ", ".join(f"{k} {v}" for k, v in record.items() if k not in ("config_hash", "prompts_sha"))
    raise ValueError(
        f"obsprop source {source!r} of {model} already holds vectors of another configuration (run {run_id}: "
        f"{held}); this run has {provenance.describe()}. Store it under another name "
        f"(--name {source}_{provenance.mlp_method}) or pass --replace to overwrite them")


def store_source(text: str) -> str:
    """A store-safe source name from an observable name (``' she' -' he'`` -> ``she_vs_he``)."""
    pos = re.findall(r"(?:^|\+)\s*(?:[\d.]+\*)?'([^']*)'", text)
    neg = re.findall(r"-\s*(?:[\d.]+\*)?'([^']*)'", text)
    name = "_".join(t.strip() for t in pos) + ("_vs_" + "_".join(t.strip() for t in neg) if neg else "")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name or text).strip("._") or "observable"
    return name[:80]


def save_obsprop(store, adapter, result: ObsPropResult, run_id: str, source: str | None = None,
                 paths: tuple[FeatureVector, ...] = (), *, prompts: Sequence[str] | None = None,
                 replace: bool = False) -> str:
    """Write `result` (and extra multi-hop `paths`) to `store`; returns the source name used.

    `prompts`: the reference prompts `result` was computed on (recorded in its provenance).
    A source holding another configuration's vectors is refused unless `replace` (`check_source`).
    """
    source = source or store_source(result.observable.name)
    model = adapter.store_name
    provenance = Provenance.of(result.observable, result.config, prompts)
    check_source(store, model, source, provenance, replace)
    bundle = f"obsprop/{model}/{source}"
    vectors = {**{fv.label: fv.vector for fv in result.vectors}, **{fv.label: fv.vector for fv in paths}}
    meta = {"observable": result.observable.to_record(), "config": result.config.__dict__,
            "n_reference": result.n_reference, "model": adapter.store_name,
            "sites": {fv.label: fv.site for fv in (*result.vectors, *paths)}}
    store.save_tensors(bundle, {**vectors, "final": result.final}, meta, run_id=run_id)
    rows, decoded = [], []
    for fv in (*result.vectors, *paths):
        src = source if len(fv.path) == 1 else f"{source}@{fv.label}"
        decoded.append((src, fv))
        ident = FeatureId(model, fv.site, FeatureKind.OBSPROP, fv.component.index, src)
        rows.append({**ident.to_record(), "label": f"{result.observable.name} via {fv.label}",
                     "metrics": {"norm": fv.norm, "path": fv.label, "bundle": bundle,
                                 "observable": result.observable.name, "mlp_method": result.config.mlp_method}})
    store.write("features", rows, run_id=run_id)
    tokens = decoded_token_rows(adapter, decoded)
    if tokens.num_rows:
        store.write("feature_tokens", tokens, run_id=run_id)
    ranking = result.ranking()
    store.write("results", [{"name": RANKING, "key": f"{model}/{source}",
                             "payload": {"observable": result.observable.to_record(),
                                         "provenance": {**asdict(provenance), "config_hash": provenance.config_hash},
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
         "payload": {"mean_cos": angles.mean_cos, "mean_cos_ci": list(angles.mean_cos_ci), "n": angles.n,
                     "rows": angles.table.to_dict("records")}},
        {"name": "obsprop_ablation", "key": key,
         "payload": {"ablation": ablation.ablation, "spearman_norm": ablation.spearman_norm,
                     "spearman_direct": ablation.spearman_direct, "spearman_heads": ablation.spearman_heads,
                     "n": ablation.n, "intervals": {k: list(v) for k, v in ablation.intervals.items()},
                     "rows": ablation.table.to_dict("records")}},
        {"name": "obsprop_coupling", "key": key, "payload": {"rows": couplings.to_dict("records")}},
    ], run_id=run_id)


def efficiency_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (k, method): n seeds, mean AUROC / correlation and their 95% t intervals over seeds."""
    from interp.stats import mean_interval

    rows = []
    for (k, method), part in table.groupby(["k", "method"], sort=True):
        row = {"k": k, "method": method, "n": len(part)}
        for metric in ("auroc", "corr"):
            row[metric] = float(part[metric].mean())
            row[f"{metric}_lo"], row[f"{metric}_hi"] = mean_interval(part[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def save_efficiency(store, adapter, result: EfficiencyResult, run_id: str, figure: str | None = None) -> None:
    """The sweep's table and summary as a `results` row, plus `figure` (plotly JSON) when given."""
    key = f"{adapter.store_name}/{result.task}"
    summary = efficiency_summary(result.table)
    rows = [{"name": "obsprop_data_efficiency", "key": key,
             "payload": {"component": str(result.component), "ceiling_auroc": result.ceiling_auroc,
                         "ks": list(result.config.ks), "seeds": result.config.seeds,
                         "rows": result.table.to_dict("records"), "summary": summary.to_dict("records")}}]
    if figure is not None:
        rows.append({"name": "obsprop_data_efficiency_figure", "key": key, "payload": {"figure": figure}})
    store.write("results", rows, run_id=run_id)
