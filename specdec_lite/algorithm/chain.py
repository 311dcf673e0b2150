"""The speculative decoding loop: draft K tokens, verify them in one target forward, roll back (notebook 03).

Invariant between steps (`LoopState`): `ids` = prompt + emitted tokens; the target cache holds
every token of `ids` except the last, and the draft cache holds a prefix of `ids` (it is fed the
rest next step). One step (`chain_step`):
  1. the draft proposes x_1..x_K with their distributions q_1..q_K          (draft.propose)
  2. the target scores [last token, x_1..x_K] in ONE forward -> p_1..p_{K+1}  (verification.target_logits)
  3. a rule accepts n of the K tokens and emits one more token              (verification.verify)
  4. both caches are cropped to the accepted tokens                          (LoopState.append)
So each target forward yields between 1 and K+1 tokens. `LoopState` is shared with the tree
loop (`tree.py`), which replaces steps 1-3.

What it does not do: batches, trees of drafts (see `tree.py`), or a draft whose vocabulary
differs from the target's.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from transformers import DynamicCache

from ..models.pair import ModelPair
from .draft import DraftStop, propose
from .draft_length import DraftLength, draft_length_policy
from .inputs import Prompt, Request, make_request, truncate_at_eos
from .kv_cache import cache_length, forward_new_tokens, keep_first, new_cache
from .results import EosCut, GenerationResult, GenerationStats, PlainStep, StepTrace, TraceStep
from .sampling import Sampling
from .verification import target_logits, verify

# on_step(tokens, step): the tokens a step emitted (cut after an EOS) and the step
StepCallback = Callable[[list[int], TraceStep], None]


@dataclass
class LoopState:
    """A speculative run between two steps: the ids so far, both caches, the counts and the trace."""

    pair: ModelPair
    request: Request
    ids: torch.Tensor  # [1, n] prompt + emitted tokens
    draft_cache: DynamicCache  # a prefix of ids
    target_cache: DynamicCache  # every token of ids but the last
    stats: GenerationStats = field(default_factory=GenerationStats)
    trace: list[TraceStep] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    done: bool = False  # an EOS ended the run
    on_step: StepCallback | None = None  # told each step's emitted tokens (streaming)

    @classmethod
    def prefill(cls, pair: ModelPair, request: Request, on_step: StepCallback | None = None) -> LoopState:
        """Start the clock; new caches for draft and target holding every prompt token but the last."""
        ids = request.ids
        state = cls(pair, request, ids, new_cache(pair.draft), new_cache(pair.target), on_step=on_step)
        if ids.shape[1] > 1:
            forward_new_tokens(pair.target, state.target_cache, ids[:, :-1], logits_to_keep=1)  # logits unused
            forward_new_tokens(pair.draft, state.draft_cache, ids[:, :-1], logits_to_keep=1)
            state.stats.target_forwards += 1
            state.stats.draft_forwards += 1
        return state

    @property
    def remaining(self) -> int:
        """How many tokens may still be emitted (0 once an EOS ended the run)."""
        emitted = self.ids.shape[1] - self.request.ids.shape[1]
        return 0 if self.done else self.request.max_new_tokens - emitted

    def pending_ids(self) -> torch.Tensor:
        """The tokens of `ids` not yet in the draft's cache: [1, m], m >= 1."""
        return self.ids[:, cache_length(self.draft_cache):]

    def plain_step(self) -> PlainStep:
        """One token from the target alone (when only one token is left to emit): feed the last token, sample."""
        logits = forward_new_tokens(self.pair.target, self.target_cache, self.ids[:, -1:])[-1]  # [vocab]
        self.stats.target_forwards += 1
        return PlainStep(int(self.request.sampling.next_token(logits)))

    def append(self, step: TraceStep) -> None:
        """Record `step`, append what it emitted (cut after an EOS, recorded as `EosCut`), tell `on_step`,
        and crop both caches to all of `ids` but its last token (the rejected drafts go)."""
        self.trace.append(step)
        emitted, self.done = truncate_at_eos(step.emitted, self.request.eos)
        if self.done:
            self.trace.append(EosCut(len(emitted)))
        if self.on_step is not None:
            self.on_step(emitted, step)
        self.ids = torch.cat([self.ids, torch.tensor([emitted], device=self.ids.device)], dim=1)
        keep_first(self.target_cache, self.ids.shape[1] - 1)
        keep_first(self.draft_cache, min(cache_length(self.draft_cache), self.ids.shape[1] - 1))

    def finish(self) -> GenerationResult:
        """Stop the clock and package the new tokens of `ids` as a GenerationResult."""
        self.stats.wall_time_s = time.perf_counter() - self.start
        n_prompt = self.request.ids.shape[1]
        new = self.ids[0, n_prompt:].tolist()
        self.stats.new_tokens = len(new)
        return GenerationResult(self.pair.decode(new), new, self.ids[0, :n_prompt].tolist(), self.stats, self.trace)


def step_trace(drafted: torch.Tensor, q: torch.Tensor, p: torch.Tensor, verdict) -> StepTrace:
    """drafted: [K], q: [K, vocab], p: [K+1, vocab] -> the step with p_i(x_i) and q_i(x_i) of each draft."""
    k = drafted.shape[0]
    index = drafted[:, None]
    return StepTrace(drafted.tolist(), p[:k].gather(-1, index).squeeze(-1).tolist(),
                     q.gather(-1, index).squeeze(-1).tolist(), verdict.n_accepted, verdict.next_token,
                     verdict.resampled)


def chain_step(state: LoopState, stop: DraftStop) -> StepTrace:
    """Draft up to `stop.k` tokens, verify them in ONE target forward, count; the caches still hold every draft."""
    sampling = state.request.sampling
    proposal = propose(state.pair.draft, state.draft_cache, state.pending_ids(), stop, sampling=sampling)
    logits = target_logits(state.pair.target, state.target_cache, state.ids[0, -1:], proposal.tokens)  # [K+1, vocab]
    verdict, p = verify(proposal.tokens, proposal.q, logits, sampling)
    state.stats.draft_forwards += proposal.forwards
    state.stats.target_forwards += 1
    state.stats.proposed += len(proposal.tokens)
    state.stats.accepted += verdict.n_accepted
    return step_trace(proposal.tokens, proposal.q, p, verdict)


@torch.inference_mode()
def speculative_generate(
    pair: ModelPair, prompt: Prompt, max_new_tokens: int = 64, k: DraftLength | str = 4,
    temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
    seed: int | None = 0, stop_at_eos: bool = True, generator: torch.Generator | None = None,
    min_confidence: float = 0.0, on_step: StepCallback | None = None,
) -> GenerationResult:
    """Speculative decoding of `prompt` with `pair.draft` proposing and `pair.target` verifying.

    temperature 0: the tokens equal the target's greedy tokens. temperature > 0: every token
    follows the target's (temperature/top-k/top-p transformed) distribution exactly.
    `k` is the draft length: an int, a policy such as `HeuristicK()`, or "auto" (`CostAwareK` from
    the pair's measured costs, `theory.calibrate`: seconds the first time, cached after; the demo's
    and the explorer's default). The default here stays a fixed K = 4: with "auto" the K schedule
    depends on this machine's timings, so a seeded sampled run would differ between machines. `prompt`:
    text, ids, or chat messages (see `inputs.prompt_ids`). `on_step(tokens, step)`, if given, is called
    after each step with the tokens it emitted (cut after an EOS) and the step itself (for the roles of
    its tokens): joined, those tokens are result.token_ids (streaming).
    `seed` (sampling only): an int makes the draws reproducible; None draws fresh randomness on every
    call. A `generator`, if given, is used instead of `seed`; it must be on the pair's device (ValueError).
    """
    policy = copy.copy(draft_length_policy(k, pair))
    request = make_request(pair, prompt, max_new_tokens, Sampling(temperature, top_k, top_p),
                           models=[pair.draft, pair.target], seed=seed, generator=generator, stop_at_eos=stop_at_eos)
    state = LoopState.prefill(pair, request, on_step)
    while state.remaining > 0:
        k_step = min(policy.next_k(), state.remaining - 1)  # never emit more than max_new_tokens
        if k_step == 0:  # one token left: a plain target step
            state.append(state.plain_step())
            continue
        step = chain_step(state, DraftStop(k_step, min_confidence))
        policy.update(step.n_accepted, len(step.proposed))
        state.append(step)
    return state.finish()
