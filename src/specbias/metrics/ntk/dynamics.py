"""Linearised gradient-descent dynamics on the NTK and the step sizes that go with them.

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specbias._checks import check_positive
from specbias.errors import ConfigError
from specbias.metrics.ntk.spectrum import Array, NTKSpectrum, ntk_spectrum
from specbias.metrics.spectrum import frequency_convergence


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
    check_positive("learning rate", eta)
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
    check_positive("learning rate", lr)
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = nn.functional.mse_loss(model(x), y)
        grads = torch.autograd.grad(loss, params)
    g = torch.cat([v.detach().reshape(-1) for v in grads]).double()
    energy = float((g * g).sum())
    if energy == 0:
        raise ConfigError("the loss gradient is zero: no equivalent learning rate")
    return lr * float((g * g / (g.abs() + eps)).sum()) / energy
