"""What a whole run costs: the prompt, the clipped last steps, and acceptance as it really fell (notebook 06).

`theory.predicted_speedup` is the paper's per-step formula: an endless run in which each drafted
token is accepted with the same chance α, independently of the others. A benchmark times a finite run:
  - both methods first feed the prompt to the target (`prefill_target`), speculation also to the draft
    (`prefill_draft`), in units of a 1-token target forward (`theory.measure_prefill`);
  - the loop never drafts past max_new_tokens: with n tokens left a step drafts min(K, n − 1), and a last
    token left alone is a plain target step (`chain.speculative_generate`);
  - acceptance is not independent from token to token: a hard stretch of text rejects several drafts in
    a row, an easy one accepts whole steps, and that gives fewer tokens per step than one α predicts.
`expected_run_cost` keeps the one α but counts the end of the run exactly (a recursion over the tokens
left). `replayed_draft_lengths` drops the independence too: a greedy step accepts drafted tokens for as
long as the draft's argmax equals the target's, so replaying where they agree on the plain continuation
gives the exact steps greedy chain decoding takes, and only the costs c and v_K remain to predict
(`steps_cost`). A run's speed-up is then (prefill_target + n) / (prefill_target + prefill_draft + the
steps' cost) for n new tokens: the bench (`bench_report.predict_category`) sums both over its prompts.

Indexing: `verify_costs[j - 1]` is v_j, the cost of a (j+1)-token target forward (the paper counts K
from 1, Python lists from 0).

What it does not do: sampling (the replay is exact for greedy decoding only), trees, or the loop's own
Python time between forwards.
"""

from __future__ import annotations

from typing import Sequence


def check_costs(k: int, c: float, verify_costs: Sequence[float]) -> None:
    """ValueError unless k >= 1, c >= 0 and verify_costs holds v_1..v_k, all > 0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if c < 0:
        raise ValueError(f"c must be >= 0, got {c}")
    if len(verify_costs) < k or min(verify_costs[:k]) <= 0:
        raise ValueError(f"verify_costs must hold v_1..v_{k}, all > 0, got {list(verify_costs)}")


def step_cost(k_step: int, c: float, verify_costs: Sequence[float]) -> float:
    """One step in 1-token target forwards: k_step drafts and a (k_step+1)-token verify; a plain step (0) costs 1."""
    return 1.0 if k_step == 0 else k_step * c + verify_costs[k_step - 1]


def expected_run_cost(alpha_: float, k: int, c: float, verify_costs: Sequence[float], new_tokens: int) -> float:
    """Expected cost of emitting `new_tokens` tokens after the prefills, each draft accepted with chance α.

    cost(n) = step_cost(K_n) + Σ_j P(j accepted) cost(n − j − 1), K_n = min(K, n − 1) for n tokens left;
    P(j) = α^j (1 − α) for j < K_n and α^K_n for j = K_n (then the bonus token comes too).
    """
    if not 0 <= alpha_ <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha_}")
    check_costs(k, c, verify_costs)
    cost = [0.0]  # cost[n]: the expected cost with n tokens left
    for n in range(1, new_tokens + 1):
        k_n = min(k, n - 1)
        p_all = alpha_ ** k_n
        rest = sum(alpha_ ** j * (1 - alpha_) * cost[n - j - 1] for j in range(k_n)) + p_all * cost[n - k_n - 1]
        cost.append(step_cost(k_n, c, verify_costs) + rest)
    return cost[new_tokens]


def replayed_draft_lengths(agreement: Sequence[bool], k: int, max_new_tokens: int) -> list[int]:
    """The draft length of every step greedy chain decoding with fixed K takes (0: a plain step).

    agreement[i]: whether the draft's argmax after the prompt and the first i tokens of the target's greedy
    continuation equals its token i (`theory.continuation_acceptance` at temperature 0). The continuation
    is len(agreement) tokens long: max_new_tokens, or fewer when it ended with EOS.
    """
    if k < 1 or max_new_tokens < len(agreement):
        raise ValueError(f"need k >= 1 and max_new_tokens >= len(agreement), got {k}, {max_new_tokens}")
    lengths, position = [], 0
    while position < len(agreement):
        k_step = min(k, max_new_tokens - position - 1)
        window = list(agreement[position:position + k_step]) + [False]
        lengths.append(k_step)
        position += window.index(False) + 1  # the accepted drafts, then the target's own token
    return lengths


def steps_cost(draft_lengths: Sequence[int], c: float, verify_costs: Sequence[float]) -> float:
    """The cost of a run's steps, each given by its draft length (0: a plain step), in 1-token target forwards;
    e.g. the steps `replayed_draft_lengths` finds (prefills excluded)."""
    if draft_lengths:
        check_costs(max(max(draft_lengths), 1), c, verify_costs)
    return sum(step_cost(k_step, c, verify_costs) for k_step in draft_lengths)
