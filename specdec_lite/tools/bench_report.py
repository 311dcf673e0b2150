"""Turn benchmark runs into a summary table, a theory-vs-measurement table, JSON and a PNG (used by `bench`).

Summary per method and prompt category: the median wall time over repeats of each prompt,
summed over the category's prompts, gives tokens/s; speed-up is over `plain` in the same
category; tokens per target forward counts every target call (prompt prefill included); draft
forwards per step (our methods) divides the draft forwards after the prefill by the steps that drafted;
tree methods also count their accepted tokens by sibling rank (`accepted_by_rank`: how many were the
draft's 1st, 2nd, 3rd ... guess at their node; the table shows 1st/2nd/3rd-or-later). Where the time
went: milliseconds per emitted token inside the target's forwards, inside the draft's, and in the
rest of the loop (medians per prompt over repeats, like the wall time; prefills included).
Theory per fixed K: α (greedy: the share of the plain continuation's positions where the
draft's argmax equals the target's), c and the measured cost v_K of a (K+1)-token target
forward give the paper's prediction (1 − α^(K+1)) / ((1 − α)(Kc + 1)) and the refined one with
v_K in place of the 1. The run's prediction (`run_theory.py`) is made prompt by prompt, each with its own
α, and summed over the category as the measured times are: it adds what a run of this length also
pays, the prompt fed to the target (both methods) and to the draft (speculative only), measured at
that prompt's length, and the clipped steps at the end of the run. Measured / predicted is taken
against that one. The replay goes one step further: it takes the steps greedy decoding really takes
on each plain continuation (where the draft agrees with the target, position by position), so the
tokens per step are exact and only c and v_K are predicted. Next to the measured c stands its floor,
the ratio of the weight bytes the two forwards read (`theory.c_floor`), with the best fixed K the per-step
formula finds at each: how much of the gap to a faster run is the work around the matrix products.

What it does not do: run anything but the measurements of c, v_K and α (see `bench.py`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Sequence

import torch

from ..algorithm.run_theory import expected_run_cost, replayed_draft_lengths, steps_cost
from ..algorithm.theory import (best_k, c_floor, continuation_acceptance, expected_tokens_per_forward, measure_c,
                                measure_prefill, measure_verify_cost, predicted_speedup)
from ..models.pair import ModelPair, weight_bytes
from .plots import COLORS, plot_time_split, use_style


def by_prompt(runs) -> dict[tuple[str, str], dict]:
    """(method, prompt) -> category, median seconds over repeats, and the first repeat's counts."""
    grouped = defaultdict(list)
    for run in runs:
        grouped[run.method, run.prompt].append(run)
    return {key: dict(category=rs[0].category, dtype=rs[0].dtype, seconds=statistics.median(r.seconds for r in rs),
                      target_seconds=statistics.median(r.target_seconds for r in rs),
                      draft_seconds=statistics.median(r.draft_seconds for r in rs),
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
                                                            tokens=0, seconds=0.0, target_seconds=0.0,
                                                            draft_seconds=0.0, forwards=0, proposed=0, accepted=0,
                                                            draft_forwards=0, drafted_steps=0, same=0, prompts=0,
                                                            accepted_by_rank=None))
            plain_ids = cells.get(("plain", prompt), cell)["token_ids"]
            row["tokens"] += cell["tokens"]
            row["seconds"] += cell["seconds"]
            row["target_seconds"] += cell["target_seconds"]
            row["draft_seconds"] += cell["draft_seconds"]
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
    row["ms_per_token"] = ms_per_token(row["tokens"], row["seconds"], row["target_seconds"], row["draft_seconds"])
    return row


def ms_per_token(tokens: int, seconds: float, target_seconds: float, draft_seconds: float) -> dict[str, float]:
    """Milliseconds per emitted token inside the target's forwards, inside the draft's, and in the rest of the run."""
    scale = 1000 / tokens
    return dict(target=target_seconds * scale, draft=draft_seconds * scale,
                rest=(seconds - target_seconds - draft_seconds) * scale)


@torch.inference_mode()
def plain_agreement(pair: ModelPair, runs, encoded: dict[str, torch.Tensor]) -> dict[str, tuple[str, list[bool]]]:
    """prompt -> (category, agreement): at each position of the plain continuation, whether the draft's argmax
    equals the target's token (greedy: Σ min(p, q) is 1 there and 0 elsewhere)."""
    return {prompt: (cell["category"],
                     (continuation_acceptance(pair, encoded[prompt], cell["token_ids"]) > 0.5).tolist())
            for (method, prompt), cell in by_prompt(runs).items() if method == "plain" and cell["token_ids"]}


def predict_category(prompts: list[str], agreements: dict, prefills: dict, k: int, c: float,
                     verify_costs: list[float], max_new_tokens: int) -> dict:
    """The run-level predictions for K summed over `prompts` (each with its own α, length and prefills)."""
    plain = one_alpha = replay = steps = tokens = 0.0
    for prompt in prompts:
        agreement = agreements[prompt][1]
        prefill_target, prefill_draft = prefills[prompt]
        plain += prefill_target + len(agreement)
        one_alpha += prefill_target + prefill_draft + expected_run_cost(
            statistics.fmean(agreement), k, c, verify_costs, len(agreement))
        draft_lengths = replayed_draft_lengths(agreement, k, max_new_tokens)
        replay += prefill_target + prefill_draft + steps_cost(draft_lengths, c, verify_costs)
        steps += len(draft_lengths)
        tokens += len(agreement)
    return dict(predicted_run=plain / one_alpha, predicted_replay=plain / replay,
                replayed_tokens_per_step=tokens / steps, new_tokens=tokens / len(prompts),
                prefill_target=statistics.fmean(prefills[p][0] for p in prompts),
                prefill_draft=statistics.fmean(prefills[p][1] for p in prompts))


def theory(pair: ModelPair, runs, encoded: dict[str, torch.Tensor], summary: list[dict],
           ks: Sequence[int], context_length: int, max_new_tokens: int) -> dict:
    """c, v_K, the prefills and α measured; predicted next to measured speed-up for each fixed K and category."""
    c = measure_c(pair, context_lengths=(context_length,), repeats=7)
    verify_costs = measure_verify_cost(pair.target, range(1, max(ks) + 1), context_length=context_length, repeats=3)
    v = list(verify_costs.values())  # v[j - 1] = v_j
    agreements = plain_agreement(pair, runs, encoded)
    lengths = {prompt: encoded[prompt].shape[1] for prompt in agreements}
    prefill_by_length = {n: measure_prefill(pair, n) for n in set(lengths.values())}
    prefills = {prompt: prefill_by_length[n] for prompt, n in lengths.items()}
    categories = defaultdict(list)
    for prompt, (category, _) in agreements.items():
        categories[category].append(prompt)
        categories["all"].append(prompt)
    alphas = {category: statistics.fmean(a for p in prompts for a in agreements[p][1])
              for category, prompts in categories.items()}
    measured = {(r["method"], r["category"]): r for r in summary}
    rows = []
    for category, prompts in categories.items():
        a = alphas[category]
        for k in ks:
            row = measured.get((f"k{k}", category))
            predicted = predict_category(prompts, agreements, prefills, k, c, v, max_new_tokens)
            speedup = row["speedup"] if row else None
            rows.append(dict(category=category, k=k, alpha=a, c=c, verify_cost=v[k - 1],
                             predicted_tokens_per_step=expected_tokens_per_forward(a, k),
                             predicted_paper=predicted_speedup(a, k, c),
                             predicted_with_verify_cost=predicted_speedup(a, k, c, v[k - 1]), **predicted,
                             measured=speedup,
                             measured_over_predicted=speedup / predicted["predicted_run"] if speedup else None,
                             measured_over_replay=speedup / predicted["predicted_replay"] if speedup else None))
    floor = c_floor(pair)
    return dict(c=c, ceiling_1_over_c=1 / c, verify_costs=verify_costs, context_length=context_length,
                prefills=prefill_by_length, alpha=alphas, rows=rows, c_floor=floor,
                weight_bytes=dict(draft=weight_bytes(pair.draft), target=weight_bytes(pair.target)),
                best_per_step={category: dict(measured_c=best_step(a, c, v), c_floor=best_step(a, floor, v))
                               for category, a in alphas.items()})


def best_step(alpha_: float, c: float, verify_costs: list[float]) -> dict:
    """The fixed K (1..len(verify_costs)) the per-step formula with measured v_K rates best, and its speed-up."""
    k = best_k(alpha_, c, len(verify_costs), verify_costs)
    return dict(k=k, speedup=predicted_speedup(alpha_, k, c, verify_costs[k - 1]))


def fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_summary(summary: list[dict]) -> None:
    print(f"\n{'method':<15}{'category':<9}{'tok/s':>7}{'speed-up':>9}{'tok/fwd':>8}{'accept':>8}{'dfwd/step':>10}"
          f"{'same':>7}{'by guess 1/2/3+':>17}{'ms/token: target draft rest':>29}")
    for row in sorted(summary, key=lambda r: (r["category"], -r["tokens_per_s"])):
        ms = row["ms_per_token"]
        print(f"{row['method']:<15}{row['category']:<9}{row['tokens_per_s']:>7.2f}{fmt(row['speedup']):>9}"
              f"{row['tokens_per_forward']:>8.2f}{fmt(row['acceptance_rate']):>8}"
              f"{fmt(row['draft_forwards_per_step']):>10}{row['same']:>4}/{row['prompts']:<2}"
              f"{rank_text(row.get('accepted_by_rank')):>17}{ms['target']:>17.1f}{ms['draft']:>6.1f}{ms['rest']:>6.1f}")


def print_theory(report: dict) -> None:
    print(f"\nc = {report['c']:.3f} (ceiling 1/c = {report['ceiling_1_over_c']:.2f}x), verification cost "
          + ", ".join(f"v{k}={v:.2f}" for k, v in report["verify_costs"].items())
          + f" (x a 1-token target forward, context {report['context_length']})")
    megabytes = {model: n / 1e6 for model, n in report["weight_bytes"].items()}
    print(f"c's floor: weights read per forward, draft {megabytes['draft']:.0f} MB / target "
          f"{megabytes['target']:.0f} MB = {report['c_floor']:.3f} (c if both forwards did nothing but read weights)")
    bests = [(category, best["measured_c"], best["c_floor"]) for category, best in report["best_per_step"].items()]
    print("best fixed K by the per-step formula with v_K, at the measured c / at c's floor: " + ", ".join(
        f"{category} K={at_c['k']} {at_c['speedup']:.2f}x / K={at_floor['k']} {at_floor['speedup']:.2f}x"
        for category, at_c, at_floor in bests))
    print("prefill (x a 1-token target forward): " + ", ".join(
        f"{n} tokens: target {t:.1f}, draft {d:.1f}" for n, (t, d) in sorted(report["prefills"].items())))
    print(f"{'category':<9}{'K':>3}{'alpha':>7}{'E[tok/step]':>12}{'replayed':>9}{'paper':>7}{'with v_K':>9}"
          f"{'run':>6}{'replay':>7}{'measured':>9}{'measured/run':>13}{'/replay':>8}")
    for row in report["rows"]:
        print(f"{row['category']:<9}{row['k']:>3}{row['alpha']:>7.3f}{row['predicted_tokens_per_step']:>12.2f}"
              f"{row['replayed_tokens_per_step']:>9.2f}{row['predicted_paper']:>7.2f}"
              f"{row['predicted_with_verify_cost']:>9.2f}{row['predicted_run']:>6.2f}{row['predicted_replay']:>7.2f}"
              f"{fmt(row['measured']):>9}{fmt(row['measured_over_predicted']):>13}"
              f"{fmt(row['measured_over_replay']):>8}")


def plot(summary: list[dict], report: dict | None, path) -> None:
    """Left: speed-up over plain per method and category. Middle: where each method's time went (ms per token in
    the target, the draft, the rest). Right: predicted vs measured speed-up vs K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_style()
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 4.5))
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
    all_prompts = {r["method"]: r for r in summary if r["category"] == "all"}
    target_dtype = all_prompts[methods[0]]["dtype"].split("+")[0]  # an int4 draft's pair keeps the int8 target
    plot_time_split(middle, [all_prompts[m] for m in methods  # another target dtype's bars would dwarf the rest
                             if all_prompts[m]["dtype"].split("+")[0] == target_dtype])
    middle.tick_params(axis="x", labelrotation=45)
    middle.set(ylabel="ms per emitted token (all prompts)")
    if report:
        rows = [r for r in report["rows"] if r["category"] == "all"]
        ks = [r["k"] for r in rows]
        right.plot(ks, [r["predicted_paper"] for r in rows], "o--", color=COLORS["theory"], label="paper formula")
        right.plot(ks, [r["predicted_with_verify_cost"] for r in rows], "s-", color=COLORS["target"],
                   label="formula with measured v_K")
        right.plot(ks, [r["predicted_run"] for r in rows], "D-", color=COLORS["draft"],
                   label=f"with v_K, the prefills and the run's end ({rows[0]['new_tokens']:.0f} tokens)")
        right.plot(ks, [r["predicted_replay"] for r in rows], "v:", color=COLORS["draft"],
                   label="the same, acceptance replayed as it fell")
        right.plot(ks, [r["measured"] or 0 for r in rows], "^-", color=COLORS["accepted"], label="measured")
        right.set_xticks(ks)
        right.set_xlabel("K")
        right.set_ylabel("speed-up over plain")
        right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
