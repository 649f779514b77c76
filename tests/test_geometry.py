"""Geometry metrics against slow, direct references: SVD, double loops, autograd and bisection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specbias.errors import ConfigError
from specbias.metrics.geometry import (
    boundary_distance_argmin,
    boundary_distance_feature,
    boundary_distance_input,
    encoding_distance_matrix,
    encoding_gram,
    hyperplane_cosines,
    hyperplane_matrix,
    hyperplane_stats,
    norm_product,
    spectral_norms,
)
from specbias.models import MLP

# (in_dim, width, depth, out_dim): every depth 1-4, widths 4-32, input dims 1, 2, 5 and 20
CONFIGS = [
    (1, 4, 1, 1),
    (1, 16, 3, 1),
    (2, 8, 2, 3),
    (2, 32, 4, 1),
    (5, 4, 4, 2),
    (5, 12, 1, 1),
    (20, 32, 2, 1),
    (20, 6, 3, 3),
]


def make_model(in_dim, width, depth, out_dim, seed):
    torch.manual_seed(seed)
    return MLP(in_dim, width, depth, out_dim).double()


def inputs(n, in_dim, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, in_dim, generator=g, dtype=torch.float64) * 2 - 1


def pattern(model, x):
    """The full boolean activation pattern ``z > 0`` over all hidden layers, directly."""
    with torch.no_grad():
        return torch.cat([z > 0 for z in model.hidden_preacts(x)], dim=-1)


def unit_jacobians(model, x):
    """``∇_x z_{l,i}(x)`` for every hidden unit by autograd: ``(N, n_hidden, d_in)``."""
    from torch.func import jacrev, vmap

    def f(xi):
        return torch.cat(model.hidden_preacts(xi[None]), dim=1)[0]

    return vmap(jacrev(f))(x).detach()


# ---------------------------------------------------------------------------- parameter norms


@pytest.mark.parametrize(("in_dim", "width", "depth", "out_dim"), CONFIGS)
def test_spectral_norms_match_svd(in_dim, width, depth, out_dim):
    model = make_model(in_dim, width, depth, out_dim, seed=width + depth)
    norms = spectral_norms(model)
    ref = [np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0] for layer in model.layers]
    assert norms.dtype == np.float64 and norms.shape == (depth + 1,)
    np.testing.assert_allclose(norms, ref, rtol=1e-12)
    assert norm_product(norms) == pytest.approx(np.prod(ref), rel=1e-12)


def test_spectral_norms_float32_model_gives_float64():
    torch.manual_seed(0)
    model = MLP(3, 10, 2, 1)
    norms = spectral_norms(model)
    ref = [
        np.linalg.svd(layer.weight.detach().double().numpy(), compute_uv=False)[0] for layer in model.layers
    ]
    assert norms.dtype == np.float64
    np.testing.assert_allclose(norms, ref, rtol=1e-12)


# ---------------------------------------------------------------------------- hyperplane angles


def ref_cosines(w):
    n = w.shape[0]
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ni, nj = np.sqrt(sum(v * v for v in w[i])), np.sqrt(sum(v * v for v in w[j]))
            out[i, j] = np.nan if ni == 0 or nj == 0 else sum(a * b for a, b in zip(w[i], w[j])) / (ni * nj)
    return out


def test_hyperplane_cosines_match_double_loop_and_zero_rows_give_nan():
    model = make_model(5, 9, 3, 1, seed=3)
    with torch.no_grad():
        model.layers[1].weight[4] = 0.0
    mats = hyperplane_cosines(model)
    assert [m.shape for m in mats] == [(9, 9)] * 3
    for m, layer in zip(mats, model.layers[:-1]):
        np.testing.assert_allclose(m, ref_cosines(layer.weight.detach().numpy()), rtol=0, atol=1e-13)
    nan = np.isnan(mats[1])
    assert nan[4].all() and nan[:, 4].all() and nan.sum() == 9 + 9 - 1
    assert not np.isnan(mats[0]).any() and not np.isnan(mats[2]).any()
    np.testing.assert_allclose(np.diag(mats[0]), 1.0, atol=1e-15)


def test_hyperplane_stats_match_direct_computation():
    model = make_model(2, 7, 4, 1, seed=11)
    with torch.no_grad():
        model.layers[2].weight[0] = 0.0
    mats = hyperplane_cosines(model)
    stats = hyperplane_stats(mats)
    for k, m in enumerate(mats):
        vals = [m[i, j] for i in range(7) for j in range(7) if i != j and not np.isnan(m[i, j])]
        assert stats["mean_offdiag"][k] == pytest.approx(sum(vals) / len(vals), rel=1e-12)
        assert stats["frac_positive"][k] == sum(v > 0 for v in vals) / len(vals)
    assert stats["mean_offdiag"].shape == stats["frac_positive"].shape == (4,)


def test_hyperplane_stats_without_off_diagonal_entries_are_nan():
    stats = hyperplane_stats([np.ones((1, 1)), np.array([[1.0, -0.5], [-0.5, 1.0]])])
    assert np.isnan(stats["mean_offdiag"][0]) and np.isnan(stats["frac_positive"][0])
    assert stats["mean_offdiag"][1] == -0.5 and stats["frac_positive"][1] == 0.0


def test_hyperplane_matrix_blocks():
    mats = [np.full((2, 2), 0.25), np.arange(9.0).reshape(3, 3), np.array([[np.nan]])]
    big = hyperplane_matrix(mats)
    assert big.shape == (6, 6)
    bounds = [(0, 2), (2, 5), (5, 6)]
    for a, (r0, r1) in enumerate(bounds):
        for b, (c0, c1) in enumerate(bounds):
            block = big[r0:r1, c0:c1]
            if a == b:
                np.testing.assert_array_equal(block, mats[a])
            else:
                assert np.isnan(block).all()
    with pytest.raises(ConfigError):
        hyperplane_matrix([np.ones((2, 3))])
    with pytest.raises(ConfigError):
        hyperplane_stats([])


# ---------------------------------------------------------------------------- boundary distance


def ref_feature_distance(model, x):
    """Explicit loop over points, layers and units of ``|z| / ‖w‖``."""
    out = []
    with torch.no_grad():
        zs = [z.numpy() for z in model.hidden_preacts(x)]
    for n in range(x.shape[0]):
        best = np.inf
        for z, layer in zip(zs, model.layers[:-1]):
            w = layer.weight.detach().numpy()
            for i in range(w.shape[0]):
                norm = np.sqrt(np.sum(w[i] ** 2))
                if norm > 0:
                    best = min(best, abs(z[n, i]) / norm)
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize(("in_dim", "width", "depth", "out_dim"), CONFIGS[::2])
def test_boundary_distance_feature_matches_loop(in_dim, width, depth, out_dim):
    model = make_model(in_dim, width, depth, out_dim, seed=7)
    x = inputs(25, in_dim, seed=8)
    d = boundary_distance_feature(model, x)
    assert d.dtype == np.float64 and d.shape == (25,)
    np.testing.assert_allclose(d, ref_feature_distance(model, x), rtol=1e-12)


def _bisect_exit(model, x, u, hi, p0, steps=60):
    """Per row, the ``t`` in ``[0, hi]`` where the pattern along ``x + t·u`` leaves ``p0``."""
    lo = torch.zeros_like(hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        changed = (pattern(model, x + mid[:, None] * u) != p0).any(dim=1)
        hi = torch.where(changed, mid, hi)
        lo = torch.where(changed, lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize(("in_dim", "width", "depth", "out_dim"), CONFIGS)
def test_boundary_distance_input_matches_bisection(in_dim, width, depth, out_dim):
    model = make_model(in_dim, width, depth, out_dim, seed=100 + depth * width + in_dim)
    x = inputs(24, in_dim, seed=depth + in_dim)
    near = boundary_distance_argmin(model, x)
    d = torch.from_numpy(near.distance)
    assert near.distance.dtype == np.float64 and torch.isfinite(d).all() and (d > 0).all()
    np.testing.assert_array_equal(near.distance, boundary_distance_input(model, x))

    # the autograd reference: min over units with a nonzero gradient of |z| / ‖∇z‖, and its argmin
    jac = unit_jacobians(model, x)
    with torch.no_grad():
        z = torch.cat(model.hidden_preacts(x), dim=1)
    gnorm = torch.linalg.vector_norm(jac, dim=2)
    per_unit = torch.where(gnorm > 0, z.abs() / gnorm, torch.inf)
    np.testing.assert_allclose(near.distance, per_unit.min(dim=1).values.numpy(), rtol=1e-12)
    flat = torch.from_numpy(near.layer * width + near.unit)
    np.testing.assert_allclose(per_unit.gather(1, flat[:, None])[:, 0].numpy(), near.distance, rtol=1e-12)

    # move towards the minimising unit's hyperplane
    rows = torch.arange(x.shape[0])
    sign = torch.sign(z[rows, flat])
    g = jac[rows, flat]
    u = -sign[:, None] * g / torch.linalg.vector_norm(g, dim=1, keepdim=True)
    p0 = pattern(model, x)
    assert (pattern(model, x + 0.999 * d[:, None] * u) == p0).all()
    assert (pattern(model, x + 1.001 * d[:, None] * u) != p0).any(dim=1).all()
    assert (pattern(model, x + 2 * d[:, None] * u) != p0).any(dim=1).all()
    t = _bisect_exit(model, x, u, 2 * d, p0)
    np.testing.assert_allclose(t.numpy(), near.distance, rtol=1e-9)

    # no boundary is closer than d: along random directions and towards every unit's hyperplane
    gen = torch.Generator().manual_seed(5)
    rand = torch.randn(x.shape[0], 8, in_dim, generator=gen, dtype=torch.float64)
    rand = rand / torch.linalg.vector_norm(rand, dim=2, keepdim=True)
    ok = gnorm > 0
    towards = -torch.sign(z)[:, :, None] * jac / torch.where(ok, gnorm, 1.0)[:, :, None]
    dirs = torch.cat([rand, towards], dim=1)  # (N, M, d_in); rows of units never bounding stay 0
    steps = torch.linspace(0, 0.999, 12, dtype=torch.float64)
    pts = x[:, None, None, :] + steps[None, None, :, None] * d[:, None, None, None] * dirs[:, :, None, :]
    same = pattern(model, pts.reshape(-1, in_dim)) == p0.repeat_interleave(dirs.shape[1] * len(steps), dim=0)
    assert same.all()


def test_input_distance_equals_feature_distance_for_one_hidden_layer():
    for in_dim in (1, 3, 20):
        model = make_model(in_dim, 24, 1, 2, seed=in_dim)
        x = inputs(200, in_dim, seed=in_dim + 1)
        np.testing.assert_allclose(
            boundary_distance_input(model, x), boundary_distance_feature(model, x), rtol=1e-13
        )


def test_deeper_layers_make_input_and_feature_distances_differ():
    model = make_model(2, 16, 3, 1, seed=4)
    x = inputs(200, 2, seed=5)
    d_in, d_feat = boundary_distance_input(model, x), boundary_distance_feature(model, x)
    assert not np.allclose(d_in, d_feat)


def test_chunked_equals_unchunked():
    # Not bit-for-bit: BLAS picks other kernels for tiny batches, so even nn.Linear's output for a
    # batch of 1 differs from the same row in a batch of 121 in the last bit. The units must agree.
    model = make_model(5, 20, 3, 1, seed=9)
    x = inputs(121, 5, seed=10)
    for space in ("input", "feature"):
        full = boundary_distance_argmin(model, x, space, chunk=1000)
        np.testing.assert_array_equal(
            boundary_distance_argmin(model, x, space, chunk=121).distance, full.distance
        )
        for chunk in (1, 7, 64):
            part = boundary_distance_argmin(model, x, space, chunk=chunk)
            np.testing.assert_allclose(part.distance, full.distance, rtol=1e-12, atol=1e-14)
            np.testing.assert_array_equal(part.layer, full.layer)
            np.testing.assert_array_equal(part.unit, full.unit)


def test_units_with_zero_gradient_or_zero_row_never_bound():
    model = make_model(3, 6, 2, 1, seed=12)
    with torch.no_grad():
        model.layers[0].bias[:] = -1e3  # every layer-1 unit is off: layer-2 units are constant in x
        model.layers[1].weight[0] = 0.0  # and layer-2 unit 0 is identically 0: 0/0 must not count
        model.layers[1].bias[0] = 0.0
    x = inputs(40, 3, seed=13)
    w1 = model.layers[0].weight.detach()
    with torch.no_grad():
        z1 = model.layers[0](x)
    only_layer1 = (z1.abs() / torch.linalg.vector_norm(w1, dim=1)).min(dim=1).values.numpy()
    near = boundary_distance_argmin(model, x)
    np.testing.assert_allclose(near.distance, only_layer1, rtol=1e-12)
    assert (near.layer == 0).all()
    np.testing.assert_allclose(
        boundary_distance_feature(model, x), ref_feature_distance(model, x), rtol=1e-12
    )
    assert not np.isnan(boundary_distance_feature(model, x)).any()

    with torch.no_grad():
        model.layers[0].weight[:] = 0.0  # now no unit bounds anything
        model.layers[1].weight[:] = 0.0
    for space in ("input", "feature"):
        near = boundary_distance_argmin(model, x, space)
        assert np.isposinf(near.distance).all() and (near.layer == -1).all() and (near.unit == -1).all()


def test_float32_model_and_bad_arguments():
    model64 = make_model(4, 16, 3, 1, seed=14)
    model32 = make_model(4, 16, 3, 1, seed=14).float()
    x = inputs(50, 4, seed=15)
    for fn in (boundary_distance_input, boundary_distance_feature):
        d32 = fn(model32, x.float())
        assert d32.dtype == np.float64
        np.testing.assert_allclose(d32, fn(model64, x), rtol=2e-3)
    assert boundary_distance_input(model64, x[:0]).shape == (0,)
    for bad in (
        dict(space="weights"),
        dict(chunk=0),
        dict(chunk=2.5),
    ):
        with pytest.raises(ConfigError):
            boundary_distance_argmin(model64, x, **bad)
    with pytest.raises(ConfigError):
        boundary_distance_input(model64, x[:, :3])
    # a NumPy integer is an integer
    np.testing.assert_array_equal(
        boundary_distance_argmin(model64, x, chunk=np.int64(7)).distance,
        boundary_distance_argmin(model64, x, chunk=7).distance,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_boundary_distance_on_cuda_matches_cpu():
    model = make_model(5, 32, 3, 1, seed=16)
    x = inputs(100, 5, seed=17)
    cpu_in, cpu_feat = boundary_distance_input(model, x), boundary_distance_feature(model, x)
    model = model.cuda()
    np.testing.assert_allclose(boundary_distance_input(model, x.cuda()), cpu_in, rtol=1e-10)
    np.testing.assert_allclose(boundary_distance_feature(model, x.cuda()), cpu_feat, rtol=1e-10)


# ---------------------------------------------------------------------------- encoding distances


def test_encoding_distance_matrix_matches_broadcasting():
    gen = torch.Generator().manual_seed(18)
    feats = torch.randn(70, 20, generator=gen, dtype=torch.float64) * 3  # > 25 rows: cdist's mm regime
    dist = encoding_distance_matrix(feats)
    a = feats.numpy()
    ref = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(axis=-1))
    np.testing.assert_allclose(dist.numpy(), ref, rtol=0, atol=1e-10)
    assert torch.equal(dist, dist.T)
    assert (torch.diagonal(dist) == 0).all()
    np.testing.assert_allclose(encoding_gram(feats).numpy(), a @ a.T, rtol=1e-13)
    with pytest.raises(ConfigError):
        encoding_distance_matrix(feats[0])
