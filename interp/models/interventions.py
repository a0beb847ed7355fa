"""Interventions: values you pass to a run, never mutations that outlive it.

Each intervention names a site (hook name) and says how to change the activation there.
`ModelAdapter.intervene(...)` installs them for the duration of a ``with`` block and always
removes them; `ModelAdapter.run(..., interventions=...)` does the same for one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

Positions = int | Sequence[int] | slice | None
"""Which sequence positions to touch: None = all, an int (negative counts from the end)."""


def _pos_index(positions: Positions):
    if positions is None:
        return slice(None)
    if isinstance(positions, (int, slice)):
        return positions
    return list(positions)


@dataclass(frozen=True)
class AddVector:
    """Add ``scale * vector`` to the activation at `site` (steering)."""

    site: str
    vector: torch.Tensor
    """(d_site,) - broadcast over batch and the chosen positions."""
    scale: float = 1.0
    positions: Positions = None

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        # act: (batch, pos, d_site); positions index the pos axis.
        act[:, _pos_index(self.positions)] += self.scale * self.vector.to(act.dtype)
        return act


@dataclass(frozen=True)
class ClampUnit:
    """Set unit(s) `index` of the activation at `site` to `value` (clamping a neuron/latent)."""

    site: str
    index: int | Sequence[int]
    value: float
    positions: Positions = None

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        units = [self.index] if isinstance(self.index, int) else list(self.index)
        act[:, _pos_index(self.positions), units] = float(self.value)
        return act


@dataclass(frozen=True)
class ReplaceActivation:
    """Replace the activation at `site` with ``fn(act)`` (splicing in a reconstruction)."""

    site: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    """Maps the clean activation to its replacement, same shape."""

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        out = self.fn(act)
        if out.shape != act.shape:
            raise ValueError(f"replacement at {self.site} has shape {tuple(out.shape)}, expected {tuple(act.shape)}")
        return out


Intervention = AddVector | ClampUnit | ReplaceActivation
