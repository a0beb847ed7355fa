"""How close each lens comes to the model's output, per row, on held-out tokens.

1. Run the model over held-out windows (BOS-prefixed, column 0 left out), ``batch_windows``
   at a time, caching every lens row (`residual_stack`).
2. Per row and token: ``KL(p || q)`` with ``p`` the model's final distribution and ``q`` the
   logit lens, and the same with the tuned lens when one is given (float32 throughout).
3. Per row: the mean KL over tokens and a 95% t interval over windows (each window's mean
   KL is one unit: tokens of a window share a document and are not independent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.methods.lenses.logit_lens import FinalTarget, Head, lens_rows, residual_stack
from interp.stats import mean_interval


@dataclass(frozen=True)
class LensComparison:
    """Per-row KL to the final output of the logit lens (and the tuned lens) on held-out tokens."""

    table: pd.DataFrame
    """One row per lens row: row, site, kl_logit, kl_logit_lo, kl_logit_hi and, with a tuned
    lens, kl_tuned, kl_tuned_lo, kl_tuned_hi (nats)."""
    n_tokens: int
    n_windows: int


@torch.no_grad()
def _window_kls(adapter, windows: torch.Tensor, lens, batch_windows: int) -> dict[str, np.ndarray]:
    """{'logit': (rows, n_windows), 'tuned': ...} mean KL per window (steps 1-2)."""
    head = Head(adapter)
    out: dict[str, list[np.ndarray]] = {"logit": []} | ({"tuned": []} if lens is not None else {})
    for start in range(0, windows.shape[0], batch_windows):
        stack = residual_stack(adapter, windows[start:start + batch_windows].to(adapter.device))
        resid, final = stack.resid[:, :, 1:], stack.logits[:, 1:]  # BOS column dropped
        target = FinalTarget(final)
        for name in out:
            per_row = []
            for row in range(resid.shape[0]):
                h = resid[row] if name == "logit" else lens(row, resid[row])
                per_row.append(target.kl(head(h)).mean(-1).numpy())  # (batch,)
            out[name].append(np.stack(per_row))
    return {name: np.concatenate(parts, axis=1) for name, parts in out.items()}


def compare_lenses(adapter, windows: torch.Tensor, lens=None, batch_windows: int = 4) -> LensComparison:
    """Steps 1-3 on `windows` (n, ctx_len) held-out token windows; `lens` a `TunedLens` or None."""
    if windows.ndim != 2 or windows.shape[1] < 2 or windows.shape[0] < 1:
        raise ValueError(f"windows must be (n_windows >= 1, ctx_len >= 2) token ids, got {tuple(windows.shape)}")
    if lens is not None:
        lens.check(adapter)
    kls = _window_kls(adapter, windows, lens, batch_windows)
    rows = lens_rows(adapter)
    table = pd.DataFrame({"row": [r.label for r in rows], "site": [r.site for r in rows]})
    for name, values in kls.items():
        table[f"kl_{name}"] = values.mean(1)
        bounds = [mean_interval(v) for v in values]
        table[f"kl_{name}_lo"] = [lo for lo, _ in bounds]
        table[f"kl_{name}_hi"] = [hi for _, hi in bounds]
    return LensComparison(table, int(windows.shape[0] * (windows.shape[1] - 1)), int(windows.shape[0]))
