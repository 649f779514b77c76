"""The MLP: parameter counts of spec §1.10, default init, trace and pre-activations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from specbias.encodings import GaussianRFF, NeRFPE, n_freqs_from_label, parse_input
from specbias.errors import ConfigError
from specbias.models import CNN, MLP

# (in_dim, width, depth, out_dim, parameters) -- spec §1.10
PARAM_CHECKS = [
    (1, 128, 4, 1, 49_921),
    (8, 128, 4, 1, 50_817),
    (14, 128, 4, 1, 51_585),
    (1, 256, 2, 1, 66_561),
    (12, 256, 2, 1, 69_377),
    (2, 128, 2, 3, 17_283),
    (20, 128, 2, 3, 19_587),
    (32, 128, 2, 3, 21_123),
    (512, 128, 2, 3, 82_563),
    (2, 512, 4, 3, 791_043),
    (2, 256, 4, 3, 198_915),
    (2, 512, 6, 3, 1_316_355),
    # the remaining §1.10 rows with a 2-D PE input: 4L features
    (16, 512, 4, 3, 798_211),
    (32, 512, 4, 3, 806_403),
    (64, 512, 4, 3, 822_787),
    (80, 512, 4, 3, 830_979),
    (20, 256, 4, 3, 203_523),
    (64, 256, 4, 3, 214_787),
]


def closed_form(in_dim, width, depth, out_dim):
    return (in_dim + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * out_dim


@pytest.mark.parametrize("row", PARAM_CHECKS, ids=lambda r: "{}-{}x{}-{}".format(*r[:4]))
def test_parameter_counts_match_spec(row):
    in_dim, width, depth, out_dim, expected = row
    model = MLP(in_dim, width, depth, out_dim)
    assert model.n_params() == expected
    assert sum(p.numel() for p in model.parameters()) == expected
    assert closed_form(in_dim, width, depth, out_dim) == expected
    assert model.n_hidden == width * depth
    assert model.hidden_sizes == [width] * depth
    assert len(model.layers) == depth + 1


def test_encodings_give_the_spec_input_dims():
    assert NeRFPE(n_freqs_from_label(3, "1d")).out_dim == 8
    assert NeRFPE(n_freqs_from_label(6, "1d")).out_dim == 14
    assert NeRFPE(n_freqs_from_label(5, "1d")).out_dim == 12  # v1 "L=5"
    assert NeRFPE(n_freqs_from_label(5, "2d"), in_dim=2).out_dim == 20
    assert NeRFPE(n_freqs_from_label(8, "2d"), in_dim=2).out_dim == 32
    assert GaussianRFF(sigma=14.0, m=256, in_dim=2).out_dim == 512
    assert parse_input("pe3").out_dim == 8
    assert parse_input("pe6").out_dim == 14
    assert parse_input("pe5", in_dim=2, convention="2d").out_dim == 20
    assert parse_input("rff14", in_dim=2).out_dim == 512
    # and the whole network: encoding width feeds the first layer
    assert MLP(parse_input("pe3").out_dim, 128, 4, 1).n_params() == 50_817
    assert MLP(parse_input("pe6").out_dim, 128, 4, 1).n_params() == 51_585
    assert MLP(parse_input("pe5", in_dim=2, convention="2d").out_dim, 128, 2, 3).n_params() == 19_587
    assert MLP(parse_input("rff14", in_dim=2).out_dim, 128, 2, 3).n_params() == 82_563


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("arch", [(1, 128, 4, 1), (20, 64, 2, 3), (512, 32, 1, 3)])
def test_default_init_bounds(seed, arch):
    torch.manual_seed(seed)
    model = MLP(*arch)
    for layer in model.layers:
        fan_in = layer.weight.shape[1]
        bound = 1 / math.sqrt(fan_in)
        w = layer.weight.detach().double().numpy()
        b = layer.bias.detach().double().numpy()
        assert np.abs(w).max() <= bound + 1e-7
        assert np.abs(b).max() <= bound + 1e-7
        if w.size >= 1000:
            # uniform on [-bound, bound]: spreads to the edges, mean 0, variance bound²/3
            assert np.abs(w).max() > 0.95 * bound
            assert abs(w.mean()) < 0.1 * bound
            np.testing.assert_allclose(w.var(), bound**2 / 3, rtol=0.1)
        if b.size >= 64:
            assert np.abs(b).max() > 0.7 * bound


def test_init_depends_on_torch_seed():
    torch.manual_seed(5)
    a = MLP(2, 16, 2, 1)
    torch.manual_seed(5)
    b = MLP(2, 16, 2, 1)
    torch.manual_seed(6)
    c = MLP(2, 16, 2, 1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def manual_forward(model, x):
    """z_l = a W_lᵀ + b_l, a = relu(z) for hidden layers, computed from the weights."""
    preacts, inputs = [], []
    a = x
    for k, layer in enumerate(model.layers):
        inputs.append(a)
        z = a @ layer.weight.T + layer.bias
        preacts.append(z)
        if k < len(model.layers) - 1:
            a = torch.clamp(z, min=0)
    return inputs, preacts


@pytest.mark.parametrize("arch", [(1, 5, 1, 1), (3, 13, 3, 2), (2, 32, 4, 3)])
def test_trace_and_hidden_preacts(arch):
    torch.manual_seed(sum(arch))
    model = MLP(*arch).double()
    x = torch.rand(50, arch[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        tr = model.trace(x)
        out = model(x)
        hidden = model.hidden_preacts(x)
        ref_inputs, ref_preacts = manual_forward(model, x)
    assert len(tr.preacts) == len(tr.inputs) == arch[2] + 1
    assert len(tr.hidden) == len(hidden) == arch[2]
    assert torch.equal(tr.output, out)
    assert out.shape == (50, arch[3])
    for a, b in zip(tr.hidden, hidden):
        assert torch.equal(a, b)
        assert a.shape == (50, arch[1])
    assert tr.inputs[0] is x
    for k in range(1, len(tr.inputs)):
        assert torch.equal(tr.inputs[k], torch.relu(tr.preacts[k - 1]))
    for a, b in zip(tr.inputs, ref_inputs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(tr.preacts, ref_preacts):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"width": -3},
        {"depth": 0},
        {"depth": -3},
        {"in_dim": 0},
        {"out_dim": 0},
        {"width": 2.5},
        {"depth": 1.0},
    ],
)
def test_bad_sizes_raise_config_error(kwargs):
    args = {"in_dim": 1, "width": 8, "depth": 2, "out_dim": 1, **kwargs}
    with pytest.raises(ConfigError):
        MLP(**args)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        MLP(1, 0, 1)


# --------------------------------------------------------------------------- the real-data CNN (§6.0)

# (input shape, classes, parameters, hidden units) -- spec §1.10 and §6.0
CNN_CHECKS = [
    ((1, 28, 28), 10, 175_338, 8_352),  # MNIST, FashionMNIST
    ((3, 32, 32), 10, 298_794, 11_456),  # CIFAR10
    ((3, 32, 32), 100, 321_924, 11_456),  # CIFAR100
]


@pytest.mark.parametrize("shape,classes,params,units", CNN_CHECKS)
def test_cnn_parameter_and_unit_counts_match_spec(shape, classes, params, units):
    model = CNN(shape, classes)
    assert model.stride == 2
    assert model.n_params() == params
    assert model.n_hidden == units
    assert len(model.hidden_preacts(torch.zeros(2, *shape))) == 4


def test_cnn_on_8x8_digits_uses_stride_1():
    """8 → 6 → 4 → 2: 384 flattened features, MNIST's, hence MNIST's parameter count."""
    model = CNN((1, 8, 8), 10)
    assert model.stride == 1
    assert model.maps == [(6, 6), (4, 4), (2, 2)]
    assert model.hidden_sizes == [32 * 36, 64 * 16, 96 * 4, 256]
    assert model.n_params() == 175_338
    # stride 2 cannot fit three valid convolutions on 8×8 (8 → 3 → 1) and is refused
    with pytest.raises(ConfigError, match="too small"):
        CNN((1, 8, 8), 10, stride=2)
    assert CNN((1, 15, 15), 10).stride == 2 and CNN((1, 14, 14), 10).stride == 1


def manual_cnn(model: CNN, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Pre-activations and output from the weights with ``F.conv2d`` and explicit matmuls."""
    preacts = []
    a = x
    for conv in model.convs:
        z = torch.nn.functional.conv2d(a, conv.weight, conv.bias, stride=model.stride)
        preacts.append(z.reshape(z.shape[0], -1))
        a = torch.clamp(z, min=0)
    z = a.reshape(a.shape[0], -1) @ model.fc.weight.T + model.fc.bias
    preacts.append(z)
    return preacts, torch.clamp(z, min=0) @ model.out.weight.T + model.out.bias


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 17, 15), (2, 28, 28)])
def test_cnn_preacts_and_forward_match_manual(shape):
    torch.manual_seed(shape[1])
    model = CNN(shape, 4, channels=(5, 6, 7), hidden=9).double()
    x = torch.randn(6, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden, out = model.hidden_preacts(x), model(x)
        ref_hidden, ref_out = manual_cnn(model, x)
    assert [h.shape[1] for h in hidden] == model.hidden_sizes
    for a, b in zip(hidden, ref_hidden):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)


def test_cnn_macs_count_every_multiply():
    """MACs against a count of the multiplications of each layer, position by position."""
    model = CNN((1, 8, 8), 10)
    conv = [(1, 32, 6), (32, 64, 4), (64, 96, 2)]
    expected = sum(cin * 9 * cout * side * side for cin, cout, side in conv) + 384 * 256 + 256 * 10
    assert model.macs() == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"n_classes": 1}, {"in_shape": (0, 8, 8)}, {"channels": ()}, {"hidden": 0}, {"in_shape": (1, 6, 6)}],
)
def test_cnn_bad_sizes_raise_config_error(kwargs):
    args = {"in_shape": (1, 8, 8), "n_classes": 10, **kwargs}
    with pytest.raises(ConfigError):
        CNN(**args)
