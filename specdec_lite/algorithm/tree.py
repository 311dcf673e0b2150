"""Token-tree speculative decoding ("Medusa-lite"): several draft branches, ONE target forward per step (notebook 07).

Invariant between steps, the chain loop's `LoopState` (`chain.py`): `ids` = prompt + emitted tokens;
the target cache holds every token of `ids` but the last, the draft cache a prefix of `ids`. One step:
  1. the draft proposes a token tree after the last token (chains or a dynamic tree) (tree_draft.propose_tree)
  2. the target scores every tree node in ONE forward -> p at each node  (tree_verification.tree_target_logits)
  3. a rule accepts one root-to-node path and emits one more token      (tree_verification.verify_tree)
  4. both caches keep the accepted path's entries only                  (tree_verification.keep_positions)
So each target forward yields between 1 and depth + 1 tokens, from up to n_nodes + 1 scored nodes.

What the tree path relies on, checked: an attention implementation that applies a 4D float mask
(eager, sdpa, row_by_row), plain `DynamicLayer` caches (`keep_positions`). The context window
counts positions, not nodes: a node at depth d sits at root position + d, and the step's depth
is clipped to the tokens left to emit, so the request's own check (prompt + max_new_tokens)
covers any tree, however many nodes it has.

What it does not do: batches, adapt the shape during a run, learned draft heads (Medusa proper),
or a draft whose vocabulary differs from the target's.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from transformers import DynamicCache

from ..models.pair import ModelPair
from .chain import LoopState, StepCallback
from .inputs import Prompt, make_request
from .kv_cache import cache_length
from .results import GenerationResult, TreeStepTrace
from .sampling import Sampling
from .draft_length import monotone_costs
from .theory import calibrate
from .tree_draft import Chains, CostAware, Dynamic, TreeProposal, TreeShape, propose_tree
from .tree_verification import TreeVerdict, keep_positions, tree_target_logits, verify_tree


ATTENTION_ALLOWED = ("eager", "sdpa", "row_by_row")  # they apply a 4D float mask; flash/flex attention ignore it
SHAPES = ("chains", "dynamic", "auto")


def tree_shape(shape: str | TreeShape, n_branches: int | None, n_nodes: int | None, depth: int | None,
               pair: ModelPair) -> TreeShape:
    """`Chains(n_branches or 3, depth or 4)`, `Dynamic(n_nodes or 8, depth or 4)`, or for "auto" a
    `CostAware` tree of n_nodes (or 8) nodes from the pair's calibrated costs (`theory.calibrate`); a shape
    object as it is. ValueError naming a bad argument."""
    if isinstance(shape, (Chains, Dynamic)):
        if (n_branches, n_nodes, depth) != (None, None, None):
            raise ValueError("a shape object carries its own sizes: leave n_branches, n_nodes and depth out")
        return shape
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES} or a tree shape object, got {shape!r}")
    depth = 4 if depth is None else depth
    if shape == "chains":
        if n_nodes is not None:
            raise ValueError("n_nodes applies to shape='dynamic' or 'auto'; chains have n_branches * depth nodes")
        return Chains(3 if n_branches is None else n_branches, depth)
    if n_branches is not None:
        raise ValueError(f"n_branches applies to shape='chains'; a {shape} tree branches where the draft is unsure")
    n_nodes = 8 if n_nodes is None else n_nodes
    if shape == "dynamic":
        return Dynamic(n_nodes, depth)
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be >= 1, got {n_nodes}")
    costs = calibrate(pair, k_max=n_nodes)
    return CostAware(n_nodes, depth, costs.c, tuple(monotone_costs(costs.verify_costs)))


def check_tree_models(pair: ModelPair) -> None:
    """ValueError unless both models' attention implementation applies the tree's 4D float mask."""
    for role, model in (("draft", pair.draft), ("target", pair.target)):
        attn = getattr(model.config, "_attn_implementation", None)
        if attn not in ATTENTION_ALLOWED:
            raise ValueError(f"the {role}'s attn_implementation must be one of {ATTENTION_ALLOWED} for a token tree "
                             f"(flash and flex attention ignore a 4D float mask), got {attn!r}")


def step_trace(proposal: TreeProposal, verdict: TreeVerdict) -> TreeStepTrace:
    tree = proposal.tree
    return TreeStepTrace(tree.tokens.tolist(), tree.parents.tolist(), tree.depths.tolist(), verdict.path,
                         verdict.next_token, verdict.resampled, proposal.forwards)


def compact_caches(draft_cache: DynamicCache, target_cache: DynamicCache, proposal: TreeProposal,
                   path: list[int]) -> None:
    """Keep the accepted path in both caches, right after the tree's target forward.

    With n_ids = len(ids) before the step (root included), the target holds n_ids - 1 + N entries:
    keep prefix (n_ids - 1) + tree nodes [root] + path. Draft: prefix (n_ids) + the path nodes it was fed,
    found at their `cache_slots` (the draft's cache may also hold drafted nodes the tree left out).
    """
    n_ids = cache_length(target_cache) - len(proposal.tree) + 1
    prefix = torch.arange(n_ids - 1)
    keep_positions(target_cache, torch.cat([prefix, n_ids - 1 + torch.tensor([0] + path)]))
    fed = [n_ids + proposal.cache_slots[node] for node in path if node <= proposal.n_fed]
    keep_positions(draft_cache, torch.cat([torch.arange(n_ids), torch.tensor(fed, dtype=torch.long)]))


def tree_step(state: LoopState, shape: TreeShape) -> TreeStepTrace:
    """Draft a tree, verify it in one target forward, compact both caches; returns the step's trace."""
    sampling = state.request.sampling
    proposal = propose_tree(state.pair.draft, state.draft_cache, state.pending_ids(), shape, sampling=sampling)
    logits = tree_target_logits(state.pair.target, state.target_cache, proposal.tree)  # [N, vocab]
    verdict = verify_tree(proposal.tree, proposal.q, logits, sampling)
    compact_caches(state.draft_cache, state.target_cache, proposal, verdict.path)
    state.stats.draft_forwards += proposal.forwards
    state.stats.target_forwards += 1
    state.stats.proposed += len(proposal.tree) - 1
    state.stats.accepted += len(verdict.path)
    return step_trace(proposal, verdict)


@torch.inference_mode()
def tree_generate(
    pair: ModelPair, prompt: Prompt, max_new_tokens: int = 64, n_branches: int | None = None,
    depth: int | None = None, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
    seed: int | None = 0, stop_at_eos: bool = True, generator: torch.Generator | None = None,
    shape: str | TreeShape = "chains", n_nodes: int | None = None, on_step: StepCallback | None = None,
) -> GenerationResult:
    """Token-tree speculative decoding: a tree of drafted tokens, one target forward per step.

    shape "chains": `n_branches` (default 3) chains of `depth` (default 4) tokens under the root. shape
    "dynamic": the `n_nodes` (default 8) drafted nodes of highest draft path probability, at most
    `depth` deep (`tree_draft.Dynamic`). shape "auto": that dynamic tree, drafted deeper and verified
    only as far as the pair's calibrated costs say it pays (`tree_draft.CostAware`; `theory.calibrate`
    measures v_1..v_n_nodes once per machine). A shape object (`Chains`, `Dynamic`, `CostAware`) is used
    as it is. Each step costs at most `depth` draft forwards.

    temperature 0: the tokens equal the target's greedy tokens. temperature > 0: every token
    follows the target's (temperature/top-k/top-p transformed) distribution exactly.
    stats.proposed counts the drafted nodes the target scored, stats.accepted the accepted path lengths.
    `prompt` and `on_step` (streaming) as in `speculative_generate`.
    `seed` (sampling only): an int makes the draws reproducible; None draws fresh randomness on every
    call. A `generator`, if given, is used instead of `seed`; it must be on the pair's device (ValueError).
    """
    request = make_request(pair, prompt, max_new_tokens, Sampling(temperature, top_k, top_p),
                           models=[pair.draft, pair.target], seed=seed, generator=generator, stop_at_eos=stop_at_eos)
    tree = tree_shape(shape, n_branches, n_nodes, depth, pair)
    check_tree_models(pair)
    state = LoopState.prefill(pair, request, on_step)
    while state.remaining > 0:
        depth_step = min(tree.depth, state.remaining - 1)  # never emit more than max_new_tokens, nor pass its positions
        step = state.plain_step() if depth_step == 0 else tree_step(state, replace(tree, depth=depth_step))
        state.append(step)
    return state.finish()
