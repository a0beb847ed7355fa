"""The hook-name grammar of `interp.sites` (strings only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interp.sites import SITE_KINDS, Site, layer_of, layer_sites, parse_site, site_kind


@pytest.mark.parametrize("site, layer", [
    ("blocks.0.hook_resid_pre", 0), ("blocks.3.mlp.hook_post", 3), ("blocks.12.ln2.hook_normalized", 12),
    ("blocks.29.attn.hook_z", 29), ("blocks.7.hook_attn_in", 7), ("hook_embed", None),
    ("ln_final.hook_normalized", None), ("unembed.hook_in", None), ("hook_pos_embed", None),
])
def test_layer_of(site, layer):
    assert layer_of(site) == layer


def test_parse_site_splits_layer_and_hook():
    assert parse_site("blocks.4.mlp.hook_pre") == Site(4, "mlp.hook_pre")
    assert parse_site("ln_final.hook_in") == Site(None, "ln_final.hook_in")


@pytest.mark.parametrize("bad", ["", "blocks", "blocks.3", "blocks.x.mlp.hook_post", "blocks.-1.hook_resid_pre",
                                 "blocks.3..hook_z", "mlp hook", "3.mlp.hook_post", ".hook_embed", None, 3])
def test_bad_names_raise_naming_the_value_and_the_forms(bad):
    with pytest.raises(ValueError) as info:
        layer_of(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "blocks.<layer>.<hook>" in message and "hook_embed" in message


def test_layer_sites_and_kinds_round_trip():
    s = layer_sites(5)
    assert s.mlp_hidden == "blocks.5.mlp.hook_post"
    assert s.mlp_in == "blocks.5.ln2.hook_normalized"
    assert s.attn_in == "blocks.5.ln1.hook_normalized"
    assert len(s.all()) == 11 and len(SITE_KINDS) == 11
    for kind in SITE_KINDS:
        name = getattr(s, kind)
        assert site_kind(name) == kind and layer_of(name) == 5
    parallel = layer_sites(2, parallel_attn_mlp=True)
    assert parallel.resid_mid is None and len(parallel.all()) == 10
    assert site_kind("hook_embed") == "embed"
    assert site_kind("ln_final.hook_normalized") == "final_normalized"
    assert site_kind("blocks.1.attn.hook_q") is None  # a valid hook outside the standard set


def test_the_grammar_needs_no_torch():
    code = "import sys, interp.sites; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
