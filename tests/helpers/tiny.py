"""Tiny randomly initialised hub-style models, saved to a directory, for offline tests.

They exercise the same loading path as a hub id or a local HF directory: `load_model(path)`.
"""

from __future__ import annotations

from pathlib import Path

import torch

_TEXT = (
    "The cat sat on the mat. The dog ate the bone. She said that he was a nurse. "
    "He said that she was a doctor. def main(): return 0. int main(void) { return 0; } "
    "The capital of France is Paris. The movie was great, the acting was bad. "
) * 4


def tiny_tokenizer():
    """A byte-level BPE tokenizer trained on a few sentences (vocab ~300), BOS/EOS/PAD added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|bos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([_TEXT], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|endoftext|>", pad_token="<|pad|>"
    )


def save_tiny_model(directory: Path, family: str, seed: int = 0) -> Path:
    """Save a tiny random model of `family` ('gpt2', 'llama' or 'neox') with a tokenizer."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    vocab = len(tokenizer)
    if family == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4)
        model = GPT2LMHeadModel(config)
    elif family == "llama":
        config = LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config)
    elif family == "neox":
        config = GPTNeoXConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=64, rotary_pct=0.25,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        model = GPTNeoXForCausalLM(config)
    else:
        raise ValueError(f"unknown tiny family {family!r}; valid: gpt2, llama, neox")
    # Random init gives near-uniform outputs; scale weights up so predictions are peaked and
    # differences between runs are visible in tests.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(4.0)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
