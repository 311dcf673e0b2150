"""From logits to the distribution a token is drawn from (notebook 01).

One transform serves the draft (q), the target (p) and the plain baseline, so that the
speculative rule compares like with like. Temperature 0 means greedy: the distribution is
one-hot on the argmax.

What it does not do: repetition penalties, min-p, or any other logits processor.
"""

from __future__ import annotations

import torch


def check_sampling_args(temperature: float, top_k: int, top_p: float) -> None:
    """Raise a ValueError naming the first argument outside what is allowed."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 means no top-k filter), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def logits_to_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Probabilities over the vocabulary after temperature, top-k and top-p (nucleus) filtering.

    logits: [..., vocab] -> probs: [..., vocab] in float32, each row summing to 1.
    temperature == 0 gives a one-hot row on the argmax (greedy decoding).
    """
    check_sampling_args(temperature, top_k, top_p)
    logits = logits.float()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]  # [..., 1]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probs = logits.softmax(-1)
    if top_p < 1:
        sorted_probs, order = probs.sort(-1, descending=True)
        mass_before = sorted_probs.cumsum(-1) - sorted_probs  # mass of strictly more likely tokens
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)  # the top token always stays
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row of `probs` [..., vocab] -> [...]; uses `generator` for the draw."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def next_token(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
               generator: torch.Generator | None) -> torch.Tensor:
    """The next token from `logits` [vocab] -> []: the argmax when temperature is 0, else a draw."""
    if temperature == 0:
        return logits.argmax(-1)
    return sample(logits_to_probs(logits, temperature, top_k, top_p), generator)
