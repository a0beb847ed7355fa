"""Non-finite values in dictionary training and saving: detect, skip, count, refuse.

One NaN or Inf activation, loss or weight would otherwise spread through Adam's moments into
every weight of the dictionary with no error. Per training step (`BatchGuard`):

1. The batch's inputs and targets are checked; a non-finite batch is skipped (no step).
2. The loss is checked; a non-finite loss skips the step likewise.
3. The weights and Adam state are kept before the step; if the step leaves any non-finite
   weight, they are put back and the batch counts as skipped.
4. Skipped batches are counted (the first one's step is kept); past `limit` training stops
   with a ValueError naming the count and the first bad batch.

Saving (`require_finite`) refuses any tensor with a non-finite value, naming it.
"""

from __future__ import annotations

import torch


def require_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Raise ValueError naming the first tensor of `tensors` that holds a NaN or Inf."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"refusing to save {what}: {name} has {bad} non-finite value(s) (NaN/Inf)")


class BatchGuard:
    """Counts the batches skipped for non-finite values (module docstring, steps 1-4)."""

    def __init__(self, limit: int, skipped: int = 0, first_bad: int | None = None):
        self.limit, self.skipped, self.first_bad = limit, skipped, first_bad
        self._saved: list[torch.Tensor] | None = None
        self.last = None
        """The last step's `_loss` output (loss, metrics, encoded, y_hat)."""

    def _skip(self, step: int, reason: str) -> bool:
        self.skipped += 1
        if self.first_bad is None:
            self.first_bad = step
        if self.skipped > self.limit:
            raise ValueError(f"training stopped: {self.skipped} batches skipped for non-finite values "
                             f"(limit max_bad_batches={self.limit}); the first bad one was batch {self.first_bad}, "
                             f"the last {step} ({reason}); check the activations for NaN/Inf")
        return True

    def bad_inputs(self, step: int, x: torch.Tensor, y: torch.Tensor) -> bool:
        """True (and counted) when the batch's inputs or targets hold a NaN/Inf."""
        if bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all()):
            return False
        return self._skip(step, "non-finite inputs or targets")

    def bad_loss(self, step: int, loss: torch.Tensor) -> bool:
        """True (and counted) when the loss is NaN/Inf."""
        return False if bool(torch.isfinite(loss.detach())) else self._skip(step, "non-finite loss")

    def keep(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        """Copy the weights and Adam state before a step (into buffers reused across steps)."""
        live = _state_tensors(model, opt)
        if self._saved is None or len(self._saved) != len(live) or \
                any(a.shape != b.shape for a, b in zip(self._saved, live)):
            self._saved = [t.detach().clone() for t in live]
        else:
            for buf, t in zip(self._saved, live):
                buf.copy_(t)

    def bad_weights(self, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer) -> bool:
        """True (counted, and the kept weights and Adam state put back) when a weight went NaN/Inf."""
        if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            return False
        with torch.no_grad():
            for t, buf in zip(_state_tensors(model, opt), self._saved):
                t.copy_(buf)
        return self._skip(step, "the step made weights non-finite")


def _state_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    out = [p.data for p in model.parameters()]
    for p in model.parameters():
        out += [v for v in opt.state.get(p, {}).values() if isinstance(v, torch.Tensor)]
    return out
