"""``interp train`` on the job interface: dictionaries at one or more layers, one unit per layer.

    from interp.jobs.training import train_layers
    train_layers("smollm2-135m", Store(), [TrainConfig(k=16), TrainConfig(k=32)], range(30))
    train_layers("smollm2-135m", Store(), trains, range(30), backend="ray", address="head:6379")

A unit is a layer, not a dictionary: the dictionaries of one layer (several k, widths or
architectures) share the unit, so they share its model pass (`train_and_publish_many`);
layers are separate units, so they spread over workers.

1. Plan: the name of every (layer, setting); a dictionary already in the store with the same
   training and data settings is skipped (``force`` trains it again), and a layer whose
   dictionaries are all stored is skipped as a whole.
2. Per unit: train the layer's remaining dictionaries on one model pass, checkpointing as it
   goes (`TrainConfig.checkpoint_every`), then evaluate and publish each
   (`interp.jobs.dictionaries._publish`: folder and features, dashboards with their marker,
   the ``dictionaries`` row last). A unit killed midway leaves no row, so the next run plans
   the layer again and resumes it from its last checkpoint.
3. Finish: the stored rows of every planned name, fresh and skipped alike, for the printout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from interp.dictionaries.train_config import TrainConfig
from interp.jobs.dictionaries import DataConfig, _same_settings, dictionary_name, train_and_publish_many
from interp.jobs.units import ModelJob, Unit, run_job
from interp.store.files import check_name_fits


@dataclass(frozen=True)
class TrainedDictionary:
    """One dictionary of a training job, as the store holds it."""

    name: str
    layer: int
    site_in: str
    site_out: str
    metrics: dict
    """`DictionaryMetrics.to_dict()` plus the training's dead share (``train_dead_fraction``)."""
    trained: bool
    """False when the store already held it with these settings (this run did not train it)."""


class TrainJob(ModelJob):
    """Dictionary training on the job interface (module docstring): one unit per layer."""

    command = "interp train"

    def __init__(self, model, trains: list[TrainConfig], layers, *, data: DataConfig = DataConfig(),
                 site: str | None = None, name: str | None = None, device: str = "auto",
                 progress: bool = False) -> None:
        super().__init__(model, device)
        self.trains, self.data = list(trains), data
        self.layers = None if layers is None else list(dict.fromkeys(layers))
        self.site, self.name, self.progress = site, name, progress
        if not self.trains or self.layers == []:
            raise ValueError("a training job needs at least one setting and one layer")
        if (site or name) and (self.layers is None or len(self.layers) > 1):
            raise ValueError("a site or a name is one dictionary's: give one layer with it, not "
                             f"{'all' if self.layers is None else len(self.layers)}")
        if name and len(self.trains) > 1:
            raise ValueError(f"--name names one dictionary; got {len(self.trains)} settings")
        self.names: dict[tuple[int, int], str] = {}

    def config(self) -> dict:
        return {"train": [t.to_dict() for t in self.trains], "layers": self.layers, "data": self.data.__dict__,
                "site": self.site, "model": self.model_name, "device": self.device}

    def plan(self, store, run_id: str, force: bool):
        """Step 1: names, the stored ones skipped, one unit per layer with dictionaries to train."""
        adapter = self.model()
        self.store_name = adapter.store_name
        if self.layers is None:
            self.layers = list(range(adapter.info.n_layers))
        for layer in self.layers:
            adapter.check_layer(layer)
            for i, train in enumerate(self.trains):
                self.names[(layer, i)] = self.name or dictionary_name(adapter.store_name, layer, train, self.site)
        for name in self.names.values():
            check_name_fits(name, store.root, what="dictionary name")  # before any training, not after
        stored = store.read("dictionaries", where={"model": adapter.store_name, "name": list(self.names.values())},
                            columns=["name", "config"])
        configs = dict(zip(stored["name"], stored["config"]))
        units, skipped = [], []
        for layer in self.layers:
            todo = [i for i, train in enumerate(self.trains) if force or not _same_settings(
                configs.get(self.names[(layer, i)], "{}"), train, self.data)]
            if todo:
                units.append(Unit(f"L{layer}", (layer, todo)))
            else:
                skipped.append(f"L{layer}")
        return units, skipped

    def run(self, store, unit: Unit, run_id: str) -> list[str]:
        """Step 2 for one layer: its dictionaries on one model pass, each published."""
        layer, todo = unit.spec
        trains = [self.trains[i] for i in todo]
        names = [self.names[(layer, i)] for i in todo]
        pubs = train_and_publish_many(self.model(), store, trains, [layer] * len(trains),
                                      sites=[self.site] * len(trains), data=self.data, names=names,
                                      progress=self.progress, command=self.command)
        return [p.name for p in pubs]

    def finish(self, store, run_id: str, outcome) -> list[TrainedDictionary]:
        """Step 3: every planned dictionary's stored row, in (layer, setting) order."""
        names = list(self.names.values())
        rows = store.read("dictionaries", where={"model": self.store_name, "name": names},
                          columns=["name", "site", "hook_out", "metrics"]).set_index("name")
        fresh = {n for ns in outcome.done.values() for n in ns}
        found = []
        for (layer, _), name in self.names.items():
            if name in rows.index:
                row = rows.loc[name]
                m = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else row["metrics"]
                found.append(TrainedDictionary(name, layer, row["site"], row["hook_out"], m, name in fresh))
        return found


def train_layers(model, store, trains: list[TrainConfig], layers, *, data: DataConfig = DataConfig(),
                 site: str | None = None, name: str | None = None, force: bool = False, progress: bool = True,
                 backend: str = "local", address: str | None = None, device: str = "auto"
                 ) -> list[TrainedDictionary]:
    """Train every setting of `trains` at every layer of `layers` (None: all) (see the module docstring).

    `model`: a name (any backend: workers load it) or a loaded `ModelAdapter` (local only).
    `progress`: the units bar, and the training bars of a unit run in this process.
    """
    job = TrainJob(model, trains, layers, data=data, site=site, name=name, device=device,
                   progress=progress and backend == "local")
    return run_job(store, job, backend=backend, address=address, progress=progress, force=force).finished

