"""`python -m specdec_lite bench`: plain, speculative and Hugging Face decoding side by side (notebook 06).

Every method decodes greedily the same prompts (shipped in `prompts.json`: code, prose and
question answering, wrapped in the tokenizer's chat template when it has one) with the same
max_new_tokens. After a warm-up, the methods run interleaved (the order rotates between runs, so
background load spreads over all of them) and repeated; the table gives medians per prompt,
summed per category. Forward hooks on both models count the target's forwards and time what each
model's forwards take (`ForwardClock`), which works for Hugging Face's `generate` too: the rest of
a run's time is the loop around them (sampling and acceptance rules, masks built outside the
model, cache rollback and compaction, Python). Unless --no-theory, it also measures c, the cost of a
(K+1)-token target forward and α (on the plain continuations), and sets the formula's predicted
speed-up next to the measured one for each fixed K.

Methods: plain (target alone); k2 k3 k4 k6 k8 (chain, fixed K); adaptive (HeuristicK);
confidence (K up to 8, drafting stops below draft probability 0.4); auto (CostAwareK: the K
the formula picks from the pair's measured c, v_K and the running α); auto_conf (auto with the
0.4 confidence stop); tree (tree_generate, 3 branches of depth 4); tree_auto (the dynamic tree of
at most 8 nodes, 8 deep, that drafts and verifies only what the pair's measured costs say pays); hf_assisted
(`target.generate(assistant_model=draft)`, its defaults); hf_lookup (prompt-lookup decoding, 10
tokens). For an equal-cost comparison at B verified nodes per step (B = 4, 8, 12, 16): kB (a
chain, where B <= 8), chainsB (B / 4 chains of depth 4) and treeB (the dynamic tree of B nodes, at
most 8 deep). Our methods also report draft forwards per step; tree methods count their accepted
tokens by sibling rank (the draft's 1st, 2nd, 3rd ... guess at the node; JSON `accepted_by_rank`).
A method name may end in @DTYPE (e.g. plain@bfloat16): that method then runs on a second pair loaded
in DTYPE, side by side with the others; @int4draft loads the int8 pair with an int4 draft
(`int4_draft.py`).

The JSON records the dtype of every run and the machine (CPU name and flags, threads, torch), so
results from two machines can be told apart. On a GPU the clock is read after synchronising.

What it does not do: sampling (greedy only, so every method should emit the same tokens; the
`same` column says whether it did), or batches.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..algorithm.autoregressive import autoregressive_generate
from ..algorithm.chain import speculative_generate
from ..algorithm.draft_length import HeuristicK
from ..algorithm.results import GenerationResult, StepTrace, TreeStepTrace, accepted_by_sibling_rank
from ..algorithm.theory import synchronize
from ..algorithm.tree import tree_generate
from ..models.int4_draft import is_int4
from ..models.pair import DTYPE_CHOICES, ModelPair, load_pair
from ..models.precision import cpu_flags, cpu_name
from . import bench_report

FIXED_KS = (2, 3, 4, 6, 8)
NODE_BUDGETS = (4, 8, 12, 16)
ALL_METHODS = ("plain", *(f"k{k}" for k in FIXED_KS), "adaptive", "confidence", "auto", "auto_conf", "tree",
               "tree_auto", "hf_assisted", "hf_lookup", *(f"chains{b}" for b in NODE_BUDGETS),
               *(f"tree{b}" for b in NODE_BUDGETS))
FULL = dict(prompts="all", repeats=3, max_new_tokens=64, methods=",".join(ALL_METHODS))
QUICK = dict(prompts="fibonacci,lighthouse", repeats=1, max_new_tokens=48, methods="plain,k4,k6,adaptive,hf_assisted")
CONFIDENCE = 0.4  # the same threshold as Hugging Face's assistant_confidence_threshold default
WARMUP_TOKENS = 4

# a method: (pair, prompt ids [1, n], max_new_tokens) -> (new token ids, its GenerationResult or None)
Method = Callable[[ModelPair, torch.Tensor, int], tuple[list[int], GenerationResult | None]]


@dataclass
class Run:
    method: str
    dtype: str  # the pair's dtype: int8, bfloat16, float32, ... (int8+int4draft: `pair_format`)
    prompt: str
    category: str
    repeat: int
    new_tokens: int
    seconds: float
    target_forwards: int
    proposed: int | None
    accepted: int | None
    token_ids: list[int]
    draft_forwards: int | None  # after the prompt's prefill
    drafted_steps: int | None  # steps that drafted (chain or tree)
    accepted_by_rank: list[int] | None = None  # tree methods: accepted tokens that were the draft's 1st, 2nd, ... guess
    target_seconds: float = 0.0  # inside the target's forwards (its prefill included)
    draft_seconds: float = 0.0  # inside the draft's forwards (its prefill included)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draft", default=None, help="draft model folder or hub id (default: the offline pair)")
    parser.add_argument("--target", default=None, help="target model folder or hub id (default: the offline pair)")
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                        help="model dtype (auto: the device's fastest format, int8 on an x86 CPU)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--prompts", default=None, help="'all', comma-separated categories (code, prose, qa) or "
                        f"prompt names, or a JSON file like prompts.json (default: {FULL['prompts']})")
    parser.add_argument("--repeats", type=int, default=None, help=f"runs per method and prompt (default: {FULL['repeats']})")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"tokens to generate per run (default: {FULL['max_new_tokens']})")
    parser.add_argument("--methods", default=None, help=f"comma-separated subset of {','.join(ALL_METHODS)}; "
                        "NAME@DTYPE runs a method on a second pair in DTYPE (e.g. plain@bfloat16; "
                        "k4@int4draft: int8 with an int4 draft)")
    parser.add_argument("--out", default="bench_results", help="folder for bench.json and bench.png")
    parser.add_argument("--quick", action="store_true", help=f"a few minutes: {QUICK}")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is steadier on a busy machine)")
    parser.add_argument("--no-theory", action="store_true", help="skip measuring c, the verification cost and α")


def resolve_settings(args: argparse.Namespace) -> dict:
    """Explicit options win; otherwise the --quick preset or the full defaults. ValueError for bad values."""
    preset = QUICK if args.quick else FULL
    settings = {key: getattr(args, key) if getattr(args, key) is not None else value for key, value in preset.items()}
    if settings["repeats"] < 1:
        raise ValueError(f"--repeats must be >= 1, got {settings['repeats']}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if settings["max_new_tokens"] < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {settings['max_new_tokens']}")
    settings["methods"] = settings["methods"].split(",")
    unknown = [m for m in settings["methods"] if split_dtype(m, "auto")[0] not in ALL_METHODS
               or split_dtype(m, "auto")[1] not in PAIR_FORMATS]
    if unknown:
        raise ValueError(f"--methods must be a subset of {','.join(ALL_METHODS)}, each optionally with @DTYPE "
                         f"(DTYPE in {tuple(PAIR_FORMATS)}), got unknown {unknown}")
    return settings


def select_prompts(spec: str) -> list[dict]:
    """Prompts ({name, category, text}) by category or name from prompts.json, or all of a JSON file."""
    if spec.endswith(".json"):
        return json.loads(Path(spec).read_text())
    shipped = json.loads(importlib.resources.files("specdec_lite.tools").joinpath("prompts.json").read_text())
    if spec == "all":
        return shipped
    wanted = set(spec.split(","))
    chosen = [p for p in shipped if p["category"] in wanted or p["name"] in wanted]
    if not chosen:
        known = sorted({p["category"] for p in shipped} | {p["name"] for p in shipped})
        raise ValueError(f"--prompts must be 'all', a .json file, or among {known}; got {spec!r}")
    return chosen


def chat_text(tokenizer, text: str) -> str:
    """`text` as a user turn of the tokenizer's chat template when it has one, else as it is."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return text


def encode_prompt(pair: ModelPair, text: str) -> torch.Tensor:
    """The prompt as a user turn of the chat template when the tokenizer has one, else as it is: [1, n]."""
    return pair.encode(chat_text(pair.tokenizer, text))


def ours(**options) -> Method:
    def method(pair: ModelPair, ids: torch.Tensor, max_new_tokens: int):
        result = speculative_generate(pair, ids, max_new_tokens, **options)
        return result.token_ids, result
    return method


def plain(pair: ModelPair, ids: torch.Tensor, max_new_tokens: int):
    return autoregressive_generate(pair, ids, max_new_tokens).token_ids, None


def hugging_face(**options) -> Method:
    def method(pair: ModelPair, ids: torch.Tensor, max_new_tokens: int):
        out = pair.target.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=pair.tokenizer.pad_token_id, **options)
        return out[0, ids.shape[1]:].tolist(), None
    return method


def tree(**options) -> Method:
    def method(pair: ModelPair, ids: torch.Tensor, max_new_tokens: int):
        result = tree_generate(pair, ids, max_new_tokens, **options)
        return result.token_ids, result
    return method


def method_table(pair: ModelPair) -> dict[str, Method]:
    """Every method by its base name (without @DTYPE), bound to what it needs of `pair`."""
    table = {"plain": plain, "adaptive": ours(k=HeuristicK()), "tree": tree(n_branches=3, depth=4),
             "tree_auto": tree(shape="auto", n_nodes=8, depth=8),
             "confidence": ours(k=8, min_confidence=CONFIDENCE),
             "auto": ours(k="auto"), "auto_conf": ours(k="auto", min_confidence=CONFIDENCE),
             "hf_assisted": hugging_face(assistant_model=pair.draft),
             "hf_lookup": hugging_face(prompt_lookup_num_tokens=10)}
    table |= {f"k{k}": ours(k=k) for k in FIXED_KS}
    table |= {f"chains{b}": tree(n_branches=b // 4, depth=4) for b in NODE_BUDGETS}
    return table | {f"tree{b}": tree(shape="dynamic", n_nodes=b, depth=min(b, 8)) for b in NODE_BUDGETS}


PAIR_FORMATS = {**{dtype: dict(dtype=dtype) for dtype in DTYPE_CHOICES},
                "int4draft": dict(dtype="int8", int4_draft=True)}  # @NAME -> load_pair's options


def pair_format(pair: ModelPair) -> str:
    """The pair's dtype as the JSON records it: "int8", "bfloat16", ..., "int8+int4draft" for an int4 draft."""
    return str(pair.dtype).removeprefix("torch.") + ("+int4draft" if is_int4(pair.draft) else "")


def split_dtype(name: str, default: str) -> tuple[str, str]:
    """'k4@bfloat16' -> ('k4', 'bfloat16'); 'k4' -> ('k4', default)."""
    base, _, dtype = name.partition("@")
    return base, dtype or default


def build_methods(names: list[str], pairs: dict[str, ModelPair], default_dtype: str) -> dict[str, tuple[Method, ModelPair]]:
    """Each of `names` as (method, the pair it runs on): the pair of its @DTYPE, else the default one."""
    chosen = {}
    for name in names:
        base, dtype = split_dtype(name, default_dtype)
        chosen[name] = (method_table(pairs[dtype])[base], pairs[dtype])
    return chosen


def speculative_counts(result: GenerationResult | None, n_prompt: int) -> tuple[int | None, ...]:
    """(proposed, accepted, draft forwards after the prompt's prefill, steps that drafted); Nones for other methods."""
    if result is None:
        return None, None, None, None
    stats = result.stats
    steps = sum(isinstance(step, (StepTrace, TreeStepTrace)) for step in result.trace)
    return stats.proposed, stats.accepted, stats.draft_forwards - (n_prompt > 1), steps


def sibling_ranks(result: GenerationResult | None) -> list[int] | None:
    """Tree runs: counts[r] = accepted tokens that were the draft's (r+1)-th guess at their node; else None."""
    if result is None or not any(isinstance(step, TreeStepTrace) for step in result.trace):
        return None
    return accepted_by_sibling_rank(result.trace)


class ForwardClock:
    """How many times a model's forward ran and the seconds spent inside it, by forward hooks (on a GPU, read
    after synchronising). Use it as a context manager: the hooks go when it exits. It does not see a forward
    called as `model.forward(...)`, which skips hooks (every caller here calls `model(...)`)."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self.calls, self.seconds, self._start = 0, 0.0, 0.0

    def __enter__(self) -> ForwardClock:
        self._hooks = [self.model.register_forward_pre_hook(self._enter),
                       self.model.register_forward_hook(self._exit)]
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()

    def _enter(self, *_) -> None:
        synchronize(self.device)
        self._start = time.perf_counter()

    def _exit(self, *_) -> None:
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._start
        self.calls += 1


def timed(method: Method, pair: ModelPair, ids: torch.Tensor, max_new_tokens: int):
    """Run one method: (tokens, result, wall seconds, the target's ForwardClock, the draft's ForwardClock). A pair
    whose draft is its target (one model object) counts every forward on both clocks."""
    with ForwardClock(pair.target, pair.device) as target, ForwardClock(pair.draft, pair.device) as draft:
        synchronize(pair.device)
        start = time.perf_counter()
        tokens, result = method(pair, ids, max_new_tokens)
        synchronize(pair.device)  # a GPU runs asynchronously: count the kernels' time, not their launch
        seconds = time.perf_counter() - start
    return tokens, result, seconds, target, draft


def run_all(methods: dict[str, tuple[Method, ModelPair]], prompts: list[dict], repeats: int,
            max_new_tokens: int) -> list[Run]:
    """Warm up, then every method on every prompt `repeats` times, in a rotating order."""
    names = list(methods)
    encoded = [encode_prompt(methods[names[0]][1], p["text"]) for p in prompts]  # the pairs share a tokenizer
    for name in tqdm(names, desc="warm-up", leave=False):
        method, pair = methods[name]
        method(pair, encoded[0], min(WARMUP_TOKENS, max_new_tokens))
    runs = []
    with tqdm(total=repeats * len(prompts) * len(names), desc="bench") as progress:
        for repeat in range(repeats):
            for index, (prompt, ids) in enumerate(zip(prompts, encoded)):
                shift = (repeat + index) % len(names)
                for name in names[shift:] + names[:shift]:
                    method, pair = methods[name]
                    tokens, result, seconds, target, draft = timed(method, pair, ids, max_new_tokens)
                    proposed, accepted, draft_forwards, steps = speculative_counts(result, ids.shape[1])
                    runs.append(Run(name, pair_format(pair), prompt["name"], prompt["category"],
                                    repeat, len(tokens), seconds, target.calls, proposed, accepted, tokens,
                                    draft_forwards, steps, sibling_ranks(result), target.seconds, draft.seconds))
                    progress.update()
    return runs


def compare_methods(methods: dict[str, tuple[Method, ModelPair]], ids: torch.Tensor, max_new_tokens: int,
                    warmup_tokens: int = 2) -> list[dict]:
    """One timed run of each method on the prompt `ids` [1, n] (after a short warm-up each), for a notebook table.

    Rows: method, new tokens, target forwards (prompt prefill included), tokens per target forward, seconds,
    tokens/s, ms per token inside the target's forwards, the draft's and the rest (`ms_per_token`), and whether
    the tokens equal the FIRST method's (put plain decoding first). Notebook 07 uses it.
    """
    rows, first = [], None
    for name, (method, pair) in methods.items():
        method(pair, ids, warmup_tokens)
        tokens, _, seconds, target, draft = timed(method, pair, ids, max_new_tokens)
        first = tokens if first is None else first
        rows.append(dict(method=name, tokens=len(tokens), target_forwards=target.calls,
                         tokens_per_forward=len(tokens) / target.calls, seconds=seconds,
                         tokens_per_s=len(tokens) / seconds, same_as_first=tokens == first,
                         ms_per_token=bench_report.ms_per_token(len(tokens), seconds, target.seconds, draft.seconds)))
    return rows


def run(args: argparse.Namespace) -> int:
    """Load the pair, run the methods, print and write the report; 2 (one line on stderr) on a bad option."""
    try:
        settings = resolve_settings(args)
        prompts = select_prompts(settings["prompts"])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dtypes = dict.fromkeys([args.dtype] + [split_dtype(name, args.dtype)[1] for name in settings["methods"]])
    pairs = {dtype: load_pair(draft=args.draft, target=args.target, device=args.device, **PAIR_FORMATS[dtype])
             for dtype in dtypes}
    pair = pairs[args.dtype]
    methods = build_methods(settings["methods"], pairs, args.dtype)
    runs = run_all(methods, prompts, settings["repeats"], settings["max_new_tokens"])
    summary = bench_report.summarize(runs)
    bench_report.print_summary(summary)
    report = None
    if not args.no_theory and "plain" in methods:
        encoded = {p["name"]: encode_prompt(pair, p["text"]) for p in prompts}
        context = int(statistics.median(ids.shape[1] for ids in encoded.values())) + settings["max_new_tokens"] // 2
        ks = [k for k in FIXED_KS if f"k{k}" in methods] or list(FIXED_KS)
        report = bench_report.theory(pair, runs, encoded, summary, ks, context, settings["max_new_tokens"])
        bench_report.print_theory(report)
    config = dict(settings, draft=args.draft or "offline 0.5B", target=args.target or "offline 1.5B",
                  dtype=str(pair.dtype).removeprefix("torch."), device=str(pair.device),
                  threads=torch.get_num_threads(), torch=torch.__version__, cpu=cpu_name(),
                  cpu_flags=sorted(cpu_flags()))
    (out / "bench.json").write_text(json.dumps(dict(config=config, summary=summary, theory=report,
                                                    runs=[asdict(r) for r in runs]), indent=1))
    bench_report.plot(summary, report, out / "bench.png")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0
