"""Helpers for the statistical tests: chi-square and total-variation checks of samples against exact probabilities."""

from __future__ import annotations

import math
from collections import Counter

import torch

from specdec_lite.algorithm.sampling import logits_to_probs
from specdec_lite.models.pair import ModelPair
from specdec_lite.models.tiny_models import tiny_tokenizer
from specdec_lite.models.toy_lm import TrigramLM


def empirical(samples: list, outcomes: list) -> torch.Tensor:
    """Frequencies of `outcomes` among `samples` (an outcome never seen gets 0)."""
    counts = Counter(samples)
    return torch.tensor([counts[o] for o in outcomes], dtype=torch.float64) / len(samples)


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> float:
    """Pearson chi-square goodness of fit; cells with expected count < min_expected are pooled into one."""
    n = counts.sum()
    expected = probs.double() * n
    small = expected < min_expected
    obs = torch.cat([counts[~small], counts[small].sum().view(1)])
    exp = torch.cat([expected[~small], expected[small].sum().view(1)])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    stat = ((obs - exp) ** 2 / exp).sum()
    dof = obs.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))  # chi2 survival


def tv_bound(probs: torch.Tensor, n: int, failure_probability: float = 1e-4) -> float:
    """A bound the total variation of n i.i.d. samples stays under with prob >= 1 - failure_probability.

    E[TV] <= 1/2 sum_i sqrt(p_i (1 - p_i) / n) (Jensen), and TV changes by at most 1/n per sample, so by
    McDiarmid P(TV > E[TV] + eps) <= exp(-2 n eps^2); eps = sqrt(ln(1/failure_probability) / (2n)).
    """
    p = probs.double()
    mean_bound = 0.5 * torch.sqrt(p * (1 - p) / n).sum()
    return float(mean_bound) + math.sqrt(math.log(1 / failure_probability) / (2 * n))


def matches_distribution(samples: list, outcomes: list, probs: torch.Tensor) -> tuple[bool, float, float, float]:
    """(passes, chi-square p-value, TV, TV bound): passes when p > 1e-3 and TV < bound."""
    n = len(samples)
    freq = empirical(samples, outcomes)
    p_value = chi_square_p_value(freq * n, probs)
    tv = 0.5 * float((freq - probs.double()).abs().sum()) + 0.5 * (1 - float(freq.sum()))  # mass outside outcomes
    bound = tv_bound(probs, n)
    return (p_value > 1e-3 and tv < bound), p_value, tv, bound


def trigram_pair(vocab: int, noise: float = 1.0) -> ModelPair:
    """A TrigramLM target and a draft whose table is the target's plus Gaussian noise."""
    target, draft = TrigramLM(vocab, seed=0), TrigramLM(vocab, seed=0)
    draft.table += noise * torch.randn(draft.table.shape, generator=torch.Generator().manual_seed(1))
    return ModelPair(draft, target, tiny_tokenizer(vocab), torch.float32, torch.device("cpu"))


@torch.inference_mode()
def exact_first_two(pair: ModelPair, context: list[int], vocab: int, temperature: float, top_k: int,
                    top_p: float) -> torch.Tensor:
    """The target's p(x1, x2 | context) for all vocab^2 pairs, flattened row-major: [vocab * vocab]."""
    def next_probs(ids):
        logits = pair.target(input_ids=torch.tensor([ids])).logits[0, -1]
        return logits_to_probs(logits, temperature, top_k, top_p).double()
    p1 = next_probs(context)  # [V]
    p2 = torch.stack([next_probs(context + [x1]) for x1 in range(vocab)])  # [V, V]
    return (p1[:, None] * p2).reshape(-1)
