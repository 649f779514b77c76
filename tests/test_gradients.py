"""Gradient confusion: the Gram identity and the torch.func fallback against per-example autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import specbias.metrics.gradients as grads_mod
from specbias.encodings import GaussianRFF, NeRFPE
from specbias.errors import ConfigError
from specbias.metrics.gradients import (
    cosine_from_products,
    gradient_confusion,
    loss_gradient_gram,
    loss_gradient_pairs,
)
from specbias.metrics.pairs import Pairs
from specbias.models import CNN, MLP

TOL = 1e-10


# --------------------------------------------------------------------------- reference


def ref_grad(model: nn.Module, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
    """g_i = ∇_θ ℓ_i for ONE example by its own backward pass, ℓ_i = mean_c (f_c − y_c)²."""
    params = list(model.parameters())
    f = model(xi[None])[0]
    loss = ((f - yi) ** 2).mean()
    gs = torch.autograd.grad(loss, params)
    return torch.cat([g.reshape(-1) for g in gs]).detach()


def ref_output_grad(model: nn.Module, xi: torch.Tensor) -> torch.Tensor:
    """∇_θ f(x_i) for a scalar-output model."""
    params = list(model.parameters())
    f = model(xi[None])[0, 0]
    gs = torch.autograd.grad(f, params)
    return torch.cat([g.reshape(-1) for g in gs]).detach()


def ref_pairs(model, x, y, i, j):
    """Per pair: two separate single-example backward passes and a dot product."""
    inner, ni, nj = [], [], []
    for a, b in zip(i.tolist(), j.tolist()):
        ga = ref_grad(model, x[a], y[a])
        gb = ref_grad(model, x[b], y[b])
        inner.append(float(ga @ gb))
        ni.append(float(ga @ ga))
        nj.append(float(gb @ gb))
    return np.array(inner), np.array(ni), np.array(nj)


def assert_close(actual, expected, tol=TOL):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def random_pairs(n: int, p: int, seed: int) -> Pairs:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, p)
    j = rng.integers(0, n, p)
    j[:2] = i[:2]  # a couple of self-pairs
    return Pairs(i, j)


def make_mlp(in_dim, width, depth, out_dim, seed):
    torch.manual_seed(seed)
    return MLP(in_dim, width, depth, out_dim).double()


def raw_inputs(n, in_dim, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, in_dim, generator=g, dtype=torch.float64) * 2 - 1


def targets(n, out_dim, seed):
    g = torch.Generator().manual_seed(seed + 1000)
    return torch.randn(n, out_dim, generator=g, dtype=torch.float64)


# depth 1..4, widths 3..32, outputs 1 and 3
ARCHS = [
    (2, 3, 1, 1),
    (1, 5, 2, 3),
    (3, 8, 3, 1),
    (2, 13, 4, 3),
    (4, 32, 2, 1),
    (1, 32, 4, 3),
    (5, 17, 1, 3),
]


# --------------------------------------------------------------------------- Gram identity


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "in{}-w{}-d{}-o{}".format(*a))
def test_gram_pairs_match_autograd_raw_inputs(arch):
    in_dim, width, depth, out_dim = arch
    seed = sum(arch)
    model = make_mlp(in_dim, width, depth, out_dim, seed)
    n = 24
    x, y = raw_inputs(n, in_dim, seed), targets(n, out_dim, seed)
    pairs = random_pairs(n, 12, seed)
    prod = loss_gradient_pairs(model, x, y, pairs, method="gram")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert prod.inner.dtype == np.float64
    assert prod.inner.shape == (12,)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)
    # the cosine from the products equals the reference cosine
    conf = gradient_confusion(model, x, y, pairs, method="gram")
    assert_close(conf.values, inner / np.sqrt(ni * nj))
    assert conf.n_zero == 0
    # self-pairs have cosine 1
    np.testing.assert_allclose(conf.values[:2], 1.0, atol=1e-12)


def encoded_inputs(kind: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "nerf1d":
        t = torch.rand(n, 1, generator=g, dtype=torch.float64)
        return NeRFPE(n_freqs=3)(t)
    if kind == "nerf2d_input":
        t = torch.rand(n, 2, generator=g, dtype=torch.float64)
        return NeRFPE(n_freqs=2, include_input=True, in_dim=2)(t)
    if kind == "rff1d":
        t = torch.rand(n, 1, generator=g, dtype=torch.float64)
        return GaussianRFF(sigma=3.0, m=6, seed=seed)(t)
    t = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return GaussianRFF(sigma=2.0, m=5, in_dim=2, seed=seed)(t)


@pytest.mark.parametrize("kind", ["nerf1d", "nerf2d_input", "rff1d", "rff2d"])
@pytest.mark.parametrize("depth,width,out_dim", [(1, 7, 1), (3, 16, 3)])
def test_gram_pairs_match_autograd_encoded_inputs(kind, depth, width, out_dim):
    seed = depth * 10 + width + out_dim
    n = 20
    x = encoded_inputs(kind, n, seed)
    model = make_mlp(x.shape[1], width, depth, out_dim, seed)
    y = targets(n, out_dim, seed)
    pairs = random_pairs(n, 10, seed)
    prod = loss_gradient_pairs(model, x, y, pairs, method="gram")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)


@pytest.mark.parametrize("arch", [(2, 6, 1, 1), (3, 11, 3, 3), (1, 20, 4, 1)])
def test_full_gram_matches_autograd(arch):
    in_dim, width, depth, out_dim = arch
    seed = 7 + sum(arch)
    model = make_mlp(in_dim, width, depth, out_dim, seed)
    n = 15
    x, y = raw_inputs(n, in_dim, seed), targets(n, out_dim, seed)
    g = torch.stack([ref_grad(model, x[k], y[k]) for k in range(n)])
    ref = (g @ g.T).numpy()
    gram = loss_gradient_gram(model, x, y, method="gram")
    assert gram.shape == (n, n)
    assert_close(gram.numpy(), ref)
    # "auto" on an MLP takes the same route, and the func fallback agrees as well
    assert_close(loss_gradient_gram(model, x, y).numpy(), ref)
    assert_close(loss_gradient_gram(model, x, y, method="func").numpy(), ref)


@pytest.mark.parametrize("arch", [(2, 4, 1, 1), (3, 9, 2, 3), (1, 12, 4, 1)])
def test_func_method_matches_autograd(arch):
    in_dim, width, depth, out_dim = arch
    seed = 3 + sum(arch)
    model = make_mlp(in_dim, width, depth, out_dim, seed)
    n = 16
    x, y = raw_inputs(n, in_dim, seed), targets(n, out_dim, seed)
    pairs = random_pairs(n, 10, seed)
    prod = loss_gradient_pairs(model, x, y, pairs, method="func")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)


def test_chunked_pairs_equal_unchunked():
    model = make_mlp(2, 10, 3, 3, 5)
    n = 30
    x, y = raw_inputs(n, 2, 5), targets(n, 3, 5)
    pairs = random_pairs(n, 25, 5)
    a = loss_gradient_pairs(model, x, y, pairs, chunk=4)
    b = loss_gradient_pairs(model, x, y, pairs)
    np.testing.assert_array_equal(a.inner, b.inner)
    np.testing.assert_array_equal(a.sq_norm_i, b.sq_norm_i)


# --------------------------------------------------------------------------- non-MLP models


def tanh_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def test_linear_tanh_module_auto_uses_gram_and_matches_autograd(monkeypatch):
    """Any nn.Linear + elementwise module now takes the Gram identity (hooks + autograd δ)."""
    model = tanh_net(11)
    n = 14
    x, y = raw_inputs(n, 2, 11), targets(n, 3, 11)
    pairs = random_pairs(n, 9, 11)

    def boom(*args, **kwargs):
        raise AssertionError("func fallback used for a covered module")

    monkeypatch.setattr(grads_mod, "_func_grads", boom)
    prod = loss_gradient_pairs(model, x, y, pairs, method="auto")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)
    g = torch.stack([ref_grad(model, x[k], y[k]) for k in range(n)])
    assert_close(loss_gradient_gram(model, x, y).numpy(), (g @ g.T).numpy())


def test_cnn_auto_uses_func(monkeypatch):
    model, x = jacobian_case("cnn-s1")
    labels = class_labels(x.shape[0], 3, 0)
    calls = []
    original = grads_mod._func_grads

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(grads_mod, "_func_grads", spy)
    loss_gradient_pairs(model, x, labels, random_pairs(x.shape[0], 4, 0), loss="ce")
    assert calls, "auto on a CNN must use the torch.func fallback"


def test_auto_on_mlp_uses_gram(monkeypatch):
    model = make_mlp(2, 5, 2, 1, 0)
    x, y = raw_inputs(8, 2, 0), targets(8, 1, 0)

    def boom(*args, **kwargs):
        raise AssertionError("func fallback used for an MLP")

    monkeypatch.setattr(grads_mod, "_func_grads", boom)
    loss_gradient_pairs(model, x, y, random_pairs(8, 4, 0))
    loss_gradient_gram(model, x, y)


def test_unknown_method_measure_and_zero_policy_raise():
    model = make_mlp(2, 4, 1, 1, 0)
    x, y = raw_inputs(6, 2, 0), targets(6, 1, 0)
    pairs = random_pairs(6, 3, 0)
    with pytest.raises(ConfigError):
        loss_gradient_pairs(model, x, y, pairs, method="vmap")
    with pytest.raises(ConfigError):
        gradient_confusion(model, x, y, pairs, measure="angle")
    with pytest.raises(ConfigError):
        gradient_confusion(model, x, y, pairs, zero="skip")


# --------------------------------------------------------------------------- cosine edge cases


def zero_residual_setup():
    model = make_mlp(2, 9, 2, 1, 21)
    n = 10
    x = raw_inputs(n, 2, 21)
    y = targets(n, 1, 21)
    with torch.no_grad():
        f = model(x)
    y[3] = f[3]  # residual exactly 0 -> gradient exactly 0
    pairs = Pairs(np.array([3, 5, 3, 1, 0]), np.array([5, 3, 3, 2, 4]))
    return model, x, y, pairs


def test_zero_gradient_gives_nan_or_zero():
    model, x, y, pairs = zero_residual_setup()
    prod = loss_gradient_pairs(model, x, y, pairs)
    assert prod.sq_norm_i[0] == 0.0 and prod.sq_norm_j[1] == 0.0 and prod.sq_norm_i[2] == 0.0
    inner, ni, nj = ref_pairs(model, x, y, pairs.i[3:], pairs.j[3:])
    expected = inner / np.sqrt(ni * nj)

    nan = gradient_confusion(model, x, y, pairs, zero="nan")
    assert np.isnan(nan.values[:3]).all()
    assert nan.n_zero == 3
    assert_close(nan.values[3:], expected)

    zero = gradient_confusion(model, x, y, pairs, zero="zero")
    np.testing.assert_array_equal(zero.values[:3], 0.0)
    assert zero.n_zero == 3
    assert_close(zero.values[3:], expected)


def test_inner_measure_returns_raw_inner_products():
    model, x, y, pairs = zero_residual_setup()
    conf = gradient_confusion(model, x, y, pairs, measure="inner")
    inner, _, _ = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(conf.values, inner)
    np.testing.assert_array_equal(conf.values[:3], 0.0)
    assert conf.n_zero == 3
    # not a cosine: magnitudes are not bounded by 1 in general
    big = make_mlp(1, 16, 2, 1, 2)
    xb, yb = raw_inputs(8, 1, 2), targets(8, 1, 2) * 50
    pb = Pairs(np.arange(8), np.arange(8))
    vals = gradient_confusion(big, xb, yb, pb, measure="inner").values
    _, ni, _ = ref_pairs(big, xb, yb, pb.i, pb.j)
    assert_close(vals, ni)
    assert np.max(np.abs(vals)) > 1.0


def test_cosine_from_products_directly():
    from specbias.metrics.gradients import PairProducts

    p = PairProducts(
        inner=np.array([2.0, -3.0, 0.0, 1.0]),
        sq_norm_i=np.array([4.0, 9.0, 0.0, 1.0]),
        sq_norm_j=np.array([1.0, 4.0, 5.0, 0.0]),
    )
    c = cosine_from_products(p, "nan")
    np.testing.assert_allclose(c.values[:2], [1.0, -0.5])
    assert np.isnan(c.values[2:]).all() and c.n_zero == 2
    c0 = cosine_from_products(p, "zero")
    np.testing.assert_array_equal(c0.values[2:], [0.0, 0.0])
    assert c0.n_zero == 2


@pytest.mark.parametrize("arch", [(1, 8, 2), (2, 16, 3), (3, 5, 1)])
def test_residual_sign_identity_scalar_output(arch):
    in_dim, width, depth = arch
    seed = 40 + sum(arch)
    model = make_mlp(in_dim, width, depth, 1, seed)
    n = 16
    x, y = raw_inputs(n, in_dim, seed), targets(n, 1, seed)
    pairs = random_pairs(n, 12, seed)
    with torch.no_grad():
        r = (model(x) - y)[:, 0].numpy()
    expected = []
    for a, b in zip(pairs.i, pairs.j):
        fa, fb = ref_output_grad(model, x[a]), ref_output_grad(model, x[b])
        cos_f = float(fa @ fb) / math.sqrt(float(fa @ fa) * float(fb @ fb))
        expected.append(np.sign(r[a] * r[b]) * cos_f)
    for method in ("gram", "func"):
        conf = gradient_confusion(model, x, y, pairs, method=method)
        assert_close(conf.values, np.array(expected))


def test_relu_at_exactly_zero_preactivation_has_zero_derivative():
    """A unit with z = 0 exactly is off, as in autograd's ReLU backward (and in the patterns)."""
    model = make_mlp(2, 6, 2, 3, 8)
    with torch.no_grad():
        model.layers[0].bias[:3] = 0.0  # z = 0 for these units at x = 0
    x = raw_inputs(8, 2, 8)
    x[0] = 0.0
    y = targets(8, 3, 8)
    with torch.no_grad():
        assert (model.trace(x).hidden[0][0, :3] == 0).all()
    pairs = Pairs(np.array([0, 0, 1, 2]), np.array([0, 3, 0, 5]))
    prod = loss_gradient_pairs(model, x, y, pairs, method="gram")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)


# --------------------------------------------------------------------------- cross-entropy (E17)


def ref_ce_grad(model: nn.Module, xi: torch.Tensor, label: int) -> torch.Tensor:
    """g_i = ∇_θ ℓ_i for ONE example, ℓ_i = −log softmax(f(x_i))[y_i], by its own backward pass."""
    params = list(model.parameters())
    logp = torch.log_softmax(model(xi[None])[0], dim=0)
    gs = torch.autograd.grad(-logp[label], params)
    return torch.cat([g.reshape(-1) for g in gs]).detach()


def ref_ce_pairs(model, x, labels, pairs):
    g = {k: ref_ce_grad(model, x[k], int(labels[k])) for k in set(pairs.i.tolist()) | set(pairs.j.tolist())}
    inner = [float(g[a] @ g[b]) for a, b in zip(pairs.i.tolist(), pairs.j.tolist())]
    return np.array(inner), np.array([float(g[a] @ g[a]) for a in pairs.i.tolist()])


def class_labels(n: int, classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed + 7))


@pytest.mark.parametrize("arch", [(3, 8, 1, 2), (5, 13, 3, 4), (2, 32, 4, 10)])
def test_ce_gram_pairs_match_autograd(arch):
    """The Gram identity with the cotangent softmax − onehot is the per-example CE gradient product."""
    in_dim, width, depth, classes = arch
    seed = 40 + sum(arch)
    model = make_mlp(in_dim, width, depth, classes, seed)
    n = 20
    x, labels = raw_inputs(n, in_dim, seed) * 3, class_labels(n, classes, seed)
    pairs = random_pairs(n, 14, seed)
    prod = loss_gradient_pairs(model, x, labels, pairs, method="gram", loss="ce")
    inner, ni = ref_ce_pairs(model, x, labels, pairs)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    conf = gradient_confusion(model, x, labels, pairs, loss="ce")
    assert_close(conf.values, inner / np.sqrt(prod.sq_norm_i * prod.sq_norm_j))
    g = torch.stack([ref_ce_grad(model, x[k], int(labels[k])) for k in range(n)])
    assert_close(loss_gradient_gram(model, x, labels, loss="ce").numpy(), (g @ g.T).numpy())


@pytest.mark.parametrize("shape,classes", [((1, 8, 8), 3), ((2, 15, 15), 4)])
def test_ce_func_pairs_on_the_cnn_match_autograd(shape, classes):
    """The torch.func path on the real-data CNN (stride 1 and stride 2) against one backward per example."""
    torch.manual_seed(classes)
    model = CNN(shape, classes, channels=(3, 4, 5), hidden=6).double()
    n = 12
    g = torch.Generator().manual_seed(classes)
    x = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    labels = class_labels(n, classes, classes)
    pairs = random_pairs(n, 10, classes)
    prod = loss_gradient_pairs(model, x, labels, pairs, loss="ce")
    inner, ni = ref_ce_pairs(model, x, labels, pairs)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)


def test_func_pairs_in_chunks_equal_one_chunk(monkeypatch):
    """A budget of a few gradients forces many chunks (with repeated and shared examples): same values."""
    torch.manual_seed(2)
    model = CNN((1, 7, 7), 3, channels=(2, 2, 2), hidden=4).double()
    n_params = model.n_params()
    x = torch.randn(10, 1, 7, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    labels = class_labels(10, 3, 2)
    pairs = random_pairs(10, 23, 2)
    whole = loss_gradient_pairs(model, x, labels, pairs, loss="ce")
    calls = []
    original = grads_mod._func_grads

    def spy(model, x, y, loss):
        calls.append(x.shape[0])
        return original(model, x, y, loss)

    monkeypatch.setattr(grads_mod, "_func_grads", spy)
    monkeypatch.setattr(grads_mod, "FUNC_BUDGET", 6 * n_params)  # 3 pairs, at most 6 examples per chunk
    chunked = loss_gradient_pairs(model, x, labels, pairs, loss="ce")
    assert len(calls) == 8 and max(calls) <= 6
    assert_close(chunked.inner, whole.inner, tol=1e-12)
    assert_close(chunked.sq_norm_j, whole.sq_norm_j, tol=1e-12)
    empty = loss_gradient_pairs(model, x, labels, Pairs(np.zeros(0, int), np.zeros(0, int)), loss="ce")
    assert empty.inner.shape == (0,)


def test_ce_cotangent_is_the_gradient_of_the_ce_loss():
    logits = torch.randn(
        9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True
    )
    labels = class_labels(9, 5, 3)
    (auto,) = torch.autograd.grad(grads_mod.ce_per_example(logits, labels).sum(), logits)
    torch.testing.assert_close(grads_mod.ce_cotangent(logits.detach(), labels), auto, rtol=1e-12, atol=1e-12)


def test_unknown_loss_raises():
    model = make_mlp(2, 4, 1, 3, 0)
    x = raw_inputs(6, 2, 0)
    with pytest.raises(ConfigError, match="loss must be one of"):
        loss_gradient_pairs(model, x, class_labels(6, 3, 0), random_pairs(6, 3, 0), loss="hinge")


# --------------------------------------------------------------------------- output-Jacobian cosine


def ref_jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Each example's output Jacobian ``(C, #params)`` by its own ``torch.func.jacrev`` call (no vmap)."""
    from torch.func import functional_call, jacrev

    params = {k: v.detach() for k, v in model.named_parameters()}
    rows = []
    for xi in x:
        jac = jacrev(lambda p, xi=xi: functional_call(model, p, (xi[None],))[0])(params)
        rows.append(torch.cat([j.reshape(j.shape[0], -1) for j in jac.values()], dim=1))
    return torch.stack(rows)


def ref_jacobian_pairs(model: nn.Module, x: torch.Tensor, pairs: Pairs) -> tuple[np.ndarray, ...]:
    """``tr(J_i J_jᵀ)``, ``‖J_i‖_F²``, ``‖J_j‖_F²`` from explicit Jacobians."""
    jac = ref_jacobians(model, x).flatten(1)
    i, j = torch.as_tensor(pairs.i), torch.as_tensor(pairs.j)
    sq = (jac * jac).sum(1)
    return (jac[i] * jac[j]).sum(1).numpy(), sq[i].numpy(), sq[j].numpy()


def jacobian_case(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A float64 model and random inputs: the MLP with 1 and 3 outputs, the CNN (stride 1 and 2)."""
    g = torch.Generator().manual_seed(7)
    if name.startswith("mlp"):
        out_dim = int(name[-1])
        return make_mlp(3, 11, 3, out_dim, out_dim), raw_inputs(20, 3, out_dim)
    if name == "tanh-o1":
        torch.manual_seed(4)
        model = nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 1)).double()
        return model, raw_inputs(20, 2, 4)
    shape = (1, 8, 8) if name == "cnn-s1" else (2, 15, 15)
    torch.manual_seed(3)
    model = CNN(shape, 3, channels=(3, 4, 5), hidden=6).double()
    return model, torch.randn(20, *shape, generator=g, dtype=torch.float64)


JACOBIAN_CASES = ["mlp-o1", "mlp-o3", "tanh-o1", "cnn-s1", "cnn-s2"]


@pytest.mark.parametrize("name", JACOBIAN_CASES)
@pytest.mark.parametrize("method", ["auto", "func"])
def test_output_jacobian_pairs_match_per_example_jacrev(name, method):
    """tr(J_i J_jᵀ) and ‖J‖_F² by the Gram identity (MLP) or torch.func (any module), to 1e-10."""
    model, x = jacobian_case(name)
    pairs = random_pairs(x.shape[0], 15, 1)
    prod = grads_mod.output_jacobian_pairs(model, x, pairs, method=method)
    inner, ni, nj = ref_jacobian_pairs(model, x, pairs)
    assert prod.inner.dtype == np.float64 and prod.inner.shape == (15,)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)
    conf = grads_mod.output_jacobian_cosine(model, x, pairs, method=method)
    assert_close(conf.values, inner / np.sqrt(ni * nj))
    np.testing.assert_allclose(conf.values[:2], 1.0, atol=1e-12)  # self-pairs
    assert conf.n_zero == 0


def test_output_jacobian_pairs_are_the_empirical_ntk_trace():
    """The pair products are entries of the traced empirical NTK (the same kernel, by pairs)."""
    from specbias.metrics.ntk import empirical_ntk

    model, x = jacobian_case("mlp-o3")
    pairs = random_pairs(x.shape[0], 15, 2)
    prod = grads_mod.output_jacobian_pairs(model, x, pairs)
    theta = empirical_ntk(model, x).numpy()
    assert_close(prod.inner, theta[pairs.i, pairs.j])
    assert_close(prod.sq_norm_i, np.diag(theta)[pairs.i])


def test_single_output_loss_cosine_is_the_jacobian_cosine_up_to_the_residual_signs():
    """C = 1: g_i = 2 r_i ∇f(x_i), so cos(g_i, g_j) = sign(r_i r_j) c_ij; with C = 3 it is not."""
    model, x = jacobian_case("mlp-o1")
    y = targets(x.shape[0], 1, 5)
    pairs = random_pairs(x.shape[0], 15, 3)
    jac = grads_mod.output_jacobian_cosine(model, x, pairs).values
    loss = gradient_confusion(model, x, y, pairs).values
    with torch.no_grad():
        r = (model(x) - y)[:, 0].numpy()
    assert_close(loss, np.sign(r[pairs.i] * r[pairs.j]) * jac)


def test_output_jacobian_func_chunks_and_empty_pairs(monkeypatch):
    """A tiny budget forces many func chunks: same values; no pairs give empty arrays (both paths)."""
    model, x = jacobian_case("cnn-s1")
    pairs = random_pairs(x.shape[0], 23, 4)
    whole = grads_mod.output_jacobian_pairs(model, x, pairs)
    monkeypatch.setattr(grads_mod, "FUNC_BUDGET", 6 * 3 * model.n_params())  # 6 Jacobians per chunk
    chunked = grads_mod.output_jacobian_pairs(model, x, pairs)
    assert_close(chunked.inner, whole.inner, tol=1e-12)
    assert_close(chunked.sq_norm_i, whole.sq_norm_i, tol=1e-12)
    none = Pairs(np.zeros(0, int), np.zeros(0, int))
    for m, xs in (jacobian_case("cnn-s1"), jacobian_case("mlp-o3")):
        assert grads_mod.output_jacobian_pairs(m, xs, none).inner.shape == (0,)


def test_output_jacobian_gram_on_uncovered_raises():
    model, x = jacobian_case("cnn-s1")
    with pytest.raises(ConfigError, match=r"parameter 'convs.0.weight' of Conv2d is not covered"):
        grads_mod.output_jacobian_pairs(model, x, random_pairs(x.shape[0], 3, 0), method="gram")


# --------------------------------------------------------------------------- models users build


class Sine(nn.Module):
    """A user's own activation: ``sin(ω₀ z)``."""

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = w0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * z)


class Lambda(nn.Module):
    """Any elementwise function as a module (``torch.sin``, a Gaussian bump)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def user_model(name: str, in_dim: int = 2, out_dim: int = 3) -> nn.Module:
    """Float64 models built from nn.Linear, user activations and HashGrid (tables O(1))."""
    from specbias.hashgrid import HashGrid

    torch.manual_seed(len(name) + in_dim + out_dim)
    if name == "sine":  # SIREN-like: sin(30 z), torch.sin by a lambda, a Gaussian, a bias-free layer
        layers = [
            nn.Linear(in_dim, 12),
            Sine(30.0),
            nn.Linear(12, 10),
            Lambda(torch.sin),
            nn.Linear(10, 9, bias=False),
            Lambda(lambda z: torch.exp(-(z**2) / 0.5)),
            nn.Linear(9, out_dim),
        ]
    elif name == "nobias":
        layers = [nn.Linear(in_dim, 8, bias=False), nn.Tanh(), nn.Linear(8, out_dim, bias=False)]
    elif name == "inplace-relu":
        layers = [nn.Linear(in_dim, 9), nn.ReLU(inplace=True), nn.Linear(9, out_dim)]
    elif name == "bn-eval":  # BatchNorm in eval mode without affine parameters: a fixed per-unit map
        bn = nn.BatchNorm1d(8, affine=False)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        layers = [nn.Linear(in_dim, 8), bn.eval(), nn.SiLU(), nn.Linear(8, out_dim)]
    elif name.startswith("hash"):  # "hash" (every level hashed into 16 rows: collisions) or "hash-dense"
        log2 = 4 if name == "hash" else 12
        grid = HashGrid(in_dim, levels=3, log2_table_size=log2, features_per_level=2, base_resolution=3)
        with torch.no_grad():
            grid.table.normal_()
        layers = [grid, nn.Linear(6, 10), Sine(2.0), nn.Linear(10, out_dim)]
    else:
        raise KeyError(name)
    return nn.Sequential(*layers).double()


USER_MODELS = ["sine", "nobias", "inplace-relu", "bn-eval", "hash", "hash-dense"]


@pytest.mark.parametrize("name", USER_MODELS)
@pytest.mark.parametrize(("in_dim", "out_dim"), [(1, 1), (2, 3)])
def test_user_models_gram_equals_per_example_autograd(name, in_dim, out_dim):
    """The acceptance check: loss-gradient Gram of user-built models to 1e-10 in float64."""
    model = user_model(name, in_dim, out_dim)
    n = 17
    x = raw_inputs(n, in_dim, 3) * 0.5 + 0.5  # the HashGrid's domain [0, 1]
    y = targets(n, out_dim, 3)
    g = torch.stack([ref_grad(model, x[k], y[k]) for k in range(n)])
    gram = loss_gradient_gram(model, x, y, method="gram")
    assert_close(gram.numpy(), (g @ g.T).numpy())
    pairs = random_pairs(n, 20, 4)
    prod = loss_gradient_pairs(model, x, y, pairs, method="gram")
    inner, ni, nj = ref_pairs(model, x, y, pairs.i, pairs.j)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)


def test_hash_collisions_within_a_point_are_counted():
    """The table's own share (the sparse term) against per-example table gradients, with a table of
    4 rows per level so that two corners of one point land on one row."""
    from specbias.metrics.gram import SharedRows, gram_terms, kernel

    model = user_model("hash", 2, 1)
    model[0] = type(model[0])(
        2, levels=3, log2_table_size=2, features_per_level=2, base_resolution=2
    ).double()
    with torch.no_grad():
        model[0].table.normal_()
    x = raw_inputs(25, 2, 8) * 0.5 + 0.5
    y = targets(25, 1, 8)
    rows = model[0].lookup(x).rows
    assert bool((rows[..., :, None] == rows[..., None, :]).sum((-1, -2)).gt(4).any())

    def table_grad(k: int) -> torch.Tensor:
        loss = ((model(x[k : k + 1]) - y[k]) ** 2).mean()
        return torch.autograd.grad(loss, model[0].table)[0].reshape(-1)

    g = torch.stack([table_grad(k) for k in range(25)])
    terms = gram_terms(model, x, lambda f: 2 * (f - y) / f.shape[1], strict=True)
    table_terms = [t for t in terms if isinstance(t.factor, SharedRows)]
    assert len(table_terms) == 3
    assert_close(kernel(table_terms, None, blocks=False, chunk=7).numpy(), (g @ g.T).numpy())


@pytest.mark.parametrize("name", ["sine", "hash", "nobias"])
def test_user_models_output_jacobian_pairs_match_jacrev(name):
    model = user_model(name, 2, 3)
    x = raw_inputs(15, 2, 5) * 0.5 + 0.5
    pairs = random_pairs(15, 12, 6)
    prod = grads_mod.output_jacobian_pairs(model, x, pairs, method="gram")
    inner, ni, nj = ref_jacobian_pairs(model, x, pairs)
    assert_close(prod.inner, inner)
    assert_close(prod.sq_norm_i, ni)
    assert_close(prod.sq_norm_j, nj)


class SharedLayer(nn.Module):
    """One Linear applied twice per forward pass (weight sharing)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.mid, self.out = nn.Linear(2, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.mid(torch.tanh(self.inp(x))))
        return self.out(torch.tanh(self.mid(h)))


class Tied(nn.Module):
    """Two Linears holding one weight Parameter (tied weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 3)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.b(torch.tanh(self.a(x)))))


class SineLinear(nn.Linear):
    """An nn.Linear subclass whose forward is not Linear's (its output is not z = Wa + b)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(super().forward(x))


def uncovered_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "bn-train":
        return nn.Sequential(
            nn.Linear(2, 5), nn.BatchNorm1d(5, affine=False), nn.ReLU(), nn.Linear(5, 3)
        ).double()
    if name == "bn-affine":
        return nn.Sequential(nn.Linear(2, 5), nn.BatchNorm1d(5).eval(), nn.Linear(5, 3)).double()
    if name == "layernorm":
        return nn.Sequential(nn.Linear(2, 5), nn.LayerNorm(5), nn.Linear(5, 3)).double()
    if name == "shared":
        return SharedLayer().double()
    if name == "tied":
        return Tied().double()
    return nn.Sequential(SineLinear(2, 5), nn.Linear(5, 3)).double()


UNCOVERED = {
    "bn-train": r"'1' \(BatchNorm1d\) is a BatchNorm in train mode",
    "bn-affine": r"parameter '1.weight' of BatchNorm1d is not covered",
    "layernorm": r"parameter '1.weight' of LayerNorm is not covered",
    "shared": r"Linear 'mid' runs 2 times per forward pass \(weight sharing\)",
    "tied": r"parameter 'b.weight' is shared with 'a.weight'",
    "subclass": r"parameter '0.weight' of SineLinear is not covered",
}


@pytest.mark.parametrize("name", list(UNCOVERED))
def test_gram_on_uncovered_module_is_one_config_error_line(name):
    model = uncovered_model(name)
    x, y = raw_inputs(6, 2, 1), targets(6, 3, 1)
    pairs = random_pairs(6, 3, 1)
    for call in (
        lambda: loss_gradient_pairs(model, x, y, pairs, method="gram"),
        lambda: loss_gradient_gram(model, x, y, method="gram"),
        lambda: grads_mod.output_jacobian_pairs(model, x, pairs, method="gram"),
    ):
        with pytest.raises(ConfigError, match=UNCOVERED[name]) as err:
            call()
        assert "\n" not in str(err.value) and "use method='func'" in str(err.value)


@pytest.mark.parametrize("name", ["shared", "tied", "subclass", "layernorm"])
def test_auto_on_uncovered_module_falls_back_to_func(name):
    """Static (tied, subclass, layernorm) and run-time (shared) refusals both end in torch.func."""
    model = uncovered_model(name)
    n = 9
    x, y = raw_inputs(n, 2, 2), targets(n, 3, 2)
    g = torch.stack([ref_grad(model, x[k], y[k]) for k in range(n)])
    assert_close(loss_gradient_gram(model, x, y).numpy(), (g @ g.T).numpy())
