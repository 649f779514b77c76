"""A certified lower bound on the regions of an encoded 2D domain (adaptive quadtree).

**Encoded 2D** (:func:`region_lower_bound_2d`). Region boundaries are curves, so the exact partition
is not polygonal; an adaptive quadtree gives a certified *lower bound*. A cell (half-sides
``h_x, h_y``, half-diagonal ``r``) is evaluated at its corners and centre ``c``; if all five share
pattern ``P`` and every unit satisfies ``|z(c)| > |∂_x z(c)|·h_x + |∂_y z(c)|·h_y + ½·M^P·r² + 10⁻¹¹``
(Taylor's theorem with ``M^P = Σ_k |c^P_k|·μ_k ≥ ‖∇²z^P‖₂``, where ``c^P`` are the unit's coefficients
over the features under pattern ``P`` and ``μ_k ≥ ‖∇²γ_k‖₂``: ``ω²`` for ``sin/cos(ω t_j)``,
``(2π‖B_k‖)²`` for RFF, 0 for raw features), then by induction over layers (layers ``< l`` keep
pattern ``P`` on the cell, so ``z_l = z^P_l`` there and keeps its sign) the whole cell lies in region
``P`` and it is *certified*; otherwise it is split in four, down to ``min_cell``. The bound is the
number of distinct patterns seen at sample points (each is realised), and every region it misses
lies entirely inside the unresolved cells (``unresolved_area``): a region meeting a certified cell
is the cell's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int, check_positive
from specbias.encodings import BasicEncoding, Encoding, GaussianRFF, NeRFPE, Raw, RestrictedPE
from specbias.errors import ConfigError
from specbias.metrics.patterns import count_regions
from specbias.metrics.regions.common import (
    _CHUNK_FLOATS,
    _SUPPORTED,
    _check_model,
    _hidden_weights,
    _model64,
    _pack_rows,
    _patterns_at,
    _unique_rows,
    _unpack_rows,
)
from specbias.metrics.regions.exact2d import _box
from specbias.models import MLP


def _feature_hessian_bounds(enc: Encoding) -> np.ndarray:
    """``‖∇²_t γ_k(t)‖₂ ≤ μ_k`` for every feature ``k`` (0 for features affine in ``t``)."""
    if isinstance(enc, Raw):
        return np.zeros(enc.out_dim)
    if isinstance(enc, NeRFPE):
        per = np.repeat((enc.base * 2.0 ** np.arange(enc.n_freqs)) ** 2, 2 * enc.in_dim)
        return np.concatenate((np.zeros(enc.in_dim if enc.include_input else 0), per))
    if isinstance(enc, GaussianRFF):
        sq = (2 * math.pi) ** 2 * np.sum(enc.B**2, axis=1)
        return np.concatenate((sq, sq))
    if isinstance(enc, BasicEncoding):
        return np.full(enc.out_dim, (2 * math.pi) ** 2)
    if isinstance(enc, RestrictedPE):
        return np.full(enc.out_dim, (enc.omega * math.pi) ** 2)
    raise ConfigError(f"{_SUPPORTED}, got {type(enc).__name__}")


@dataclass(frozen=True)
class RegionLowerBound2D:
    """A certified **lower bound** on the number of activation regions meeting a rectangle.

    ``lower_bound`` distinct patterns were seen at sample points, so at least that many regions
    (distinct patterns; connected components can only be more) meet the rectangle. Every region not
    counted lies entirely inside the unresolved cells, of total area ``unresolved_area``.
    ``certified`` holds the certified cells ``(x0, y0, width, height)``, each entirely inside the
    region whose packed pattern is the same row of ``certified_patterns``. ``truncated`` is true when
    the evaluation budget ran out before every cell was certified or at the minimum size.
    """

    lower_bound: int
    n_certified: int
    n_unresolved: int
    certified_area: float
    unresolved_area: float
    n_evaluations: int
    truncated: bool
    certified: np.ndarray
    certified_patterns: np.ndarray


def _curvature_table(layers, mu: np.ndarray, bits: np.ndarray, widths: list[int]) -> np.ndarray:
    """Per pattern (rows of boolean ``bits``, ``(U, Σ W)``): ``M^P_{l,i} = Σ_k |c^P_{l,i,k}| μ_k``, where
    ``c^P_l = W_l D_{l-1} ⋯ D_1 W_1`` are the unit's coefficients over the features under pattern ``P``."""
    offsets = np.cumsum([0, *widths])
    w1, _ = layers[0]
    out = np.empty(bits.shape, dtype=np.float64)
    out[:, : widths[0]] = np.abs(w1) @ mu
    keep = mu > 0
    if not keep.any():
        out[:] = 0.0
        return out
    w1k = w1[:, keep]
    step = max(1, _CHUNK_FLOATS // (max(widths) * w1k.shape[1]))
    for s0 in range(0, bits.shape[0], step):
        sl = slice(s0, s0 + step)
        c = np.broadcast_to(w1k, (bits[sl].shape[0], *w1k.shape))
        for li in range(1, len(layers)):
            w, _ = layers[li]
            c = np.matmul(w, bits[sl, offsets[li - 1] : offsets[li], None] * c)
            out[sl, offsets[li] : offsets[li + 1]] = np.abs(c) @ mu[keep]
    return out


def _feature_jacobian(enc: Encoding, t: np.ndarray) -> np.ndarray:
    """``∂γ_k/∂t_j`` at the rows of ``t`` (``(N, d)``), analytically: shape ``(d, N, F)``."""
    n, d = t.shape
    if isinstance(enc, Raw):
        return np.broadcast_to((enc.hi - enc.lo) * np.eye(d)[:, None, :], (d, n, d)).copy()
    if isinstance(enc, GaussianRFF):
        ang = 2 * math.pi * t @ enc.B.T  # (N, m)
        w = 2 * math.pi * enc.B.T[:, None, :]  # (d, 1, m)
        return np.concatenate((w * np.cos(ang)[None], -w * np.sin(ang)[None]), axis=2)
    if isinstance(enc, NeRFPE):
        scales = enc._scales()
        ang = t[:, None, :] * scales[None, :, None]  # (N, F, d)
        out = np.zeros((d, n, enc.n_freqs, d, 2))
        for j in range(d):
            out[j, :, :, j, 0] = scales * np.cos(ang[:, :, j])
            out[j, :, :, j, 1] = -scales * np.sin(ang[:, :, j])
        out = out.reshape(d, n, -1)
        if enc.include_input:
            out = np.concatenate((np.broadcast_to(np.eye(d)[:, None, :], (d, n, d)), out), axis=2)
        return out
    if isinstance(enc, BasicEncoding):
        ang = 2 * math.pi * t
        out = np.zeros((d, n, 2 * d))
        for j in range(d):
            out[j, :, j] = -2 * math.pi * np.sin(ang[:, j])
            out[j, :, d + j] = 2 * math.pi * np.cos(ang[:, j])
        return out
    if isinstance(enc, RestrictedPE):
        w = enc.omega * math.pi
        ang = w * t[:, None, :] + enc.phases()[None, :, None]  # (N, copies, d)
        out = np.zeros((d, n, enc.n_copies, d, 2))
        for j in range(d):
            out[j, :, :, j, 0] = w * np.cos(ang[:, :, j])
            out[j, :, :, j, 1] = -w * np.sin(ang[:, :, j])
        return out.reshape(d, n, -1)
    raise ConfigError(f"{_SUPPORTED}, got {type(enc).__name__}")


def _preacts_and_grads(layers, encoding: Encoding, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All hidden pre-activations ``(N, Σ W)`` at ``pts`` and their partial derivatives ``(2, N, Σ W)``
    (forward mode: ``∂z_1 = W_1 ∂γ``, ``∂z_l = W_l (D_{l-1} ⊙ ∂z_{l-1})``)."""
    a = encoding(torch.as_tensor(pts, dtype=torch.float64)).numpy()
    da = _feature_jacobian(encoding, pts)
    zs, dzs = [], []
    for w, b in layers:
        z = a @ w.T + b
        dz = da @ w.T
        on = z > 0
        zs.append(z), dzs.append(dz)
        a, da = z * on, dz * on
    return np.concatenate(zs, axis=1), np.concatenate(dzs, axis=2)


def _preacts(layers, encoding: Encoding, pts: np.ndarray) -> np.ndarray:
    """All hidden pre-activations ``(N, Σ W)`` at ``pts`` (float64 NumPy forward)."""
    a = encoding(torch.as_tensor(pts, dtype=torch.float64)).numpy()
    zs = []
    for w, b in layers:
        z = a @ w.T + b
        zs.append(z)
        a = np.maximum(z, 0.0)
    return np.concatenate(zs, axis=1)


@torch.no_grad()
def region_lower_bound_2d(
    model: MLP,
    encoding: Encoding,
    lo: tuple[float, float] = (0.0, 0.0),
    hi: tuple[float, float] = (1.0, 1.0),
    *,
    n0: int = 16,
    min_cell: float = 2.0**-10,
    max_evaluations: int = 4_000_000,
    extra_points: np.ndarray | None = None,
) -> RegionLowerBound2D:
    """Certified lower bound on the regions of ``model ∘ encoding`` in ``[lo, hi]`` by quadtree refinement.

    Starts from ``n0 × n0`` cells; a cell whose corners and centre share a pattern and pass the
    sign test of the module docstring is certified, any other cell is split in four until both its
    sides are at most ``min_cell`` times the rectangle's. ``extra_points`` (``(N, 2)`` coordinates,
    e.g. a grid) are evaluated too and their patterns counted, so the bound is at least their count.
    Works for every encoding, raw included. ``max_evaluations`` caps the number of network evaluations.
    """
    _check_model(model, encoding)
    if encoding.in_dim != 2:
        raise ConfigError(f"the 2D region bound needs a 2D encoding, got in_dim={encoding.in_dim}")
    check_int("initial cells per side", n0, 1)
    check_positive("minimum cell size", min_cell)
    check_int("evaluation budget", max_evaluations, 1)
    lo_, hi_ = _box(lo, hi)
    model64 = _model64(model)
    layers = _hidden_weights(model)
    widths = [w.shape[0] for w, _ in layers]
    mu = _feature_hessian_bounds(encoding)
    curv_cache: dict[bytes, np.ndarray] = {}
    side = hi_ - lo_
    seen: list[np.ndarray] = []
    if extra_points is not None:
        pts = np.asarray(extra_points, dtype=np.float64).reshape(-1, 2)
        seen.append(_unique_rows(_patterns_at(model64, encoding, pts).packed()))
    ii, jj = np.meshgrid(np.arange(n0), np.arange(n0), indexing="ij")
    h0 = side / n0
    cells = np.stack(
        (
            lo_[0] + ii.ravel() * h0[0],
            lo_[1] + jj.ravel() * h0[1],
            np.full(n0 * n0, h0[0]),
            np.full(n0 * n0, h0[1]),
        ),
        axis=1,
    )
    cert_cells, cert_pats = [], []
    n_unres, unres_area, n_eval, truncated = 0, 0.0, 0, False
    corner_x = np.array([0.0, 1.0, 0.0, 1.0])
    corner_y = np.array([0.0, 0.0, 1.0, 1.0])
    while cells.shape[0]:
        n_cells = cells.shape[0]
        if n_eval + 5 * n_cells > max_evaluations:
            truncated = True
            n_unres += n_cells
            unres_area += float(np.sum(cells[:, 2] * cells[:, 3]))
            break
        corners = np.stack(
            (
                cells[:, None, 0] + corner_x[None] * cells[:, None, 2],
                cells[:, None, 1] + corner_y[None] * cells[:, None, 3],
            ),
            axis=-1,
        ).reshape(-1, 2)
        centres = cells[:, :2] + 0.5 * cells[:, 2:]
        n_eval += 5 * n_cells
        z, grad = _preacts_and_grads(layers, encoding, centres)
        centre_pat = _pack_rows(z > 0, widths)
        corner_pat = _pack_rows(_preacts(layers, encoding, corners) > 0, widths).reshape(n_cells, 4, -1)
        seen.append(_unique_rows(np.concatenate((centre_pat, corner_pat.reshape(-1, centre_pat.shape[1])))))
        uniform = np.all(corner_pat == centre_pat[:, None], axis=(1, 2))
        done = np.zeros(n_cells, dtype=bool)
        idx = np.flatnonzero(uniform)
        if idx.size:
            uniq, inv = np.unique(centre_pat[idx], axis=0, return_inverse=True)
            inv = inv.ravel()
            keys = [row.tobytes() for row in uniq]
            missing = [u for u, key in enumerate(keys) if key not in curv_cache]
            if missing:
                table = _curvature_table(layers, mu, _unpack_rows(uniq[missing], widths), widths)
                for row, u in zip(table, missing):
                    curv_cache[keys[u]] = row
            curv = np.stack([curv_cache[key] for key in keys])[inv]
            half = 0.5 * cells[idx, 2:]  # (n, 2) half-sides
            r2 = np.sum(half**2, axis=1)
            spread = np.abs(grad[0, idx]) * half[:, :1] + np.abs(grad[1, idx]) * half[:, 1:]
            bound = spread + 0.5 * curv * r2[:, None]
            zc = z[idx]
            ok = np.all((np.abs(zc) > bound + 1e-11) | ((bound == 0) & (zc != 0)), axis=1)
            done[idx[ok]] = True
            cert_cells.append(cells[idx[ok]])
            cert_pats.append(centre_pat[idx[ok]])
        rest = cells[~done]
        small = np.maximum(rest[:, 2] / side[0], rest[:, 3] / side[1]) <= min_cell
        n_unres += int(small.sum())
        unres_area += float(np.sum(rest[small, 2] * rest[small, 3]))
        big = rest[~small]
        hx, hy = big[:, 2] / 2, big[:, 3] / 2
        cells = np.concatenate(
            [
                np.stack((big[:, 0] + dx * hx, big[:, 1] + dy * hy, hx, hy), axis=1)
                for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1))
            ]
        )
    nbytes = sum((w + 7) // 8 for w in widths)
    certified = np.concatenate(cert_cells) if cert_cells else np.zeros((0, 4))
    cpats = np.concatenate(cert_pats) if cert_pats else np.zeros((0, nbytes), dtype=np.uint8)
    return RegionLowerBound2D(
        lower_bound=count_regions(np.concatenate(seen)) if seen else 0,
        n_certified=int(certified.shape[0]),
        n_unresolved=n_unres,
        certified_area=float(np.sum(certified[:, 2] * certified[:, 3])),
        unresolved_area=unres_area,
        n_evaluations=n_eval,
        truncated=truncated,
        certified=certified,
        certified_patterns=cpats,
    )
