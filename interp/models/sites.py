"""Standard hook names of a model: the grammar lives in `interp.sites` (strings only, no
torch); this module names it where the model stack (`ModelAdapter.sites`) uses it."""

from interp.sites import (EMBED, FINAL_NORMALIZED, FINAL_RESID, SITE_KINDS, UNEMBED_IN, LayerSites, Site, layer_of,
                          layer_sites, parse_site, site_kind)

__all__ = ["EMBED", "FINAL_NORMALIZED", "FINAL_RESID", "SITE_KINDS", "UNEMBED_IN", "LayerSites", "Site", "layer_of",
           "layer_sites", "parse_site", "site_kind"]
