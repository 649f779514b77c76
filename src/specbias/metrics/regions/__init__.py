"""Exact activation-region geometry: 1D pieces along segments, 2D polygonal partitions, certified bounds.

An activation region is a set of inputs sharing one pattern ``s(x) = [z_{l,i}(x) > 0]`` over every hidden
unit (:mod:`specbias.metrics.patterns`). Grid sampling counts distinct patterns at grid points, a lower
bound capped at the number of points. This package computes the regions themselves, in float64, one
algorithm per module:

* :mod:`~specbias.metrics.regions.segment` -- encodings along a segment as trigonometric polynomials
  and their certified real roots;
* :mod:`~specbias.metrics.regions.exact1d` -- exact pieces along a segment by layer-wise marching
  (:func:`exact_regions_1d`), the sampling count and the pieces it misses;
* :mod:`~specbias.metrics.regions.exact2d` -- the exact polygonal partition of a raw 2D domain
  (:func:`exact_partition_2d`) and polygon inradii;
* :mod:`~specbias.metrics.regions.bound2d` -- a certified lower bound for encoded 2D inputs by an
  adaptive quadtree (:func:`region_lower_bound_2d`);
* :mod:`~specbias.metrics.regions.compare` -- the paper's grid count next to the exact one, and the
  exact region density;
* :mod:`~specbias.metrics.regions.common` -- helpers they share.

Every public name is importable from ``specbias.metrics.regions``.
"""

from specbias.metrics.regions.bound2d import RegionLowerBound2D, region_lower_bound_2d
from specbias.metrics.regions.compare import GridVsExact, grid_vs_exact_1d, grid_vs_exact_2d, piece_density
from specbias.metrics.regions.exact1d import Regions1D, dense_region_count_1d, exact_regions_1d, missed_pieces
from specbias.metrics.regions.exact2d import Partition2D, exact_partition_2d, polygon_inradii

__all__ = [
    "GridVsExact",
    "Partition2D",
    "RegionLowerBound2D",
    "Regions1D",
    "dense_region_count_1d",
    "exact_partition_2d",
    "exact_regions_1d",
    "grid_vs_exact_1d",
    "grid_vs_exact_2d",
    "missed_pieces",
    "piece_density",
    "polygon_inradii",
    "region_lower_bound_2d",
]
