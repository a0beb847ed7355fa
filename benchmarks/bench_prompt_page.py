"""Prompt page speed on warm SmolLM2: submit an 18-token prompt, time until the prediction and
the active units are on the page (AppTest's `run` after filling the form and pressing Run),
side by side with the library calls the page makes (`app.live.forward`, `prediction`,
`active_neurons` of layers 0, 15, 29) and with the logit lens grid on the cached pass.

    .venv/bin/python benchmarks/bench_prompt_page.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPT = "The old lighthouse keeper climbed the narrow stairs every night to light the lamp for the passing"
"""18 tokens with BOS on SmolLM2."""


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _submit(at, text: str):
    next(t for t in at.text_input if t.label == "Prompt").input(text)
    next(b for b in at.button if b.label == "Run").click()
    result = _timed(at.run)
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["prompt"] == text and "layer" in at.dataframe[1].value
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["INTERP_STORE"] = str(Path(tempfile.mkdtemp()) / "store")
    from streamlit.testing.v1 import AppTest

    from app import live
    from interp.models import load_model

    model = load_model("smollm2-135m")
    print(f"prompt: {len(model.to_tokens(PROMPT)[0])} tokens (BOS included)")
    at = AppTest.from_file(str(REPO / "app" / "views" / "prompt.py"), default_timeout=600)
    at.query_params["model"] = "smollm2-135m"
    at.run()
    print("warm-up submit (model load, first pass): wall %.2f s, cpu %.2f s" % _submit(at, "Warm the model up"))
    for i in range(args.repeats):  # a new prompt each time: nothing comes from the cache
        text = PROMPT + "." * i
        page = _submit(at, text)
        calls = _timed(lambda: (found := live.forward(model, text + " ")) is not None and (
            live.prediction(model, found), live.active_neurons(model, found, [0, 15, 29])))
        print(f"submit -> prediction + active units: page wall {page[0]:.2f} s (cpu {page[1]:.2f} s); "
              f"library calls wall {calls[0]:.2f} s (cpu {calls[1]:.2f} s); ratio {page[0] / calls[0]:.1f}")
    found = live.forward(model, PROMPT)
    print("logit lens grid on the cached pass: wall %.2f s, cpu %.2f s" % _timed(lambda: live.lens(model, found)))
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
