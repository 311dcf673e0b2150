"""Checking and normalizing what a user passes to a generate function.

A prompt is text, token ids, or a chat: a list of {"role": ..., "content": ...} messages, which
goes through the tokenizer's chat template with the assistant's turn opened (as Hugging Face's
`apply_chat_template(..., add_generation_prompt=True)`).

What it does not do: batching. One prompt at a time; a batch of more than one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..models.pair import ModelPair
from .sampling import Sampling

Message = Mapping[str, str]  # {"role": "user", "content": "..."}
Prompt = str | Sequence[int] | torch.Tensor | Sequence[Message]


def chat_text(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
    """The messages through the tokenizer's chat template, ending with the assistant's turn opened.

    ValueError naming `prompt` when a message is not a {"role", "content"} mapping or the
    tokenizer has no chat template (pass the text itself then).
    """
    for message in messages:
        if not isinstance(message, Mapping) or not {"role", "content"} <= message.keys():
            raise ValueError(f'prompt messages must be {{"role": ..., "content": ...}} mappings, got {message!r}')
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("prompt is a list of chat messages, but the tokenizer has no chat template; pass text")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def is_chat(prompt: Prompt) -> bool:
    """Whether `prompt` is a list of chat messages (its first item a mapping)."""
    return isinstance(prompt, (list, tuple)) and bool(prompt) and isinstance(prompt[0], Mapping)


def prompt_ids(pair: ModelPair, prompt: Prompt) -> torch.Tensor:
    """The prompt as ids [1, n] on the pair's device; ValueError for an empty prompt or a batch."""
    if is_chat(prompt):  # the template carries its own special tokens
        text = chat_text(pair.tokenizer, prompt)
        return pair.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids.to(pair.device)
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


def check_window(models: Sequence[PreTrainedModel], n_prompt: int, max_new_tokens: int) -> None:
    """ValueError naming the argument: max_new_tokens < 1, or a request longer than the context window."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    window = min(context_window(m) for m in models)
    if n_prompt + max_new_tokens > window:
        raise ValueError(
            f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds the context window "
            f"of {window} tokens; shorten the prompt or lower max_new_tokens"
        )


@dataclass(frozen=True)
class Request:
    """One generate call's inputs, checked: the prompt ids, the length, how to sample and where to stop."""

    ids: torch.Tensor  # [1, n] the prompt
    max_new_tokens: int
    sampling: Sampling  # its generator takes every random draw of the run
    eos: set[int]  # ids that end generation (empty when stop_at_eos is False)


def make_request(pair: ModelPair, prompt: Prompt, max_new_tokens: int, sampling: Sampling, *,
                 models: Sequence[PreTrainedModel], seed: int | None, generator: torch.Generator | None,
                 stop_at_eos: bool) -> Request:
    """The prologue every generate function shares; ValueError naming the first bad argument.

    `models` are the models the run feeds (their smallest context window counts); the last one,
    the target, says which ids are EOS.
    """
    ids = prompt_ids(pair, prompt)  # [1, n]
    check_window(models, ids.shape[1], max_new_tokens)
    eos = eos_token_ids(models[-1], pair.tokenizer) if stop_at_eos else set()
    sampling = replace(sampling, generator=make_generator(pair.device, seed, generator))
    return Request(ids, max_new_tokens, sampling, eos)


def eos_token_ids(model: PreTrainedModel, tokenizer=None) -> set[int]:
    """The ids that end generation: the model's generation config, else the tokenizer's eos."""
    eos = model.generation_config.eos_token_id
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {eos} if isinstance(eos, int) else set(eos)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether `a` and `b` are one device; a missing index ("cuda") matches any index of its type."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def make_generator(device: torch.device, seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator every random draw of one run uses, on `device`.

    `generator` if given (ValueError if it lives on another device: torch draws only from a
    generator on the tensor's device); else a new one seeded with `seed`, or, for `seed=None`,
    with fresh randomness (`torch.Generator.seed()`), so that two runs differ. It does not move
    or copy a passed generator.
    """
    if generator is not None:
        if not same_device(torch.device(generator.device), torch.device(device)):
            raise ValueError(f"generator is on {generator.device} but the pair runs on {device}; "
                             f"pass torch.Generator(device={str(device)!r}) or a seed")
        return generator
    fresh = torch.Generator(device=device)
    if seed is None:
        fresh.seed()
    else:
        fresh.manual_seed(seed)
    return fresh


def truncate_at_eos(tokens: list[int], eos: set[int]) -> tuple[list[int], bool]:
    """Cut `tokens` after the first EOS; also say whether one was found."""
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[: i + 1], True
    return tokens, False
