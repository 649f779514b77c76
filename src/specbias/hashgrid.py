"""Multiresolution hash encoding (Instant-NGP) for 1D and 2D inputs, in pure PyTorch.

Müller, Evans, Schied & Keller, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding", ACM TOG (SIGGRAPH) 2022, §3. ``L`` levels, each a table of at most ``T`` trainable
``F``-dimensional feature vectors; level ``l`` is a grid of resolution (eq. 2–3)

    N_l = ⌊N_min · b^l⌋,        b = exp((ln N_max − ln N_min)/(L − 1))  (the growth factor).

An input ``x ∈ [0, 1]^d`` is scaled to ``x_l = x·N_l``; its cell ``⌊x_l⌋`` has ``2^d`` corner vertices
``v ∈ {0..N_l}^d``. A vertex's table row is its dense index ``Σ_k v_k (N_l+1)^k`` when the level's
dense grid fits (``(N_l+1)^d ≤ T``: a 1:1 map, and the level only holds ``(N_l+1)^d`` rows), and
otherwise the spatial hash (eq. 4)

    h(v) = (⊕_k v_k π_k) mod T,        π = (1, 2654435761, 805459861),

in 32-bit unsigned arithmetic as in the paper's CUDA code. The level's feature is the ``d``-linear
interpolation of its corners' rows, ``y_l(x) = Σ_c w_c(x) T_l[r_c(x)]``, with
``w_c = Π_k (f_k if c_k else 1 − f_k)``, ``f = x_l − ⌊x_l⌋``; the encoding concatenates the levels,
``(N, L·F)``. Tables are initialised ``U(−10⁻⁴, 10⁻⁴)`` (§4), seeded.

The lookup is exposed (:meth:`HashGrid.lookup`: rows ``(N, L, 2^d)`` into the flat table and weights
``(N, L, 2^d)``), so that the sparse Gram identity of :mod:`specbias.metrics.gradients` can take
per-example gradient inner products over the table without forming per-example gradients:
``∂ℓ_i/∂T = Σ_c w_{ic} e_{r_{ic}} ⊗ g_{il}`` with ``g_{il} = ∂ℓ_i/∂y_l(x_i)``, hence

    ⟨∇_T ℓ_i, ∇_T ℓ_j⟩ = Σ_l (g_{il}·g_{jl}) Σ_{c,c′} w_{ic} w_{jc′} [r_{ic} = r_{jc′}],

which counts hash collisions (two corners of one point, or of two points, on one row) exactly.

Not covered: 3D inputs, the paper's per-level ``+0.5`` offset of tiny-cuda-nn's implementation (this
follows the paper's text), and the smoothstep interpolation variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from specbias._checks import check_int
from specbias.errors import ConfigError

PRIMES = (1, 2654435761, 805459861)
"""Instant-NGP's hash primes ``π_1, π_2, π_3`` (eq. 4)."""
INIT_SCALE = 1e-4
"""Table entries start ``U(−10⁻⁴, 10⁻⁴)`` (Müller et al. 2022, §4)."""


def growth_factor_for(base_resolution: int, finest_resolution: int, levels: int) -> float:
    """``b = exp((ln N_max − ln N_min)/(L − 1))`` (Müller et al. 2022, eq. 3)."""
    if levels < 2 or finest_resolution < base_resolution:
        raise ConfigError(
            f"need levels >= 2 and finest >= base resolution, got {levels}, {finest_resolution} < "
            f"{base_resolution}"
        )
    return math.exp((math.log(finest_resolution) - math.log(base_resolution)) / (levels - 1))


def level_resolutions(base_resolution: int, growth_factor: float, levels: int) -> list[int]:
    """``N_l = ⌊N_min · b^l⌋`` for ``l = 0..L−1`` (eq. 2; a 1e-9 guard against ``35.999…``)."""
    return [math.floor(base_resolution * growth_factor**level + 1e-9) for level in range(levels)]


class _Interpolate(torch.autograd.Function):
    """``out_m = Σ_c w_cm T[r_cm]`` for rows and weights ``(2^d, M)``: one gather forward, one
    ``scatter_add`` backward (autograd's ``embedding`` backward sorts the rows, and ``index_select``'s
    ``index_add`` is 2× slower than ``scatter_add`` on a CPU). ``generate_vmap_rule``: ``torch.func``
    (the gradient fallback) works through it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        feats = table.index_select(0, rows.reshape(-1)).reshape(*rows.shape, table.shape[1])
        return (weights[..., None] * feats).sum(0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None]:
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            src = (weights[..., None] * grad[None]).reshape(-1, table.shape[1])
            index = rows.reshape(-1, 1).expand(-1, table.shape[1])
            grad_table = torch.zeros_like(table).scatter_add(0, index, src)
        if ctx.needs_input_grad[2]:
            feats = table.index_select(0, rows.reshape(-1)).reshape(*rows.shape, table.shape[1])
            grad_weights = (feats * grad[None]).sum(-1)
        return grad_table, None, grad_weights


@dataclass(frozen=True)
class Lookup:
    """Every level's ``2^d`` corners: rows into the flat ``(Σ_l T_l, F)`` table (int64) and their
    d-linear weights, both ``(N, L, 2^d)`` (views of ``(2^d, L, N)`` storage: use as they are)."""

    rows: torch.Tensor
    weights: torch.Tensor


def _check(in_dim: int, levels: int, log2_table_size: int, features: int, base: int, growth: float) -> None:
    if in_dim not in (1, 2):
        raise ConfigError(f"HashGrid takes 1D or 2D inputs, got in_dim={in_dim}")
    for name, value, low in (
        ("levels", levels, 1),
        ("log2_table_size", log2_table_size, 1),
        ("features_per_level", features, 1),
        ("base_resolution", base, 1),
    ):
        check_int(f"HashGrid {name}", value, low)
    if log2_table_size > 24 or levels > 64:
        raise ConfigError(
            f"HashGrid needs log2_table_size <= 24 and levels <= 64, got {log2_table_size}, {levels}"
        )
    if not (math.isfinite(growth) and growth >= 1.0):
        raise ConfigError(f"HashGrid growth_factor must be >= 1, got {growth}")


def _combine(terms: torch.Tensor, op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Per-dimension corner terms ``(d, 2, L, N)`` (bit 0, bit 1) combined by ``op`` into
    ``(2,)*d + (L, N)``, ``[b_{d−1}, …, b_0] = op(terms[d−1, b_{d−1}], …, terms[0, b_0])``: corner
    ``c = Σ_k b_k 2^k`` once flattened. No ``out=`` or in-place ops: ``torch.func`` can batch it."""
    if terms.shape[0] == 1:
        return terms[0]
    return op(terms[1][:, None], terms[0][None])


class HashGrid(nn.Module):
    """Instant-NGP's multiresolution hash encoding of ``x ∈ [lo, hi]^d`` (``d`` = 1 or 2), ``(N, L·F)``.

    ``levels`` = L, ``log2_table_size`` = log₂ T (the paper's 14–24; 19 by default), ``features_per_level``
    = F, ``base_resolution`` = N_min, ``growth_factor`` = b (:func:`growth_factor_for` gives it from
    N_max), ``seed`` seeds the ``U(−10⁻⁴, 10⁻⁴)`` table init, ``domain`` = ``(lo, hi)`` (inputs are
    clamped to it). One parameter, ``table``, of shape ``(Σ_l T_l, F)`` with
    ``T_l = min(T, (N_l+1)^d)``; level ``l``'s rows start at ``offsets[l]`` (the hashed levels come
    first, at multiples of ``T``, so that a row is ``hash | offset``).
    """

    def __init__(
        self,
        in_dim: int,
        levels: int = 16,
        log2_table_size: int = 19,
        features_per_level: int = 2,
        base_resolution: int = 16,
        growth_factor: float = 1.5,
        seed: int = 0,
        domain: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        _check(in_dim, levels, log2_table_size, features_per_level, base_resolution, growth_factor)
        if not domain[1] > domain[0]:
            raise ConfigError(f"HashGrid domain must be (lo, hi) with lo < hi, got {domain}")
        self.in_dim, self.levels, self.features = in_dim, levels, features_per_level
        self.table_size = 2**log2_table_size
        self.domain = (float(domain[0]), float(domain[1]))
        self.resolutions = level_resolutions(base_resolution, growth_factor, levels)
        dense = [(res + 1) ** in_dim for res in self.resolutions]
        self.hashed = [v > self.table_size for v in dense]
        self.n_dense = self.hashed.index(True) if any(self.hashed) else levels  # hashed: a suffix
        n_hashed = levels - self.n_dense
        self.offsets = [self.table_size * n_hashed + sum(dense[:level]) for level in range(self.n_dense)]
        self.offsets += [self.table_size * j for j in range(n_hashed)]
        n_rows = self.table_size * n_hashed + sum(dense[: self.n_dense])
        gen = torch.Generator().manual_seed(seed)
        init = torch.rand(n_rows, features_per_level, generator=gen, dtype=torch.float64)
        self.table = nn.Parameter(((2 * init - 1) * INIT_SCALE).float())
        # per level and dimension: the multiplier of a vertex coordinate (dense stride or prime)
        # and the constant of dimension 0 (the level's row offset, added or XOR-ed)
        mult = [
            [(res + 1) ** k if level < self.n_dense else PRIMES[k] for k in range(in_dim)]
            for level, res in enumerate(self.resolutions)
        ]
        self.register_buffer("_res", torch.tensor(self.resolutions), persistent=False)
        self.register_buffer("_mult", torch.tensor(mult).T.contiguous(), persistent=False)  # (d, L)
        self.register_buffer("_offsets", torch.tensor(self.offsets), persistent=False)
        self.register_buffer("_first_dim", torch.tensor([1, 0]), persistent=False)
        mask = [self.table_size - 1 if hashed else -1 for hashed in self.hashed]
        self.register_buffer("_mask", torch.tensor(mask), persistent=False)

    @property
    def out_dim(self) -> int:
        """``L·F`` features per input."""
        return self.levels * self.features

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, levels={self.levels}, table_size={self.table_size}, "
            f"features={self.features}, resolutions={self.resolutions[0]}..{self.resolutions[-1]}, "
            f"hashed_levels={self.levels - self.n_dense}"
        )

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs mapped to ``[0, 1]^d`` (clamped), transposed to ``(d, N)``, in the table's dtype."""
        if x.ndim == 1 and self.in_dim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ConfigError(
                f"HashGrid(in_dim={self.in_dim}) needs inputs (N, {self.in_dim}), got {tuple(x.shape)}"
            )
        lo, hi = self.domain
        return ((x.T.to(self.table.dtype) - lo) / (hi - lo)).clamp(0.0, 1.0)

    def lookup(self, x: torch.Tensor, start: int = 0) -> Lookup:
        """Rows and d-linear weights of the ``2^d`` corners of levels ``start..L−1``, all at once.

        ``x``: ``(N, d)`` (or ``(N,)`` for ``d = 1``); weights in the table's dtype.
        """
        unit = self._unit(x)
        d, n, nd = self.in_dim, unit.shape[1], max(self.n_dense - start, 0)
        res, mult = self._res[start:], self._mult[:, start:]
        levels = res.shape[0]
        # layout (d, L, N): elementwise work runs along the points, contiguous
        pos = unit[:, None, :] * res[None, :, None].to(unit.dtype)
        cell = pos.long().clamp(max=res[None, :, None] - 1)  # floor (pos >= 0); x = 1: last cell
        frac = pos - cell.to(pos.dtype)
        # per dimension k and bit b: (v_k + b)·m_k, m_k the dense stride (N_l+1)^k or the prime π_k,
        # mod T where hashed ((a ^ b) mod T = (a mod T) ^ (b mod T) for T = 2^k), then the level's
        # offset at k = 0 (the hashed levels' offsets are multiples of T: + is XOR there)
        t0 = cell * mult[:, :, None]
        terms = torch.stack((t0, t0 + mult[:, :, None]), dim=1) & self._mask[start:, None]
        terms = terms + self._offsets[start:, None] * self._first_dim[:d, None, None, None]
        dense = _combine(terms[:, :, :nd], torch.add)
        hashed = _combine(terms[:, :, nd:], torch.bitwise_xor)
        rows = torch.cat((dense, hashed), dim=-2)
        weights = _combine(torch.stack((1.0 - frac, frac), dim=1), torch.mul)  # differentiable in x
        flat = (2**d, levels, n)
        return Lookup(rows.view(flat).permute(2, 1, 0), weights.reshape(flat).permute(2, 1, 0))

    def interpolate(self, lookup: Lookup) -> torch.Tensor:
        """``y_l = Σ_c w_c T[r_c]`` per looked-up level, concatenated: ``(N, L′·F)``."""
        rows, weights = lookup.rows.permute(2, 1, 0), lookup.weights.permute(2, 1, 0)
        corners, levels, n = rows.shape
        out = _Interpolate.apply(self.table, rows.reshape(corners, -1), weights.reshape(corners, -1))
        return out.view(levels, n, self.features).permute(1, 0, 2).reshape(n, levels * self.features)

    def _dense_level(self, level: int, grid: torch.Tensor) -> torch.Tensor:
        """A dense level by ``grid_sample`` (bilinear, ``align_corners=True``) on its rows viewed as an
        image ``(1, F, H, W)``, row ``v_0 + v_1 (N_l+1)`` at pixel ``(v_1, v_0)``: ``(N, F)``."""
        side = self.resolutions[level] + 1
        height = side if self.in_dim == 2 else 1
        rows = self.table[self.offsets[level] : self.offsets[level] + side * height]
        image = rows.view(height, side, self.features).permute(2, 0, 1)[None]
        return nn.functional.grid_sample(image, grid, mode="bilinear", align_corners=True)[0, :, 0].T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, L·F)``: dense levels by ``grid_sample`` (the same d-linear interpolation as
        :meth:`interpolate`, fused), hashed levels by :meth:`lookup` and :meth:`interpolate`."""
        unit = self._unit(x)
        coords = unit * 2 - 1 if self.in_dim == 2 else torch.cat((unit * 2 - 1, torch.zeros_like(unit)))
        grid = coords.T[None, None]  # (1, 1, N, 2): (x, y) = (dimension 0, dimension 1)
        parts = [self._dense_level(level, grid) for level in range(self.n_dense)]
        if self.n_dense < self.levels:
            parts.append(self.interpolate(self.lookup(x, self.n_dense)))
        return torch.cat(parts, dim=1)
