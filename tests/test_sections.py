"""Cross-sections: the plane network against the full network at embedded points, the grid layout, and
the exact partition against the grid map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specbias.errors import ConfigError
from specbias.metrics.patterns import activation_patterns, region_ids
from specbias.metrics.sections import plane_model, section, section_grid, slice_slots
from specbias.models import MLP


def make_model(in_dim=16, width=12, depth=3, seed=0):
    torch.manual_seed(seed)
    return MLP(in_dim, width, depth, 3).double()


def embed(u, in_dim, which):
    """The slice's points in the full input space: u in two slots, every other slot 0."""
    x = np.zeros((u.shape[0], in_dim))
    x[:, list(slice_slots(in_dim, which))] = u
    return x


@pytest.mark.parametrize("which", ["low", "high"])
@pytest.mark.parametrize("layers", ["first", "all"])
def test_plane_network_is_the_network_on_the_plane(which, layers):
    model = make_model(seed=3)
    u = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    plane = plane_model(model, which, layers)
    with torch.no_grad():
        want = activation_patterns(model, torch.as_tensor(embed(u, 16, which))).bits()
        got = activation_patterns(plane, torch.as_tensor(u)).bits()
        if layers == "all":
            np.testing.assert_allclose(plane(torch.as_tensor(u)), model(torch.as_tensor(embed(u, 16, which))))
    np.testing.assert_array_equal(got, want[:, : got.shape[1]])
    assert got.shape[1] == (12 if layers == "first" else 36)


def test_slots_follow_the_2d_pe_feature_order():
    assert slice_slots(16, "low") == (0, 1) and slice_slots(16, "high") == (14, 15)


def test_grid_is_the_raw_minus_one_one_grid_rows_following_u2():
    g = section_grid(4).reshape(4, 4, 2)
    np.testing.assert_array_equal(g[0, :, 0], [-1.0, -0.5, 0.0, 0.5])
    np.testing.assert_array_equal(g[:, 0, 1], [-1.0, -0.5, 0.0, 0.5])
    assert np.all(g[1, :, 1] == -0.5)


def test_section_map_and_exact_partition_agree_with_the_network():
    model = make_model(seed=5)
    sec = section(model, "high", "all", size=64)
    with torch.no_grad():
        packed = activation_patterns(model, torch.as_tensor(embed(section_grid(64), 16, "high"))).packed()
    np.testing.assert_array_equal(sec.ids.ravel(), region_ids(packed))
    assert sec.grid_count == sec.ids.max() + 1
    part = sec.partition
    assert part.areas.sum() == pytest.approx(4.0)
    cmp = sec.grid_vs_exact()
    assert cmp.exact_count == part.n_regions >= cmp.grid_count and not cmp.saturated
    # every exact polygon's centroid, embedded, has the polygon's pattern in the full network
    with torch.no_grad():
        at = activation_patterns(model, torch.as_tensor(embed(part.centroids, 16, "high"))).packed()
    np.testing.assert_array_equal(at, part.patterns.packed())
    assert sec.largest_share() == pytest.approx(part.areas.max() / 4)


def arrangement_cells(w: np.ndarray, b: np.ndarray) -> int:
    """Cells of the lines ``w_i·u + b_i = 0`` (general position) inside the open square ``(−1, 1)²``, by
    Euler's formula: 1 + (lines crossing the square) + (crossings of two lines inside the square)."""
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    values = corners @ w.T + b
    crossing = (values.min(axis=0) < 0) & (values.max(axis=0) > 0)
    inside = 0
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            u = np.linalg.solve(w[[i, j]], -b[[i, j]])
            inside += bool(np.all(np.abs(u) < 1))
    return 1 + int(crossing.sum()) + inside


@pytest.mark.parametrize(("which", "seed"), [("low", 1), ("high", 2), ("low", 7)])
def test_first_layer_slice_is_the_line_arrangement(which, seed):
    """The exact first-layer partition has exactly the cells of the arrangement of the plane's lines."""
    model = make_model(width=10, seed=seed)
    sec = section(model, which, "first", size=32)
    slots = list(slice_slots(16, which))
    with torch.no_grad():
        w, b = model.layers[0].weight[:, slots].numpy(), model.layers[0].bias.numpy()
    assert sec.partition.n_regions == arrangement_cells(w, b)
    assert sec.partition.patterns.widths == [10]
    assert sec.grid_count <= sec.partition.n_regions


def test_bad_values_raise_config_error():
    model = make_model()
    with pytest.raises(ConfigError):
        slice_slots(16, "middle")
    with pytest.raises(ConfigError):
        plane_model(model, "low", "some")
    with pytest.raises(ConfigError):
        section_grid(1)
    with pytest.raises(ConfigError):
        slice_slots(1, "low")
    with pytest.raises(ConfigError):
        section(model, "low", "all", size=8, exact=False).grid_vs_exact()
