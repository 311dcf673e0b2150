"""Turn benchmark runs into a summary table, a theory-vs-measurement table, JSON and a PNG (used by `bench`).

Summary per method and prompt category: the median wall time over repeats of each prompt,
summed over the category's prompts, gives tokens/s; speed-up is over `plain` in the same
category; tokens per target forward counts every target call (prompt prefill included); draft
forwards per step (our methods) divides the draft forwards after the prefill by the steps that drafted;
tree methods also count their accepted tokens by sibling rank (`accepted_by_rank`: how many were the
draft's 1st, 2nd, 3rd ... guess at their node; the table shows 1st/2nd/3rd-or-later).
Theory per fixed K: α (greedy: the share of the plain continuation's positions where the
draft's argmax equals the target's), c and the measured cost v_K of a (K+1)-token target
forward give the paper's prediction (1 − α^(K+1)) / ((1 − α)(Kc + 1)) and the refined one with
v_K in place of the 1; the run's prediction adds what a run of this length also pays, the prompt fed
to the target (both methods) and to the draft (speculative only), measured at the category's mean
prompt length (`theory.predicted_run_speedup`). Measured / predicted is taken against that one.

What it does not do: run anything but the measurements of c, v_K and α (see `bench.py`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Sequence

import torch

from ..algorithm.theory import (continuation_acceptance, expected_tokens_per_forward, measure_c, measure_prefill,
                                measure_verify_cost, predicted_run_speedup, predicted_speedup)
from ..models.pair import ModelPair
from .plots import COLORS, use_style


def by_prompt(runs) -> dict[tuple[str, str], dict]:
    """(method, prompt) -> category, median seconds over repeats, and the first repeat's counts."""
    grouped = defaultdict(list)
    for run in runs:
        grouped[run.method, run.prompt].append(run)
    return {key: dict(category=rs[0].category, dtype=rs[0].dtype, seconds=statistics.median(r.seconds for r in rs),
                      tokens=rs[0].new_tokens, forwards=rs[0].target_forwards, proposed=rs[0].proposed,
                      accepted=rs[0].accepted, token_ids=rs[0].token_ids, draft_forwards=rs[0].draft_forwards,
                      drafted_steps=rs[0].drafted_steps, accepted_by_rank=getattr(rs[0], "accepted_by_rank", None))
            for key, rs in grouped.items()}


def summarize(runs) -> list[dict]:
    """One row per (method, category), plus category 'all'."""
    cells = by_prompt(runs)
    rows = {}
    for (method, prompt), cell in cells.items():
        for category in (cell["category"], "all"):
            row = rows.setdefault((method, category), dict(method=method, category=category, dtype=cell["dtype"],
                                                            tokens=0, seconds=0.0, forwards=0, proposed=0, accepted=0,
                                                            draft_forwards=0, drafted_steps=0, same=0, prompts=0,
                                                            accepted_by_rank=None))
            plain_ids = cells.get(("plain", prompt), cell)["token_ids"]
            row["tokens"] += cell["tokens"]
            row["seconds"] += cell["seconds"]
            row["forwards"] += cell["forwards"]
            row["proposed"] += cell["proposed"] or 0
            row["accepted"] += cell["accepted"] or 0
            row["draft_forwards"] += cell["draft_forwards"] or 0
            row["drafted_steps"] += cell["drafted_steps"] or 0
            row["same"] += cell["token_ids"] == plain_ids
            if cell["accepted_by_rank"] is not None:
                row["accepted_by_rank"] = add_counts(row["accepted_by_rank"] or [], cell["accepted_by_rank"])
            row["prompts"] += 1
    return [finish_row(row, rows.get(("plain", row["category"]))) for row in rows.values()]


def add_counts(a: list[int], b: list[int]) -> list[int]:
    """Element-wise sum of two count lists of any lengths."""
    return [x + y for x, y in zip(a + [0] * (len(b) - len(a)), b + [0] * (len(a) - len(b)))]


def rank_text(counts: list[int] | None, shown: int = 3) -> str:
    """'31/6/2' : accepted tokens that were the 1st/2nd/3rd guess (later guesses added to the last); '-' if none."""
    if counts is None:
        return "-"
    padded = counts + [0] * (shown - len(counts))
    return "/".join(str(c) for c in padded[:shown - 1] + [sum(padded[shown - 1:])])


def finish_row(row: dict, plain_row: dict | None) -> dict:
    row["tokens_per_s"] = row["tokens"] / row["seconds"]
    row["speedup"] = row["tokens_per_s"] / (plain_row["tokens"] / plain_row["seconds"]) if plain_row else None
    row["tokens_per_forward"] = row["tokens"] / row["forwards"]
    row["acceptance_rate"] = row["accepted"] / row["proposed"] if row["proposed"] else None
    row["draft_forwards_per_step"] = row["draft_forwards"] / row["drafted_steps"] if row["drafted_steps"] else None
    return row


@torch.inference_mode()
def greedy_alpha_by_category(pair: ModelPair, runs, encoded: dict[str, torch.Tensor]) -> dict[str, float]:
    """α per category (and 'all') on the plain continuations: mean Σ min(p, q) over their positions."""
    per_category = defaultdict(list)
    for (method, prompt), cell in by_prompt(runs).items():
        if method == "plain" and cell["token_ids"]:
            scores = continuation_acceptance(pair, encoded[prompt], cell["token_ids"]).tolist()
            per_category[cell["category"]] += scores
            per_category["all"] += scores
    return {category: statistics.fmean(scores) for category, scores in per_category.items()}


def run_shape(runs, encoded: dict[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """(mean prompt length, mean new tokens) of plain runs per category (and 'all')."""
    lengths, tokens = defaultdict(list), defaultdict(list)
    for (method, prompt), cell in by_prompt(runs).items():
        if method == "plain":
            for category in (cell["category"], "all"):
                lengths[category].append(encoded[prompt].shape[1])
                tokens[category].append(len(cell["token_ids"]))
    return {category: (round(statistics.fmean(lengths[category])), round(statistics.fmean(tokens[category])))
            for category in lengths}


def theory(pair: ModelPair, runs, encoded: dict[str, torch.Tensor], summary: list[dict],
           ks: Sequence[int], context_length: int) -> dict:
    """c, v_K, the prefills and α measured; predicted next to measured speed-up for each fixed K and category."""
    c = measure_c(pair, context_lengths=(context_length,), repeats=7)
    verify_costs = measure_verify_cost(pair.target, ks, context_length=context_length, repeats=3)
    alphas = greedy_alpha_by_category(pair, runs, encoded)
    shapes = run_shape(runs, encoded)
    prefills = {length: measure_prefill(pair, length) for length in {length for length, _ in shapes.values()}}
    measured = {(r["method"], r["category"]): r for r in summary}
    rows = []
    for category, a in alphas.items():
        prompt_length, new_tokens = shapes[category]
        prefill_target, prefill_draft = prefills[prompt_length]
        for k in ks:
            row = measured.get((f"k{k}", category))
            run = predicted_run_speedup(a, k, c, verify_costs[k], max(new_tokens, 1), prefill_target, prefill_draft)
            rows.append(dict(category=category, k=k, alpha=a, c=c, verify_cost=verify_costs[k],
                             predicted_tokens_per_step=expected_tokens_per_forward(a, k),
                             predicted_paper=predicted_speedup(a, k, c),
                             predicted_with_verify_cost=predicted_speedup(a, k, c, verify_costs[k]),
                             prompt_length=prompt_length, new_tokens=new_tokens, prefill_target=prefill_target,
                             prefill_draft=prefill_draft, predicted_run=run,
                             measured=row["speedup"] if row else None,
                             measured_over_predicted=row["speedup"] / run if row and row["speedup"] else None))
    return dict(c=c, ceiling_1_over_c=1 / c, verify_costs=verify_costs, context_length=context_length,
                alpha=alphas, rows=rows)


def fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_summary(summary: list[dict]) -> None:
    print(f"\n{'method':<15}{'category':<9}{'tok/s':>7}{'speed-up':>9}{'tok/fwd':>8}{'accept':>8}{'dfwd/step':>10}"
          f"{'same':>7}{'by guess 1/2/3+':>17}")
    for row in sorted(summary, key=lambda r: (r["category"], -r["tokens_per_s"])):
        print(f"{row['method']:<15}{row['category']:<9}{row['tokens_per_s']:>7.2f}{fmt(row['speedup']):>9}"
              f"{row['tokens_per_forward']:>8.2f}{fmt(row['acceptance_rate']):>8}"
              f"{fmt(row['draft_forwards_per_step']):>10}{row['same']:>4}/{row['prompts']:<2}"
              f"{rank_text(row.get('accepted_by_rank')):>17}")


def print_theory(report: dict) -> None:
    print(f"\nc = {report['c']:.3f} (ceiling 1/c = {report['ceiling_1_over_c']:.2f}x), verification cost "
          + ", ".join(f"v{k}={v:.2f}" for k, v in report["verify_costs"].items())
          + f" (x a 1-token target forward, context {report['context_length']})")
    print("prefill (x a 1-token target forward): "
          + ", ".join(sorted({f"{r['prompt_length']} tokens: target {r['prefill_target']:.1f}, draft "
                              f"{r['prefill_draft']:.1f}" for r in report["rows"]})))
    print(f"{'category':<9}{'K':>3}{'alpha':>7}{'E[tok/step]':>12}{'paper':>7}{'with v_K':>9}{'run':>6}"
          f"{'measured':>9}{'measured/run':>13}")
    for row in report["rows"]:
        print(f"{row['category']:<9}{row['k']:>3}{row['alpha']:>7.3f}{row['predicted_tokens_per_step']:>12.2f}"
              f"{row['predicted_paper']:>7.2f}{row['predicted_with_verify_cost']:>9.2f}{row['predicted_run']:>6.2f}"
              f"{fmt(row['measured']):>9}{fmt(row['measured_over_predicted']):>13}")


def plot(summary: list[dict], report: dict | None, path) -> None:
    """Left: speed-up over plain per method and category. Right: predicted vs measured speed-up vs K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    methods = sorted({r["method"] for r in summary}, key=lambda m: [r["method"] for r in summary].index(m))
    categories = sorted({r["category"] for r in summary})
    width = 0.8 / len(categories)
    cells = {(r["method"], r["category"]): r["speedup"] or 0 for r in summary}
    for i, category in enumerate(categories):
        left.bar([m + i * width for m in range(len(methods))], [cells.get((m, category), 0) for m in methods],
                 width, label=category)
    left.axhline(1, color=COLORS["theory"], linestyle="--", linewidth=1)
    left.set_xticks([m + 0.4 - width / 2 for m in range(len(methods))], methods, rotation=45, ha="right")
    left.set_ylabel("speed-up over plain")
    left.legend()
    if report:
        rows = [r for r in report["rows"] if r["category"] == "all"]
        ks = [r["k"] for r in rows]
        right.plot(ks, [r["predicted_paper"] for r in rows], "o--", color=COLORS["theory"], label="paper formula")
        right.plot(ks, [r["predicted_with_verify_cost"] for r in rows], "s-", color=COLORS["target"],
                   label="formula with measured v_K")
        right.plot(ks, [r["predicted_run"] for r in rows], "D-", color=COLORS["draft"],
                   label=f"with v_K and the prefills ({rows[0]['new_tokens']} tokens)")
        right.plot(ks, [r["measured"] or 0 for r in rows], "^-", color=COLORS["accepted"], label="measured")
        right.set_xticks(ks)
        right.set_xlabel("K")
        right.set_ylabel("speed-up over plain")
        right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
