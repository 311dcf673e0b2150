"""How many tokens to draft next: fixed K, or adapted to how the last steps went (notebook 05).

`HeuristicK` is Hugging Face's "heuristic" schedule for assisted generation: after a step in
which every drafted token was accepted, draft 2 more next time; otherwise draft 1 fewer.
Because the schedule depends only on which tokens were accepted so far, which the output
already reveals, greedy exactness and losslessness of sampling are unaffected.

What it does not do: learn a model of acceptance (e.g. from the draft's entropy); the draft's
own confidence stop lives in `draft.propose(min_confidence=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FixedK:
    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def next_k(self) -> int:
        return self.k

    def update(self, n_accepted: int, n_proposed: int) -> None:
        pass


@dataclass
class HeuristicK:
    """Start at `k`; +2 after a fully accepted step, -1 after a rejection, kept in [k_min, k_max]."""

    k: int = 4
    k_min: int = 1
    k_max: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.k_min <= self.k <= self.k_max:
            raise ValueError(f"need 1 <= k_min <= k <= k_max, got k_min={self.k_min}, k={self.k}, k_max={self.k_max}")

    def next_k(self) -> int:
        return self.k

    def update(self, n_accepted: int, n_proposed: int) -> None:
        step = 2 if n_accepted == n_proposed else -1
        self.k = min(self.k_max, max(self.k_min, self.k + step))


def draft_length_policy(k: int | FixedK | HeuristicK):
    """An int means FixedK(k); a policy object is used as it is."""
    return FixedK(k) if isinstance(k, int) else k
