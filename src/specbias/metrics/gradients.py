"""Per-example gradient inner products without per-example gradients; gradient confusion.

Gradient confusion (Sankararaman et al., ICML 2020, "The Impact of Neural Network
Overparameterization on Gradient Confusion and SGD"; measured as a cosine by Lazzari & Liu 2023,
spec §1.6): for per-example losses ``ℓ_i`` (MSE averaged over output channels, or cross-entropy; no
``1/B`` factor) and ``g_i = ∇_θ ℓ_i`` over every weight and bias,

    confusion(i, j) = cos(g_i, g_j) = ⟨g_i, g_j⟩ / (‖g_i‖ ‖g_j‖)   (more negative = more confused).

**Gram identity.** For a layer ``z_l = W_l a_{l-1} + b_l`` and ``δ_{l,i} = ∂ℓ_i/∂z_{l,i}``,
``∂ℓ_i/∂W_l = δ_{l,i} a_{l-1,i}ᵀ`` and ``∂ℓ_i/∂b_l = δ_{l,i}``, hence

    ⟨g_i, g_j⟩ = Σ_l (δ_{l,i}·δ_{l,j}) (a_{l-1,i}·a_{l-1,j} + 1)

(the ``+1`` only where the layer has a bias), with a sparse counterpart for HashGrid tables
(:mod:`specbias.metrics.gram`). It holds for any model built from ``nn.Linear`` layers, any
elementwise activations and HashGrid encodings: the layer inputs come from forward hooks and the
``δ`` of all examples from one batched backward pass (examples do not interact); the specbias ReLU
``MLP`` keeps a hand-written backward (``δ_l = (δ_{l+1} W_{l+1}) ⊙ [z_l > 0]``, no autograd graph).
Any set of pairs, or the whole Gram matrix, then costs a few matrix products. With the output
cotangent ``∂ℓ_i/∂f_i`` replaced by a unit vector ``e_c`` the same identity gives the empirical NTK.

**Output-Jacobian cosine** (the residual-free part of the confusion). A loss gradient is the
residual-weighted sum of the output Jacobian's rows, ``g_i = J_iᵀ ∂ℓ_i/∂f_i`` with
``J_i = ∂f(x_i)/∂θ`` (``C × #params``), so ``cos(g_i, g_j)`` mixes the network's part (``J_i, J_j``)
with the target's (the residuals): with ``C = 3`` channels, parallel Jacobians and independent
residuals give a cosine spread over ``[−1, 1]``. The network's part alone is the normalised
empirical-NTK block (Jacot et al., NeurIPS 2018; ``Θ(x_i, x_j) = J_i J_jᵀ``)

    c_ij = tr(J_i J_jᵀ) / (‖J_i‖_F ‖J_j‖_F),
    tr(J_i J_jᵀ) = Σ_c Σ_l (δ^c_{l,i}·δ^c_{l,j}) (a_{l-1,i}·a_{l-1,j} + 1),

``δ^c_l = ∂f_c/∂z_l`` from batched backward passes with the cotangents ``e_1 … e_C``. The
activation factor does not depend on ``c``, so stacking the channels' deltas into one ``(N, C·n_l)``
matrix per layer makes it the loss-gradient identity again
(:func:`output_jacobian_pairs`). With ``C = 1``, ``cos(g_i, g_j) = sign(r_i r_j) c_ij`` (residuals
``r``), so the loss-gradient cosine only adds a sign.

**Losses.** ``loss="mse"`` (coordinate networks): ``ℓ_i = mean_c (f_ic − y_ic)²``, cotangent
``2 (f_i − y_i) / C``. ``loss="ce"`` (classifiers, the real-data contrast E17): ``y`` holds integer
labels, ``ℓ_i = −log softmax(f_i)[y_i]`` and the cotangent is ``softmax(f_i) − onehot(y_i)``, so the
same Gram identity gives the cross-entropy gradient products of an MLP classifier.

**Coverage.** ``method="auto"`` uses the identity wherever it applies
(:func:`~specbias.metrics.gram.coverage_error`: every parameter in an ``nn.Linear`` or a HashGrid, each
run once per forward pass, no BatchNorm in train mode) and ``torch.func`` otherwise (the real-data
CNN); ``method="gram"`` on a model it does not cover is a one-line ``ConfigError`` naming the
parameter or module, never a wrong number. ``method="func"`` computes per-example gradients with
``torch.func.vmap(grad(...))`` (output Jacobians with ``vmap(jacrev(...))``, :func:`func_jacobian`),
for pairs in chunks: each chunk takes the gradients of the distinct examples its pairs touch, at most
:data:`FUNC_BUDGET` gradient entries at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.metrics.gram import Term, gram_terms, kernel, pair_products, sq_norms, unit_cotangents
from specbias.metrics.pairs import Pairs

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


@dataclass(frozen=True)
class PairProducts:
    """``⟨g_i, g_j⟩``, ``‖g_i‖²`` and ``‖g_j‖²`` for each pair (float64 NumPy arrays); for
    :func:`output_jacobian_pairs` ``tr(J_i J_jᵀ)``, ``‖J_i‖_F²`` and ``‖J_j‖_F²``."""

    inner: np.ndarray
    sq_norm_i: np.ndarray
    sq_norm_j: np.ndarray


def _func_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: LossFn) -> torch.Tensor:
    """Per-example flattened gradients ``(N, #params)`` with ``torch.func`` (the fallback)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, p, (xi[None],)), yi[None]).sum()

    grads = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)


def func_jacobian(model: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Per-example output Jacobians ``∂f_c(x_i)/∂θ``, shape ``(N, C, #params)``, with ``torch.func``
    (``vmap(jacrev(...))``, the PyTorch NTK tutorial's contraction).

    Parameters are flattened in ``model.named_parameters()`` order. A model whose per-example
    output is a scalar has ``C = 1``. ``chunk`` bounds the examples ``vmap`` takes at once.
    """
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi[None],)).reshape(-1)

    jac = vmap(jacrev(one), in_dims=(None, 0), chunk_size=chunk)(params, x)
    n = x.shape[0]
    c = next(iter(jac.values())).shape[1]
    return torch.cat([j.reshape(n, c, -1) for j in jac.values()], dim=2)


def _check_method(method: str) -> None:
    if method not in ("auto", "gram", "func"):
        raise ConfigError(f"gradient method must be 'auto', 'gram' or 'func', got {method!r}")


def _terms(model: nn.Module, x: torch.Tensor, cotangent_fn: LossFn | None, method: str) -> list[Term] | None:
    """The Gram identity's terms (``method`` "gram", or "auto" where it covers the model), else None
    for the ``torch.func`` fallback; ``cotangent_fn=None``: the output cotangents ``e_1 … e_C``."""
    _check_method(method)
    if method == "func":
        return None
    cot = unit_cotangents if cotangent_fn is None else cotangent_fn
    return gram_terms(model, x, cot, strict=method == "gram")


def _func_pairs(
    rows_fn: Callable[[torch.Tensor], torch.Tensor],
    per_example: int,
    i_all: torch.Tensor,
    j_all: torch.Tensor,
    like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``⟨v_i, v_j⟩, ‖v_i‖², ‖v_j‖²`` of per-example vectors ``v = rows_fn(rows)`` (``per_example``
    entries each), chunk by chunk of pairs: each chunk computes the vectors of the distinct examples
    it touches (at most :data:`FUNC_BUDGET` entries); ``like`` gives the empty result's dtype."""
    per_chunk = max(1, FUNC_BUDGET // (2 * per_example))
    parts = []
    for s in range(0, i_all.shape[0], per_chunk):
        i, j = i_all[s : s + per_chunk], j_all[s : s + per_chunk]
        rows, where = torch.unique(torch.cat([i, j]), return_inverse=True)
        g = rows_fn(rows)
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
        empty = torch.zeros(0, dtype=like.dtype, device=like.device)
        return empty, empty, empty
    inner, sq_i, sq_j = torch.cat(parts, dim=1)
    return inner, sq_i, sq_j


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _pair_indices(pairs: Pairs, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(pairs.i, device=x.device), torch.as_tensor(pairs.j, device=x.device)


def _gram_pair_products(
    terms: list[Term], i_all: torch.Tensor, j_all: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Gram identity's ``(inner, ‖·‖²_i, ‖·‖²_j)`` for pairs, ``chunk`` pairs at a time."""
    norms = sq_norms(terms)
    blocks = [
        pair_products(terms, i_all[s : s + chunk], j_all[s : s + chunk])
        for s in range(0, i_all.shape[0], chunk)
    ]
    inner = torch.cat(blocks) if blocks else norms[:0]
    return inner, norms[i_all], norms[j_all]


def _products(inner: torch.Tensor, sq_i: torch.Tensor, sq_j: torch.Tensor) -> PairProducts:
    def to_np(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    return PairProducts(to_np(inner), to_np(sq_i), to_np(sq_j))


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
    per_example, cotangent = _loss(loss)
    i_all, j_all = _pair_indices(pairs, x)
    terms = _terms(model, x, lambda f: cotangent(f, y), method)
    if terms is not None:
        return _products(*_gram_pair_products(terms, i_all, j_all, chunk))

    def grads(rows: torch.Tensor) -> torch.Tensor:
        return _func_grads(model, x[rows], y[rows], per_example)

    return _products(*_func_pairs(grads, _n_params(model), i_all, j_all, x))


def loss_gradient_gram(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "auto",
    loss: str = "mse",
    chunk: int = 4096,
) -> torch.Tensor:
    """The full ``N × N`` matrix ``⟨g_i, g_j⟩`` of per-example loss gradients (``loss`` "mse"/"ce"),
    exactly symmetric; ``chunk`` rows at a time (Gram identity)."""
    per_example, cotangent = _loss(loss)
    terms = _terms(model, x, lambda f: cotangent(f, y), method)
    if terms is None:
        g = _func_grads(model, x, y, per_example)
        return g @ g.T
    return kernel(terms, None, blocks=False, chunk=chunk)


def output_jacobian_pairs(
    model: nn.Module, x: torch.Tensor, pairs: Pairs, method: str = "auto", chunk: int = 16384
) -> PairProducts:
    """``tr(J_i J_jᵀ)``, ``‖J_i‖_F²`` and ``‖J_j‖_F²`` of the per-example output Jacobians
    ``J_i = ∂f(x_i)/∂θ`` (``C × #params``, every weight and bias) for ``pairs``: the traces of the
    empirical-NTK blocks ``Θ(x_i, x_j)``, ``Θ(x_i, x_i)``, ``Θ(x_j, x_j)`` (Jacot et al. 2018).

    ``method="gram"`` (any covered model; ``"auto"`` picks it where it applies):
    ``tr(J_i J_jᵀ) = Σ_c Σ_l (δ^c_{l,i}·δ^c_{l,j})(a_{l-1,i}·a_{l-1,j} + 1)`` with ``δ^c_l = ∂f_c/∂z_l``
    (the output cotangents ``e_1 … e_C``); ``"func"``: ``torch.func`` Jacobians (:func:`func_jacobian`),
    chunked like the loss gradients. :func:`cosine_from_products` turns the result into the
    residual-free confusion ``tr(J_i J_jᵀ)/(‖J_i‖_F ‖J_j‖_F)``; see :func:`output_jacobian_cosine`.
    """
    i_all, j_all = _pair_indices(pairs, x)
    terms = _terms(model, x, None, method)
    if terms is not None:
        return _products(*_gram_pair_products(terms, i_all, j_all, chunk))

    def jacobians(rows: torch.Tensor) -> torch.Tensor:
        return func_jacobian(model, x[rows]).flatten(1)

    with torch.no_grad():
        n_out = model(x[:1]).reshape(1, -1).shape[1]
    return _products(*_func_pairs(jacobians, n_out * _n_params(model), i_all, j_all, x))


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


def output_jacobian_cosine(
    model: nn.Module, x: torch.Tensor, pairs: Pairs, zero: str = "nan", method: str = "auto"
) -> Confusion:
    """The residual-free confusion of ``pairs``: ``c_ij = tr(J_i J_jᵀ) / (‖J_i‖_F ‖J_j‖_F)``, the
    cosine of the two points' output Jacobians (their normalised empirical-NTK block).

    Where :func:`gradient_confusion` weights the Jacobians' rows by the residuals
    (``g_i = J_iᵀ ∂ℓ_i/∂f_i``), this is the network's part alone; for one output channel
    ``cos(g_i, g_j) = sign(r_i r_j) c_ij`` with the residuals ``r``. ``zero`` as in
    :func:`cosine_from_products` (an MLP's ``J_i`` is never zero: the output bias alone gives
    ``‖J_i‖_F² ≥ C``).
    """
    return cosine_from_products(output_jacobian_pairs(model, x, pairs, method=method), zero)
