"""Exact activation regions along a 1D segment.

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

*Merging.* A new breakpoint is a sign change of some unit, so in exact arithmetic adjacent pieces
always differ in that unit's bit. Equal adjacent patterns can only come from degenerate input (two
roots of one unit rounding to the same float), so a final pass merges them and counts the merges
(``n_merged``, 0 on every net tested). Non-adjacent pieces may share a pattern under an encoding
(the curve ``γ(t(s))`` can leave and re-enter a convex region of feature space), so
``n_pieces ≥ n_distinct``; for raw input regions are convex and ``n_pieces == n_distinct``.

**Validation.** :func:`dense_region_count_1d` is the sampling count (patterns at ``n`` equally spaced
points, changes + 1); :func:`missed_pieces` lists the exact pieces containing no sample point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int, check_positive
from specbias.encodings import Encoding
from specbias.errors import ConfigError
from specbias.metrics.patterns import Patterns, count_regions
from specbias.metrics.regions.common import (
    _CHUNK_FLOATS,
    _check_model,
    _hidden_weights,
    _model64,
    _pack_layers,
    _patterns_at,
    _point,
)
from specbias.metrics.regions.segment import _basis, _piece_roots, _rowdot, _segment_basis
from specbias.models import MLP


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
    check_positive("root tolerance", tol)
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
    check_int("number of samples", n, 2)
    check_int("chunk", chunk, 1)
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
    check_int("number of samples", n, 2)
    lo, hi = regions.knots[:-1], regions.knots[1:]
    first = np.floor(lo * (n - 1))
    hit = np.zeros(lo.size, dtype=bool)
    for k in range(3):  # the first sample > lo is one of these, whatever the rounding
        i = first + k
        si = i / (n - 1)
        hit |= (si > lo) & (si < hi) & (i <= n - 1)
    return np.flatnonzero(~hit)
