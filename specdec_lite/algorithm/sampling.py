"""From logits to the distribution a token is drawn from (notebook 01).

One transform serves the draft (q), the target (p) and the plain baseline, so that the
speculative rule compares like with like. `Sampling` holds its settings (temperature, top-k,
top-p), checked once when it is made, and the random generator its draws take (one per run, so
that a whole run shares a single stream; None: torch's global one); the generate functions build
it from their keyword arguments. Temperature 0 means greedy: the distribution is one-hot on the argmax.

What it does not do: repetition penalties, min-p, or any other logits processor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Sampling:
    """temperature (0 = greedy), top_k (0 = off) and top_p (1 = off); ValueError naming a bad one.

    `generator` is the stream every draw of a run takes (None: torch's global one); two settings
    objects that differ only in it compare equal.
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    generator: torch.Generator | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 means no top-k filter), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities after temperature, top-k and top-p (nucleus) filtering.

        logits: [..., vocab] -> probs: [..., vocab] in float32, each row summing to 1.
        Greedy gives a one-hot row on the argmax.
        """
        logits = logits.float()
        if self.greedy:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        logits = logits / self.temperature
        if 0 < self.top_k < logits.shape[-1]:
            kth_largest = logits.topk(self.top_k, dim=-1).values[..., -1:]  # [..., 1]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))
        probs = logits.softmax(-1)
        if self.top_p < 1:
            sorted_probs, order = probs.sort(-1, descending=True)
            mass_before = sorted_probs.cumsum(-1) - sorted_probs  # mass of strictly more likely tokens
            sorted_probs = sorted_probs.masked_fill(mass_before >= self.top_p, 0.0)  # the top token always stays
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
            probs = probs / probs.sum(-1, keepdim=True)
        return probs

    def next_token(self, logits: torch.Tensor) -> torch.Tensor:
        """The next token per row of `logits` [..., vocab] -> [...]: the argmax when greedy, else a draw."""
        if self.greedy:
            return logits.argmax(-1)
        return self.draw(self.probs(logits))

    def draw(self, probs: torch.Tensor) -> torch.Tensor:
        """One token id per row of `probs` [..., vocab] -> [...], drawn with this run's generator."""
        return sample(probs, self.generator)


GREEDY = Sampling()


def logits_to_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """`Sampling(temperature, top_k, top_p).probs(logits)`: [..., vocab] -> [..., vocab]."""
    return Sampling(temperature, top_k, top_p).probs(logits)


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row of `probs` [..., vocab] -> [...]; uses `generator` for the draw."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
