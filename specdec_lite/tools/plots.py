"""One plot style for every notebook: the same colours for the same roles.

What it does not do: save figures (notebooks show them inline; the benchmark saves its own PNG).
"""

from __future__ import annotations

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


def plot_method_comparison(rows: list[dict]):
    """Notebook 07: tokens per target forward and tokens per second per method, side by side, from the rows of
    `bench.compare_methods` (keys method, tokens_per_forward, tokens_per_s). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    names = [row["method"] for row in rows]
    palette = [COLORS[role] for role in ("target", "draft", "rejected", "accepted", "correction", "bonus", "theory")]
    colors = [palette[i % len(palette)] for i in range(len(rows))]
    left.bar(names, [row["tokens_per_forward"] for row in rows], color=colors)
    right.bar(names, [row["tokens_per_s"] for row in rows], color=colors)
    left.set(title="tokens per target forward")
    right.set(title="tokens per second (this machine)")
    for ax in (left, right):
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
