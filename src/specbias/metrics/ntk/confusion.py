"""Gradient confusion from the NTK: a residual-weighted kernel.

**Gradient confusion is a residual-weighted NTK** (anchors §2.8). For the per-example MSE
``ℓ_i = mean_c (f_ic − y_ic)²`` with residual ``r_i = f_i − y_i``,
``g_i = ∇_θ ℓ_i = (2/C) Σ_c r_ic ∇_θ f_c(x_i)``, so

    ⟨g_i, g_j⟩ = (2/C)² r_iᵀ Θ(x_i, x_j) r_j,
    cos(g_i, g_j) = sign(r_i r_j) Θ_ij / √(Θ_ii Θ_jj)        (C = 1),

so one kernel gives the NTK, its spectrum and the confusion matrix of any pairs
(:func:`loss_gradient_gram_from_ntk`, :func:`confusion_from_ntk`).
"""

from __future__ import annotations

import torch

from specbias.errors import ConfigError
from specbias.metrics.ntk.spectrum import Array, _as_tensor


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
