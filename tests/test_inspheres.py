"""Chebyshev balls of activation regions against brute force: LP vertex enumeration in 2D/3D, forward
passes for the region constraints, and the one-LP solution for the cutting planes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from specbias.encodings import NeRFPE
from specbias.errors import ConfigError
from specbias.metrics.inspheres import (
    chebyshev_ball,
    inspheres,
    local_constraints,
    off_manifold_points,
    on_manifold_points,
    region_ball,
)
from specbias.metrics.patterns import activation_patterns
from specbias.models import MLP


def make_model(in_dim, width=12, depth=3, seed=0):
    torch.manual_seed(seed)
    return MLP(in_dim, width, depth, 1).double()


def brute_force_radius(A, b, box):
    """Enumerate every vertex of the LP's feasible set in (c, r): each (d+1)-subset of constraints made
    tight, solved, kept when feasible; the best r is the optimum (an LP attains it at a vertex)."""
    d = A.shape[1]
    rows = [np.r_[a / np.linalg.norm(a), 1.0] for a in A] + [
        np.r_[s * e, 1.0] for e in np.eye(d) for s in (1.0, -1.0)
    ]
    rhs = [bi / np.linalg.norm(a) for a, bi in zip(A, b)] + [
        box[1] if s > 0 else -box[0] for _ in range(d) for s in (1.0, -1.0)
    ]
    rows, rhs = np.array(rows), np.array(rhs)
    best = -np.inf
    for subset in itertools.combinations(range(len(rows)), d + 1):
        m = rows[list(subset)]
        if abs(np.linalg.det(m)) < 1e-12:
            continue
        x = np.linalg.solve(m, rhs[list(subset)])
        if x[-1] >= 0 and np.all(rows @ x <= rhs + 1e-9):
            best = max(best, x[-1])
    return best


@pytest.mark.parametrize(("d", "m", "seed"), [(2, 6, 0), (2, 9, 1), (3, 7, 2), (3, 10, 3)])
def test_lp_radius_equals_vertex_enumeration(d, m, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(-0.5, 0.5, d)
    A = rng.normal(size=(m, d))
    b = A @ p + rng.uniform(0.05, 1.0, m)  # p strictly inside
    ball = chebyshev_ball(A, b, box=(-1.0, 1.0))
    np.testing.assert_allclose(ball.radius, brute_force_radius(A, b, (-1.0, 1.0)), atol=1e-8)
    # the ball is inside: every constraint and the box hold at c ± r along every direction
    u = rng.normal(size=(200, d))
    pts = ball.center + ball.radius * u / np.linalg.norm(u, axis=1, keepdims=True)
    assert np.all(pts @ A.T <= b + 1e-8) and np.all(np.abs(pts) <= 1 + 1e-8)


@pytest.mark.parametrize(("layers", "width"), [("all", 24), ("first", 64)])
def test_cutting_planes_reach_the_one_lp_optimum(layers, width):
    model = make_model(8, width=width, depth=3, seed=4)
    rng = np.random.default_rng(0)
    for p in off_manifold_points(rng, 8, 8):
        one = region_ball(model, p, layers)
        cut = region_ball(model, p, layers, start=10)
        np.testing.assert_allclose(cut.radius, one.radius, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(cut.center, one.center, atol=1e-6)
    # inspheres' own start (4·(d + 1) = 36 rows) is below the row count, so it cuts too
    assert local_constraints(model, p, layers)[0].shape[0] > 36
    assert inspheres(model, p[None], layers).radii[0] == pytest.approx(one.radius, rel=1e-7)


def test_cutting_planes_without_a_box_fall_back_from_an_unbounded_relaxation():
    """Without the cube, a start of fewer than d + 1 rows is an unbounded LP: every row is then used,
    and the result is the one-LP optimum, an unbounded cell included."""
    model = make_model(3, width=40, depth=1, seed=6)
    rng = np.random.default_rng(6)
    radii = []
    for p in off_manifold_points(rng, 12, 3):
        A, b = local_constraints(model, p)
        one = chebyshev_ball(A, b, box=None)
        cut = chebyshev_ball(A, b, box=None, near=p, start=3)
        np.testing.assert_allclose(cut.radius, one.radius, rtol=1e-7)
        radii.append(one.radius)
    assert np.isfinite(radii).any()
    wedge = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert chebyshev_ball(wedge, np.ones(3), box=None, near=np.zeros(2), start=1).radius == np.inf


@pytest.mark.parametrize("layers", ["first", "all"])
def test_region_constraints_are_the_points_with_the_same_pattern(layers):
    """Membership in {A x <= b} against a forward pass, on points scattered around p (in and out)."""
    model = make_model(4, width=10, depth=3, seed=1)
    rng = np.random.default_rng(1)
    n_units = 10 if layers == "first" else 30
    inside = outside = 0
    for p in off_manifold_points(rng, 6, 4):
        A, b = local_constraints(model, p, layers)
        assert np.all(A @ p <= b)
        x = p + rng.normal(scale=0.3, size=(400, 4))
        with torch.no_grad():
            bits = activation_patterns(model, torch.as_tensor(np.vstack((p, x)))).bits()[:, :n_units]
        same = np.all(bits[1:] == bits[0], axis=1)
        member = np.all(x @ A.T <= b, axis=1)
        np.testing.assert_array_equal(member, same)
        inside, outside = inside + same.sum(), outside + (~same).sum()
    assert inside > 20 and outside > 20  # both cases exercised


def test_full_region_ball_is_inside_the_first_layer_ball_and_keeps_the_pattern():
    model = make_model(6, width=16, depth=3, seed=2)
    rng = np.random.default_rng(2)
    pts = off_manifold_points(rng, 10, 6)
    first, full = inspheres(model, pts, "first"), inspheres(model, pts, "all")
    assert np.all(full.radii <= first.radii + 1e-9) and np.all(full.radii > 0)
    u = rng.normal(size=(50, 6))
    for p, c, r in zip(pts, full.centers, full.radii):
        ball = c + 0.999 * r * u / np.linalg.norm(u, axis=1, keepdims=True)
        with torch.no_grad():
            bits = activation_patterns(model, torch.as_tensor(np.vstack((p, ball)))).bits()
        assert np.all(bits[1:] == bits[0])


def test_degenerate_polytopes():
    # empty (a zero row with negative right-hand side, or contradictory rows)
    assert np.isnan(chebyshev_ball(np.zeros((1, 2)), [-1.0]).radius)
    assert np.isnan(chebyshev_ball([[1.0, 0.0], [-1.0, 0.0]], [-0.5, -0.5]).radius)
    # a zero row with b >= 0 is dropped; without a box a half-plane is unbounded
    assert chebyshev_ball([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0], box=None).radius == np.inf
    # the unit square [0,1]² as a polytope: radius 1/2 at (1/2, 1/2)
    sq = chebyshev_ball([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], [1.0, 0.0, 1.0, 0.0], box=None)
    assert sq.radius == pytest.approx(0.5) and np.allclose(sq.center, 0.5)


def test_samplers():
    rng = np.random.default_rng(0)
    off = off_manifold_points(rng, 100, 8)
    assert off.shape == (100, 8) and np.all(np.abs(off) <= 1)
    enc = NeRFPE(2, in_dim=2)
    on = on_manifold_points(np.random.default_rng(3), 50, enc)
    t = np.random.default_rng(3).random((50, 2))
    np.testing.assert_allclose(on, enc(torch.as_tensor(t)).numpy())


def test_bad_values_raise_config_error():
    model = make_model(3)
    with pytest.raises(ConfigError):
        local_constraints(model, np.zeros(3), "middle")
    with pytest.raises(ConfigError):
        local_constraints(model, np.zeros(4))
    with pytest.raises(ConfigError):
        chebyshev_ball(np.eye(2), [1.0])
    with pytest.raises(ConfigError):
        chebyshev_ball(np.eye(2), [1.0, 1.0], box=(1.0, -1.0))
    with pytest.raises(ConfigError):
        off_manifold_points(np.random.default_rng(0), 0, 3)
    for dim in (0, -2, 2.5):
        with pytest.raises(ConfigError, match="dimension of the sample points must be an integer >= 1"):
            off_manifold_points(np.random.default_rng(0), 5, dim)
