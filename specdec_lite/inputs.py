"""Checking and normalizing what a user passes to a generate function.

What it does not do: batching. One prompt at a time; a batch of more than one is refused.
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers import PreTrainedModel

from .pair import ModelPair
from .sampling import check_sampling_args

Prompt = str | Sequence[int] | torch.Tensor


def prompt_ids(pair: ModelPair, prompt: Prompt) -> torch.Tensor:
    """The prompt as ids [1, n] on the pair's device; ValueError for an empty prompt or a batch."""
    if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], str):
        if len(prompt) > 1:
            raise ValueError(f"prompt must be one prompt, got a batch of {len(prompt)}")
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise ValueError("prompt must not be empty")
        ids = pair.encode(prompt)
    else:
        ids = torch.as_tensor(prompt, dtype=torch.long, device=pair.device)
        if ids.dim() == 2 and ids.shape[0] != 1:
            raise ValueError(f"prompt must be one sequence, got a batch of {ids.shape[0]}")
        ids = ids.reshape(1, -1)
    if ids.shape[1] == 0:
        raise ValueError("prompt must not be empty (it encodes to zero tokens)")
    return ids


def context_window(model: PreTrainedModel) -> int:
    config = model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions")


def check_generation_args(models: Sequence[PreTrainedModel], n_prompt: int, max_new_tokens: int,
                          temperature: float, top_k: int, top_p: float) -> None:
    """ValueError naming the argument: max_new_tokens < 1, sampling knobs, or a too-long request."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    check_sampling_args(temperature, top_k, top_p)
    window = min(context_window(m) for m in models)
    if n_prompt + max_new_tokens > window:
        raise ValueError(
            f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds the context window "
            f"of {window} tokens; shorten the prompt or lower max_new_tokens"
        )


def eos_token_ids(model: PreTrainedModel, tokenizer=None) -> set[int]:
    """The ids that end generation: the model's generation config, else the tokenizer's eos."""
    eos = model.generation_config.eos_token_id
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {eos} if isinstance(eos, int) else set(eos)


def make_generator(device: torch.device, seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator every random draw of one run uses: `generator` if given, else one seeded with `seed`."""
    if generator is not None:
        return generator
    return torch.Generator(device=device).manual_seed(0 if seed is None else seed)


def truncate_at_eos(tokens: list[int], eos: set[int]) -> tuple[list[int], bool]:
    """Cut `tokens` after the first EOS; also say whether one was found."""
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[: i + 1], True
    return tokens, False
