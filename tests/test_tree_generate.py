"""Token-tree decoding: greedy output == the target's greedy output, caches compacted right, counts, bad input."""

import pytest
import torch

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.algorithm.kv_cache import cache_length, forward_new_tokens, new_cache
from specdec_lite.algorithm.results import TreeStepTrace
from specdec_lite.algorithm.sampling import Sampling
from specdec_lite.algorithm.tree import compact_caches, tree_generate
from specdec_lite.algorithm.tree_draft import propose_tree
from specdec_lite.algorithm.tree_verification import tree_target_logits, verify_tree
from specdec_lite.models.tiny_models import tiny_pair

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


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_compacted_caches_continue_like_a_fresh_forward(arch, temperature):
    pair = tiny_pair(arch, noise=0.3)
    generator = torch.Generator().manual_seed(0)
    for prompt in PROMPTS[:6]:
        ids = pair.encode(prompt)
        draft_cache, target_cache = new_cache(pair.draft), new_cache(pair.target)
        if ids.shape[1] > 1:
            forward_new_tokens(pair.target, target_cache, ids[:, :-1])
        proposal = propose_tree(pair.draft, draft_cache, ids, 3, 3, sampling=Sampling(temperature), generator=generator)
        logits = tree_target_logits(pair.target, target_cache, proposal.tree)
        verdict, _ = verify_tree(proposal.tree, proposal.q, logits, Sampling(temperature), generator)
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
    (dict(n_branches=40, depth=4), "n_branches \\* depth"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(top_p=0.0), "top_p"),
])
def test_bad_arguments_raise(kwargs, name):
    pair = tiny_pair("gpt2")  # context window 128
    with pytest.raises(ValueError, match=name):
        tree_generate(pair, "abc", **({"max_new_tokens": 8} | kwargs))
