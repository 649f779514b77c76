"""The NTK module: empirical kernel vs an explicit torch.func Jacobian, the confusion relation,
spectrum, drift, the analytic infinite-width kernel and the linearised dynamics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp

import specbias.metrics.ntk.analytic as analytic_mod
import specbias.metrics.ntk.spectrum as spectrum_mod
from specbias.encodings import GaussianRFF, NeRFPE, Raw
from specbias.errors import ConfigError
from specbias.metrics.gradients import gradient_confusion, loss_gradient_gram
from specbias.metrics.ntk import (
    NTKSpectrum,
    adam_equivalent_lr,
    alignment_curve,
    analytic_nngp,
    analytic_ntk,
    confusion_from_ntk,
    empirical_ntk,
    linearised_residuals,
    loss_gradient_gram_from_ntk,
    ntk_drift,
    ntk_spectrum,
    predict_frequency_residuals,
    stable_lr,
    target_alignment,
)
from specbias.metrics.pairs import Pairs
from specbias.metrics.spectrum import frequency_convergence
from specbias.models import MLP
from tests.test_gradients import uncovered_model, user_model

TOL = 1e-10

# torch's forward-mode AD (jvp) scripts its decompositions on first use
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def assert_kernel_close(actual: torch.Tensor, expected: torch.Tensor, tol: float = TOL) -> None:
    assert actual.shape == expected.shape
    scale = max(1.0, float(expected.abs().max()))
    assert float((actual - expected).abs().max()) <= tol * scale


# --------------------------------------------------------------------------- reference


def ref_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``∂f_c(x_i)/∂θ`` as ``(N, C, P)`` from ONE ``jacrev`` of the batched output w.r.t. the flat
    parameter vector (examples do not interact, so the block diagonal is the per-example Jacobian)."""
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(vec: torch.Tensor) -> torch.Tensor:
        params = {k: v.reshape(s) for k, v, s in zip(names, vec.split(sizes), shapes)}
        return functional_call(model, params, (x,))

    return jacrev(f)(flat)  # (N, C, P)


def ref_ntk(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None, mode: str) -> torch.Tensor:
    jac = ref_jacobian(model, x)
    jac2 = jac if x2 is None else ref_jacobian(model, x2)
    blocks = torch.einsum("icp,jdp->ijcd", jac, jac2)
    return blocks if mode == "blocks" else blocks.diagonal(dim1=2, dim2=3).sum(-1)


def make_mlp(in_dim: int, width: int, depth: int, out_dim: int, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_dim, width, depth, out_dim).double()


def grid(n: int) -> torch.Tensor:
    return torch.linspace(0, 1, n + 1, dtype=torch.float64)[:-1, None]


class TanhNet(nn.Module):
    """Not a specbias MLP: served by the torch.func fallback."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 7), nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


# --------------------------------------------------------------------------- empirical NTK

ENCODINGS = {
    "raw01": lambda t: t,
    "raw11": Raw(-1.0, 1.0),
    "pe3": NeRFPE(4),
    "rff": GaussianRFF(3.0, m=8, seed=1),
}
NETS = [(8, 1, 1), (16, 3, 1), (12, 2, 3), (24, 4, 2)]  # (width, depth, out_dim)


@pytest.mark.parametrize("enc", list(ENCODINGS))
@pytest.mark.parametrize(("width", "depth", "out_dim"), NETS)
def test_empirical_ntk_equals_jacobian_contraction(enc, width, depth, out_dim):
    t = torch.rand(11, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(width))
    t2 = torch.rand(6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(depth))
    x, x2 = ENCODINGS[enc](t), ENCODINGS[enc](t2)
    model = make_mlp(x.shape[1], width, depth, out_dim, seed=width + depth)
    for mode in ("trace", "blocks"):
        assert_kernel_close(empirical_ntk(model, x, mode=mode), ref_ntk(model, x, None, mode))
        assert_kernel_close(empirical_ntk(model, x, x2, mode=mode, chunk=4), ref_ntk(model, x, x2, mode))


def test_func_fallback_equals_reference_and_identity():
    torch.manual_seed(0)
    net = TanhNet().double()
    x, x2 = torch.randn(9, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    for mode in ("trace", "blocks"):
        assert_kernel_close(empirical_ntk(net, x, x2, mode=mode), ref_ntk(net, x, x2, mode))
    model = make_mlp(2, 10, 2, 3)
    for mode in ("trace", "blocks"):
        assert_kernel_close(
            empirical_ntk(model, x, x2, mode=mode, method="func"),
            empirical_ntk(model, x, x2, mode=mode, method="identity"),
        )
    bn = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    with pytest.raises(ConfigError, match="BatchNorm in train mode"):
        empirical_ntk(bn, x, method="identity")
    with pytest.raises(ConfigError, match="mode"):
        empirical_ntk(model, x, mode="diag")
    with pytest.raises(ConfigError, match="method"):
        empirical_ntk(model, x, method="jvp")


@pytest.mark.parametrize("name", ["sine", "nobias", "hash", "hash-dense", "bn-eval"])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_empirical_ntk_of_user_models_equals_jacobian_contraction(name, out_dim):
    """Linear + user activations + HashGrid (collisions included): the identity against jacrev."""
    model = user_model(name, 2, out_dim)
    g = torch.Generator().manual_seed(out_dim)
    x, x2 = (
        torch.rand(13, 2, dtype=torch.float64, generator=g),
        torch.rand(5, 2, dtype=torch.float64, generator=g),
    )
    for mode in ("trace", "blocks"):
        assert_kernel_close(
            empirical_ntk(model, x, mode=mode, method="identity"), ref_ntk(model, x, None, mode)
        )
        assert_kernel_close(
            empirical_ntk(model, x, x2, mode=mode, method="identity", chunk=4), ref_ntk(model, x, x2, mode)
        )
        assert_kernel_close(
            empirical_ntk(model, x, x2, mode=mode, method="func"), ref_ntk(model, x, x2, mode)
        )


@pytest.mark.parametrize("model_name", ["mlp", "hash"])
def test_symmetric_kernel_by_tiles(monkeypatch, model_name):
    """Tiles of 5 rows (only those on or above the diagonal computed, the rest mirrored): the same
    kernel, exactly symmetric, for the trace, the blocks and the loss-gradient Gram."""
    import specbias.metrics.gram as gram_mod

    model = make_mlp(2, 9, 2, 3) if model_name == "mlp" else user_model("hash", 2, 3)
    x = torch.rand(23, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = torch.randn(23, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    whole = {mode: empirical_ntk(model, x, mode=mode) for mode in ("trace", "blocks")}
    gram = loss_gradient_gram(model, x, y)
    monkeypatch.setattr(gram_mod, "SYM_TILE", 5)
    for mode in ("trace", "blocks"):
        tiled = empirical_ntk(model, x, mode=mode)
        assert_kernel_close(tiled, whole[mode], tol=1e-13)
        assert_kernel_close(tiled, ref_ntk(model, x, None, mode))
        flat = tiled if mode == "trace" else tiled.permute(0, 2, 1, 3).reshape(69, 69)
        assert torch.equal(flat, flat.T)
    tiled_gram = loss_gradient_gram(model, x, y)
    assert_kernel_close(tiled_gram, gram, tol=1e-13)
    assert torch.equal(tiled_gram, tiled_gram.T)


@pytest.mark.parametrize("name", ["bn-train", "shared", "tied"])
def test_identity_ntk_on_uncovered_module_raises_and_auto_falls_back(name):
    model = uncovered_model(name)
    x = torch.rand(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="the Gram identity does not apply") as err:
        empirical_ntk(model, x, method="identity")
    assert "\n" not in str(err.value)
    if name != "bn-train":  # a train-mode BatchNorm couples the examples: no per-example reference
        assert_kernel_close(empirical_ntk(model, x), ref_ntk(model, x, None, "trace"))


def test_kernel_is_symmetric_psd():
    model = make_mlp(8, 32, 3, 3, seed=4)
    x = NeRFPE(4)(grid(40))
    theta = empirical_ntk(model, x, mode="blocks")
    assert torch.equal(theta, theta.permute(1, 0, 3, 2))
    flat = theta.permute(0, 2, 1, 3).reshape(120, 120)
    vals = torch.linalg.eigvalsh(flat)
    assert float(vals.min()) >= -1e-10 * float(vals.max())
    trace = empirical_ntk(model, x)
    assert torch.equal(trace, trace.T)
    assert_kernel_close(trace, theta.diagonal(dim1=2, dim2=3).sum(-1))
    assert float(torch.linalg.eigvalsh(trace).min()) >= -1e-10 * float(trace.diagonal().max())


# --------------------------------------------------------------------------- confusion relation


@pytest.mark.parametrize("out_dim", [1, 3])
def test_loss_gradient_gram_from_ntk_equals_gram_identity(out_dim):
    model = make_mlp(8, 24, 3, out_dim, seed=out_dim)
    x = NeRFPE(4)(grid(30))
    y = torch.randn(30, out_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    r = model(x).detach() - y
    expected = loss_gradient_gram(model, x, y, method="gram")
    assert_kernel_close(loss_gradient_gram_from_ntk(empirical_ntk(model, x, mode="blocks"), r), expected)
    if out_dim == 1:
        assert_kernel_close(loss_gradient_gram_from_ntk(empirical_ntk(model, x), r[:, 0]), expected)
    else:
        with pytest.raises(ConfigError, match="blocks"):
            loss_gradient_gram_from_ntk(empirical_ntk(model, x), r)


def test_confusion_is_residual_sign_weighted_normalised_ntk():
    model = make_mlp(1, 32, 2, 1, seed=3)
    x = Raw(-1.0, 1.0)(grid(25))
    y = torch.sin(7 * x)
    r = (model(x).detach() - y)[:, 0]
    theta = empirical_ntk(model, x)
    cos = confusion_from_ntk(theta, r)
    d = theta.diagonal().sqrt()
    expected = torch.sign(r[:, None] * r[None, :]) * theta / (d[:, None] * d[None, :])
    assert_kernel_close(cos, expected.clamp(-1, 1))
    pairs = Pairs(np.array([0, 3, 7, 20]), np.array([1, 9, 24, 2]))
    conf = gradient_confusion(model, x, y, pairs)
    np.testing.assert_allclose(cos[pairs.i, pairs.j].numpy(), conf.values, atol=1e-10)


def test_confusion_from_ntk_zero_gradient_is_nan():
    theta = torch.eye(3, dtype=torch.float64) + 0.5
    cos = confusion_from_ntk(theta, torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64))
    assert torch.isnan(cos[1]).all() and torch.isnan(cos[:, 1]).all()
    assert float(cos[0, 2]) == pytest.approx(-0.5 / 1.5)


# --------------------------------------------------------------------------- spectrum


def _spd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    vals = torch.logspace(0, -6, n, dtype=torch.float64)
    q, _ = torch.linalg.qr(a)
    return (q * vals) @ q.T


def test_spectrum_matches_numpy_eigh():
    model = make_mlp(1, 32, 3, 1, seed=5)
    theta = empirical_ntk(model, grid(64))
    spec = ntk_spectrum(theta)
    vals, vecs = np.linalg.eigh(theta.numpy())
    vals, vecs = vals[::-1], vecs[:, ::-1]
    np.testing.assert_allclose(spec.eigvals, vals, atol=1e-10 * vals[0])
    # well-separated leading modes: same vectors up to sign
    overlap = np.abs(np.sum(spec.eigvecs[:, :5] * vecs[:, :5], axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-9)
    recon = (spec.eigvecs * spec.eigvals) @ spec.eigvecs.T
    np.testing.assert_allclose(recon, theta.numpy(), atol=1e-10 * vals[0])
    assert all(spec.eigvecs[np.abs(spec.eigvecs[:, m]).argmax(), m] > 0 for m in range(64))


def test_lanczos_top_k_matches_full_eigh():
    theta = _spd(300, 0)
    full = ntk_spectrum(theta, method="eigh")
    top = ntk_spectrum(theta, k=12)  # auto: Lanczos when k is given
    np.testing.assert_allclose(top.eigvals, full.eigvals[:12], rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(top.eigvecs * full.eigvecs[:, :12], axis=0)), 1.0, atol=1e-8)
    with pytest.raises(ConfigError, match="Lanczos"):
        ntk_spectrum(theta, method="lanczos")


def test_block_spectrum_shapes_and_modes(monkeypatch):
    model = make_mlp(2, 16, 2, 3, seed=2)
    x = torch.rand(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theta = empirical_ntk(model, x, mode="blocks")
    spec = ntk_spectrum(theta)
    assert spec.eigvecs.shape == (16, 3, 48) and spec.eigvals.shape == (48,)
    flat = theta.permute(0, 2, 1, 3).reshape(48, 48).numpy()
    np.testing.assert_allclose((spec.flat_vecs * spec.eigvals) @ spec.flat_vecs.T, flat, atol=1e-10)
    assert spec.mode(0, (4, 4)).shape == (4, 4, 3)
    np.testing.assert_array_equal(spec.mode(2, (4, 4))[1, 2], spec.eigvecs[6, :, 2])
    monkeypatch.setattr(spectrum_mod, "EIGH_MAX", 40)
    with pytest.raises(ConfigError, match="give k"):
        ntk_spectrum(theta)


def test_target_alignment():
    spec = ntk_spectrum(_spd(50, 1))
    y = 3.0 * spec.eigvecs[:, 4] - 4.0 * spec.eigvecs[:, 7]
    curve = alignment_curve(spec, y)
    np.testing.assert_allclose(curve[[0, 3, 4, 6, 7, 49]], [0, 0, 9 / 25, 9 / 25, 1, 1], atol=1e-12)
    assert target_alignment(spec.eigvecs, y, 5) == pytest.approx(9 / 25, abs=1e-12)
    rand = np.random.default_rng(0).standard_normal(50)
    curve = alignment_curve(spec.eigvecs, rand)
    assert np.all(np.diff(curve) >= -1e-15) and curve[-1] == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        target_alignment(spec, rand, 51)


# --------------------------------------------------------------------------- drift


def test_drift():
    model = make_mlp(8, 32, 2, 1, seed=6)
    x = NeRFPE(4)(grid(48))
    theta0 = empirical_ntk(model, x)
    same = ntk_drift(theta0, theta0.clone(), k=5)
    assert same.rel_change == 0.0 and same.subspace_change == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(same.angles, 0.0, atol=1e-6)
    scaled = ntk_drift(2.0 * theta0, theta0, k=5)
    assert scaled.rel_change == pytest.approx(1.0) and scaled.subspace_change == pytest.approx(0, abs=1e-12)
    # swap the leading eigenvector for one outside the top-5 subspace: one angle of 90°
    spec = ntk_spectrum(theta0)
    u, lam = torch.as_tensor(spec.eigvecs), torch.as_tensor(spec.eigvals)
    perm = [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, *range(11, 48)]
    moved = ntk_drift((u[:, perm] * lam) @ u[:, perm].T, theta0, k=5)
    assert moved.subspace_change == pytest.approx(0.2, abs=1e-8)
    assert moved.angles[-1] == pytest.approx(math.pi / 2, abs=1e-6)
    # rotate the leading eigenvector by φ towards u_10: principal angle φ, change sin²φ / k
    phi = math.pi / 6
    rot = u.clone()
    rot[:, 0] = math.cos(phi) * u[:, 0] + math.sin(phi) * u[:, 10]
    rot[:, 10] = -math.sin(phi) * u[:, 0] + math.cos(phi) * u[:, 10]
    tilted = ntk_drift((rot * lam) @ rot.T, theta0, k=5)
    assert tilted.subspace_change == pytest.approx(0.25 / 5, abs=1e-8)
    assert tilted.angles[-1] == pytest.approx(phi, abs=1e-7)
    blocks = empirical_ntk(make_mlp(8, 16, 2, 2), x[:10], mode="blocks")
    assert ntk_drift(blocks, blocks, k=3).rel_change == 0.0


def test_drift_with_a_precomputed_spectrum_and_top_eigenvalues():
    x = NeRFPE(4)(grid(40))
    theta0 = empirical_ntk(make_mlp(8, 32, 2, 1, seed=1), x)
    theta_t = empirical_ntk(make_mlp(8, 32, 2, 1, seed=2), x)
    plain = ntk_drift(theta_t, theta0, k=6)
    shared = ntk_drift(theta_t, theta0, k=6, spectrum_0=ntk_spectrum(theta0))
    assert shared.rel_change == plain.rel_change
    assert shared.subspace_change == pytest.approx(plain.subspace_change, abs=1e-9)
    np.testing.assert_allclose(shared.angles, plain.angles, atol=1e-7)
    assert 0.01 < plain.subspace_change < 1
    vals = np.linalg.eigvalsh(theta_t.numpy())[::-1][:6]
    np.testing.assert_allclose(plain.top_eigvals, vals, rtol=1e-9)
    with pytest.raises(ConfigError, match="spectrum_0"):
        ntk_drift(theta_t, theta0, k=6, spectrum_0=ntk_spectrum(theta0, k=3))


# --------------------------------------------------------------------------- analytic NTK


def test_exact_first_layer_1d_matches_qmc_and_diagonal():
    x = torch.linspace(-1.5, 1.5, 13, dtype=torch.float64)[:, None]
    exact, both = analytic_mod._uniform_exact_1d(x, x)
    qmc, qboth = analytic_mod._uniform_qmc(x, x, 2**16)
    assert float((exact - qmc).abs().max()) < 5e-5 * float(exact.max())
    assert float((both - qboth).abs().max()) < 3e-3
    np.testing.assert_allclose(exact.diagonal().numpy(), ((x[:, 0] ** 2 + 1) / 6).numpy(), rtol=1e-14)
    np.testing.assert_allclose(both.diagonal().numpy(), 0.5, rtol=1e-14)


@pytest.mark.parametrize(("enc", "gauss_gap"), [(Raw(-1.0, 1.0), 0.02), (NeRFPE(4), 0.008)])
def test_first_layer_law_of_the_default_init(enc, gauss_gap):
    """At depth 1 and huge width, Θ/n is the first layer's E_1: the uniform law fits, the Gaussian
    (arc-cosine) formula is off by a few per cent."""
    x = enc(grid(16))
    n = 2**17
    emp = sum(empirical_ntk(make_mlp(x.shape[1], n, 1, 1, seed=s), x) for s in range(3)) / (3 * n)
    uniform = analytic_ntk(x, depth=1, width=n) / n
    gaussian = analytic_ntk(x, depth=1, width=n, first_layer="gaussian") / n
    assert rel_err(emp, uniform) < 0.006
    assert rel_err(emp, gaussian) > gauss_gap


def test_empirical_ntk_approaches_analytic_like_inverse_sqrt_width():
    """Raw [-1, 1] inputs, depth 2, 32 points: the rms (over seeds) relative Frobenius error of
    Θ_n/n against the limit Θ_∞ and against the width-n mean-field kernel falls like ~n^(-1/2)."""
    x = Raw(-1.0, 1.0)(grid(32))
    widths = [64, 256, 1024, 4096]
    limit = analytic_ntk(x, depth=2)
    err_limit, err_finite, mean_err = [], [], 0.0
    for n in widths:
        finite = analytic_ntk(x, depth=2, width=n) / n
        seeds = 8 if n == 4096 else 16
        kernels = []
        for s in range(seeds):
            torch.manual_seed(s)
            kernels.append(empirical_ntk(MLP(1, n, 2, 1), x.float()).double() / n)
        err_limit.append(math.sqrt(np.mean([rel_err(k, limit) ** 2 for k in kernels])))
        err_finite.append(math.sqrt(np.mean([rel_err(k, finite) ** 2 for k in kernels])))
        mean_err = rel_err(sum(kernels) / seeds, finite)
    for errs in (err_limit, err_finite):
        slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
        assert -0.75 < slope < -0.25, (slope, errs)
        assert errs[-1] < 0.08, errs
    assert mean_err < 0.04


def test_mean_field_kernel_tends_to_the_limit():
    x = NeRFPE(4)(grid(12))
    q = 2**12  # Sobol points: the checks below are exact identities, not accuracy
    limit = analytic_ntk(x, depth=3, n_samples=q)
    gaps = [rel_err(analytic_ntk(x, depth=3, width=n, n_samples=q) / n, limit) for n in (10**3, 10**6)]
    assert gaps[1] < 2e-3 * gaps[0] and gaps[1] < 1e-3  # O(1/n)
    np.testing.assert_allclose(
        analytic_ntk(x, x[:5], depth=3, n_samples=q).numpy(), limit[:, :5].numpy(), rtol=1e-12
    )
    # on the diagonal E = Σ/2 and Ė = 1/2, so Σ_{l+1}(x,x) = Σ_l(x,x)/6 and every layer adds the same
    sigma1 = ((x * x).sum(1) + 1) / (3 * x.shape[1])
    np.testing.assert_allclose(limit.diagonal().numpy(), (3 * sigma1 / 2 / 36).numpy(), rtol=1e-13)
    nngp_diag = analytic_nngp(x, depth=3, n_samples=q).diagonal()
    np.testing.assert_allclose(nngp_diag.numpy(), (sigma1 / 216).numpy(), rtol=1e-13)
    for kernel in (
        limit,
        analytic_ntk(x, depth=3, width=100, n_samples=q),
        analytic_nngp(x, depth=3, n_samples=q),
    ):
        assert float((kernel - kernel.T).abs().max()) <= 1e-14 * float(kernel.abs().max())
        assert float(torch.linalg.eigvalsh(kernel).min()) >= -1e-12 * float(kernel.abs().max())


@pytest.mark.parametrize("enc", [Raw(-1.0, 1.0), NeRFPE(4)])
def test_seed_averaged_ntk_matches_mean_field_kernel_at_depth_3(enc):
    x = enc(grid(16))
    n = 1024
    mean = sum(empirical_ntk(make_mlp(x.shape[1], n, 3, 1, seed=s).float(), x.float()) for s in range(12))
    finite = analytic_ntk(x, depth=3, width=n)
    assert rel_err(mean.double() / 12, finite) < 0.04


def test_nngp_matches_output_covariance():
    x = Raw(-1.0, 1.0)(grid(6))
    outs = []
    for s in range(600):
        torch.manual_seed(s)
        outs.append(MLP(1, 64, 3, 1).double()(x).detach()[:, 0])
    cov = torch.cov(torch.stack(outs).T)
    expected = analytic_nngp(x, depth=3, width=64)
    assert rel_err(cov, expected) < 0.15


def test_analytic_errors():
    x = grid(4)
    with pytest.raises(ConfigError, match="depth"):
        analytic_ntk(x, depth=0)
    with pytest.raises(ConfigError, match="first_layer"):
        analytic_ntk(x, depth=1, first_layer="normal")
    with pytest.raises(ConfigError, match="power of two"):
        analytic_ntk(NeRFPE(2)(x), depth=1, n_samples=1000)


# --------------------------------------------------------------------------- linearised dynamics


def train_linearised(model: MLP, x: torch.Tensor, y: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """Full-batch SGD with torch's own ``mse_loss`` on ``f_lin(θ) = f(θ0) + J(θ0)(θ − θ0)`` (jvp);
    returns the residuals ``f_lin − y`` at steps ``0..steps``."""
    p0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    f0 = model(x).detach()

    def f_lin(p: dict[str, torch.Tensor]) -> torch.Tensor:
        tangent = {k: p[k] - p0[k] for k in p}
        return f0 + jvp(lambda q: functional_call(model, q, (x,)), (p0,), (tangent,))[1]

    p = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
    opt = torch.optim.SGD(p.values(), lr=eta)
    out = [f0 - y]
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(f_lin(p), y).backward()
        opt.step()
        with torch.no_grad():
            out.append(f_lin(p) - y)
    return torch.stack(out)


@pytest.mark.parametrize(("out_dim", "eta"), [(1, 0.3), (2, 0.5)])
def test_linearised_prediction_equals_training_the_linearised_model(out_dim, eta):
    model = make_mlp(1, 16, 2, out_dim, seed=out_dim)
    x = Raw(-1.0, 1.0)(grid(16))
    y = torch.cat([torch.sin(3 * (c + 1) * x) for c in range(out_dim)], dim=1)
    actual = train_linearised(model, x, y, eta, 40)
    theta = empirical_ntk(model, x, mode="blocks")
    r0 = model(x).detach() - y
    pred = linearised_residuals(theta, r0, eta, 40)
    assert pred.residuals.shape == (41, 16, out_dim)
    assert float(np.abs(pred.factors).max()) <= 1.0 + 1e-12 and float(actual[-1].abs().max()) > 1e-3
    np.testing.assert_allclose(pred.residuals, actual.numpy(), atol=1e-10)
    vecs = pred.modes @ ntk_spectrum(theta).flat_vecs.T
    np.testing.assert_allclose(vecs, pred.residuals.reshape(41, -1), atol=1e-12)
    if out_dim == 1:
        scalar = linearised_residuals(theta[:, :, 0, 0], r0[:, 0], eta, [0, 7, 40])
        np.testing.assert_allclose(scalar.residuals, actual.numpy()[[0, 7, 40], :, 0], atol=1e-10)


def test_predict_frequency_residuals_matches_the_linearised_run():
    model = make_mlp(1, 24, 2, 1, seed=9)
    x = grid(32)
    y = torch.sin(2 * math.pi * 2 * x) + 0.5 * torch.sin(2 * math.pi * 9 * x)
    theta = empirical_ntk(model, x)
    eta = 0.6 * 32 / float(torch.linalg.eigvalsh(theta)[-1])  # stable: top factor 1 − 1.2 = −0.2
    actual = train_linearised(model, x, y, eta, 25)
    f0 = model(x).detach()
    out = predict_frequency_residuals(theta, f0, y, eta, [0, 10, 25], (2, 9))
    assert out["rel_error"].shape == (3, 2)
    for row, step in enumerate((0, 10, 25)):
        ref = frequency_convergence((actual[step] + y).numpy(), y.numpy(), (2, 9))
        np.testing.assert_allclose(out["rel_error"][row], ref.rel_error, atol=1e-9)
        np.testing.assert_allclose(out["learned_fraction"][row], ref.learned_fraction, atol=1e-9)
    assert out["rel_error"][-1, 0] < out["rel_error"][0, 0]


@pytest.mark.parametrize("out_dim", [1, 2])
def test_stable_lr_is_the_fraction_of_the_linearised_loss_hessian_limit(out_dim):
    """Reference: the Hessian of ``mse_loss`` on the linearised model is ``(2/(N C)) JᵀJ`` with J from
    autograd; gradient descent on a quadratic is stable iff ``η h_max < 2``."""
    model = make_mlp(1, 12, 2, out_dim, seed=7)
    x = Raw(-1.0, 1.0)(grid(20))
    jac = ref_jacobian(model, x).reshape(20 * out_dim, -1)
    hessian = 2.0 / (20 * out_dim) * jac.T @ jac
    h_max = float(torch.linalg.eigvalsh(hessian)[-1])
    theta = empirical_ntk(model, x, mode="blocks")
    for source in (theta, ntk_spectrum(theta)):
        assert stable_lr(source, 0.4) * h_max == pytest.approx(0.8, rel=1e-9)
    if out_dim == 1:
        assert stable_lr(theta[:, :, 0, 0], 0.4) == pytest.approx(stable_lr(theta, 0.4), rel=1e-9)
    r0 = model(x).detach() - torch.sin(5 * x).repeat(1, out_dim)
    inside = linearised_residuals(theta, r0, stable_lr(theta, 0.99), 3)
    outside = linearised_residuals(theta, r0, 1.02 * stable_lr(theta, 0.99) / 0.99, 3)
    assert abs(inside.factors[0]) < 1 < abs(outside.factors[0])  # the top mode (null modes stay at 1)
    assert np.abs(inside.factors).max() <= 1 + 1e-12
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="fraction"):
            stable_lr(theta, bad)


def test_adam_equivalent_lr_matches_adams_first_step():
    """Reference: one real ``torch.optim.Adam`` step; its first-order loss change ``g·Δθ`` equals that
    of gradient descent at the equivalent rate, ``−η_eq ‖g‖²``."""
    model = make_mlp(4, 16, 2, 1, seed=3)
    x = NeRFPE(2)(grid(24))
    y = torch.sin(2 * math.pi * 3 * grid(24))
    lr = 1e-3
    eta = adam_equivalent_lr(model, x, y, lr)
    before = [p.detach().clone() for p in model.parameters()]
    nn.functional.mse_loss(model(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    opt.step()
    step = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before)])
    assert float(g @ step) == pytest.approx(-eta * float(g @ g), rel=1e-9)
    # Adam moves every coordinate by about lr: η_eq ≈ lr ‖g‖₁/‖g‖₂², far from lr itself
    assert eta == pytest.approx(lr * float(g.abs().sum() / (g @ g)), rel=1e-3)
    with pytest.raises(ConfigError, match="learning rate"):
        adam_equivalent_lr(model, x, y, 0.0)


def test_linearised_errors():
    theta = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ConfigError, match="learning rate"):
        linearised_residuals(theta, torch.zeros(4), 0.0, 3)
    with pytest.raises(ConfigError, match="steps"):
        linearised_residuals(theta, torch.zeros(4), 0.1, [-1])
    with pytest.raises(ConfigError, match="full spectrum"):
        linearised_residuals(ntk_spectrum(_spd(6, 0), k=2), torch.zeros(6), 0.1, 3)
    assert isinstance(ntk_spectrum(theta), NTKSpectrum)
