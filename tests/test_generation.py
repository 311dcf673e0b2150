"""Generation contract: determinism under a seed, EOS, exact max_new_tokens, bad input."""

import pytest
import torch

from specdec_lite import StepTrace, autoregressive_generate, speculative_generate, tree_generate
from specdec_lite.algorithm.inputs import make_generator
from specdec_lite.models.tiny_models import TINY_ALPHABET, tiny_pair

GENERATORS = [autoregressive_generate, speculative_generate]


@pytest.fixture(scope="module")
def pair():
    return tiny_pair("qwen2")


@pytest.mark.parametrize("generate", GENERATORS)
def test_same_seed_same_tokens_other_seed_other_tokens(pair, generate):
    runs = [generate(pair, "hello", 40, temperature=1.0, seed=s).token_ids for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


@pytest.mark.parametrize("generate", GENERATORS)
def test_a_passed_generator_is_used_instead_of_the_seed(pair, generate):
    def run(seed: int, generator_seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(generator_seed)
        return generate(pair, "hello", 30, temperature=1.0, seed=seed, generator=generator).token_ids

    assert run(seed=1, generator_seed=5) == run(seed=2, generator_seed=5)  # the seed is not used
    assert run(seed=1, generator_seed=5) != run(seed=1, generator_seed=6)  # the generator is


@pytest.mark.parametrize("generate", GENERATORS + [tree_generate])
def test_seed_none_is_fresh_randomness(pair, generate):
    runs = [generate(pair, "hello", 40, temperature=1.0, seed=None).token_ids for _ in range(2)]
    assert runs[0] != runs[1]


def test_a_generator_on_another_device_is_a_value_error():
    with pytest.raises(ValueError, match="generator is on cpu but the pair runs on cuda"):
        make_generator(torch.device("cuda"), 0, torch.Generator())  # checked before anything touches CUDA
    assert make_generator(torch.device("cpu"), None, generator := torch.Generator()) is generator


@pytest.mark.parametrize("generate", GENERATORS)
@pytest.mark.parametrize("max_new_tokens", [1, 2, 7, 30])
def test_exactly_max_new_tokens_without_eos(pair, generate, max_new_tokens):
    result = generate(pair, "abc", max_new_tokens, temperature=1.0, stop_at_eos=False)
    assert len(result.token_ids) == max_new_tokens == result.stats.new_tokens


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_eos_stops_generation(pair, temperature):
    eos = pair.target.generation_config.eos_token_id  # 0 in the tiny models
    for seed, prompt in enumerate(TINY_ALPHABET):  # greedy runs differ by prompt, sampled ones by seed too
        free = speculative_generate(pair, prompt, 60, temperature=temperature, seed=seed, stop_at_eos=False).token_ids
        if eos in free:
            stopped = speculative_generate(pair, prompt, 60, temperature=temperature, seed=seed).token_ids
            assert stopped == free[: free.index(eos) + 1]
            return
    pytest.fail("no run produced EOS; pick another model seed")


def test_stats_are_consistent(pair):
    result = speculative_generate(pair, "hello world", 40, k=4, stop_at_eos=False)
    stats = result.stats
    assert stats.new_tokens == len(result.token_ids) == 40
    drafted = [step for step in result.trace if isinstance(step, StepTrace)]
    assert stats.accepted == sum(step.n_accepted for step in drafted)
    assert stats.proposed == sum(len(step.proposed) for step in drafted)
    assert [token for step in result.trace for token in step.emitted] == result.token_ids  # no step is cut
    assert stats.target_forwards == len(result.trace) + 1  # + the prefill
    assert result.text == pair.decode(result.token_ids)


def test_trace_records_p_and_q_of_each_proposal(pair):
    step = speculative_generate(pair, "hello", 10, k=3, temperature=1.0).trace[0]
    assert len(step.proposed) == len(step.p) == len(step.q) == 3
    assert all(0 < q <= 1 for q in step.q) and all(0 <= p <= 1 for p in step.p)


@pytest.mark.parametrize("kwargs, name", [
    (dict(prompt=""), "prompt"),
    (dict(prompt=["ab", "cd"]), "prompt"),
    (dict(prompt=torch.ones(2, 3, dtype=torch.long)), "prompt"),
    (dict(k=0), "k"),
    (dict(temperature=-1.0), "temperature"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.01), "top_p"),
    (dict(top_k=-2), "top_k"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=200), "max_new_tokens"),  # tiny models have a 128-token window
])
def test_bad_input_is_a_value_error_naming_the_argument(pair, kwargs, name):
    args = dict(prompt="hello", max_new_tokens=8) | kwargs
    with pytest.raises(ValueError, match=name):
        speculative_generate(pair, **args)


def test_plain_decoding_tells_on_token_each_token_in_order(pair):
    seen = []
    result = autoregressive_generate(pair, "ab", 10, temperature=1.0, seed=3, on_token=seen.append)
    assert seen == result.token_ids and len(seen) == 10
