"""Exact activation-region geometry: 1D pieces along segments, 2D polygonal partitions, certified bounds.

An activation region is a set of inputs sharing one pattern ``s(x) = [z_{l,i}(x) > 0]`` over every hidden
unit (:mod:`specbias.metrics.patterns`). Grid sampling counts distinct patterns at grid points, a lower
bound capped at the number of points. This module computes the regions themselves, in float64.

**Exact 1D** (:func:`exact_regions_1d`). Along the segment ``t(s) = a + s·(b − a)``, ``s ∈ [0, 1]``
(``a, b ∈ R^d``: a 1D domain or a line through a 2D one), every supported encoding is a linear
combination of the basis ``φ(s) = [1, s, cos(ν_k s), sin(ν_k s)]_k`` (the segment's angular
frequencies ``ν_k``: ``base·2^l·Δ_j`` for NeRF PE, ``2π B_k·Δ`` for RFF, none for raw input;
``Δ = b − a``). Marching layer by layer: on a piece where layers ``< l`` keep one pattern ``D``,
``z_l(s) = C_l φ(s)`` with ``C_1 = W_1 M + b_1 e_1`` and ``C_{l+1} = W_{l+1} (D_l ⊙ C_l) + b_{l+1} e_1``
(``M`` maps the basis to the encoding's features). Each unit's ``p(s) = c·φ(s)`` is a trigonometric
polynomial (affine for raw input); the piece is split at its real roots, found by certified
subdivision (below), and the sub-pieces' layer-``l`` bits are the signs of ``p`` at their midpoints
(read at 30 % of the piece instead where ``|p(mid)| < 10⁻¹²``, e.g. at a tangency). Neighbouring
pieces differ in one unit, so their next-layer coefficients differ by a rank-one term; ``C_{l+1}`` is
formed by a full product every 32 pieces (and after any seam that is not rank-one) and by adding
those terms in between (so it matches the full product to ~32 ulps). This is the line marching of
Gamba et al. (AISTATS 2022, ``magamba/linear-regions``) and of ``regioncam``'s ``Regioncam1D``,
extended from piecewise-linear nets to encoded inputs, which no public tool handles
(``shared/research/anchors.md`` §2.3-2.5, §4 item 5).

*Certification* (per piece ``[u, v]``, width ``w``, and unit). With ``A_k = √(α_k² + β_k²)`` the
amplitude of frequency ``ν_k``, ``L₁ = |c_s| + Σ_k A_k ν_k ≥ max|p'|`` and ``L₂ = Σ_k A_k ν_k² ≥ max|p''|``.
An interval is certified *root-free* when ``|p(u)| + |p(v)| > L₁ w + 2δ`` (a root ``r`` would need
``|p(u)| ≤ L₁(r − u)`` and ``|p(v)| ≤ L₁(v − r)``), and *monotone* when ``|p'(u)| + |p'(v)| > L₂ w + 2δ'``
(the same argument for ``p'``); a monotone interval holds exactly one root if ``p(u)·p(v) < 0`` and
none otherwise, and the root is located by bracketed (safeguarded) Newton to a few ulps. Other
intervals are bisected. ``δ = 4ε(n_basis + ν_max + 2)·‖c‖₁`` and ``δ' = 4ε(n_basis + ν_max + 2)·L₁``
(``ε = 2⁻⁵²``) bound the float64 evaluation error of ``p`` and ``p'``. An interval narrower than ``tol``
(default ``1e-13`` in ``s``) that is still undecided is *unresolved*: if ``p`` changes sign across it an
odd number of roots lies inside and one breakpoint is placed at its midpoint; otherwise it is
dropped (a tangency, or an even number of roots closer together than ``tol``). Guarantee: when
``Regions1D.n_unresolved == 0`` the breakpoints are exactly the sign changes of every unit's
pre-activation along the segment (each to a few ulps), for the trigonometric polynomials with the
float64 coefficients ``C_l`` computed here, except roots within ``δ/|p'|`` of a breakpoint of an
earlier layer, whose sign test at that end point cannot be trusted (in float64 they coincide with
it). The piece count is then exact, not a bound. Raw input is the trivial case (``L₂ = 0``: every
interval is monotone, and the regula falsi start is the exact root). A tangency is not split but is
reported in ``n_unresolved``.

*Merging.* A new breakpoint is a sign change of some unit, so in exact arithmetic adjacent pieces
always differ in that unit's bit. Equal adjacent patterns can only come from degenerate input (two
roots of one unit rounding to the same float), so a final pass merges them and counts the merges
(``n_merged``, 0 on every net tested). Non-adjacent pieces may share a pattern under an encoding
(the curve ``γ(t(s))`` can leave and re-enter a convex region of feature space), so
``n_pieces ≥ n_distinct``; for raw input regions are convex and ``n_pieces == n_distinct``.

**Validation.** :func:`dense_region_count_1d` is the sampling count (patterns at ``n`` equally spaced
points, changes + 1); :func:`missed_pieces` lists the exact pieces containing no sample point.

**Exact 2D, raw input** (:func:`exact_partition_2d`). Within a convex polygon of fixed earlier pattern
every layer-``l`` pre-activation is affine in ``(x, y)``, so the polygon is split along each unit's zero
line in turn (splitting keeps convexity and counter-clockwise order), as SplineCam (Humayun et al.,
CVPR 2023) and ``regioncam`` (twanvl) do; all polygons are split by one unit at a time, vectorised.
*Tolerance:* a vertex within distance ``tol·diam`` of the zero line (default ``1e-10`` of the rectangle's
diameter) is taken to lie on it, so no sliver thinner than that is created. Per region: polygon,
pattern, area (shoelace), centroid and inradius (the Chebyshev radius ``max r`` s.t. ``n_j·x + r ≤ h_j``
over the edges; solved exactly by enumerating the LP's vertices -- every triple of edge constraints --
or with ``scipy.optimize.linprog`` HiGHS, :func:`polygon_inradii`).

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

**Grid vs exact** (:func:`grid_vs_exact_1d`, :func:`grid_vs_exact_2d`): the paper's grid count
(:func:`~specbias.metrics.patterns.count_regions`) next to the exact count (or the certified lower
bound), with ``saturated`` when every grid point is its own region.

**Region density** (:func:`piece_density`): exact breakpoints per unit length in sliding windows along a
segment, where the regions are (X4 compares it with the target's local frequency).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from specbias.encodings import BasicEncoding, Encoding, GaussianRFF, NeRFPE, Raw, RestrictedPE
from specbias.errors import ConfigError
from specbias.metrics.patterns import Patterns, activation_patterns, count_regions
from specbias.models import MLP

_EPS = float(np.finfo(np.float64).eps)
_SUPPORTED = "exact regions support Raw, NeRFPE, GaussianRFF, BasicEncoding and RestrictedPE encodings"
_CHUNK_FLOATS = 1 << 22  # per-chunk float64 working set (32 MiB) for coefficient tensors

# ---------------------------------------------------------------------------- shared helpers


def _hidden_weights(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W_l, b_l)`` of every hidden layer as float64 NumPy arrays (the output layer is excluded)."""
    with torch.no_grad():
        return [
            (layer.weight.detach().double().cpu().numpy(), layer.bias.detach().double().cpu().numpy())
            for layer in model.layers[:-1]
        ]


def _model64(model: MLP) -> MLP:
    """The model itself if it is float64 on the CPU, else a float64 CPU copy (the same function)."""
    w = model.layers[0].weight
    if w.dtype == torch.float64 and w.device.type == "cpu":
        return model
    return copy.deepcopy(model).double().cpu()


def _check_model(model: MLP, encoding: Encoding) -> None:
    if model.in_dim != encoding.out_dim:
        raise ConfigError(
            f"model input dimension {model.in_dim} does not match the encoding's {encoding.out_dim} features"
        )


def _point(value: float | np.ndarray, in_dim: int, name: str) -> np.ndarray:
    p = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if p.shape != (in_dim,) or not np.all(np.isfinite(p)):
        raise ConfigError(f"segment end {name} must be {in_dim} finite number(s), got {value!r}")
    return p


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _check_count(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


@torch.no_grad()
def _patterns_at(model64: MLP, encoding: Encoding, t: np.ndarray) -> Patterns:
    feats = encoding(torch.as_tensor(t, dtype=torch.float64))
    return activation_patterns(model64, feats)


def _unique_rows(packed: np.ndarray) -> np.ndarray:
    """The distinct rows of a packed pattern matrix (byte-string view, as ``count_regions``)."""
    packed = np.ascontiguousarray(packed)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return np.unique(rows).view(np.uint8).reshape(-1, packed.shape[1])


def _pack_rows(bits: np.ndarray, widths: list[int]) -> np.ndarray:
    """A boolean ``(N, Σ W)`` matrix packed per layer, layers side by side (``Patterns.packed`` layout)."""
    offsets = np.cumsum([0, *widths])
    return np.concatenate([np.packbits(bits[:, a:b], axis=1) for a, b in itertools.pairwise(offsets)], axis=1)


def _pack_layers(bits: np.ndarray, widths: list[int]) -> Patterns:
    """A boolean ``(N, Σ W)`` matrix as :class:`Patterns` (one packed block per layer)."""
    offsets = np.cumsum([0, *widths])
    layers = [np.packbits(bits[:, a:b], axis=1) for a, b in itertools.pairwise(offsets)]
    return Patterns(layers=layers, widths=list(widths))


# ---------------------------------------------------------------------------- encodings along a segment


@dataclass(frozen=True)
class _SegmentBasis:
    """``features(s) = M @ φ(s)`` with ``φ(s) = [1, s, cos(ν s), sin(ν s)]`` (``ν`` distinct, > 0)."""

    nu: np.ndarray  # (K,)
    M: np.ndarray  # (F, 2 + 2K)

    @property
    def size(self) -> int:
        return 2 + 2 * self.nu.size


def _basis(s: np.ndarray, nu: np.ndarray) -> np.ndarray:
    ang = s[:, None] * nu[None, :]
    return np.concatenate((np.ones((s.size, 1)), s[:, None], np.cos(ang), np.sin(ang)), axis=1)


def _dbasis(s: np.ndarray, nu: np.ndarray) -> np.ndarray:
    ang = s[:, None] * nu[None, :]
    return np.concatenate(
        (np.zeros((s.size, 1)), np.ones((s.size, 1)), -nu * np.sin(ang), nu * np.cos(ang)), axis=1
    )


def _feature_terms(enc: Encoding, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each feature along ``t = a + s·d`` as ``p + q·s + α cos(ν s) + β sin(ν s)``: arrays ``p, q, α, β, ν``
    (in feature order)."""
    parts: list[tuple[np.ndarray, ...]] = []

    def linear(p, q) -> None:
        p, q = np.atleast_1d(np.asarray(p, float)), np.atleast_1d(np.asarray(q, float))
        zero = np.zeros(p.size)
        parts.append((p, q, zero, zero, zero))

    def sinusoid(phase, nu, kind: str) -> None:
        """``sin(phase + ν s)`` (``kind="sin"``) or ``cos(phase + ν s)``, elementwise."""
        phase, nu = np.atleast_1d(np.asarray(phase, float)), np.atleast_1d(np.asarray(nu, float))
        sp, cp = np.sin(phase), np.cos(phase)
        alpha, beta = (sp, cp) if kind == "sin" else (cp, -sp)
        zero = np.zeros(phase.size)
        parts.append((zero, zero, alpha, beta, nu))

    if isinstance(enc, Raw):
        linear(enc.lo + (enc.hi - enc.lo) * a, (enc.hi - enc.lo) * d)
    elif isinstance(enc, NeRFPE):
        if enc.include_input:
            linear(a, d)
        # feature order: octave, coordinate, (sin, cos)
        for phase, nu in zip(np.outer(enc._scales(), a).ravel(), np.outer(enc._scales(), d).ravel()):
            sinusoid(phase, nu, "sin")
            sinusoid(phase, nu, "cos")
    elif isinstance(enc, GaussianRFF):
        phase, nu = 2 * math.pi * enc.B @ a, 2 * math.pi * enc.B @ d
        sinusoid(phase, nu, "sin")
        sinusoid(phase, nu, "cos")
    elif isinstance(enc, BasicEncoding):
        sinusoid(2 * math.pi * a, 2 * math.pi * d, "cos")
        sinusoid(2 * math.pi * a, 2 * math.pi * d, "sin")
    elif isinstance(enc, RestrictedPE):
        for phi in enc.phases():
            for j in range(enc.in_dim):
                phase, nu = enc.omega * math.pi * a[j] + phi, enc.omega * math.pi * d[j]
                sinusoid(phase, nu, "sin")
                sinusoid(phase, nu, "cos")
    else:
        raise ConfigError(f"{_SUPPORTED}, got {type(enc).__name__}")
    return tuple(np.concatenate(column) for column in zip(*parts))


def _segment_basis(enc: Encoding, a: np.ndarray, b: np.ndarray) -> _SegmentBasis:
    p, q, alpha, beta, nu = _feature_terms(enc, a, b - a)
    beta = np.where(nu < 0, -beta, beta)  # sin(-|ν|s) = -sin(|ν|s)
    nu = np.abs(nu)
    p = p + np.where(nu == 0, alpha, 0.0)  # cos(0) = 1, sin(0) = 0
    trig = nu > 0
    freqs, inverse = np.unique(nu[trig], return_inverse=True)
    k = freqs.size
    m = np.zeros((p.size, 2 + 2 * k))
    m[:, 0], m[:, 1] = p, q
    rows = np.flatnonzero(trig)
    m[rows, 2 + inverse] = alpha[trig]
    m[rows, 2 + k + inverse] = beta[trig]
    basis = _SegmentBasis(nu=freqs, M=m)
    # self-check against the encoding itself (guards against a feature-order mismatch)
    s = np.array([0.0, 0.173, 0.5, 0.911, 1.0])
    t = a[None, :] + s[:, None] * (b - a)[None, :]
    want = enc(torch.as_tensor(t, dtype=torch.float64)).numpy()
    got = _basis(s, freqs) @ m.T
    if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
        raise RuntimeError(f"internal error: segment basis of {type(enc).__name__} does not match it")
    return basis


# ---------------------------------------------------------------------------- certified 1D roots


def _bounds(c: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For coefficients ``c`` of shape ``(P, n_basis, H)``: ``L₁ ≥ max|p'|``, ``L₂ ≥ max|p''|`` and the
    evaluation-error bounds ``δ, δ'``, each ``(P, H)`` (``‖c‖₁ ≤ |c_1| + |c_s| + √2 Σ_k A_k``)."""
    k = nu.size
    lin = np.abs(c[:, 0]) + np.abs(c[:, 1])
    scale = 4 * _EPS * (c.shape[1] + (nu.max() if k else 0.0) + 2)
    if k == 0:
        l1 = np.abs(c[:, 1])
        return l1, np.zeros_like(l1), scale * lin, scale * l1
    amp = np.square(c[:, 2 : 2 + k])
    amp += np.square(c[:, 2 + k :])
    np.sqrt(amp, out=amp)
    l1 = np.abs(c[:, 1]) + np.einsum("pkh,k->ph", amp, nu)
    l2 = np.einsum("pkh,k->ph", amp, nu * nu)
    norm1 = lin + math.sqrt(2) * amp.sum(axis=1)
    return l1, l2, scale * norm1, scale * l1


def _rowdot(c: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.einsum("ik,ik->i", c, phi)


def _newton(
    c: np.ndarray, lo: np.ndarray, hi: np.ndarray, pl: np.ndarray, ph: np.ndarray, nu: np.ndarray
) -> np.ndarray:
    """Root of each monotone ``c_i·φ`` bracketed in ``[lo_i, hi_i]`` (``p(lo)·p(hi) < 0``), by Newton's
    method safeguarded with bisection, to within a few ulps."""
    lo, hi = lo.copy(), hi.copy()
    x = lo - pl * (hi - lo) / (ph - pl)  # regula falsi start: exact for affine p
    x = np.clip(np.where(np.isfinite(x), x, 0.5 * (lo + hi)), lo, hi)
    sign_lo = np.sign(pl)
    out = x.copy()
    active = np.arange(x.size)
    for _ in range(200):
        if active.size == 0:
            break
        ca, xa = c[active], x[active]
        fx = _rowdot(ca, _basis(xa, nu))
        dfx = _rowdot(ca, _dbasis(xa, nu))
        same = np.sign(fx) == sign_lo[active]
        lo_a = np.where(same, xa, lo[active])
        hi_a = np.where(same, hi[active], xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - fx / dfx
        bad = ~np.isfinite(xn) | (xn < lo_a) | (xn > hi_a)
        xn = np.where(bad, 0.5 * (lo_a + hi_a), xn)
        ulp = 2 * _EPS * np.maximum(np.abs(xa), _EPS)
        done = (fx == 0) | (np.abs(xn - xa) <= ulp) | (hi_a - lo_a <= ulp)
        out[active] = np.where(fx == 0, xa, xn)
        lo[active], hi[active], x[active] = lo_a, hi_a, xn
        active = active[~done]
    return out


def _piece_roots(c: np.ndarray, knots: np.ndarray, nu: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    """All certified sign changes of ``C[p, :, h]·φ(s)`` inside piece ``p = (knots[p], knots[p+1])``.

    Returns the roots (any order) and the number of unresolved intervals narrower than ``tol``.
    """
    n_pieces, _, n_units = c.shape
    phi = _basis(knots, nu)
    dphi = _dbasis(knots, nu)
    l1, l2, dl, dl1 = (x.ravel() for x in _bounds(c, nu))
    pu = np.einsum("pkh,pk->ph", c, phi[:-1]).ravel()
    pv = np.einsum("pkh,pk->ph", c, phi[1:]).ravel()
    du = np.einsum("pkh,pk->ph", c, dphi[:-1]).ravel()
    dv = np.einsum("pkh,pk->ph", c, dphi[1:]).ravel()
    q = np.arange(n_pieces * n_units)
    u = np.repeat(knots[:-1], n_units)
    v = np.repeat(knots[1:], n_units)
    roots, unresolved = [], 0
    br_q, br_u, br_v, br_pu, br_pv = [], [], [], [], []
    while q.size:
        w = v - u
        free = (np.abs(pu) + np.abs(pv) - 2 * dl[q] > l1[q] * w) | (l1[q] == 0)
        mono = ~free & (np.abs(du) + np.abs(dv) - 2 * dl1[q] > l2[q] * w)
        change = ((pu > 0) & (pv < 0)) | ((pu < 0) & (pv > 0))
        bracket = mono & change
        for lst, arr in zip((br_q, br_u, br_v, br_pu, br_pv), (q, u, v, pu, pv)):
            lst.append(arr[bracket])
        rest = ~free & ~mono
        small = rest & (w <= tol)
        unresolved += int(small.sum())
        roots.append(0.5 * (u + v)[small & change])
        split = np.flatnonzero(rest & (w > tol))
        if split.size == 0:
            break
        qs, us, vs = q[split], u[split], v[split]
        m = 0.5 * (us + vs)
        cq = c[qs // n_units, :, qs % n_units]
        pm, dm = _rowdot(cq, _basis(m, nu)), _rowdot(cq, _dbasis(m, nu))
        q = np.concatenate((qs, qs))
        u, v = np.concatenate((us, m)), np.concatenate((m, vs))
        pu, pv = np.concatenate((pu[split], pm)), np.concatenate((pm, pv[split]))
        du, dv = np.concatenate((du[split], dm)), np.concatenate((dm, dv[split]))
    bq = np.concatenate(br_q)
    if bq.size:
        bu, bv = np.concatenate(br_u), np.concatenate(br_v)
        bpu, bpv = np.concatenate(br_pu), np.concatenate(br_pv)
        roots.append(_newton(c[bq // n_units, :, bq % n_units], bu, bv, bpu, bpv, nu))
    return np.concatenate(roots), unresolved


# ---------------------------------------------------------------------------- exact 1D regions


@dataclass(frozen=True)
class Regions1D:
    """Exact pieces of the segment ``t(s) = a + s·(b − a)``, ``s ∈ [0, 1]``.

    ``knots`` holds the ``n_pieces + 1`` sorted piece ends in ``s`` (``knots[0] = 0``, ``knots[-1] = 1``;
    the interior ones are the breakpoints), ``patterns`` one row per piece (all hidden layers,
    packed as in :mod:`specbias.metrics.patterns`). ``n_unresolved`` counts intervals narrower than the
    tolerance whose root count was not certified (0 means the count is exact); ``n_merged`` counts
    adjacent equal-pattern pieces merged (only degenerate input produces any).
    """

    a: np.ndarray
    b: np.ndarray
    knots: np.ndarray
    patterns: Patterns
    n_unresolved: int
    n_merged: int

    @property
    def n_pieces(self) -> int:
        """Number of pieces: what dense sampling along the segment counts (changes + 1) at best."""
        return int(self.knots.size - 1)

    @property
    def n_distinct(self) -> int:
        """Number of distinct patterns among the pieces (``== n_pieces`` for raw input)."""
        return count_regions(self.patterns.packed())

    @property
    def breakpoints(self) -> np.ndarray:
        """Interior piece ends in ``s``."""
        return self.knots[1:-1]

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.b - self.a))

    @property
    def widths(self) -> np.ndarray:
        """Piece lengths in input space (``Δs · ‖b − a‖``)."""
        return np.diff(self.knots) * self.length

    def midpoints(self) -> np.ndarray:
        """Piece midpoints in ``s``."""
        return 0.5 * (self.knots[:-1] + self.knots[1:])

    def points(self, s: np.ndarray) -> np.ndarray:
        """Input-space points ``a + s·(b − a)``: shape ``(len(s), d)``."""
        s = np.asarray(s, dtype=np.float64)
        return self.a[None, :] + s[:, None] * (self.b - self.a)[None, :]

    def locate(self, s: np.ndarray) -> np.ndarray:
        """Index of the piece holding each ``s`` (a knot belongs to the piece on its right)."""
        idx = np.searchsorted(self.knots, np.asarray(s, dtype=np.float64), side="right") - 1
        return np.clip(idx, 0, self.n_pieces - 1)


_RUN = 32  # at most this many rank-one updates between two full coefficient products


def _full_coef(w: np.ndarray, b: np.ndarray, bits: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``C_{l+1} = W (D ⊙ C_l) + b e_1`` with pieces-first layout ``(n, nb, H) → (n, nb, H')``: one GEMM."""
    n, nb, h = c.shape
    out = ((c * bits[:, None, :]).reshape(n * nb, h) @ w.T).reshape(n, nb, w.shape[0])
    out[:, 0, :] += b
    return out


def _next_coefs(w, b, bits, c, parent, seam_u, seam_r, seam_ok) -> np.ndarray:
    """``C_{l+1}`` of a contiguous run of pieces (layer-``l`` bits ``bits``, parents ``parent``).

    Neighbouring pieces differ in one unit's bit, so ``C_{l+1}[k] − C_{l+1}[k−1] = r_k ⊗ u_k`` (a rank-one
    seam, ``seam_ok``); full products are taken at the first piece, after every other seam and every
    ``_RUN`` pieces, and the pieces in between are reached by adding seams (error ≤ ``_RUN`` ulps).
    """
    n = bits.shape[0]
    anchor = ~seam_ok
    anchor[0] = True
    for _ in range(2):  # second pass adds the forced anchors that cap run lengths
        run = np.cumsum(anchor) - 1
        start = np.flatnonzero(anchor)
        pos = np.arange(n) - start[run]
        anchor = anchor | (pos % _RUN == 0)
    out = np.empty((n, c.shape[1], w.shape[0]))
    out[start] = _full_coef(w, b, bits[start], c[parent[start]])
    for p in range(1, int(pos.max()) + 1):
        idx = np.flatnonzero(pos == p)
        out[idx] = out[idx - 1] + seam_r[idx][:, :, None] * seam_u[idx][:, None, :]
    return out


def _seams(w_next, bits_l, parent, c, seam_u, seam_r, seam_ok):
    """Seams of the new pieces for layer ``l+1`` (see :func:`_next_coefs`).

    A fresh seam (both pieces in one parent) flips layer-``l`` unit ``j``: ``u = ±W_{l+1}[:, j]``,
    ``r = C_l[parent, :, j]``. An inherited seam (a parent's left seam, no layer-``l`` bit changing)
    moves one layer on: ``u ← W_{l+1}(D_l ⊙ u)``. Seams with several flips are marked not ok.
    """
    n = bits_l.shape[0]
    u = np.zeros((n, w_next.shape[0]))
    r = np.zeros((n, c.shape[1]))
    ok = np.zeros(n, dtype=bool)
    if n > 1:
        k = np.arange(1, n)
        flips = bits_l[1:] != bits_l[:-1]
        n_flips = flips.sum(axis=1)
        same = parent[1:] == parent[:-1]
        kf = k[same & (n_flips <= 1)]
        j = flips[kf - 1].argmax(axis=1)
        sign = bits_l[kf, j].astype(np.float64) - bits_l[kf - 1, j]
        u[kf] = sign[:, None] * w_next[:, j].T
        r[kf] = c[parent[kf], :, j]
        ok[kf] = True
        ki = k[~same & (n_flips == 0) & seam_ok[parent[1:]]]
        u[ki] = (bits_l[ki] * seam_u[parent[ki]]) @ w_next.T
        r[ki] = seam_r[parent[ki]]
        ok[ki] = True
    return u, r, ok


def _march(layers, layer, knots, c, bits_prev, seams, nu, tol):
    """Split pieces ``knots`` through layers ``layer, layer+1, …``; ``c`` is ``(P, n_basis, H_layer)`` and
    ``seams = (u, r, ok)`` relate each piece's coefficients to its left neighbour's."""
    roots, unresolved = _piece_roots(c, knots, nu, tol)
    new_knots = np.unique(np.concatenate((knots, roots)))
    mids = 0.5 * (new_knots[:-1] + new_knots[1:])
    parent = np.clip(np.searchsorted(knots, mids, side="right") - 1, 0, knots.size - 2)
    nb, n_units = c.shape[1], c.shape[2]
    step = max(1, _CHUNK_FLOATS // (n_units * nb))
    bits_l = np.empty((mids.size, n_units), dtype=bool)
    for s0 in range(0, mids.size, step):
        sl = slice(s0, s0 + step)
        z = np.einsum("pkh,pk->ph", c[parent[sl]], _basis(mids[sl], nu))
        bits_l[sl] = z > 0
        # a unit that vanishes at the midpoint (a tangency, or symmetric input) is read off elsewhere
        pk, hk = np.nonzero(np.abs(z) < 1e-12)
        if pk.size:
            k = pk + s0
            alt = new_knots[k] + 0.3 * (new_knots[k + 1] - new_knots[k])
            z_alt = _rowdot(c[parent[k], :, hk], _basis(alt, nu))
            bits_l[k, hk] = np.where(np.abs(z_alt) > np.abs(z[pk, hk]), z_alt, z[pk, hk]) > 0
    bits = [bp[parent] for bp in bits_prev] + [bits_l]
    if layer + 1 == len(layers):
        return new_knots, bits, unresolved
    w_next, b_next = layers[layer + 1]
    u, r, ok = _seams(w_next, bits_l, parent, c, *seams)
    step = max(1, _CHUNK_FLOATS // (max(n_units, w_next.shape[0]) * nb))
    parts_k, parts_b = [], []
    for s0 in range(0, mids.size, step):
        sl = slice(s0, s0 + step)
        c_next = _next_coefs(w_next, b_next, bits_l[sl], c, parent[sl], u[sl], r[sl], ok[sl])
        k, bb, un = _march(
            layers,
            layer + 1,
            new_knots[s0 : s0 + step + 1],
            c_next,
            [x[sl] for x in bits],
            (u[sl], r[sl], ok[sl]),
            nu,
            tol,
        )
        parts_k.append(k if not parts_k else k[1:])
        parts_b.append(bb)
        unresolved += un
    return (
        np.concatenate(parts_k),
        [np.concatenate([p[i] for p in parts_b]) for i in range(len(parts_b[0]))],
        unresolved,
    )


def exact_regions_1d(
    model: MLP,
    encoding: Encoding,
    a: float | np.ndarray = 0.0,
    b: float | np.ndarray = 1.0,
    *,
    tol: float = 1e-13,
) -> Regions1D:
    """Exact activation regions of ``model ∘ encoding`` along the segment from ``a`` to ``b`` (float64).

    ``a`` and ``b`` are points of the encoding's input space (scalars in 1D). Works for ``Raw``
    (piecewise linear: exact breakpoints by linear interpolation), ``NeRFPE`` (any ``n_freqs``, base,
    ``include_input``), ``GaussianRFF``, ``BasicEncoding`` and ``RestrictedPE`` (certified root finding
    of trigonometric polynomials; see the module docstring for what is guaranteed). ``tol`` is the
    width in ``s`` below which an interval is no longer subdivided.
    """
    _check_model(model, encoding)
    _check_positive("root tolerance", tol)
    a_, b_ = _point(a, encoding.in_dim, "a"), _point(b, encoding.in_dim, "b")
    if np.array_equal(a_, b_):
        raise ConfigError(f"segment ends must differ, got a = b = {a_.tolist()}")
    basis = _segment_basis(encoding, a_, b_)
    layers = _hidden_weights(model)
    w1, b1 = layers[0]
    c1 = (w1 @ basis.M).T[None].copy()  # (1, n_basis, H)
    c1[:, 0, :] += b1
    seams = (np.zeros((1, w1.shape[0])), np.zeros((1, basis.size)), np.zeros(1, dtype=bool))
    knots, bits, unresolved = _march(layers, 0, np.array([0.0, 1.0]), c1, [], seams, basis.nu, tol)
    full = np.concatenate(bits, axis=1)
    same = np.all(full[1:] == full[:-1], axis=1)
    if same.any():
        keep = np.concatenate(([True], ~same))
        full, knots = full[keep], np.concatenate((knots[:-1][keep], knots[-1:]))
    return Regions1D(
        a=a_,
        b=b_,
        knots=knots,
        patterns=_pack_layers(full, [w.shape[0] for w, _ in layers]),
        n_unresolved=unresolved,
        n_merged=int(same.sum()),
    )


# ---------------------------------------------------------------------------- sampling along a segment


@torch.no_grad()
def dense_region_count_1d(
    model: MLP,
    encoding: Encoding,
    a: float | np.ndarray = 0.0,
    b: float | np.ndarray = 1.0,
    n: int = 1_000_000,
    *,
    chunk: int = 1 << 16,
) -> int:
    """Sampling count: patterns at ``s_i = i/(n−1)``, ``i = 0..n−1``, changes between neighbours + 1.

    Float64, in chunks (memory independent of ``n``). A lower bound on the exact piece count
    (:func:`exact_regions_1d`); :func:`missed_pieces` says which pieces it cannot see.
    """
    _check_model(model, encoding)
    _check_count("number of samples", n, 2)
    _check_count("chunk", chunk, 1)
    a_, b_ = _point(a, encoding.in_dim, "a"), _point(b, encoding.in_dim, "b")
    model64 = _model64(model)
    changes, last = 0, None
    for s0 in range(0, n, chunk):
        s = np.arange(s0, min(n, s0 + chunk), dtype=np.float64) / (n - 1)
        packed = _patterns_at(model64, encoding, a_[None] + s[:, None] * (b_ - a_)[None]).packed()
        if last is not None:
            changes += int(np.any(packed[0] != last))
        changes += int(np.any(packed[1:] != packed[:-1], axis=1).sum())
        last = packed[-1]
    return changes + 1


def missed_pieces(regions: Regions1D, n: int) -> np.ndarray:
    """Indices of the exact pieces whose open interior holds none of the samples ``s_i = i/(n−1)``.

    These are the regions that :func:`dense_region_count_1d` with ``n`` points cannot see (each one
    lowers its count by one, or by two when its two neighbours share a pattern).
    """
    _check_count("number of samples", n, 2)
    lo, hi = regions.knots[:-1], regions.knots[1:]
    first = np.floor(lo * (n - 1))
    hit = np.zeros(lo.size, dtype=bool)
    for k in range(3):  # the first sample > lo is one of these, whatever the rounding
        i = first + k
        si = i / (n - 1)
        hit |= (si > lo) & (si < hi) & (i <= n - 1)
    return np.flatnonzero(~hit)


# ---------------------------------------------------------------------------- exact 2D partition


def _chebyshev_exact(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inradius and centre of ``G`` convex ccw polygons of ``k`` vertices each: ``(G, k, 2)``."""
    g, k, _ = polys.shape
    edge = np.roll(polys, -1, axis=1) - polys
    length = np.hypot(edge[..., 0], edge[..., 1])
    ok = length > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        normal = np.where(ok[..., None], np.stack((edge[..., 1], -edge[..., 0]), -1) / length[..., None], 0.0)
    h = np.where(ok, np.einsum("gkd,gkd->gk", normal, polys), np.inf)
    scale = np.abs(polys).max(axis=(1, 2)) + np.hypot(*np.ptp(polys, axis=1).T)
    triples = np.array(list(itertools.combinations(range(k), 3)))
    best_r = np.full(g, -np.inf)
    best_c = polys.mean(axis=1)
    step = max(1, (1 << 21) // (len(triples) * k))
    for s0 in range(0, g, step):
        n_ = normal[s0 : s0 + step][:, triples]  # (G, T, 3, 2)
        h_ = h[s0 : s0 + step][:, triples]  # (G, T, 3)
        a1, a2 = n_[..., 0], n_[..., 1]
        det = (
            a1[..., 0] * (a2[..., 1] - a2[..., 2])
            - a1[..., 1] * (a2[..., 0] - a2[..., 2])
            + a1[..., 2] * (a2[..., 0] - a2[..., 1])
        )
        hh = np.where(np.isfinite(h_), h_, 0.0)
        # Cramer's rule for [a1 a2 1] (x, y, r) = h
        dx = (
            hh[..., 0] * (a2[..., 1] - a2[..., 2])
            - hh[..., 1] * (a2[..., 0] - a2[..., 2])
            + hh[..., 2] * (a2[..., 0] - a2[..., 1])
        )
        dy = (
            a1[..., 0] * (hh[..., 1] - hh[..., 2])
            - a1[..., 1] * (hh[..., 0] - hh[..., 2])
            + a1[..., 2] * (hh[..., 0] - hh[..., 1])
        )
        dr = (
            a1[..., 0] * (a2[..., 1] * hh[..., 2] - a2[..., 2] * hh[..., 1])
            - a1[..., 1] * (a2[..., 0] * hh[..., 2] - a2[..., 2] * hh[..., 0])
            + a1[..., 2] * (a2[..., 0] * hh[..., 1] - a2[..., 1] * hh[..., 0])
        )
        valid = (np.abs(det) > 1e-12) & np.all(np.isfinite(h_), axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y, r = dx / det, dy / det, dr / det
        slack = (
            normal[s0 : s0 + step, None, :, 0] * x[..., None]
            + normal[s0 : s0 + step, None, :, 1] * y[..., None]
            + r[..., None]
            - h[s0 : s0 + step, None, :]
        )
        feas = valid & np.all(slack <= 1e-12 * scale[s0 : s0 + step, None, None], axis=-1) & (r >= 0)
        r = np.where(feas, r, -np.inf)
        j = np.argmax(r, axis=1)
        rows = np.arange(r.shape[0])
        best_r[s0 : s0 + step] = r[rows, j]
        found = np.isfinite(r[rows, j])
        best_c[s0 : s0 + step][found] = np.stack((x[rows, j], y[rows, j]), -1)[found]
    return np.maximum(best_r, 0.0), best_c


def polygon_inradii(
    vertices: np.ndarray, starts: np.ndarray, method: str = "exact"
) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev radius and centre of each convex ccw polygon ``vertices[starts[i]:starts[i+1]]``.

    ``method="exact"`` enumerates every triple of edge constraints (the LP ``max r`` s.t.
    ``n_j·x + r ≤ h_j`` attains its optimum at a vertex of its feasible set, where three constraints
    are tight), vectorised by vertex count; ``method="highs"`` solves the LP with
    ``scipy.optimize.linprog(method="highs")`` per polygon (slow; for validation).
    """
    if method not in ("exact", "highs"):
        raise ConfigError(f"inradius method must be 'exact' or 'highs', got {method!r}")
    counts = np.diff(starts)
    radii, centres = np.zeros(counts.size), np.zeros((counts.size, 2))
    if method == "highs":
        from scipy.optimize import linprog

        for i in range(counts.size):
            p = vertices[starts[i] : starts[i + 1]]
            e = np.roll(p, -1, axis=0) - p
            length = np.hypot(e[:, 0], e[:, 1])
            keep = length > 0
            nrm = np.stack((e[:, 1], -e[:, 0]), 1)[keep] / length[keep, None]
            a_ub = np.concatenate((nrm, np.ones((nrm.shape[0], 1))), axis=1)
            res = linprog(
                [0.0, 0.0, -1.0],
                A_ub=a_ub,
                b_ub=np.einsum("kd,kd->k", nrm, p[keep]),
                bounds=[(None, None), (None, None), (0, None)],
                method="highs",
            )
            radii[i], centres[i] = res.x[2], res.x[:2]
        return radii, centres
    for k in np.unique(counts):
        idx = np.flatnonzero(counts == k)
        polys = vertices[starts[idx][:, None] + np.arange(k)[None, :]]
        radii[idx], centres[idx] = _chebyshev_exact(polys)
    return radii, centres


@dataclass(frozen=True)
class Partition2D:
    """The exact activation-region partition of the rectangle ``[lo, hi]`` by a raw-coordinate net.

    Region ``i`` is the convex polygon ``vertices[starts[i]:starts[i+1]]`` (counter-clockwise), with
    pattern row ``i`` of ``patterns``, its ``areas[i]``, ``centroids[i]``, and Chebyshev ``inradii[i]``
    (centre ``centers[i]``; NaN when not computed). ``n_snapped`` counts polygon vertices taken to lie
    on a splitting line by the ``tol`` rule.
    """

    lo: np.ndarray
    hi: np.ndarray
    vertices: np.ndarray
    starts: np.ndarray
    patterns: Patterns
    areas: np.ndarray
    centroids: np.ndarray
    inradii: np.ndarray
    centers: np.ndarray
    n_snapped: int

    @property
    def n_regions(self) -> int:
        return int(self.starts.size - 1)

    def polygon(self, i: int) -> np.ndarray:
        return self.vertices[self.starts[i] : self.starts[i + 1]]


def _polygon_area_centroid(vertices: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nxt = np.arange(vertices.shape[0]) + 1
    nxt[starts[1:] - 1] = starts[:-1]
    ref = np.repeat(vertices[starts[:-1]], np.diff(starts), axis=0)  # shift for accuracy
    p, q = vertices - ref, vertices[nxt] - ref
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    area2 = np.add.reduceat(cross, starts[:-1])
    cx = np.add.reduceat((p[:, 0] + q[:, 0]) * cross, starts[:-1])
    cy = np.add.reduceat((p[:, 1] + q[:, 1]) * cross, starts[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        cen = np.stack((cx, cy), 1) / (3 * area2[:, None]) + vertices[starts[:-1]]
    return area2 / 2, cen


def _split_all(verts, starts, rid, bits, coef, unit: int, snap: float):
    """Split every polygon along unit ``unit``'s zero line; ``coef[rid]`` = ``(∂x, ∂y, const)``."""
    counts = np.diff(starts)
    n_poly = counts.size
    vp = np.repeat(np.arange(n_poly), counts)
    c = coef[rid]
    g = np.hypot(c[:, 0], c[:, 1])
    cv = c[vp]
    z = cv[:, 0] * verts[:, 0] + cv[:, 1] * verts[:, 1] + cv[:, 2]
    eps = (snap * g)[vp]
    pos, neg = z > eps, z < -eps
    has_pos = np.logical_or.reduceat(pos, starts[:-1])
    has_neg = np.logical_or.reduceat(neg, starts[:-1])
    split = has_pos & has_neg
    byte, mask = unit // 8, np.uint8(1 << (7 - unit % 8))
    bits[has_pos & ~split, byte] |= mask
    if not split.any():
        return verts, starts, rid, bits, 0
    sv = split[vp]
    nxt = np.arange(verts.shape[0]) + 1
    nxt[starts[1:] - 1] = starts[:-1]
    j = np.flatnonzero(sv)
    k = nxt[j]
    snapped = int(np.count_nonzero(~pos[j] & ~neg[j] & (z[j] != 0)))
    cross = (pos[j] & neg[k]) | (neg[j] & pos[k])
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(cross, z[j] / (z[j] - z[k]), 0.0)
    ip = verts[j] + lam[:, None] * (verts[k] - verts[j])
    pts = np.stack((verts[j], ip), axis=1)  # (n, 2 slots, 2)
    take_a = np.stack((~neg[j], cross), axis=1)
    take_b = np.stack((~pos[j], cross), axis=1)
    owner = vp[j]
    cnt_a = np.bincount(owner, weights=take_a.sum(1), minlength=n_poly)[split].astype(np.int64)
    cnt_b = np.bincount(owner, weights=take_b.sum(1), minlength=n_poly)[split].astype(np.int64)
    keep = ~split
    new_verts = np.concatenate((verts[~sv], pts[take_a], pts[take_b]))
    new_counts = np.concatenate((counts[keep], cnt_a, cnt_b))
    new_starts = np.concatenate(([0], np.cumsum(new_counts)))
    new_rid = np.concatenate((rid[keep], rid[split], rid[split]))
    bits_a = bits[split].copy()
    bits_a[:, byte] |= mask
    new_bits = np.concatenate((bits[keep], bits_a, bits[split]))
    return new_verts, new_starts, new_rid, new_bits, snapped


def _box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo_ = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi_ = np.asarray(hi, dtype=np.float64).reshape(-1)
    if lo_.shape != (2,) or hi_.shape != (2,) or not np.all(np.isfinite(np.r_[lo_, hi_])):
        raise ConfigError(f"rectangle corners must be two finite (x, y) pairs, got {lo!r}, {hi!r}")
    if np.any(hi_ <= lo_):
        raise ConfigError(f"rectangle needs lo < hi in both coordinates, got {lo_.tolist()}, {hi_.tolist()}")
    return lo_, hi_


def exact_partition_2d(
    model: MLP,
    encoding: Encoding | None = None,
    lo: tuple[float, float] = (0.0, 0.0),
    hi: tuple[float, float] = (1.0, 1.0),
    *,
    tol: float = 1e-10,
    inradius: bool = True,
) -> Partition2D:
    """The full polygonal partition of ``[lo, hi]`` by a raw-coordinate net (float64).

    ``encoding`` must be ``None`` (identity) or a 2D :class:`~specbias.encodings.Raw`. Built layer by
    layer, one unit at a time, splitting every convex polygon along the unit's zero line; vertices
    within ``tol × diameter`` of the line count as on it. ``inradius=False`` skips the inradii
    (left NaN).
    """
    if encoding is None:
        encoding = Raw(in_dim=2)
    if not isinstance(encoding, Raw) or encoding.in_dim != 2:
        raise ConfigError(
            "the exact 2D partition needs raw 2D coordinates (Raw, in_dim=2); for encoded inputs use "
            f"region_lower_bound_2d, got {encoding!r}"
        )
    _check_model(model, encoding)
    _check_positive("snapping tolerance", tol)
    lo_, hi_ = _box(lo, hi)
    layers = _hidden_weights(model)
    w1, b1 = layers[0]
    scale = encoding.hi - encoding.lo
    coef = np.stack((w1[:, 0] * scale, w1[:, 1] * scale, b1 + w1.sum(axis=1) * encoding.lo), axis=-1)[None]
    verts = np.array([[lo_[0], lo_[1]], [hi_[0], lo_[1]], [hi_[0], hi_[1]], [lo_[0], hi_[1]]])
    starts = np.array([0, 4])
    rid = np.zeros(1, dtype=np.int64)
    snap = tol * float(np.hypot(*(hi_ - lo_)))
    packed_layers: list[np.ndarray] = []
    n_snapped = 0
    for li, (w, _) in enumerate(layers):
        n_units = w.shape[0]
        bits = np.zeros((rid.size, (n_units + 7) // 8), dtype=np.uint8)
        coef_t = np.ascontiguousarray(coef.transpose(1, 0, 2))  # (H, R, 3)
        for unit in range(n_units):
            verts, starts, rid, bits, sn = _split_all(verts, starts, rid, bits, coef_t[unit], unit, snap)
            n_snapped += sn
        packed_layers = [p[rid] for p in packed_layers] + [bits]
        if li + 1 < len(layers):
            w_next, b_next = layers[li + 1]
            d = np.unpackbits(bits, axis=1, count=n_units).astype(bool)
            parts = []
            step = max(1, _CHUNK_FLOATS // (3 * max(n_units, w_next.shape[0])))
            for s0 in range(0, rid.size, step):
                nxt = np.matmul(w_next, d[s0 : s0 + step, :, None] * coef[rid[s0 : s0 + step]])
                nxt[:, :, 2] += b_next  # columns: d/dx, d/dy, constant
                parts.append(nxt)
            coef = np.concatenate(parts)
        rid = np.arange(starts.size - 1)
    areas, centroids = _polygon_area_centroid(verts, starts)
    if inradius:
        radii, centers = polygon_inradii(verts, starts)
    else:
        radii, centers = np.full(areas.size, np.nan), np.full((areas.size, 2), np.nan)
    return Partition2D(
        lo=lo_,
        hi=hi_,
        vertices=verts,
        starts=starts,
        patterns=Patterns(layers=packed_layers, widths=[w.shape[0] for w, _ in layers]),
        areas=areas,
        centroids=centroids,
        inradii=radii,
        centers=centers,
        n_snapped=n_snapped,
    )


# ---------------------------------------------------------------------------- encoded 2D: quadtree bound


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


def _unpack_rows(packed: np.ndarray, widths: list[int]) -> np.ndarray:
    """Per-layer-packed rows back to a boolean ``(N, Σ W)`` matrix."""
    bits, col = [], 0
    for w in widths:
        nb = (w + 7) // 8
        bits.append(np.unpackbits(packed[:, col : col + nb], axis=1, count=w).astype(bool))
        col += nb
    return np.concatenate(bits, axis=1)


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
    _check_count("initial cells per side", n0, 1)
    _check_positive("minimum cell size", min_cell)
    _check_count("evaluation budget", max_evaluations, 1)
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


# ---------------------------------------------------------------------------- grid vs exact


@dataclass(frozen=True)
class GridVsExact:
    """The paper's grid count next to the exact count (or certified lower bound) on the same net.

    Both count distinct patterns. ``saturated``: every grid point is its own region, so the grid count
    says nothing beyond "at least ``n_grid``". ``exact_is_lower_bound``: the exact side is the quadtree
    bound (encoded 2D input). ``missed`` (1D only): exact pieces that hold no grid point.
    """

    n_grid: int
    grid_count: int
    exact_count: int
    exact_is_lower_bound: bool
    missed: np.ndarray | None = None

    @property
    def saturated(self) -> bool:
        return self.grid_count == self.n_grid

    @property
    def hidden(self) -> int:
        """Regions the grid does not show (at least this many when ``exact_is_lower_bound``)."""
        return self.exact_count - self.grid_count


def grid_vs_exact_1d(
    model: MLP,
    encoding: Encoding,
    n: int,
    a: float | np.ndarray = 0.0,
    b: float | np.ndarray = 1.0,
    *,
    regions: Regions1D | None = None,
) -> GridVsExact:
    """Grid count on ``t_i = a + (i/n)(b − a)``, ``i < n`` (the spec's 1D grid), next to the exact count on
    ``[a, b]``; ``missed`` lists the exact pieces holding no grid point. ``regions``: this model's
    :func:`exact_regions_1d` on ``[a, b]`` when already computed (not recomputed)."""
    _check_count("grid size", n, 2)
    if regions is None:
        regions = exact_regions_1d(model, encoding, a, b)
    elif not (
        np.array_equal(regions.a, _point(a, encoding.in_dim, "a"))
        and np.array_equal(regions.b, _point(b, encoding.in_dim, "b"))
    ):
        raise ConfigError(f"the regions given are on [{regions.a}, {regions.b}], not on [{a}, {b}]")
    s = np.arange(n, dtype=np.float64) / n
    grid = _patterns_at(_model64(model), encoding, regions.points(s)).packed()
    pos = np.searchsorted(s, regions.knots[:-1], side="right")  # first grid point > piece start
    has = (pos < n) & (s[np.minimum(pos, n - 1)] < regions.knots[1:])
    return GridVsExact(
        n_grid=n,
        grid_count=count_regions(grid),
        exact_count=regions.n_distinct,
        exact_is_lower_bound=False,
        missed=np.flatnonzero(~has),
    )


def piece_density(regions: Regions1D, centres: np.ndarray, width: float) -> np.ndarray:
    """Exact region density along the segment: breakpoints per unit of input length in sliding windows,
    ``ρ(c) = #{breakpoints s_k : c − w/2 ≤ s_k < c + w/2} / (w·‖b − a‖)`` for each window centre ``c``
    (``c`` and ``w`` in units of ``s ∈ [0, 1]``; windows are clipped to ``[0, 1]`` and divided by their
    clipped width). In a window where the pieces have widths ``δ``, ``ρ ≈ 1/δ``: the local number of
    regions per unit length (X4; the grid analogue is the change count of patterns between neighbours)."""
    _check_positive("window width", width)
    c = np.asarray(centres, dtype=np.float64)
    lo, hi = np.clip(c - width / 2, 0.0, 1.0), np.clip(c + width / 2, 0.0, 1.0)
    if np.any(hi <= lo):
        raise ConfigError("every window centre must lie inside the segment, s in [0, 1]")
    bp = regions.breakpoints
    count = np.searchsorted(bp, hi, side="left") - np.searchsorted(bp, lo, side="left")
    return count / ((hi - lo) * regions.length)


def grid_vs_exact_2d(
    model: MLP,
    encoding: Encoding,
    n: int,
    lo: tuple[float, float] = (0.0, 0.0),
    hi: tuple[float, float] = (1.0, 1.0),
    **bound_kwargs,
) -> GridVsExact:
    """Grid count on the ``n × n`` pixel grid of ``[lo, hi)`` vs the exact partition (raw input) or the
    quadtree lower bound (other encodings, seeded with the grid so the bound is at least the grid count)."""
    _check_count("grid size", n, 2)
    lo_, hi_ = _box(lo, hi)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    grid = lo_ + (hi_ - lo_) * np.stack((jj.ravel() / n, ii.ravel() / n), axis=1)
    grid_count = count_regions(_patterns_at(_model64(model), encoding, grid).packed())
    if isinstance(encoding, Raw):
        exact = exact_partition_2d(model, encoding, lo_, hi_, inradius=False).n_regions
        return GridVsExact(n * n, grid_count, exact, exact_is_lower_bound=False)
    bound = region_lower_bound_2d(model, encoding, lo_, hi_, extra_points=grid, **bound_kwargs)
    return GridVsExact(n * n, grid_count, bound.lower_bound, exact_is_lower_bound=True)
