"""The empirical neural tangent kernel.

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
"""

from __future__ import annotations

import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.metrics.gradients import func_jacobian
from specbias.metrics.gram import gram_terms, kernel, unit_cotangents


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
