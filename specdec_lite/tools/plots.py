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
