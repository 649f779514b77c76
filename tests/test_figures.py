"""Figure helpers: checkpoint wording and panel grids."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from specbias import figures


def test_trained_for_counts_epochs_from_the_zero_based_label():
    """Label e is measured after e's update, i.e. after e + 1 epochs of training."""
    assert figures.trained_for(0) == "after 1 epoch"
    assert figures.trained_for(24) == "after 25 epochs"


def test_panel_grid_keeps_n_axes_in_reading_order():
    axes = figures.panel_grid(5, 2.0, 1.5, ncols=3)
    fig = axes[0].figure
    assert len(axes) == 5 and len(fig.axes) == 5  # the sixth cell is removed
    rows_cols = [ax.get_subplotspec().get_geometry()[2] for ax in axes]
    assert rows_cols == [0, 1, 2, 3, 4]
    assert tuple(fig.get_size_inches()) == (6.0, 3.0)
    figures.close(fig)
