"""The paper's grid count next to the exact count, and the exact region density.

**Grid vs exact** (:func:`grid_vs_exact_1d`, :func:`grid_vs_exact_2d`): the paper's grid count
(:func:`~specbias.metrics.patterns.count_regions`) next to the exact count (or the certified lower
bound), with ``saturated`` when every grid point is its own region.

**Region density** (:func:`piece_density`): exact breakpoints per unit length in sliding windows along a
segment, where the regions are (X4 compares it with the target's local frequency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbias._checks import check_int, check_positive
from specbias.encodings import Encoding, Raw
from specbias.errors import ConfigError
from specbias.metrics.patterns import count_regions
from specbias.metrics.regions.bound2d import region_lower_bound_2d
from specbias.metrics.regions.common import _model64, _patterns_at, _point
from specbias.metrics.regions.exact1d import Regions1D, exact_regions_1d
from specbias.metrics.regions.exact2d import _box, exact_partition_2d
from specbias.models import MLP


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
    check_int("grid size", n, 2)
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
    check_positive("window width", width)
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
    check_int("grid size", n, 2)
    lo_, hi_ = _box(lo, hi)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    grid = lo_ + (hi_ - lo_) * np.stack((jj.ravel() / n, ii.ravel() / n), axis=1)
    grid_count = count_regions(_patterns_at(_model64(model), encoding, grid).packed())
    if isinstance(encoding, Raw):
        exact = exact_partition_2d(model, encoding, lo_, hi_, inradius=False).n_regions
        return GridVsExact(n * n, grid_count, exact, exact_is_lower_bound=False)
    bound = region_lower_bound_2d(model, encoding, lo_, hi_, extra_points=grid, **bound_kwargs)
    return GridVsExact(n * n, grid_count, bound.lower_bound, exact_is_lower_bound=True)
