"""Token traces: roles of each token, HTML (escaped, coloured, struck through), plain text, tree steps."""

import pytest

from specdec_lite.algorithm.chain import speculative_generate
from specdec_lite.algorithm.results import EosCut, PlainStep, StepTrace, TreeStepTrace, accepted_by_sibling_rank
from specdec_lite.algorithm.tree import tree_generate
from specdec_lite.models.tiny_models import tiny_pair
from specdec_lite.tools.plots import COLORS
from specdec_lite.tools.trace_view import (
    ROLES,
    legend_text,
    token_decoder,
    trace_html,
    trace_marks,
    trace_text,
    tree_branches,
    tree_branches_html,
    tree_branches_text,
    tree_step_marks,
    visible_text,
)

LETTERS = {i: chr(ord("a") + i) for i in range(26)}


def letter(token: int) -> str:
    return LETTERS[token]


def chain_trace() -> list[StepTrace]:
    """Step 1: a, b accepted, c, d rejected, correction e. Step 2: all of f, g accepted, bonus h."""
    return [
        StepTrace([0, 1, 2, 3], [0.9, 0.8, 0.1, 0.5], [0.9, 0.7, 0.6, 0.5], 2, 4, resampled=True),
        StepTrace([5, 6], [1.0, 1.0], [1.0, 1.0], 2, 7, resampled=False),
    ]


def tree_step() -> TreeStepTrace:
    """Root r (node 0, not a guess); branches a-b-c and a-d-e share a; a third branch is f alone.
    The target keeps a, d, then says g."""
    return TreeStepTrace(tokens=[17, 0, 5, 1, 3, 2, 4], parents=[-1, 0, 0, 1, 1, 3, 4],
                         depths=[0, 1, 1, 2, 2, 3, 3], accepted_nodes=[1, 4], next_token=6, resampled=False)


def test_chain_roles_in_order():
    roles = [(mark.token, mark.role, mark.step) for mark in trace_marks(chain_trace())]
    assert roles == [(0, "accepted", 0), (1, "accepted", 0), (2, "rejected", 0), (3, "rejected", 0),
                     (4, "correction", 0), (5, "accepted", 1), (6, "accepted", 1), (7, "bonus", 1)]


def test_trace_text_markers_and_step_bars():
    assert trace_text(chain_trace(), letter) == "[a][b]~c~~d~{e} | [f][g]<h>"


def test_trace_text_ansi_colours_only_when_asked():
    coloured = trace_text(chain_trace(), letter, color=True)
    assert "\x1b[31;9m~c~\x1b[0m" in coloured and "\x1b[32m[a]\x1b[0m" in coloured
    assert "\x1b[" not in trace_text(chain_trace(), letter)
    assert "~rejected draft token~" in legend_text() and "\x1b[36m" in legend_text(color=True)


def test_a_plain_target_step_is_shown_as_a_target_token():
    text = trace_text(chain_trace() + [PlainStep(8)], letter)
    assert text == "[a][b]~c~~d~{e} | [f][g]<h> | (i)"


def test_a_step_cut_at_eos_is_cut_in_the_trace():
    # the run stopped after "f" (say f were EOS): g and the bonus h were never emitted
    assert trace_text(chain_trace() + [EosCut(1)], letter) == "[a][b]~c~~d~{e} | [f]"
    # stopped after "a": the rejections that followed no longer matter
    assert trace_text(chain_trace()[:1] + [EosCut(1)], letter) == "[a]"


@pytest.mark.parametrize("temperature, prompt, seed", [
    (0.0, "hello world", 0), (0.0, "abc?", 0),
    (1.5, "hello world", 0), (1.5, "hello world", 8),  # both stop at an EOS inside a step
    (1.5, "hello world", 2), (1.5, "hello world", 5),
])
def test_emitted_marks_are_exactly_the_generated_tokens(temperature, prompt, seed):
    pair = tiny_pair("gpt2", noise=0.2)
    result = speculative_generate(pair, prompt, max_new_tokens=30, k=4, temperature=temperature, seed=seed)
    marks = trace_marks(result.trace)
    assert [m.token for m in marks if m.role != "rejected"] == result.token_ids
    assert sum(m.role == "rejected" for m in marks) <= result.stats.proposed - result.stats.accepted


def test_max_new_tokens_ends_with_a_plain_target_step():
    pair = tiny_pair("gpt2")
    result = speculative_generate(pair, "hello world", max_new_tokens=5, k=4, stop_at_eos=False)
    marks = trace_marks(result.trace)
    assert len(result.token_ids) == 5 and marks[-1].role in ("target", "correction", "bonus")
    assert [m.token for m in marks if m.role != "rejected"] == result.token_ids


def test_html_has_one_span_per_token_in_its_colour():
    page = trace_html(chain_trace(), letter)
    for role, count in {"accepted": 4, "rejected": 2, "correction": 1, "bonus": 1}.items():
        assert page.count(f'class="sd-{role}"') == count
    assert page.count('class="sd-step"') == 1 + 1  # one between the steps, one in the legend
    rejected = page.split('class="sd-rejected"')[1].split(">")[0]
    assert "line-through" in rejected and COLORS["rejected"] in rejected


def test_html_legend_names_every_role_with_its_colour():
    page = trace_html(chain_trace(), letter)
    legend = page.split('class="sd-legend"')[1].split("</div>")[0]
    for role in ROLES:
        assert COLORS[role] in legend
    assert "sd-legend" not in trace_html(chain_trace(), letter, legend=False)


def test_html_escapes_token_text_and_prompt():
    nasty = {i: "<script>alert('x')</script>" for i in range(8)}
    page = trace_html(chain_trace(), nasty.get, prompt="<b>&")
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;&amp;" in page


def test_tooltips_carry_p_q_and_whether_resampled():
    page = trace_html(chain_trace(), letter)
    assert "p=0.100 q=0.600" in page  # the first rejected token, tested
    assert "p=0.500 q=0.500" not in page and page.count("never tested") == 1  # d came after the rejection
    assert [m.tested for m in trace_marks(chain_trace())[:4]] == [True, True, True, False]
    assert "resampled from norm(max(0, p − q))" in page


def test_whitespace_is_visible():
    assert visible_text(" x\n\ty") == "·x↵⇥y"
    assert visible_text("") == "∅"
    spaced = {0: " ", 1: "\n", 2: "c", 3: "d", 4: "e", 5: "f", 6: "g", 7: "h"}
    assert trace_text(chain_trace(), spaced.get).startswith("[·][↵]")


def test_token_decoder_keeps_special_tokens():
    pair = tiny_pair("gpt2")
    decode = token_decoder(pair.tokenizer)
    assert decode(0) == "<eos>" and decode(1) == "a"


def test_tree_step_marks_path_first_rejected_children_then_next():
    roles = [(m.token, m.role) for m in tree_step_marks(tree_step(), 0)]
    # path a, d; d's only child e is rejected; the target's g is a correction (d had a child)
    assert roles == [(0, "accepted"), (3, "accepted"), (4, "rejected"), (6, "correction")]


def test_tree_next_token_is_a_bonus_when_the_path_ends_at_a_leaf():
    step = tree_step()
    step.accepted_nodes = [1, 4, 6]
    assert tree_step_marks(step, 0)[-1].role == "bonus"
    step.accepted_nodes = []  # nothing accepted: the root's children a and f are rejected
    assert [(m.token, m.role) for m in tree_step_marks(step, 0)] == [(0, "rejected"), (5, "rejected"),
                                                                     (6, "correction")]


def test_tree_branches_are_paths_below_the_root():
    assert tree_branches(tree_step()) == [[2], [1, 3, 5], [1, 4, 6]]


def test_tree_branches_text_and_html_strike_the_discarded_branches():
    assert tree_branches_text([tree_step()], letter) == "step 1 -> {g}\n    ~f~\n    [a]~b~~c~\n    [a][d]~e~"
    page = tree_branches_html([tree_step()], letter)
    assert page.count('class="sd-accepted"') == 3 and page.count('class="sd-rejected"') == 4
    assert trace_text([tree_step()], letter) == "[a][d]~e~{g}"


@pytest.mark.parametrize("temperature, seed", [(0.0, 0), (1.5, 0), (1.5, 8)])
def test_tree_run_marks_are_exactly_the_generated_tokens(temperature, seed):
    pair = tiny_pair("gpt2", noise=0.2)
    result = tree_generate(pair, "hello world", max_new_tokens=24, n_branches=3, depth=3,
                           temperature=temperature, seed=seed)
    marks = trace_marks(result.trace)
    assert [m.token for m in marks if m.role != "rejected"] == result.token_ids
    branches_text = tree_branches_text(result.trace, token_decoder(pair.tokenizer))
    tree_steps = [step for step in result.trace if isinstance(step, TreeStepTrace)]
    assert branches_text.count("step ") == len(tree_steps) and branches_text.count("~") >= 2


def test_sibling_ranks_of_the_accepted_path():
    """a is the root's 1st guess, d the 2nd child of a; a 3-step trace counts the ranks over tree steps only."""
    step = tree_step()
    assert step.sibling_ranks == [0, 1]
    other = TreeStepTrace(tokens=[9, 1, 2, 3], parents=[-1, 0, 0, 0], depths=[0, 1, 1, 1], accepted_nodes=[3],
                          next_token=5, resampled=False)
    assert accepted_by_sibling_rank([step, other, PlainStep(4)]) == [1, 1, 1]
    assert accepted_by_sibling_rank([PlainStep(4)]) == []
