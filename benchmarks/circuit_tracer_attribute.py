"""circuit-tracer's own attribution on a model with interp's exported transcoders (its venv only).

    .venv-circuit-tracer/bin/python benchmarks/circuit_tracer_attribute.py MODEL_DIR TRANSCODERS_DIR OUT.pt \
        --prompt "..." --max-feature-nodes N --threads T

MODEL_DIR is a local Hugging Face model folder (TransformerLens reads a folder with a config.json;
offline), TRANSCODERS_DIR a transcoder set from `export_transcoder_set`. OUT.pt holds circuit-tracer's
graph (`Graph.to_pt` fields) plus its replacement/completeness scores and wall time; compared by
check_circuit_tracer.py --compare.
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml


def _for_transformers_4(model_dir: str) -> str:
    """A copy of a folder saved by transformers 5 that transformers 4.57 reads the same way.

    transformers 5 writes ``rope_parameters`` (4.57 reads ``rope_theta``, else silently 10000) and
    tokenizer class ``TokenizersBackend`` (unknown to 4.57; ``PreTrainedTokenizerFast`` reads the
    same tokenizer.json). The weights are linked, not copied.
    """
    import json
    import os
    import tempfile
    from pathlib import Path

    src = Path(model_dir)
    dst = Path(tempfile.mkdtemp(prefix="ct-model-"))
    for f in src.iterdir():
        os.symlink(f.resolve(), dst / f.name)
    cfg = json.loads((src / "config.json").read_text())
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" not in cfg and "rope_theta" in rope:
        cfg["rope_theta"] = rope["rope_theta"]
    (dst / "config.json").unlink()
    (dst / "config.json").write_text(json.dumps(cfg))
    tcfg = json.loads((src / "tokenizer_config.json").read_text())
    if tcfg.get("tokenizer_class") == "TokenizersBackend":
        tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    (dst / "tokenizer_config.json").unlink()
    (dst / "tokenizer_config.json").write_text(json.dumps(tcfg))
    return str(dst)


def _replacement_model(model_dir: str, hf, tok, tset):
    """circuit-tracer's replacement model of a local Llama-architecture folder.

    ``ReplacementModel.from_pretrained_and_transcoders`` goes through TransformerLens 2's
    ``HookedTransformer.from_pretrained``, which accepts only its list of official model names
    (SmolLM2 is not among them, and a local folder is refused). The same model is built the way
    that path does: TransformerLens's config from the folder, its Llama weight conversion, and no
    weight processing (circuit-tracer passes fold_ln, center_writing_weights and center_unembed False).
    """
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import convert_hf_model_config
    from transformer_lens.pretrained.weight_conversions import convert_llama_weights

    from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel

    cfg = HookedTransformerConfig(**{**convert_hf_model_config(model_dir), "device": "cpu", "dtype": torch.float32,
                                     "tokenizer_name": model_dir, "default_prepend_bos": False})
    model = TransformerLensReplacementModel(cfg, tokenizer=tok)
    model.load_and_process_state_dict(convert_llama_weights(hf, cfg), fold_ln=False, center_writing_weights=False,
                                      center_unembed=False, fold_value_biases=False)
    model._configure_replacement_model(tset)
    return model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("transcoders")
    p.add_argument("out")
    p.add_argument("--tokens", required=True, help="comma-separated token ids (interp's tokenisation, BOS first)")
    p.add_argument("--max-feature-nodes", type=int, default=None)
    p.add_argument("--max-n-logits", type=int, default=10)
    p.add_argument("--desired-logit-prob", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from circuit_tracer import attribute
    from circuit_tracer.graph import compute_graph_scores
    from circuit_tracer.utils.hf_utils import load_transcoders

    config = yaml.safe_load(open(f"{args.transcoders}/config.yaml"))
    tset = load_transcoders(config, device=torch.device("cpu"), dtype=torch.float32, lazy_encoder=False,
                            lazy_decoder=False)
    model_dir = _for_transformers_4(args.model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    start = time.perf_counter()
    model = _replacement_model(model_dir, hf, tok, tset)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    tokens = [int(t) for t in args.tokens.split(",")]
    graph = attribute(tokens, model, max_n_logits=args.max_n_logits, desired_logit_prob=args.desired_logit_prob,
                      batch_size=args.batch_size, max_feature_nodes=args.max_feature_nodes)
    seconds = time.perf_counter() - start
    replacement, completeness = compute_graph_scores(graph)
    torch.save({"adjacency": graph.adjacency_matrix, "active_features": graph.active_features,
                "selected_features": graph.selected_features, "activation_values": graph.activation_values,
                "logit_tokens": [t.vocab_idx for t in graph.logit_targets],
                "logit_probabilities": graph.logit_probabilities, "input_tokens": graph.input_tokens,
                "replacement": replacement, "completeness": completeness, "seconds": seconds,
                "load_seconds": load_s, "n_layers": graph.cfg.n_layers}, args.out)
    print(f"circuit-tracer: {len(graph.selected_features)} of {len(graph.active_features)} latents, "
          f"{seconds:.1f} s; replacement {replacement:.4f}, completeness {completeness:.4f}")


if __name__ == "__main__":
    main()
