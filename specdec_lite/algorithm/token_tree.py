"""A token tree (trie) of drafted continuations, flattened so that ONE forward scores every node (notebook 07).

Node 0 is the root: the last emitted token, the one the target has not seen yet. Every other
node is a drafted token; its parent is the token before it on its branch. Branches that share
a prefix share those nodes. Nodes are stored depth by depth (breadth-first), children in the
order they were added, so that a node's parent always comes before it and the nodes of the
first d depths are a prefix of the flat order.

To score the flattened tree in one forward, each node must see the cached prefix and its own
ancestors only (not its cousins), and sit at the position it would have on its own branch:
  attention mask: 0 where a node may look, a large negative number elsewhere (additive, float:
                  boolean masks are silently misread by some eager attention code, e.g. GPT-2's)
  position ids:   root position + depth

What it does not do: decide which tokens go into the tree (`tree_draft.py`) or which path the
target accepts (`tree_verification.py`); batches of several sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel


@dataclass
class TokenTree:
    """N nodes, node 0 the root. tokens/parents/depths: [N] long; parents[0] == -1, depths[0] == 0."""

    tokens: torch.Tensor  # [N] token id of each node
    parents: torch.Tensor  # [N] index of each node's parent (-1 for the root)
    depths: torch.Tensor  # [N] 0 for the root, parent's depth + 1 otherwise

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def children(self, node: int) -> list[int]:
        """The children of `node`, in the order they were added."""
        return (self.parents == node).nonzero().flatten().tolist()

    def path_to(self, node: int) -> list[int]:
        """The node indices from the root to `node`, both included."""
        path = [node]
        while path[-1] != 0:
            path.append(int(self.parents[path[-1]]))
        return path[::-1]

    def leaves(self) -> list[int]:
        has_child = torch.zeros(len(self), dtype=torch.bool)
        has_child[self.parents[1:]] = True
        return (~has_child).nonzero().flatten().tolist()


def build_tree(root_token: int, branches: Sequence[Sequence[int]]) -> TokenTree:
    """Merge `branches` (each a list of drafted token ids following the root) into a trie.

    Shared prefixes become shared nodes; an empty branch adds nothing. Nodes come out depth by
    depth, and within a depth in the order their branches first reach them.
    """
    child_index: dict[tuple[int, int], int] = {}  # (parent node, token) -> node (in insertion order)
    nodes = [(root_token, -1, 0)]  # (token, parent, depth) in insertion order
    for branch in branches:
        node = 0
        for token in branch:
            key = (node, int(token))
            if key not in child_index:
                child_index[key] = len(nodes)
                nodes.append((int(token), node, nodes[node][2] + 1))
            node = child_index[key]
    order = sorted(range(len(nodes)), key=lambda i: (nodes[i][2], i))  # breadth-first, stable
    new_index = {old: new for new, old in enumerate(order)}
    tokens = [nodes[i][0] for i in order]
    parents = [new_index[nodes[i][1]] if nodes[i][1] >= 0 else -1 for i in order]
    depths = [nodes[i][2] for i in order]
    return TokenTree(torch.tensor(tokens), torch.tensor(parents), torch.tensor(depths))


def ancestor_matrix(tree: TokenTree) -> torch.Tensor:
    """[N, N] bool: entry [i, j] is True when node j is node i or one of its ancestors."""
    n = len(tree)
    sees = torch.eye(n, dtype=torch.bool)
    for node in range(1, n):  # parents come first, so their rows are complete
        sees[node] |= sees[tree.parents[node]]
    return sees


def tree_attention_mask(tree: TokenTree, n_cached: int, queries: range, keys: range,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask [1, 1, len(queries), n_cached + len(keys)] for feeding the nodes `queries`.

    The model's cache holds `n_cached` positions (all visible), followed by the tree nodes `keys`
    (fed earlier or in this same forward); a query node sees a key node only if it is itself or
    an ancestor. 0 = may attend, the dtype's most negative number = may not.
    """
    sees = ancestor_matrix(tree)[queries.start:queries.stop, keys.start:keys.stop]  # [Q, K]
    visible = torch.cat([torch.ones(len(queries), n_cached, dtype=torch.bool), sees], dim=1)
    mask = torch.zeros(visible.shape, dtype=dtype).masked_fill(~visible, torch.finfo(dtype).min)
    return mask[None, None]


def tree_position_ids(tree: TokenTree, root_position: int, queries: range) -> torch.Tensor:
    """[1, len(queries)]: each node's position on its own branch, root_position + depth."""
    return (root_position + tree.depths[queries.start:queries.stop])[None]


@torch.inference_mode()
def forward_tree_nodes(model: PreTrainedModel, cache: DynamicCache, tree: TokenTree, queries: range,
                       keys: range, root_position: int) -> torch.Tensor:
    """Feed the nodes `queries` to `model` after what `cache` holds, in ONE forward; the cache grows by them.

    `keys` are the tree nodes the cache's last entries plus this forward's inputs stand for (see
    `tree_attention_mask`). Returns the logits at the fed nodes: [len(queries), vocab].
    """
    device, dtype = getattr(model, "device", tree.tokens.device), getattr(model, "dtype", torch.float32)
    n_cached = cache.get_seq_length() - (len(keys) - len(queries))  # positions before the tree's nodes
    mask = tree_attention_mask(tree, n_cached, queries, keys, dtype).to(device)
    position_ids = tree_position_ids(tree, root_position, queries).to(device)
    input_ids = tree.tokens[queries.start:queries.stop][None].to(device)  # [1, Q]
    out = model(input_ids=input_ids, cache=cache, use_cache=True, attention_mask=mask, position_ids=position_ids)
    return out.logits[0]
