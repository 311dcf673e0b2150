"""The speculative sampling rule is lossless: exact enumeration over explicit p and q vectors.

For one drafted position the output distribution of the rule is
    P(y) = q(y) * min(1, p(y)/q(y))  +  (1 - sum_x q(x) min(1, p(x)/q(x))) * norm(max(0, p - q))(y)
(accepted draft y, or rejection followed by a residual draw). It must equal p.
"""

import pytest
import torch

from specdec_lite.algorithm.verification import (accept_greedy, accept_speculative, acceptance_probability,
                                                 residual_distribution)


def output_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Enumerate the rule's output distribution for one position: [vocab]."""
    accepted = q * acceptance_probability(p, q)  # [vocab] P(draft y and accept it)
    rejected_mass = 1 - accepted.sum()
    return accepted + rejected_mass * residual_distribution(p, q)


def normalized(values) -> torch.Tensor:
    t = torch.tensor(values, dtype=torch.float64)
    return t / t.sum()


CASES = {
    "random": (normalized([3, 1, 4, 1, 5, 9, 2, 6]), normalized([2, 7, 1, 8, 2, 8, 1, 8])),
    "equal": (normalized([1, 2, 3, 4]), normalized([1, 2, 3, 4])),
    "disjoint supports": (normalized([1, 1, 0, 0]), normalized([0, 0, 1, 1])),
    "q zero where p positive": (normalized([1, 2, 3, 4]), normalized([0, 0, 5, 5])),
    "p zero where q positive": (normalized([0, 0, 5, 5]), normalized([1, 2, 3, 4])),
    "one-hot p (greedy target)": (normalized([0, 1, 0, 0]), normalized([4, 3, 2, 1])),
    "one-hot both, different": (normalized([0, 1, 0]), normalized([1, 0, 0])),
    "nearly equal": (normalized([1, 1, 1, 1 + 1e-9]), normalized([1, 1, 1, 1])),
}


@pytest.mark.parametrize("name", CASES)
def test_output_distribution_equals_p(name):
    p, q = CASES[name]
    assert torch.allclose(output_distribution(p, q), p, atol=1e-6), name


def test_random_vectors_many_times():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        logits_p, logits_q = torch.randn(2, 12, generator=generator, dtype=torch.float64) * 3
        p, q = logits_p.softmax(-1), logits_q.softmax(-1)
        q[torch.rand(12, generator=generator) < 0.3] = 0  # zeros in q
        q = q / q.sum() if q.sum() > 0 else p.clone()
        assert torch.allclose(output_distribution(p, q), p, atol=1e-6)


def test_residual_is_p_when_nothing_is_left():
    p = normalized([1, 2, 3])
    assert torch.equal(residual_distribution(p, p), p)


def test_accept_speculative_matches_enumeration_by_sampling():
    p = torch.stack([normalized([5, 3, 1, 1]), normalized([1, 1, 1, 1])]).float()  # [K+1=2, vocab]
    q = normalized([1, 1, 4, 4]).float()[None]  # [K=1, vocab]
    generator, counts = torch.Generator().manual_seed(0), torch.zeros(4)
    for _ in range(20_000):
        x = torch.multinomial(q[0], 1, generator=generator)  # draft x ~ q
        verdict = accept_speculative(x, q, p, generator)
        counts[x.item() if verdict.n_accepted else verdict.next_token] += 1
    assert (counts / counts.sum() - p[0]).abs().max() < 0.02  # 4.5 sigma at n=20k


def test_greedy_rule_stops_at_first_mismatch_and_emits_target_argmax():
    logits = torch.full((4, 5), -1.0)  # [K+1=4, vocab=5]
    logits[0, 2] = logits[1, 3] = logits[2, 0] = logits[3, 4] = 1.0  # argmax per position: 2, 3, 0, 4
    assert accept_greedy(torch.tensor([2, 3, 1]), logits).__dict__ == dict(n_accepted=2, next_token=0, resampled=False)
    assert accept_greedy(torch.tensor([2, 3, 0]), logits).next_token == 4  # all accepted: bonus
    assert accept_greedy(torch.tensor([1, 3, 0]), logits).n_accepted == 0  # a later match does not count
