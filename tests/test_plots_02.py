"""Cheap checks of the plotting helpers of notebooks 00, 01 and 02 (Agg backend, no model)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

from specdec_lite.tools import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_visible_marks_spaces_and_newlines():
    assert plots.visible(" a\n") == "␣a↵"


def test_parameter_groups_one_bar_per_part():
    groups = {"draft q": {"embedding": 10, "transformer blocks": 30, "output head": 10},
              "target p": {"embedding": 20, "transformer blocks": 90, "output head": 20}}
    ax = plots.plot_parameter_groups(groups)
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_yticklabels()] == ["draft q", "target p"]


def test_agreement_strip_one_patch_per_token():
    ax = plots.plot_agreement_strip(["a", " b", "\n"], [True, False, True])
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 3


def test_distributions_one_panel_per_setting():
    qs = {"T=1": torch.tensor([0.5, 0.3, 0.2]), "T=0": torch.tensor([1.0, 0.0, 0.0])}
    fig = plots.plot_distributions(qs, [0, 1, 2], ["a", "b", "c"], "title")
    assert len(fig.axes) == 2
    assert all(len(ax.patches) == 3 for ax in fig.axes)


def test_verification_cost_three_lines():
    ax = plots.plot_verification_cost([1, 2, 5], [1.0, 1.5, 3.0], "measured")
    assert len(ax.get_lines()) == 3


def test_verify_rows_boxes_and_statuses():
    ax = plots.plot_verify_rows(["a", "b", "c", "d"], ["b", "x", "d", "e"])  # K = 3: x_1 accepted, x_2 rejected
    assert len([p for p in ax.patches if isinstance(p, FancyBboxPatch)]) == 2 * 4
    texts = [t.get_text() for t in ax.texts]
    assert "accepts x_1" in texts and "rejects x_2: correction" in texts and texts.count("discarded") == 2
    assert any("bonus row" in t for t in texts)


def test_verify_rows_all_accepted_shows_the_bonus():
    ax = plots.plot_verify_rows(["a", "b", "c"], ["b", "c", "z"])
    assert "bonus token" in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError):
        plots.plot_verify_rows(["a", "b"], ["b"])
