"""ObsProp on labelled tasks: the data-efficiency experiment and the pronoun pipeline.

Data efficiency (Dunefsky & Cohan 2023, sec. 6), for a task = (labelled set, observable):

1. Pick the component c (default: the largest feature norm for the observable, ranked
   with data-free vectors: heads exact, MLPs linearised). Run every item once; keep what c
   reads at the last real token, ``x_i`` (d_model): for an MLP its input
   (``ln2.hook_normalized``), for a head the attention-weighted mix of its inputs
   ``sum_j A_h[last, j] a_j`` (so ``x_i . y`` is exactly the head's direct contribution);
   and the true observable value ``n . logits_i``.
   With ``component="R<L>"`` the site is the residual stream before block L at the last
   token and ObsProp sums *every* path from there to the logits through that position:
   attention patterns and norm scales frozen (norms reduce to their gains, as in step 2 of
   `obsprop`), MLPs linearised at each input - the per-item gradient ``g_i`` of the
   observable w.r.t. ``x_i`` under those freezes, computed by autograd.
2. For k = 1, 2, 4, ... per class (several seeds; k training items per class, nested in k,
   and a fixed held-out part whose groups never appear in training):
   - ObsProp: for an MLP ``y = mean_i J_i^T v`` over the 2k training inputs
     (`obsprop.mlp_gradient_vector`; the labels are not used); for a head ``y`` needs no
     data at all (`obsprop.head_vector`); for ``R<L>`` the mean of ``g_i`` over the 2k
     training items;
   - logistic-regression probe (scikit-learn, default L2) on the 2k labelled inputs;
   - difference of means ``mean(x | positive) - mean(x | negative)``.
3. Score held-out items with ``x . direction``: AUROC against the labels (the observable's
   favoured class is positive) and Pearson correlation with the true observable value.

Tasks (`TASKS`), all on the model's own next-token prediction at the end of the text:
- ``pronoun``: occupation sentences, ``" she" - " he"`` (favours the female stereotype).
- ``code``: Python vs C snippets cut to `max_tokens`; mean logit of tokens that occur in
  only one of the languages - Python ``" self", " None", " def", " elif", "):"`` minus C
  ``" int", " struct", " NULL", " void", ";"`` - i.e. how much the model expects Python
  syntax next.
- ``sentiment``: review openings; ``" great", " excellent"`` minus ``" bad", " terrible"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from interp.methods.obsprop.observables import Observable, token_set
from interp.models import ReplaceActivation
from interp.methods.obsprop.propagation import Component, ObsPropConfig, final_vector, head_vector, mlp_gradient_vector, obsprop

METHODS = ("obsprop", "probe", "diff_means")


@dataclass(frozen=True)
class TaskSpec:
    """A labelled set with the observable that reads its label off the logits."""

    labelled: str
    """Name for `interp.corpus.labelled_set`."""
    terms: tuple[tuple[str, float], ...]
    """Observable as (token, weight) pairs."""
    positive_label: int
    """The class the observable favours (scores above the others')."""
    n_per_class: int | None = None
    max_tokens: int | None = None
    """Cut every text to this many tokens (after BOS); None keeps them whole."""

    def observable(self, adapter) -> Observable:
        return token_set(adapter, list(self.terms))


def _mean_terms(pos, neg):
    return tuple((t, 1 / len(pos)) for t in pos) + tuple((t, -1 / len(neg)) for t in neg)


TASKS = {
    "pronoun": TaskSpec("pronoun_occupation", ((" she", 1.0), (" he", -1.0)), positive_label=0),
    "code": TaskSpec("code_language", _mean_terms((" self", " None", " def", " elif", "):"),
                                                  (" int", " struct", " NULL", " void", ";")),
                     positive_label=0, n_per_class=96, max_tokens=48),
    "sentiment": TaskSpec("sentiment", _mean_terms((" great", " excellent"), (" bad", " terrible")),
                          positive_label=1, n_per_class=96, max_tokens=64),
}


@dataclass(frozen=True)
class EfficiencyConfig:
    """The data-efficiency sweep."""

    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    """Training items per class."""
    seeds: int = 5
    """Random draws of the training items per k."""
    component: str | None = None
    """Where to compare: a head/MLP input ('M20', 'L26H2'), the residual before block L ('R20'),
    or None = the top component by feature norm."""
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.component is not None and _resid_layer(self.component) is None:
            Component.parse(self.component)
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive ints, got {self.ks!r}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class TaskActivations:
    """Per-item MLP inputs at the last token and true observable values."""

    acts: torch.Tensor
    """(n, d_model) what the component reads at the last token."""
    values: np.ndarray
    """(n,) ``n . logits`` at the last token."""
    component: Component | str
    grads: torch.Tensor | None = None
    """(n, d_model) frozen-pattern gradients of the observable (residual sites only)."""


@dataclass(frozen=True)
class EfficiencyResult:
    task: str
    table: pd.DataFrame
    """One row per (k, seed, method): auroc, corr."""
    ceiling_auroc: float
    """AUROC of the true observable value itself."""
    component: Component | str
    config: EfficiencyConfig = field(default_factory=EfficiencyConfig)

    def summary(self) -> pd.DataFrame:
        """Mean and std over seeds per (k, method)."""
        return self.table.groupby(["k", "method"])[["auroc", "corr"]].agg(["mean", "std"]).reset_index()


def top_component(adapter, observable: Observable) -> Component:
    """The head or MLP with the largest data-free feature norm (MLPs linearised)."""
    ranking = obsprop(adapter, observable, config=ObsPropConfig(mlp_method="linear")).ranking()
    return Component.parse(ranking["component"].iloc[0])


def task_activations(adapter, texts, observable: Observable, component: Component, max_tokens: int | None = None,
                     batch_size: int = 16, progress: bool = False) -> TaskActivations:
    """Run `texts` in batches; keep what `component` reads and the observable at the last token."""
    sites = adapter.sites(component.layer)
    names = [sites.attn_in, sites.attn_pattern] if component.kind == "head" else [sites.mlp_in]
    acts, values = [], []
    for batch in _batches(adapter, texts, max_tokens, batch_size, progress):
        run = adapter.run(batch.tokens, names=names)
        rows, last = torch.arange(len(batch.lengths)), batch.lengths - 1
        if component.kind == "head":
            pattern = run.cache[sites.attn_pattern][rows, component.head, last]  # (b, key_pos)
            acts.append(torch.einsum("bk,bkd->bd", pattern, run.cache[sites.attn_in]))
        else:
            acts.append(run.cache[sites.mlp_in][rows, last])
        values.append(observable.value(run.output[rows, last]))
    return TaskActivations(torch.cat(acts), torch.cat(values).numpy(), component)


def _resid_layer(spec: str) -> int | None:
    m = re.fullmatch(r"R(\d+)", str(spec).strip(), re.I)
    return int(m.group(1)) if m else None


def _batches(adapter, texts, max_tokens, batch_size, progress):
    from interp.models.adapter import Tokenized

    starts = range(0, len(texts), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="task activations", unit="batch")
    for start in starts:
        batch = adapter.tokenize(list(texts[start:start + batch_size]))
        if max_tokens is not None:
            keep = max_tokens + int(adapter.prepend_bos)
            batch = Tokenized(batch.tokens[:, :keep], batch.lengths.clamp(max=keep))
        yield batch


def resid_gradients(adapter, texts, observable: Observable, layer: int, max_tokens: int | None = None,
                    batch_size: int = 16, progress: bool = False) -> TaskActivations:
    """Residual before block `layer` at the last token, and the observable's gradient there
    with attention patterns and norm scales frozen (all paths to the logits through that position)."""
    layer = adapter.check_layer(layer)
    leaf: dict[str, torch.Tensor] = {}

    def as_leaf(act):
        leaf["x"] = act.detach().requires_grad_(True)
        return leaf["x"]

    frozen = [adapter.final_resid_site.replace("hook_in", "hook_scale")]
    for l in range(layer, adapter.info.n_layers):
        frozen += [adapter.sites(l).attn_pattern, f"blocks.{l}.ln1.hook_scale", f"blocks.{l}.ln2.hook_scale"]
    freeze = [ReplaceActivation(site, torch.Tensor.detach) for site in frozen]
    acts, grads, values = [], [], []
    for batch in _batches(adapter, texts, max_tokens, batch_size, progress):
        rows, last = torch.arange(len(batch.lengths)), batch.lengths - 1
        run = adapter.run(batch.tokens, keep_grad=True,
                          interventions=[ReplaceActivation(adapter.sites(layer).resid_pre, as_leaf), *freeze])
        value = observable.value(run.output[rows, last])  # (b,): items are independent, so one backward
        grads.append(torch.autograd.grad(value.sum(), leaf["x"])[0][rows, last])
        acts.append(leaf["x"].detach()[rows, last])
        values.append(value.detach())
    return TaskActivations(torch.cat(acts), torch.cat(values).numpy(), f"R{layer}", torch.cat(grads))


def _directions(adapter, ta: TaskActivations, v: torch.Tensor, train: list[int], y: np.ndarray) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    comp, x = ta.component, ta.acts[train]
    if ta.grads is not None:
        obsprop_dir = ta.grads[train].mean(0).numpy()
    elif comp.kind == "head":
        obsprop_dir = head_vector(adapter, comp.layer, comp.head, v).numpy()
    else:
        obsprop_dir = mlp_gradient_vector(adapter, comp.layer, v, x).numpy()
    xn = x.numpy()
    diff = xn[y].mean(0) - xn[~y].mean(0)
    probe = LogisticRegression(max_iter=2000).fit(xn, y).coef_[0]
    return {"obsprop": obsprop_dir, "probe": probe, "diff_means": diff}


def _index_of(texts) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, t in enumerate(texts):
        index.setdefault(t, i)  # identical texts have identical activations
    return index


def data_efficiency(adapter, task: str | TaskSpec, config: EfficiencyConfig = EfficiencyConfig(),
                    dataset=None, progress: bool = False) -> EfficiencyResult:
    """ObsProp vs probe vs difference of means for k labelled items per class (module docstring)."""
    from scipy.stats import pearsonr
    from sklearn.metrics import roc_auc_score

    from interp.corpus import labelled_set

    name = task if isinstance(task, str) else task.labelled
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        task = TASKS[task]
    kwargs = {} if task.n_per_class is None else {"n_per_class": task.n_per_class}
    data = dataset if dataset is not None else labelled_set(task.labelled, **kwargs)
    obs = task.observable(adapter)
    resid = _resid_layer(config.component) if config.component is not None else None
    if resid is not None:
        ta = resid_gradients(adapter, data.texts, obs, resid, task.max_tokens, config.batch_size, progress)
    else:
        comp = (Component.parse(config.component).check(adapter) if config.component is not None
                else top_component(adapter, obs))
        if comp.kind == "embed":
            raise ValueError("data_efficiency compares at a head/MLP input or 'R<layer>', not the embeddings")
        ta = task_activations(adapter, data.texts, obs, comp, task.max_tokens, config.batch_size, progress)
    v = final_vector(adapter, obs)
    index = _index_of(data.texts)
    positive = np.array(data.labels) == task.positive_label
    test = data.test_indices()
    x_test, y_test, obs_test = ta.acts[test].numpy(), positive[test], ta.values[test]
    rows = []
    for k in config.ks:
        for seed in range(config.seeds):
            split = data.train_test_split(k, seed=seed)
            train = [index[t] for t in split.train.texts]
            dirs = _directions(adapter, ta, v, train, positive[train])
            for method, d in dirs.items():
                score = x_test @ d
                rows.append({"task": name, "k": k, "seed": seed, "method": method,
                             "auroc": float(roc_auc_score(y_test, score)),
                             "corr": float(pearsonr(score, obs_test).statistic)})
    ceiling = float(roc_auc_score(y_test, obs_test))
    return EfficiencyResult(name, pd.DataFrame(rows), ceiling, ta.component, config)
