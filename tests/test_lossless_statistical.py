"""Speculative sampling follows the target's distribution: 20,000 end-to-end runs per setting.

The first two emitted tokens of `speculative_generate` are compared with the target's exact joint
distribution p(x1) p(x2 | x1) by a chi-square test and a total-variation bound. The fast settings
use `TrigramLM` (a lookup-table LM driven through the real loop, caches and rollback included);
one setting uses a tiny Qwen2 transformer. The argmax-accept rule (the first project version's, biased) must fail
the same test.
"""

import pytest
import torch

import specdec_lite.algorithm.chain as chain_module
from distribution_checks import exact_first_two, matches_distribution, trigram_pair
from specdec_lite import HeuristicK, speculative_generate
from specdec_lite.algorithm.verification import Verdict
from specdec_lite.models.pair import ModelPair
from specdec_lite.models.tiny_models import perturbed_copy, tiny_model, tiny_tokenizer

VOCAB, CONTEXT, N_SAMPLES = 16, [1, 2, 3], 20_000
pytestmark = pytest.mark.statistical


def sampled_first_two(pair, k, temperature, top_k, top_p, min_confidence=0.0, n=N_SAMPLES) -> list:
    generator = torch.Generator().manual_seed(1234)
    max_k = k if isinstance(k, int) else k.k
    samples = []
    for _ in range(n):
        ids = speculative_generate(pair, CONTEXT, max_new_tokens=max_k + 1, k=k, temperature=temperature,
                                   top_k=top_k, top_p=top_p, generator=generator, stop_at_eos=False,
                                   min_confidence=min_confidence).token_ids
        samples.append(ids[0] * VOCAB + ids[1])
    return samples


def check(pair, k, temperature, top_k=0, top_p=1.0, min_confidence=0.0):
    probs = exact_first_two(pair, CONTEXT, VOCAB, temperature, top_k, top_p)
    samples = sampled_first_two(pair, k, temperature, top_k, top_p, min_confidence)
    return matches_distribution(samples, list(range(VOCAB * VOCAB)), probs)


@pytest.mark.parametrize("k, temperature, top_k, top_p, min_confidence", [
    (1, 1.0, 0, 1.0, 0.0),
    (3, 0.7, 0, 0.9, 0.0),
    (2, 1.3, 5, 1.0, 0.0),
    (HeuristicK(k=2, k_max=6), 1.0, 0, 0.8, 0.0),
    (4, 1.0, 0, 1.0, 0.5),
])
def test_speculative_sampling_matches_target(k, temperature, top_k, top_p, min_confidence):
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), k, temperature, top_k, top_p, min_confidence)
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


def argmax_accept_verify(drafted, q, logits, sampling):
    """The argmax-accept rule (the first project version's): accept while x_i is the target's argmax, sample from p on
    rejection. Biased when sampling (notebook 04)."""
    p = sampling.probs(logits)
    matches = (drafted == p[:-1].argmax(-1)).int()
    n = int(matches.cumprod(0).sum())
    return Verdict(n, int(sampling.draw(p[n])), resampled=n < len(drafted)), p


def test_argmax_accept_rule_fails_the_same_test(monkeypatch):
    monkeypatch.setattr(chain_module, "verify", argmax_accept_verify)
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), 3, 0.7, 0, 0.9)
    assert not passes, f"the argmax-accept rule passed: chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


@pytest.mark.slow
def test_speculative_sampling_matches_target_on_a_transformer():
    target = tiny_model("qwen2", seed=3, vocab_size=VOCAB, layers=1, hidden=16)
    target.config.eos_token_id = target.generation_config.eos_token_id = None
    pair = ModelPair(perturbed_copy(target, 0.3, seed=4), target, tiny_tokenizer(VOCAB), torch.float32,
                     torch.device("cpu"))
    passes, p_value, tv, bound = check(pair, 2, 1.0, 0, 0.95)
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"
