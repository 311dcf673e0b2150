"""Plain decoding with the target alone: the baseline every speed-up is measured against (notebook 01).

One target forward per token over a KV cache, through the same sampling transform as the
speculative loop. With temperature 0 its tokens equal `model.generate(do_sample=False)`.

What it does not do: beam search, or batches.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from transformers import PreTrainedModel

from ..models.pair import ModelPair
from .inputs import Prompt, make_request
from .kv_cache import forward_new_tokens, new_cache
from .results import GenerationResult, GenerationStats
from .sampling import Sampling


@torch.inference_mode()
def autoregressive_generate(
    pair: ModelPair, prompt: Prompt, max_new_tokens: int = 64,
    temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
    seed: int | None = 0, stop_at_eos: bool = True, generator: torch.Generator | None = None,
    model: PreTrainedModel | None = None, on_token: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Generate with `model` (default: the pair's target) one token per forward pass.

    `prompt`: text, ids, or chat messages (see `inputs.prompt_ids`).
    `seed` (sampling only): an int makes the draws reproducible; None draws fresh randomness on every
    call. A `generator`, if given, is used instead of `seed`; it must be on the pair's device (ValueError).
    `on_token(token)`, if given, is called with each new token as it is emitted (streaming, progress bars).
    """
    model = pair.target if model is None else model
    request = make_request(pair, prompt, max_new_tokens, Sampling(temperature, top_k, top_p), models=[model],
                           seed=seed, generator=generator, stop_at_eos=stop_at_eos)
    stats, cache, new = GenerationStats(), new_cache(model), []
    start = time.perf_counter()
    pending = request.ids  # tokens not yet in the cache
    while len(new) < max_new_tokens:
        logits = forward_new_tokens(model, cache, pending, logits_to_keep=1)[-1]  # [vocab], next-token logits
        stats.target_forwards += 1
        token = request.sampling.next_token(logits)  # []
        new.append(int(token))
        if on_token is not None:
            on_token(new[-1])
        if new[-1] in request.eos:
            break
        pending = token.view(1, 1)
    stats.wall_time_s = time.perf_counter() - start
    stats.new_tokens = len(new)
    return GenerationResult(pair.decode(new), new, request.ids[0].tolist(), stats)
