"""Difference-of-means (probe) directions to steer along, and their store rows.

1. Activations: each prompt runs once; its activation at `site` is taken at its last real
   position (``position="last"``) or averaged over its real positions after BOS
   (``"mean"``), giving ``x_i`` (d_site,).
2. Direction: ``w = mean(x_i : positive) - mean(x_i : negative)`` - the class-mean difference,
   the simplest linear probe of the concept that separates the two prompt sets (its steering
   adds "more positive, less negative").
3. Store (`save_directions`): tensor bundle ``probe/<model>/<name>`` holding ``directions``
   (n, d_site), and one ``features`` row per direction (kind ``probe``, source `name`, index
   its row, ``metrics.bundle`` naming the bundle, ``metrics.norm`` its length), which
   `interp.methods.steering.directions` resolves by key.
"""

from __future__ import annotations

from typing import Sequence

import torch

from interp.features import FeatureId, FeatureKind

POSITIONS = ("last", "mean")


def _activations(adapter, prompts: Sequence[str], site: str, position: str) -> torch.Tensor:
    """Step 1: (n_prompts, d_site)."""
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"every prompt set needs at least one non-empty prompt, got {list(prompts)!r}")
    batch = adapter.tokenize(list(prompts))
    acts = adapter.run(batch.tokens, names=[adapter.check_site(site)]).cache[site].float()  # (n, pos, d)
    lengths = batch.lengths.to(torch.long)
    if position == "last":
        return acts[torch.arange(len(lengths)), lengths - 1]
    start = 1 if adapter.prepend_bos else 0
    pos = torch.arange(acts.shape[1])[None, :]
    mask = ((pos >= start) & (pos < lengths[:, None])).float()  # (n, pos) real tokens after BOS
    return (acts * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)


def mean_difference(adapter, positive: Sequence[str], negative: Sequence[str], site: str,
                    position: str = "last") -> torch.Tensor:
    """Steps 1-2: the (d_site,) difference of the two prompt sets' mean activations at `site`."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; valid: {', '.join(POSITIONS)}")
    pos = _activations(adapter, positive, site, position)
    neg = _activations(adapter, negative, site, position)
    return pos.mean(0) - neg.mean(0)


def save_directions(store, adapter, name: str, site: str, directions: torch.Tensor, labels: Sequence[str],
                    run_id: str) -> list[FeatureId]:
    """Step 3: store (n, d_site) `directions` at `site` as probe features of source `name`."""
    directions = torch.as_tensor(directions).detach().float()
    directions = directions[None] if directions.ndim == 1 else directions
    site = adapter.check_site(site)
    if directions.ndim != 2 or directions.shape[1] != adapter.site_dim(site) or len(labels) != directions.shape[0]:
        raise ValueError(f"directions must be (n, {adapter.site_dim(site)}) with one label each, got "
                         f"{tuple(directions.shape)} and {len(labels)} labels")
    model = adapter.store_name
    bundle = f"probe/{model}/{name}"
    store.save_tensors(bundle, {"directions": directions.contiguous()}, {"model": model, "site": site, "name": name},
                       run_id=run_id)
    ids = [FeatureId(model, site, FeatureKind.PROBE, i, name) for i in range(directions.shape[0])]
    store.write("features", [{**fid.to_record(), "label": label,
                              "metrics": {"bundle": bundle, "norm": float(directions[i].norm())}}
                             for i, (fid, label) in enumerate(zip(ids, labels))], run_id=run_id)
    return ids
