"""The draft proposes a token tree, one batched draft forward per depth (notebook 07).

Three shapes, built by the same loop:
  Chains(n_branches, depth)  the root gets n_branches children, every other node one child:
                             n_branches disjoint chains (multi-draft speculative decoding).
  Dynamic(n_nodes, depth)    EAGLE-2's dynamic tree: the n_nodes nodes of highest path score,
                             branching wherever the draft is unsure.
  CostAware(n_nodes, depth,  the dynamic tree, drafted deeper and verified only as far as the
      c, verify_costs)       expected tokens pay for the draft forwards and the larger verify forward.
The loop, from the root (the last emitted token): the draft's distribution q at every frontier
node (the nodes of the deepest level) comes from ONE forward that feeds that whole level, each
node seeing only the cached prefix and its own ancestors at position root + depth (the tree
attention mask of `token_tree.py`). The shape says how many children c_v each frontier node v
gets; they are drawn from q[v]: its top c_v tokens when greedy, else c_v draws WITHOUT
replacement, each from q[v] with the tokens drawn so far removed (what the verifier assumes).

Path score. The j-th child of v scores score(v) * (the j-th largest q[v]); the root scores 1.
Greedy, that is the draft's path probability (the product of q along the path). Sampling, it is
the same number computed from v's ranks, not from the drawn token: whether a node is in the
tree must not depend on its own token, or the drawn children would not follow q and the
verification would not be lossless. A child never scores above its parent, so the best n
nodes by (score, shallower first, draw order) form a tree, and a node's children in it are
its first c draws.
Dynamic: at each depth the candidate children are ranked with the nodes chosen so far; those
among the best n_nodes are drawn, and nodes pushed out of the best n_nodes leave the tree (they
were drafted, and stay in the draft's cache until `tree.compact_caches`). Drafting stops at
`depth` or when no child of the newest level can enter the best n_nodes (CostAware: also when
the next level would not pay for its forward).

What it does not do: look at the target; learned heads on the target (Medusa proper); a static
top-k-per-depth shape (Medusa's sparse trees); batches of several sequences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import torch
from transformers import DynamicCache, PreTrainedModel

from .draft import confidence_probs
from .kv_cache import cache_length, forward_new_tokens, new_cache
from .sampling import GREEDY, Sampling, sample
from .token_tree import TokenTree, forward_tree_nodes

NodeKey = tuple[float, int, int]  # (-score, depth, order): smaller is better


class FixedBudget:
    """A tree shape whose int fields are sizes >= 1 (ValueError naming the first that is not), which drafts
    until its depth or its node budget stops it and verifies its best n_nodes nodes."""

    def __post_init__(self) -> None:
        for size in fields(self):
            if size.type == "int" and getattr(self, size.name) < 1:
                raise ValueError(f"{size.name} must be >= 1, got {getattr(self, size.name)}")

    def worth_deeper(self, drafted: DraftedTree, frontier: list[int], forwards: int) -> bool:
        return True

    def verified_nodes(self, drafted: DraftedTree, forwards: int) -> int:
        return self.n_nodes


@dataclass(frozen=True)
class Chains(FixedBudget):
    """n_branches chains of `depth` tokens under the root: n_branches * depth drafted nodes."""

    n_branches: int
    depth: int

    @property
    def n_nodes(self) -> int:
        return self.n_branches * self.depth

    def n_children(self, level: int, scores: list[float], ranked_q: torch.Tensor, chosen: list[NodeKey]) -> list[int]:
        """Children of each frontier node at `level` (1 = the root's children): n_branches, then 1 each."""
        counts = [self.n_branches if level == 1 else 1] * len(scores)
        return [min(c, int((row > 0).sum())) for c, row in zip(counts, ranked_q)]


@dataclass(frozen=True)
class Dynamic(FixedBudget):
    """The n_nodes drafted nodes of highest path score, at most `depth` below the root (EAGLE-2's dynamic tree)."""

    n_nodes: int
    depth: int

    def n_children(self, level: int, scores: list[float], ranked_q: torch.Tensor, chosen: list[NodeKey]) -> list[int]:
        """scores: [F] of the frontier nodes; ranked_q: [F, n] each one's q sorted down; chosen: the kept nodes' keys.

        A candidate child gets drawn when it ranks among the best n_nodes of the kept nodes and the candidates.
        """
        return children_counts(self.best_nodes(level, scores, ranked_q, chosen), len(scores))

    def best_nodes(self, level: int, scores: list[float], ranked_q: torch.Tensor,
                   chosen: list[NodeKey]) -> list[tuple[NodeKey, int]]:
        """The best n_nodes of the kept nodes (frontier index -1) and the candidate children (their parent's
        frontier index), best first."""
        candidates = [((-s * float(q), level, i * ranked_q.shape[1] + j), i)
                      for i, (s, row) in enumerate(zip(scores, ranked_q)) for j, q in enumerate(row.tolist()) if q > 0]
        return sorted([(key, -1) for key in chosen] + candidates)[:self.n_nodes]


def children_counts(best: list[tuple[NodeKey, int]], n_frontier: int) -> list[int]:
    """How many of `best` are children of each of the n_frontier frontier nodes."""
    counts = [0] * n_frontier
    for _, i in best:
        if i >= 0:
            counts[i] += 1
    return counts


@dataclass(frozen=True)
class CostAware(Dynamic):
    """A dynamic tree that drafts deeper, and verifies a node, only where the expected tokens pay for the time.

    Take the path scores s as acceptance chances (greedy: the draft's path probabilities). Verifying the best
    N drafted nodes after F draft forwards then emits 1 + Σ s tokens on average and costs F c + v_N
    one-token target forwards; R is the best such ratio over N = 1..n_nodes.
      - verify the N that gives R: a node joins only when its score pays for a larger verify forward;
      - draft one level deeper only when s_f q_f >= c R, f the best frontier node and q_f its own draft
        probability: its best child would score about s_f q_f if the draft's confidence carries over to the
        next token (the bet Hugging Face's confidence stop makes too), and the forward costs c.
    Children are drawn (and later fed to the draft) only when they rank among the N that would be verified
    if drafting stopped at their level. c and verify_costs (v_1..v_N for N up to n_nodes, monotone) come
    from `theory.calibrate` (tree.py's shape "auto"). Every decision reads scores, which come from ranks,
    never a drawn token: lossless.
    """

    c: float
    verify_costs: tuple[float, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.c < 0 or len(self.verify_costs) < self.n_nodes or min(self.verify_costs) <= 0:
            raise ValueError(f"need c >= 0 and verify_costs v_1..v_{self.n_nodes} all > 0, got c={self.c}, "
                             f"verify_costs={self.verify_costs}")

    def best_ratio(self, scores: list[float], forwards: int) -> tuple[float, int]:
        """(R, N): the most expected tokens per unit of cost, and how many of the best `scores` (sorted down)
        give it, after `forwards` draft forwards."""
        totals = itertools.accumulate(scores[:self.n_nodes], initial=1.0)  # 1 + the n best scores, n = 0, 1, ...
        return max((total / (forwards * self.c + self.verify_costs[n - 1]), n)
                   for n, total in enumerate(totals) if n >= 1)

    def n_children(self, level: int, scores: list[float], ranked_q: torch.Tensor, chosen: list[NodeKey]) -> list[int]:
        """Dynamic's candidates, but only those among the N best that would be verified if drafting stopped
        here (`level` forwards spent): a child that cannot pay its verify cost is not drawn, nor fed."""
        best = self.best_nodes(level, scores, ranked_q, chosen)
        _, n = self.best_ratio([-key[0] for key, _ in best], level)
        return children_counts(best[:n], len(scores))

    def worth_deeper(self, drafted: DraftedTree, frontier: list[int], forwards: int) -> bool:
        best = min(frontier, key=drafted.key)
        q_best = drafted.scores[best] / drafted.scores[drafted.parents[best]]
        ratio, _ = self.best_ratio(sorted(drafted.scores[1:], reverse=True), forwards)
        return drafted.scores[best] * q_best >= self.c * ratio

    def verified_nodes(self, drafted: DraftedTree, forwards: int) -> int:
        return self.best_ratio(sorted(drafted.scores[1:], reverse=True), forwards)[1]


TreeShape = Chains | Dynamic | CostAware


@dataclass
class TreeProposal:
    tree: TokenTree  # node 0 = the root (last emitted token), then the drafted nodes depth by depth
    q: torch.Tensor | None  # [N, vocab]: q[i] = the distribution node i's children were drawn from; None if greedy
    forwards: int  # draft forward passes spent
    n_fed: int  # tree nodes 1..n_fed were fed to the draft ...
    cache_slots: list[int]  # ... node v as the cache_slots[v]-th drafted entry after the prefix (0-based)
    scores: list[float] = field(default_factory=list)  # each node's path score (greedy: draft path probability)


def draw_without_replacement(probs: torch.Tensor, n: int, generator: torch.Generator | None) -> list[int]:
    """Up to `n` distinct tokens from `probs` [vocab], drawn one by one, each from what is left renormalized.

    Fewer than `n` come back when fewer tokens have non-zero probability.
    """
    remaining = probs.clone()
    tokens: list[int] = []
    while len(tokens) < n and remaining.sum() > 0:
        tokens.append(int(sample(remaining / remaining.sum(), generator)))
        remaining[tokens[-1]] = 0
    return tokens


def draw_children(q: torch.Tensor | None, ranked_tokens: torch.Tensor, n: int, sampling: Sampling) -> list[int]:
    """n distinct children of one node: the draft's top-n (greedy: the first n of `ranked_tokens`, its tokens by
    falling probability) or draws without replacement from q [vocab]."""
    if sampling.greedy:
        return ranked_tokens[:n].tolist()
    return draw_without_replacement(q, n, sampling.generator)


class DraftedTree:
    """Every drafted node, depth by depth, in the order fed to the draft; scores and q of the fed ones."""

    def __init__(self, root: int):
        self.tokens, self.parents, self.depths, self.scores = [root], [-1], [0], [1.0]
        self.q_rows: list[torch.Tensor] = []  # [vocab] per node whose children were drawn (sampling only)

    def key(self, node: int) -> NodeKey:
        return (-self.scores[node], self.depths[node], node)

    def as_tree(self) -> TokenTree:
        return TokenTree(torch.tensor(self.tokens), torch.tensor(self.parents), torch.tensor(self.depths))

    def add_level(self, frontier: list[int], q: torch.Tensor | None, ranked: Ranked, counts: list[int],
                  sampling: Sampling) -> list[int]:
        """Draw counts[i] children of frontier[i] (q: [F, vocab], None when greedy; `ranked`: each one's n >=
        counts[i] most likely tokens); return the new nodes."""
        ranked_q = ranked.probs  # [F, n]
        level = []  # (key, token, parent, score): ordered by key, so siblings stay in draw order
        for i, (node, count) in enumerate(zip(frontier, counts)):
            for j, token in enumerate(draw_children(None if q is None else q[i], ranked.tokens[i], count, sampling)):
                score = self.scores[node] * float(ranked_q[i, j])
                level.append(((-score, i, j), token, node, score))
        new = []
        for _, token, parent, score in sorted(level):
            new.append(len(self.tokens))
            self.tokens.append(token)
            self.parents.append(parent)
            self.depths.append(self.depths[parent] + 1)
            self.scores.append(score)
        return new

    def can_grow(self, frontier: list[int], n_nodes: int) -> bool:
        """Whether a child of a `frontier` node could still enter the best n_nodes (a child scores <= its parent)."""
        best = self.best(n_nodes)[1:]
        if len(best) < n_nodes:
            return bool(frontier)
        worst = min(self.scores[v] for v in best)
        return any(self.scores[v] > worst for v in frontier)

    def best(self, n_nodes: int) -> list[int]:
        """The root and the n_nodes best drafted nodes, in drafted order (a tree: parents rank above children)."""
        return [0] + sorted(sorted(range(1, len(self.tokens)), key=self.key)[:n_nodes])


class Ranked(NamedTuple):
    """Each frontier node's n most likely next tokens, most likely first."""

    probs: torch.Tensor  # [F, n] their `confidence_probs` (for the scores)
    tokens: torch.Tensor  # [F, n] the tokens (greedy: the children, in this order)


def rank_next_tokens(logits: torch.Tensor, q: torch.Tensor | None, sampling: Sampling, n: int) -> Ranked:
    """logits [F, vocab] and their sampling q ([F, vocab], None when greedy) -> each row's n largest
    `confidence_probs`. No child ranks below n, so a full sort of the vocabulary (32 ms a row for 151,936
    tokens, most of a tree step's own time) is not needed."""
    probs = confidence_probs(logits, q, sampling.greedy)
    top = probs.topk(min(n, probs.shape[-1]), dim=-1)
    return Ranked(top.values, top.indices)


@torch.inference_mode()
def propose_tree(
    draft: PreTrainedModel,
    cache: DynamicCache,
    pending_ids: torch.Tensor,
    shape: TreeShape,
    *,
    sampling: Sampling = GREEDY,
) -> TreeProposal:
    """Draft a tree of `shape` after `pending_ids` [1, m] (tokens not yet in the cache); the last is the root.
    Draws take `sampling`'s generator.

    Returns the tree and, when sampling, the q rows the verifier needs.
    """
    root_position = cache_length(cache) + pending_ids.shape[1] - 1
    drafted, frontier = DraftedTree(int(pending_ids[0, -1])), [0]
    logits = forward_new_tokens(draft, cache, pending_ids, logits_to_keep=1)[-1:]  # [1, vocab]
    forwards, n_fed = 1, 0
    for level in range(1, shape.depth + 1):
        q = None if sampling.greedy else sampling.probs(logits)  # [F, vocab]; greedy needs no one-hot rows
        ranked = rank_next_tokens(logits, q, sampling, shape.n_nodes)  # [F, n] each
        drafted.q_rows += [] if q is None else list(q)
        kept = [drafted.key(v) for v in drafted.best(shape.n_nodes)[1:]]
        counts = shape.n_children(level, [drafted.scores[v] for v in frontier], ranked.probs, kept)
        frontier = drafted.add_level(frontier, q, ranked, counts, sampling)
        if (level == shape.depth or not drafted.can_grow(frontier, shape.n_nodes)
                or not shape.worth_deeper(drafted, frontier, forwards)):
            break
        n_fed = frontier[-1]
        logits = forward_tree_nodes(draft, cache, drafted.as_tree(), range(frontier[0], n_fed + 1),
                                    range(1, n_fed + 1), root_position)  # [F, vocab]
        forwards += 1
    return finish_proposal(drafted, shape.verified_nodes(drafted, forwards), n_fed, forwards, sampling)


def finish_proposal(drafted: DraftedTree, n_nodes: int, n_fed: int, forwards: int,
                    sampling: Sampling) -> TreeProposal:
    """Keep the best n_nodes drafted nodes; renumber them; their q rows (zeros for nodes never fed)."""
    nodes = drafted.best(n_nodes)
    index = {old: new for new, old in enumerate(nodes)}
    tree = TokenTree(torch.tensor([drafted.tokens[v] for v in nodes]),
                     torch.tensor([index[drafted.parents[v]] if v else -1 for v in nodes]),
                     torch.tensor([drafted.depths[v] for v in nodes]))
    q = None
    if not sampling.greedy:
        blank = torch.zeros_like(drafted.q_rows[0])  # children of a node never fed: none, never read
        q = torch.stack([drafted.q_rows[v] if v < len(drafted.q_rows) else blank for v in nodes])  # [N, vocab]
    return TreeProposal(tree, q, forwards, n_fed=sum(0 < v <= n_fed for v in nodes),
                        cache_slots=[v - 1 for v in nodes], scores=[drafted.scores[v] for v in nodes])


def tree_after_each_depth(draft: PreTrainedModel, ids: torch.Tensor, shape: TreeShape) -> list[TreeProposal]:
    """The proposal after depth 1, 2, ..., shape.depth (for pictures, notebook 07): `propose_tree` stopped at
    each depth in turn, greedy, each from a fresh cache holding `ids` [1, n] but its last token (the root).
    The list ends early when the tree stops growing (no child could enter the node budget)."""
    proposals: list[TreeProposal] = []
    for depth in range(1, shape.depth + 1):
        cache = new_cache(draft)
        forward_new_tokens(draft, cache, ids[:, :-1])
        proposal = propose_tree(draft, cache, ids[:, -1:], replace(shape, depth=depth))
        last = proposals[-1].tree if proposals else None
        if last is not None and torch.equal(proposal.tree.tokens, last.tokens) and torch.equal(proposal.tree.parents, last.parents):
            break
        proposals.append(proposal)
    return proposals
