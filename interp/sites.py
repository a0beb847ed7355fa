"""Hook names: the address space every method, the store and the app speak in (strings only).

These are TransformerLens ``TransformerBridge`` hook names. Norms are NOT folded into the
weights (the bridge runs the raw Hugging Face weights), so activations equal the HF model's
bit for bit. The normalised sites (``*.hook_normalized``) hold ``(x - mean) / scale`` before
the norm's gain and bias - the same values a folded HookedTransformer shows at that hook -
and `ModelWeights.layer(l, fold_norms=True)` gives the matching folded weights.

The grammar:

- a block site is ``blocks.<L>.<hook>``: ``L`` a non-negative integer, ``hook`` a dotted path
  of identifiers (``mlp.hook_post``, ``ln2.hook_normalized``, ``attn.hook_z``, ...);
- a model-wide site is a dotted path of identifiers outside ``blocks``
  (``hook_embed``, ``ln_final.hook_normalized``, ``unembed.hook_in``).

`layer_of` gives a site's block (None for model-wide sites), `site_kind` names the standard
site a hook is (the `LayerSites` field: ``mlp_hidden`` for ``mlp.hook_post``, ...). Nothing
here imports torch, so figures, the app and the store can parse sites without the model stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import NamedTuple

EMBED = "hook_embed"
FINAL_RESID = "ln_final.hook_in"
FINAL_NORMALIZED = "ln_final.hook_normalized"
UNEMBED_IN = "unembed.hook_in"

HOOK_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
"""Any dotted hook name (what `FeatureId.site` accepts)."""
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)$")
VALID_FORMS = ("'blocks.<layer>.<hook>' (e.g. 'blocks.3.mlp.hook_post', 'blocks.3.ln2.hook_normalized') "
               "or a model-wide hook such as 'hook_embed' or 'ln_final.hook_normalized'")


@dataclass(frozen=True)
class LayerSites:
    """Hook names of one transformer block."""

    layer: int
    resid_pre: str
    resid_mid: str | None
    """None for parallel attention+MLP blocks (GPT-NeoX/Pythia): there is no mid point."""
    resid_post: str
    attn_in: str
    """ln1 output before gain/bias: what Q/K/V read (with folded ln1 weights)."""
    attn_pattern: str
    """(batch, head, query_pos, key_pos) softmaxed attention."""
    attn_z: str
    """(batch, pos, head, d_head) per-head value mix, before W_O."""
    attn_out: str
    mlp_in: str
    """ln2 output before gain/bias: the MLP's normalised input (transcoder input)."""
    mlp_pre: str
    """The pre-activation that goes through the nonlinearity (the gate for gated MLPs)."""
    mlp_hidden: str
    """The hidden activation ('neurons'), (batch, pos, d_mlp)."""
    mlp_out: str

    def all(self) -> list[str]:
        """Every site of this layer, skipping ones the architecture lacks."""
        names = [
            self.resid_pre, self.resid_mid, self.resid_post, self.attn_in, self.attn_pattern,
            self.attn_z, self.attn_out, self.mlp_in, self.mlp_pre, self.mlp_hidden, self.mlp_out,
        ]
        return [n for n in names if n is not None]


_HOOKS = {
    "resid_pre": "hook_resid_pre", "resid_mid": "hook_resid_mid", "resid_post": "hook_resid_post",
    "attn_in": "ln1.hook_normalized", "attn_pattern": "attn.hook_pattern", "attn_z": "attn.hook_z",
    "attn_out": "hook_attn_out", "mlp_in": "ln2.hook_normalized", "mlp_pre": "mlp.hook_pre",
    "mlp_hidden": "mlp.hook_post", "mlp_out": "hook_mlp_out",
}
"""`LayerSites` field -> the hook inside ``blocks.<L>.``."""
SITE_KINDS = tuple(f.name for f in fields(LayerSites) if f.name != "layer")
"""The standard kinds of block site, in `LayerSites` order."""
_KIND_OF_HOOK = {hook: kind for kind, hook in _HOOKS.items()}


class Site(NamedTuple):
    """A parsed hook name: its block (None for model-wide sites) and the hook inside it."""

    layer: int | None
    hook: str


def layer_sites(layer: int, parallel_attn_mlp: bool = False) -> LayerSites:
    """The standard sites of block `layer` (not range-checked: see ModelAdapter.sites)."""
    names = {kind: f"blocks.{layer}.{hook}" for kind, hook in _HOOKS.items()}
    if parallel_attn_mlp:
        names["resid_mid"] = None
    return LayerSites(layer=layer, **names)


def parse_site(site: str) -> Site:
    """Split a hook name into (layer, hook); a ValueError naming `site` and the valid forms."""
    if not isinstance(site, str) or not HOOK_NAME_RE.match(site):
        raise ValueError(f"site {site!r} is not a hook name; valid forms: {VALID_FORMS}")
    if site == "blocks" or site.startswith("blocks."):
        match = _BLOCK_RE.match(site)
        if match is None:
            raise ValueError(f"site {site!r} is not a block hook name; valid forms: {VALID_FORMS}")
        return Site(int(match.group(1)), match.group(2))
    return Site(None, site)


def layer_of(site: str) -> int | None:
    """The block index a hook name belongs to (None for embed / final-norm sites)."""
    return parse_site(site).layer


def site_kind(site: str) -> str | None:
    """The `LayerSites` field `site` is (``"mlp_hidden"`` for ``blocks.3.mlp.hook_post``),
    ``"embed"`` / ``"final_resid"`` / ``"final_normalized"`` / ``"unembed_in"`` for the
    model-wide standard sites, None for any other (valid) hook."""
    layer, hook = parse_site(site)
    if layer is not None:
        return _KIND_OF_HOOK.get(hook)
    return {EMBED: "embed", FINAL_RESID: "final_resid", FINAL_NORMALIZED: "final_normalized",
            UNEMBED_IN: "unembed_in"}.get(hook)

