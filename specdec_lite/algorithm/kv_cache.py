"""Key/value caches and how to roll them back (notebooks 01 and 03).

A speculative step writes the drafted tokens into both caches; the rejected ones must go.
Hugging Face transformers 5.x keeps the cache in a `DynamicCache`, whose `crop()` takes a
NEGATIVE count of tokens to drop (a positive number is refused). `keep_first` wraps that.

What it does not do: sliding-window or quantized caches, or batches of several sequences.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PreTrainedModel


def new_cache(model: PreTrainedModel) -> DynamicCache:
    return DynamicCache(config=model.config)


def cache_length(cache: DynamicCache) -> int:
    """How many token positions the cache holds."""
    return cache.get_seq_length()


def keep_first(cache: DynamicCache, n_tokens: int) -> None:
    """Roll the cache back so that it holds exactly its first `n_tokens` positions (in place)."""
    excess = cache_length(cache) - n_tokens
    if excess < 0:
        raise ValueError(f"n_tokens must be <= the cache length {cache_length(cache)}, got {n_tokens}")
    cache.crop(-excess)  # transformers 5.x: negative = tokens to remove


@torch.inference_mode()
def forward_new_tokens(model: PreTrainedModel, cache: DynamicCache, new_ids: torch.Tensor,
                       logits_to_keep: int = 0) -> torch.Tensor:
    """Run `model` on `new_ids` [1, n] after what `cache` holds; the cache grows by n.

    Returns the logits at the n new positions: [n, vocab]; with `logits_to_keep` = m > 0 only
    at the last m positions: [m, vocab] (the vocabulary projection of the others is skipped).
    """
    out = model(input_ids=new_ids, cache=cache, use_cache=True, logits_to_keep=logits_to_keep)
    return out.logits[0]
