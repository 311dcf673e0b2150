"""run_theory.py: the cost of a whole run (prefills, clipped last steps) and greedy acceptance replayed."""

import itertools

import pytest
import torch

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.algorithm.chain import speculative_generate
from specdec_lite.algorithm.results import PlainStep, StepTrace
from specdec_lite.algorithm.run_theory import (
    expected_run_cost,
    replayed_draft_lengths,
    step_cost,
    steps_cost,
)
from specdec_lite.algorithm.theory import continuation_acceptance, expected_tokens_per_forward
from specdec_lite.models.tiny_models import tiny_pair

V = [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]  # v_1..v_8


def test_step_cost():
    assert step_cost(0, 0.5, V) == 1.0  # a plain step: one 1-token target forward
    assert step_cost(3, 0.5, V) == pytest.approx(3 * 0.5 + 1.3)


def test_expected_run_cost_short_runs_by_hand():
    a, c = 0.6, 0.4
    assert expected_run_cost(a, 4, c, V, 1) == 1.0  # one token left: a plain step
    # two left: draft 1 (K clipped to 1); accepted -> 2 tokens, done; rejected -> 1 token, then a plain step
    assert expected_run_cost(a, 4, c, V, 2) == pytest.approx(c + V[0] + (1 - a) * 1.0)


@pytest.mark.parametrize("a, k", [(0.0, 1), (0.5, 3), (0.8, 4), (0.95, 8), (1.0, 2)])
def test_expected_run_cost_tends_to_the_per_step_formula(a, k):
    n, c = 4000, 0.3
    per_token = expected_run_cost(a, k, c, V, n) / n
    assert per_token == pytest.approx((k * c + V[k - 1]) / expected_tokens_per_forward(a, k), rel=2e-3)


@pytest.mark.parametrize("a, k, n", [(0.7, 3, 10), (0.9, 8, 9), (0.3, 2, 7)])
def test_expected_run_cost_is_the_replay_averaged_over_every_agreement_sequence(a, k, n):
    c = 0.4
    exact = sum(a ** sum(seq) * (1 - a) ** (n - sum(seq)) * steps_cost(replayed_draft_lengths(seq, k, n), c, V)
                for seq in itertools.product([False, True], repeat=n))  # positions agree independently, chance α
    assert expected_run_cost(a, k, c, V, n) == pytest.approx(exact)


@pytest.mark.parametrize("call, match", [
    (lambda: expected_run_cost(1.5, 4, 0.3, V, 8), "alpha"),
    (lambda: expected_run_cost(0.5, 0, 0.3, V, 8), "k must"),
    (lambda: expected_run_cost(0.5, 4, -0.1, V, 8), "c must"),
    (lambda: expected_run_cost(0.5, 4, 0.3, V[:3], 8), "verify_costs"),
    (lambda: expected_run_cost(0.5, 2, 0.3, [1.0, 0.0], 8), "verify_costs"),
    (lambda: steps_cost([3, 5], 0.3, V[:4]), "verify_costs"),
    (lambda: steps_cost([1], -0.1, V), "c must"),
    (lambda: replayed_draft_lengths([True] * 9, 4, 8), "max_new_tokens"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_replay_by_hand():
    agree = [True, True, False, True, True, True, True, False, True]
    # K = 3: 0-1 accepted, 2 the target's own; 3-5 accepted + bonus (6); 2 left: 1 draft (7) rejected; 1 left: plain
    assert replayed_draft_lengths(agree, 3, 9) == [3, 3, 1, 0]
    assert steps_cost(replayed_draft_lengths(agree, 3, 9), 0.5, V) == pytest.approx(
        2 * (1.5 + V[2]) + (0.5 + V[0]) + 1.0)
    assert steps_cost([], 0.5, V) == 0.0  # no steps, no cost
    assert replayed_draft_lengths([True] * 8, 8, 8) == [7]  # 7 drafts accepted + the bonus token
    assert replayed_draft_lengths([False] * 4, 2, 4) == [2, 2, 1, 0]  # one token a step; the end clips K
    assert replayed_draft_lengths([True, True], 4, 64) == [4]  # an EOS ended the continuation early


@pytest.mark.parametrize("k", [1, 3, 5])
def test_replay_takes_the_steps_the_greedy_loop_takes(k):
    pair = tiny_pair("qwen2", noise=0.3)  # a draft that disagrees now and then
    ids = torch.tensor([[5, 17, 3, 12, 8]])
    n = 40
    continuation = autoregressive_generate(pair, ids, n, stop_at_eos=False).token_ids
    agreement = (continuation_acceptance(pair, ids, continuation) > 0.5).tolist()
    assert 0 < sum(agreement) < n  # both kinds of position occur, so the replay is tested on rejections too
    result = speculative_generate(pair, ids, n, k=k, stop_at_eos=False)
    loop = [len(s.proposed) if isinstance(s, StepTrace) else 0 for s in result.trace if isinstance(s, (StepTrace, PlainStep))]
    assert result.token_ids == continuation
    assert replayed_draft_lengths(agreement, k, n) == loop
