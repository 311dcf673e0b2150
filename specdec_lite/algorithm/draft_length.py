"""How many tokens to draft next: fixed K, or adapted to how the last steps went (notebook 05).

`HeuristicK` is Hugging Face's "heuristic" schedule for assisted generation: after a step in
which every drafted token was accepted, draft 2 more next time; otherwise draft 1 fewer.
`CostAwareK` picks the K with the highest predicted speed-up (theory.best_k) from the measured
costs of the loaded pair (c and v_K, `theory.calibrate`) and a running estimate of α.
Because every schedule depends only on which tokens were accepted so far, which the output
already reveals, greedy exactness and losslessness of sampling are unaffected.

What it does not do: predict acceptance from the draft's entropy token by token; the draft's
own confidence stop lives in `draft.DraftStop(k, min_confidence)`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

from .theory import best_k, calibrate


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


def monotone_costs(verify_costs: Sequence[float]) -> list[float]:
    """v_1..v_K made physically possible: each at least 1 and at least every shorter forward's cost."""
    return list(itertools.accumulate(verify_costs, max, initial=1.0))[1:]


@dataclass
class CostAwareK:
    """The K maximising (1 − α^(K+1)) / ((1 − α)(K c + v_K)), with α estimated from the steps so far.

    `verify_costs[K-1]` = v_K, the cost of a (K+1)-token target forward in one-token forwards; K
    ranges over 1..len(verify_costs). Measured costs are noisy, and a dip is noise: a longer forward
    does at least the work of a shorter one, so the policy uses `monotone_costs` of them (a measured
    v_1 of 0.87 made K = 1 look best on code, where K = 3 was faster). α starts at `prior_alpha`
    (worth `prior_weight` tested tokens) and follows the accepted / tested drafts of recent steps
    (older steps fade by `decay`).
    """

    c: float
    verify_costs: Sequence[float]
    prior_alpha: float = 0.7
    prior_weight: float = 4.0
    decay: float = 0.9
    accepted: float = field(default=0.0, init=False)  # decayed count of accepted drafts
    tested: float = field(default=0.0, init=False)  # decayed count of drafts the target tested

    def __post_init__(self) -> None:
        if self.c < 0 or not self.verify_costs or min(self.verify_costs) <= 0:
            raise ValueError(f"need c >= 0 and positive verify_costs, got c={self.c}, verify_costs={self.verify_costs}")
        if not 0 <= self.prior_alpha <= 1:
            raise ValueError(f"prior_alpha must be in [0, 1], got {self.prior_alpha}")
        self.verify_costs = monotone_costs(self.verify_costs)

    @property
    def alpha(self) -> float:
        return (self.accepted + self.prior_alpha * self.prior_weight) / (self.tested + self.prior_weight)

    def next_k(self) -> int:
        return best_k(min(self.alpha, 0.999), self.c, len(self.verify_costs), self.verify_costs)

    def update(self, n_accepted: int, n_proposed: int) -> None:
        tested = n_accepted + (n_accepted < n_proposed)  # drafts after the first rejection are never tested
        self.accepted = self.decay * self.accepted + n_accepted
        self.tested = self.decay * self.tested + tested


DraftLength = int | FixedK | HeuristicK | CostAwareK


def draft_length_policy(k: DraftLength | str, pair=None):
    """An int means FixedK(k); "auto" a CostAwareK calibrated on `pair`; a policy object is used as it is."""
    if k == "auto":
        costs = calibrate(pair)
        return CostAwareK(costs.c, costs.verify_costs)
    if isinstance(k, str):
        raise ValueError(f"k must be an int, 'auto' or a draft-length policy, got {k!r}")
    return FixedK(k) if isinstance(k, int) else k
