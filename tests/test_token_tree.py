"""The token tree: trie layout, attention mask, positions, and ONE forward == every branch's own logits."""

import pytest
import torch

from specdec_lite.algorithm.kv_cache import forward_new_tokens, new_cache
from specdec_lite.algorithm.token_tree import (ancestor_matrix, build_tree, forward_tree_nodes, tree_attention_mask,
                                               tree_position_ids)
from specdec_lite.models.tiny_models import tiny_model


def test_build_tree_merges_shared_prefixes_depth_by_depth():
    tree = build_tree(9, [[1, 2, 3], [1, 2, 4], [5], [1, 6]])
    assert tree.tokens.tolist() == [9, 1, 5, 2, 6, 3, 4]
    assert tree.parents.tolist() == [-1, 0, 0, 1, 1, 3, 3]
    assert tree.depths.tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert tree.children(1) == [3, 4] and tree.path_to(6) == [0, 1, 3, 6]
    assert tree.leaves() == [2, 4, 5, 6]


def test_build_tree_of_no_branches_is_the_root():
    tree = build_tree(4, [[], []])
    assert tree.tokens.tolist() == [4] and tree.parents.tolist() == [-1]


def test_mask_and_positions():
    tree = build_tree(9, [[1, 2], [5]])  # nodes: 9, 1, 5, 2
    sees = ancestor_matrix(tree)
    assert sees.int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]]
    mask = tree_attention_mask(tree, n_cached=3, queries=range(4), keys=range(4))
    assert mask.shape == (1, 1, 4, 7)
    assert (mask[0, 0, :, :3] == 0).all()  # the cached prefix is visible to every node
    assert ((mask[0, 0, :, 3:] == 0) == sees).all() and mask.min() == torch.finfo(torch.float32).min
    assert tree_position_ids(tree, 10, range(4)).tolist() == [[10, 11, 11, 12]]
    partial = tree_attention_mask(tree, n_cached=5, queries=range(3, 4), keys=range(1, 4))  # the draft's feed
    assert ((partial[0, 0] == 0).tolist()) == [[True] * 5 + [True, False, True]]


def random_tree(generator):
    n_branches = int(torch.randint(1, 5, (), generator=generator))
    branches = [torch.randint(0, 4, (int(torch.randint(0, 6, (), generator=generator)),),
                              generator=generator).tolist() for _ in range(n_branches)]
    return build_tree(int(torch.randint(0, 32, (), generator=generator)), branches)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_one_tree_forward_equals_each_branch_forward(arch, attn):
    """fp32; the bound is 1e-5 relative to the logits' scale (|logits| ~ 8 here, rounding ~1e-6 each)."""
    model = tiny_model(arch, attn=attn)
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        prefix = torch.randint(0, 32, (1, int(torch.randint(1, 9, (), generator=generator))), generator=generator)
        tree = random_tree(generator)
        cache = new_cache(model)
        forward_new_tokens(model, cache, prefix)
        logits = forward_tree_nodes(model, cache, tree, range(len(tree)), range(len(tree)), prefix.shape[1])
        assert logits.shape == (len(tree), 32) and cache.get_seq_length() == prefix.shape[1] + len(tree)
        for leaf in tree.leaves():
            path = tree.path_to(leaf)
            chain_cache = new_cache(model)
            forward_new_tokens(model, chain_cache, prefix)
            reference = forward_new_tokens(model, chain_cache, tree.tokens[path][None])  # [len(path), vocab]
            assert (logits[path] - reference).abs().max() <= 1e-5 * reference.abs().max()


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_a_plain_causal_forward_over_the_flat_tree_is_wrong(arch):
    """The check above can fail: without the tree mask and positions, cousins leak into each other."""
    model = tiny_model(arch)
    tree = build_tree(3, [[1, 2], [4, 5]])
    cache = new_cache(model)
    forward_new_tokens(model, cache, torch.tensor([[7, 8]]))
    causal = forward_new_tokens(model, cache, tree.tokens[None])  # [N, vocab]
    chain_cache = new_cache(model)
    forward_new_tokens(model, chain_cache, torch.tensor([[7, 8]]))
    reference = forward_new_tokens(model, chain_cache, tree.tokens[tree.path_to(4)][None])
    assert (causal[tree.path_to(4)] - reference).abs().max() > 1e-2
