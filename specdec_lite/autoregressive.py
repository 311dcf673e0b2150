"""Plain decoding with the target alone: the baseline every speed-up is measured against (notebook 01).

One target forward per token over a KV cache, through the same sampling transform as the
speculative loop. With temperature 0 its tokens equal `model.generate(do_sample=False)`.

What it does not do: beam search, or batches.
"""

from __future__ import annotations

import time

import torch
from transformers import PreTrainedModel

from .inputs import Prompt, check_generation_args, eos_token_ids, make_generator, prompt_ids
from .kv_cache import forward_new_tokens, new_cache
from .pair import ModelPair
from .results import GenerationResult, GenerationStats
from .sampling import next_token


@torch.inference_mode()
def autoregressive_generate(
    pair: ModelPair,
    prompt: Prompt,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = 0,
    stop_at_eos: bool = True,
    generator: torch.Generator | None = None,
    model: PreTrainedModel | None = None,
) -> GenerationResult:
    """Generate with `model` (default: the pair's target) one token per forward pass."""
    model = pair.target if model is None else model
    ids = prompt_ids(pair, prompt)  # [1, n]
    check_generation_args([model], ids.shape[1], max_new_tokens, temperature, top_k, top_p)
    generator = make_generator(pair.device, seed, generator)
    eos = eos_token_ids(model, pair.tokenizer) if stop_at_eos else set()
    stats, cache, new = GenerationStats(), new_cache(model), []
    start = time.perf_counter()
    pending = ids  # tokens not yet in the cache
    while len(new) < max_new_tokens:
        logits = forward_new_tokens(model, cache, pending, logits_to_keep=1)[-1]  # [vocab], next-token logits
        stats.target_forwards += 1
        token = next_token(logits, temperature, top_k, top_p, generator)  # []
        new.append(int(token))
        if new[-1] in eos:
            break
        pending = token.view(1, 1)
    stats.wall_time_s = time.perf_counter() - start
    stats.new_tokens = len(new)
    return GenerationResult(pair.decode(new), new, ids[0].tolist(), stats)
