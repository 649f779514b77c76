"""Local and global pair samplers over a 1D grid of ``N`` samples (spec §1.7).

*Local* pairs are two samples from one small window, *global* pairs one sample from the start
of the domain and one from its end. Two variants:

* ``faithful=True`` reproduces the reference's 1D sampler (Lazzari & Liu 2023): for ``N = 2048``,
  window centre ``c ~ U{26..2019}``, window ``c-25 .. c+24``, offsets ``i, j ~ U{0..48}`` drawn
  independently (self-pairs allowed, bug B4; offset 49 never drawn, bug B5); global
  ``i ~ U{0..799}``, ``j ~ U{1200..2046}``. For other ``N`` every integer is scaled by ``N/2048``.
* ``faithful=False`` (clean, the default): the window covers ``window·N`` samples (a fraction of
  the domain, so runs at different densities compare), its start is uniform over every position
  that fits, both offsets cover the whole window and ``i != j``; global pairs draw from
  ``[0, near)·N`` and ``[far, 1)·N`` with every index reachable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbias.errors import ConfigError

REFERENCE_N = 2048
LOCAL_WINDOW = 50 / 2048
"""The reference's 1D window as a fraction of the domain (≈ 0.024)."""
GLOBAL_NEAR = 0.39
GLOBAL_FAR = 0.586


@dataclass(frozen=True)
class Pairs:
    """Index pairs ``(i[p], j[p])`` into the grid's samples (row-major order)."""

    i: np.ndarray
    j: np.ndarray

    def __len__(self) -> int:
        return int(self.i.size)


def _scaled(value: int, n: int) -> int:
    return round(value * n / REFERENCE_N)


def _distinct_offsets(rng: np.random.Generator, size: int, count: int) -> tuple[np.ndarray, ...]:
    """``count`` pairs of distinct offsets, uniform over the ``size·(size-1)`` ordered pairs."""
    a = rng.integers(0, size, count)
    b = rng.integers(0, size - 1, count)
    return a, b + (b >= a)


def local_pairs_1d(
    n: int,
    rng: np.random.Generator,
    *,
    n_windows: int,
    pairs_per_window: int,
    window: float = LOCAL_WINDOW,
    faithful: bool = False,
) -> Pairs:
    """``n_windows × pairs_per_window`` pairs of samples from small windows of the grid."""
    if faithful:
        half = _scaled(25, n)
        if half < 1:
            raise ConfigError(f"the faithful 1D sampler needs N >= 62 samples, got {n}")
        centres = rng.integers(_scaled(26, n), _scaled(2019, n) + 1, n_windows)
        starts = np.repeat(centres - half, pairs_per_window)
        hi = 2 * half - 1  # offsets 0..2·half-2: the reference never draws the last one
        a = rng.integers(0, hi, starts.size)
        b = rng.integers(0, hi, starts.size)
        return Pairs(starts + a, starts + b)
    size = round(window * n)
    if not 2 <= size <= n:
        raise ConfigError(f"local window {window} of N={n} holds {size} samples; need 2..{n}")
    starts = np.repeat(rng.integers(0, n - size + 1, n_windows), pairs_per_window)
    a, b = _distinct_offsets(rng, size, starts.size)
    return Pairs(starts + a, starts + b)


def global_pairs_1d(
    n: int,
    rng: np.random.Generator,
    *,
    n_pairs: int,
    near: float = GLOBAL_NEAR,
    far: float = GLOBAL_FAR,
    faithful: bool = False,
) -> Pairs:
    """``n_pairs`` pairs with one sample in ``[0, near)`` and one in ``[far, 1)`` of the domain."""
    if faithful:
        i = rng.integers(0, _scaled(800, n), n_pairs)
        j = rng.integers(_scaled(1200, n), _scaled(2047, n), n_pairs)
        return Pairs(i, j)
    if not 0 < near <= far < 1:
        raise ConfigError(f"global blocks need 0 < near <= far < 1, got near={near}, far={far}")
    hi_near, lo_far = int(np.ceil(near * n)), int(np.ceil(far * n))
    return Pairs(rng.integers(0, hi_near, n_pairs), rng.integers(lo_far, n, n_pairs))
