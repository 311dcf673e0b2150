"""A draft with the target's own weights must have every drafted token accepted (greedy and sampled).

Exactness and losslessness hold for ANY draft, so a bug on the draft side (a wrong logits row in
`propose`, a draft cache that misses or keeps the wrong entries) passes those tests and only
lowers acceptance. With draft = target, p = q at every position: greedy accepts all K tokens of
every step, and sampling accepts every drafted token (min(1, p/q) = 1). These tests pin that down
for the chain, the dynamic draft lengths (HeuristicK, the confidence stop) and the tree.
"""

import copy

import pytest
import torch

from specdec_lite import HeuristicK, ModelPair, speculative_generate, tree_generate
from specdec_lite.algorithm.results import StepTrace, TreeStepTrace
from specdec_lite.models.tiny_models import tiny_model, tiny_tokenizer

PROMPTS = ["a", "hello", "the cat sat", "why not?", "abc abc abc", "speculative"]
MAX_NEW = 30
SAMPLINGS = [dict(temperature=0.0), dict(temperature=1.0), dict(temperature=0.7, top_k=8, top_p=0.9)]


@pytest.fixture(scope="module", params=["gpt2", "qwen2"])
def same_pair(request) -> ModelPair:
    """Draft and target: two copies of one tiny model (separate modules, identical weights)."""
    target = tiny_model(request.param, seed=3)
    return ModelPair(copy.deepcopy(target), target, tiny_tokenizer(), torch.float32, torch.device("cpu"))


def chain_steps(result) -> list[StepTrace]:
    return [step for step in result.trace if isinstance(step, StepTrace)]


def assert_every_draft_accepted(steps: list[StepTrace], prompt: str) -> None:
    assert steps, f"{prompt!r}: no drafted step"
    for step in steps:
        assert step.n_accepted == len(step.proposed) and not step.resampled, (prompt, step)


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=["greedy", "t1", "t07_topk_topp"])
def test_chain_accepts_all_k_every_step(same_pair, sampling):
    for seed, prompt in enumerate(PROMPTS):
        result = speculative_generate(same_pair, prompt, MAX_NEW, k=4, seed=seed, stop_at_eos=False, **sampling)
        steps = chain_steps(result)
        assert_every_draft_accepted(steps, prompt)
        assert [len(step.proposed) for step in steps[:-1]] == [4] * (len(steps) - 1)  # the last may be cut short
        assert result.stats.acceptance_rate == 1.0


@pytest.mark.parametrize("sampling", SAMPLINGS[:2], ids=["greedy", "t1"])
def test_heuristic_k_grows_by_two_every_step(same_pair, sampling):
    for seed, prompt in enumerate(PROMPTS):
        result = speculative_generate(same_pair, prompt, MAX_NEW, k=HeuristicK(k=2, k_max=8), seed=seed,
                                      stop_at_eos=False, **sampling)
        steps = chain_steps(result)
        assert_every_draft_accepted(steps, prompt)
        emitted, expected_k = 0, 2
        for step in steps:
            assert len(step.proposed) == min(expected_k, MAX_NEW - emitted - 1), prompt
            emitted += len(step.emitted)
            expected_k = min(8, expected_k + 2)


@pytest.mark.parametrize("sampling", SAMPLINGS[:2], ids=["greedy", "t1"])
def test_confidence_stop_accepts_every_draft_and_stops_early(same_pair, sampling):
    lengths = []
    for seed, prompt in enumerate(PROMPTS):
        result = speculative_generate(same_pair, prompt, MAX_NEW, k=6, min_confidence=0.9, seed=seed,
                                      stop_at_eos=False, **sampling)
        steps = chain_steps(result)
        assert_every_draft_accepted(steps, prompt)
        lengths += [len(step.proposed) for step in steps[:-1]]
    assert min(lengths) < 6, "the threshold never stopped a draft: the test checks nothing about the stop"


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=["greedy", "t1", "t07_topk_topp"])
@pytest.mark.parametrize("n_branches", [1, 3])
def test_tree_accepts_a_whole_branch_every_step(same_pair, sampling, n_branches):
    for seed, prompt in enumerate(PROMPTS):
        result = tree_generate(same_pair, prompt, MAX_NEW, n_branches=n_branches, depth=4, seed=seed,
                               stop_at_eos=False, **sampling)
        steps = [step for step in result.trace if isinstance(step, TreeStepTrace)]
        assert steps, prompt
        for step in steps:
            depth = max(step.depths)
            assert step.n_accepted == depth and not step.resampled, (prompt, step)
            assert step.accepted_nodes[0] == 1  # the first branch: the draft's top token, or its first draw
        assert [max(step.depths) for step in steps[:-1]] == [4] * (len(steps) - 1)
