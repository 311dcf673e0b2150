"""The explorer's callback logic, without a browser: settings, runs, the numbers shown, the widget wiring."""

import pytest

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.tools.explorer import (
    METHODS,
    ExplorerSettings,
    active_controls,
    build_explorer,
    error_html,
    plain_key,
    run_request,
    alpha_from_trace,
    tree_arguments,
)
from specdec_lite.algorithm.results import StepTrace, TreeStepTrace
from specdec_lite.models.tiny_models import tiny_pair


@pytest.fixture(scope="module")
def pair():
    return tiny_pair("qwen2")


@pytest.mark.parametrize("changes, argument", [
    (dict(prompt=""), "prompt"),
    (dict(method="beam"), "method"),
    (dict(k=0), "k"),
    (dict(n_branches=0), "n_branches"),
    (dict(depth=0), "depth"),
    (dict(n_nodes=0), "n_nodes"),
    (dict(tree_shape="beam"), "tree_shape"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(temperature=-0.1), "temperature"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
])
def test_bad_settings_name_the_knob(changes, argument):
    values = dict(prompt="hello") | changes
    with pytest.raises(ValueError, match=argument):
        ExplorerSettings(**values)


def test_active_controls_per_method():
    assert "k" in active_controls("chain") and "n_branches" not in active_controls("chain")
    assert "k" not in active_controls("auto") and "n_branches" not in active_controls("auto")
    assert "k" in active_controls("adaptive")
    assert {"n_branches", "depth"} <= active_controls("tree") and "k" not in active_controls("tree")
    with pytest.raises(ValueError, match="method"):
        active_controls("beam")
    assert {"tree_shape", "n_branches"} <= active_controls("tree", "chains") and "n_nodes" not in active_controls("tree")
    assert "n_nodes" in active_controls("tree", "dynamic") and "n_branches" not in active_controls("tree", "dynamic")
    assert "tree_shape" not in active_controls("chain") and "n_nodes" not in active_controls("chain", "dynamic")
    with pytest.raises(ValueError, match="tree_shape"):
        active_controls("tree", "sparse")


def test_tree_arguments_follow_the_shape():
    chains = ExplorerSettings("hi", method="tree", tree_shape="chains", n_branches=3, n_nodes=5, depth=2)
    dynamic = ExplorerSettings("hi", method="tree", tree_shape="dynamic", n_branches=3, n_nodes=5, depth=2)
    assert tree_arguments(chains) == dict(shape="chains", depth=2, n_branches=3)
    assert tree_arguments(dynamic) == dict(shape="dynamic", depth=2, n_nodes=5)


def test_plain_key_ignores_what_the_baseline_does_not_depend_on():
    base = ExplorerSettings("hello", k=2)
    assert plain_key(base) == plain_key(ExplorerSettings("hello", k=7, method="adaptive", n_branches=3))
    assert plain_key(base) != plain_key(ExplorerSettings("hello", temperature=0.5))


@pytest.mark.parametrize("method", ["auto", "chain", "adaptive"])
def test_greedy_run_equals_plain_and_reports_its_numbers(pair, method):
    output = run_request(pair, ExplorerSettings("hello world", method=method, k=3, max_new_tokens=20))
    stats = output.result.stats
    assert output.same_as_plain  # fp32 tiny model: greedy speculation is exact
    assert output.acceptance_rate == pytest.approx(stats.accepted / stats.proposed)
    assert output.tokens_per_target_forward == pytest.approx(stats.new_tokens / stats.target_forwards)
    assert output.speedup == pytest.approx(stats.tokens_per_second / output.plain.stats.tokens_per_second)
    page = output.html()
    assert f"{output.alpha:.2f}" in page and f"{output.acceptance_rate:.2f}" in page
    assert output.alpha >= output.acceptance_rate and f"{output.tokens_per_target_forward:.2f}" in page
    assert "sd-legend" in page and "same tokens as plain greedy" in page


def test_sampled_run_uses_the_settings_knobs(pair):
    settings = ExplorerSettings("hello world", temperature=1.0, top_p=0.9, max_new_tokens=16, seed=3)
    output = run_request(pair, settings)
    expected = autoregressive_generate(pair, "hello world", 16, temperature=1.0, top_p=0.9, seed=3)
    assert output.plain.token_ids == expected.token_ids
    assert "same tokens as plain greedy" not in output.html()


def test_adaptive_changes_k_along_the_run(pair):
    output = run_request(pair, ExplorerSettings("hello world", method="adaptive", k=2, max_new_tokens=24))
    assert len({len(step.proposed) for step in output.result.trace if isinstance(step, StepTrace)}) > 1


def test_plain_baseline_is_reused_while_its_key_is_unchanged(pair):
    cache = {}
    first = run_request(pair, ExplorerSettings("hello", k=2, max_new_tokens=8), cache)
    second = run_request(pair, ExplorerSettings("hello", k=5, max_new_tokens=8), cache)
    third = run_request(pair, ExplorerSettings("hello", k=5, max_new_tokens=12), cache)
    assert second.plain is first.plain and third.plain is not first.plain and len(cache) == 2


def test_alpha_from_trace_counts_only_the_drafts_the_target_tested():
    rejected_third = StepTrace([1, 2, 3, 4], [1.0] * 4, [1.0] * 4, n_accepted=2, next_token=5, resampled=False)
    all_kept = StepTrace([6, 7], [1.0] * 2, [1.0] * 2, n_accepted=2, next_token=8, resampled=False)
    # 4 accepted; tested: 1, 2, 3 (rejected; 4 never tested), 6, 7 -> 4 / 5, while accepted / drafted = 4 / 6
    assert alpha_from_trace([rejected_third, all_kept]) == pytest.approx(0.8)
    assert alpha_from_trace([]) is None


def test_error_html_escapes():
    assert "&lt;x&gt;" in error_html(ValueError("<x>")) and "ValueError" in error_html(ValueError("a"))


def test_widget_run_button_shows_the_trace(pair):
    panel = build_explorer(pair, ExplorerSettings("hello world", method="chain", max_new_tokens=8))
    *controls, run_button, shown = panel.children
    assert len(controls) == len(ExplorerSettings.__dataclass_fields__)
    run_button.click()
    assert "sd-trace" in shown.value and "speed-up over plain" in shown.value


def test_widget_greys_out_controls_and_shows_errors(pair):
    panel = build_explorer(pair, ExplorerSettings("hello world", method="chain", max_new_tokens=8))
    by_name = {control.description: control for control in panel.children[:-2]}
    assert by_name["tree n_branches"].disabled and not by_name["K (draft length)"].disabled
    by_name["method"].value = "tree"
    assert not by_name["tree n_branches"].disabled and by_name["K (draft length)"].disabled
    by_name["method"].value = "chain"
    by_name["prompt"].value = ""
    panel.children[-2].click()
    assert "prompt must not be empty" in panel.children[-1].value


def test_tree_run_equals_plain_and_shows_its_branches(pair):
    settings = ExplorerSettings("hello world", method="tree", n_branches=3, depth=2, max_new_tokens=12)
    output = run_request(pair, settings)
    assert output.same_as_plain and len(output.result.trace) >= 1
    assert 'class="sd-tree"' in output.html() and "n/a for a tree" in output.html() and output.alpha is None


def test_dynamic_tree_run_respects_the_node_budget(pair):
    settings = ExplorerSettings("hello world", method="tree", tree_shape="dynamic", n_nodes=5, depth=3, max_new_tokens=12)
    output = run_request(pair, settings)
    steps = [step for step in output.result.trace if isinstance(step, TreeStepTrace)]
    assert output.same_as_plain and steps
    assert all(step.nodes_verified <= 5 and max(step.depths) <= 3 for step in steps)
    assert any(len(set(step.depths)) < step.nodes_verified + 1 for step in steps)  # it branches somewhere


def test_widget_tree_shape_switches_the_size_control(pair):
    panel = build_explorer(pair, ExplorerSettings("hello world", method="tree", max_new_tokens=8))
    by_name = {control.description: control for control in panel.children[:-2]}
    assert not by_name["tree n_branches"].disabled and by_name["tree node budget"].disabled
    by_name["tree shape"].value = "dynamic"
    assert by_name["tree n_branches"].disabled and not by_name["tree node budget"].disabled
    by_name["tree node budget"].value = 4
    panel.children[-2].click()
    assert 'class="sd-tree"' in panel.children[-1].value
