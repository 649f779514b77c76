"""Per-example gradient inner products without per-example gradients; gradient confusion.

Gradient confusion (Sankararaman et al., ICML 2020, "The Impact of Neural Network
Overparameterization on Gradient Confusion and SGD"; measured as a cosine by Lazzari & Liu 2023,
spec §1.6): for per-example losses ``ℓ_i`` (MSE averaged over output channels, no ``1/B`` factor)
and ``g_i = ∇_θ ℓ_i`` over every weight and bias,

    confusion(i, j) = cos(g_i, g_j) = ⟨g_i, g_j⟩ / (‖g_i‖ ‖g_j‖)   (more negative = more confused).

**Gram identity.** For an MLP with ``z_l = W_l a_{l-1} + b_l`` and ``δ_{l,i} = ∂ℓ_i/∂z_{l,i}``,
``∂ℓ_i/∂W_l = δ_{l,i} a_{l-1,i}ᵀ`` and ``∂ℓ_i/∂b_l = δ_{l,i}``, hence

    ⟨g_i, g_j⟩ = Σ_l (δ_{l,i}·δ_{l,j}) (a_{l-1,i}·a_{l-1,j} + 1).

The ``δ`` of all examples come from one batched backward pass (examples do not interact), here
written out for the ReLU MLP: ``δ_out = ∂ℓ/∂f``, ``δ_l = (δ_{l+1} W_{l+1}) ⊙ [z_l > 0]``. Any set of
pairs, or the whole Gram matrix, then costs a few matrix products. With the output cotangent
``∂ℓ_i/∂f_i`` replaced by a unit vector ``e_c`` the same identity gives the empirical NTK.

For models that are not a plain :class:`~specbias.models.MLP`, ``method="func"`` computes
per-example gradients with ``torch.func.vmap(grad(...))`` (memory ``N × #params``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.metrics.pairs import Pairs
from specbias.models import MLP

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse_per_example(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``ℓ_i = mean_c (f_ic − y_ic)²`` for each example (shape ``(N,)``)."""
    return ((pred - target) ** 2).mean(dim=-1)


def mse_cotangent(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``∂ℓ_i/∂f_i = 2 (f_i − y_i) / C`` for :func:`mse_per_example`."""
    return 2.0 * (pred - target) / pred.shape[-1]


def backprop_deltas(
    model: MLP, x: torch.Tensor, cotangent_fn: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layer inputs ``a_{l-1}`` and per-example ``δ_l`` for every linear layer of ``model``.

    ``cotangent_fn(output)`` gives ``∂ℓ_i/∂f_i`` for each example (shape of the output).
    """
    with torch.no_grad():
        trace = model.trace(x)
        delta = cotangent_fn(trace.output)
        deltas = [delta]
        for layer, z in zip(reversed(model.layers[1:]), reversed(trace.hidden)):
            delta = (delta @ layer.weight) * (z > 0)
            deltas.append(delta)
    return trace.inputs, deltas[::-1]


@dataclass(frozen=True)
class PairProducts:
    """``⟨g_i, g_j⟩``, ``‖g_i‖²`` and ``‖g_j‖²`` for each pair (float64 NumPy arrays)."""

    inner: np.ndarray
    sq_norm_i: np.ndarray
    sq_norm_j: np.ndarray


def _gram_pairs(
    inputs: list[torch.Tensor], deltas: list[torch.Tensor], i: torch.Tensor, j: torch.Tensor
) -> torch.Tensor:
    total = torch.zeros(i.shape[0], dtype=deltas[0].dtype, device=deltas[0].device)
    for a, d in zip(inputs, deltas):
        total += (d[i] * d[j]).sum(1) * ((a[i] * a[j]).sum(1) + 1)
    return total


def _sq_norms(inputs: list[torch.Tensor], deltas: list[torch.Tensor]) -> torch.Tensor:
    return sum((d * d).sum(1) * ((a * a).sum(1) + 1) for a, d in zip(inputs, deltas))


def _func_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: LossFn) -> torch.Tensor:
    """Per-example flattened gradients ``(N, #params)`` with ``torch.func`` (the fallback)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, p, (xi[None],)), yi[None]).sum()

    grads = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)


def _resolve(method: str, model: nn.Module) -> str:
    if method not in ("auto", "gram", "func"):
        raise ConfigError(f"gradient method must be 'auto', 'gram' or 'func', got {method!r}")
    if method == "auto":
        return "gram" if isinstance(model, MLP) else "func"
    if method == "gram" and not isinstance(model, MLP):
        raise ConfigError("the Gram identity needs a specbias MLP; use method='func'")
    return method


def loss_gradient_pairs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    pairs: Pairs,
    method: str = "auto",
    chunk: int = 16384,
) -> PairProducts:
    """Inner products and squared norms of per-example MSE-loss gradients for ``pairs``."""
    method = _resolve(method, model)
    dev = x.device
    i_all = torch.as_tensor(pairs.i, device=dev)
    j_all = torch.as_tensor(pairs.j, device=dev)
    if method == "gram":
        inputs, deltas = backprop_deltas(model, x, lambda f: mse_cotangent(f, y))
        norms = _sq_norms(inputs, deltas)
        inner = torch.cat(
            [
                _gram_pairs(inputs, deltas, i_all[s : s + chunk], j_all[s : s + chunk])
                for s in range(0, len(pairs), chunk)
            ]
        )
    else:
        g = _func_grads(model, x, y, mse_per_example)
        norms = (g * g).sum(1)
        inner = (g[i_all] * g[j_all]).sum(1)

    def to_np(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    return PairProducts(to_np(inner), to_np(norms[i_all]), to_np(norms[j_all]))


def loss_gradient_gram(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str = "auto"
) -> torch.Tensor:
    """The full ``N × N`` matrix ``⟨g_i, g_j⟩`` of per-example MSE-loss gradients."""
    if _resolve(method, model) == "func":
        g = _func_grads(model, x, y, mse_per_example)
        return g @ g.T
    inputs, deltas = backprop_deltas(model, x, lambda f: mse_cotangent(f, y))
    gram = torch.zeros(x.shape[0], x.shape[0], dtype=deltas[0].dtype, device=x.device)
    for a, d in zip(inputs, deltas):
        gram += (d @ d.T) * (a @ a.T + 1)
    return gram


@dataclass(frozen=True)
class Confusion:
    """Confusion values per pair and how many pairs involved an exactly-zero gradient."""

    values: np.ndarray
    n_zero: int


def cosine_from_products(products: PairProducts, zero: str = "nan") -> Confusion:
    """``⟨g_i, g_j⟩ / (‖g_i‖‖g_j‖)``; pairs with a zero gradient give NaN (clean) or 0 (B6)."""
    if zero not in ("nan", "zero"):
        raise ConfigError(f"zero-gradient policy must be 'nan' or 'zero', got {zero!r}")
    denom = np.sqrt(products.sq_norm_i * products.sq_norm_j)
    is_zero = denom == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(products.inner / denom, -1.0, 1.0)
    cos[is_zero] = np.nan if zero == "nan" else 0.0
    return Confusion(cos, int(is_zero.sum()))


def gradient_confusion(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    pairs: Pairs,
    measure: str = "cosine",
    zero: str = "nan",
    method: str = "auto",
) -> Confusion:
    """Gradient confusion of ``pairs``: the cosine (default) or the raw inner product."""
    products = loss_gradient_pairs(model, x, y, pairs, method=method)
    if measure == "cosine":
        return cosine_from_products(products, zero)
    if measure == "inner":
        n_zero = int(((products.sq_norm_i == 0) | (products.sq_norm_j == 0)).sum())
        return Confusion(products.inner, n_zero)
    raise ConfigError(f"confusion measure must be 'cosine' or 'inner', got {measure!r}")
