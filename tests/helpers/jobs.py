"""A job whose one unit stalls half-way on its first attempt, so a test can kill its worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

from interp.jobs.neuron_map import NeuronMapJob


class StallingMapJob(NeuronMapJob):
    """The neuron map, except that unit `stall` (a unit key), on its first attempt, writes its
    first rows, then leaves its process id in `flag_dir`/pid and sleeps: killed there, the
    store holds a partial layer (rows without the layer's completion markers)."""

    def __init__(self, models, config, stall: str, flag_dir: str) -> None:
        super().__init__(models, config, "ray")
        self.stall, self.flag_dir = stall, flag_dir

    def run(self, store, unit, run_id):
        pid = Path(self.flag_dir) / "pid"
        if unit.key == self.stall and not pid.exists():
            write = store.write

            def write_then_stall(*args, **kwargs):
                out = write(*args, **kwargs)
                pid.write_text(str(os.getpid()))
                time.sleep(120)
                return out

            store.write = write_then_stall
        return super().run(store, unit, run_id)
