"""What a generation returns: text, ids, counts and (for speculative runs) a trace of every step.

A trace is a list of typed steps, told apart with `isinstance`: `StepTrace` (a drafted chain
step), `TreeStepTrace` (a tree step), `PlainStep` (one token from the target alone, when only one
token is left to emit) and `EosCut` (the step before it was cut after an EOS; the run ended).

What it does not do: any computation beyond ratios and tallies of what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepTrace:
    """One speculative step: what the draft proposed and what the target made of it."""

    proposed: list[int]  # x_1..x_K
    p: list[float]  # p_i(x_i), target probability of each proposed token
    q: list[float]  # q_i(x_i), draft probability of each proposed token
    n_accepted: int
    next_token: int  # correction (n_accepted < K) or bonus (n_accepted == K)
    resampled: bool  # next_token drawn from norm(max(0, p - q))

    @property
    def emitted(self) -> list[int]:
        return self.proposed[: self.n_accepted] + [self.next_token]

    @property
    def is_bonus(self) -> bool:
        return self.n_accepted == len(self.proposed)


@dataclass
class TreeStepTrace:
    """One tree step: the tree the draft proposed and the path the target accepted."""

    tokens: list[int]  # token of each node; node 0 is the root (the last token before the step)
    parents: list[int]  # parent of each node (-1 for the root)
    depths: list[int]
    accepted_nodes: list[int]  # the accepted path's node indices, root excluded
    next_token: int  # correction, or bonus after a leaf
    resampled: bool  # next_token drawn from a residual
    draft_forwards: int = 0  # draft forward passes spent on the tree (0: not recorded)

    @property
    def nodes_verified(self) -> int:
        """Drafted nodes the target scored (the root is not a guess)."""
        return len(self.tokens) - 1

    @property
    def n_accepted(self) -> int:
        return len(self.accepted_nodes)

    @property
    def emitted(self) -> list[int]:
        return [self.tokens[node] for node in self.accepted_nodes] + [self.next_token]

    @property
    def sibling_ranks(self) -> list[int]:
        """For each accepted node, which guess it was among its siblings: 0 = the first drafted child."""
        return [[v for v, p in enumerate(self.parents) if p == self.parents[node]].index(node)
                for node in self.accepted_nodes]


@dataclass
class PlainStep:
    """One token from the target alone, nothing drafted (the last token of a run can be one)."""

    token: int

    @property
    def emitted(self) -> list[int]:
        return [self.token]


@dataclass
class EosCut:
    """The step before this one emitted an EOS as its `kept`-th token: the rest of it was dropped, the run ended."""

    kept: int


TraceStep = StepTrace | TreeStepTrace | PlainStep | EosCut


def accepted_by_sibling_rank(trace: list[TraceStep]) -> list[int]:
    """counts[r] = how many accepted tree tokens were the (r+1)-th guess among their siblings (tree steps only)."""
    ranks = [rank for step in trace if isinstance(step, TreeStepTrace) for rank in step.sibling_ranks]
    counts = [0] * (max(ranks) + 1 if ranks else 0)
    for rank in ranks:
        counts[rank] += 1
    return counts


def sibling_rank_table(trace: list[TraceStep]) -> list[list[int]]:
    """table[d][r] (tree steps only): at depth d + 1 of the walk, how often the target accepted the (r+1)-th
    drafted child of the node it stood on; the LAST column counts nodes whose children were all rejected.
    There is one rank column per child of the most branched node the walk tested.

    Every node the walk stood on that had children counts once (a leaf ends the walk with a bonus and
    is not counted), so a row's sum is how often the target tested children at that depth.
    """
    outcomes, n_ranks = [], 0  # (depth index, rank, or None when every child was rejected); most children seen
    for step in trace:
        if not isinstance(step, TreeStepTrace):
            continue
        node, path = 0, step.accepted_nodes
        for depth in range(len(path) + 1):
            children = [v for v, p in enumerate(step.parents) if p == node]
            if not children:
                break
            n_ranks = max(n_ranks, len(children))
            outcomes.append((depth, children.index(path[depth]) if depth < len(path) else None))
            if depth < len(path):
                node = path[depth]
    if not outcomes:
        return []
    table = [[0] * (n_ranks + 1) for _ in range(max(depth for depth, _ in outcomes) + 1)]
    for depth, rank in outcomes:
        table[depth][n_ranks if rank is None else rank] += 1
    return table


def ratio(part: float, whole: float) -> float:
    """part / whole, or 0.0 while nothing is counted (whole == 0)."""
    return part / whole if whole else 0.0


@dataclass
class GenerationStats:
    new_tokens: int = 0
    target_forwards: int = 0  # every call of the target, prefill included
    draft_forwards: int = 0
    proposed: int = 0  # drafted tokens offered to the target
    accepted: int = 0  # drafted tokens the target kept
    wall_time_s: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        return ratio(self.accepted, self.proposed)

    @property
    def tokens_per_target_forward(self) -> float:
        return ratio(self.new_tokens, self.target_forwards)

    @property
    def tokens_per_second(self) -> float:
        return ratio(self.new_tokens, self.wall_time_s)


@dataclass
class GenerationResult:
    text: str  # the continuation only, decoded
    token_ids: list[int]  # the new tokens only
    prompt_ids: list[int]
    stats: GenerationStats
    trace: list[TraceStep] = field(default_factory=list)  # every step (speculative runs only)
