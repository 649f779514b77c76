"""INR families against naive references: forward and backward by an independent per-layer NumPy
loop, each paper's initialisation ranges, seeding, the registry and width matching."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.families import (
    FAMILIES,
    FINER,
    SIREN,
    Gabor,
    GaussianINR,
    HashGridMLP,
    ReLUMLP,
    family,
    match_width,
)
from specbias.models import MLP
from specbias.seeding import stream_seed

# Each activation and its derivative, written out independently of the package. FINER's
# derivative treats |z| + 1 as a constant (the official code's scale_req_grad=False).
NAIVE = {
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "siren": (lambda z: np.sin(30 * z), lambda z: 30 * np.cos(30 * z)),
    "finer": (
        lambda z: np.sin(30 * (np.abs(z) + 1) * z),
        lambda z: 30 * (np.abs(z) + 1) * np.cos(30 * (np.abs(z) + 1) * z),
    ),
    "gauss": (
        lambda z: np.exp(-(z**2) / (2 * (1 / (10 * math.sqrt(2))) ** 2)),
        lambda z: (
            -z / (1 / (10 * math.sqrt(2))) ** 2 * np.exp(-(z**2) / (2 * (1 / (10 * math.sqrt(2))) ** 2))
        ),
    ),
    "wire": (
        lambda z: np.cos(20 * z) * np.exp(-((10 * z) ** 2)),
        lambda z: (-20 * np.sin(20 * z) - 200 * z * np.cos(20 * z)) * np.exp(-((10 * z) ** 2)),
    ),
}
MLP_FAMILIES = [name for name in NAIVE]


def linear_layers(model: nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of every linear layer in order, as float64 NumPy."""
    return [
        (m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
        for m in model.modules()
        if isinstance(m, nn.Linear)
    ]


def naive_forward_backward(layers, phi, dphi, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output and ∂(Σ outputs)/∂W_1 by a per-layer loop (forward, then δ_l = (δ_{l+1} W_{l+1}) ⊙ φ'(z_l))."""
    a, zs, acts = x, [], [x]
    for i, (w, b) in enumerate(layers):
        z = a @ w.T + b
        zs.append(z)
        a = z if i == len(layers) - 1 else phi(z)
        acts.append(a)
    delta = np.ones_like(a)
    for i in range(len(layers) - 1, 0, -1):
        delta = (delta @ layers[i][0]) * dphi(zs[i - 1])
    return a, delta.T @ acts[0]


def small(name: str) -> object:
    return family(name, width=9, depth=3)


@pytest.mark.parametrize("name", MLP_FAMILIES)
@pytest.mark.parametrize("in_dim", [1, 2])
def test_forward_and_first_layer_gradient_match_a_naive_loop(name, in_dim):
    model = small(name).build(in_dim, 1, seed=4).double()
    x = torch.rand(37, in_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    phi, dphi = NAIVE[name]
    ref_out, ref_grad = naive_forward_backward(linear_layers(model), phi, dphi, x.numpy())
    out = model(x)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-12, atol=1e-12)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    (grad,) = torch.autograd.grad(out.sum(), first.weight)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-10, atol=1e-10)


def test_finer_full_derivative_when_the_scale_takes_gradients():
    act = FINER(width=4, depth=1, scale_grad=True).activation
    z = torch.linspace(-1, 1, 11, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(act(z).sum(), z)
    zz = z.detach().numpy()
    expected = 30 * (2 * np.abs(zz) + 1) * np.cos(30 * (np.abs(zz) + 1) * zz)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12)


def bound_filled(tensor: torch.Tensor, bound: float) -> None:
    """Entries lie in ``[−bound, bound]``, reach its ends and have a uniform's variance ``bound²/3``."""
    v = tensor.detach().double().flatten()
    assert v.abs().max() <= bound * (1 + 1e-6)
    assert v.abs().max() >= 0.9 * bound
    assert v.var().item() == pytest.approx(bound**2 / 3, rel=0.15)


@pytest.mark.parametrize("cls", [SIREN, FINER])
def test_siren_initialisation_ranges(cls):
    model = cls(width=200, depth=3).build(2, 1, seed=0)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    bound_filled(linears[0].weight, 1 / 2)  # U(−1/n, 1/n), n = 2 inputs
    for layer in linears[1:]:  # hidden and output: U(±√(6/n)/ω₀)
        bound_filled(layer.weight, math.sqrt(6 / layer.in_features) / 30)
    for layer in linears:  # PyTorch's bias
        assert layer.bias.abs().max() <= 1 / math.sqrt(layer.in_features)


def test_finer_first_bias_range_k():
    model = FINER(width=400, depth=2, first_bias=5.0).build(1, 1, seed=0)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    bound_filled(linears[0].bias, 5.0)
    assert linears[1].bias.abs().max() <= 1 / math.sqrt(400)


@pytest.mark.parametrize("cls", [GaussianINR, Gabor])
def test_default_initialisation(cls):
    model = cls(width=300, depth=2).build(2, 1, seed=0)
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        bound_filled(layer.weight, 1 / math.sqrt(layer.in_features))


def test_relu_family_is_the_mlp_of_the_init_stream():
    built = ReLUMLP(width=16, depth=2).build(3, 2, seed=7)
    torch.manual_seed(stream_seed(7, "init"))
    reference = MLP(3, 16, 2, 2)
    assert isinstance(built, MLP)
    for a, b in zip(built.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_build_is_seeded_and_leaves_the_global_rng_alone(name):
    spec = family(name, width=8, depth=2)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = spec.build(2, 1, seed=1), spec.build(2, 1, seed=1), spec.build(2, 1, seed=2)
    torch.testing.assert_close(torch.rand(3), before, rtol=0, atol=0)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_registry_names_rates_and_patterns():
    for name, cls in FAMILIES.items():
        assert name == cls.NAME and cls.LR > 0 and cls.LR_SOURCE
    expected = {"relu": True, "hashgrid": True, "siren": False, "finer": False, "gauss": False, "wire": False}
    assert {name: cls().piecewise_linear for name, cls in FAMILIES.items()} == expected
    assert [name for name, cls in FAMILIES.items() if cls().plain_mlp] == ["relu"]
    assert (SIREN.LR, FINER.LR, GaussianINR.LR, Gabor.LR, HashGridMLP.LR, ReLUMLP.LR) == (
        1e-4,
        5e-4,
        1e-3,
        5e-3,
        1e-2,
        1e-3,
    )
    with pytest.raises(ConfigError, match="unknown family"):
        family("kan")


@pytest.mark.parametrize(
    "make",
    [
        lambda: SIREN(width=0, depth=2),
        lambda: SIREN(width=4, depth=2, omega0=-1.0),
        lambda: FINER(width=4, depth=2, first_bias=0.0),
        lambda: GaussianINR(width=4, depth=2, sigma=float("nan")),
        lambda: HashGridMLP(levels=1),
        lambda: HashGridMLP(base_resolution=64, finest_resolution=32),
    ],
)
def test_invalid_families_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_hash_grid_family_is_the_grid_then_the_mlp():
    spec = HashGridMLP(width=16, depth=2, levels=4, log2_table_size=6, features=2, base_resolution=4,
                       finest_resolution=32)  # fmt: skip
    model = spec.build(2, 1, seed=3).double()
    x = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x), model.mlp(model.encoding(x)))
    table = model.encoding.table
    assert table.abs().max() <= 1e-4 and table.abs().max() > 0.5e-4
    resolutions = model.encoding.resolutions
    rows = sum(min(2**6, (r + 1) ** 2) for r in resolutions)
    assert spec.n_params(2, 1) == rows * 2 + (8 + 1) * 16 + (16 + 1) * 16 + 17
    assert model.n_hidden == 32 and len(model.hidden_preacts(x)) == 2


def test_match_width_is_closest_to_the_budget():
    spec = SIREN(width=1, depth=3)
    matched = match_width(spec, 1, 1, 8513)
    count = matched.n_params(1, 1)
    for other in (matched.width - 1, matched.width + 1):
        assert abs(dataclasses.replace(spec, width=other).n_params(1, 1) - 8513) >= abs(count - 8513)
    assert matched.width == 64  # a 3×64 sine network has 8,513 parameters, as many as the ReLU MLP
    with pytest.raises(ConfigError, match="above the budget"):
        match_width(HashGridMLP(), 1, 1, 100)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_takes_the_gram_identity_and_matches_per_example_autograd(name):
    from specbias.metrics.gradients import loss_gradient_gram

    knobs = (
        {"levels": 4, "log2_table_size": 5, "base_resolution": 4, "finest_resolution": 32}
        if name == "hashgrid"
        else {}
    )
    model = family(name, width=10, depth=3, **knobs).build(2, 1, seed=0).double()
    gen = torch.Generator().manual_seed(0)
    x, y = (
        torch.rand(30, 2, dtype=torch.float64, generator=gen),
        torch.rand(30, 1, dtype=torch.float64, generator=gen),
    )
    gram = loss_gradient_gram(model, x, y, method="gram")
    torch.testing.assert_close(gram, loss_gradient_gram(model, x, y, method="func"), rtol=1e-10, atol=1e-12)
