"""Inscribed spheres (Chebyshev balls) of activation regions, by linear programming (spec §1.8, E13).

The **Chebyshev ball** of a polytope ``P = {x : A x ≤ b}`` is the largest ball ``B(c, r)`` inside it. Since
``B(c, r) ⊆ {x : a_i·x ≤ b_i}`` iff ``a_i·c + r‖a_i‖₂ ≤ b_i``, it solves the LP (Boyd & Vandenberghe,
*Convex Optimization*, §8.5.1)::

    maximise r over (c, r)  subject to  a_i·c + r‖a_i‖ ≤ b_i (every i),  lo + r ≤ c_k ≤ hi − r (box),  r ≥ 0.

E13 of Lazzari & Liu (2023) measures it for the region of a sample point ``p`` of a PE network's input
space ``ℝ^d`` (``d = 4L`` features), intersected with the cube ``[−1, 1]^d`` that holds every sin/cos
feature. The centre is free, so the ball need not contain ``p``. The LPs are solved with HiGHS through
``scipy.optimize.linprog(method="highs")`` (the reference uses a cvxpy model, bug B29).

Regions (``layers``):

* ``"first"`` (the paper): the cell of the first layer's hyperplane arrangement holding ``p``, with
  ``s_i = [w_i·p + b_i > 0]``: ``w_i·x + b_i ≥ 0`` for ``s_i = 1`` and ``≤ 0`` for ``s_i = 0`` (``W`` rows).
* ``"all"`` (the extension of the spec): the activation region of ``p``'s full pattern. On it every
  pre-activation is affine, ``z_l(x) = G_l x + h_l`` with ``G_1 = W_1``, ``h_1 = b_1``,
  ``G_{l+1} = W_{l+1} D_l G_l``, ``h_{l+1} = W_{l+1} D_l h_l + b_{l+1}`` (``D_l = diag(s_l)``), and the
  region is exactly ``{x : sign constraints of every row of every G_l, h_l}`` (by induction over the
  layers: a point meeting them has the same layer-1 pattern, hence the same affine layer-2
  pre-activations, and so on). A row with ``G = 0`` (a unit fed only by units that are off) is constant
  on the region and is dropped.

Samplers (E13): :func:`off_manifold_points` -- ``p ~ U[−1, 1]^d``, the reference's, off the encoding
manifold; :func:`on_manifold_points` -- ``p = γ(t)`` with ``t ~ U[0, 1)^{in_dim}``, points the network
actually sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog

from specbias._checks import check_int
from specbias.encodings import Encoding
from specbias.errors import ConfigError
from specbias.models import MLP

LAYERS = ("first", "all")
ZERO_ROW = 1e-12
"""A constraint row whose norm is at most this times the largest row norm (or times 1, when every row is
shorter) is constant on the region."""


@dataclass(frozen=True)
class Ball:
    """A Chebyshev ball: ``radius`` and ``center``. ``radius`` is NaN for an empty polytope and ``inf``
    (centre NaN) for an unbounded one without a box."""

    radius: float
    center: np.ndarray


def _check_box(box: tuple[float, float] | None) -> None:
    if box is not None and not (np.all(np.isfinite(box)) and box[0] < box[1]):
        raise ConfigError(f"box must be (lo, hi) with finite lo < hi, or None, got {box!r}")


def _solve(rows: np.ndarray, rhs: np.ndarray, d: int) -> tuple[int, np.ndarray, str]:
    """HiGHS on ``max r`` s.t. ``rows·(c, r) ≤ rhs``, ``r ≥ 0``: ``(status, x, message)``."""
    cost = np.zeros(d + 1)
    cost[-1] = -1.0
    res = linprog(cost, A_ub=rows, b_ub=rhs, bounds=[(None, None)] * d + [(0, None)], method="highs")
    return res.status, res.x, res.message


def chebyshev_ball(
    A: np.ndarray,
    b: np.ndarray,
    box: tuple[float, float] | None = (-1.0, 1.0),
    *,
    near: np.ndarray | None = None,
    start: int | None = None,
) -> Ball:
    """The largest ball inside ``{x : A x ≤ b} ∩ [lo, hi]^d`` (``box=None``: no cube), by HiGHS.

    Rows with ``‖a_i‖ ≈ 0`` are constant: dropped when ``b_i ≥ 0``, and they make the polytope empty
    (radius NaN) otherwise. Rows are scaled to unit normals (the same LP, better conditioned).

    *Cutting planes* (``near``, a point of the polytope, and ``start``): when there are more than
    ``start`` rows, the LP is first solved with the box and the ``start`` rows whose hyperplanes are
    nearest to ``near``; every row the optimal ball violates (by more than HiGHS's feasibility
    tolerance ``1e-7``) is added and the LP solved again, until none is. The result is the full LP's
    optimum: a relaxation's optimum that satisfies every row is feasible, hence optimal. A full
    activation region has thousands of rows but only ``≤ d + 1`` touch its ball, so this is several
    times faster there.
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if A.shape[0] != b.size or not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise ConfigError(f"A ({A.shape}) and b ({b.shape}) must be finite with one b per row of A")
    _check_box(box)
    d = A.shape[1]
    norms = np.linalg.norm(A, axis=1)
    flat = norms <= ZERO_ROW * max(float(norms.max(initial=0.0)), 1.0)
    if np.any(b[flat] < 0):
        return Ball(float("nan"), np.full(d, np.nan))
    unit = A[~flat] / norms[~flat, None]
    level = b[~flat] / norms[~flat]
    rows = np.concatenate((unit, np.ones((unit.shape[0], 1))), axis=1)
    if box is None:
        fixed_rows, fixed_rhs = np.zeros((0, d + 1)), np.zeros(0)
    else:
        eye, ones = np.eye(d), np.ones((d, 1))
        fixed_rows = np.concatenate((np.concatenate((eye, ones), 1), np.concatenate((-eye, ones), 1)))
        fixed_rhs = np.concatenate((np.full(d, box[1]), np.full(d, -box[0])))
    active = np.ones(level.size, dtype=bool)
    if near is not None and start is not None and level.size > start:
        active[:] = False
        active[np.argsort(level - unit @ np.asarray(near, dtype=np.float64))[:start]] = True
    while True:
        status, x, message = _solve(
            np.concatenate((rows[active], fixed_rows)), np.concatenate((level[active], fixed_rhs)), d
        )
        if status == 2:
            return Ball(float("nan"), np.full(d, np.nan))
        if status == 3:
            if active.all():
                return Ball(float("inf"), np.full(d, np.nan))
            active[:] = True  # an unbounded relaxation: fall back to every row
            continue
        if status != 0:
            raise RuntimeError(f"HiGHS failed on a Chebyshev LP: {message}")
        violated = ~active & (rows @ x > level + 1e-7)
        if not violated.any():
            return Ball(float(x[-1]), x[:-1].copy())
        active |= violated


def _weights(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    with torch.no_grad():
        return [(m.weight.double().cpu().numpy(), m.bias.double().cpu().numpy()) for m in model.layers[:-1]]


def local_constraints(model: MLP, p: np.ndarray, layers: str = "first") -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``{x : A x ≤ b}`` the region of the point ``p`` (module docstring), in float64.

    A unit that is on (``z > 0``) contributes ``−G x ≤ h``, one that is off ``G x ≤ −h``.
    """
    if layers not in LAYERS:
        raise ConfigError(f"layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.size != model.in_dim or not np.all(np.isfinite(p)):
        raise ConfigError(f"the point must hold {model.in_dim} finite numbers, got shape {p.shape}")
    weights = _weights(model)
    if layers == "first":
        weights = weights[:1]
    g, h = np.eye(p.size), np.zeros(p.size)
    rows, rhs = [], []
    for w, bias in weights:
        g, h = w @ g, w @ h + bias
        on = g @ p + h > 0
        sign = np.where(on, -1.0, 1.0)
        rows.append(sign[:, None] * g)
        rhs.append(-sign * h)
        g, h = g * on[:, None], h * on
    return np.concatenate(rows), np.concatenate(rhs)


def region_ball(
    model: MLP,
    p: np.ndarray,
    layers: str = "first",
    box: tuple[float, float] | None = (-1.0, 1.0),
    start: int | None = None,
) -> Ball:
    """The Chebyshev ball of the region holding ``p`` (first-layer cell or full activation region);
    ``start`` rows nearest to ``p`` to begin the cutting planes with (:func:`chebyshev_ball`; ``None``:
    one LP with every row)."""
    return chebyshev_ball(*local_constraints(model, p, layers), box=box, near=p, start=start)


@dataclass(frozen=True)
class Inspheres:
    """Chebyshev radii ``radii[k]`` and centres ``centers[k]`` of the regions of ``points[k]``."""

    points: np.ndarray
    radii: np.ndarray
    centers: np.ndarray
    layers: str


CUTTING_START = 4
""":func:`inspheres` starts its cutting planes with the ``CUTTING_START·(d + 1)`` rows nearest the point."""


def inspheres(
    model: MLP, points: np.ndarray, layers: str = "first", box: tuple[float, float] | None = (-1.0, 1.0)
) -> Inspheres:
    """The Chebyshev ball of the region of each of ``points`` (``(n, d)``, the network's input space):
    one cutting-plane LP per point (:func:`chebyshev_ball`)."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    start = CUTTING_START * (points.shape[1] + 1)
    balls = [region_ball(model, p, layers, box, start=start) for p in points]
    return Inspheres(
        points=points,
        radii=np.array([ball.radius for ball in balls]),
        centers=np.stack([ball.center for ball in balls]) if balls else np.zeros((0, points.shape[1])),
        layers=layers,
    )


def _check_n(n: int, what: str = "number of sample points") -> None:
    check_int(what, n)


def off_manifold_points(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """The reference's sampler: ``p ~ U[−1, 1]^dim`` i.i.d. (off the encoding manifold)."""
    _check_n(n)
    _check_n(dim, "dimension of the sample points")
    return rng.uniform(-1.0, 1.0, size=(n, dim))


def on_manifold_points(rng: np.random.Generator, n: int, encoding: Encoding) -> np.ndarray:
    """``p = γ(t)`` for ``t ~ U[0, 1)^{in_dim}``: encoded coordinates, on the encoding manifold."""
    _check_n(n)
    t = rng.random((n, encoding.in_dim))
    return encoding(torch.as_tensor(t, dtype=torch.float64)).numpy()
