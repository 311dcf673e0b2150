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
