"""Exact region geometry against independent references: dense sampling, adaptive bisection, companion
matrices, forward passes at piece midpoints and polygon centroids, HiGHS inradii and regioncam."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from specbias.encodings import BasicEncoding, GaussianRFF, NeRFPE, Raw, RestrictedPE
from specbias.errors import ConfigError
from specbias.metrics.patterns import activation_patterns, count_regions, hamming
from specbias.metrics.regions import (
    dense_region_count_1d,
    exact_partition_2d,
    exact_regions_1d,
    grid_vs_exact_1d,
    grid_vs_exact_2d,
    missed_pieces,
    piece_density,
    polygon_inradii,
    region_lower_bound_2d,
)
from specbias.metrics.regions.segment import _segment_basis
from specbias.models import MLP


def make_model(encoding, width, depth, seed):
    torch.manual_seed(seed)
    return MLP(encoding.out_dim, width, depth, 1).double()


def packed_at(model, encoding, t):
    with torch.no_grad():
        feats = encoding(torch.as_tensor(np.asarray(t, dtype=np.float64).reshape(-1, encoding.in_dim)))
        return activation_patterns(model, feats).packed()


def preacts_at(model, encoding, t):
    with torch.no_grad():
        feats = encoding(torch.as_tensor(np.asarray(t, dtype=np.float64).reshape(-1, encoding.in_dim)))
        return torch.cat(model.hidden_preacts(feats), dim=1).numpy()


def refined_count(model, encoding, a, b, n0=4097, tol=1e-12):
    """Adaptive bisection reference: sample ``n0`` points, then bisect every neighbouring pair whose
    patterns differ until it is narrower than ``tol``; count pattern changes + 1."""
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))

    def pats(s):
        return packed_at(model, encoding, a[None] + s[:, None] * (b - a)[None])

    s = np.linspace(0.0, 1.0, n0)
    p = pats(s)
    while True:
        differ = np.any(p[1:] != p[:-1], axis=1) & (np.diff(s) > tol)
        if not differ.any():
            return 1 + int(np.any(p[1:] != p[:-1], axis=1).sum())
        idx = np.flatnonzero(differ)
        m = 0.5 * (s[idx] + s[idx + 1])
        s = np.insert(s, idx + 1, m)
        p = np.insert(p, idx + 1, pats(m), axis=0)


# ---------------------------------------------------------------------------- 1D: the segment basis


@pytest.mark.parametrize(
    ("encoding", "a", "b"),
    [
        (Raw(-1.0, 2.0), 0.0, 1.0),
        (NeRFPE(4), 0.0, 1.0),
        (NeRFPE(3, base=2 * math.pi, include_input=True), 0.2, 0.9),
        (GaussianRFF(5.0, m=8, seed=3), 0.0, 1.0),
        (BasicEncoding(in_dim=1), 0.1, 0.6),
        (RestrictedPE(3.0, 8, in_dim=2), [0.1, 0.2], [0.9, 0.4]),
        (NeRFPE(3, in_dim=2), [0.0, 0.3], [1.0, 0.3]),  # horizontal line: zero frequencies in y
        (GaussianRFF(2.0, m=6, in_dim=2), [0.0, 0.0], [1.0, 1.0]),
    ],
)
def test_segment_basis_reproduces_the_encoding(encoding, a, b):
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    basis = _segment_basis(encoding, a, b)
    s = np.random.default_rng(0).uniform(0, 1, 257)
    ang = s[:, None] * basis.nu[None]
    phi = np.concatenate((np.ones((s.size, 1)), s[:, None], np.cos(ang), np.sin(ang)), axis=1)
    want = encoding(torch.as_tensor(a[None] + s[:, None] * (b - a)[None])).numpy()
    np.testing.assert_allclose(phi @ basis.M.T, want, atol=1e-12)
    assert np.all(basis.nu > 0) and np.unique(basis.nu).size == basis.nu.size


# ---------------------------------------------------------------------------- 1D: raw coordinates


@pytest.mark.parametrize(
    ("width", "depth", "seed", "a", "b"),
    [(16, 3, 0, 0.0, 1.0), (32, 2, 1, -1.0, 1.0), (12, 3, 2, [-1.0, 0.5], [1.0, -0.25])],
)
def test_raw_exact_count_equals_dense_sampling_at_1e6(width, depth, seed, a, b):
    enc = Raw(in_dim=np.size(a))
    model = make_model(enc, width, depth, seed)
    regions = exact_regions_1d(model, enc, a, b)
    n = 1_000_000
    spacing = regions.length / (n - 1)
    assert regions.widths.min() > 2 * spacing  # precondition: sampling cannot miss a region
    assert regions.n_pieces > 5
    assert dense_region_count_1d(model, enc, a, b, n) == regions.n_pieces
    assert regions.n_distinct == regions.n_pieces  # raw regions are convex: no re-entry
    assert missed_pieces(regions, n).size == 0


# ---------------------------------------------------------------------------- 1D: every encoding

CASES_1D = [
    (Raw(in_dim=1), 24, 3, 0, 0.0, 1.0),
    (Raw(-2.0, 2.0, in_dim=2), 16, 2, 1, [0.0, 0.0], [1.0, 0.7]),
    (NeRFPE(4), 16, 3, 2, 0.0, 1.0),
    (NeRFPE(5, base=2 * math.pi, include_input=True), 16, 2, 3, 0.0, 1.0),
    (GaussianRFF(3.0, m=16, seed=1), 16, 3, 4, 0.0, 1.0),
    (NeRFPE(3, in_dim=2), 16, 2, 5, [0.05, 0.1], [0.95, 0.8]),  # incommensurate frequencies
    (BasicEncoding(in_dim=1), 16, 3, 6, 0.0, 1.0),
]


@pytest.mark.parametrize(("enc", "width", "depth", "seed", "a", "b"), CASES_1D)
def test_pieces_have_their_pattern_and_breakpoints_are_zeros(enc, width, depth, seed, a, b):
    model = make_model(enc, width, depth, seed)
    regions = exact_regions_1d(model, enc, a, b)
    assert regions.n_unresolved == 0 and regions.n_merged == 0
    assert regions.knots[0] == 0.0 and regions.knots[-1] == 1.0 and np.all(np.diff(regions.knots) > 0)
    packed = regions.patterns.packed()
    np.testing.assert_array_equal(packed_at(model, enc, regions.points(regions.midpoints())), packed)
    assert np.all(np.any(packed[1:] != packed[:-1], axis=1))  # adjacent pieces differ
    z = preacts_at(model, enc, regions.points(regions.breakpoints))
    assert np.all(np.abs(z).min(axis=1) < 1e-9)
    # each breakpoint flips exactly the units that vanish there
    flips = regions.patterns.bits()[1:] != regions.patterns.bits()[:-1]
    assert np.all(np.abs(z[flips]) < 1e-9)


@pytest.mark.parametrize(("enc", "width", "depth", "seed", "a", "b"), CASES_1D[2:])
def test_encoded_exact_count_matches_adaptive_bisection(enc, width, depth, seed, a, b):
    model = make_model(enc, width, depth, seed)
    regions = exact_regions_1d(model, enc, a, b)
    assert regions.n_pieces == refined_count(model, enc, a, b)
    assert regions.n_pieces >= dense_region_count_1d(model, enc, a, b, 200_000)


def _companion_roots(w, bias, scales, base):
    """Roots in [0, 1] of ``bias + Σ_l w_s sin(n_l·base·t) + w_c cos(n_l·base·t)`` as a polynomial in
    ``z = exp(i·base·t)`` (``n_l`` integers): eigenvalues of the companion matrix (``np.roots``)."""
    n = np.rint(scales / base).astype(int)
    top = n.max()
    coef = np.zeros(2 * top + 1, dtype=complex)  # coef[k] multiplies z^k
    coef[top] += bias
    for nl, ws, wc in zip(n, w[0::2], w[1::2]):
        coef[top + nl] += ws / 2j + wc / 2
        coef[top - nl] += -ws / 2j + wc / 2
    z = np.roots(coef[::-1])
    z = z[np.abs(np.abs(z) - 1) < 1e-6]
    theta = np.mod(np.angle(z), 2 * math.pi)
    period = 2 * math.pi / base
    t = np.concatenate([(theta / base) + k * period for k in range(math.ceil(1 / period) + 1)])
    return np.sort(t[(t > 0) & (t < 1)])


@pytest.mark.parametrize(("n_freqs", "base"), [(4, math.pi), (6, math.pi), (3, 2 * math.pi)])
def test_one_layer_breakpoints_equal_companion_matrix_roots(n_freqs, base):
    enc = NeRFPE(n_freqs, base=base)
    model = make_model(enc, 12, 1, n_freqs)
    regions = exact_regions_1d(model, enc)
    w = model.layers[0].weight.detach().numpy()
    b = model.layers[0].bias.detach().numpy()
    roots = np.sort(np.concatenate([_companion_roots(w[i], b[i], enc._scales(), base) for i in range(12)]))
    assert roots.size == regions.breakpoints.size
    np.testing.assert_allclose(regions.breakpoints, roots, atol=1e-8)


@pytest.mark.parametrize(
    "enc",
    [
        Raw(-1.0, 1.0),
        NeRFPE(5),
        Raw(-1.0, 1.0, in_dim=2),
        NeRFPE(3, in_dim=2),
        GaussianRFF(2.0, m=12, in_dim=2),
    ],
)
def test_hamming_between_ends_is_at_most_regions_crossed_minus_one(enc):
    """Property (issue 7): along any segment, H(start, end) <= (exact regions crossed) − 1. Checked on
    random segments and on random sub-segments [s₁, s₂] of each, whose crossed pieces are the knots
    between s₁ and s₂; the patterns at the ends come from forward passes, not from the exact pieces."""
    model = make_model(enc, 16, 3, 7)
    rng = np.random.default_rng(7)
    for _ in range(12):
        a, b = rng.uniform(0, 1, enc.in_dim), rng.uniform(0, 1, enc.in_dim)
        regions = exact_regions_1d(model, enc, a, b)
        s = np.sort(rng.uniform(0, 1, (40, 2)), axis=1)
        s[0] = (0.0, 1.0)
        with torch.no_grad():
            pats = activation_patterns(model, enc(torch.as_tensor(regions.points(s.ravel()))))
        h = hamming(pats, np.arange(0, 80, 2), np.arange(1, 80, 2)).sum(axis=0)
        crossed = regions.locate(s[:, 1]) - regions.locate(s[:, 0]) + 1
        assert np.all(h <= crossed - 1)
        assert h[0] <= regions.n_pieces - 1


def test_missed_pieces_explain_the_dense_count_exactly():
    enc = NeRFPE(6)
    model = make_model(enc, 32, 3, 0)
    regions = exact_regions_1d(model, enc)
    n = 4096
    missed = missed_pieces(regions, n)
    assert missed.size > 0  # the case is only meaningful when sampling misses something
    seen = np.setdiff1d(np.arange(regions.n_pieces), missed)
    packed = regions.patterns.packed()[seen]
    expected = 1 + int(np.any(packed[1:] != packed[:-1], axis=1).sum())
    assert dense_region_count_1d(model, enc, 0.0, 1.0, n) == expected < regions.n_pieces
    assert np.all(regions.widths[missed] < 1 / (n - 1))


# ---------------------------------------------------------------------------- 2D partition


def _check_partition(model, part, lo, hi, enc):
    area = (hi[0] - lo[0]) * (hi[1] - lo[1])
    assert abs(part.areas.sum() - area) < 1e-9
    assert np.all(part.areas > 0)
    packed = part.patterns.packed()
    assert count_regions(packed) == part.n_regions
    np.testing.assert_array_equal(packed_at(model, enc, part.centroids), packed)
    np.testing.assert_array_equal(packed_at(model, enc, part.centers), packed)
    for i in range(part.n_regions):
        p = part.polygon(i)
        e = np.roll(p, -1, axis=0) - p
        cross = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
        assert np.all(cross >= -1e-12), f"polygon {i} is not convex / counter-clockwise"
    assert np.all(part.inradii > 0)


@pytest.mark.parametrize(
    ("width", "depth", "seed", "enc"),
    [(8, 2, 0, Raw(in_dim=2)), (24, 2, 1, Raw(in_dim=2)), (12, 3, 2, Raw(-1.0, 1.0, in_dim=2))],
)
def test_partition_tiles_the_rectangle_with_convex_regions_of_their_pattern(width, depth, seed, enc):
    model = make_model(enc, width, depth, seed)
    lo, hi = (-1.0, -0.5), (1.0, 1.5)
    part = exact_partition_2d(model, enc, lo, hi)
    assert part.n_regions > 10
    _check_partition(model, part, lo, hi, enc)
    # every pattern seen on a fine grid is one of the exact regions
    n = 300
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    grid = packed_at(model, enc, np.stack((xs.ravel(), ys.ravel()), 1))
    assert count_regions(np.concatenate((grid, part.patterns.packed()))) == part.n_regions
    assert count_regions(grid) <= part.n_regions


def test_partition_count_equals_grid_count_when_regions_are_large():
    model = make_model(Raw(in_dim=2), 6, 2, 3)
    part = exact_partition_2d(model)
    n = 400
    spacing = 1 / (n - 1)
    assert part.inradii.min() > spacing / math.sqrt(2)  # every region's incircle holds a grid point
    xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    assert (
        count_regions(packed_at(model, Raw(in_dim=2), np.stack((xs.ravel(), ys.ravel()), 1)))
        == part.n_regions
    )


def test_exact_inradii_match_highs():
    pytest.importorskip("scipy")
    model = make_model(Raw(in_dim=2), 16, 2, 4)
    part = exact_partition_2d(model)
    k = min(part.n_regions, 150)
    starts = part.starts[: k + 1]
    radii, _ = polygon_inradii(part.vertices[: starts[-1]], starts, method="highs")
    np.testing.assert_allclose(part.inradii[:k], radii, rtol=1e-7, atol=1e-12)


def _regioncam_faces(model):
    import regioncam

    rc = regioncam.Regioncam(size=1)
    for layer in model.layers[:-1]:
        rc.linear(layer.weight.detach().float().numpy().T, layer.bias.detach().float().numpy())
        rc.relu()
    return rc.num_faces


def _briefly_trained(seed):
    torch.manual_seed(seed)
    model = MLP(2, 16, 2, 1)
    x = torch.rand(256, 2) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: thread start-up would dominate on a busy machine
    try:
        for _ in range(200):  # plain gradient descent
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
    finally:
        torch.set_num_threads(threads)
    return model


@pytest.mark.parametrize("net", ["random-32x2", "random-16x3", "trained-16x2"])
def test_partition_count_matches_regioncam(net):
    pytest.importorskip("regioncam")
    if net == "trained-16x2":
        model = _briefly_trained(0)
    else:
        width, depth = (int(v) for v in net.split("-")[1].split("x"))
        torch.manual_seed(11)
        model = MLP(2, width, depth, 1)  # float32 weights: regioncam works in float32
    part = exact_partition_2d(model, None, (-1.0, -1.0), (1.0, 1.0))
    assert part.n_regions == _regioncam_faces(model)


# ---------------------------------------------------------------------------- 2D lower bound


def test_quadtree_bound_is_between_grid_and_exact_counts_for_raw_nets():
    enc = Raw(in_dim=2)
    model = make_model(enc, 16, 2, 0)
    exact = exact_partition_2d(model, inradius=False).n_regions
    n = 32
    ii, jj = np.meshgrid(np.arange(n) / n, np.arange(n) / n)
    grid = np.stack((ii.ravel(), jj.ravel()), 1)
    grid_count = count_regions(packed_at(model, enc, grid))
    coarse = region_lower_bound_2d(model, enc, min_cell=2**-6, extra_points=grid)
    assert grid_count <= coarse.lower_bound <= exact
    fine = region_lower_bound_2d(model, enc, min_cell=2**-10)
    assert fine.lower_bound == exact  # regions here are far wider than 2^-10
    assert abs(fine.certified_area + fine.unresolved_area - 1.0) < 1e-12
    assert not fine.truncated
    capped = region_lower_bound_2d(model, enc, min_cell=2**-10, max_evaluations=3000)
    assert capped.truncated and capped.lower_bound <= exact
    assert abs(capped.certified_area + capped.unresolved_area - 1.0) < 1e-12


@pytest.mark.parametrize("enc", [NeRFPE(3, in_dim=2), GaussianRFF(1.5, m=8, in_dim=2), Raw(in_dim=2)])
def test_certified_cells_lie_inside_one_region(enc):
    model = make_model(enc, 16, 2, 1)
    bound = region_lower_bound_2d(model, enc, min_cell=2**-7)
    assert bound.n_certified > 0
    rng = np.random.default_rng(0)
    pick = rng.choice(bound.n_certified, size=min(bound.n_certified, 4000), replace=False)
    cells = bound.certified[pick]
    u = np.linspace(0.0, 1.0, 5)
    offsets = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)  # a 5×5 grid per cell, edges included
    pts = (cells[:, None, :2] + offsets[None] * cells[:, None, 2:]).reshape(-1, 2)
    want = np.repeat(bound.certified_patterns[pick], offsets.shape[0], axis=0)
    np.testing.assert_array_equal(packed_at(model, enc, pts), want)
    assert bound.lower_bound >= count_regions(bound.certified_patterns)


# ---------------------------------------------------------------------------- grid vs exact


def test_grid_vs_exact_1d_flags_saturation_and_lists_missed_pieces():
    enc = NeRFPE(6)
    model = make_model(enc, 32, 3, 0)
    small = grid_vs_exact_1d(model, enc, 16)
    assert small.saturated and small.grid_count == 16 and small.hidden > 0
    assert small.missed.size > 0
    raw = Raw()
    model = make_model(raw, 16, 2, 1)
    big = grid_vs_exact_1d(model, raw, 20_000)
    assert not big.saturated and big.hidden == 0 and big.missed.size == 0
    assert big.exact_count == exact_regions_1d(model, raw).n_distinct


def test_grid_vs_exact_1d_reuses_given_regions():
    enc = NeRFPE(4)
    model = make_model(enc, 16, 3, 2)
    regions = exact_regions_1d(model, enc, 0.0, 1.0)
    given, fresh = grid_vs_exact_1d(model, enc, 512, regions=regions), grid_vs_exact_1d(model, enc, 512)
    assert (given.grid_count, given.exact_count) == (fresh.grid_count, fresh.exact_count)
    np.testing.assert_array_equal(given.missed, fresh.missed)
    with pytest.raises(ConfigError):
        grid_vs_exact_1d(model, enc, 512, 0.0, 0.5, regions=regions)


@pytest.mark.parametrize("enc", [Raw(), NeRFPE(5)])
def test_piece_density_counts_breakpoints_per_unit_length(enc):
    model = make_model(enc, 24, 3, 4)
    regions = exact_regions_1d(model, enc, 0.2, 0.7)  # a segment of length 0.5
    centres, width = np.linspace(0.0, 1.0, 23), 0.1
    bp = regions.breakpoints
    lo, hi = np.clip(centres - width / 2, 0, 1), np.clip(centres + width / 2, 0, 1)
    brute = [np.sum((bp >= a) & (bp < b)) / ((b - a) * 0.5) for a, b in zip(lo, hi)]
    np.testing.assert_allclose(piece_density(regions, centres, width), brute)
    # integrating the density over non-overlapping windows gives the breakpoint count
    tiles = piece_density(regions, np.arange(0.05, 1.0, 0.1), 0.1)
    assert tiles.sum() * 0.1 * 0.5 == pytest.approx(bp.size)
    with pytest.raises(ConfigError):
        piece_density(regions, [1.5], 0.1)


def test_grid_vs_exact_2d_raw_and_encoded():
    raw = Raw(in_dim=2)
    model = make_model(raw, 16, 2, 2)
    cmp = grid_vs_exact_2d(model, raw, 64)
    assert not cmp.exact_is_lower_bound and cmp.exact_count == exact_partition_2d(model).n_regions
    assert cmp.grid_count <= cmp.exact_count and not cmp.saturated
    enc = NeRFPE(5, in_dim=2)
    model = make_model(enc, 32, 2, 2)
    cmp = grid_vs_exact_2d(model, enc, 8, min_cell=2**-6)
    assert cmp.exact_is_lower_bound and cmp.saturated and cmp.exact_count > cmp.grid_count == 64


# ---------------------------------------------------------------------------- bad values


def test_bad_values_raise_config_error():
    enc = Raw()
    model = make_model(enc, 4, 1, 0)
    with pytest.raises(ConfigError, match="differ"):
        exact_regions_1d(model, enc, 0.5, 0.5)
    with pytest.raises(ConfigError, match="segment end"):
        exact_regions_1d(model, enc, [0.0, 1.0], 1.0)
    with pytest.raises(ConfigError, match="does not match"):
        exact_regions_1d(model, NeRFPE(2))
    with pytest.raises(ConfigError, match="tolerance"):
        exact_regions_1d(model, enc, tol=0.0)
    with pytest.raises(ConfigError, match="samples"):
        dense_region_count_1d(model, enc, n=1)
    pe2 = NeRFPE(2, in_dim=2)
    with pytest.raises(ConfigError, match="raw 2D"):
        exact_partition_2d(make_model(pe2, 4, 1, 0), pe2)
    raw2 = Raw(in_dim=2)
    with pytest.raises(ConfigError, match="lo < hi"):
        exact_partition_2d(make_model(raw2, 4, 1, 0), raw2, (0.0, 0.0), (1.0, 0.0))
    with pytest.raises(ConfigError, match="2D encoding"):
        region_lower_bound_2d(model, enc)
    with pytest.raises(ConfigError, match="inradius method"):
        polygon_inradii(np.zeros((3, 2)), np.array([0, 3]), method="lp")


@pytest.mark.parametrize(
    "enc",
    [
        Raw(-1.0, 3.0, in_dim=2),
        NeRFPE(3, in_dim=2),
        NeRFPE(2, base=2 * math.pi, include_input=True, in_dim=2),
        GaussianRFF(2.0, m=5, in_dim=2),
        BasicEncoding(in_dim=2),
        RestrictedPE(2.0, 8, in_dim=2),
    ],
)
def test_feature_jacobian_matches_autograd(enc):
    from specbias.metrics.regions.bound2d import _feature_jacobian

    t = torch.rand(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jac = torch.autograd.functional.jacobian(lambda x: enc(x).sum(0), t)  # (F, N, d): rows independent
    np.testing.assert_allclose(_feature_jacobian(enc, t.numpy()), jac.permute(2, 1, 0).numpy(), atol=1e-12)


def test_tangency_is_reported_unresolved_and_does_not_split():
    enc = NeRFPE(2)  # features sin(πt), cos(πt), sin(2πt), cos(2πt)
    model = MLP(4, 2, 1, 1).double()
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].weight[0, 3] = 1.0  # 1 + cos(2πt) >= 0, touching 0 at t = 1/2
        model.layers[0].weight[1, 0] = 1.0  # sin(πt) - 1/2: crossings at 1/6 and 5/6
        model.layers[0].bias.copy_(torch.tensor([1.0, -0.5]))
    regions = exact_regions_1d(model, enc)
    np.testing.assert_allclose(regions.knots, [0, 1 / 6, 5 / 6, 1], atol=1e-14)
    assert regions.n_unresolved >= 1  # the tangency could not be certified root-free
    np.testing.assert_array_equal(regions.patterns.bits(), [[True, False], [True, True], [True, False]])
