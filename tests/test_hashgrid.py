"""The multiresolution hash encoding against a dense grid and a per-point pure-Python reference."""

from __future__ import annotations

import math

import pytest
import torch

from specbias.errors import ConfigError
from specbias.hashgrid import HashGrid, growth_factor_for, level_resolutions

PI = (1, 2654435761, 805459861)


def ref_encode(hg: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """Instant-NGP by the paper's text, one point, level and corner at a time (float64 Python)."""
    table = hg.table.detach().double()
    lo, hi = hg.domain
    t = hg.table_size
    out = []
    for point in x.tolist():
        point = [point] if isinstance(point, float) else point
        feats = []
        for level, res in enumerate(hg.resolutions):
            pos = [min(max((p - lo) / (hi - lo), 0.0), 1.0) * res for p in point]
            cell = [min(math.floor(p), res - 1) for p in pos]
            frac = [p - c for p, c in zip(pos, cell)]
            value = torch.zeros(hg.features, dtype=torch.float64)
            for corner in range(2 ** len(point)):
                bits = [(corner >> k) & 1 for k in range(len(point))]
                vert = [c + b for c, b in zip(cell, bits)]
                weight = math.prod(f if b else 1 - f for f, b in zip(frac, bits))
                if (res + 1) ** len(point) <= t:
                    index = sum(v * (res + 1) ** k for k, v in enumerate(vert))
                else:
                    h = 0
                    for k, v in enumerate(vert):
                        h ^= (v * PI[k]) & 0xFFFFFFFF
                    index = h % t
                value = value + weight * table[hg.offsets[level] + index]
            feats.append(value)
        out.append(torch.cat(feats))
    return torch.stack(out)


def points(n: int, d: int, seed: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64) * (hi - lo) + lo
    x[0] = lo  # the domain's corners: x = hi lies in the last cell
    x[1] = hi
    return x


def randomised(hg: HashGrid, seed: int) -> HashGrid:
    """Float64 tables with O(1) entries (the 1e-4 init would hide errors behind the tolerance)."""
    hg = hg.double()
    with torch.no_grad():
        hg.table.copy_(torch.randn(hg.table.shape, generator=torch.Generator().manual_seed(seed)))
    return hg


CASES = {
    "1d-dense": dict(in_dim=1, levels=4, log2_table_size=12, features_per_level=2, base_resolution=5),
    "1d-hashed": dict(in_dim=1, levels=5, log2_table_size=4, features_per_level=3, base_resolution=4),
    "2d-dense": dict(in_dim=2, levels=3, log2_table_size=12, features_per_level=2, base_resolution=4),
    "2d-mixed": dict(in_dim=2, levels=6, log2_table_size=7, features_per_level=2, base_resolution=3),
    "2d-collide": dict(in_dim=2, levels=3, log2_table_size=2, features_per_level=1, base_resolution=2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_per_point_python_reference(name):
    kw = CASES[name]
    hg = randomised(HashGrid(**kw, growth_factor=1.7, seed=1, domain=(-1.0, 1.0)), 2)
    x = points(40, kw["in_dim"], 3, -1.0, 1.0)
    ref = ref_encode(hg, x)
    torch.testing.assert_close(hg(x), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hg.interpolate(hg.lookup(x)), ref, rtol=1e-12, atol=1e-12)
    assert hg(x).shape == (40, hg.out_dim)


def test_collisions_are_forced_and_counted():
    """A 4-row table: every level beyond the first hashes, and some point has two corners on one row."""
    hg = randomised(HashGrid(**CASES["2d-collide"], growth_factor=2.0), 0)
    assert hg.hashed == [True, True, True]
    rows = hg.lookup(points(64, 2, 0)).rows
    dup = (rows[..., :, None] == rows[..., None, :]).sum((-1, -2)) > rows.shape[-1]
    assert bool(dup.any())


@pytest.mark.parametrize("in_dim", [1, 2])
def test_full_table_is_bilinear_interpolation_of_a_dense_grid(in_dim):
    """When the table holds every vertex, each level is grid_sample (align_corners=True) of its grid."""
    hg = randomised(HashGrid(in_dim, 4, 16, 3, 3, growth_factor=2.0), 5)
    assert not any(hg.hashed)
    x = points(50, in_dim, 6)
    grid = (x * 2 - 1) if in_dim == 2 else torch.cat((x * 2 - 1, torch.zeros_like(x)), 1)
    expected = []
    for level, res in enumerate(hg.resolutions):
        side = res + 1
        height = side if in_dim == 2 else 1
        flat = hg.table.detach()[hg.offsets[level] : hg.offsets[level] + side * height]
        image = flat.reshape(height, side, 3).permute(2, 0, 1).contiguous()[None]  # row v0 + v1·side
        sampled = torch.nn.functional.grid_sample(image, grid[None, None], align_corners=True)
        expected.append(sampled[0, :, 0].T)
    expected = torch.cat(expected, 1)
    torch.testing.assert_close(hg.interpolate(hg.lookup(x)), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hg(x), expected, rtol=1e-12, atol=1e-12)


def test_table_gradient_matches_autograd_of_the_reference():
    hg = randomised(HashGrid(**CASES["2d-mixed"], growth_factor=1.5), 1)
    x = points(30, 2, 2)
    cot = torch.randn(30, hg.out_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (ours,) = torch.autograd.grad((hg(x) * cot).sum(), hg.table)
    (lookup,) = torch.autograd.grad((hg.interpolate(hg.lookup(x)) * cot).sum(), hg.table)
    # reference: the same sum, linear in the table, so its gradient is the reference encoding of unit tables
    ref = torch.zeros_like(hg.table)
    with torch.no_grad():
        for r in range(hg.table.shape[0]):
            for f in range(hg.features):
                saved = hg.table.clone()
                hg.table.zero_()
                hg.table[r, f] = 1.0
                ref[r, f] = (ref_encode(hg, x) * cot).sum()
                hg.table.copy_(saved)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lookup, ref, rtol=1e-12, atol=1e-12)


def test_input_gradient_gradcheck():
    hg = randomised(HashGrid(**CASES["2d-mixed"], growth_factor=1.5), 4)
    x = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    torch.autograd.gradcheck(lambda t: hg.interpolate(hg.lookup(t)), (x.requires_grad_(),))
    torch.autograd.gradcheck(hg, (x,))


def test_torch_func_per_example_gradients_through_the_encoding():
    from torch.func import functional_call, grad, vmap

    hg = randomised(HashGrid(**CASES["2d-mixed"], growth_factor=1.5), 6)
    x = points(5, 2, 7)
    params = {k: v.detach() for k, v in hg.named_parameters()}

    def one(p, xi):
        return (functional_call(hg, p, (xi[None],)) ** 2).sum()

    batched = vmap(grad(one), in_dims=(None, 0))(params, x)["table"]
    for i in range(5):
        (single,) = torch.autograd.grad((hg(x[i : i + 1]) ** 2).sum(), hg.table)
        torch.testing.assert_close(batched[i], single, rtol=1e-12, atol=1e-12)


def test_layout_init_and_resolutions():
    hg = HashGrid(2, levels=16, log2_table_size=19, features_per_level=2, base_resolution=16, seed=3)
    assert hg.resolutions[:4] == [16, 24, 36, 54] == level_resolutions(16, 1.5, 4)
    dense = [(r + 1) ** 2 for r in hg.resolutions]
    assert hg.table.shape == (sum(min(v, 2**19) for v in dense), 2)
    assert hg.table.dtype == torch.float32 and float(hg.table.detach().abs().max()) <= 1e-4
    torch.testing.assert_close(hg.table, HashGrid(2, seed=3).table)
    assert not torch.equal(hg.table, HashGrid(2, seed=4).table)
    assert growth_factor_for(16, 512, 16) == pytest.approx(math.exp(math.log(32) / 15))
    assert hg.out_dim == 32


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(in_dim=3), "1D or 2D"),
        (dict(in_dim=2, levels=0), "levels"),
        (dict(in_dim=2, log2_table_size=30), "log2_table_size"),
        (dict(in_dim=2, growth_factor=0.5), "growth_factor"),
        (dict(in_dim=2, domain=(1.0, 0.0)), "domain"),
    ],
)
def test_bad_settings_raise(kw, match):
    with pytest.raises(ConfigError, match=match):
        HashGrid(**kw)


def test_wrong_input_shape_raises():
    with pytest.raises(ConfigError, match=r"needs inputs \(N, 2\)"):
        HashGrid(2, levels=2)(torch.zeros(4, 3))
