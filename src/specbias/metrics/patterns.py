"""Activation patterns as packed bits: Hamming distances, region counts, dead units.

The pattern of input ``x`` is ``s(x) = [z_{l,i}(x) > 0]`` over every hidden unit of every hidden
layer (the output layer excluded), spec §1.4 (Lazzari & Liu 2023). Inputs with equal patterns
share an activation region, where the network is one affine map.

* **Hamming distance** ``H(x, x') = Σ_i s_i(x) ⊕ s_i(x')`` -- the count of differing units,
  computed by XOR and popcount on packed bytes, per layer; also the ratio ``H / n``.
* **Region count** -- the number of distinct patterns over a set of points, by viewing each packed
  row as one opaque byte string and counting unique rows. It is a lower bound on the number of
  regions the domain crosses (regions with no sample are missed).
* **Dead units** -- hidden units whose ReLU output is 0 at every point (spec §1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int
from specbias.errors import ConfigError
from specbias.models import MLP


@dataclass(frozen=True)
class Patterns:
    """Per-layer packed activation patterns: ``layers[l]`` is ``(N, ceil(W_l / 8))`` uint8."""

    layers: list[np.ndarray]
    widths: list[int]

    @property
    def n_points(self) -> int:
        return int(self.layers[0].shape[0])

    @property
    def n_units(self) -> int:
        return sum(self.widths)

    def packed(self) -> np.ndarray:
        """All layers' packed bits side by side: one row per point."""
        return np.ascontiguousarray(np.concatenate(self.layers, axis=1))

    def bits(self) -> np.ndarray:
        """The unpacked boolean pattern matrix ``(N, n_units)``."""
        return np.concatenate(
            [np.unpackbits(p, axis=1, count=w).astype(bool) for p, w in zip(self.layers, self.widths)],
            axis=1,
        )


def patterns_from_preacts(preacts: list[torch.Tensor]) -> Patterns:
    """Pack the signs ``z > 0`` of each hidden layer's pre-activations."""
    layers = [np.packbits((z > 0).cpu().numpy(), axis=1) for z in preacts]
    return Patterns(layers=layers, widths=[int(z.shape[1]) for z in preacts])


@torch.no_grad()
def activation_patterns(model: MLP, x: torch.Tensor, chunk: int = 65536) -> Patterns:
    """Activation patterns of ``model`` at inputs ``x`` (chunked to bound memory)."""
    check_int("chunk", chunk)
    if len(x) == 0:
        raise ConfigError(f"need at least one input point for patterns, got shape {tuple(x.shape)}")
    parts = [patterns_from_preacts(model.hidden_preacts(x[s : s + chunk])) for s in range(0, len(x), chunk)]
    return Patterns(
        layers=[np.concatenate([p.layers[k] for p in parts]) for k in range(len(parts[0].layers))],
        widths=parts[0].widths,
    )


def hamming(patterns: Patterns, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per-layer Hamming distances of the pairs ``(i[p], j[p])``: shape ``(n_layers, P)``."""
    return np.stack([np.bitwise_count(p[i] ^ p[j]).sum(axis=1, dtype=np.int64) for p in patterns.layers])


def count_regions(packed: np.ndarray) -> int:
    """Number of distinct rows of a packed pattern matrix (hash-free unique on byte strings)."""
    packed = np.ascontiguousarray(packed)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return int(np.unique(rows).size)


def region_ids(packed: np.ndarray) -> np.ndarray:
    """Region id of every row: ids ``0, 1, …`` in order of first appearance (for region maps)."""
    packed = np.ascontiguousarray(packed)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.ravel()].astype(np.int64)


def region_counts(patterns: Patterns) -> dict[str, int]:
    """Distinct patterns per layer (``layer1``…) and over all hidden layers (``all``)."""
    counts = {f"layer{i + 1}": count_regions(p) for i, p in enumerate(patterns.layers)}
    counts["all"] = count_regions(patterns.packed())
    return counts


def dead_units(patterns: Patterns) -> np.ndarray:
    """Per-layer number of units that are off (``z <= 0``) at every point."""
    out = []
    for p, w in zip(patterns.layers, patterns.widths):
        ever_on = np.unpackbits(np.bitwise_or.reduce(p, axis=0), count=w)
        out.append(int(w - ever_on.sum()))
    return np.array(out)
