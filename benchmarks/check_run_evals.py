"""interp's dictionary metrics against SAELens's own ``run_evals``: one stored SAE, the same tokens.

    python benchmarks/check_run_evals.py --store /tmp/h17e-store \
        --dictionary smollm2-135m/L8-sae-topk-k16-x8-20k --batches 8 --batch-size 4 --ctx-len 32

1. Windows: `batches` x `batch_size` held-out windows of the corpus (BOS, then ctx_len - 1 tokens;
   documents inside a window are separated by EOS), e.g. 8 batches of 4 x 32 = 128 tokens.
2. interp: `interp.dictionaries.evaluation.evaluate_dictionary` with ``skip = 1`` (only BOS left
   unspliced and unscored) and with the dictionary's own ``skip_positions`` (2 for the jobs' SAEs).
3. SAELens: ``sae_lens.evals.run_evals`` on ``SAE.load_from_disk`` of the same store folder, with
   interp's model as is (its TransformerLens 3 ``TransformerBridge``: run_evals calls
   ``model(tokens, return_type="both", loss_per_token=True)``, ``run_with_hooks`` and
   ``run_with_cache(..., stop_at_layer=...)``, which the bridge takes), an identity
   ``ActivationScaler`` and an activation store that hands out exactly those windows. Twice:
   ignoring BOS only (``exclude_special_tokens=[bos]``) and with its default (every special id:
   BOS and EOS/pad, here the document separator too).
4. SAELens's two baselines recomputed by hand (`saelens_baselines`): the zero ablation of the
   site at *every* position, BOS included, and the KL over the full vocabulary at every scored
   position including the last.

Measured with the command above (a 20k-token TopK SAE, k = 16, on layer 8's MLP output; 32
windows x 32 tokens, 3 EOS inside them), interp skip 1 against SAELens BOS only: L0 16 = 16,
explained variance 0.546349 both (diff -1e-8), clean CE 4.347052 / 4.347053, spliced CE 4.401232
both; ablation CE 4.573901 / 4.618134, CE recovered 0.7612 / 0.8001, KL 0.0822 / 0.0972. By hand
with SAELens's conventions: ablation CE 4.618133, CE recovered 0.800133, full KL 0.097224 (SAELens
0.800137, 0.097224). interp skip 2 against SAELens's default: explained variance 0.5185 / 0.5460,
CE recovered 0.7125 / 0.8062.

What differs, and why:

- L0, explained variance, clean CE and spliced CE agree between interp (skip 1) and SAELens
  (BOS only) to float rounding: both splice and score the same positions, and both define
  explained variance as ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over all scored
  tokens (SAELens's ``explained_variance``; its ``explained_variance_legacy`` averages a
  per-token ratio instead and is not comparable).
- CE with ablation, hence CE recovered (SAELens's ``ce_loss_score``): SAELens zero-ablates the
  site at every position, BOS included; interp leaves the positions it never splices (BOS, and
  position 1 at skip 2) clean. Zeroing BOS's MLP output moves the attention sink, so SAELens's
  ablation is worse and its CE recovered higher. The hand-made all-position ablation reproduces
  SAELens's ablation CE.
- KL: interp keeps the clean top `kl_top` tokens plus one bucket for the rest (a lower bound of
  the full KL, by the log-sum inequality) and leaves out the last position, which predicts no
  scored token; SAELens takes the full vocabulary at every unmasked position. The hand-made
  full KL over SAELens's positions reproduces its number.
- SAELens's default also masks EOS, which the corpus windows use between documents: those
  positions are neither spliced nor scored there, while interp scores them like any token.
- interp at skip 2 (the jobs' setting) also leaves position 1 unspliced (the attention-sink
  artefact after BOS, `interp.dictionaries.activations`): a different, easier task than
  SAELens's, which splices it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp.dictionaries.evaluation import EvalConfig, evaluate_dictionary  # noqa: E402
from interp.models.interventions import ReplaceActivation  # noqa: E402

METRICS = ("l0", "explained_variance", "ce_clean", "ce_spliced", "ce_zero_ablation", "ce_recovered", "kl")


class FixedWindows:
    """The part of SAELens's ``ActivationsStore`` that ``run_evals`` uses, over fixed windows:
    ``get_batch_tokens`` hands out the next `batch_size` rows, ``reset_input_dataset`` starts over."""

    def __init__(self, tokens: torch.Tensor, batch_size: int) -> None:
        self.tokens, self.store_batch_size_prompts, self.context_size = tokens, batch_size, tokens.shape[1]
        self._next = 0

    def get_batch_tokens(self, batch_size: int | None = None, **_) -> torch.Tensor:
        n = batch_size or self.store_batch_size_prompts
        if self._next + n > self.tokens.shape[0]:
            raise ValueError(f"asked for windows {self._next}..{self._next + n} of {self.tokens.shape[0]}")
        out = self.tokens[self._next:self._next + n]
        self._next += n
        return out

    def reset_input_dataset(self) -> None:
        self._next = 0


def interp_metrics(adapter, dictionary, tokens: torch.Tensor, site: str, skip: int, batch_size: int) -> dict:
    """interp's metrics (no bootstrap) under SAELens's names where they have one."""
    m = evaluate_dictionary(adapter, dictionary, tokens, site, site,
                            EvalConfig(batch_size=batch_size, skip=skip, bootstrap=0))
    return {"l0": m.l0, "explained_variance": m.explained_variance, "ce_clean": m.ce_clean,
            "ce_spliced": m.ce_spliced, "ce_zero_ablation": m.ce_zero_ablation, "ce_recovered": m.ce_recovered,
            "kl": m.kl}


def saelens_metrics(sae, adapter, tokens: torch.Tensor, batch_size: int, exclude_special_tokens) -> dict:
    """``sae_lens.evals.run_evals`` on `tokens` in batches of `batch_size`, flattened to `METRICS`."""
    from sae_lens.evals import EvalConfig as SAELensEvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler

    n = tokens.shape[0] // batch_size
    config = SAELensEvalConfig(batch_size_prompts=batch_size, n_eval_reconstruction_batches=n,
                               n_eval_sparsity_variance_batches=n, compute_kl=True, compute_ce_loss=True,
                               compute_sparsity_metrics=True, compute_variance_metrics=True)
    metrics, _ = run_evals(sae, FixedWindows(tokens, batch_size), adapter.bridge, ActivationScaler(), config,
                           exclude_special_tokens=exclude_special_tokens)
    perf, behaviour = metrics["model_performance_preservation"], metrics["model_behavior_preservation"]
    return {"l0": metrics["sparsity"]["l0"], "explained_variance": metrics["reconstruction_quality"]["explained_variance"],
            "ce_clean": perf["ce_loss_without_sae"], "ce_spliced": perf["ce_loss_with_sae"],
            "ce_zero_ablation": perf["ce_loss_with_ablation"], "ce_recovered": perf["ce_loss_score"],
            "kl": behaviour["kl_div_with_sae"]}


@torch.no_grad()
def saelens_baselines(adapter, dictionary, tokens: torch.Tensor, site: str, batch_size: int) -> dict:
    """SAELens's conventions by hand, BOS the only masked token: CE with the site zeroed at every
    position (BOS included) over the predictions from positions >= 1, and the full-vocabulary
    KL(clean || spliced) at positions >= 1, the last one included."""
    ce_sum = kl_sum = 0.0
    n_ce = n_kl = 0
    for start in range(0, tokens.shape[0], batch_size):
        batch = tokens[start:start + batch_size]
        run = adapter.run(batch, names=[site])
        x = run.cache[site].float()  # (batch, pos, d)
        spliced = torch.cat([x[:, :1], dictionary(x[:, 1:])], 1)
        logits = adapter.logits(batch, interventions=[ReplaceActivation(site, lambda a, s=spliced: s.to(a.dtype))])
        zeroed = adapter.logits(batch, interventions=[ReplaceActivation(site, torch.zeros_like)])
        logp = zeroed[:, 1:-1].float().log_softmax(-1)  # predictions from positions 1 .. pos-2
        ce_sum += float(-logp.gather(-1, batch[:, 2:, None]).sum())
        n_ce += logp.shape[0] * logp.shape[1]
        p, q = run.output[:, 1:].float().log_softmax(-1), logits[:, 1:].float().log_softmax(-1)
        kl_sum += float((p.exp() * (p - q)).sum())
        n_kl += p.shape[0] * p.shape[1]
    return {"ce_zero_ablation_all_positions": ce_sum / n_ce, "kl_full_vocab_all_positions": kl_sum / n_kl}


def _table(columns: dict[str, dict]) -> str:
    names = list(columns)
    lines = [f"{'metric':<20}" + "".join(f"{n:>22}" for n in names) + f"{'interp - SAELens':>18}"]
    first, second = names[0], names[1]
    for metric in METRICS:
        vals = [columns[n].get(metric, float("nan")) for n in names]
        lines.append(f"{metric:<20}" + "".join(f"{v:>22.6f}" for v in vals)
                     + f"{columns[first][metric] - columns[second][metric]:>18.2e}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="store root holding the dictionary")
    p.add_argument("--dictionary", required=True, help="store name of an SAE")
    p.add_argument("--corpus", default="imdb")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--ctx-len", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from sae_lens import SAE

    from interp.corpus import token_windows
    from interp.dictionaries.io import load_dictionary
    from interp.models import load_model
    from interp.store import Store

    store = Store(args.store)
    dictionary, meta = load_dictionary(store, args.dictionary)
    if dictionary.kind != "sae":
        raise SystemExit(f"{args.dictionary!r} is a {dictionary.kind}; run_evals evaluates SAEs")
    sae = SAE.load_from_disk(str(store.dictionary_dir(args.dictionary)))
    adapter = load_model(meta["model_name"])
    site, own_skip = meta["hook_name"], int(meta.get("skip_positions", 1))
    n = args.batches * args.batch_size
    tokens = token_windows(args.corpus, adapter.tokenizer, split="heldout", ctx_len=args.ctx_len,
                           max_tokens=n * args.ctx_len).tokens[:n]
    bos, eos = adapter.tokenizer.bos_token_id, adapter.tokenizer.eos_token_id
    print(f"{args.dictionary} at {site}: {n} windows x {args.ctx_len} tokens; "
          f"EOS inside the windows: {int((tokens[:, 1:] == eos).sum())}")
    t = time.time()
    ours = interp_metrics(adapter, dictionary, tokens, site, 1, args.batch_size)
    ours_own = interp_metrics(adapter, dictionary, tokens, site, own_skip, args.batch_size)
    t_interp = time.time() - t
    t = time.time()
    theirs = saelens_metrics(sae, adapter, tokens, args.batch_size, [bos])
    theirs_default = saelens_metrics(sae, adapter, tokens, args.batch_size, True)
    t_saelens = time.time() - t
    hand = saelens_baselines(adapter, dictionary, tokens, site, args.batch_size)
    print(_table({"interp skip=1": ours, "SAELens BOS only": theirs}))
    print()
    print(_table({f"interp skip={own_skip}": ours_own, "SAELens default": theirs_default}))
    print()
    recovered = (hand["ce_zero_ablation_all_positions"] - ours["ce_spliced"]) / \
        (hand["ce_zero_ablation_all_positions"] - ours["ce_clean"])
    print(f"by hand, SAELens's conventions: CE zero-ablated at every position {hand['ce_zero_ablation_all_positions']:.6f}"
          f" (SAELens {theirs['ce_zero_ablation']:.6f}), CE recovered from it {recovered:.6f}"
          f" (SAELens {theirs['ce_recovered']:.6f}), full-vocabulary KL {hand['kl_full_vocab_all_positions']:.6f}"
          f" (SAELens {theirs['kl']:.6f})")
    print(f"wall: interp {t_interp:.1f} s (two evaluations), SAELens {t_saelens:.1f} s (two run_evals)")


if __name__ == "__main__":
    main()
