"""One plot style for every notebook: the same colours for the same roles.

What it does not do: save figures (notebooks show them inline; the benchmark saves its own PNG).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = {
    "target": "#1f77b4",  # p
    "draft": "#ff7f0e",  # q
    "accepted": "#2ca02c",
    "rejected": "#d62728",
    "correction": "#9467bd",
    "bonus": "#17becf",
    "theory": "#7f7f7f",
}


def use_style() -> None:
    """Apply the series' matplotlib style (call once at the top of a notebook)."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.figsize": (7, 3.5),
        "figure.dpi": 90,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 10,
    })


# --- notebooks 00, 01, 02 ---


def visible(token: str) -> str:
    """A token's text with spaces and newlines made visible (␣, ↵), for labels in plots (notebooks 00 and 02)."""
    return token.replace(" ", "␣").replace("\n", "↵")


def plot_parameter_groups(groups: dict[str, dict[str, int]]):
    """Notebook 00: one horizontal bar per model, split into embedding, transformer blocks and output head.

    `groups` maps a model name ("draft q", "target p") to {part: parameter count}. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    short = {"embedding": "emb.", "transformer blocks": "blocks", "output head": "head"}
    _, ax = plt.subplots(figsize=(7, 2.2))
    for row, (name, parts) in enumerate(groups.items()):
        left, color = 0.0, COLORS["draft" if name.startswith("draft") else "target"]
        for (part, count), shade in zip(parts.items(), (0.35, 1.0, 0.6)):
            ax.barh(row, count / 1e6, left=left, color=color, alpha=shade, edgecolor="white")
            ax.text(left + count / 2e6, row, short.get(part, part), ha="center", va="center", fontsize=8)
            left += count / 1e6
    ax.set_yticks(range(len(groups)), list(groups))
    ax.set_xlabel("parameters (millions)")
    ax.set_title("Where the parameters are")
    return ax


def plot_agreement_strip(tokens: list[str], agrees: list[bool]):
    """Notebook 00: the target's tokens in a row, green where the draft's top token agrees, red where not.

    Returns the Axes (one rectangle patch per token).
    """
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(max(4, 0.62 * len(tokens)), 1.3))
    for i, (token, ok) in enumerate(zip(tokens, agrees)):
        ax.add_patch(plt.Rectangle((i, 0), 0.95, 1, color=COLORS["accepted" if ok else "rejected"], alpha=0.8))
        ax.text(i + 0.47, 0.5, visible(token), ha="center", va="center", fontsize=7, rotation=30)
    ax.set_xlim(0, len(tokens))
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title("target's tokens: green where the draft's top token agrees, red where it does not", fontsize=9)
    return ax


def plot_distributions(distributions: dict, token_ids: list[int], labels: list[str], title: str = ""):
    """Notebook 01: one panel per setting (temperature, top-k, ...), bars of q(x) for the same few tokens.

    `distributions` maps a setting's name to a [vocab] tensor of probabilities; `token_ids` picks the bars and
    `labels` names them. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(distributions), figsize=(2.4 * len(distributions), 3), sharey=True, squeeze=False)
    for ax, (name, q) in zip(axes[0], distributions.items()):
        ax.bar(range(len(token_ids)), [float(q[i]) for i in token_ids], color=COLORS["draft"])
        ax.set_xticks(range(len(token_ids)), labels, rotation=90, fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_ylabel("q(x)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_verification_cost(sizes: list[int], relative_cost: list[float], label: str):
    """Notebook 02: the cost of one forward over m tokens, in one-token forwards, against m separate forwards
    and the memory-bound ideal (cost 1). Returns the Axes (three lines)."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    ax.plot(sizes, sizes, "--", color=COLORS["theory"], label="m separate one-token forwards")
    ax.plot(sizes, relative_cost, "o-", color=COLORS["target"], label=label)
    ax.plot(sizes, [1] * len(sizes), ":", color=COLORS["accepted"], label="ideal: memory-bound GPU (≈ 1)")
    ax.set_xlabel("tokens m in one target forward (m = K + 1)")
    ax.set_ylabel("cost / one-token forward")
    ax.set_title("What verifying K drafted tokens costs")
    ax.legend()
    plt.tight_layout()
    return ax


def plot_verify_rows(inputs: list[str], argmax: list[str]):
    """Notebook 02: K+1 rows from one forward. The K+1 input tokens [last, x_1, ..., x_K] at the bottom; above
    each, the output row it produces: p_{i+1}, with the target's argmax token, which drafted token it checks, and
    which row is the bonus. Rows are coloured by the greedy rule: accepted (the argmax equals the drafted token it
    checks), the first mismatch (its argmax is the correction), discarded rows after it, and the bonus row.

    `inputs` and `argmax` are K+1 token strings each. Returns the Axes (2(K+1) boxes).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    k = len(inputs) - 1
    if len(argmax) != k + 1:
        raise ValueError(f"need K+1 = {k + 1} argmax tokens, got {len(argmax)}")
    _, ax = plt.subplots(figsize=(1.9 * (k + 1), 3.2))
    status, rejected = [], False
    for i in range(k + 1):
        if rejected:
            status.append(("discarded", COLORS["theory"]))
        elif i == k:
            status.append(("bonus token", COLORS["bonus"]))
        elif argmax[i] == inputs[i + 1]:
            status.append((f"accepts x_{i + 1}", COLORS["accepted"]))
        else:
            status.append((f"rejects x_{i + 1}: correction", COLORS["rejected"]))
            rejected = True
    for i in range(k + 1):
        name = "last" if i == 0 else f"x_{i}"
        ax.add_patch(FancyBboxPatch((i + 0.08, 0.1), 0.84, 0.8, boxstyle="round,pad=0.02",
                                    color=COLORS["draft"] if i else COLORS["theory"], alpha=0.35))
        ax.text(i + 0.5, 0.5, f"{name}\n{visible(inputs[i])!r}", ha="center", va="center", fontsize=8)
        ax.annotate("", xy=(i + 0.5, 1.9), xytext=(i + 0.5, 0.95), arrowprops=dict(arrowstyle="->", color="0.4"))
        text, color = status[i]
        ax.add_patch(FancyBboxPatch((i + 0.08, 1.95), 0.84, 0.9, boxstyle="round,pad=0.02", color=color, alpha=0.35))
        checks = f"checks x_{i + 1}" if i < k else "bonus row"
        ax.text(i + 0.5, 2.4, f"row {i}: p_{i + 1}\nargmax {visible(argmax[i])!r}\n{checks}", ha="center",
                va="center", fontsize=8)
        ax.text(i + 0.5, 3.0, text, ha="center", va="bottom", fontsize=8, color=color)
    ax.text(-0.05, 0.5, "input", ha="right", va="center", fontsize=9)
    ax.text(-0.05, 2.4, "output", ha="right", va="center", fontsize=9)
    ax.set_xlim(-0.6, k + 1)
    ax.set_ylim(0, 3.4)
    ax.axis("off")
    ax.set_title(f"One target forward over K+1 = {k + 1} tokens returns K+1 rows", fontsize=10)
    return ax


# --- notebook 03 ---


def plot_tokens_per_step(n_accepted: list[int], k: int, kept: int | None = None, ax=None):
    """Notebook 03: one stacked bar per step (= one target forward): the accepted drafted tokens, plus the one target
    token (correction, or bonus when all `k` were accepted). The title is computed from the bars: how many tokens
    the steps emitted, and (`kept`) how many of them the run kept. Returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots()[1]
    steps = list(range(1, len(n_accepted) + 1))
    ax.bar(steps, n_accepted, color=COLORS["accepted"], label="accepted drafted tokens")
    ax.bar(steps, 1, bottom=n_accepted, color=[COLORS["bonus"] if n == k else COLORS["correction"] for n in n_accepted],
           label="+1 target token (purple: correction, cyan: bonus)")
    ax.axhline(k + 1, ls="--", color=COLORS["theory"], label=f"most a step can emit (K + 1 = {k + 1})")
    ax.set_xlabel("step (one target forward each)")
    ax.set_ylabel("tokens emitted")
    ax.set_xticks(steps)
    emitted = sum(n_accepted) + len(n_accepted)
    title = f"{emitted} tokens emitted in {len(n_accepted)} target forwards"
    if kept is not None and kept != emitted:
        title += f" (the first {kept} kept)"
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return ax


# --- notebook 04 ---


def plot_rule_bars(p, q, tick_labels: list[str] | None = None, ax=None):
    """Notebook 04: the one-position rule as overlapping bars per token x: p (target) and q (draft) as outlines,
    min(p, q) (drafted and accepted) filled, and the mass the residual norm(max(0, p - q)) gives back after a
    rejection, (1 - alpha) * residual = max(0, p - q), stacked on top: filled bar = p. Returns the Axes."""
    import matplotlib.pyplot as plt
    import torch

    p, q = torch.as_tensor(p, dtype=torch.float32), torch.as_tensor(q, dtype=torch.float32)
    ax = ax or plt.subplots()[1]
    x = torch.arange(p.shape[0]).tolist()
    accepted, given_back = torch.minimum(p, q), (p - q).clamp(min=0)
    ax.bar(x, accepted.tolist(), 0.6, color=COLORS["accepted"], label="min(p, q): drafted and accepted")
    ax.bar(x, given_back.tolist(), 0.6, bottom=accepted.tolist(), color=COLORS["correction"],
           label="max(0, p - q): from the residual after a rejection")
    ax.bar(x, p.tolist(), 0.8, fill=False, edgecolor=COLORS["target"], lw=2, label="target p")
    ax.bar(x, q.tolist(), 0.8, fill=False, edgecolor=COLORS["draft"], lw=2, ls="--", label="draft q")
    ax.set_xticks(x, tick_labels if tick_labels is not None else [str(i) for i in x])
    ax.set_xlabel("token x")
    ax.set_ylabel("probability")
    ax.set_title("accepted + residual = p, whatever q")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_sample_histograms(p, samples: dict, tick_labels: list[str] | None = None, ax=None):
    """Notebook 04: the exact target p next to the empirical distribution of each entry of `samples`
    ({label: 1-D tensor of token ids}), as grouped bars, one group per token. Returns the Axes."""
    import matplotlib.pyplot as plt
    import torch

    p = torch.as_tensor(p, dtype=torch.float32)
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    vocab = p.shape[0]
    width = 0.8 / (1 + len(samples))
    colors = [COLORS["accepted"], COLORS["rejected"], COLORS["draft"], COLORS["bonus"]]
    series = [("target p (exact)", p, COLORS["target"])] + [
        (label, torch.bincount(s, minlength=vocab).float() / s.shape[0], colors[i % len(colors)])
        for i, (label, s) in enumerate(samples.items())]
    for i, (label, probs, color) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar([t + offset for t in range(vocab)], probs.tolist(), width, color=color, label=label)
    ax.set_xticks(range(vocab), tick_labels if tick_labels is not None else [str(t) for t in range(vocab)],
                  rotation=60, fontsize=8)
    ax.set_ylabel("probability")
    ax.legend()
    return ax


# --- notebook 05 ---


def _line_colors() -> list[str]:
    return [COLORS[name] for name in ("target", "draft", "accepted", "correction", "bonus", "rejected")]


def plot_speedup_grid(alphas: Sequence[float], cs: Sequence[float], k_max: int = 12,
                      verify_cost: float = 1.0) -> Figure:
    """E[tokens per step] (left) and the predicted speed-up (right) against K, one curve per α (and per c).

    Notebook 05 (section 3). Colour = α, line style = c; a dot marks each curve's best K; the dotted
    line K + 1 on the left is the α = 1 limit, the red line S = 1 on the right is break-even.
    """
    import matplotlib.pyplot as plt

    from ..algorithm import theory

    ks = list(range(1, k_max + 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(ks, [k + 1 for k in ks], ":", color=COLORS["theory"], label="α = 1: K + 1")
    styles = ("-", "--", "-.", ":")
    for color, a in zip(_line_colors(), alphas):
        left.plot(ks, [theory.expected_tokens_per_forward(a, k) for k in ks], "-", color=color, label=f"α = {a}")
        for style, c in zip(styles, cs):
            speedups = [theory.predicted_speedup(a, k, c, verify_cost) for k in ks]
            best = theory.best_k(a, c, k_max, [verify_cost] * k_max)
            right.plot(ks, speedups, style, color=color, label=f"α = {a}, c = {c}")
            right.plot([best], [speedups[best - 1]], "o", color=color)
    right.axhline(1, color=COLORS["rejected"], linewidth=1)
    left.set(xlabel="K (drafted tokens per step)", ylabel="E[tokens per step]", title="(1 - α^(K+1)) / (1 - α)")
    right.set(xlabel="K (drafted tokens per step)", ylabel="predicted speed-up",
              title=f"tokens per step / (K c + {verify_cost:g})")
    left.legend(fontsize=8)
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_break_even(settings: Sequence[tuple[float, float, str]], k: int = 4) -> Axes:
    """Predicted speed-up at fixed K against α, one curve per (c, v_K, label); a dot where each crosses S = 1.

    Notebooks 05 (section 5, example costs) and 06 (section 4, this machine's measured c and v_4).
    """
    import matplotlib.pyplot as plt

    from ..algorithm import theory

    alphas = [i / 100 for i in range(100)]  # 0 .. 0.99
    _, ax = plt.subplots()
    for (c, v, label), color in zip(settings, _line_colors()):
        ax.plot(alphas, [theory.predicted_speedup(a, k, c, v) for a in alphas], "-", color=color,
                label=f"{label}: c = {c:.2f}, v_{k} = {v:.2f}")
        crossing = theory.break_even_alpha(k, c, v)
        if 0 < crossing < 1:
            ax.plot([crossing], [1], "o", color=color)
    ax.axhline(1, color=COLORS["rejected"], linewidth=1)
    ax.set(xlabel="α", ylabel=f"predicted speed-up, K = {k}", ylim=(0, 4))
    ax.legend(fontsize=8)
    return ax


# --- notebook 06 ---

def plot_verify_cost(costs: dict[str, dict[int, float]]) -> Figure:
    """Target forward time against the number of tokens in it, per dtype: ms (left) and relative to one token (right).

    Notebook 06 (section 2). `costs[dtype][n]` = seconds of one target forward over n new tokens;
    the dashed line on the right is the paper's assumption v = 1.
    """
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for (name, times), color in zip(costs.items(), _line_colors()[1:]):
        ns = sorted(times)
        left.plot(ns, [times[n] * 1e3 for n in ns], "o-", color=color, label=name)
        right.plot(ns, [times[n] / times[1] for n in ns], "o-", color=color, label=name)
    ns = sorted(next(iter(costs.values()), {1: 0.0}))
    right.plot(ns, [1] * len(ns), "--", color=COLORS["theory"], label="paper's assumption")
    left.set(xlabel="tokens in one target forward", ylabel="ms", title="absolute cost")
    right.set(xlabel="tokens in one target forward", ylabel="x one-token forward", title="relative cost v")
    left.legend()
    right.legend()
    fig.tight_layout()
    return fig


def plot_predicted_vs_measured(ks: Sequence[int], curves: dict[str, Sequence[float]], title: str = "") -> Axes:
    """Speed-up against K: one line per named curve (predictions first, the measurement last), and S = 1.

    Notebook 06 (sections 1 and 2).
    """
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    markers = ("o--", "s-", "^-", "d-.")
    colors = (COLORS["theory"], COLORS["target"], COLORS["accepted"], COLORS["correction"])
    for (name, values), marker, color in zip(curves.items(), markers, colors):
        ax.plot(list(ks), list(values), marker, color=color, label=name)
    ax.axhline(1, color=COLORS["rejected"], linewidth=1, linestyle=":")
    ax.set(xlabel="K (drafted tokens per step)", ylabel="speed-up over plain", title=title)
    ax.legend(fontsize=8)
    return ax


# --- notebook 07 ---


def tree_rows(parents: list[int]) -> list[float]:
    """A row for each node of a tree given by `parents` (parents[0] == -1): leaves on consecutive rows, top
    down in node order; a parent at the mean row of its children."""
    children: list[list[int]] = [[] for _ in parents]
    for node, parent in enumerate(parents[1:], start=1):
        children[parent].append(node)
    rows = [0.0] * len(parents)
    next_leaf = [0]

    def place(node: int) -> float:
        if children[node]:
            rows[node] = sum(place(child) for child in children[node]) / len(children[node])
        else:
            rows[node], next_leaf[0] = float(next_leaf[0]), next_leaf[0] + 1
        return rows[node]

    place(0)
    return rows


def draw_token_tree(tokens: list[str], parents: list[int], ax=None, highlight=(), scores: list[float] | None = None,
                    title: str | None = None):
    """Draw a token tree (notebook 07): node v at (depth, row), labelled with its token text `tokens[v]`
    (and `scores[v]` under it when given, e.g. the draft's path probability). Root blue, drafted nodes
    orange, the nodes in `highlight` (an accepted path) green. Returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 0.5 + 0.45 * max(2, len(tree_rows(parents)))))[1]
    rows, depths = tree_rows(parents), [0] * len(parents)
    for node, parent in enumerate(parents[1:], start=1):
        depths[node] = depths[parent] + 1
        ax.plot([depths[parent], depths[node]], [rows[parent], rows[node]], color=COLORS["theory"], zorder=1)
    for node, (text, depth, row) in enumerate(zip(tokens, depths, rows)):
        color = COLORS["accepted"] if node in highlight else COLORS["target"] if node == 0 else COLORS["draft"]
        label = text if scores is None else f"{text}\n{scores[node]:.2f}"
        ax.annotate(label, (depth, row), ha="center", va="center", fontsize=8, color="white", zorder=2,
                    bbox=dict(boxstyle="round,pad=0.3", facecolor=color, edgecolor="none"))
    ax.set(xlim=(-0.5, max(depths) + 0.5), ylim=(max(rows) + 0.7, -0.7), xticks=range(max(depths) + 1),
           xlabel="depth", yticks=[], title=title or "token tree (root blue, drafted nodes orange)")
    ax.grid(False)
    return ax


def plot_tree_mask(tokens: list[str], parents: list[int], n_cached: int = 0, ax=None):
    """The additive tree attention mask of notebook 07 as a grid: row = query node, column = key
    (`n_cached` cached positions, then the nodes), both ticked with token text; green = may attend
    (mask 0), white = masked (the dtype's most negative number). Returns the Axes."""
    import matplotlib.pyplot as plt
    import torch

    from ..algorithm.token_tree import TokenTree, tree_attention_mask

    depths = [0] * len(parents)
    for node, parent in enumerate(parents[1:], start=1):
        depths[node] = depths[parent] + 1
    tree = TokenTree(torch.zeros(len(parents), dtype=torch.long), torch.tensor(parents), torch.tensor(depths))
    visible = tree_attention_mask(tree, n_cached, range(len(tree)), range(len(tree)))[0, 0] == 0  # [N, n_cached + N]
    size = 1.2 + 0.32 * (n_cached + len(tree))
    ax = ax or plt.subplots(figsize=(size + 1, size * len(tree) / (n_cached + len(tree)) + 1))[1]
    ax.imshow(visible.numpy(), cmap="Greens", vmin=0, vmax=1.4)
    labels = [f"{v}:{text}" for v, text in enumerate(tokens)]
    ax.set_xticks(range(n_cached + len(tree)), [f"c{i}" for i in range(n_cached)] + labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tree)), labels, fontsize=8)
    if n_cached:
        ax.axvline(n_cached - 0.5, color=COLORS["target"])
    ax.set(xlabel="key (cached positions, then tree nodes)", ylabel="query node", title="tree attention mask")
    ax.grid(False)
    return ax


def plot_tree_growth(trees: list[tuple[list[str], list[int], list[float]]], budget: int):
    """The dynamic tree after each depth (notebook 07): one panel per (tokens, parents, path scores), drawn
    with `draw_token_tree`; `budget` is the node budget named in the titles. Returns the Figure."""
    import matplotlib.pyplot as plt

    height = 0.9 + 0.42 * max(sum(1 for p in range(len(parents)) if p not in parents[1:]) for _, parents, _ in trees)
    fig, axes = plt.subplots(1, len(trees), figsize=(3.0 * len(trees), height), squeeze=False)
    for depth, (ax, (tokens, parents, scores)) in enumerate(zip(axes[0], trees), start=1):
        draw_token_tree(tokens, parents, ax, scores=scores,
                        title=f"after depth {depth}: {len(tokens) - 1} of {budget} nodes")
    fig.tight_layout()
    return fig


def plot_sibling_ranks(table: list[list[int]], names: list[str] | None = None, ax=None):
    """Notebook 07: bars of `results.sibling_rank_table` — at each depth, how often the target accepted the
    draft's 1st, 2nd, ... guess, or none of them (last column); one bar group per outcome (`names`, default
    "guess 1", "guess 2", ..., "none (correction)"), a colour shade per depth. Returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots()[1]
    n_outcomes = len(table[0]) if table else 0
    width = 0.8 / max(1, len(table))
    for depth, row in enumerate(table):
        shade = 1 - 0.6 * depth / max(1, len(table) - 1)
        ax.bar([x + depth * width for x in range(n_outcomes)], row, width, color=COLORS["accepted"], alpha=shade,
               label=f"depth {depth + 1}")
    names = names or [f"guess {r + 1}" for r in range(n_outcomes - 1)] + ["none (correction)"]
    ax.set_xticks([x + 0.4 - width / 2 for x in range(n_outcomes)], names)
    ax.set(ylabel="times", title="which of the draft's guesses the target accepted")
    if table:
        ax.legend(fontsize=8)
    return ax


def plot_time_split(ax, rows: list[dict]):
    """Where each method's time went: stacked bars of milliseconds per emitted token inside the target's forwards,
    inside the draft's, and in the rest of the loop (rows: keys method, ms_per_token {target, draft, rest}, as
    `bench.compare_methods` and the bench summary give them). Returns the Axes."""
    names = [row["method"] for row in rows]
    bottom = [0.0] * len(rows)
    for part, color in (("target", COLORS["target"]), ("draft", COLORS["draft"]), ("rest", COLORS["theory"])):
        heights = [row["ms_per_token"][part] for row in rows]
        ax.bar(names, heights, 0.7, bottom=bottom, color=color, label=part)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set(ylabel="ms per emitted token")
    ax.legend()
    return ax


def plot_method_comparison(rows: list[dict]):
    """Notebook 07: tokens per target forward, tokens per second and where the time went (`plot_time_split`) per
    method, side by side, from the rows of `bench.compare_methods` (keys method, tokens_per_forward, tokens_per_s,
    ms_per_token). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 3.4))
    names = [row["method"] for row in rows]
    palette = [COLORS[role] for role in ("target", "draft", "rejected", "accepted", "correction", "bonus", "theory")]
    colors = [palette[i % len(palette)] for i in range(len(rows))]
    left.bar(names, [row["tokens_per_forward"] for row in rows], color=colors)
    middle.bar(names, [row["tokens_per_s"] for row in rows], color=colors)
    plot_time_split(right, rows)
    left.set(title="tokens per target forward")
    middle.set(title="tokens per second (this machine)")
    right.set(title="where the time went (this machine)")
    for ax in (left, middle, right):
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    return fig


def plot_output_distributions(p, outputs: dict, title: str, ax=None):
    """Notebook 07: the target's p [V] next to each rule's exact output distribution (`outputs`: label -> [V]),
    as grouped bars; the first output green, the second red (a rule that must fail). Returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots()[1]
    series = [("p (target)", p, COLORS["target"])] + [
        (label, probs, (COLORS["accepted"], COLORS["rejected"], COLORS["theory"])[i % 3])
        for i, (label, probs) in enumerate(outputs.items())]
    width = 0.8 / len(series)
    for i, (label, probs, color) in enumerate(series):
        ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(p))], [float(v) for v in probs], width,
               color=color, label=label)
    ax.set(xlabel="token", ylabel="probability", title=title, xticks=range(len(p)))
    ax.legend(fontsize=8)
    return ax
