"""`interp run --no-serve` on a tiny model: the report ends with step times and machine load,
and a second run reuses the finished step."""

from __future__ import annotations

import os
import re


def test_run_prints_step_times_and_load_then_reuses(tiny_dirs, tmp_path, capsys):
    from interp.cli import main

    argv = ["--home", str(tmp_path / "home"), "run", "--model", str(tiny_dirs["llama"]), "--steps", "neurons",
            "--no-serve"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"computed  neurons .*\(\d+ s\)", out)
    times = re.search(r"step times: neurons (\d+) s; model load (\d+) s; total (\d+) s", out)
    assert times and int(times.group(3)) >= int(times.group(1))
    assert f"on {os.cpu_count()} cores" in out and "machine load average (1/5/15 min):" in out
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "reused    neurons" in again and "step times: none (all reused)" in again
