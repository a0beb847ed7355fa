"""Standard hook names: the address space every method, the store and the app speak in.

These are TransformerLens ``TransformerBridge`` hook names. Norms are NOT folded into the
weights (the bridge runs the raw Hugging Face weights), so activations equal the HF model's
bit for bit. The normalised sites (``*.hook_normalized``) hold ``(x - mean) / scale`` before
the norm's gain and bias - the same values a folded HookedTransformer shows at that hook -
and `ModelWeights.layer(l, fold_norms=True)` gives the matching folded weights.
"""

from __future__ import annotations

from dataclasses import dataclass

EMBED = "hook_embed"
FINAL_RESID = "ln_final.hook_in"
FINAL_NORMALIZED = "ln_final.hook_normalized"
UNEMBED_IN = "unembed.hook_in"


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


def layer_sites(layer: int, parallel_attn_mlp: bool = False) -> LayerSites:
    """The standard sites of block `layer` (not range-checked: see ModelAdapter.sites)."""
    b = f"blocks.{layer}"
    return LayerSites(
        layer=layer,
        resid_pre=f"{b}.hook_resid_pre",
        resid_mid=None if parallel_attn_mlp else f"{b}.hook_resid_mid",
        resid_post=f"{b}.hook_resid_post",
        attn_in=f"{b}.ln1.hook_normalized",
        attn_pattern=f"{b}.attn.hook_pattern",
        attn_z=f"{b}.attn.hook_z",
        attn_out=f"{b}.hook_attn_out",
        mlp_in=f"{b}.ln2.hook_normalized",
        mlp_pre=f"{b}.mlp.hook_pre",
        mlp_hidden=f"{b}.mlp.hook_post",
        mlp_out=f"{b}.hook_mlp_out",
    )


def layer_of(site: str) -> int | None:
    """The block index a hook name belongs to (None for embed / final-norm sites)."""
    parts = site.split(".")
    if len(parts) > 1 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None
