"""The target checks all K drafted tokens in ONE forward pass, then a rule accepts a prefix (notebooks 02-04).

Notation (Leviathan et al. 2023; Chen et al. 2023): q = draft distribution, p = target
distribution, x_1..x_K the drafted tokens. The paper counts positions from 1; here the
drafted tokens are `tokens[0..K-1]`, `q[i]` is q_{i+1} and `p[i]` is p_{i+1}, the target's
distribution for the position of `tokens[i]`; `p[K]` is the bonus position after x_K.

Greedy rule: accept while x_i == argmax p_i; emit argmax p at the first mismatch (or the bonus
argmax p_{K+1}). The output equals the target's greedy output token for token.

Sampling rule: accept x_i with probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection
emit a token drawn from norm(max(0, p_i - q_i)); if all K are accepted, draw the bonus token
from p_{K+1}. Every emitted token then follows p exactly.

What it does not do: trees of drafts (see `token_tree.py`) or batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

from .kv_cache import forward_new_tokens
from .sampling import Sampling, sample


@dataclass
class Verdict:
    n_accepted: int  # how many drafted tokens were accepted (0..K)
    next_token: int  # the target's correction (n < K) or bonus token (n == K)
    resampled: bool  # True when next_token was drawn from the residual max(0, p - q)


@torch.inference_mode()
def target_logits(target: PreTrainedModel, cache: DynamicCache, last_token: torch.Tensor,
                  drafted: torch.Tensor) -> torch.Tensor:
    """ONE target forward over [last accepted token, x_1..x_K]: logits for K+1 positions.

    last_token: [1], drafted: [K] -> [K+1, vocab]; row i predicts the token after x_i (row 0: after last_token).
    """
    return forward_new_tokens(target, cache, torch.cat([last_token, drafted]).unsqueeze(0))


def accept_greedy(drafted: torch.Tensor, target_logits: torch.Tensor) -> Verdict:
    """drafted: [K], target_logits: [K+1, vocab]. Accept while x_i is the target's argmax."""
    best = target_logits.argmax(-1)  # [K+1]
    matches = (drafted == best[:-1]).int()  # [K]
    n = int(matches.cumprod(0).sum())  # one host sync per step
    return Verdict(n, int(best[n]), resampled=False)


def acceptance_probability(p_x: torch.Tensor, q_x: torch.Tensor) -> torch.Tensor:
    """min(1, p(x)/q(x)), with q(x) = 0 read as 'always accept' (such an x is never drafted)."""
    return torch.where(q_x > 0, (p_x / q_x.clamp_min(1e-30)).clamp(max=1.0), (p_x > 0).float())


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)) over [..., vocab]; where it is all zero (p == q), p itself."""
    residual = (p - q).clamp_min(0)
    mass = residual.sum(-1, keepdim=True)
    return torch.where(mass > 0, residual / mass.clamp_min(1e-30), p)


def accept_speculative(drafted: torch.Tensor, q: torch.Tensor, p: torch.Tensor,
                       generator: torch.Generator | None) -> Verdict:
    """Leviathan et al. 2023, Algorithm 1. drafted: [K], q: [K, vocab], p: [K+1, vocab]."""
    k = drafted.shape[0]
    p_x = p[:k].gather(-1, drafted[:, None]).squeeze(-1)  # [K] p_i(x_i)
    q_x = q.gather(-1, drafted[:, None]).squeeze(-1)  # [K] q_i(x_i)
    r = torch.rand(k, generator=generator, device=p.device)  # [K] one uniform per drafted token
    accepted = (r < acceptance_probability(p_x, q_x)).int()
    n = int(accepted.cumprod(0).sum())  # the first rejection ends the step
    if n == k:
        return Verdict(n, int(sample(p[k], generator)), resampled=False)  # bonus token from p_{K+1}
    return Verdict(n, int(sample(residual_distribution(p[n], q[n]), generator)), resampled=True)


def verify(drafted: torch.Tensor, q: torch.Tensor, logits: torch.Tensor,
           sampling: Sampling) -> tuple[Verdict, torch.Tensor]:
    """Apply the greedy rule (temperature 0) or the sampling rule (drawing with `sampling.generator`);
    also return p [K+1, vocab]."""
    p = sampling.probs(logits)
    if sampling.greedy:
        return accept_greedy(drafted, logits), p
    return accept_speculative(drafted, q, p, sampling.generator), p
