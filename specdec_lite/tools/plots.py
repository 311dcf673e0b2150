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


# --- notebook 05 ---
from typing import TYPE_CHECKING, Sequence  # noqa: E402 (each notebook's helpers keep their imports in their section)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
