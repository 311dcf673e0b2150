"""Token-tree speculative decoding ("Medusa-lite"): several draft branches, ONE target forward per step (notebook 06).

Invariant between steps, the chain loop's `LoopState` (`chain.py`): `ids` = prompt + emitted tokens;
the target cache holds every token of `ids` but the last, the draft cache a prefix of `ids`. One step:
  1. the draft proposes n branches of `depth` tokens after the last token, as a tree (tree_draft.propose_tree)
  2. the target scores every tree node in ONE forward -> p at each node  (tree_verification.tree_target_logits)
  3. a rule accepts one root-to-node path and emits one more token      (tree_verification.verify_tree)
  4. both caches keep the accepted path's entries only                  (tree_verification.keep_positions)
So each target forward yields between 1 and depth + 1 tokens, from up to n * depth + 1 scored nodes.

What it does not do: batches, adapt n or depth during a run, learned draft heads (Medusa proper),
or a draft whose vocabulary differs from the target's.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from ..models.pair import ModelPair
from .chain import LoopState
from .inputs import Prompt, Request, context_window, make_request
from .kv_cache import cache_length
from .results import GenerationResult, TreeStepTrace
from .tree_draft import TreeProposal, propose_tree
from .tree_verification import TreeVerdict, keep_positions, tree_target_logits, verify_tree


def check_tree_args(pair: ModelPair, request: Request, n_branches: int, depth: int) -> None:
    """ValueError naming the argument: n_branches < 1, depth < 1, or a tree that does not fit the context window."""
    if n_branches < 1:
        raise ValueError(f"n_branches must be >= 1, got {n_branches}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    window = min(context_window(pair.draft), context_window(pair.target))
    n_prompt, max_new_tokens = request.ids.shape[1], request.max_new_tokens
    if n_prompt + max_new_tokens + n_branches * depth > window:
        raise ValueError(
            f"the tree (n_branches * depth = {n_branches * depth} nodes) does not fit the context window of {window} "
            f"tokens next to the prompt ({n_prompt}) and max_new_tokens ({max_new_tokens}); lower n_branches or depth"
        )


def step_trace(proposal: TreeProposal, verdict: TreeVerdict) -> TreeStepTrace:
    tree = proposal.tree
    return TreeStepTrace(tree.tokens.tolist(), tree.parents.tolist(), tree.depths.tolist(), verdict.path,
                         verdict.next_token, verdict.resampled)


def compact_caches(draft_cache: DynamicCache, target_cache: DynamicCache, proposal: TreeProposal,
                   path: list[int]) -> None:
    """Keep the accepted path in both caches, right after the tree's target forward.

    With n_ids = len(ids) before the step (root included), the target holds n_ids - 1 + N entries:
    keep prefix (n_ids - 1) + tree nodes [root] + path. Draft: prefix (n_ids) + the path nodes it was fed.
    """
    n_ids = cache_length(target_cache) - len(proposal.tree) + 1
    prefix = torch.arange(n_ids - 1)
    keep_positions(target_cache, torch.cat([prefix, n_ids - 1 + torch.tensor([0] + path)]))
    fed = [n_ids + node - 1 for node in path if node <= proposal.n_fed]
    keep_positions(draft_cache, torch.cat([torch.arange(n_ids), torch.tensor(fed, dtype=torch.long)]))


def tree_step(state: LoopState, n_branches: int, depth: int) -> TreeStepTrace:
    """Draft a tree, verify it in one target forward, compact both caches; returns the step's trace."""
    sampling, generator = state.request.sampling, state.request.generator
    proposal = propose_tree(state.pair.draft, state.draft_cache, state.pending_ids(), n_branches, depth,
                            sampling=sampling, generator=generator)
    logits = tree_target_logits(state.pair.target, state.target_cache, proposal.tree)  # [N, vocab]
    verdict, _ = verify_tree(proposal.tree, proposal.q, logits, sampling, generator)
    compact_caches(state.draft_cache, state.target_cache, proposal, verdict.path)
    state.stats.draft_forwards += proposal.forwards
    state.stats.target_forwards += 1
    state.stats.proposed += len(proposal.tree) - 1
    state.stats.accepted += len(verdict.path)
    return step_trace(proposal, verdict)


@torch.inference_mode()
def tree_generate(
    pair: ModelPair, prompt: Prompt, max_new_tokens: int = 64, n_branches: int = 3, depth: int = 4,
    temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
    seed: int | None = 0, stop_at_eos: bool = True, generator: torch.Generator | None = None,
) -> GenerationResult:
    """Token-tree speculative decoding: `n_branches` draft branches of `depth` tokens, one target forward per step.

    temperature 0: the tokens equal the target's greedy tokens. temperature > 0: every token
    follows the target's (temperature/top-k/top-p transformed) distribution exactly.
    stats.proposed counts the drafted nodes the target scored, stats.accepted the accepted path lengths.
    `seed` (sampling only): an int makes the draws reproducible; None draws fresh randomness on every
    call. A `generator`, if given, is used instead of `seed`; it must be on the pair's device (ValueError).
    """
    request = make_request(pair, prompt, max_new_tokens, [pair.draft, pair.target], temperature=temperature,
                           top_k=top_k, top_p=top_p, seed=seed, generator=generator, stop_at_eos=stop_at_eos)
    check_tree_args(pair, request, n_branches, depth)
    state = LoopState.prefill(pair, request)
    while state.remaining > 0:
        depth_step = min(depth, state.remaining - 1)  # never emit more than max_new_tokens
        step = state.plain_step() if depth_step == 0 else tree_step(state, n_branches, depth_step)
        state.append(step)
    return state.finish()
