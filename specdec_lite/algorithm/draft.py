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
from .sampling import GREEDY, Sampling, sample


@dataclass
class DraftProposal:
    tokens: torch.Tensor  # [K] the drafted ids x_1..x_K
    q: torch.Tensor  # [K, vocab] q_i, the distribution x_i was drawn from
    forwards: int  # draft forward passes spent


def confidence(logits: torch.Tensor, q: torch.Tensor, temperature: float) -> float:
    """The draft's top probability: of q, or of softmax(logits) when greedy (a one-hot q says nothing)."""
    probs = logits.float().softmax(-1) if temperature == 0 else q
    return float(probs.max())


@torch.inference_mode()
def propose(
    draft: PreTrainedModel,
    cache: DynamicCache,
    pending_ids: torch.Tensor,
    k: int,
    *,
    sampling: Sampling = GREEDY,
    generator: torch.Generator | None = None,
    min_confidence: float = 0.0,
) -> DraftProposal:
    """Draft up to `k` tokens after `pending_ids` [1, m] (the tokens not yet in the draft's cache).

    Afterwards the cache also holds pending_ids and x_1..x_{K-1}; x_K is never fed (nothing
    needs its logits). Drafting stops early once the draft's top probability for the next
    token drops below `min_confidence` (at least one token is always proposed); when greedy,
    that is the top probability of softmax(logits), as in Hugging Face's assistant threshold.
    """
    logits = forward_new_tokens(draft, cache, pending_ids, logits_to_keep=1)[-1]  # [vocab]
    forwards = 1
    tokens, qs = [], []
    for i in range(k):
        q_i = sampling.probs(logits)  # [vocab]
        if i > 0 and min_confidence > 0 and confidence(logits, q_i, sampling.temperature) < min_confidence:
            break
        x_i = q_i.argmax(-1) if sampling.greedy else sample(q_i, generator)  # [] greedy needs no draw
        tokens.append(x_i)
        qs.append(q_i)
        if i < k - 1:
            logits = forward_new_tokens(draft, cache, x_i.view(1, 1))[-1]
            forwards += 1
    return DraftProposal(torch.stack(tokens), torch.stack(qs), forwards)
