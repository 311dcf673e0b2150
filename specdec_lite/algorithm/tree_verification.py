"""The target scores a whole token tree in ONE forward, then a rule accepts one root-to-node path (notebook 07).

Notation as in `verification.py`: p = target distribution, q = draft distribution. For a tree
node v, p[v] is the target's distribution for the token after v (from the tree forward) and
q[v] the draft's, from which v's children were drawn WITHOUT replacement, in index order.

Greedy rule: from the root, move to the child whose token is the target's argmax at the
current node, while there is one; then emit that argmax (a correction, or a bonus at a leaf).
The output equals the target's greedy output token for token.

Sampling rule (recursive rejection sampling over siblings, after SpecInfer's multi-step
speculative sampling, adapted to siblings drawn without replacement). At node v, with
p_1 = p[v], q_1 = q[v] and children x_1..x_n:
  accept x_i with probability min(1, p_i(x_i) / q_i(x_i)) and continue from x_i;
  else p_{i+1} = norm(max(0, p_i - q_i)) and q_{i+1} = q_i with x_i removed, renormalized.
If every child is rejected, emit a draw from p_{n+1}; at a leaf, emit a draw from p[v].
Why it is lossless: given x_1..x_{i-1}, x_i is distributed as q_i (that is what drawing without
replacement means), so round i is one ordinary speculative-sampling step of q_i against p_i,
whose output follows p_i exactly, provided that its "rejected" outcome is again distributed as
norm(max(0, p_i - q_i)) = p_{i+1}: by induction on the rounds left, it is. Keeping q_{i+1} = q_i
(SpecInfer's rule for siblings drawn WITH replacement) would be wrong here: x_{i+1} never
repeats x_i, so the next round would compare p_{i+1} with a q the draw did not come from.

What it does not do: batches, or trees whose children were drawn any other way than the rule
assumes (the greedy rule takes any tree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from .kv_cache import cache_length
from .sampling import Sampling, sample
from .token_tree import TokenTree, forward_tree_nodes
from .verification import acceptance_probability, residual_distribution


@dataclass
class TreeVerdict:
    path: list[int]  # accepted node indices from the root down, root excluded
    next_token: int  # the target's correction, or the bonus token after a leaf
    resampled: bool  # True when next_token was drawn from a residual (every child of the last node rejected)


def tree_target_logits(target: PreTrainedModel, cache: DynamicCache, tree: TokenTree) -> torch.Tensor:
    """ONE target forward over every node of `tree` (root first) after the cached prefix: [N, vocab].

    Row v predicts the token after node v; the cache grows by N (see `keep_positions`).
    """
    n = len(tree)
    return forward_tree_nodes(target, cache, tree, range(n), range(n), root_position=cache_length(cache))


def children_lists(tree: TokenTree) -> list[list[int]]:
    """children[v] = v's children in index order (the order they were drawn)."""
    children: list[list[int]] = [[] for _ in range(len(tree))]
    for node, parent in enumerate(tree.parents.tolist()[1:], start=1):
        children[parent].append(node)
    return children


def accept_tree_greedy(tree: TokenTree, logits: torch.Tensor) -> TreeVerdict:
    """logits: [N, vocab]. Follow the target's argmax down the tree as far as the tree has it."""
    best, tokens, children = logits.argmax(-1).tolist(), tree.tokens.tolist(), children_lists(tree)
    node, path = 0, []
    while (match := [c for c in children[node] if tokens[c] == best[node]]):
        node = match[0]
        path.append(node)
    return TreeVerdict(path, best[node], resampled=False)


def without_token(q: torch.Tensor, token: int) -> torch.Tensor:
    """q [vocab] with `token` removed and the rest renormalized (all zero if nothing is left)."""
    q = q.clone()
    q[token] = 0
    mass = q.sum()
    return q / mass if mass > 0 else q


def after_rejection(p: torch.Tensor, q: torch.Tensor, token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The next round's (p, q) after sibling `token` was rejected: norm(max(0, p - q)), and q without `token`."""
    return residual_distribution(p, q), without_token(q, token)


def accept_among_siblings(siblings: list[int], p: torch.Tensor, q: torch.Tensor,
                          generator: torch.Generator | None) -> tuple[int | None, torch.Tensor]:
    """Recursive rejection sampling over `siblings` (token ids, drawn without replacement from q [vocab]).

    Returns (index of the accepted sibling, None) or (None, p_{n+1}), the residual to draw from.
    """
    for i, token in enumerate(siblings):
        r = torch.rand((), generator=generator, device=p.device)
        if r < acceptance_probability(p[token], q[token]):
            return i, None
        p, q = after_rejection(p, q, token)
    return None, p


def accept_tree_sampling(tree: TokenTree, q: torch.Tensor, p: torch.Tensor,
                         generator: torch.Generator | None) -> TreeVerdict:
    """q, p: [N, vocab]. Walk down the tree with `accept_among_siblings`; every emitted token follows p."""
    tokens, children = tree.tokens.tolist(), children_lists(tree)
    node, path = 0, []
    while children[node]:
        chosen, residual = accept_among_siblings([tokens[c] for c in children[node]], p[node], q[node], generator)
        if chosen is None:
            return TreeVerdict(path, int(sample(residual, generator)), resampled=True)
        node = children[node][chosen]
        path.append(node)
    return TreeVerdict(path, int(sample(p[node], generator)), resampled=False)  # bonus after a leaf


def verify_tree(tree: TokenTree, q: torch.Tensor | None, logits: torch.Tensor, sampling: Sampling) -> TreeVerdict:
    """The greedy rule (temperature 0: argmaxes, no probabilities needed) or the sampling rule on
    p = sampling.probs(logits) [N, vocab], drawing with `sampling.generator`."""
    if sampling.greedy:
        return accept_tree_greedy(tree, logits)
    if q is None:
        raise ValueError("q must be given when temperature > 0 (the draft's distributions at each node)")
    return accept_tree_sampling(tree, q, sampling.probs(logits), sampling.generator)


def keep_positions(cache: DynamicCache, positions: torch.Tensor) -> None:
    """Keep only the cache entries at `positions` [m] (in that order), in every layer, in place.

    Keys and values are [batch, heads, seq, head_dim]; the gather runs along `seq`. Only plain
    `DynamicLayer`s are compacted (sliding-window, quantized or offloaded layers keep other state).
    """
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise ValueError(f"cache layers must be plain DynamicLayer to be compacted, got {type(layer).__name__}")
        index = positions.to(layer.keys.device)
        layer.keys = layer.keys.index_select(-2, index)
        layer.values = layer.values.index_select(-2, index)
