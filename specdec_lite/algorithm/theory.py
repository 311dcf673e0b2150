"""How fast speculative decoding can be: α, c and the expected speed-up (notebook 05; measured in 06).

Notation (Leviathan et al. 2023): p = target distribution, q = draft distribution, K drafted
tokens per step, c = (time of one draft token step) / (time of one target token step).

  α = E[Σ_x min(p(x), q(x))]                       chance that one drafted token is accepted
  E[tokens per target forward] = (1 − α^(K+1)) / (1 − α)
  speed-up = (1 − α^(K+1)) / ((1 − α)(K c + 1))

The paper assumes that scoring K+1 tokens in one target forward costs the same as scoring one.
On a GPU that holds for small K; on a CPU it does not (a (K+1)-token bf16 forward here costs ~3x
a 1-token one). `predicted_speedup(..., verify_cost=v)` replaces the 1 in the denominator by
v = t_target(K+1 tokens) / t_target(1 token), which `measure_verify_cost` measures.

What it does not do: model acceptance that varies along the text (α is one number; `run_theory.py`
replays greedy acceptance as it fell, and adds the prompt and the end of a finite run), trees of drafts,
or the per-step Python overhead of the loop itself.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import PreTrainedModel

from ..models.int4_draft import is_int4
from ..models.offline_pair import cache_dir, write_file_atomically
from ..models.pair import ModelPair, weight_bytes
from ..models.precision import cpu_name
from .autoregressive import autoregressive_generate
from .inputs import Prompt, context_window, prompt_ids
from .kv_cache import forward_new_tokens, keep_first, new_cache
from .results import StepTrace, TraceStep, ratio
from .sampling import logits_to_probs


def acceptance_per_position(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ_x min(p(x), q(x)) for each position: p, q [..., vocab] -> [...]."""
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    return torch.minimum(p.float(), q.float()).sum(-1)


def alpha(p: torch.Tensor, q: torch.Tensor) -> float:
    """α = E[Σ_x min(p(x), q(x))], the mean over the positions of p, q [n, vocab] (or [vocab])."""
    return float(acceptance_per_position(p, q).mean())


def _check_alpha_k(alpha_: float, k: int) -> None:
    if not 0 <= alpha_ <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha_}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def expected_tokens_per_forward(alpha_: float, k: int) -> float:
    """(1 − α^(K+1)) / (1 − α): tokens emitted per target forward (K + 1 when α = 1)."""
    _check_alpha_k(alpha_, k)
    if alpha_ == 1:
        return float(k + 1)
    return (1 - alpha_ ** (k + 1)) / (1 - alpha_)


def predicted_speedup(alpha_: float, k: int, c: float, verify_cost: float = 1.0) -> float:
    """Expected speed-up over plain target decoding: tokens per step / cost of a step.

    A step costs K draft steps (K c) plus one target forward over K+1 tokens (`verify_cost`,
    in units of a 1-token target forward; the paper's value is 1).
    """
    if c < 0:
        raise ValueError(f"c must be >= 0, got {c}")
    if verify_cost <= 0:
        raise ValueError(f"verify_cost must be > 0, got {verify_cost}")
    return expected_tokens_per_forward(alpha_, k) / (k * c + verify_cost)


def best_k(alpha_: float, c: float, k_max: int = 16, verify_costs: Sequence[float] | None = None) -> int:
    """The K in 1..k_max with the highest predicted speed-up.

    `verify_costs[K-1]` is the cost of a (K+1)-token target forward (default: 1 for every K).
    """
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    if verify_costs is not None and len(verify_costs) < k_max:
        raise ValueError(f"verify_costs must have k_max={k_max} entries, got {len(verify_costs)}")
    costs = verify_costs if verify_costs is not None else [1.0] * k_max
    return max(range(1, k_max + 1), key=lambda k: predicted_speedup(alpha_, k, c, costs[k - 1]))


def break_even_alpha(k: int, c: float, verify_cost: float = 1.0, tolerance: float = 1e-9) -> float:
    """The smallest α at which K drafted tokens per step stop losing: predicted_speedup(α, K, c, v) = 1.

    The speed-up grows with α, so bisection finds it. Returns 0.0 when speculation wins even at α = 0
    (never, for c >= 0 and v >= 1) and 1.0 when it loses even at α = 1 (K + 1 < K c + v).
    For K = 1 the answer is c + v - 1 (notebook 05, exercise 4).
    """
    if predicted_speedup(0.0, k, c, verify_cost) >= 1:
        return 0.0
    if predicted_speedup(1.0, k, c, verify_cost) <= 1:
        return 1.0
    low, high = 0.0, 1.0
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (middle, high) if predicted_speedup(middle, k, c, verify_cost) < 1 else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class StepSummary:
    """What the drafted steps of one run did, counted as the formulas count (notebook 06).

    Only `StepTrace` steps count: the prefill and a last plain target step are not steps of the
    formula, and the drafts after a step's first rejection were never tested.
    """

    steps: int
    drafted: int  # Σ K over the steps (K can shrink near the end of a run)
    tested: int  # drafts the target judged: up to and including the first rejection
    accepted: int
    emitted: int  # accepted drafts + one correction or bonus per step
    tokens_per_step: float  # emitted / steps
    mean_k: float  # drafted / steps
    tested_acceptance: float  # accepted / tested: the estimate of α the formula's independent-acceptance model uses


def step_summary(trace: Sequence[TraceStep]) -> StepSummary:
    """Count the drafted (chain) steps of a speculative run's trace."""
    steps = [step for step in trace if isinstance(step, StepTrace)]
    drafted = sum(len(step.proposed) for step in steps)
    tested = sum(step.n_accepted + (step.n_accepted < len(step.proposed)) for step in steps)
    accepted = sum(step.n_accepted for step in steps)
    emitted = accepted + len(steps)  # one correction or bonus per step
    return StepSummary(len(steps), drafted, tested, accepted, emitted, tokens_per_step=ratio(emitted, len(steps)),
                       mean_k=ratio(drafted, len(steps)), tested_acceptance=ratio(accepted, tested))


@torch.inference_mode()
def timed_rounds(runs: Sequence[tuple[PreTrainedModel, int]], context_length: int | Sequence[int],
                 repeats: int = 5) -> list[list[float]]:
    """Seconds of one forward of each (model, n_tokens) in `runs` over n_tokens new tokens after `context_length`
    cached ones (one number for every run, or one per run), for each of `repeats` rounds: [round][run]. The runs
    take turns, one forward each per round, so that a burst of background load (common on a shared machine)
    slows one round, not one run's whole series."""
    contexts = [context_length] * len(runs) if isinstance(context_length, int) else list(context_length)
    if len(contexts) != len(runs) or min(contexts) < 1 or repeats < 1 or any(n < 1 for _, n in runs):
        raise ValueError(f"need one context_length per run (or one for all), context_length, n_tokens and repeats "
                         f">= 1, got {context_length}, {[n for _, n in runs]}, {repeats}")
    generator = torch.Generator().manual_seed(0)
    vocab = min(model.get_input_embeddings().num_embeddings for model, _ in runs)  # the config may count other rows
    ids = torch.randint(vocab, (1, max(contexts) + max(n for _, n in runs)), generator=generator)
    caches = [new_cache(model) for model, _ in runs]
    for (model, _), cache, context in zip(runs, caches, contexts):
        forward_new_tokens(model, cache, ids[:, :context].to(model.device), logits_to_keep=1)
    rounds = []
    for _ in range(repeats + 1):  # the first round warms up
        seconds = []
        for (model, n_tokens), cache, context in zip(runs, caches, contexts):
            synchronize(model.device)
            start = time.perf_counter()
            forward_new_tokens(model, cache, ids[:, context:context + n_tokens].to(model.device))
            synchronize(model.device)  # a GPU runs asynchronously: wait for the kernels, not only their launch
            seconds.append(time.perf_counter() - start)
            keep_first(cache, context)
        rounds.append(seconds)
    return rounds[1:]


def forward_times(models: Sequence[PreTrainedModel], context_length: int, n_tokens: int = 1,
                  repeats: int = 5) -> list[float]:
    """Median seconds of one forward of each model over `n_tokens` new tokens after `context_length` cached
    ones, the models taking turns (`timed_rounds`)."""
    rounds = timed_rounds([(model, n_tokens) for model in models], context_length, repeats)
    return [statistics.median(column) for column in zip(*rounds)]


def forward_time(model: PreTrainedModel, context_length: int, n_tokens: int = 1, repeats: int = 5) -> float:
    """Median seconds of one forward over `n_tokens` new tokens after `context_length` cached ones."""
    return forward_times([model], context_length, n_tokens, repeats)[0]


def synchronize(device: torch.device) -> None:
    """Wait until every kernel queued on `device` has finished (CUDA, MPS); nothing to do on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_c(pair: ModelPair, context_lengths: Sequence[int] = (64, 256), repeats: int = 5) -> float:
    """c = draft one-token step time / target one-token step time, the median over `context_lengths`.

    The two models take turns forward by forward (`forward_times`), so that background load affects both alike.
    """
    ratios = []
    for n in context_lengths:
        draft, target = forward_times([pair.draft, pair.target], n, 1, repeats)
        ratios.append(draft / target)
    return statistics.median(ratios)


def measure_verify_cost(model: PreTrainedModel, ks: Sequence[int], context_length: int = 128,
                        repeats: int = 5) -> dict[int, float]:
    """{K: t(forward over K+1 tokens) / t(forward over 1 token)} at `context_length`: each round times a
    1-token forward and a (K+1)-token forward for every K in turn, and v_K is the median over rounds of
    its time over that round's 1-token time."""
    rounds = timed_rounds([(model, 1)] + [(model, k + 1) for k in ks], context_length, repeats)
    return {k: statistics.median(seconds[i + 1] / seconds[0] for seconds in rounds) for i, k in enumerate(ks)}


def measure_prefill(pair: ModelPair, prompt_length: int, repeats: int = 3) -> tuple[float, float]:
    """(target, draft) time of feeding a `prompt_length`-token prompt (all of it but the first token, after
    that one), each in units of a 1-token target forward after that prompt: the median of the per-round
    ratios, the three forwards taking turns (`timed_rounds`)."""
    if prompt_length < 2:
        raise ValueError(f"prompt_length must be >= 2, got {prompt_length}")
    runs = [(pair.target, 1), (pair.target, prompt_length - 1), (pair.draft, prompt_length - 1)]
    rounds = timed_rounds(runs, [prompt_length, 1, 1], repeats)
    return tuple(statistics.median(seconds[i] / seconds[0] for seconds in rounds) for i in (1, 2))


def c_floor(pair: ModelPair) -> float:
    """weight_bytes(draft) / weight_bytes(target): c when both one-token forwards do nothing but read their
    weights at the same memory bandwidth (memory-bound, no work around the matrix products). A measured c
    above it is that work; no trimming of it takes c below this floor, only a draft with fewer bytes."""
    return weight_bytes(pair.draft) / weight_bytes(pair.target)


@dataclass(frozen=True)
class Costs:
    """What one speculative step costs on this machine, in one-token target forwards."""

    c: float  # draft one-token step / target one-token step
    verify_costs: tuple[float, ...]  # verify_costs[K-1] = v_K = t(K+1 tokens) / t(1 token), K = 1..k_max


CALIBRATION_FILE = "calibration.json"
COSTS_VERSION = "2"  # raised when the models' forward code changes what a forward costs (2: int8_layer.py)


def calibration_key(pair: ModelPair) -> str | None:
    """What a calibration depends on: both models, dtype (and an int4 draft), device, CPU, threads, torch, the
    forward code (`COSTS_VERSION`); None for unnamed models."""
    names = [model.config.name_or_path for model in (pair.draft, pair.target)]
    if not all(names):
        return None
    draft_format = ["int4 draft"] if is_int4(pair.draft) else []
    return "|".join([*names, str(pair.dtype), *draft_format, str(pair.device), cpu_name(),
                     str(torch.get_num_threads()), torch.__version__, f"costs v{COSTS_VERSION}"])


def calibration_path() -> Path:
    """The file `calibrate` keeps its measurements in: `cache_dir()/calibration.json`."""
    return cache_dir() / CALIBRATION_FILE


def read_calibrations(path: Path) -> dict:
    """The calibrations saved in `path` ({} if there is none, or if it cannot be read: then with a warning)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        warnings.warn(f"{path} is not valid JSON (a write was interrupted?): measuring again, and replacing it")
        return {}


def calibrate(pair: ModelPair, k_max: int = 8, context_length: int = 128, repeats: int = 3,
              refresh: bool = False) -> Costs:
    """Measure c and v_1..v_{k_max} for `pair` (a few seconds), cached on disk per machine and dtype.

    The cache is `calibration_path()`; `refresh=True` measures again, and so does a k_max beyond the
    cached costs. Models without a name (built in memory) are measured every time. The measurement is
    short: one taken while other work loads the machine is cached all the same (refresh=True on an
    idle machine replaces it).
    """
    key = calibration_key(pair)
    path = calibration_path()
    known = read_calibrations(path)
    if key in known and not refresh and len(known[key]["verify_costs"]) >= k_max:
        return Costs(known[key]["c"], tuple(known[key]["verify_costs"][:k_max]))
    window = min(context_window(pair.draft), context_window(pair.target))
    context_length = max(1, min(context_length, window - k_max - 1))  # small models have short windows
    costs = Costs(measure_c(pair, (context_length,), repeats),
                  tuple(measure_verify_cost(pair.target, range(1, k_max + 1), context_length, repeats).values()))
    if key is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        known[key] = asdict(costs)
        text = json.dumps(known, indent=1)
        write_file_atomically(path, lambda tmp: tmp.write_text(text))  # never half a file, even if interrupted
    return costs


@torch.inference_mode()
def continuation_logits(pair: ModelPair, ids: torch.Tensor,
                        continuation: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's and the draft's logits at each position of `continuation` after the prompt `ids` [1, n].

    One forward of each model over prompt + continuation (teacher forcing); returns two [m, vocab] tensors,
    row i being the logits that predict continuation[i].
    """
    full = torch.cat([ids, torch.tensor([list(continuation)], device=ids.device)], dim=1)  # [1, n + m]
    window = slice(ids.shape[1] - 1, full.shape[1] - 1)  # the positions that predict the continuation
    target = forward_new_tokens(pair.target, new_cache(pair.target), full[:, :-1])[window]  # [m, vocab]
    draft = forward_new_tokens(pair.draft, new_cache(pair.draft), full[:, :-1])[window]  # [m, vocab]
    return target, draft


def continuation_acceptance(pair: ModelPair, ids: torch.Tensor, continuation: Sequence[int],
                            temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Σ_x min(p, q) at each position of `continuation` after the prompt `ids` [1, n]: [m].

    p and q come from `continuation_logits` through the sampling transform (temperature 0: one-hot argmax).
    """
    target, draft = continuation_logits(pair, ids, continuation)
    return acceptance_per_position(logits_to_probs(target, temperature, top_k, top_p),
                                   logits_to_probs(draft, temperature, top_k, top_p))


def position_acceptance(pair: ModelPair, prompt: Prompt, max_new_tokens: int = 32,
                        temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Σ_x min(p, q) at each position of the target's own continuation of `prompt`: [n_new].

    The target generates the continuation (greedy, or sampled with `seed`), then
    `continuation_acceptance` scores it.
    """
    ids = prompt_ids(pair, prompt)  # [1, n]
    continuation = autoregressive_generate(pair, ids, max_new_tokens, temperature, top_k, top_p, seed).token_ids
    return continuation_acceptance(pair, ids, continuation, temperature, top_k, top_p)


def measure_alpha(pair: ModelPair, prompts: Sequence[Prompt], max_new_tokens: int = 32,
                  temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> float:
    """α over `prompts`: the mean of Σ_x min(p, q) over every generated position of every prompt.

    At temperature 0, p and q are one-hot and α is the share of positions where the draft's
    argmax equals the target's.
    """
    if not prompts:
        raise ValueError("prompts must not be empty")
    per_position = [position_acceptance(pair, prompt, max_new_tokens, temperature, top_k, top_p, seed)
                    for prompt in prompts]
    return float(torch.cat(per_position).mean())
