"""2D cross-sections of a network's input space: region maps on a plane (spec §1.8, E14).

E14 of Lazzari & Liu (2023) looks at the activation regions of a PE network on a plane through its
``d``-dimensional input (feature) space. A point ``u = (u₁, u₂) ∈ [−1, 1)²`` is written into two input
slots and every other slot is 0: ``x(u) = P u`` with ``P`` the ``d × 2`` selection of

* the ``"low"`` slice, slots 0 and 1 (``sin(πx)``, ``cos(πx)`` in the 2D PE feature order), or
* the ``"high"`` slice, the last two slots (``sin(2^{L−1}πy)``, ``cos(2^{L−1}πy)``).

The plane is off the encoding manifold. The **region map** gives every point of the ``S × S`` grid
``u = (2j/S − 1, 2i/S − 1)`` (the raw ``[−1, 1)`` grid: row ``i`` follows ``u₂``, column ``j`` follows
``u₁``) the id of its activation pattern over the first layer only (``layers="first"``: a line
arrangement) or over all hidden layers. The grid count (distinct ids) is the paper's measure.

On the plane the network is a ReLU network of ``u``: its first layer is ``W₁ P`` with bias ``b₁``, the
rest unchanged (:func:`plane_model`). So the plane's regions are convex polygons and
:func:`~specbias.metrics.regions.exact_partition_2d` gives them exactly -- the exact count, areas and the
share of the plane the largest region covers, next to the grid count (:func:`section`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int
from specbias.errors import ConfigError
from specbias.metrics.patterns import activation_patterns, count_regions, region_ids
from specbias.metrics.regions import GridVsExact, Partition2D, exact_partition_2d
from specbias.models import MLP

SLICES = ("low", "high")
LAYERS = ("first", "all")
LO, HI = (-1.0, -1.0), (1.0, 1.0)


def slice_slots(in_dim: int, which: str) -> tuple[int, int]:
    """The two input slots of a slice: ``(0, 1)`` for ``"low"``, ``(d − 2, d − 1)`` for ``"high"``."""
    if which not in SLICES:
        raise ConfigError(f"slice must be one of {', '.join(SLICES)}, got {which!r}")
    if in_dim < 2:
        raise ConfigError(f"a cross-section needs an input of at least 2 dimensions, got {in_dim}")
    return (0, 1) if which == "low" else (in_dim - 2, in_dim - 1)


def plane_model(model: MLP, which: str, layers: str = "all") -> MLP:
    """The float64 network ``u ↦ model(P u)`` on the slice's plane (first hidden layer only when
    ``layers="first"``; its output layer is then zero and unused by the patterns)."""
    if layers not in LAYERS:
        raise ConfigError(f"layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    slots = list(slice_slots(model.in_dim, which))
    depth = 1 if layers == "first" else model.depth
    plane = MLP(2, model.width, depth, model.out_dim).double()
    with torch.no_grad():
        plane.layers[0].weight.copy_(model.layers[0].weight[:, slots])
        plane.layers[0].bias.copy_(model.layers[0].bias)
        for mine, theirs in zip(plane.layers[1:depth], model.layers[1:depth]):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        out, source = plane.layers[-1], model.layers[-1]
        if layers == "all":
            out.weight.copy_(source.weight)
            out.bias.copy_(source.bias)
        else:
            out.weight.zero_()
            out.bias.zero_()
    return plane


def section_grid(size: int) -> np.ndarray:
    """The ``(size², 2)`` points ``u = (2j/S − 1, 2i/S − 1)``, row-major (``u₁`` varies fastest)."""
    check_int("section grid size", size, 2)
    k = 2.0 * np.arange(size) / size - 1.0
    u1, u2 = np.meshgrid(k, k)
    return np.stack((u1.ravel(), u2.ravel()), axis=1)


@dataclass(frozen=True)
class Section:
    """A cross-section: the grid's region ``ids`` (``(S, S)``, rows follow ``u₂``) and, when computed, the
    exact ``partition`` of the square ``[−1, 1]²``."""

    which: str
    layers: str
    ids: np.ndarray
    grid_count: int
    partition: Partition2D | None

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    def grid_vs_exact(self) -> GridVsExact:
        """The grid count next to the exact count (``saturated`` when every grid point is its own region)."""
        if self.partition is None:
            raise ConfigError("this section was computed without its exact partition (exact=False)")
        return GridVsExact(
            self.size**2, self.grid_count, self.partition.n_regions, exact_is_lower_bound=False
        )

    def largest_share(self) -> float:
        """Share of the square ``[−1, 1]²`` covered by the largest exact region."""
        if self.partition is None:
            raise ConfigError("this section was computed without its exact partition (exact=False)")
        return float(self.partition.areas.max() / self.partition.areas.sum())


@torch.no_grad()
def section(model: MLP, which: str, layers: str = "all", size: int = 512, exact: bool = True) -> Section:
    """The region map of a slice on the ``size × size`` grid and (``exact=True``) its exact partition."""
    plane = plane_model(model, which, layers)
    packed = activation_patterns(plane, torch.as_tensor(section_grid(size))).packed()
    partition = exact_partition_2d(plane, None, LO, HI, inradius=False) if exact else None
    return Section(
        which=which,
        layers=layers,
        ids=region_ids(packed).reshape(size, size),
        grid_count=count_regions(packed),
        partition=partition,
    )
