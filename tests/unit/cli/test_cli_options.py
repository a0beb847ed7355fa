"""Options generated from config dataclasses: defaults, round trip, the shared --home/--store."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from interp.cli import build_parser, main
from interp.cli.options import add_config_arguments, config_fields, config_from_args
from interp.dictionaries.train_config import TrainConfig
from interp.jobs.dictionaries import DataConfig
from interp.jobs.neuron_map import MapConfig
from interp.methods.neurons.clamping import ClampConfig


@dataclass(frozen=True)
class _Demo:
    """A config with one field of each supported kind."""

    width: int = 7
    """How wide."""
    rate: float = 0.5
    """How fast."""
    names: tuple[str, ...] = ("a", "b")
    """Which ones."""
    flag: bool = False
    """Whether."""
    limit: int | None = None
    """Optional cap."""


def test_generated_options_carry_the_field_defaults_types_and_docstrings():
    parser = argparse.ArgumentParser()
    assert add_config_arguments(parser, _Demo) == ["width", "rate", "names", "flag", "limit"]
    args = parser.parse_args([])
    assert (args.width, args.rate, args.names, args.flag, args.limit) == (7, 0.5, ("a", "b"), False, None)
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["width"] == "How wide. (default: 7)" and helps["names"] == "Which ones. (default: a,b)"
    args = parser.parse_args(["--width", "3", "--rate", "2", "--names", "x, y,z", "--flag", "--limit", "4"])
    assert config_from_args(_Demo, args) == _Demo(3, 2.0, ("x", "y", "z"), True, 4)
    with pytest.raises(SystemExit):
        parser.parse_args(["--width", "wide"])


def test_cli_defaults_are_the_config_defaults():
    parser = build_parser()
    mp = parser.parse_args(["map-neurons", "--model", "m"])
    assert config_from_args(MapConfig, mp) == MapConfig()
    cl = parser.parse_args(["clamp", "--model", "m", "--neuron", "1:2", "--value", "4", "--prompt", "p"])
    assert config_from_args(ClampConfig, cl, values=(4.0,)) == ClampConfig(values=(4.0,))
    tr = parser.parse_args(["train", "--kind", "sae", "--layer", "3"])
    fields = {f.name for f in config_fields(TrainConfig)}
    for name in ("arch", "expansion", "train_tokens", "seed", "skip"):
        assert name in fields and getattr(tr, name) == getattr(TrainConfig(), name)
    # The command line's training recipe, the one documented where `train` adds its options:
    assert (tr.lr, tr.batch_size, tr.warmup_steps, tr.b_dec_init) == (2e-3, 256, 50, "geometric_median")
    assert (tr.topk_resample_every, tr.topk_resample_scale) == (50, 1.5)
    for name in ("corpus", "ctx_len", "activation_tokens", "dashboard_tokens", "skip_positions"):
        assert getattr(tr, "data_" + name) == getattr(DataConfig(), name)
    assert tr.data_eval_tokens == 10_240


def test_existing_option_names_still_parse_and_round_trip():
    parser = build_parser()
    mp = parser.parse_args(["map-neurons", "--model", "m", "--layers", "0,5-7", "--top-k", "3",
                            "--directions", "up,down", "--variants", "raw", "--chunk-size", "64",
                            "--reduction", "torch"])
    assert config_from_args(MapConfig, mp) == MapConfig(directions=("up", "down"), variants=("raw",), top_k=3,
                                                        chunk_size=64, layers=(0, 5, 6, 7), reduction="torch")
    cl = parser.parse_args(["clamp", "--model", "m", "--neuron", "1:2", "--value", "4", "--prompt", "p",
                            "--controls", "19", "--positions", "last", "--generate", "5"])
    assert config_from_args(ClampConfig, cl, values=(4.0,)) == ClampConfig(
        values=(4.0,), n_controls=19, positions="last", generate_tokens=5)


@pytest.mark.parametrize("flag", ["--home", "--store"])
def test_empty_home_or_store_is_an_error_naming_the_value(flag, capsys):
    assert main([flag, "", "store", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} ''" in err and "empty" in err and "Traceback" not in err


def test_top_level_store_reaches_every_subcommand(tmp_path):
    args = build_parser().parse_args(["--store", str(tmp_path), "show", "neuron", "m", "1:2"])
    from interp.cli import _apply_roots

    _apply_roots(args)
    assert args.store == str(tmp_path)
    own = build_parser().parse_args(["--store", "a", "map-neurons", "--model", "m", "--store", "b"])
    _apply_roots(own)
    assert own.store == "b"


def test_complexity_options_map_onto_run_config():
    from interp.cli.complexity import _config
    from interp.jobs.complexity import RunConfig

    parser = build_parser()
    assert _config(parser.parse_args(["complexity", "--features", "neurons:layers=1"])) == RunConfig()
    c = _config(parser.parse_args(["complexity", "--features", "q", "--no-flow", "--tokens", "1000",
                                   "--positions", "0", "--importance-windows", "0", "--seed", "3"]))
    assert (c.flow, c.n_tokens, c.positions_per_window, c.importance_windows, c.seed, c.complexity.seed) == \
        (False, 1000, None, 0, 3, 3)


def test_attribute_options_are_reagent_config_fields():
    from interp.cli.attribute import _config
    from interp.methods.attribution.reagent import ReagentConfig

    parser = build_parser()
    assert _config(parser.parse_args(["attribute", "--prompt", "x"])) == ReagentConfig()
    args = parser.parse_args(["attribute", "--prompt", "x", "--replacer", "prediction", "--max-probe-steps", "200",
                              "--num-probes", "4", "--keep-top-n", "2", "--seed", "5", "--importance", "minmax"])
    assert _config(args) == ReagentConfig(replacer="prediction", max_probe_steps=200, num_probes=4, keep_top_n=2,
                                          seed=5, importance="minmax")


def test_obsprop_options_are_config_fields(capsys):
    from interp.methods.obsprop.efficiency import EfficiencyConfig

    parser = build_parser()
    args = parser.parse_args(["obsprop-efficiency"])
    assert config_from_args(EfficiencyConfig, args) == EfficiencyConfig()
    args = parser.parse_args(["obsprop-efficiency", "--ks", "1,2,4", "--seeds", "2", "--component", "M3"])
    assert config_from_args(EfficiencyConfig, args) == EfficiencyConfig(ks=(1, 2, 4), seeds=2, component="M3")
    with pytest.raises(SystemExit):
        parser.parse_args(["obsprop-efficiency", "--ks", "1,two"])
    assert "'1,two' is not a comma-separated list of int" in capsys.readouterr().err
