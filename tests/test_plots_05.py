"""Plot helpers of notebooks 05 and 06 (specdec_lite/tools/plots.py): the expected number of curves, Agg backend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from specdec_lite.tools.plots import (  # noqa: E402
    plot_break_even,
    plot_predicted_vs_measured,
    plot_speedup_grid,
    plot_verify_cost,
)


def test_speedup_grid_has_one_curve_per_alpha_and_c():
    fig = plot_speedup_grid([0.6, 0.8, 0.9], [0.05, 0.4], k_max=8)
    left, right = fig.axes
    assert len(left.lines) == 3 + 1  # one per α, and K + 1
    # one curve and one best-K dot per (α, c), and the break-even line
    assert len(right.lines) == 3 * 2 * 2 + 1
    assert len(right.lines[0].get_xdata()) == 8
    plt.close(fig)


def test_break_even_marks_each_crossing():
    ax = plot_break_even([(0.05, 1.0, "small draft"), (0.4, 1.0, "costly draft"), (0.6, 4.0, "never wins")], k=4)
    # three curves, a dot for the two that cross S = 1, and the line S = 1
    assert len(ax.lines) == 3 + 2 + 1
    plt.close(ax.figure)


def test_verify_cost_two_panels_one_line_per_dtype():
    costs = {"bf16": {1: 0.2, 3: 0.5, 5: 0.8}, "int8": {1: 0.1, 3: 0.11, 5: 0.12}}
    fig = plot_verify_cost(costs)
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 3
    assert list(right.lines[0].get_ydata()) == [1.0, 2.5, 4.0]
    plt.close(fig)


def test_predicted_vs_measured_one_line_per_curve():
    ax = plot_predicted_vs_measured([2, 4, 8], {"paper": [1.2, 1.1, 0.9], "measured": [0.8, 0.7, 0.5]}, "t")
    assert len(ax.lines) == 2 + 1
    plt.close(ax.figure)
