"""The draft model proposes K tokens, using its own KV cache (notebook 01).

Each proposed token x_i comes with q_i, the exact distribution it was drawn from (after the
sampling transform): the verification rule needs q_i(x_i) and the residual needs all of q_i.

What it does not do: branch (see `token_tree.py`), or look at the target in any way: the
decision to stop early depends on the draft's own confidence only, which keeps the output
distribution unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

from .kv_cache import forward_new_tokens
from .sampling import GREEDY, Sampling


@dataclass(frozen=True)
class DraftStop:
    """When drafting stops: after `k` tokens, or early after the first token whose confidence is below
    `min_confidence` (0: never early). ValueError naming a bad one."""

    k: int
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass
class DraftProposal:
    tokens: torch.Tensor  # [K] the drafted ids x_1..x_K
    q: torch.Tensor  # [K, vocab] q_i, the distribution x_i was drawn from
    forwards: int  # draft forward passes spent


def confidence_probs(logits: torch.Tensor, q: torch.Tensor, greedy: bool) -> torch.Tensor:
    """What the draft's confidence reads, [..., vocab]: q, or softmax(logits) when greedy (a one-hot q says nothing)."""
    return logits.float().softmax(-1) if greedy else q


def confidence(logits: torch.Tensor, q: torch.Tensor, temperature: float) -> float:
    """The draft's top probability (of `confidence_probs`)."""
    return float(confidence_probs(logits, q, temperature == 0).max())


@torch.inference_mode()
def propose(
    draft: PreTrainedModel,
    cache: DynamicCache,
    pending_ids: torch.Tensor,
    k: int | DraftStop,
    *,
    sampling: Sampling = GREEDY,
) -> DraftProposal:
    """Draft up to `k` tokens after `pending_ids` [1, m] (the tokens not yet in the draft's cache);
    `k` may also be a `DraftStop` (K and a confidence stop). Draws take `sampling`'s generator.

    Every proposed token but the last is fed to the draft, so afterwards the cache holds
    pending_ids and x_1..x_{n-1} for n proposed tokens; the last, x_n, is never fed (nothing
    needs its logits). The confidence stop: once a proposed token's confidence is below
    `DraftStop.min_confidence`, drafting stops after it; that token is still proposed, since its draft
    forward is already paid (Hugging Face's assistant keeps it too), so the stop costs no
    forward. Confidence is the draft's top probability at that position: of q, or of
    softmax(logits) when greedy, where it is Hugging Face's `assistant_confidence_threshold`
    test (which looks at the drawn token's probability, the top one when greedy). At least one
    token is always proposed.
    """
    stop = DraftStop(k) if isinstance(k, int) else k
    logits = forward_new_tokens(draft, cache, pending_ids, logits_to_keep=1)[-1]  # [vocab]
    forwards = 1
    tokens, qs = [], []
    for i in range(stop.k):
        q_i = sampling.probs(logits)  # [vocab]
        tokens.append(q_i.argmax(-1) if sampling.greedy else sampling.draw(q_i))  # [] greedy needs no draw
        qs.append(q_i)
        if i == stop.k - 1 or confidence(logits, q_i, sampling.temperature) < stop.min_confidence:
            break
        logits = forward_new_tokens(draft, cache, tokens[-1].view(1, 1))[-1]
        forwards += 1
    return DraftProposal(torch.stack(tokens), torch.stack(qs), forwards)
