"""theory.py: α from p and q, expected tokens per forward, predicted speed-up, best K, measuring c and α."""

import random

import pytest
import torch

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.algorithm.theory import (
    acceptance_per_position,
    alpha,
    best_k,
    step_summary,
    break_even_alpha,
    c_floor,
    continuation_logits,
    expected_tokens_per_forward,
    forward_time,
    forward_times,
    timed_rounds,
    measure_alpha,
    measure_c,
    measure_prefill,
    measure_verify_cost,
    position_acceptance,
    predicted_speedup,
)
from specdec_lite.algorithm.verification import acceptance_probability
from specdec_lite.models.pair import ModelPair
from specdec_lite.models.tiny_models import tiny_model, tiny_pair, tiny_tokenizer


def test_alpha_of_explicit_distributions():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0])
    q = torch.tensor([0.1, 0.3, 0.0, 0.6])
    assert alpha(p, q) == pytest.approx(0.1 + 0.3)
    assert alpha(p, p) == pytest.approx(1.0)
    assert alpha(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 0.0
    assert alpha(torch.stack([p, p]), torch.stack([q, p])) == pytest.approx((0.4 + 1.0) / 2)


def test_alpha_equals_the_acceptance_probability_of_the_rule():
    # Σ_x q(x) min(1, p(x)/q(x)) is the chance the sampling rule accepts one drafted token: it equals Σ min(p, q)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = torch.rand(12, generator=generator) ** 3
        q = torch.rand(12, generator=generator) ** 3
        p[0], q[1] = 0.0, 0.0
        p, q = p / p.sum(), q / q.sum()
        accept = (q * acceptance_probability(p, q)).sum()
        assert float(accept) == pytest.approx(alpha(p, q), abs=1e-6)


def test_alpha_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        acceptance_per_position(torch.ones(3), torch.ones(4))


@pytest.mark.parametrize("a, k", [(0.0, 3), (0.5, 1), (0.8, 4), (0.95, 8), (1.0, 5)])
def test_expected_tokens_per_forward_matches_a_simulation(a, k):
    # each step: accept drafted tokens one by one with probability α until a rejection or K; +1 emitted
    rng = random.Random(0)
    steps = 40_000
    total = 0
    for _ in range(steps):
        n = 0
        while n < k and rng.random() < a:
            n += 1
        total += n + 1
    assert expected_tokens_per_forward(a, k) == pytest.approx(total / steps, rel=0.02)
    assert 1 <= expected_tokens_per_forward(a, k) <= k + 1


def test_expected_tokens_closed_form_edges():
    assert expected_tokens_per_forward(0.0, 7) == 1.0
    assert expected_tokens_per_forward(1.0, 7) == 8.0
    assert expected_tokens_per_forward(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)


def test_predicted_speedup():
    assert predicted_speedup(0.8, 4, 0.0) == pytest.approx(expected_tokens_per_forward(0.8, 4))
    assert predicted_speedup(0.8, 4, 0.25) == pytest.approx(expected_tokens_per_forward(0.8, 4) / 2)
    # a costlier verification forward lowers the prediction in proportion
    assert predicted_speedup(0.8, 4, 0.25, verify_cost=3.0) == pytest.approx(expected_tokens_per_forward(0.8, 4) / 4)
    assert predicted_speedup(0.0, 1, 0.5) < 1  # nothing accepted: speculation loses


@pytest.mark.parametrize("bad, match", [(dict(alpha_=1.5), "alpha"), (dict(k=0), "k must"),
                                        (dict(c=-0.1), "c must"), (dict(verify_cost=0), "verify_cost")])
def test_predicted_speedup_refuses_bad_input(bad, match):
    args = dict(alpha_=0.5, k=2, c=0.1) | bad
    with pytest.raises(ValueError, match=match):
        predicted_speedup(**args)


def test_best_k():
    assert best_k(0.0, 0.1) == 1
    assert best_k(0.99, 0.0, k_max=16) == 16
    ks = [best_k(a, 0.05) for a in (0.5, 0.7, 0.9)]
    assert ks == sorted(ks) and ks[0] < ks[-1]  # better drafts are worth longer drafts
    # a verification that grows with K pulls the best K down
    rising = [1 + 0.4 * k for k in range(1, 17)]
    assert best_k(0.9, 0.05, verify_costs=rising) < best_k(0.9, 0.05)
    chosen = best_k(0.8, 0.2, k_max=10)
    assert all(predicted_speedup(0.8, chosen, 0.2) >= predicted_speedup(0.8, k, 0.2) for k in range(1, 11))
    with pytest.raises(ValueError, match="verify_costs"):
        best_k(0.8, 0.2, k_max=4, verify_costs=[1.0, 1.0])


def test_measure_prefill_in_one_token_target_forwards():
    pair = tiny_pair("qwen2")
    target, draft = measure_prefill(pair, 24, repeats=1)
    assert target > 0 and draft > 0
    with pytest.raises(ValueError, match="prompt_length"):
        measure_prefill(pair, 1)


def test_forward_time_and_measurements_on_a_tiny_pair():
    pair = tiny_pair("qwen2")
    assert forward_time(pair.target, 10, 3, repeats=2) > 0
    times = forward_times([pair.draft, pair.target], 10, 1, repeats=2)  # taking turns: one median per model
    assert len(times) == 2 and all(t > 0 for t in times)
    rounds = timed_rounds([(pair.target, 1), (pair.target, 5), (pair.draft, 2)], 10, repeats=3)
    assert len(rounds) == 3 and all(len(seconds) == 3 and min(seconds) > 0 for seconds in rounds)
    rounds = timed_rounds([(pair.target, 1), (pair.draft, 9)], [20, 1], repeats=2)  # a context per run
    assert len(rounds) == 2 and all(len(seconds) == 2 for seconds in rounds)
    with pytest.raises(ValueError, match="one context_length per run"):
        timed_rounds([(pair.target, 1), (pair.draft, 9)], [20], repeats=2)
    c = measure_c(pair, context_lengths=(8, 16), repeats=1)
    assert 0 < c < 10
    costs = measure_verify_cost(pair.target, [1, 4], context_length=8, repeats=1)
    assert sorted(costs) == [1, 4] and all(v > 0 for v in costs.values())
    with pytest.raises(ValueError, match="context_length"):
        forward_time(pair.target, 0)


def test_c_floor_is_the_ratio_of_weight_bytes():
    assert c_floor(tiny_pair("qwen2")) == 1.0  # draft and target of the same size
    draft, target = tiny_model("qwen2", layers=1), tiny_model("qwen2", layers=3)
    config = target.config
    d, mlp = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * d // config.num_attention_heads  # k and v widths
    layer = 4 * (2 * d * d + 2 * d * kv + 3 * d * mlp + d + 2 * kv)  # fp32 bytes: q, o, k, v, gate/up/down, biases
    head = 4 * d * config.vocab_size
    pair = ModelPair(draft, target, tiny_tokenizer(), torch.float32, torch.device("cpu"))
    assert c_floor(pair) == pytest.approx((layer + head) / (3 * layer + head))


def test_forward_time_leaves_no_trace_in_the_model():
    pair = tiny_pair("gpt2")
    before = autoregressive_generate(pair, "hello", 8).token_ids
    forward_time(pair.target, 12, 4, repeats=2)
    assert autoregressive_generate(pair, "hello", 8).token_ids == before


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_greedy_alpha_is_the_share_of_positions_where_the_argmaxes_agree(arch):
    pair = tiny_pair(arch, noise=0.1)
    prompt = "hello world"
    target_tokens = autoregressive_generate(pair, prompt, 20).token_ids
    agree = []
    ids = pair.encode(prompt)[0].tolist()
    for token in target_tokens:  # the draft's greedy choice after each prefix of the target's continuation
        draft_next = autoregressive_generate(pair, ids, 1, model=pair.draft, stop_at_eos=False).token_ids[0]
        agree.append(float(draft_next == token))
        ids.append(token)
    assert position_acceptance(pair, prompt, 20).tolist() == agree
    assert 0 < sum(agree) < len(agree)  # the pair is neither perfect nor useless


def test_continuation_logits_are_the_logits_of_each_prefix():
    pair = tiny_pair("qwen2", noise=0.1)
    prompt, continuation = pair.encode("hello"), [5, 9, 2, 7]  # [1, n], m = 4
    target, draft = continuation_logits(pair, prompt, continuation)
    assert target.shape == draft.shape == (4, pair.target.config.vocab_size)
    ids = prompt[0].tolist()
    for row, token in enumerate(continuation):  # row i predicts continuation[i] from the prompt + continuation[:i]
        with torch.inference_mode():
            alone = pair.target(torch.tensor([ids])).logits[0, -1]
        torch.testing.assert_close(target[row], alone, rtol=1e-4, atol=1e-5)
        ids.append(token)
    assert not torch.equal(target, draft)


def test_measure_alpha_is_one_for_identical_models_and_in_range_otherwise():
    pair = tiny_pair("gpt2", noise=0.3)
    prompts = ["abc", "hello world", "zz top"]
    a_greedy = measure_alpha(pair, prompts, max_new_tokens=12)
    a_sampled = measure_alpha(pair, prompts, max_new_tokens=12, temperature=1.0, seed=3)
    assert 0 < a_greedy < 1 and 0 < a_sampled < 1
    pair.draft = pair.target
    assert measure_alpha(pair, prompts, max_new_tokens=12, temperature=0.7) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="prompts"):
        measure_alpha(pair, [])


def test_break_even_alpha():
    # K = 1: S = (1 + α) / (c + v) = 1  <=>  α = c + v - 1
    assert break_even_alpha(1, 0.3) == pytest.approx(0.3, abs=1e-6)
    assert break_even_alpha(1, 0.2, verify_cost=1.5) == pytest.approx(0.7, abs=1e-6)
    for k, c, v in [(4, 0.05, 1.0), (4, 0.4, 1.0), (8, 0.2, 2.0)]:
        a = break_even_alpha(k, c, v)
        assert 0 < a < 1 and predicted_speedup(a, k, c, v) == pytest.approx(1.0, abs=1e-6)
    assert break_even_alpha(4, 0.6, verify_cost=4.0) == 1.0  # K + 1 < K c + v: loses even at α = 1
    assert break_even_alpha(4, 0.0, verify_cost=0.5) == 0.0  # a verification cheaper than a plain step wins always


def test_step_summary_counts_steps_not_prefill_or_plain_steps():
    from specdec_lite.algorithm.results import PlainStep, StepTrace

    def step(k, n_accepted):
        return StepTrace(list(range(k)), [0.5] * k, [0.5] * k, n_accepted, 99, False)

    trace = [step(4, 4), step(4, 1), step(2, 0), PlainStep(7)]
    s = step_summary(trace)
    assert (s.steps, s.drafted, s.accepted, s.emitted) == (3, 10, 5, 5 + 3)
    assert s.tested == 4 + 2 + 1  # all of the first; up to the rejection in the others
    assert s.tokens_per_step == pytest.approx(8 / 3) and s.mean_k == pytest.approx(10 / 3)
    assert s.tested_acceptance == pytest.approx(5 / 7)
    assert step_summary([]).tokens_per_step == 0.0
