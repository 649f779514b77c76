"""Input encodings against explicit formulas; labels, RFF reproducibility (B8) and aliasing."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from specbias.encodings import (
    INPUT_GRAMMAR,
    BasicEncoding,
    GaussianRFF,
    NeRFPE,
    Raw,
    RestrictedPE,
    aliased_features,
    n_freqs_from_label,
    parse_input,
    warn_if_aliased,
)
from specbias.errors import ConfigError


def coords(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64)


# --------------------------------------------------------------------------- NeRF PE


def ref_nerf_2d(t, n_freqs, base=math.pi, include_input=False):
    rows = []
    for x, y in t.tolist():
        row = [x, y] if include_input else []
        for octave in range(n_freqs):
            s = base * 2**octave
            row += [math.sin(s * x), math.cos(s * x), math.sin(s * y), math.cos(s * y)]
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("n_freqs", [1, 3, 5])
@pytest.mark.parametrize("base", [math.pi, 2 * math.pi])
@pytest.mark.parametrize("include_input", [False, True])
def test_nerf_feature_order_2d(n_freqs, base, include_input):
    t = coords(17, 2, n_freqs)
    enc = NeRFPE(n_freqs, base=base, include_input=include_input, in_dim=2)
    feats = enc(t).numpy()
    expected = ref_nerf_2d(t, n_freqs, base, include_input)
    assert feats.shape == (17, enc.out_dim) == expected.shape
    assert enc.out_dim == 2 * (2 * n_freqs + int(include_input))
    np.testing.assert_allclose(feats, expected, atol=1e-13)


def test_nerf_spec_slots_for_e14():
    """Slots 0-1 hold sin(πx), cos(πx); the last two sin(2^(L-1)πy), cos(2^(L-1)πy)."""
    t = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    f = NeRFPE(5, in_dim=2)(t)[0].numpy()
    np.testing.assert_allclose(f[:2], [math.sin(math.pi * 0.3), math.cos(math.pi * 0.3)], atol=1e-14)
    np.testing.assert_allclose(
        f[-2:], [math.sin(16 * math.pi * 0.7), math.cos(16 * math.pi * 0.7)], atol=1e-13
    )


def test_nerf_1d_and_frequencies():
    t = coords(9, 1, 3)
    enc = NeRFPE(4)
    f = enc(t).numpy()
    x = t[:, 0].numpy()
    expected = np.stack(
        [fn(math.pi * 2**octave * x) for octave in range(4) for fn in (np.sin, np.cos)], axis=1
    )
    np.testing.assert_allclose(f, expected, atol=1e-13)
    # octave l of base π has 2^(l-1) periods on [0, 1]
    np.testing.assert_allclose(enc.frequencies(), [0.5, 0.5, 1, 1, 2, 2, 4, 4])
    np.testing.assert_allclose(NeRFPE(2, base=2 * math.pi).frequencies(), [1, 1, 2, 2])
    np.testing.assert_allclose(
        NeRFPE(2, in_dim=2, include_input=True).frequencies(), [0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1]
    )


def test_nerf_float32_input_keeps_dtype():
    t = coords(5, 2).float()
    assert NeRFPE(3, in_dim=2)(t).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [{"n_freqs": -1}, {"n_freqs": 3, "base": 3.0}, {"n_freqs": 0}, {"n_freqs": 2, "in_dim": 0}],
)
def test_nerf_bad_config(kwargs):
    with pytest.raises(ConfigError):
        NeRFPE(**kwargs)


def test_nerf_zero_octaves_with_input_is_identity():
    t = coords(4, 2)
    enc = NeRFPE(0, include_input=True, in_dim=2)
    assert torch.equal(enc(t), t)


# --------------------------------------------------------------------------- labels


def test_label_mapping():
    assert n_freqs_from_label(3, "1d") == 4
    assert n_freqs_from_label(6, "1d") == 7
    assert n_freqs_from_label(0, "1d") == 1
    assert n_freqs_from_label(5, "2d") == 5
    assert n_freqs_from_label(8, "2d") == 8
    with pytest.raises(ConfigError):
        n_freqs_from_label(-1, "1d")
    with pytest.raises(ConfigError):
        n_freqs_from_label(3, "3d")


def test_parse_input_raw_labels():
    t = coords(11, 1)
    enc = parse_input("raw01")
    assert isinstance(enc, Raw) and (enc.lo, enc.hi) == (0.0, 1.0)
    assert torch.equal(enc(t), t)
    enc = parse_input("raw11")
    assert (enc.lo, enc.hi) == (-1.0, 1.0)
    torch.testing.assert_close(enc(t), 2 * t - 1, rtol=0, atol=1e-15)
    enc = parse_input("raw-2_2")
    assert (enc.lo, enc.hi) == (-2.0, 2.0)
    torch.testing.assert_close(enc(t), 4 * t - 2, rtol=0, atol=1e-15)
    enc = parse_input("raw-3_3", in_dim=2)
    assert enc.in_dim == enc.out_dim == 2
    t2 = coords(6, 2)
    torch.testing.assert_close(enc(t2), 6 * t2 - 3, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(enc.frequencies(), [0, 0])
    assert enc.arrays() == {}


def test_parse_input_pe_and_rff():
    enc = parse_input("pe3")
    assert isinstance(enc, NeRFPE) and enc.n_freqs == 4 and enc.base == math.pi and not enc.include_input
    enc = parse_input("pe5", in_dim=2, convention="2d")
    assert enc.n_freqs == 5 and enc.in_dim == 2
    enc = parse_input("rff10", seed=3)
    assert isinstance(enc, GaussianRFF) and enc.sigma == 10.0 and enc.m == 256 and enc.seed == 3
    assert parse_input("rff2.5").sigma == 2.5


@pytest.mark.parametrize("label", ["foo", "pe-1", "rff0", "rff-1", "raw1_1", "raw2_-2", "pe", "raw", "rff"])
def test_parse_input_rejects(label):
    with pytest.raises(ConfigError):
        parse_input(label)


@pytest.mark.parametrize("lo,hi", [(1.0, 1.0), (2.0, -2.0), (0.0, math.inf), (math.nan, 1.0)])
def test_raw_bad_range(lo, hi):
    with pytest.raises(ConfigError):
        Raw(lo, hi)


# --------------------------------------------------------------------------- Gaussian RFF


def test_rff_formula_and_shapes():
    enc = GaussianRFF(sigma=3.0, m=7, in_dim=2, seed=4)
    assert enc.B.shape == (7, 2)
    B = enc.B.copy()
    t = coords(13, 2, 1)
    f = enc(t).numpy()
    angles = 2 * np.pi * t.numpy() @ B.T
    np.testing.assert_allclose(f, np.concatenate([np.sin(angles), np.cos(angles)], axis=1), atol=1e-12)
    np.testing.assert_allclose(enc.frequencies(), np.tile(np.linalg.norm(B, axis=1), 2))
    assert set(enc.arrays()) == {"B"}
    np.testing.assert_array_equal(enc.arrays()["B"], B)


def test_rff_same_seed_same_B_and_other_seed_other_B():
    a = GaussianRFF(sigma=10.0, m=64, seed=1)
    b = GaussianRFF(sigma=10.0, m=64, seed=1)
    c = GaussianRFF(sigma=10.0, m=64, seed=2)
    np.testing.assert_array_equal(a.B, b.B)
    assert not np.allclose(a.B, c.B)
    np.testing.assert_array_equal(parse_input("rff10", seed=9).B, parse_input("rff10", seed=9).B)
    # B scales with σ for the same seed (same standard-normal draw)
    np.testing.assert_allclose(GaussianRFF(sigma=5.0, m=64, seed=1).B * 2, a.B, rtol=1e-12)


def test_rff_B_statistics():
    enc = GaussianRFF(sigma=14.0, m=4096, in_dim=2, seed=0)
    assert abs(enc.B.mean()) < 0.5
    np.testing.assert_allclose(enc.B.std(), 14.0, rtol=0.05)


def test_rff_called_twice_gives_identical_features():
    """The reference redraws B between training and evaluation (bug B8); here it never changes."""
    enc = GaussianRFF(sigma=10.0, m=32, seed=5)
    B0 = enc.B.copy()
    t = coords(40, 1, 2)
    first = enc(t)
    second = enc(t)
    assert torch.equal(first, second)
    np.testing.assert_array_equal(enc.B, B0)
    angles = 2 * np.pi * t.numpy() @ B0.T
    np.testing.assert_allclose(first.numpy(), np.concatenate([np.sin(angles), np.cos(angles)], 1), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{"sigma": 0.0}, {"sigma": -1.0}, {"sigma": math.nan}, {"sigma": 1.0, "m": 0}]
)
def test_rff_bad_config(kwargs):
    with pytest.raises(ConfigError):
        GaussianRFF(**kwargs)


# --------------------------------------------------------------------------- aliasing


def ref_aliased_octaves(n_freqs, grid_points):
    """Spec §1.2: on an S-point grid of spacing 1/(S−1), octave l aliases if 2^(l−1) > (S−1)/2."""
    return [octave for octave in range(n_freqs) if 2 ** (octave - 1) > (grid_points - 1) / 2]


@pytest.mark.parametrize("grid_points", [16, 64, 512])
@pytest.mark.parametrize("n_freqs", [4, 5, 8, 10, 16, 20])
@pytest.mark.parametrize("in_dim", [1, 2])
def test_aliased_features_are_the_octaves_above_nyquist(grid_points, n_freqs, in_dim):
    enc = NeRFPE(n_freqs, in_dim=in_dim)
    bad = aliased_features(enc, spacing=1 / (grid_points - 1))
    per_octave = 2 * in_dim
    expected = [
        o * per_octave + k for o in ref_aliased_octaves(n_freqs, grid_points) for k in range(per_octave)
    ]
    np.testing.assert_array_equal(bad, expected)


def test_spec_aliasing_examples():
    # S = 64: l >= 6 aliases, so L = 8 is partly aliased and L = 5 is not
    assert aliased_features(NeRFPE(5, in_dim=2), 1 / 63).size == 0
    assert aliased_features(NeRFPE(8, in_dim=2), 1 / 63).tolist() == list(range(24, 32))
    # S = 512: l >= 9 aliases
    assert aliased_features(NeRFPE(9, in_dim=2), 1 / 511).size == 0
    assert aliased_features(NeRFPE(10, in_dim=2), 1 / 511).tolist() == list(range(36, 40))
    # 1-D, N = 2048 grid (spacing 1/2048): the paper's L = 6 is far below Nyquist
    assert aliased_features(NeRFPE(7), 1 / 2048).size == 0
    # exactly at Nyquist does not exceed it: octave 6 has 2^5 = 32 periods, Nyquist of spacing 1/64
    assert aliased_features(NeRFPE(7), 1 / 64).size == 0
    assert aliased_features(NeRFPE(8), 1 / 64).tolist() == [14, 15]
    # include_input shifts the indices past the raw coordinates
    assert aliased_features(NeRFPE(8, include_input=True), 1 / 64).tolist() == [15, 16]
    assert aliased_features(Raw(), 1 / 4).size == 0


def test_rff_aliasing_uses_row_norms():
    enc = GaussianRFF(sigma=10.0, m=50, seed=0)
    spacing = 1 / 30  # Nyquist 15 cycles
    norms = np.abs(enc.B[:, 0])
    expected = np.flatnonzero(np.concatenate([norms, norms]) > 15)
    assert expected.size > 0
    np.testing.assert_array_equal(aliased_features(enc, spacing), expected)


def test_warn_if_aliased_warns_only_when_aliased():
    with pytest.warns(UserWarning, match="Nyquist"):
        count = warn_if_aliased(NeRFPE(8, in_dim=2), spacing=1 / 63)
    assert count == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_aliased(NeRFPE(5, in_dim=2), spacing=1 / 63) == 0
        assert warn_if_aliased(NeRFPE(7), spacing=1 / 2048) == 0
        assert warn_if_aliased(Raw(-1, 1), spacing=1 / 2) == 0
    with pytest.warns(UserWarning):
        assert warn_if_aliased(NeRFPE(16, in_dim=2), spacing=1 / 511) == 7 * 4


# --------------------------------------------------------------------------- basic and restricted PE


@pytest.mark.parametrize("in_dim", [1, 2, 3])
def test_basic_encoding_formula(in_dim):
    t = coords(11, in_dim, in_dim)
    enc = BasicEncoding(in_dim=in_dim)
    f = enc(t).numpy()
    expected = np.array(
        [
            [math.cos(2 * math.pi * v) for v in row] + [math.sin(2 * math.pi * v) for v in row]
            for row in t.tolist()
        ]
    )
    assert f.shape == (11, 2 * in_dim) == (11, enc.out_dim)
    np.testing.assert_allclose(f, expected, atol=1e-13)
    np.testing.assert_array_equal(enc.frequencies(), np.ones(2 * in_dim))
    assert BasicEncoding().in_dim == 2 and enc.arrays() == {}
    with pytest.raises(ConfigError):
        BasicEncoding(in_dim=0)


def ref_rpe_2d(t, omega, dim):
    copies = dim // 4
    rows = []
    for x, y in t.tolist():
        row = []
        for c in range(copies):
            phi = 2 * math.pi * c / copies
            ax, ay = omega * math.pi * x + phi, omega * math.pi * y + phi
            row += [math.sin(ax), math.cos(ax), math.sin(ay), math.cos(ay)]
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("omega", [2.0, 32.0, 1024.0])
@pytest.mark.parametrize("dim", [4, 20, 40])
def test_restricted_pe_formula(omega, dim):
    t = coords(13, 2, dim)
    enc = RestrictedPE(omega, dim)
    f = enc(t).numpy()
    assert f.shape == (13, dim) and enc.out_dim == dim and enc.in_dim == 2 and enc.n_copies == dim // 4
    np.testing.assert_allclose(f, ref_rpe_2d(t, omega, dim), atol=1e-9 * omega)
    np.testing.assert_allclose(enc.frequencies(), np.full(dim, omega / 2))
    if dim > 4:  # the phase offsets keep the copies apart
        assert not np.allclose(f[:, :4], f[:, 4:8])


def test_restricted_pe_copies_are_rotations_of_one_copy():
    """Every copy is a linear map of copy 0: the feature matrix has rank 4 whatever the dimension."""
    t = coords(200, 2, 5)
    for dim in (4, 20, 40):
        assert np.linalg.matrix_rank(RestrictedPE(32.0, dim)(t).numpy(), tol=1e-8) == 4
    assert np.linalg.matrix_rank(NeRFPE(5, in_dim=2)(t).numpy(), tol=1e-8) == 20


def test_restricted_pe_1d_and_phases():
    t = coords(7, 1, 2)
    enc = RestrictedPE(4.0, 6, in_dim=1)
    np.testing.assert_allclose(enc.phases(), [0, 2 * math.pi / 3, 4 * math.pi / 3])
    x = t[:, 0].numpy()
    expected = np.stack(
        [fn(4 * math.pi * x + 2 * math.pi * c / 3) for c in range(3) for fn in (np.sin, np.cos)], axis=1
    )
    np.testing.assert_allclose(enc(t).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"omega": 0.0, "dim": 4},
        {"omega": -2.0, "dim": 4},
        {"omega": math.nan, "dim": 4},
        {"omega": math.inf, "dim": 4},
        {"omega": 2.0, "dim": 0},
        {"omega": 2.0, "dim": -4},
        {"omega": 2.0, "dim": 6},
        {"omega": 2.0, "dim": 3, "in_dim": 1},
        {"omega": 2.0, "dim": 4, "in_dim": 0},
    ],
)
def test_restricted_pe_bad_config(kwargs):
    with pytest.raises(ConfigError):
        RestrictedPE(**kwargs)


def test_restricted_pe_error_names_the_value():
    with pytest.raises(ConfigError, match=r"multiple of 4.*got 6"):
        RestrictedPE(2.0, 6)
    with pytest.raises(ConfigError, match="got -1"):
        RestrictedPE(-1.0, 4)


def test_restricted_pe_aliasing():
    # a 64-pixel raw grid (spacing 1/64) has Nyquist 32 cycles: ω = 2^10 has 512 and aliases
    assert aliased_features(RestrictedPE(1024.0, 4), 1 / 64).tolist() == [0, 1, 2, 3]
    assert aliased_features(RestrictedPE(32.0, 20), 1 / 64).size == 0
    assert aliased_features(BasicEncoding(), 1 / 64).size == 0


# --------------------------------------------------------------------------- 2D labels


def test_parse_input_2d_labels():
    assert parse_input("pe5", in_dim=2, convention="2d").out_dim == 20
    rff = parse_input("rff14", in_dim=2, convention="2d", seed=1)
    assert rff.out_dim == 512 and rff.B.shape == (256, 2) and rff.sigma == 14.0
    enc = parse_input("basic", in_dim=2, convention="2d")
    assert isinstance(enc, BasicEncoding) and enc.out_dim == 4
    enc = parse_input("rpe32x20", in_dim=2, convention="2d")
    assert isinstance(enc, RestrictedPE) and (enc.omega, enc.dim, enc.in_dim) == (32.0, 20, 2)
    assert parse_input("rpe1024x40", in_dim=2).out_dim == 40
    assert parse_input("rpe2.5x8", in_dim=2).omega == 2.5
    assert parse_input("rpe3x6").in_dim == 1  # 1D: a multiple of 2
    for word in ("basic", "rpe<omega>x<dim>", "raw01", "pe<L>", "rff<sigma>"):
        assert word in INPUT_GRAMMAR


@pytest.mark.parametrize(
    "label", ["rpe0x4", "rpe32x6", "rpe32", "rpex4", "rpe32x0", "rpe-2x4", "basic2", "Basic"]
)
def test_parse_input_rejects_2d_labels(label):
    with pytest.raises(ConfigError):
        parse_input(label, in_dim=2, convention="2d")


# --------------------------------------------------------------------------- X7 lifts


def _line_t(n=257):
    return torch.linspace(0, 1, n, dtype=torch.float64)[:, None]


@pytest.mark.parametrize("dim", [1, 2, 8, 32])
def test_linear_lift_formula_and_seed(dim):
    from specbias.encodings import LinearLift
    from specbias.seeding import rng_for

    enc = LinearLift(dim, seed=5)
    rng = rng_for(5, "lift")
    v, u = rng.standard_normal(dim), rng.standard_normal(dim)
    if dim > 1:
        u -= (u @ v) / (v @ v) * v
    v, u = np.sqrt(dim) * v / np.linalg.norm(v), np.sqrt(dim) * u / np.linalg.norm(u)
    np.testing.assert_allclose([v @ v, u @ u], [dim, dim])
    if dim > 1:
        assert abs(v @ u) < 1e-12
    t = coords(11, 1, dim)
    np.testing.assert_allclose(enc(t).numpy(), t.numpy() * v[None, :] + u[None, :], atol=1e-14)
    assert enc.out_dim == dim and enc.in_dim == 1
    np.testing.assert_array_equal(enc.frequencies(), np.zeros(dim))
    np.testing.assert_array_equal(enc.arrays()["direction"], v)
    np.testing.assert_array_equal(enc.arrays()["offset"], u)
    np.testing.assert_array_equal(LinearLift(dim, seed=5).direction, v)
    assert not np.array_equal(LinearLift(dim, seed=6).direction, v)


def test_linear_lift_keeps_the_network_a_relu_network_of_t():
    """x(t) is affine in t (zero second differences), so an MLP on the lifted line equals the 1D MLP
    with first layer (W v, W u + b): piecewise linear in t, kinks only where a unit switches."""
    from specbias.encodings import LinearLift
    from specbias.models import MLP

    enc, t = LinearLift(16, seed=1), _line_t()
    x = enc(t)
    np.testing.assert_allclose(torch.diff(x, n=2, dim=0).numpy(), 0, atol=1e-12)
    torch.manual_seed(0)
    lifted = MLP(16, 32, 3, 1).double()
    flat = MLP(1, 32, 3, 1).double()
    first_lifted = next(m for m in lifted.modules() if isinstance(m, torch.nn.Linear))
    first_flat = next(m for m in flat.modules() if isinstance(m, torch.nn.Linear))
    v, u = (torch.as_tensor(a) for a in (enc.direction, enc.offset))
    lin_lifted = [m for m in lifted.modules() if isinstance(m, torch.nn.Linear)]
    lin_flat = [m for m in flat.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        first_flat.weight.copy_((first_lifted.weight @ v)[:, None])
        first_flat.bias.copy_(first_lifted.weight @ u + first_lifted.bias)
        for a, b in zip(lin_lifted[1:], lin_flat[1:]):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        np.testing.assert_allclose(lifted(x).numpy(), flat(t).numpy(), atol=1e-12)


@pytest.mark.parametrize("dim", [2, 8, 14])
def test_curve_lift_formula(dim):
    from specbias.encodings import CurveLift, LinearLift

    enc = CurveLift(dim, seed=3)
    line = LinearLift(dim, seed=3)
    t = coords(13, 1, dim)
    tt = t.numpy()
    j = np.arange(1, 4)[None, :]
    bend = np.sin(2 * np.pi * tt * j) @ enc.sin_coef + np.cos(2 * np.pi * tt * j) @ enc.cos_coef
    np.testing.assert_allclose(enc(t).numpy(), line(t).numpy() + bend, atol=1e-12)
    # the bend is orthogonal to the line, so along v the curve moves as t‖v‖: it never crosses itself
    unit = line.direction / np.linalg.norm(line.direction)
    np.testing.assert_allclose(enc.sin_coef @ unit, 0, atol=1e-12)
    np.testing.assert_allclose(enc.cos_coef @ unit, 0, atol=1e-12)
    along = (enc(_line_t()).numpy() - line.offset) @ unit
    np.testing.assert_allclose(along, _line_t().numpy()[:, 0] * np.linalg.norm(line.direction), atol=1e-12)
    np.testing.assert_array_equal(enc.frequencies(), np.full(dim, 3.0))
    assert set(enc.arrays()) == {"direction", "offset", "sin_coef", "cos_coef"}


def test_curve_lift_is_smooth_nonlinear_and_reproducible():
    from specbias.encodings import CurveLift

    enc = CurveLift(8, seed=2)
    x = enc(_line_t(1025)).numpy()
    h = 1 / 1024
    second = np.diff(x, n=2, axis=0) / h**2
    # |x''| <= Σ_j (2πj)² (|a_j| + |b_j|): bounded (smooth), and far from 0 (not a line)
    bound = sum(
        (2 * np.pi * j) ** 2 * (np.abs(enc.sin_coef[j - 1]) + np.abs(enc.cos_coef[j - 1])) for j in (1, 2, 3)
    )
    assert np.all(np.abs(second) <= bound[None, :] + 1e-6)
    assert np.abs(second).max() > 1.0
    np.testing.assert_array_equal(CurveLift(8, seed=2)(_line_t()).numpy(), enc(_line_t()).numpy())
    assert not np.array_equal(CurveLift(8, seed=3).sin_coef, enc.sin_coef)


def test_lift_and_rff_dimension_labels():
    from specbias.encodings import CurveLift, LinearLift

    enc = parse_input("lin8", seed=4)
    assert isinstance(enc, LinearLift) and (enc.dim, enc.seed, enc.out_dim) == (8, 4, 8)
    enc = parse_input("curve14", seed=4)
    assert isinstance(enc, CurveLift) and (enc.dim, enc.out_dim, enc.harmonics) == (14, 14, 3)
    np.testing.assert_array_equal(enc.line.direction, parse_input("lin14", seed=4).direction)
    enc = parse_input("rff10x8", seed=4)
    assert isinstance(enc, GaussianRFF) and (enc.sigma, enc.m, enc.out_dim) == (10.0, 4, 8)
    np.testing.assert_array_equal(enc.B, GaussianRFF(10.0, m=4, seed=4).B)
    assert parse_input("rff2.5x2").out_dim == 2
    for word in ("lin<d>", "curve<d>", "rff<sigma>x<d>"):
        assert word in INPUT_GRAMMAR


@pytest.mark.parametrize(
    ("label", "kwargs", "needle"),
    [
        ("lin0", {}, "got 0"),
        ("lin-3", {}, "got -3"),
        ("curve1", {}, "curve lift dimension d must be >= 2, got 1"),
        ("curve0", {}, "got 0"),
        ("rff10x7", {}, "got 7"),
        ("rff10x0", {}, "got 0"),
        ("lin4", {"in_dim": 2}, "input dimension 2"),
        ("curve4", {"in_dim": 2}, "input dimension 2"),
        ("lin", {}, "unknown encoding 'lin'"),
        ("curvex", {}, "unknown encoding 'curvex'"),
    ],
)
def test_lift_bad_dimensions_are_config_errors(label, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_input(label, **kwargs)


def test_lift_in_a_run_is_seeded_by_the_run_and_saved():
    from specbias.runs import RunConfig, execute_run
    from specbias.signals import ToneMixture
    from specbias.training import TrainConfig

    cfg = RunConfig(signal=ToneMixture(n=256), input="curve4", width=8, depth=2, train=TrainConfig(epochs=1),
                    probes=(), seed=7)  # fmt: skip
    data = execute_run(cfg)
    enc = cfg.encoding()
    np.testing.assert_array_equal(data.arrays["encoding/sin_coef"], enc.sin_coef)
    np.testing.assert_array_equal(data.arrays["encoding/direction"], enc.line.direction)
    assert data.meta["in_dim"] == 4 and data.meta["aliased_features"] == 0
    other = RunConfig(**{**cfg.__dict__, "seed": 8}).encoding()
    assert not np.array_equal(other.line.direction, enc.line.direction)


def test_linear_lift_matches_raw_first_layer_moments_at_init():
    """With rows U(±1/√d), slopes W v and offsets W u + b have variance 1/3 (+1/(3d)) and no
    covariance, like raw [0,1)'s U(±1) weights and biases."""
    from specbias.encodings import LinearLift

    d, rows = 32, 200000
    enc = LinearLift(d, seed=0)
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (rows, d)) / np.sqrt(d)
    b = rng.uniform(-1, 1, rows) / np.sqrt(d)
    s, c = w @ enc.direction, w @ enc.offset + b
    np.testing.assert_allclose([s.var(), c.var()], [1 / 3, 1 / 3 + 1 / (3 * d)], rtol=0.02)
    assert abs(np.corrcoef(s, c)[0, 1]) < 0.01
    assert abs(np.mean((-c / s >= 0) & (-c / s < 1)) - 0.25) < 0.01
