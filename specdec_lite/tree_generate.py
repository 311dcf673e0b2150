"""Token-tree speculative decoding ("Medusa-lite"): several draft branches, ONE target forward per step (notebook 06).

Invariant between steps, as in `speculative.py`: `ids` = prompt + emitted tokens; the target
cache holds every token of `ids` but the last, the draft cache a prefix of `ids`. One step:
  1. the draft proposes n branches of `span` tokens after the last token, as a tree (tree_draft.propose_tree)
  2. the target scores every tree node in ONE forward -> p at each node  (tree_verification.tree_target_logits)
  3. a rule accepts one root-to-node path and emits one more token      (tree_verification.verify_tree)
  4. both caches keep the accepted path's entries only                  (tree_verification.keep_positions)
So each target forward yields between 1 and span + 1 tokens, from up to n * span + 1 scored nodes.

What it does not do: batches, adapt n or span during a run, learned draft heads (Medusa proper),
or a draft whose vocabulary differs from the target's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .inputs import Prompt, check_generation_args, context_window, eos_token_ids, make_generator, prompt_ids
from .kv_cache import cache_length
from .pair import ModelPair
from .results import GenerationResult, GenerationStats
from .speculative import append_and_roll_back, finish_result, plain_target_step, prefill
from .tree_draft import TreeProposal, propose_tree
from .tree_verification import TreeVerdict, keep_positions, tree_target_logits, verify_tree


@dataclass
class TreeStepTrace:
    """One tree step: the tree the draft proposed and the path the target accepted."""

    tokens: list[int]  # token of each node; node 0 is the root (the last token before the step)
    parents: list[int]  # parent of each node (-1 for the root)
    depths: list[int]
    accepted_nodes: list[int]  # the accepted path's node indices, root excluded
    next_token: int  # correction, or bonus after a leaf
    resampled: bool  # next_token drawn from a residual

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


def check_tree_args(n_branches: int, span: int, n_prompt: int, max_new_tokens: int, window: int) -> None:
    """ValueError naming the argument: n_branches < 1, span < 1, or a tree that does not fit the context window."""
    if n_branches < 1:
        raise ValueError(f"n_branches must be >= 1, got {n_branches}")
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    if n_prompt + max_new_tokens + n_branches * span > window:
        raise ValueError(
            f"the tree (n_branches * span = {n_branches * span} nodes) does not fit the context window of {window} "
            f"tokens next to the prompt ({n_prompt}) and max_new_tokens ({max_new_tokens}); lower n_branches or span"
        )


def step_trace(proposal: TreeProposal, verdict: TreeVerdict) -> TreeStepTrace:
    tree = proposal.tree
    return TreeStepTrace(tree.tokens.tolist(), tree.parents.tolist(), tree.depths.tolist(), verdict.path,
                         verdict.next_token, verdict.resampled)


def compact_caches(draft_cache, target_cache, n_ids: int, proposal: TreeProposal, path: list[int]) -> None:
    """Keep the accepted path in both caches; `n_ids` = len(ids) before the step (root included).

    Target: prefix (n_ids - 1) + tree nodes [root] + path. Draft: prefix (n_ids) + the path nodes it was fed.
    """
    prefix = torch.arange(n_ids - 1)
    keep_positions(target_cache, torch.cat([prefix, n_ids - 1 + torch.tensor([0] + path)]))
    fed = [n_ids + node - 1 for node in path if node <= proposal.n_fed]
    keep_positions(draft_cache, torch.cat([torch.arange(n_ids), torch.tensor(fed, dtype=torch.long)]))


def tree_step(pair: ModelPair, ids, draft_cache, target_cache, n_branches: int, span: int, sampling: tuple,
              generator, stats: GenerationStats) -> TreeStepTrace:
    """Draft a tree, verify it in one target forward, compact both caches; returns the step's trace."""
    pending = ids[:, cache_length(draft_cache):]
    proposal = propose_tree(pair.draft, draft_cache, pending, n_branches, span, *sampling, generator)
    logits = tree_target_logits(pair.target, target_cache, proposal.tree)  # [N, vocab]
    verdict, _ = verify_tree(proposal.tree, proposal.q, logits, *sampling, generator)
    compact_caches(draft_cache, target_cache, ids.shape[1], proposal, verdict.path)
    stats.draft_forwards += proposal.forwards
    stats.target_forwards += 1
    stats.proposed += len(proposal.tree) - 1
    stats.accepted += len(verdict.path)
    return step_trace(proposal, verdict)


@torch.inference_mode()
def tree_generate(
    pair: ModelPair,
    prompt: Prompt,
    max_new_tokens: int = 64,
    n_branches: int = 3,
    span: int = 4,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = 0,
    stop_at_eos: bool = True,
    generator: torch.Generator | None = None,
) -> GenerationResult:
    """Token-tree speculative decoding: `n_branches` draft branches of `span` tokens, one target forward per step.

    temperature 0: the tokens equal the target's greedy tokens. temperature > 0: every token
    follows the target's (temperature/top-k/top-p transformed) distribution exactly.
    stats.proposed counts the drafted nodes the target scored, stats.accepted the accepted path lengths.
    """
    ids = prompt_ids(pair, prompt)  # [1, n]
    check_generation_args([pair.draft, pair.target], ids.shape[1], max_new_tokens, temperature, top_k, top_p)
    window = min(context_window(pair.draft), context_window(pair.target))
    check_tree_args(n_branches, span, ids.shape[1], max_new_tokens, window)
    generator = make_generator(pair.device, seed, generator)
    eos = eos_token_ids(pair.target, pair.tokenizer) if stop_at_eos else set()
    n_prompt, stats, trace, sampling = ids.shape[1], GenerationStats(), [], (temperature, top_k, top_p)
    start = time.perf_counter()
    draft_cache, target_cache = prefill(pair, ids, stats)
    while (remaining := max_new_tokens - (ids.shape[1] - n_prompt)) > 0:
        span_step = min(span, remaining - 1)  # never emit more than max_new_tokens
        if span_step == 0:  # one token left: a plain target step
            emitted = plain_target_step(pair, target_cache, ids, stats, *sampling, generator)
        else:
            trace.append(tree_step(pair, ids, draft_cache, target_cache, n_branches, span_step, sampling,
                                   generator, stats))
            emitted = trace[-1].emitted
        ids, hit_eos = append_and_roll_back(ids, emitted, eos, draft_cache, target_cache)
        if hit_eos:
            break
    return finish_result(pair, ids, n_prompt, stats, trace, start)
