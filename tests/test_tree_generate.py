"""Token-tree decoding: greedy output == the target's greedy output, caches compacted right, counts, bad input."""

import pytest
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicSlidingWindowLayer

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.algorithm.kv_cache import cache_length, forward_new_tokens, new_cache
from specdec_lite.algorithm.results import TreeStepTrace
from specdec_lite.algorithm.sampling import Sampling
from specdec_lite.algorithm.tree import compact_caches, tree_generate
from specdec_lite.algorithm.tree_draft import Chains, CostAware, Dynamic, DraftedTree, propose_tree
from specdec_lite.algorithm.tree_verification import keep_positions, tree_target_logits, verify_tree
from distribution_checks import trigram_pair
from specdec_lite.models.tiny_models import tiny_model, tiny_pair

PROMPTS = ["a", "the cat", "hello, world", "zzz", "why?", "abc abc", "on the mat.", "q", "it is", "no! no!",
           "xyz", "be", "a b c d e", "river", "sun, moon", "go go go", "the end", "what.", "ok", "jump, jump"]
SETTINGS = [(1, 1), (2, 3), (3, 4), (4, 2)]  # (n_branches, depth)


@pytest.mark.parametrize("arch, attn", [("gpt2", "eager"), ("qwen2", "sdpa")])
def test_greedy_tree_equals_target_greedy(arch, attn):
    pair = tiny_pair(arch, attn=attn, noise=0.3)
    for i, prompt in enumerate(PROMPTS):
        expected = autoregressive_generate(pair, prompt, max_new_tokens=12, stop_at_eos=False).token_ids
        n_branches, depth = SETTINGS[i % len(SETTINGS)]
        result = tree_generate(pair, prompt, max_new_tokens=12, n_branches=n_branches, depth=depth, stop_at_eos=False)
        assert result.token_ids == expected, (prompt, n_branches, depth)


def test_greedy_tree_stops_at_eos_like_the_target():
    pair = tiny_pair("gpt2", noise=0.3)
    for prompt in PROMPTS[:6]:
        expected = autoregressive_generate(pair, prompt, max_new_tokens=30).token_ids
        assert tree_generate(pair, prompt, max_new_tokens=30, n_branches=3, depth=3).token_ids == expected


@pytest.mark.parametrize("shape", [Chains(3, 3), Dynamic(6, 3), Dynamic(3, 4)])
@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_compacted_caches_continue_like_a_fresh_forward(arch, temperature, shape):
    pair = tiny_pair(arch, noise=0.3)
    generator = torch.Generator().manual_seed(0)
    for prompt in PROMPTS[:6]:
        ids = pair.encode(prompt)
        draft_cache, target_cache = new_cache(pair.draft), new_cache(pair.target)
        if ids.shape[1] > 1:
            forward_new_tokens(pair.target, target_cache, ids[:, :-1])
        sampling = Sampling(temperature, generator=generator)
        proposal = propose_tree(pair.draft, draft_cache, ids, shape, sampling=sampling)
        logits = tree_target_logits(pair.target, target_cache, proposal.tree)
        verdict = verify_tree(proposal.tree, proposal.q, logits, sampling)
        compact_caches(draft_cache, target_cache, proposal, verdict.path)
        accepted = proposal.tree.tokens[verdict.path].tolist()
        ids = torch.cat([ids, torch.tensor([accepted + [verdict.next_token]])], dim=1)
        assert cache_length(target_cache) == ids.shape[1] - 1
        assert cache_length(draft_cache) == ids.shape[1] - 1 - sum(node > proposal.n_fed for node in verdict.path)
        for model, cache in ((pair.target, target_cache), (pair.draft, draft_cache)):
            continued = forward_new_tokens(model, cache, ids[:, cache_length(cache):])[-1]
            fresh = model(input_ids=ids).logits[0, -1]
            assert (continued - fresh).abs().max() <= 1e-5 * fresh.abs().max()


def test_counts_and_trace_agree():
    pair = tiny_pair("qwen2", noise=0.3)
    result = tree_generate(pair, "the cat", max_new_tokens=20, n_branches=3, depth=3, temperature=1.0, seed=1,
                           stop_at_eos=False)
    stats, trace = result.stats, [step for step in result.trace if isinstance(step, TreeStepTrace)]
    assert stats.new_tokens == len(result.token_ids) == 20
    assert stats.target_forwards == len(result.trace) + 1  # every step is recorded, + the prefill
    assert sum(len(step.emitted) for step in trace) + (stats.target_forwards - 1 - len(trace)) == 20
    assert stats.proposed == sum(step.nodes_verified for step in trace)
    assert stats.accepted == sum(step.n_accepted for step in trace)
    assert stats.draft_forwards == 1 + sum(step.draft_forwards for step in trace)  # + the prompt's prefill
    assert [t for step in trace for t in step.emitted] == result.token_ids[:sum(len(s.emitted) for s in trace)]
    for step in trace:
        assert step.parents[0] == -1 and step.depths[0] == 0
        assert all(step.parents[v] < v and step.depths[v] == step.depths[step.parents[v]] + 1
                   for v in range(1, len(step.tokens)))
        assert all(step.parents[b] == a for a, b in zip([0] + step.accepted_nodes, step.accepted_nodes))
        assert len(step.tokens) - 1 <= 3 * 3


def test_sampling_is_reproducible_with_a_seed():
    pair = tiny_pair("gpt2", noise=0.3)
    runs = [tree_generate(pair, "abc", 16, temperature=1.0, seed=7, stop_at_eos=False).token_ids for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_branches=0), "n_branches"),
    (dict(depth=0), "depth"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=130), "max_new_tokens"),
    (dict(shape="ring"), "shape"),
    (dict(shape="dynamic", n_nodes=0), "n_nodes"),
    (dict(shape="dynamic", n_branches=2), "n_branches"),
    (dict(shape="chains", n_nodes=8), "n_nodes"),
    (dict(shape="dynamic", depth=0), "depth"),
    (dict(top_p=0.0), "top_p"),
    (dict(shape="auto", n_nodes=0), "n_nodes"),
    (dict(shape=Dynamic(4, 2), n_nodes=8), "shape object"),
    (dict(shape=Dynamic(4, 2), depth=3), "shape object"),
])
def test_bad_arguments_raise(kwargs, name):
    pair = tiny_pair("gpt2")  # context window 128
    with pytest.raises(ValueError, match=name):
        tree_generate(pair, "abc", **({"max_new_tokens": 8} | kwargs))


def test_the_window_counts_positions_not_nodes():
    """Up to 128 nodes (32 first tokens x 4) next to a 3-token prompt and 8 new tokens in a 128-token window:
    a node count check would refuse it, yet every node sits at a position < 3 + 8."""
    pair = tiny_pair("gpt2", noise=0.3)
    expected = autoregressive_generate(pair, "abc", max_new_tokens=8, stop_at_eos=False).token_ids
    result = tree_generate(pair, "abc", max_new_tokens=8, n_branches=40, depth=4, stop_at_eos=False)
    assert result.token_ids == expected
    assert max(len(step.tokens) for step in result.trace if isinstance(step, TreeStepTrace)) - 1 + 3 + 8 > 128


@pytest.mark.parametrize("attn", ["flash_attention_2", "flex_attention"])
def test_attention_that_ignores_a_float_mask_is_refused(attn):
    pair = tiny_pair("qwen2")
    pair.target.config._attn_implementation = attn  # only read by the check; nothing runs
    with pytest.raises(ValueError, match="attn_implementation"):
        tree_generate(pair, "abc", max_new_tokens=4)


def test_only_plain_dynamic_layers_are_compacted():
    model = tiny_model("qwen2")
    cache = DynamicCache(config=model.config)
    cache.layers[0] = DynamicSlidingWindowLayer(sliding_window=4)
    with pytest.raises(ValueError, match="DynamicLayer"):
        keep_positions(cache, torch.arange(2))


DYNAMIC = [(1, 1), (4, 2), (8, 4), (12, 3), (16, 5)]  # (n_nodes, depth)


@pytest.mark.parametrize("arch, attn", [("gpt2", "eager"), ("gpt2", "sdpa"), ("qwen2", "eager"), ("qwen2", "sdpa")])
def test_greedy_dynamic_tree_equals_target_greedy(arch, attn):
    pair = tiny_pair(arch, attn=attn, noise=0.3)
    for i, prompt in enumerate(PROMPTS):
        expected = autoregressive_generate(pair, prompt, max_new_tokens=12, stop_at_eos=False).token_ids
        n_nodes, depth = DYNAMIC[i % len(DYNAMIC)]
        result = tree_generate(pair, prompt, max_new_tokens=12, shape="dynamic", n_nodes=n_nodes, depth=depth,
                               stop_at_eos=False)
        assert result.token_ids == expected, (prompt, n_nodes, depth)


def best_paths_by_brute_force(draft, context: list[int], n_nodes: int, depth: int) -> set[tuple[int, ...]]:
    """The n_nodes token paths (length 1..depth) of highest draft path probability, every path scored."""
    scored = []
    frontier = [((), 1.0)]
    for _ in range(depth):
        frontier = [(path + (t,), score * float(q)) for path, score in frontier
                    for t, q in enumerate(draft.exact_next(context + list(path)).softmax(-1))]
        scored += frontier
    return {path for path, _ in sorted(scored, key=lambda item: -item[1])[:n_nodes]}


@pytest.mark.parametrize("n_nodes, depth", [(1, 3), (5, 2), (8, 3), (12, 3)])
def test_greedy_dynamic_tree_holds_the_best_paths_by_draft_probability(n_nodes, depth):
    pair = trigram_pair(8)
    context = [3, 5]
    cache = new_cache(pair.draft)
    forward_new_tokens(pair.draft, cache, torch.tensor([context[:-1]]))
    proposal = propose_tree(pair.draft, cache, torch.tensor([context[-1:]]), Dynamic(n_nodes, depth))
    tree = proposal.tree
    paths = {tuple(tree.tokens[tree.path_to(v)[1:]].tolist()) for v in range(1, len(tree))}
    assert paths == best_paths_by_brute_force(pair.draft, context, n_nodes, depth)
    deepest = max(tree.depths.tolist())
    assert deepest <= proposal.forwards <= depth  # one draft forward per depth (the deepest level is seldom fed)
    fed_in_tree = sum(0 < d < deepest for d in tree.depths.tolist())
    assert proposal.n_fed >= fed_in_tree


def test_chains_shape_is_n_branches_disjoint_chains():
    pair = tiny_pair("qwen2", noise=0.3)
    cache = new_cache(pair.draft)
    proposal = propose_tree(pair.draft, cache, pair.encode("the cat"), Chains(3, 4))
    tree = proposal.tree
    assert len(tree) == 13 and len(tree.children(0)) == 3 and len(tree.leaves()) == 3
    assert proposal.forwards == 4 and proposal.n_fed == 9 and proposal.cache_slots == list(range(-1, 12))


@pytest.mark.parametrize("make, name", [(lambda: Chains(0, 2), "n_branches"), (lambda: Chains(2, 0), "depth"),
                                        (lambda: Dynamic(0, 2), "n_nodes"), (lambda: Dynamic(4, 0), "depth")])
def test_shapes_check_their_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("make, name", [(lambda: CostAware(0, 2, 0.5, (1.0,)), "n_nodes"),
                                        (lambda: CostAware(2, 2, -0.1, (1.0, 1.0)), "c >= 0"),
                                        (lambda: CostAware(3, 2, 0.5, (1.0, 1.1)), "verify_costs"),
                                        (lambda: CostAware(2, 2, 0.5, (1.0, 0.0)), "verify_costs")])
def test_cost_aware_shape_checks_its_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_cost_aware_ratio_by_hand():
    drafted = DraftedTree(root=0)
    drafted.tokens += [1, 2, 3]
    drafted.parents += [0, 0, 1]
    drafted.depths += [1, 1, 2]
    drafted.scores += [0.9, 0.1, 0.5]
    shape = CostAware(3, 4, c=0.5, verify_costs=(1.1, 1.2, 1.3))
    # after 2 forwards (cost 1): N=1 -> 1.9 / 2.1, N=2 -> 2.4 / 2.2, N=3 -> 2.5 / 2.3: the 0.1 node does not pay
    assert shape.best_ratio([0.9, 0.5, 0.1], 2) == pytest.approx((2.4 / 2.2, 2))
    assert shape.verified_nodes(drafted, 2) == 2
    # deeper from node 3 (score 0.5, its own q 0.5 / 0.9): 0.5 * 0.556 = 0.278 >= c R = 0.545? no
    assert not shape.worth_deeper(drafted, [3], 2)
    assert CostAware(3, 4, c=0.1, verify_costs=(1.0, 1.0, 1.0)).worth_deeper(drafted, [3], 2)  # 0.278 >= 0.1 R


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cost_aware_tree_with_free_costs_is_the_dynamic_tree(temperature):
    """c = 0 and v_N = 1: every node and every level pays, so the tree is Dynamic's, draw for draw."""
    pair = tiny_pair("qwen2", noise=0.3)
    for prompt in PROMPTS[:8]:
        trees = []
        for shape in (Dynamic(6, 3), CostAware(6, 3, c=0.0, verify_costs=(1.0,) * 6)):
            sampling = Sampling(temperature, generator=torch.Generator().manual_seed(3))
            proposal = propose_tree(pair.draft, new_cache(pair.draft), pair.encode(prompt), shape, sampling=sampling)
            trees.append((proposal.tree.tokens.tolist(), proposal.tree.parents.tolist(), proposal.forwards))
        assert trees[0] == trees[1], prompt


def test_cost_aware_tree_spends_less_when_drafting_costs_more():
    pair = trigram_pair(16)
    ids = torch.tensor([[3, 5]])
    sizes = {}
    for c in (0.0, 0.2, 5.0):
        shape = CostAware(8, 4, c=c, verify_costs=tuple(1 + 0.05 * n for n in range(1, 9)))
        proposal = propose_tree(pair.draft, new_cache(pair.draft), ids, shape)
        sizes[c] = (len(proposal.tree) - 1, proposal.forwards)
    assert sizes[5.0][1] == 1  # a draft forward dearer than anything it could win: the first level only
    assert sizes[0.0][1] >= sizes[0.2][1] >= sizes[5.0][1] and sizes[0.0][1] > 1  # cheaper drafts: deeper trees
    assert sizes[0.0][0] < 8  # even with free drafts, a node whose score cannot pay its 0.05 of verify is left out


@pytest.mark.parametrize("arch, attn", [("gpt2", "eager"), ("qwen2", "sdpa")])
def test_greedy_cost_aware_tree_equals_target_greedy(arch, attn):
    pair = tiny_pair(arch, attn=attn, noise=0.3)
    for i, prompt in enumerate(PROMPTS):
        expected = autoregressive_generate(pair, prompt, max_new_tokens=12, stop_at_eos=False).token_ids
        shape = CostAware(4 + i % 5, 2 + i % 4, c=0.05 * (i % 6), verify_costs=tuple(1 + 0.1 * n for n in range(8)))
        assert tree_generate(pair, prompt, max_new_tokens=12, shape=shape, stop_at_eos=False).token_ids == expected


def test_auto_shape_calibrates_the_pair():
    pair = tiny_pair("qwen2", noise=0.3)
    expected = autoregressive_generate(pair, "the cat", max_new_tokens=10, stop_at_eos=False).token_ids
    result = tree_generate(pair, "the cat", max_new_tokens=10, shape="auto", n_nodes=6, depth=3, stop_at_eos=False)
    assert result.token_ids == expected
    assert all(len(step.tokens) - 1 <= 6 for step in result.trace if isinstance(step, TreeStepTrace))
