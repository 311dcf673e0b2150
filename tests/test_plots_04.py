"""The plotting helpers of notebooks 03 and 04 (Agg backend): the right number of bars, a title from the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from specdec_lite.tools.plots import plot_rule_bars, plot_sample_histograms, plot_tokens_per_step  # noqa: E402


def test_tokens_per_step_title_is_computed_from_the_bars():
    ax = plot_tokens_per_step([2, 4, 4, 4], k=4, kept=16)
    assert len(ax.patches) == 2 * 4
    assert ax.get_title() == "18 tokens emitted in 4 target forwards (the first 16 kept)"
    ax = plot_tokens_per_step([0, 1], k=2)
    assert ax.get_title() == "3 tokens emitted in 2 target forwards"
    plt.close("all")


def test_rule_bars_fill_up_to_p():
    p, q = torch.tensor([0.5, 0.3, 0.2, 0.0]), torch.tensor([0.2, 0.5, 0.1, 0.2])
    ax = plot_rule_bars(p, q)
    bars = ax.patches
    assert len(bars) == 4 * 4  # min(p, q), max(0, p - q), p outline, q outline
    filled_top = [bars[i].get_y() + bars[i].get_height() for i in range(4, 8)]  # the stacked residual bars
    assert torch.allclose(torch.tensor(filled_top, dtype=torch.float32), p)
    plt.close("all")


def test_sample_histograms_one_group_per_token():
    p = torch.tensor([0.25, 0.25, 0.5])
    samples = {"a": torch.tensor([0, 1, 2, 2]), "b": torch.tensor([2, 2, 2, 2])}
    ax = plot_sample_histograms(p, samples, tick_labels=["x", "y", "z"])
    assert len(ax.patches) == 3 * 3
    assert [round(b.get_height(), 2) for b in ax.patches[6:9]] == [0.0, 0.0, 1.0]
    plt.close("all")
