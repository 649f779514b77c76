"""The exact polygonal partition of a raw-input 2D domain.

**Exact 2D, raw input** (:func:`exact_partition_2d`). Within a convex polygon of fixed earlier pattern
every layer-``l`` pre-activation is affine in ``(x, y)``, so the polygon is split along each unit's zero
line in turn (splitting keeps convexity and counter-clockwise order), as SplineCam (Humayun et al.,
CVPR 2023) and ``regioncam`` (twanvl) do; all polygons are split by one unit at a time, vectorised.
*Tolerance:* a vertex within distance ``tol·diam`` of the zero line (default ``1e-10`` of the rectangle's
diameter) is taken to lie on it, so no sliver thinner than that is created. Per region: polygon,
pattern, area (shoelace), centroid and inradius (the Chebyshev radius ``max r`` s.t. ``n_j·x + r ≤ h_j``
over the edges; solved exactly by enumerating the LP's vertices -- every triple of edge constraints --
or with ``scipy.optimize.linprog`` HiGHS, :func:`polygon_inradii`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from specbias._checks import check_positive
from specbias.encodings import Encoding, Raw
from specbias.errors import ConfigError
from specbias.metrics.patterns import Patterns
from specbias.metrics.regions.common import _CHUNK_FLOATS, _check_model, _hidden_weights
from specbias.models import MLP


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
    check_positive("snapping tolerance", tol)
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
