"""``interp lens train`` / ``interp lens show``: bad input is one line and exit 2 before any model
loads; on a tiny model the commands train, store and print the grid."""

from __future__ import annotations

import pytest

from helpers.cli import one_line as _one_line
from interp.cli import main






@pytest.mark.parametrize("argv, words", [
    (["train", "--tokens", "0"], "tokens must be an int >= ctx_len - 1 (63), got 0"),
    (["train", "--lr", "5"], "lr must be in (0, 1), got 5.0"),
    (["train", "--head-dtype", "float16"], "head_dtype must be one of bfloat16, float32, got 'float16'"),
    (["train", "--heldout-ctx-len", "1"], "heldout_ctx_len must be an int >= 2, got 1"),
    (["show", "--prompt", "   "], "--prompt '   ' is empty"),
    (["show", "--prompt", "hi", "--top-k", "0"], "top_k must be a positive int, got 0"),
    (["show", "--prompt", "hi", "--tuned"], "no tuned lens for smollm2-135m in store"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, no_model, capsys, argv, words):
    code = main(["lens", argv[0], "--model", "smollm2-135m", "--store", str(tmp_path / "s"), *argv[1:]])
    line = _one_line(capsys)
    assert code == 2 and words in line, line


def test_train_then_show_on_a_tiny_model(tiny_dirs, tiny_models, tmp_path, capsys):
    model, store = str(tiny_dirs["llama"]), str(tmp_path / "store")
    code = main(["lens", "train", "--model", model, "--tokens", "120", "--ctx-len", "16", "--heldout-tokens", "30",
                 "--heldout-ctx-len", "16", "--store", store])
    out = capsys.readouterr().out
    assert code == 0 and "4 steps of 2 x 15 tokens" in out and "on 30 held-out tokens" in out
    assert "stored as lenses/llama/tuned" in out
    assert [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["embed"], ["0"], ["1"])] == \
        ["embed", "0", "1"]

    code = main(["lens", "show", "--model", model, "--prompt", "The cat sat", "--store", store, "--tuned"])
    out = capsys.readouterr().out
    adapter = tiny_models["llama"]
    last = out.splitlines()[-1].split()
    top = adapter.decode([int(adapter.logits("The cat sat")[0, -1].argmax())])
    assert code == 0 and out.startswith("tuned lens of llama") and last[0] == "1"
    assert repr(top) in out.splitlines()[-1] and last[-1] == "0.000"  # the last layer is the output: KL 0
