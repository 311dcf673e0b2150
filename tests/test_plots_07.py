"""Notebook 07's helpers: the plots (specdec_lite/tools/plots.py, section '# --- notebook 07 ---': cheap shape
checks), the sibling-rank table of a trace, and the dynamic tree after each depth."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from specdec_lite.tools import plots  # noqa: E402

PARENTS = [-1, 0, 0, 1, 1, 2]  # root; two children; node 1 has two, node 2 one
TOKENS = ["r", "a", "b", "c", "d", "e"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_tree_rows_put_leaves_on_consecutive_rows_and_parents_between():
    rows = plots.tree_rows(PARENTS)
    assert [rows[v] for v in (3, 4, 5)] == [0.0, 1.0, 2.0]
    assert rows[1] == 0.5 and rows[2] == 2.0 and rows[0] == 1.25


def test_draw_token_tree_labels_every_node_and_draws_every_edge():
    ax = plots.draw_token_tree(TOKENS, PARENTS, highlight=[1, 3], scores=[1, 0.5, 0.3, 0.2, 0.1, 0.1])
    assert len(ax.texts) == len(TOKENS) and len(ax.lines) == len(TOKENS) - 1
    assert ax.texts[3].get_text() == "c\n0.20"


def test_plot_tree_mask_is_the_ancestor_grid_with_token_ticks():
    ax = plots.plot_tree_mask(TOKENS, PARENTS, n_cached=2)
    grid = ax.images[0].get_array()
    assert grid.shape == (6, 8) and grid[:, :2].all()  # every node sees the cache
    assert grid[3, 2 + 1] and not grid[3, 2 + 2]  # node 3 sees its parent 1, not its cousin 2
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{v}:{t}" for v, t in enumerate(TOKENS)]


def test_plot_tree_growth_one_panel_per_depth():
    trees = [(TOKENS[:3], PARENTS[:3], [1, 0.6, 0.3]), (TOKENS, PARENTS, [1, 0.6, 0.3, 0.3, 0.2, 0.1])]
    fig = plots.plot_tree_growth(trees, budget=5)
    assert len(fig.axes) == 2 and "5 of 5 nodes" in fig.axes[1].get_title()


def test_plot_sibling_ranks_one_bar_per_depth_and_outcome():
    ax = plots.plot_sibling_ranks([[5, 2, 1], [3, 1, 2]])
    assert len(ax.patches) == 6 and ax.get_xticklabels()[-1].get_text() == "none (correction)"
    ax = plots.plot_sibling_ranks([[5, 2, 1]], names=["first", "later", "none"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["first", "later", "none"]


def test_plot_method_comparison_three_panels_one_bar_per_method_and_part():
    split = dict(target=60.0, draft=30.0, rest=2.0)
    rows = [dict(method=m, tokens_per_forward=f, tokens_per_s=s, ms_per_token=split)
            for m, f, s in (("plain", 1, 5), ("tree", 2.5, 4))]
    fig = plots.plot_method_comparison(rows)
    assert [len(ax.patches) for ax in fig.axes[:3]] == [2, 2, 6]  # the third: target, draft, rest per method
    stacked = fig.axes[2].patches
    assert [bar.get_y() for bar in stacked[::2]] == [0.0, 60.0, 90.0]  # each part on top of the one before
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["target", "draft", "rest"]


def test_plot_output_distributions_groups_p_and_each_rule():
    p = torch.tensor([0.2, 0.3, 0.5])
    ax = plots.plot_output_distributions(p, {"right": p, "wrong": torch.tensor([0.4, 0.3, 0.3])}, "t")
    assert len(ax.patches) == 9 and len(ax.get_legend().get_texts()) == 3


def test_sibling_rank_table_counts_each_tested_node_once():
    from specdec_lite.algorithm.results import PlainStep, TreeStepTrace, sibling_rank_table

    # root -> 1, 2; node 2 -> 3, 4. The walk accepts 2 (2nd guess), then 4 (2nd guess), a leaf: bonus.
    step = TreeStepTrace([9, 1, 2, 3, 4], [-1, 0, 0, 2, 2], [0, 1, 1, 2, 2], [2, 4], 5, False)
    rejected = TreeStepTrace([9, 1, 2, 3], [-1, 0, 0, 1], [0, 1, 1, 2], [], 5, True)  # both root children rejected
    assert sibling_rank_table([step, PlainStep(3)]) == [[0, 1, 0], [0, 1, 0]]
    assert sibling_rank_table([step, rejected]) == [[0, 1, 1], [0, 1, 0]]
    assert sibling_rank_table([PlainStep(3)]) == []


def test_tree_after_each_depth_grows_to_the_proposal_of_propose_tree():
    from specdec_lite.algorithm.kv_cache import forward_new_tokens, new_cache
    from specdec_lite.algorithm.tree_draft import Dynamic, propose_tree, tree_after_each_depth
    from specdec_lite.models.tiny_models import tiny_pair

    pair = tiny_pair("gpt2")
    ids = pair.encode("the cat sat on")
    shape = Dynamic(6, 3)
    growth = tree_after_each_depth(pair.draft, ids, shape)
    assert 1 <= len(growth) <= 3 and all(len(p.tree) <= 7 for p in growth)
    assert [int(p.tree.depths.max()) for p in growth] == list(range(1, len(growth) + 1))
    cache = new_cache(pair.draft)
    forward_new_tokens(pair.draft, cache, ids[:, :-1])
    full = propose_tree(pair.draft, cache, ids[:, -1:], shape)
    assert torch.equal(growth[-1].tree.tokens, full.tree.tokens) and growth[-1].scores == full.scores
    assert full.scores[0] == 1.0 and all(0 < s <= 1 for s in full.scores)
