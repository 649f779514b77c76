"""Encodings along a segment as trigonometric polynomials, and their certified real roots.

Along ``t(s) = a + s·(b − a)`` every supported encoding is a linear combination of the basis
``φ(s) = [1, s, cos(ν_k s), sin(ν_k s)]_k`` (:func:`_segment_basis`); a unit's pre-activation on a piece
of fixed pattern is ``p(s) = c·φ(s)`` (:mod:`specbias.metrics.regions.exact1d`).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from specbias.encodings import BasicEncoding, Encoding, GaussianRFF, NeRFPE, Raw, RestrictedPE
from specbias.errors import ConfigError
from specbias.metrics.regions.common import _EPS, _SUPPORTED


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
