"""A tiny byte-level BPE tokenizer trained in the test process (no download), and its corpus."""

SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "def f(x): return x + 1",
             "#include <stdio.h> int main(void) { return 0; }", "this movie was great, I loved it"]


def _tokenizer(with_bos: bool = True):
    """A tiny byte-level BPE (any text encodes), trained here so tests need no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<bos>", "<eos>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES * 10, trainer)
    kwargs = {"bos_token": "<bos>", "eos_token": "<eos>"} if with_bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", **kwargs)
