"""The draft proposes several branches at once, merged into a token tree (notebook 06).

After the last emitted token (the tree's root) the draft picks `n` DISTINCT first tokens:
its top-n when greedy, else n draws without replacement from its (top-k/top-p filtered)
distribution q, one after the other, each from q with the tokens drawn so far removed. Each
first token is then rolled out `depth - 1` more tokens, greedily or by sampling from q at that
node. All branches advance together: one draft forward per depth feeds every branch's newest
token, each seeing only its own ancestors (the tree attention mask of `token_tree.py`), so a
proposal costs `depth` draft forwards whatever `n` is.

The draft's cache afterwards holds the pending tokens and the tree nodes of depths 1..depth-1
(nodes 1..n_fed in the tree's flat order); `tree_verification.keep_positions` later keeps the
accepted branch's entries only.

What it does not do: look at the target, or merge branches: distinct first tokens make the
branches disjoint, so the trie is n chains under the root (`build_tree` merges general branches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

from .kv_cache import cache_length, forward_new_tokens
from .sampling import GREEDY, Sampling, sample
from .token_tree import TokenTree, build_tree, forward_tree_nodes


@dataclass
class TreeProposal:
    tree: TokenTree  # node 0 = the root (last emitted token), then the drafted nodes depth by depth
    q: torch.Tensor | None  # [N, vocab]: q[i] = the distribution node i's children were drawn from; None if greedy
    forwards: int  # draft forward passes spent
    n_fed: int  # tree nodes 1..n_fed are in the draft's cache now


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


def first_tokens(q_root: torch.Tensor, logits: torch.Tensor, n: int, greedy: bool,
                 generator: torch.Generator | None) -> list[int]:
    """The n distinct first tokens of the branches: the draft's top-n (greedy) or draws without replacement."""
    if greedy:
        return logits.topk(min(n, logits.shape[-1])).indices.tolist()
    return draw_without_replacement(q_root, n, generator)


@torch.inference_mode()
def propose_tree(
    draft: PreTrainedModel,
    cache: DynamicCache,
    pending_ids: torch.Tensor,
    n_branches: int,
    depth: int,
    *,
    sampling: Sampling = GREEDY,
    generator: torch.Generator | None = None,
) -> TreeProposal:
    """Draft `n_branches` branches of `depth` tokens after `pending_ids` [1, m] (tokens not yet in the cache).

    The last pending token is the tree's root. Returns the tree and, when sampling, the q rows
    the verifier needs.
    """
    root, root_position = int(pending_ids[0, -1]), cache_length(cache) + pending_ids.shape[1] - 1
    logits = forward_new_tokens(draft, cache, pending_ids, logits_to_keep=1)[-1:]  # [1, vocab]
    q_rows = [sampling.probs(logits)]  # per level: [branches, vocab]
    branches = [[token] for token in first_tokens(q_rows[0][0], logits[0], n_branches, sampling.greedy, generator)]
    for level in range(1, depth):
        tree = build_tree(root, branches)
        newest = range(len(tree) - len(branches), len(tree))  # the nodes at `level`
        logits = forward_tree_nodes(draft, cache, tree, newest, range(1, len(tree)), root_position)
        q_rows.append(sampling.probs(logits))  # [branches, vocab]
        chosen = logits.argmax(-1) if sampling.greedy else sample(q_rows[-1], generator)  # [branches]
        for branch, token in zip(branches, chosen.tolist()):
            branch.append(token)
    tree = build_tree(root, branches)
    q = None
    if not sampling.greedy:
        leaves = q_rows[0].new_zeros(len(branches), q_rows[0].shape[-1])  # leaves have no children: never read
        q = torch.cat(q_rows + [leaves])  # [N, vocab], rows in the tree's flat order
    return TreeProposal(tree, q, forwards=depth, n_fed=len(tree) - 1 - len(branches))
