"""`python -m specdec_lite quality`: what int8 (or any dtype) costs the target in quality, measured (notebook 06).

For each prompt (the bench's, in the chat template), the target in the reference dtype (default
bfloat16) and in the candidate dtype (default int8) each decode greedily. Reported per prompt:
  - first differing position: the first new token where the two greedy continuations differ
    (none = identical over max_new_tokens);
  - teacher-forced top-1 agreement: the share of positions of the REFERENCE continuation where the
    candidate's argmax equals the reference's, both fed the same reference tokens (one forward each).
Only the targets are loaded (the draft does not change what is emitted in greedy decoding).

What it does not do: perplexity on a corpus, sampled outputs, or task accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from ..algorithm.kv_cache import forward_new_tokens, new_cache
from ..models.offline_pair import TARGET_CHUNKS, offline_model_dir
from ..models.pair import DTYPE_CHOICES, load_model, resolve_dtype
from ..models.precision import cpu_name
from .bench import chat_text, select_prompts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None, help="target model folder or hub id (default: the offline pair's)")
    parser.add_argument("--dtype", default="int8", choices=DTYPE_CHOICES, help="the dtype whose quality is measured")
    parser.add_argument("--reference", default="bfloat16", choices=DTYPE_CHOICES, help="the dtype it is compared with")
    parser.add_argument("--prompts", default="all", help="as in bench: 'all', categories, names or a .json file")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per greedy continuation")
    parser.add_argument("--out", default="bench_results", help="folder for quality.json")


@torch.inference_mode()
def greedy(model, ids: torch.Tensor, max_new_tokens: int) -> list[int]:
    """The model's greedy continuation of `ids` [1, n], without stopping at EOS (so lengths match)."""
    cache, pending, new = new_cache(model), ids, []
    for _ in range(max_new_tokens):
        new.append(int(forward_new_tokens(model, cache, pending, logits_to_keep=1)[-1].argmax()))
        pending = torch.tensor([[new[-1]]])
    return new


@torch.inference_mode()
def teacher_forced_argmax(model, ids: torch.Tensor, continuation: list[int]) -> torch.Tensor:
    """The model's argmax at each position of `continuation` after `ids` [1, n], in one forward: [m]."""
    full = torch.cat([ids, torch.tensor([continuation])], dim=1)[:, :-1]
    return forward_new_tokens(model, new_cache(model), full)[ids.shape[1] - 1:].argmax(-1)


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first index where `a` and `b` differ, None if they agree over their common length."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def compare(reference, candidate, prompt_ids: torch.Tensor, max_new_tokens: int) -> dict:
    """First differing greedy position and teacher-forced top-1 agreement of `candidate` against `reference`."""
    ref = greedy(reference, prompt_ids, max_new_tokens)
    cand = greedy(candidate, prompt_ids, max_new_tokens)
    agree = teacher_forced_argmax(candidate, prompt_ids, ref) == torch.tensor(ref)
    return dict(first_difference=first_difference(ref, cand), top1_agreement=round(float(agree.float().mean()), 4))


def run(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1:
        print(f"error: --max-new-tokens must be >= 1, got {args.max_new_tokens}", file=sys.stderr)
        return 2
    source = args.target or offline_model_dir(TARGET_CHUNKS)
    device = torch.device("cpu")
    reference = load_model(source, resolve_dtype(args.reference, device, verbose=True), device)
    candidate = load_model(source, resolve_dtype(args.dtype, device, verbose=True), device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    rows = []
    for prompt in tqdm(select_prompts(args.prompts), desc="quality"):
        ids = tokenizer(chat_text(tokenizer, prompt["text"]), return_tensors="pt").input_ids
        rows.append(dict(prompt=prompt["name"], category=prompt["category"],
                         **compare(reference, candidate, ids, args.max_new_tokens)))
    print(f"\n{args.dtype} target vs {args.reference} target, greedy, {args.max_new_tokens} new tokens ({cpu_name()})")
    print(f"{'prompt':<16}{'category':<10}{'first difference':>18}{'top-1 agreement':>17}")
    for row in rows:
        first = "none" if row["first_difference"] is None else str(row["first_difference"])
        print(f"{row['prompt']:<16}{row['category']:<10}{first:>18}{row['top1_agreement']:>17.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(dict(dtype=args.dtype, reference=args.reference, cpu=cpu_name(),
                                                      max_new_tokens=args.max_new_tokens, rows=rows), indent=1))
    print(f"wrote {out / 'quality.json'}")
    return 0
