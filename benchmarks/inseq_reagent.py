"""Inseq's "reagent" on the prompts `bench_reagent.py inseq` hands it: runs in Inseq's own venv.

Inseq 0.7.1 pins typeguard<=2.13.3 while TransformerLens needs typeguard>=4.2, so the two
cannot share an environment; this script imports neither interp nor TransformerLens. Make
the venv with ``make .venv-inseq``. Usage (bench_reagent.py calls it):

    .venv-inseq/bin/python benchmarks/inseq_reagent.py IN.json OUT.json

IN.json: {"model_dir", "threads", "settings": {num_probes, max_probe_steps, keep_top_n,
stopping_condition_top_k, replacing_ratio}, "prompts": [{"tokens": [...], "target": id}]}.
OUT.json: per prompt the importances over the prompt's tokens, the seconds, and whether
Inseq's own tokenisation of the text gave the same token ids; rewritten after every prompt,
so a run stopped at its time budget leaves the prompts it finished.

Offline, Inseq's POS-tag token sampler cannot download NLTK's tagger; it is given a one-tag
vocabulary mapping instead, which makes its replacement uniform over the vocabulary - the
replacer interp uses by default, so both run at the same settings.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path


def main(inp: str, out: str) -> None:
    spec = json.loads(Path(inp).read_text())
    cache = Path(tempfile.mkdtemp(prefix="inseq_artifacts_"))
    os.environ["INSEQ_ARTIFACTS_CACHE"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(spec["threads"]))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = spec["model_dir"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    sampler_cache = cache / "pos_tag_sampler_cache"
    sampler_cache.mkdir(parents=True)
    with open(sampler_cache / f"{Path(model_dir).name}.pkl", "wb") as f:  # one "tag" for every token
        pickle.dump({"ANY": list(range(tokenizer.vocab_size))}, f)

    from importlib.metadata import version

    import inseq

    s = spec["settings"]
    attributor = inseq.load_model(model, "reagent", tokenizer=tokenizer, keep_top_n=s["keep_top_n"],
                                  stopping_condition_top_k=s["stopping_condition_top_k"],
                                  replacing_ratio=s["replacing_ratio"], max_probe_steps=s["max_probe_steps"],
                                  num_probes=s["num_probes"])
    results = []
    for item in spec["prompts"]:
        torch.manual_seed(0)
        text = tokenizer.decode(item["tokens"])
        full = tokenizer.decode(item["tokens"] + [item["target"]])
        same = tokenizer(text)["input_ids"] == item["tokens"]
        start = time.perf_counter()
        attribution = attributor.attribute(text, full, show_progress=False, step_scores=[])
        seconds = time.perf_counter() - start
        attr = attribution.sequence_attributions[0]
        scores = attr.target_attributions if attr.source_attributions is None else attr.source_attributions
        scores = scores.float()
        while scores.ndim > 2:  # (pos, generated, embedding?) -> (pos, generated)
            scores = scores.nan_to_num(0).sum(-1) if scores.shape[-1] > 1 else scores[..., 0]
        column = scores[:, -1] if scores.ndim == 2 else scores
        results.append({"scores": column.nan_to_num(0).tolist()[: len(item["tokens"])], "seconds": seconds,
                        "same_tokens": same})
        # after every prompt, atomically: a run stopped at its time budget keeps what it finished
        tmp = Path(out).with_suffix(".tmp")
        tmp.write_text(json.dumps({"inseq": version("inseq"), "results": results}))
        os.replace(tmp, out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
