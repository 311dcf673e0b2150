"""The sampling transform: temperature, top-k, top-p, greedy; and seeded draws."""

import pytest
import torch

from specdec_lite.algorithm.sampling import Sampling, logits_to_probs, sample

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.5, 3, 1.0), (2.0, 0, 0.7), (1.0, 2, 0.5)])
def test_rows_are_distributions(temperature, top_k, top_p):
    probs = logits_to_probs(torch.randn(3, 4, 50), temperature, top_k, top_p)
    assert probs.shape == (3, 4, 50)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 4))
    assert (probs >= 0).all()


def test_temperature_zero_is_one_hot_argmax():
    probs = logits_to_probs(LOGITS, temperature=0)
    assert probs.tolist() == [1.0, 0, 0, 0, 0, 0]


def test_top_k_keeps_the_k_most_likely():
    probs = logits_to_probs(LOGITS, top_k=3)
    assert (probs[:3] > 0).all() and (probs[3:] == 0).all()
    assert torch.allclose(probs[:3], LOGITS[:3].softmax(-1))


def test_top_p_keeps_the_smallest_set_reaching_p():
    full = LOGITS.softmax(-1)  # [0.59, 0.22, 0.13, 0.08, ...]
    probs = logits_to_probs(LOGITS, top_p=0.85)
    kept = (probs > 0).sum().item()
    assert kept == 3  # 0.59 + 0.22 < 0.85 <= 0.59 + 0.22 + 0.13
    assert torch.allclose(probs[:3], full[:3] / full[:3].sum())


def test_top_p_always_keeps_the_top_token():
    assert logits_to_probs(LOGITS, top_p=0.01).tolist() == [1.0, 0, 0, 0, 0, 0]


def test_temperature_sharpens_and_flattens():
    cold, hot = logits_to_probs(LOGITS, 0.5), logits_to_probs(LOGITS, 2.0)
    assert cold[0] > LOGITS.softmax(-1)[0] > hot[0]


@pytest.mark.parametrize("kwargs, name", [
    (dict(temperature=-0.1), "temperature"), (dict(top_k=-1), "top_k"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        logits_to_probs(LOGITS, **kwargs)


def test_draws_are_reproducible_with_a_generator():
    probs = logits_to_probs(torch.randn(8, 30))
    first = sample(probs, torch.Generator().manual_seed(7))
    again = sample(probs, torch.Generator().manual_seed(7))
    assert first.shape == (8,) and torch.equal(first, again)


def test_next_token_greedy_needs_no_generator():
    assert int(Sampling(0.0, 0, 1.0).next_token(LOGITS)) == 0


def test_sampling_draws_with_its_own_generator_and_compares_by_settings_alone():
    def draws(seed: int) -> list[int]:
        sampling = Sampling(temperature=1.0, generator=torch.Generator().manual_seed(seed))
        return [int(sampling.next_token(LOGITS)) for _ in range(20)]

    assert draws(3) == draws(3) and draws(3) != draws(4)  # the stream is the generator's
    assert Sampling(1.0, generator=torch.Generator()) == Sampling(1.0)  # settings equal, generator not compared
