"""The speculative decoding loop: draft K tokens, verify them in one target forward, roll back (notebook 03).

Invariant between steps: `ids` = prompt + emitted tokens; the target cache holds every token
of `ids` except the last, and the draft cache holds a prefix of `ids` (it is fed the rest next
step). One step:
  1. the draft proposes x_1..x_K with their distributions q_1..q_K          (draft.propose)
  2. the target scores [last token, x_1..x_K] in ONE forward -> p_1..p_{K+1}  (verification.target_logits)
  3. a rule accepts n of the K tokens and emits one more token              (verification.verify)
  4. both caches are cropped to the accepted tokens                          (kv_cache.keep_first)
So each target forward yields between 1 and K+1 tokens.

What it does not do: batches, trees of drafts (see `token_tree.py`), or a draft whose
vocabulary differs from the target's.
"""

from __future__ import annotations

import copy
import time

import torch

from .draft import propose
from .draft_length import FixedK, HeuristicK, draft_length_policy
from .inputs import Prompt, check_generation_args, eos_token_ids, make_generator, prompt_ids, truncate_at_eos
from .kv_cache import cache_length, forward_new_tokens, keep_first, new_cache
from .pair import ModelPair
from .results import GenerationResult, GenerationStats, StepTrace
from .sampling import next_token
from .verification import target_logits, verify


def prefill(pair: ModelPair, ids: torch.Tensor, stats: GenerationStats):
    """New caches for draft and target holding every prompt token but the last."""
    draft_cache, target_cache = new_cache(pair.draft), new_cache(pair.target)
    if ids.shape[1] > 1:
        forward_new_tokens(pair.target, target_cache, ids[:, :-1], logits_to_keep=1)  # logits unused
        forward_new_tokens(pair.draft, draft_cache, ids[:, :-1], logits_to_keep=1)
        stats.target_forwards += 1
        stats.draft_forwards += 1
    return draft_cache, target_cache


def append_and_roll_back(ids: torch.Tensor, emitted: list[int], eos: set[int], draft_cache, target_cache):
    """Append a step's tokens (cut after an EOS) and crop both caches to all of `ids` but its last token.

    Shared by the chain loop and the tree loop; returns (ids [1, n], whether an EOS ended the step).
    """
    emitted, hit_eos = truncate_at_eos(emitted, eos)
    ids = torch.cat([ids, torch.tensor([emitted], device=ids.device)], dim=1)
    keep_first(target_cache, ids.shape[1] - 1)  # roll back the rejected drafts
    keep_first(draft_cache, min(cache_length(draft_cache), ids.shape[1] - 1))
    return ids, hit_eos


def plain_target_step(pair: ModelPair, target_cache, ids: torch.Tensor, stats: GenerationStats,
                      temperature: float, top_k: int, top_p: float, generator: torch.Generator) -> list[int]:
    """One token from the target alone (when only one token is left to emit): feed the last token, sample."""
    logits = forward_new_tokens(pair.target, target_cache, ids[:, -1:])[-1]  # [vocab]
    stats.target_forwards += 1
    return [int(next_token(logits, temperature, top_k, top_p, generator))]


def finish_result(pair: ModelPair, ids: torch.Tensor, n_prompt: int, stats: GenerationStats, trace: list,
                  start: float) -> GenerationResult:
    """Stop the clock and package the new tokens of `ids` [1, n] as a GenerationResult."""
    stats.wall_time_s = time.perf_counter() - start
    new = ids[0, n_prompt:].tolist()
    stats.new_tokens = len(new)
    return GenerationResult(pair.decode(new), new, ids[0, :n_prompt].tolist(), stats, trace)


def step_trace(drafted, q, p, verdict) -> StepTrace:
    k = drafted.shape[0]
    index = drafted[:, None]
    return StepTrace(drafted.tolist(), p[:k].gather(-1, index).squeeze(-1).tolist(),
                     q.gather(-1, index).squeeze(-1).tolist(), verdict.n_accepted, verdict.next_token,
                     verdict.resampled)


@torch.inference_mode()
def speculative_generate(
    pair: ModelPair,
    prompt: Prompt,
    max_new_tokens: int = 64,
    k: int | FixedK | HeuristicK = 4,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = 0,
    stop_at_eos: bool = True,
    generator: torch.Generator | None = None,
    min_confidence: float = 0.0,
) -> GenerationResult:
    """Speculative decoding of `prompt` with `pair.draft` proposing and `pair.target` verifying.

    temperature 0: the tokens equal the target's greedy tokens. temperature > 0: every token
    follows the target's (temperature/top-k/top-p transformed) distribution exactly.
    `k` is the draft length: an int, or a policy such as `HeuristicK()`.
    """
    policy = copy.copy(draft_length_policy(k))
    ids = prompt_ids(pair, prompt)  # [1, n]
    check_generation_args([pair.draft, pair.target], ids.shape[1], max_new_tokens, temperature, top_k, top_p)
    generator = make_generator(pair.device, seed, generator)
    eos = eos_token_ids(pair.target, pair.tokenizer) if stop_at_eos else set()
    n_prompt, stats, trace = ids.shape[1], GenerationStats(), []
    start = time.perf_counter()
    draft_cache, target_cache = prefill(pair, ids, stats)
    while (remaining := max_new_tokens - (ids.shape[1] - n_prompt)) > 0:
        k_step = min(policy.next_k(), remaining - 1)  # never emit more than max_new_tokens
        if k_step == 0:  # one token left: a plain target step
            emitted = plain_target_step(pair, target_cache, ids, stats, temperature, top_k, top_p, generator)
        else:
            proposal = propose(pair.draft, draft_cache, ids[:, cache_length(draft_cache):], k_step,
                               temperature, top_k, top_p, generator, min_confidence)
            logits = target_logits(pair.target, target_cache, ids[0, -1:], proposal.tokens)  # [K+1, vocab]
            verdict, p = verify(proposal.tokens, proposal.q, logits, temperature, top_k, top_p, generator)
            stats.draft_forwards += proposal.forwards
            stats.target_forwards += 1
            stats.proposed += len(proposal.tokens)
            stats.accepted += verdict.n_accepted
            policy.update(verdict.n_accepted, len(proposal.tokens))
            trace.append(step_trace(proposal.tokens, proposal.q, p, verdict))
            emitted = trace[-1].emitted
        ids, hit_eos = append_and_roll_back(ids, emitted, eos, draft_cache, target_cache)
        if hit_eos:
            break
    return finish_result(pair, ids, n_prompt, stats, trace, start)
