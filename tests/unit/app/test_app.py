"""Dashboard pages under Streamlit's AppTest, on a small store written through the store API."""

from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from helpers.app_store import LATENT, MODEL, TOP_NEURON, populate
from helpers.paths import REPO

VIEWS = REPO / "app" / "views"
PAGES = ["overview", "search", "feature", "prompt", "neurons", "dictionaries", "obsprop", "attribution",
         "complexity", "circuits", "steering"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_store")
    populate(root)
    return root


@pytest.fixture
def run_page(monkeypatch):
    def run(page: str, root, **params) -> AppTest:
        monkeypatch.setenv("INTERP_STORE", str(root))
        at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
        return at
    return run


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_every_page_is_routed():
    home = (VIEWS.parent / "Home.py").read_text()
    for page in PAGES:
        assert (VIEWS / f"{page}.py").is_file()
        assert f'"{page}.py"' in home


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_says_which_command_fills_it(run_page, tmp_path, page):
    params = {"feature": TOP_NEURON.key} if page == "feature" else {}
    if page == "prompt":
        params = {"model": "no-such-model"}
    at = run_page(page, tmp_path / "empty", **params)
    shown = _texts(at.info) + _texts(at.error) + _texts(at.warning)
    assert "interp " in shown or "no feature" in shown or "could not be loaded" in shown, shown


def test_overview_lists_models_dictionaries_runs(run_page, store_root):
    at = run_page("overview", store_root)
    # features, dictionaries, attributions, complexity scores, runs
    assert [m.value for m in at.metric] == [f"{40 * 3 + 1 + 3:,}", "2", "6", f"{40 * 3 + 1}", "4"]
    frames = [d.value for d in at.dataframe]
    assert any("tc-l2-k32" in set(f.get("name", [])) for f in frames)
    runs = next(f for f in frames if "command" in f)
    assert set(runs["command"]) == {"interp map-neurons", "interp train", "interp attribute", "interp obsprop"}
    assert (runs["status"] == "done").all()


def test_search_by_token_finds_the_paris_neuron_first(run_page, store_root):
    at = run_page("search", store_root, token=" paris ")
    frame = at.dataframe[0].value
    assert frame.iloc[0]["index"] == TOP_NEURON.index and frame.iloc[0]["site"] == TOP_NEURON.site
    assert frame.iloc[0]["open"].endswith("feature?feature=" + TOP_NEURON.key.replace("/", "%2F"))
    assert all(" Paris" in t for t in frame["top_tokens"])
    assert "matching features" in _texts(at.markdown)


def test_search_pages_through_results(run_page, store_root):
    at = run_page("search", store_root)
    first = at.dataframe[0].value
    assert len(first) == 50 and "page 1 of 3" in _texts(at.markdown)
    _button(at, "Next").click().run()
    second = at.dataframe[0].value
    assert "page 2 of 3" in _texts(at.markdown)
    assert not set(second["open"]) & set(first["open"])


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _labelled(elements, label):
    return next(e for e in elements if e.label == label)


def test_search_filters_by_kind_context_and_range(run_page, store_root):
    at = run_page("search", store_root)
    _labelled(at.multiselect, "Kind").select("transcoder")
    _button(at, "Search").click().run()
    frame = at.dataframe[0].value
    assert list(frame["kind"]) == ["transcoder"] and frame.iloc[0]["source"] == "tc-l2"
    # complexity of the latent comes from the complexity job's payload (its features row has none)
    assert 0 <= frame.iloc[0]["complexity"] <= 1

    at = run_page("search", store_root)
    _labelled(at.text_input, "Text in top-activation contexts").input("<script>")
    _labelled(at.checkbox, "Filter by complexity").check()
    _labelled(at.slider, "Complexity K").set_range(0.25, 0.75)
    _button(at, "Search").click().run()
    frame = at.dataframe[0].value
    assert len(frame) > 0
    assert frame["complexity"].between(0.25, 0.75).all()
    total = int(_texts(at.markdown).split("**")[1].replace(",", ""))
    assert 0 < total < 121

    at = run_page("search", store_root, token="no-such-token-anywhere")
    assert "No feature matches" in _texts(at.info)


def test_feature_page_shows_every_section(run_page, store_root):
    at = run_page("feature", store_root, feature=TOP_NEURON.key)
    assert at.metric[0].value == "0.990"
    tables = [t.value for t in at.table]
    assert len(tables) == 4  # up/down x top/bottom
    assert "' Paris'" in set(tables[0]["token_str"])
    html = _texts(at.markdown)
    assert "&lt;script&gt;" in html and "<script>" not in html.replace("&lt;script&gt;", "")
    assert len(at.get("plotly_chart")) == 3  # histogram, complexity curve, clamping dose-response
    near = next(d.value for d in at.dataframe if "shared" in d.value)
    assert (near["shared"] >= 1).all()
    assert "no stored attribution graph" in _texts(at.info)


def test_feature_page_for_a_transcoder_latent_and_friendly_errors(run_page, store_root):
    at = run_page("feature", store_root, feature=LATENT.key)
    assert "tc-l2" in _texts(at.subheader)
    assert "No clamping dose-response" in _texts(at.info)
    bad = run_page("feature", store_root, feature="smollm2-135m//blocks.1.mlp.hook_post/neuron/99999")
    assert "no feature" in _texts(bad.error)
    bad = run_page("feature", store_root, feature="nonsense")
    assert "is not 'model/source/site/kind/index'" in _texts(bad.error)
    bad = run_page("feature", store_root, feature=f"{MODEL}//blocks.1.mlp.hook_post/wizard/3")
    assert "unknown feature kind" in _texts(bad.error)


def test_prompt_page_without_a_model_still_shows_stored_attributions(run_page, store_root):
    at = run_page("prompt", store_root, model="no-such-model", prompt="The capital of France is", view="Attributions")
    assert "could not be loaded" in _texts(at.warning)
    assert "No stored attributions" not in _texts(at.info)
    assert len(at.get("plotly_chart")) == 1  # the stored ReAGent / IG / random heatmap


def test_method_pages_render_their_figures(run_page, store_root):
    neurons = run_page("neurons", store_root)
    assert len(neurons.get("plotly_chart")) == 2
    dicts = run_page("dictionaries", store_root)
    assert len(dicts.get("plotly_chart")) == 2  # L0 vs CE (the dictionaries' own builder), density
    table = dicts.dataframe[0].value
    assert list(table.sort_values("l0")["ce_recovered"]) == pytest.approx([1 - 0.4 / 16, 1 - 0.4 / 32])
    latents = dicts.dataframe[1].value
    assert list(latents["index"]) == [LATENT.index]
    obsprop = run_page("obsprop", store_root)
    assert len(obsprop.get("plotly_chart")) == 2  # ranking (with ablation effects), data efficiency
    vectors = next(d.value for d in obsprop.dataframe if "open" in d.value)
    assert len(vectors) == 3 and set(vectors["kind"]) == {"obsprop"}
    attribution = run_page("attribution", store_root)
    faith = attribution.dataframe[0].value.set_index("method")
    assert faith.loc["reagent", "soft_ns"] == pytest.approx((0.42 + 0.50) / 2)
    assert faith.loc["random", "n"] == 2
    assert faith.loc["reagent", "soft_ns_lo"] <= 0.42 + 1e-9 and faith.loc["reagent", "soft_ns_hi"] >= 0.50 - 1e-9
    assert len(attribution.get("plotly_chart")) == 3  # faithfulness, benchmark faithfulness, a prompt's heatmap
    assert list(attribution.dataframe[1].value["method"]) == ["reagent", "random"]
    paired = attribution.dataframe[2].value  # ReAGent minus each method, per prompt
    assert list(paired["method"]) == ["random"] and paired["soft_ns_diff"].iloc[0] == pytest.approx(0.3)
    complexity = run_page("complexity", store_root)
    assert len(complexity.get("plotly_chart")) == 3  # distribution, importance, curves
    circuits = run_page("circuits", store_root)
    assert len(circuits.get("plotly_chart")) == 1
    nodes = circuits.dataframe[1].value
    latent = nodes[nodes["type"] == "latent"].iloc[0]
    assert latent["open"].endswith(LATENT.key.replace("/", "%2F"))
    assert list(nodes["id"])[:2] == ["target", "latent/L2/4/3"]  # by |influence|


def test_feature_page_lists_the_circuits_a_latent_is_in(run_page, store_root):
    at = run_page("feature", store_root, feature=LATENT.key)
    graphs = next(d.value for d in at.dataframe if "circuit" in d.value)
    assert list(graphs["circuit"]) == ["circuit-demo"] and list(graphs["position"]) == [4]
    assert graphs.iloc[0]["influence"] == pytest.approx(0.7)


def test_empty_circuits_page_names_the_command(run_page, tmp_path):
    at = run_page("circuits", tmp_path / "empty")
    assert "interp circuit build" in _texts(at.info)
