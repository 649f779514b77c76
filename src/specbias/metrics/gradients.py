"""Per-example gradient inner products without per-example gradients; gradient confusion.

Gradient confusion (Sankararaman et al., ICML 2020, "The Impact of Neural Network
Overparameterization on Gradient Confusion and SGD"; measured as a cosine by Lazzari & Liu 2023,
spec §1.6): for per-example losses ``ℓ_i`` (MSE averaged over output channels, or cross-entropy; no
``1/B`` factor) and ``g_i = ∇_θ ℓ_i`` over every weight and bias,

    confusion(i, j) = cos(g_i, g_j) = ⟨g_i, g_j⟩ / (‖g_i‖ ‖g_j‖)   (more negative = more confused).

**Gram identity.** For an MLP with ``z_l = W_l a_{l-1} + b_l`` and ``δ_{l,i} = ∂ℓ_i/∂z_{l,i}``,
``∂ℓ_i/∂W_l = δ_{l,i} a_{l-1,i}ᵀ`` and ``∂ℓ_i/∂b_l = δ_{l,i}``, hence

    ⟨g_i, g_j⟩ = Σ_l (δ_{l,i}·δ_{l,j}) (a_{l-1,i}·a_{l-1,j} + 1).

The ``δ`` of all examples come from one batched backward pass (examples do not interact), here
written out for the ReLU MLP: ``δ_out = ∂ℓ/∂f``, ``δ_l = (δ_{l+1} W_{l+1}) ⊙ [z_l > 0]``. Any set of
pairs, or the whole Gram matrix, then costs a few matrix products. With the output cotangent
``∂ℓ_i/∂f_i`` replaced by a unit vector ``e_c`` the same identity gives the empirical NTK.

**Losses.** ``loss="mse"`` (coordinate networks): ``ℓ_i = mean_c (f_ic − y_ic)²``, cotangent
``2 (f_i − y_i) / C``. ``loss="ce"`` (classifiers, the real-data contrast E17): ``y`` holds integer
labels, ``ℓ_i = −log softmax(f_i)[y_i]`` and the cotangent is ``softmax(f_i) − onehot(y_i)``, so the
same Gram identity gives the cross-entropy gradient products of an MLP classifier.

For models that are not a plain :class:`~specbias.models.MLP` (the real-data CNN),
``method="func"`` computes per-example gradients with ``torch.func.vmap(grad(...))``, for pairs in
chunks: each chunk takes the gradients of the distinct examples its pairs touch, at most
:data:`FUNC_BUDGET` gradient entries at a time.
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
FUNC_BUDGET = 2**26
"""Gradient entries (examples × parameters) the ``func`` method holds at once (256 MB in float32)."""
DOT_BLOCK = 8
"""Pairs per gathered block when taking their gradients' dot products: small blocks stay in cache
(2.5× faster on a CPU than gathering a whole chunk of 190 CNN gradient pairs at once)."""


def mse_per_example(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``ℓ_i = mean_c (f_ic − y_ic)²`` for each example (shape ``(N,)``)."""
    return ((pred - target) ** 2).mean(dim=-1)


def mse_cotangent(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``∂ℓ_i/∂f_i = 2 (f_i − y_i) / C`` for :func:`mse_per_example`."""
    return 2.0 * (pred - target) / pred.shape[-1]


def ce_per_example(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``ℓ_i = −log softmax(f_i)[y_i]`` for each example (shape ``(N,)``), ``labels`` integer."""
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


def ce_cotangent(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``∂ℓ_i/∂f_i = softmax(f_i) − onehot(y_i)`` for :func:`ce_per_example`."""
    onehot = torch.nn.functional.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits, dim=-1) - onehot


LOSSES: dict[str, tuple[LossFn, LossFn]] = {
    "mse": (mse_per_example, mse_cotangent),
    "ce": (ce_per_example, ce_cotangent),
}
"""Per-example loss and its output cotangent, by name."""


def _loss(name: str) -> tuple[LossFn, LossFn]:
    if name not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
    return LOSSES[name]


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


def _func_pairs(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, i_all: torch.Tensor, j_all: torch.Tensor, loss: LossFn
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``⟨g_i, g_j⟩, ‖g_i‖², ‖g_j‖²`` by ``torch.func``, chunk by chunk of pairs: each chunk computes
    the gradients of the distinct examples it touches (at most :data:`FUNC_BUDGET` entries)."""
    n_params = sum(p.numel() for p in model.parameters())
    per_chunk = max(1, FUNC_BUDGET // (2 * n_params))
    parts = []
    for s in range(0, i_all.shape[0], per_chunk):
        i, j = i_all[s : s + per_chunk], j_all[s : s + per_chunk]
        rows, where = torch.unique(torch.cat([i, j]), return_inverse=True)
        g = _func_grads(model, x[rows], y[rows], loss)
        a, b = where[: i.shape[0]], where[i.shape[0] :]
        sq = (g * g).sum(1)
        inner = torch.cat(
            [
                (g[a[t : t + DOT_BLOCK]] * g[b[t : t + DOT_BLOCK]]).sum(1)
                for t in range(0, a.shape[0], DOT_BLOCK)
            ]
        )
        parts.append(torch.stack([inner, sq[a], sq[b]]))
    if not parts:
        empty = torch.zeros(0, dtype=x.dtype, device=x.device)
        return empty, empty, empty
    inner, sq_i, sq_j = torch.cat(parts, dim=1)
    return inner, sq_i, sq_j


def loss_gradient_pairs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    pairs: Pairs,
    method: str = "auto",
    chunk: int = 16384,
    loss: str = "mse",
) -> PairProducts:
    """Inner products and squared norms of per-example loss gradients (``loss`` "mse" or "ce")
    for ``pairs``."""
    method = _resolve(method, model)
    per_example, cotangent = _loss(loss)
    dev = x.device
    i_all = torch.as_tensor(pairs.i, device=dev)
    j_all = torch.as_tensor(pairs.j, device=dev)
    if method == "gram":
        inputs, deltas = backprop_deltas(model, x, lambda f: cotangent(f, y))
        norms = _sq_norms(inputs, deltas)
        inner = torch.cat(
            [
                _gram_pairs(inputs, deltas, i_all[s : s + chunk], j_all[s : s + chunk])
                for s in range(0, len(pairs), chunk)
            ]
        )
        sq_i, sq_j = norms[i_all], norms[j_all]
    else:
        inner, sq_i, sq_j = _func_pairs(model, x, y, i_all, j_all, per_example)

    def to_np(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    return PairProducts(to_np(inner), to_np(sq_i), to_np(sq_j))


def loss_gradient_gram(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str = "auto", loss: str = "mse"
) -> torch.Tensor:
    """The full ``N × N`` matrix ``⟨g_i, g_j⟩`` of per-example loss gradients (``loss`` "mse"/"ce")."""
    per_example, cotangent = _loss(loss)
    if _resolve(method, model) == "func":
        g = _func_grads(model, x, y, per_example)
        return g @ g.T
    inputs, deltas = backprop_deltas(model, x, lambda f: cotangent(f, y))
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
    loss: str = "mse",
) -> Confusion:
    """Gradient confusion of ``pairs``: the cosine (default) or the raw inner product."""
    products = loss_gradient_pairs(model, x, y, pairs, method=method, loss=loss)
    if measure == "cosine":
        return cosine_from_products(products, zero)
    if measure == "inner":
        n_zero = int(((products.sq_norm_i == 0) | (products.sq_norm_j == 0)).sum())
        return Confusion(products.inner, n_zero)
    raise ConfigError(f"confusion measure must be 'cosine' or 'inner', got {measure!r}")
