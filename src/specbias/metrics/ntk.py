"""The neural tangent kernel: empirical, analytic (infinite width), spectrum, drift, linearised dynamics.

**Empirical NTK** (Jacot et al., NeurIPS 2018, "Neural Tangent Kernel: Convergence and
Generalization in Neural Networks"), over every weight and bias ``θ``:

    Θ_cd(x, x′) = ⟨∇_θ f_c(x), ∇_θ f_d(x′)⟩,

returned as blocks ``(N, M, C, C)`` or as the trace ``Σ_c Θ_cc`` ``(N, M)``. It uses the
δ/activation identity of :mod:`specbias.metrics.gradients`: with the output cotangent replaced by
the unit vector ``e_c``, ``δ^c_l = ∂f_c/∂z_l`` and ``∂f_c/∂W_l = δ^c_l a_{l-1}ᵀ``, ``∂f_c/∂b_l = δ^c_l``, so

    Θ_cd(x_i, x′_j) = Σ_l (δ^c_{l,i}·δ′^d_{l,j}) (a_{l-1,i}·a′_{l-1,j} + 1)

-- one batched backward pass per output channel and a few matrix products per layer
(:func:`specbias.metrics.gram.kernel`), no per-example gradients, for any model built from
``nn.Linear`` layers, elementwise activations and HashGrid tables (sparse form,
:mod:`specbias.metrics.gram`). Other models use the ``torch.func`` Jacobian contraction of the
PyTorch NTK tutorial (:func:`~specbias.metrics.gradients.func_jacobian`, ``vmap(jacrev)``, then
``J Jᵀ``; memory ``N·C·#params``). The normalised trace of one block,
``tr Θ(x_i, x_j)/√(tr Θ_ii tr Θ_jj)``, is the output-Jacobian cosine of
:func:`~specbias.metrics.gradients.output_jacobian_pairs`.

**Gradient confusion is a residual-weighted NTK** (anchors §2.8). For the per-example MSE
``ℓ_i = mean_c (f_ic − y_ic)²`` with residual ``r_i = f_i − y_i``,
``g_i = ∇_θ ℓ_i = (2/C) Σ_c r_ic ∇_θ f_c(x_i)``, so

    ⟨g_i, g_j⟩ = (2/C)² r_iᵀ Θ(x_i, x_j) r_j,
    cos(g_i, g_j) = sign(r_i r_j) Θ_ij / √(Θ_ii Θ_jj)        (C = 1),

so one kernel gives the NTK, its spectrum and the confusion matrix of any pairs
(:func:`loss_gradient_gram_from_ntk`, :func:`confusion_from_ntk`).

**Spectrum.** ``Θ = U Λ Uᵀ`` (blocks flattened to ``(N·C) × (N·C)``, row ``i·C + c``): full
``torch.linalg.eigh`` up to ``N·C = 8192``; top-``k`` Lanczos (``scipy.sparse.linalg.eigsh`` on a
``LinearOperator``) beyond, or whenever ``k`` is given. Eigenvalues descend; each eigenvector's
largest-magnitude entry is positive. **Target alignment** (Yüce et al., CVPR 2022; Kopitkov &
Indelman 2020): ``A_k(y) = Σ_{m<k} (u_mᵀ y)² / ‖y‖²``, the fraction of the target's energy in the
top-``k`` eigenvectors. **Drift** (Fort et al., NeurIPS 2020): ``‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F`` and the
change of the top-``k`` eigenspace ``1 − ‖U_tᵀ U_0‖_F² / k`` (0 = same subspace, 1 = orthogonal),
with the principal angles ``arccos σ_i(U_tᵀ U_0)`` and the top-``k`` eigenvalues of ``Θ_t``.

**Linearised dynamics** (Lee et al., NeurIPS 2019, "Wide Neural Networks of Any Depth Evolve as
Linear Models Under Gradient Descent"). The trainer's loss is ``L = (1/(N C)) Σ_ic (f_ic − y_ic)²``
(``nn.functional.mse_loss``); full-batch gradient descent ``θ ← θ − η ∇L`` on the linearised model
``f_lin(θ) = f(θ_0) + J_0 (θ − θ_0)`` moves the outputs by

    f_{t+1} = f_t − η (2/(N C)) Θ_0 (f_t − y),       r_t = U diag((1 − 2ηλ_k/(N C))^t) Uᵀ r_0,

mode ``k`` of the residual decaying by ``1 − 2ηλ_k/(N C)`` per step (Tancik et al. 2020 plot the
same prediction with ``neural_tangents.predict``). :func:`predict_frequency_residuals` turns the
predicted ``f_t = y + r_t`` into :func:`~specbias.metrics.spectrum.frequency_convergence` curves.
The linear dynamics are stable iff every ``|1 − 2ηλ_k/(N C)| < 1``, i.e. ``η < N C/λ_max``;
:func:`stable_lr` gives a fraction of that limit. :func:`adam_equivalent_lr` is the gradient-descent
rate whose first step lowers the loss as much, to first order, as Adam's first step,
``η_eq = lr Σ g²/(|g| + ε) / Σ g²`` -- a way to draw a kernel prediction next to an Adam run, not a
theory of Adam.

**Analytic infinite-width NTK** of the toolkit's ReLU MLP (arc-cosine recursion: Cho & Saul,
NeurIPS 2009; Jacot et al. 2018; Arora et al., NeurIPS 2019, "On Exact Computation with an
Infinitely Wide Neural Net"), for what the toolkit actually trains: **standard parameterisation**
``z_l = W_l a_{l-1} + b_l`` and **PyTorch's default init**, ``W_l`` and ``b_l`` entries
``U(−1/√n_{l-1}, 1/√n_{l-1})``, i.e. weight variance ``σ_w²/n_{l-1}`` with ``σ_w² = 1/3`` and bias
variance ``1/(3 n_{l-1})``. With input features ``x ∈ R^{d₀}`` (already encoded), ``depth`` hidden
layers of width ``n``, ``E[φ(u)φ(v)]`` and ``Ė = E[φ′(u)φ′(v)]`` over the pre-activation pair:

* layer 1: ``Σ_1(x, x′) = (x·x′ + 1)/(3 d₀)``; ``E_1 = E[relu(z_1(x)) relu(z_1(x′))]``;
* layer ``l ≥ 2``: ``Σ_l = E_{l-1}/3`` (the bias variance ``1/(3n)`` vanishes), and, the
  pre-activations being Gaussian by the CLT over ``n → ∞`` inputs,
  ``E_l = √(Σ_l(x,x) Σ_l(x′,x′)) (sin ϑ + (π − ϑ) cos ϑ)/(2π)``, ``Ė_l = (π − ϑ)/(2π)``,
  ``cos ϑ = Σ_l(x,x′)/√(Σ_l(x,x) Σ_l(x′,x′))``;
* the layer-``l`` weights and biases contribute ``(δ_l·δ′_l)(a_{l-1}·a′_{l-1} + 1)`` with
  ``a_0·a′_0 = x·x′``, ``a_{l-1}·a′_{l-1} → n E_{l-1}`` (``l ≥ 2``) and ``δ_l·δ′_l → P_l``,
  ``P_{depth+1} = 1``, ``P_l = Ė_l P_{l+1}/3``. So in the standard parameterisation **the NTK
  grows linearly with the width**: ``Θ_n = n Θ_∞ + O(1) + O(√n)`` fluctuations, the ``O(1)`` being
  the first layer's weights and every bias.

Two normalisations, both from :func:`analytic_ntk`:

* ``width=None``: the limit ``Θ_∞(x, x′) = lim_{n→∞} Θ_n(x, x′)/n = Σ_{l=2}^{depth+1} P_l E_{l-1}``.
  Compare ``empirical_ntk(model, x)/model.width``; for ``C`` outputs the limit is ``Θ_∞ ⊗ I_C``
  (the trace is ``C Θ_∞``).
* ``width=n``: the mean-field kernel of a width-``n`` network on the empirical scale,
  ``Θ̄_n = Σ_{l=1}^{depth+1} P_l (A_{l-1} + 1)``, ``A_0 = x·x′``, ``A_{l-1} = n E_{l-1}``, with the
  hidden bias variance ``1/(3n)`` kept in ``Σ_l``; ``Θ̄_n/n = Θ_∞ + O(1/n)``. With ``σ_w² = 1/3``
  each layer shrinks the kernel (``Σ_{l+1}(x,x) = Σ_l(x,x)/6``), so the ``O(1)`` terms are large at
  practical widths -- the output bias alone adds 1 to every entry, about ``n Θ_∞`` at depth 3 and
  ``n ≈ 70`` on raw inputs. Use ``width=n`` to predict a real network's dynamics. Finite-width
  corrections to Gaussianity (also ``O(1)``) are not included.

Forward, ``Q_1 = c (x·x′ + 1)``, ``Q_l = Ė_{l-1} Q_{l-1}/3 + s E_{l-1} + c`` for ``l = 2..depth+1``
(``s = n, c = 1`` for ``Θ̄_n``; ``s = 1, c = 0`` for ``Θ_∞``). :func:`analytic_nngp` is the output
covariance at initialisation, ``E_depth/3 + 1/(3n)`` (limit ``E_depth/3``).

Measured (raw ``[-1, 1]`` 1D, 32 points, depth 2; rms over 16 seeds, 8 at ``n ≥ 2048``) relative
Frobenius error of ``Θ_n/n`` for ``n = 64, 128, …, 4096``: against ``Θ_∞`` 0.46, 0.27, 0.16, 0.12,
0.091, 0.069, 0.048 (log-log slope −0.52); against ``Θ̄_n/n`` 0.20, 0.17, 0.13, 0.10, 0.084,
0.069, 0.049 (slope −0.34: fluctuations are below ``n^{-1/2}`` scaling at small widths); the
seed-averaged kernel is within 1–2% of ``Θ̄_n`` at every width.

**The first layer is not Gaussian.** ``z_1 = wᵀx + b`` with ``d₀ + 1`` uniform terms; the textbook
arc-cosine kernel assumes Gaussian weights, which the CLT only gives for large ``d₀``. Measured
relative Frobenius gap of ``E_1`` (Gaussian vs uniform law, 16–32 points): raw ``[-1,1]`` 1D 3.1%,
raw ``[-1,1]²`` 3.6%, PE with 8 / 14 / 22 features 1.2% / 0.8% / 0.4%, RFF with 32 / 128 features
0.3% / ≈0.1% -- roughly ``0.1/d₀``. ``first_layer="uniform"`` computes ``E_1`` under the actual
law: exactly for ``d₀ = 1`` (``g = relu(ξ·X) relu(ξ·X′)`` is 2-homogeneous in ``ξ = (w, b)``, so by
the divergence theorem ``∫_{[−s,s]²} g = (s/4) ∮ g`` along the square's four edges, each a
quadratic over an interval) and by unscrambled, midpoint-shifted Sobol quasi-Monte Carlo with
``n_samples`` points for ``d₀ ≥ 2`` (relative error at ``2^16`` points, measured against ``2^21``:
about 1e-5 for ``d₀ = 2``, 3e-4–5e-4 for PE with 8–14 features, 2e-3 for RFF with 32–128
features -- no better than the Gaussian gap there). ``"gaussian"`` is the arc-cosine formula
throughout; ``"auto"`` (default) takes the uniform law up to ``d₀ = 32`` and the Gaussian formula
above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.metrics.gradients import func_jacobian
from specbias.metrics.gram import gram_terms, kernel, unit_cotangents
from specbias.metrics.spectrum import frequency_convergence

EIGH_MAX = 8192
"""Largest kernel side (``N·C``) that :func:`ntk_spectrum` decomposes in full by default."""

AUTO_UNIFORM_MAX_DIM = 32
"""``first_layer="auto"`` integrates the uniform first-layer law up to this many input features."""

SIGMA_W2 = 1.0 / 3.0
"""Weight variance × fan-in of PyTorch's default ``nn.Linear`` init, ``U(−1/√fan_in, 1/√fan_in)``."""

Array = torch.Tensor | np.ndarray


# --------------------------------------------------------------------------- empirical NTK


def _check_mode(mode: str) -> None:
    if mode not in ("trace", "blocks"):
        raise ConfigError(f"NTK mode must be 'trace' or 'blocks', got {mode!r}")


def _check_method(method: str) -> None:
    if method not in ("auto", "identity", "func"):
        raise ConfigError(f"NTK method must be 'auto', 'identity' or 'func', got {method!r}")


def _func_ntk(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None, mode: str) -> torch.Tensor:
    jac = func_jacobian(model, x)
    jac2 = jac if x2 is None else func_jacobian(model, x2)
    if mode == "trace":
        return jac.reshape(jac.shape[0], -1) @ jac2.reshape(jac2.shape[0], -1).T
    return torch.einsum("icp,jdp->ijcd", jac, jac2)


def _symmetrise(theta: torch.Tensor) -> torch.Tensor:
    return 0.5 * (theta + (theta.T if theta.ndim == 2 else theta.permute(1, 0, 3, 2)))


def empirical_ntk(
    model: nn.Module,
    x: torch.Tensor,
    x2: torch.Tensor | None = None,
    mode: str = "trace",
    method: str = "auto",
    chunk: int = 4096,
) -> torch.Tensor:
    """The empirical NTK ``Θ(x, x2)`` over every parameter of ``model``, in the model's dtype.

    ``mode="trace"``: ``Σ_c Θ_cc``, shape ``(N, M)``; ``mode="blocks"``: ``(N, M, C, C)``.
    ``x2=None`` gives the (exactly symmetrised) kernel of ``x`` with itself. ``method``: ``"identity"``
    (δ/activation identity, any model of ``nn.Linear`` layers, elementwise activations and HashGrid
    tables, :mod:`specbias.metrics.gram`; a one-line ``ConfigError`` on any other), ``"func"``
    (``torch.func`` Jacobian contraction) or ``"auto"`` (the identity where it applies). ``chunk``
    bounds the rows computed at once (identity method).
    """
    _check_mode(mode)
    _check_method(method)
    if chunk < 1:
        raise ConfigError(f"NTK row chunk must be >= 1, got {chunk}")
    if method != "func":
        both = x if x2 is None else torch.cat((x, x2))
        terms = gram_terms(model, both, unit_cotangents, strict=method == "identity")
        if terms is not None:
            return kernel(terms, None if x2 is None else x.shape[0], blocks=mode == "blocks", chunk=chunk)
    theta = _func_ntk(model, x, x2, mode).detach()
    return _symmetrise(theta) if x2 is None else theta


# --------------------------------------------------------------------------- confusion relation


def _as_tensor(a: Array, like: torch.Tensor | None = None) -> torch.Tensor:
    t = torch.as_tensor(a)
    if like is not None:
        t = t.to(dtype=like.dtype, device=like.device)
    return t


def _residual_matrix(residuals: Array, theta: torch.Tensor) -> torch.Tensor:
    r = _as_tensor(residuals, theta)
    r = r[:, None] if r.ndim == 1 else r
    c = r.shape[1]
    if theta.ndim == 2 and c != 1:
        raise ConfigError(
            f"a traced (N, N) kernel only serves a single output; got residuals with {c} channels "
            "-- pass the blocks (mode='blocks')"
        )
    if theta.ndim == 4 and theta.shape[2:] != (c, c):
        raise ConfigError(f"kernel blocks {tuple(theta.shape[2:])} do not match {c} residual channels")
    if theta.shape[0] != r.shape[0] or theta.shape[1] != r.shape[0]:
        raise ConfigError(f"kernel shape {tuple(theta.shape)} does not match {r.shape[0]} residuals")
    return r


def loss_gradient_gram_from_ntk(theta: Array, residuals: Array) -> torch.Tensor:
    """``⟨g_i, g_j⟩ = (2/C)² r_iᵀ Θ(x_i, x_j) r_j`` for the per-example MSE averaged over ``C`` channels.

    ``theta``: blocks ``(N, N, C, C)``, or ``(N, N)`` for a single output; ``residuals``
    ``r = f − y``, shape ``(N, C)`` or ``(N,)``. Equals
    :func:`specbias.metrics.gradients.loss_gradient_gram`.
    """
    theta = _as_tensor(theta)
    r = _residual_matrix(residuals, theta)
    scale = (2.0 / r.shape[1]) ** 2
    if theta.ndim == 2:
        return scale * theta * (r[:, 0, None] * r[None, :, 0])
    return scale * torch.einsum("ic,ijcd,jd->ij", r, theta, r)


def confusion_from_ntk(theta: Array, residuals: Array) -> torch.Tensor:
    """Gradient-confusion cosines ``cos(g_i, g_j)`` from the NTK and residuals, ``(N, N)``.

    For one output this is ``sign(r_i r_j) Θ_ij / √(Θ_ii Θ_jj)``: the residual-sign-weighted
    normalised NTK. Pairs involving an exactly-zero gradient are NaN.
    """
    gram = loss_gradient_gram_from_ntk(theta, residuals)
    norms = gram.diagonal().clamp(min=0).sqrt()
    denom = norms[:, None] * norms[None, :]
    cos = (gram / denom).clamp(-1.0, 1.0)
    return torch.where(denom > 0, cos, torch.full_like(cos, float("nan")))


# --------------------------------------------------------------------------- spectrum


def _flatten_kernel(theta: Array) -> tuple[torch.Tensor, int]:
    """``(N, N)`` → itself with ``C = 1``; ``(N, N, C, C)`` → ``(N·C, N·C)``, row ``i·C + c``."""
    t = _as_tensor(theta)
    if t.ndim == 2 and t.shape[0] == t.shape[1]:
        return t, 1
    if t.ndim == 4 and t.shape[0] == t.shape[1] and t.shape[2] == t.shape[3]:
        n, _, c, _ = t.shape
        return t.permute(0, 2, 1, 3).reshape(n * c, n * c), c
    raise ConfigError(f"kernel must be (N, N) or (N, N, C, C), got shape {tuple(t.shape)}")


def _fix_signs(vecs: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry is positive (deterministic output)."""
    idx = np.abs(vecs).argmax(axis=0)
    signs = np.sign(vecs[idx, np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vecs * signs


@dataclass(frozen=True)
class NTKSpectrum:
    """Eigenvalues (descending, ``(K,)``) and eigenvectors of a kernel.

    ``eigvecs`` is ``(N, K)`` for an ``(N, N)`` kernel and ``(N, C, K)`` for blocks: column
    ``eigvecs[..., m]`` is mode ``m`` as a signal over the points (and channels).
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray

    @property
    def flat_vecs(self) -> np.ndarray:
        """Eigenvectors as ``(N·C, K)`` columns."""
        return self.eigvecs.reshape(-1, self.eigvecs.shape[-1])

    def mode(self, m: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Eigenvector ``m`` as a signal, reshaped to ``shape`` (e.g. ``(H, W)``) plus a channel axis
        for blocks -- ready to plot as a 1D signal or an image (row-major pixels)."""
        vec = self.eigvecs[..., m]
        if shape is None:
            return vec
        return vec.reshape(*shape, *vec.shape[1:])


def _eigh_top(mat: torch.Tensor, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = torch.linalg.eigh(mat.to(torch.float64))
    vals, vecs = vals.flip(0), vecs.flip(1)
    if k is not None:
        vals, vecs = vals[:k], vecs[:, :k]
    return vals.cpu().numpy(), vecs.cpu().numpy()


def _lanczos_top(mat: torch.Tensor, k: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = mat.shape[0]

    def matmat(v: np.ndarray) -> np.ndarray:
        out = mat @ torch.as_tensor(v, dtype=mat.dtype, device=mat.device)
        return out.cpu().double().numpy()

    op = LinearOperator((n, n), matvec=matmat, matmat=matmat, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    vals, vecs = eigsh(op, k=k, which="LA", v0=v0, tol=tol)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def ntk_spectrum(theta: Array, k: int | None = None, method: str = "auto", tol: float = 0.0) -> NTKSpectrum:
    """Eigen-decomposition of a kernel ``(N, N)`` or blocks ``(N, N, C, C)``, largest first.

    ``method="eigh"``: full ``torch.linalg.eigh`` in float64 (then the top ``k`` if given);
    ``"lanczos"``: the top ``k`` by ``scipy.sparse.linalg.eigsh`` (``which="LA"``, fixed start
    vector, tolerance ``tol``; 0 = machine precision); ``"auto"``: eigh when ``k`` is None and
    ``N·C ≤ 8192``, Lanczos otherwise (eigh when ``k ≥ N·C``).
    """
    mat, c = _flatten_kernel(theta)
    n = mat.shape[0]
    if k is not None and not (1 <= k <= n):
        raise ConfigError(f"number of eigenpairs k must be in 1..{n}, got {k}")
    if method not in ("auto", "eigh", "lanczos"):
        raise ConfigError(f"spectrum method must be 'auto', 'eigh' or 'lanczos', got {method!r}")
    if method == "auto":
        if k is None and n > EIGH_MAX:
            raise ConfigError(f"a {n}×{n} kernel is too large for a full eigh; give k (top-k Lanczos)")
        method = "eigh" if k is None or k >= n else "lanczos"
    if method == "lanczos" and (k is None or k >= n):
        raise ConfigError(f"Lanczos needs 1 <= k < N·C = {n}, got k = {k}")
    vals, vecs = _eigh_top(mat, k) if method == "eigh" else _lanczos_top(mat, k, tol)
    vecs = _fix_signs(vecs)
    shape = (n // c, c, vecs.shape[1]) if c > 1 else vecs.shape
    return NTKSpectrum(eigvals=vals, eigvecs=vecs.reshape(shape))


def _vec_columns(eigvecs: np.ndarray | NTKSpectrum) -> np.ndarray:
    if isinstance(eigvecs, NTKSpectrum):
        return eigvecs.flat_vecs
    vecs = np.asarray(eigvecs, dtype=np.float64)
    return vecs.reshape(-1, vecs.shape[-1])


def alignment_curve(eigvecs: np.ndarray | NTKSpectrum, y: Array) -> np.ndarray:
    """``A_k(y)`` for ``k = 1..K``: cumulative fraction of ``‖y‖²`` in the leading eigenvectors.

    ``eigvecs``: ``(N, K)``, ``(N, C, K)`` or an :class:`NTKSpectrum`; ``y``: ``(N,)`` or
    ``(N, C)`` (the raw target; centre it first to leave out its mean).
    """
    vecs = _vec_columns(eigvecs)
    target = np.asarray(torch.as_tensor(y).detach().cpu().double().numpy()).reshape(-1)
    if target.shape[0] != vecs.shape[0]:
        raise ConfigError(f"target has {target.shape[0]} entries, eigenvectors have {vecs.shape[0]}")
    energy = float(target @ target)
    if energy == 0:
        raise ConfigError("target alignment of an all-zero target is undefined")
    return np.cumsum((vecs.T @ target) ** 2) / energy


def target_alignment(eigvecs: np.ndarray | NTKSpectrum, y: Array, k: int) -> float:
    """``A_k(y) = Σ_{m<k} (u_mᵀ y)² / ‖y‖²``: the target's energy fraction in the top ``k`` modes."""
    curve = alignment_curve(eigvecs, y)
    if not (1 <= k <= curve.shape[0]):
        raise ConfigError(f"alignment k must be in 1..{curve.shape[0]}, got {k}")
    return float(curve[k - 1])


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class NTKDrift:
    """Kernel change from ``Θ_0`` to ``Θ_t``.

    ``rel_change = ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F``; ``subspace_change = 1 − ‖U_tᵀ U_0‖_F² / k`` for the
    top-``k`` eigenvectors (0 = same subspace, 1 = orthogonal); ``angles``: the ``k`` principal
    angles between the two subspaces in radians, ascending; ``top_eigvals``: the ``k`` largest
    eigenvalues of ``Θ_t``, descending (their growth is the kernel's "sharpening").
    """

    rel_change: float
    subspace_change: float
    angles: np.ndarray
    top_eigvals: np.ndarray


def ntk_drift(theta_t: Array, theta_0: Array, k: int = 10, spectrum_0: NTKSpectrum | None = None) -> NTKDrift:
    """Relative Frobenius change of the kernel and the change of its top-``k`` eigenspace.

    ``spectrum_0``: ``Θ_0``'s spectrum (at least ``k`` leading pairs, e.g. the full one a prediction
    already needed) so that a run's many checkpoints decompose ``Θ_0`` once.
    """
    mat_t, _ = _flatten_kernel(theta_t)
    mat_0, _ = _flatten_kernel(theta_0)
    if mat_t.shape != mat_0.shape:
        raise ConfigError(f"kernel shapes differ: {tuple(mat_t.shape)} vs {tuple(mat_0.shape)}")
    mat_t, mat_0 = mat_t.double(), mat_0.to(dtype=torch.float64, device=mat_t.device)
    rel = float(torch.linalg.matrix_norm(mat_t - mat_0) / torch.linalg.matrix_norm(mat_0))
    top_t = ntk_spectrum(mat_t, k=k)
    spec_0 = ntk_spectrum(mat_0, k=k) if spectrum_0 is None else spectrum_0
    u_0 = spec_0.flat_vecs[:, :k]
    if u_0.shape != (mat_0.shape[0], k):
        raise ConfigError(
            f"spectrum_0 must hold at least k = {k} eigenvectors of length {mat_0.shape[0]}, "
            f"got {spec_0.flat_vecs.shape}"
        )
    cosines = np.clip(np.linalg.svd(top_t.flat_vecs.T @ u_0, compute_uv=False), 0.0, 1.0)
    return NTKDrift(
        rel_change=rel,
        subspace_change=float(max(0.0, 1.0 - np.sum(cosines**2) / k)),
        angles=np.sort(np.arccos(cosines)),
        top_eigvals=top_t.eigvals,
    )


# --------------------------------------------------------------------------- linearised dynamics


@dataclass(frozen=True)
class LinearisedPrediction:
    """Predicted residuals of full-batch gradient descent on the linearised model.

    ``residuals[t]`` has the shape of ``r_0``; ``modes[t, k] = (u_kᵀ r_t)``, the residual in the
    eigenbasis (``eigvals`` descending); ``factors = 1 − 2ηλ_k/(N C)``, the per-step decay.
    """

    steps: np.ndarray
    residuals: np.ndarray
    eigvals: np.ndarray
    modes: np.ndarray
    factors: np.ndarray


def _steps_array(steps: int | Sequence[int]) -> np.ndarray:
    out = np.arange(steps + 1) if isinstance(steps, int | np.integer) else np.asarray(steps)
    if out.ndim != 1 or out.size == 0 or (out < 0).any() or not np.issubdtype(out.dtype, np.integer):
        raise ConfigError(f"steps must be an int >= 0 or a list of step numbers >= 0, got {steps}")
    return out.astype(np.int64)


def linearised_residuals(
    theta0: Array | NTKSpectrum, r0: Array, eta: float, steps: int | Sequence[int]
) -> LinearisedPrediction:
    """Residuals ``r_t = U diag((1 − 2ηλ/(N C))^t) Uᵀ r_0`` of gradient descent on the linearised model.

    ``theta0``: the NTK at the start, blocks ``(N, N, C, C)`` or ``(N, N)`` (single output), or its
    full :class:`NTKSpectrum`; ``r0 = f(θ_0) − y``, ``(N,)`` or ``(N, C)``; ``eta``: the learning rate
    of ``θ ← θ − η ∇ mse_loss``; ``steps``: an int ``T`` (steps ``0..T``) or a list of step numbers.
    """
    if not (math.isfinite(eta) and eta > 0):
        raise ConfigError(f"learning rate must be > 0, got {eta}")
    t = _steps_array(steps)
    r = np.asarray(torch.as_tensor(r0).detach().cpu().double().numpy())
    spec = theta0 if isinstance(theta0, NTKSpectrum) else ntk_spectrum(theta0)
    vecs = spec.flat_vecs
    if vecs.shape[0] != r.size or vecs.shape[1] != vecs.shape[0]:
        raise ConfigError(
            f"need the full spectrum of an (N·C)² kernel matching {r.size} residual entries, got "
            f"eigenvectors of shape {vecs.shape}"
        )
    factors = 1.0 - 2.0 * eta * spec.eigvals / r.size
    coeffs0 = vecs.T @ r.reshape(-1)
    modes = factors[None, :] ** t[:, None] * coeffs0[None, :]
    residuals = (modes @ vecs.T).reshape(t.size, *r.shape)
    return LinearisedPrediction(t, residuals, spec.eigvals, modes, factors)


def predict_frequency_residuals(
    theta0: Array | NTKSpectrum,
    f0: Array,
    y: Array,
    eta: float,
    steps: int | Sequence[int],
    freqs: Sequence[int] | np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-frequency convergence of the linearised prediction ``f_t = y + r_t`` on a 1D grid.

    ``f0``, ``y``: outputs at initialisation and target on the ``N``-point grid of ``[0, 1)`` in
    order. Returns ``steps``, ``freqs`` and each measure of
    :func:`~specbias.metrics.spectrum.frequency_convergence` stacked over steps, ``(T, K)``.
    """
    target = np.asarray(torch.as_tensor(y).detach().cpu().double().numpy())
    r0 = np.asarray(torch.as_tensor(f0).detach().cpu().double().numpy()) - target
    pred = linearised_residuals(theta0, r0, eta, steps)
    rows = [frequency_convergence(target + r_t, target, freqs) for r_t in pred.residuals]
    out = {key: np.stack([row.as_dict()[key] for row in rows]) for key in rows[0].as_dict()}
    return {"steps": pred.steps, "freqs": rows[0].freqs, **out}


def _top_eigval(theta0: Array | NTKSpectrum) -> tuple[float, int]:
    """``(λ_max, N·C)`` of a kernel or of its spectrum (top-1 Lanczos for a kernel)."""
    spec = theta0 if isinstance(theta0, NTKSpectrum) else ntk_spectrum(theta0, k=1)
    return float(spec.eigvals[0]), int(spec.flat_vecs.shape[0])


def stable_lr(theta0: Array | NTKSpectrum, fraction: float) -> float:
    """Learning rate ``η = fraction · N C / λ_max(Θ_0)`` for full-batch gradient descent on ``mse_loss``.

    The linearised model's modes decay by ``1 − 2ηλ_k/(N C)`` per step, so the dynamics are stable
    (every ``|factor| < 1``) exactly when ``η < N C / λ_max``: the loss Hessian of the linearised
    model, ``(2/(N C)) Jᵀ J``, has top eigenvalue ``2λ_max/(N C)`` and gradient descent needs
    ``η < 2/h_max`` (the classical quadratic bound; Lee et al. 2019 write it ``η_crit = 2/λ_max`` for
    the loss ``½ Σ r²``). ``fraction`` in ``(0, 1)``: the top mode's factor is ``1 − 2·fraction``.
    ``theta0``: the kernel (``(N, N)`` or blocks) or its spectrum.
    """
    if not (0 < fraction < 1):
        raise ConfigError(f"the fraction of the stability limit must be in (0, 1), got {fraction}")
    lam, size = _top_eigval(theta0)
    if not (math.isfinite(lam) and lam > 0):
        raise ConfigError(f"the kernel's top eigenvalue must be finite and > 0, got {lam}")
    return fraction * size / lam


def adam_equivalent_lr(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, eps: float = 1e-8
) -> float:
    """The gradient-descent learning rate whose first step lowers ``mse_loss`` as much, to first
    order, as Adam's first step at learning rate ``lr``.

    Adam's bias-corrected first step is ``Δθ = −lr g/(|g| + ε)`` (``m̂_1 = g``, ``v̂_1 = g²``; Kingma &
    Ba, ICLR 2015), gradient descent's is ``−η g``; equal first-order loss changes ``g·Δθ`` give

        η_eq = lr · Σ_i g_i²/(|g_i| + ε) / Σ_i g_i²        (≈ lr ‖g‖₁/‖g‖₂²).

    A way to put a kernel prediction, which only exists for gradient descent, next to an Adam run;
    Adam is not gradient descent on a fixed kernel, so the comparison is not a theory of Adam.
    """
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = nn.functional.mse_loss(model(x), y)
        grads = torch.autograd.grad(loss, params)
    g = torch.cat([v.detach().reshape(-1) for v in grads]).double()
    energy = float((g * g).sum())
    if energy == 0:
        raise ConfigError("the loss gradient is zero: no equivalent learning rate")
    return lr * float((g * g / (g.abs() + eps)).sum()) / energy


# --------------------------------------------------------------------------- analytic NTK


def _arccos(cross: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``E[1(u>0) 1(v>0)]`` for ``(u, v)`` Gaussian (Cho & Saul 2009)."""
    norm = torch.sqrt(d1[:, None] * d2[None, :])
    cos = torch.where(norm > 0, cross / norm, torch.zeros_like(cross)).clamp(-1.0, 1.0)
    # arccos is ill-conditioned at 1 (one ulp of cos is 1.5e-8 of angle): a point paired with
    # itself, whose cos is 1 up to rounding, gets angle 0 exactly
    angle = torch.where(cos > 1 - 8 * torch.finfo(cos.dtype).eps, 0.0, torch.arccos(cos))
    e = norm * (torch.sin(angle) + (math.pi - angle) * cos) / (2 * math.pi)
    return e, (math.pi - angle) / (2 * math.pi)


def _edge_integrals(
    alpha: torch.Tensor, beta: torch.Tensor, alpha2: torch.Tensor, beta2: torch.Tensor, s: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``∫_{−s}^{s} relu(α + βt) relu(α′ + β′t) dt`` and the length of ``{α + βt > 0, α′ + β′t > 0}``."""

    def bounds(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        root = -a / torch.where(b == 0, torch.ones_like(b), b)
        inf = torch.full_like(root, math.inf)
        lo = torch.where(b > 0, root, torch.where((b == 0) & (a <= 0), inf, -inf))
        hi = torch.where(b < 0, root, inf)
        return lo, hi

    lo1, hi1 = bounds(alpha, beta)
    lo2, hi2 = bounds(alpha2, beta2)
    lo = torch.maximum(lo1, lo2).clamp(-s, s)
    hi = torch.maximum(torch.minimum(hi1, hi2).clamp(-s, s), lo)
    a, b, c = alpha * alpha2, alpha * beta2 + alpha2 * beta, beta * beta2
    return a * (hi - lo) + b * (hi**2 - lo**2) / 2 + c * (hi**3 - lo**3) / 3, hi - lo


def _uniform_exact_1d(x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` for ``u = wx + b``, ``v = wx′ + b``,
    ``w, b ~ U(−1, 1)`` (``d₀ = 1``), exactly.

    ``g(ξ)`` homogeneous of degree ``p`` in ``ξ = (w, b)`` has ``∇·(g ξ) = (p + 2) g``, so
    ``∫_{[−s,s]²} g = s/(p + 2) Σ_edges ∫_edge g`` (``ξ·n = s`` on every edge); the mean divides by
    ``(2s)²``. ``p = 2`` for ``relu·relu``, ``p = 0`` for the indicator product.
    """
    s = 1.0
    u, v = x[:, 0, None], x2[None, :, 0]
    ones = torch.ones_like(u * v)
    relu = torch.zeros_like(ones)
    length = torch.zeros_like(ones)
    for sign in (1.0, -1.0):
        # edges w = ±s (t = b): u = ±s x + t;  edges b = ±s (t = w): u = t x ± s
        for edge in (
            (sign * s * u * ones, ones, sign * s * v * ones, ones),
            (sign * s * ones, u * ones, sign * s * ones, v * ones),
        ):
            i, n = _edge_integrals(*edge, s)
            relu += i
            length += n
    return relu / (16.0 * s), length / (8.0 * s)


def _uniform_qmc(x: torch.Tensor, x2: torch.Tensor, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` for ``u = ξ·X``, ``v = ξ·X′``,
    ``ξ ~ U(−s, s)^{d₀+1}``, ``s = 1/√d₀``, ``X = (x, 1)``, by unscrambled, midpoint-shifted Sobol
    quasi-Monte Carlo.

    ``ξ`` and ``−ξ`` have the same law, so only the even parts need sampling:
    ``E[relu(u) relu(v)] = (E[uv] + E|u||v|)/4`` with ``E[uv] = Σ_1`` exact and the estimate of
    ``E|u||v|`` rescaled to the exact diagonal ``E u² = Σ_1(x, x)``;
    ``P(u > 0, v > 0) = (1 + E[sgn u sgn v])/4``. This halves the plain estimator's error.
    """
    d0 = x.shape[1]
    s = 1.0 / math.sqrt(d0)
    engine = torch.quasirandom.SobolEngine(d0 + 1, scramble=False)
    pts = engine.draw(n_samples, dtype=torch.float64).to(x.device)
    xi = s * (2.0 * torch.remainder(pts + 0.5 / n_samples, 1.0) - 1.0)
    xa = torch.cat((x, torch.ones_like(x[:, :1])), dim=1)
    xa2 = torch.cat((x2, torch.ones_like(x2[:, :1])), dim=1)
    absprod = torch.zeros(x.shape[0], x2.shape[0], dtype=x.dtype, device=x.device)
    signprod = torch.zeros_like(absprod)
    sq, sq2 = torch.zeros_like(absprod[:, 0]), torch.zeros_like(absprod[0])
    for start in range(0, n_samples, 8192):
        block = xi[start : start + 8192]
        z, z2 = xa @ block.T, xa2 @ block.T
        absprod += z.abs() @ z2.abs().T
        signprod += torch.sign(z) @ torch.sign(z2).T
        sq += (z * z).sum(1)
        sq2 += (z2 * z2).sum(1)
    sigma = (xa @ xa2.T) * SIGMA_W2 / d0
    var, var2 = (xa * xa).sum(1) * SIGMA_W2 / d0, (xa2 * xa2).sum(1) * SIGMA_W2 / d0
    abs_mean = absprod * torch.sqrt((var[:, None] * var2[None, :]) / (sq[:, None] * sq2[None, :]))
    return (sigma + abs_mean) / 4, (1.0 + signprod / n_samples) / 4


def _first_layer(
    x: torch.Tensor, x2: torch.Tensor, first_layer: str, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E_1, Ė_1)`` under the chosen first-layer weight law."""
    d0 = x.shape[1]
    if first_layer == "auto":
        first_layer = "uniform" if d0 <= AUTO_UNIFORM_MAX_DIM else "gaussian"
    if first_layer == "gaussian":
        cross = (x @ x2.T + 1.0) * SIGMA_W2 / d0
        diag1 = ((x * x).sum(1) + 1.0) * SIGMA_W2 / d0
        diag2 = ((x2 * x2).sum(1) + 1.0) * SIGMA_W2 / d0
        return _arccos(cross, diag1, diag2)
    if d0 == 1:
        return _uniform_exact_1d(x, x2)
    return _uniform_qmc(x, x2, n_samples)


def _analytic(
    x: Array, x2: Array | None, depth: int, width: int | None, first_layer: str, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(NTK, output NNGP)``: the width-normalised limit (``width=None``) or the mean-field
    kernel of a width-``width`` network (see :func:`analytic_ntk`)."""
    if not (isinstance(depth, int) and depth >= 1):
        raise ConfigError(f"depth must be an integer >= 1, got {depth}")
    if width is not None and not (isinstance(width, int) and width >= 1):
        raise ConfigError(f"width must be None or an integer >= 1, got {width}")
    if first_layer not in ("auto", "uniform", "gaussian"):
        raise ConfigError(f"first_layer must be 'auto', 'uniform' or 'gaussian', got {first_layer!r}")
    if n_samples < 1 or n_samples & (n_samples - 1):
        raise ConfigError(f"n_samples must be a power of two (Sobol net), got {n_samples}")
    xa = torch.as_tensor(x).detach().to(torch.float64)
    xb = xa if x2 is None else torch.as_tensor(x2).detach().to(dtype=torch.float64, device=xa.device)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise ConfigError(f"inputs must be (N, d) and (M, d), got {tuple(xa.shape)} and {tuple(xb.shape)}")
    d0 = xa.shape[1]
    # width=None: Θ/n in the limit (bias variance 1/(3n) → 0, O(1) terms → 0)
    scale, const, bias_var = (1.0, 0.0, 0.0) if width is None else (float(width), 1.0, SIGMA_W2 / width)
    # layer 1 (E[relu(z)²] = Σ_1/2 on the diagonal for any symmetric weight law)
    e, e_dot = _first_layer(xa, xb, first_layer, n_samples)
    e_d1 = ((xa * xa).sum(1) + 1.0) * SIGMA_W2 / d0 / 2
    e_d2 = ((xb * xb).sum(1) + 1.0) * SIGMA_W2 / d0 / 2
    q = const * (xa @ xb.T + 1.0)  # layer-1 weights and biases: (x·x′ + 1) at z_1
    for layer in range(2, depth + 2):
        q = SIGMA_W2 * e_dot * q + scale * e + const  # Θ of z_l
        if layer == depth + 1:
            break
        d1, d2 = SIGMA_W2 * e_d1 + bias_var, SIGMA_W2 * e_d2 + bias_var
        e, e_dot = _arccos(SIGMA_W2 * e + bias_var, d1, d2)
        e_d1, e_d2 = d1 / 2, d2 / 2
    return q, SIGMA_W2 * e + bias_var


def analytic_ntk(
    x: Array,
    x2: Array | None = None,
    *,
    depth: int,
    width: int | None = None,
    first_layer: str = "auto",
    n_samples: int = 2**16,
) -> torch.Tensor:
    """Analytic NTK of ``MLP(d₀, width, depth, ·)`` at PyTorch's default init, float64 ``(N, M)``.

    ``width=None``: the infinite-width limit ``Θ_∞ = lim Θ_n/n``. ``width=n``: the mean-field
    kernel of a width-``n`` network on the empirical kernel's scale,
    ``Θ̄_n = Σ_l P_l (A_{l-1} + 1)`` with ``A_0 = x·x′``, ``A_{l-1} = n E_{l-1}`` and the hidden bias
    variance ``1/(3n)`` kept in ``Σ_l`` -- it keeps the ``O(1)`` terms of every bias and of the
    first layer's weights that ``n Θ_∞`` drops (the output bias alone adds 1 to every entry, as
    much as ``n Θ_∞`` at depth 3 and width ≈ 70 on raw inputs); ``Θ̄_n/n → Θ_∞``. The ``O(1)``
    corrections from finite-width non-Gaussianity are not included. ``x``, ``x2``: the network's
    inputs (encoded features), ``(N, d₀)`` and ``(M, d₀)``. Per output channel (channels are
    independent at init in this approximation). See the module docstring for the recursion and
    ``first_layer``.
    """
    return _analytic(x, x2, depth, width, first_layer, n_samples)[0]


def analytic_nngp(
    x: Array,
    x2: Array | None = None,
    *,
    depth: int,
    width: int | None = None,
    first_layer: str = "auto",
    n_samples: int = 2**16,
) -> torch.Tensor:
    """Output covariance at initialisation, ``Cov(f(x), f(x′)) = E_depth/3 + 1/(3n)``
    (``width=None``: the limit ``E_depth/3``)."""
    return _analytic(x, x2, depth, width, first_layer, n_samples)[1]
