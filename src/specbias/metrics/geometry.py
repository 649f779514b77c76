"""Weight-space and input-space geometry: spectral norms, hyperplane angles, boundary distances.

Lazzari & Liu (2023), "Understanding the Spectral Bias of Coordinate Based MLPs Via Training
Dynamics" (arXiv 2301.05816); the spec's §1.8, E4e, E10, E11, E12 and E20.

* **Parameter norms** (E4e, E10). For every linear layer, output layer included and biases excluded,
  ``σ_max(W_l) = ‖W_l‖₂``, the largest singular value (``torch.linalg.matrix_norm(ord=2)``, not a
  full SVD: B28). Since ReLU is 1-Lipschitz, ``Lip(f) ≤ Π_l σ_max(W_l)`` -- the product is an upper
  bound on the network's Lipschitz constant (Szegedy et al., ICLR 2014, "Intriguing properties of
  neural networks").
* **Hyperplane angles** (E11). Hidden unit ``(l, i)`` cuts layer ``l``'s input space with the
  hyperplane ``W_l[i,:]·a + b_{l,i} = 0``; its direction is the incoming weight row (bias excluded).
  Per hidden layer, ``C_l[i, j] = cos(W_l[i,:], W_l[j,:])``, a ``W_l × W_l`` matrix. The paper stacks
  all rows, zero-padding layer 1's to ``W``, into one ``(Σ W_l) × (Σ W_l)`` matrix; the padding
  leaves layer-1 cosines unchanged, but the cross-layer blocks compare vectors of different spaces
  and are meaningless (B25), so they are NaN here and the statistics are per layer: the mean
  off-diagonal cosine and the fraction of off-diagonal cosines ``> 0``.
* **Boundary distance** (E12), two versions:

  - *feature space* (the reference): ``d(x) = min_{l,i} |z_{l,i}(x)| / ‖W_l[i,:]‖₂`` -- the distance
    from ``a_{l-1}(x)`` to unit ``(l, i)``'s hyperplane in **layer l's own input space**. Exact for
    layer 1; for ``l ≥ 2`` an approximation that ignores how the earlier layers stretch space.
  - *input space* (a toolkit addition): ``d_in(x) = min_{l,i} |z_{l,i}(x)| / ‖∇_x z_{l,i}(x)‖₂`` with
    ``∇_x z_l = W_l J_{l-1}(x)``, ``J_0 = I``, ``J_l = diag(z_l > 0) W_l J_{l-1}``. This is exactly
    the Euclidean distance from ``x`` to the boundary of its activation region ``R`` (the set of
    inputs with ``x``'s pattern ``s``). Why: fix ``s`` and let ``A_{l,i}(y) = z_{l,i}(x) +
    ∇_x z_{l,i}(x)·(y − x)``, the affine map that ``z_{l,i}`` equals on ``R`` (``J`` only depends on
    the pattern). By induction over layers, ``y`` has pattern ``s`` iff every ``A_{l,i}(y)`` has the
    sign ``s`` prescribes: if layers ``< l`` agree, layer ``l``'s input at ``y`` is the affine
    extension, so ``z_l(y) = A_l(y)``. Hence ``R`` is an intersection of half-spaces -- a convex
    polytope -- and a ball ``B(x, r)`` lies in ``R`` iff it lies in every half-space, i.e. iff ``r``
    is at most every distance ``|A_{l,i}(x)| / ‖∇A_{l,i}‖ = |z_{l,i}(x)| / ‖∇_x z_{l,i}(x)‖``. The
    minimum over units is therefore the largest such ``r``: the distance to ``∂R``. (Redundant
    half-spaces are never closer than ``∂R``, so they cannot lower the minimum.) A unit whose input
    gradient is exactly zero is constant on ``R`` -- its half-space is all of space -- so it never
    bounds the region and is skipped (distance ``+inf``); the same holds for a zero weight row in
    the feature-space version.

* **Encoding distances** (E20): ``D_ij = ‖γ(p_i) − γ(p_j)‖₂`` with ``torch.cdist`` (not a double
  loop: B30), and the encoding Gram matrix ``G_ij = ⟨γ(p_i), γ(p_j)⟩`` (§8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int
from specbias.errors import ConfigError
from specbias.models import MLP

# ---------------------------------------------------------------------------- parameter norms


def spectral_norms(model: MLP) -> np.ndarray:
    """``σ_max(W_l)`` of every linear layer, output layer included, biases excluded: ``(n_layers,)``."""
    with torch.no_grad():
        norms = [torch.linalg.matrix_norm(layer.weight.double(), ord=2) for layer in model.layers]
        return torch.stack(norms).cpu().numpy()


def norm_product(norms: np.ndarray) -> float:
    """``Π_l σ_max(W_l)``: an upper bound on the Lipschitz constant of a ReLU MLP."""
    return float(np.prod(np.asarray(norms, dtype=np.float64)))


# ---------------------------------------------------------------------------- hyperplane angles


def _row_cosines(w: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = w / norms[:, None]  # zero rows become NaN rows, hence NaN cosines
    return np.clip(unit @ unit.T, -1.0, 1.0)


def hyperplane_cosines(model: MLP) -> list[np.ndarray]:
    """Per hidden layer, the ``W_l × W_l`` cosines between incoming weight rows (biases excluded).

    A zero row has no direction: its row and column of the matrix are NaN.
    """
    with torch.no_grad():
        return [_row_cosines(layer.weight.double().cpu().numpy()) for layer in model.layers[:-1]]


def _check_square(mats: list[np.ndarray]) -> None:
    if not mats:
        raise ConfigError("need at least one cosine matrix, got none")
    for k, m in enumerate(mats):
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ConfigError(f"cosine matrix {k} must be square, got shape {m.shape}")


def hyperplane_stats(mats: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer: ``mean_offdiag`` (mean off-diagonal cosine) and ``frac_positive`` (share ``> 0``).

    NaN cosines (zero rows) are left out of both; a layer with no finite off-diagonal cosine gives NaN.
    """
    _check_square(mats)
    mean, frac = [], []
    for m in mats:
        off = m[~np.eye(m.shape[0], dtype=bool)]
        off = off[~np.isnan(off)]
        mean.append(off.mean() if off.size else np.nan)
        frac.append((off > 0).mean() if off.size else np.nan)
    return {
        "mean_offdiag": np.array(mean, dtype=np.float64),
        "frac_positive": np.array(frac, dtype=np.float64),
    }


def hyperplane_matrix(mats: list[np.ndarray]) -> np.ndarray:
    """The paper's ``(Σ W_l) × (Σ W_l)`` matrix for plotting: per-layer blocks, cross-layer NaN (B25)."""
    _check_square(mats)
    sizes = [m.shape[0] for m in mats]
    out = np.full((sum(sizes), sum(sizes)), np.nan)
    start = 0
    for m, w in zip(mats, sizes):
        out[start : start + w, start : start + w] = m
        start += w
    return out


# ---------------------------------------------------------------------------- boundary distance


@dataclass(frozen=True)
class NearestBoundary:
    """Distance to the nearest boundary and the hidden unit attaining it (0-based layer and unit).

    ``layer`` and ``unit`` are ``-1`` where no unit bounds the region (distance ``+inf``).
    """

    distance: np.ndarray
    layer: np.ndarray
    unit: np.ndarray


def _left_multiply(w: torch.Tensor, jac: torch.Tensor) -> torch.Tensor:
    """``w @ jac[n]`` for every point ``n`` as one GEMM (``(c, W_{l-1}, d) → (c, W_l, d)``)."""
    c, k, d = jac.shape
    flat = jac.transpose(0, 1).reshape(k, c * d)
    return (w @ flat).reshape(w.shape[0], c, d).transpose(0, 1)


def _unit_distances(model: MLP, x: torch.Tensor, space: str) -> list[torch.Tensor]:
    """Per hidden layer, each unit's distance ``(c, W_l)``; ``+inf`` for units that never bound."""
    out = []
    jac = None  # J_{l-1}(x): (c, W_{l-1}, d_in); None stands for the identity J_0
    a = x
    for layer in model.layers[:-1]:
        z = layer(a)
        w = layer.weight
        if space == "feature":
            scale = torch.linalg.vector_norm(w, dim=1).expand_as(z)
        else:
            grad = w.expand(x.shape[0], *w.shape) if jac is None else _left_multiply(w, jac)
            scale = torch.linalg.vector_norm(grad, dim=2)
            jac = grad * (z > 0).unsqueeze(2)
        inf = torch.full_like(z, torch.inf)
        out.append(torch.where(scale > 0, z.abs() / scale, inf))
        a = torch.relu(z)
    return out


def boundary_distance_argmin(
    model: MLP, x: torch.Tensor, space: str = "input", chunk: int = 512
) -> NearestBoundary:
    """Boundary distance of every row of ``x`` in ``space`` (``"input"`` or ``"feature"``) and its unit.

    Runs in chunks of ``chunk`` points (the input-space version holds ``chunk × W × d_in`` Jacobians)
    on ``x``'s device, in the model's dtype; returns float64 / int64 NumPy arrays of shape ``(N,)``.
    """
    if space not in ("input", "feature"):
        raise ConfigError(f"boundary-distance space must be 'input' or 'feature', got {space!r}")
    check_int("chunk", chunk)
    if x.ndim != 2 or x.shape[1] != model.in_dim:
        raise ConfigError(f"inputs must have shape (N, {model.in_dim}), got {tuple(x.shape)}")
    x = x.to(dtype=model.layers[0].weight.dtype)
    widths = torch.tensor(model.hidden_sizes, device=x.device)
    offsets = torch.cumsum(widths, 0) - widths
    dists, layers, units = [], [], []
    with torch.no_grad():
        for s in range(0, x.shape[0], chunk):
            per_unit = torch.cat(_unit_distances(model, x[s : s + chunk], space), dim=1)
            d, flat = per_unit.min(dim=1)
            layer = torch.searchsorted(offsets, flat, right=True) - 1
            bounded = torch.isfinite(d)
            dists.append(d)
            layers.append(torch.where(bounded, layer, -1))
            units.append(torch.where(bounded, flat - offsets[layer], -1))
    if not dists:
        empty = np.zeros(0, dtype=np.int64)
        return NearestBoundary(np.zeros(0), empty, empty.copy())
    return NearestBoundary(
        distance=torch.cat(dists).double().cpu().numpy(),
        layer=torch.cat(layers).cpu().numpy().astype(np.int64),
        unit=torch.cat(units).cpu().numpy().astype(np.int64),
    )


def boundary_distance_feature(model: MLP, x: torch.Tensor, chunk: int = 512) -> np.ndarray:
    """The reference's ``min_{l,i} |z_{l,i}(x)| / ‖W_l[i,:]‖₂`` (layer ``l``'s input space): ``(N,)``."""
    return boundary_distance_argmin(model, x, "feature", chunk).distance


def boundary_distance_input(model: MLP, x: torch.Tensor, chunk: int = 512) -> np.ndarray:
    """``min_{l,i} |z_{l,i}(x)| / ‖∇_x z_{l,i}(x)‖₂``: distance to the region boundary in input space."""
    return boundary_distance_argmin(model, x, "input", chunk).distance


# ---------------------------------------------------------------------------- encoding distances


def _check_features(features: torch.Tensor) -> None:
    if features.ndim != 2:
        raise ConfigError(f"features must be a 2-D (N, d) tensor, got shape {tuple(features.shape)}")


def encoding_distance_matrix(features: torch.Tensor) -> torch.Tensor:
    """``D_ij = ‖γ(p_i) − γ(p_j)‖₂`` for the rows of ``features`` (``torch.cdist``, B30).

    The direct difference form is used, not the ``‖a‖² + ‖b‖² − 2⟨a, b⟩`` matmul shortcut, so ``D`` is
    exactly symmetric with an exactly zero diagonal and has no cancellation error.
    """
    _check_features(features)
    return torch.cdist(features, features, compute_mode="donot_use_mm_for_euclid_dist")


def encoding_gram(features: torch.Tensor) -> torch.Tensor:
    """``G_ij = ⟨γ(p_i), γ(p_j)⟩``: the encoding's Gram (linear-kernel) matrix (§8)."""
    _check_features(features)
    return features @ features.T
