"""Local and global pair samplers (spec §1.7): faithful reference ranges and the clean variant."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from specbias.errors import ConfigError
from specbias.metrics.pairs import LOCAL_WINDOW, Pairs, global_pairs_1d, local_pairs_1d


def groups(p: Pairs, per_window: int):
    both = np.stack([p.i, p.j], axis=1).reshape(-1, per_window, 2)
    return both.min(axis=(1, 2)), both.max(axis=(1, 2))


# --------------------------------------------------------------------------- faithful


def test_faithful_local_matches_reference_ranges():
    n, windows, per = 2048, 4000, 400
    rng = np.random.default_rng(0)
    p = local_pairs_1d(n, rng, n_windows=windows, pairs_per_window=per, faithful=True)
    assert len(p) == windows * per
    lo, hi = groups(p, per)
    # with 800 offsets drawn per window every offset 0..48 shows up: the window is [c-25, c+23]
    np.testing.assert_array_equal(hi - lo, 48)
    starts = lo  # = c - 25
    centres = starts + 25
    assert centres.min() == 26 and centres.max() == 2019
    assert np.unique(centres).size > 1650  # ≈ 1994·(1 − e^-2) distinct centres expected
    # overall extent: c=26 gives index 1, c=2019 gives index 2042 (offset 49 never drawn)
    assert min(p.i.min(), p.j.min()) == 1
    assert max(p.i.max(), p.j.max()) == 2042
    # self-pairs are allowed (bug B4)
    assert np.count_nonzero(p.i == p.j) > 0
    # every offset 0..48 drawn for i and for j, independently
    offs_i = p.i - np.repeat(starts, per)
    offs_j = p.j - np.repeat(starts, per)
    np.testing.assert_array_equal(np.unique(offs_i), np.arange(49))
    np.testing.assert_array_equal(np.unique(offs_j), np.arange(49))


def test_faithful_global_matches_reference_ranges():
    rng = np.random.default_rng(1)
    p = global_pairs_1d(2048, rng, n_pairs=100_000, faithful=True)
    assert len(p) == 100_000
    assert p.i.min() == 0 and p.i.max() == 799
    assert p.j.min() == 1200 and p.j.max() == 2046
    assert np.unique(p.i).size == 800 and np.unique(p.j).size == 847
    assert (p.j - p.i).min() >= 401


def test_faithful_scales_with_n():
    rng = np.random.default_rng(2)
    p = global_pairs_1d(4096, rng, n_pairs=100_000, faithful=True)
    assert p.i.min() == 0 and p.i.max() == 1599
    assert p.j.min() == 2400 and p.j.max() == 4093
    p = local_pairs_1d(4096, rng, n_windows=3000, pairs_per_window=800, faithful=True)
    lo, hi = groups(p, 800)
    np.testing.assert_array_equal(hi - lo, 98)  # offsets 0..98 (2·50 − 2)
    centres = lo + 50
    assert centres.min() >= 52 and centres.max() <= 4038
    assert centres.min() < 60 and centres.max() > 4030


def test_faithful_is_deterministic_for_a_seed():
    a = local_pairs_1d(2048, np.random.default_rng(5), n_windows=3, pairs_per_window=7, faithful=True)
    b = local_pairs_1d(2048, np.random.default_rng(5), n_windows=3, pairs_per_window=7, faithful=True)
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.j, b.j)


# --------------------------------------------------------------------------- clean


@pytest.mark.parametrize("n", [2048, 256, 1000])
def test_clean_local_windows(n):
    size = round(LOCAL_WINDOW * n)
    per = 30 * size * size  # enough draws that every ordered offset pair appears
    rng = np.random.default_rng(n)
    p = local_pairs_1d(n, rng, n_windows=3, pairs_per_window=per)
    assert len(p) == 3 * per
    assert not np.any(p.i == p.j)
    lo, hi = groups(p, per)
    np.testing.assert_array_equal(hi - lo, size - 1)  # both ends of a window of `size` samples used
    starts = np.repeat(lo, per)
    a, b = p.i - starts, p.j - starts
    assert a.min() == 0 and a.max() == size - 1 and b.min() == 0 and b.max() == size - 1
    seen = set(zip(a.tolist(), b.tolist()))
    assert seen == {(u, v) for u in range(size) for v in range(size) if u != v}


def test_clean_local_starts_cover_the_whole_grid():
    n, window = 100, 0.1  # 10-sample windows, starts 0..90
    rng = np.random.default_rng(3)
    p = local_pairs_1d(n, rng, n_windows=20_000, pairs_per_window=40, window=window)
    lo, hi = groups(p, 40)
    assert lo.min() == 0 and hi.max() == n - 1
    assert (hi - lo).max() <= 9
    assert p.i.min() >= 0 and p.j.max() <= n - 1
    assert not np.any(p.i == p.j)


def test_clean_local_offsets_roughly_uniform():
    rng = np.random.default_rng(4)
    p = local_pairs_1d(64, rng, n_windows=1, pairs_per_window=200_000, window=8 / 64)
    start = min(p.i.min(), p.j.min())
    counts = np.zeros((8, 8))
    np.add.at(counts, (p.i - start, p.j - start), 1)
    assert np.all(np.diag(counts) == 0)
    off = counts[~np.eye(8, dtype=bool)]
    expected = 200_000 / 56
    assert np.abs(off - expected).max() < 5 * math.sqrt(expected)


@pytest.mark.parametrize("n", [2048, 100, 1000, 333])
def test_clean_global_blocks(n):
    rng = np.random.default_rng(n)
    p = global_pairs_1d(n, rng, n_pairs=200_000)
    hi_near = math.ceil(Fraction(39, 100) * n)
    lo_far = math.ceil(Fraction(586, 1000) * n)
    assert p.i.min() == 0 and p.i.max() == hi_near - 1
    assert p.j.min() == lo_far and p.j.max() == n - 1
    assert np.unique(p.i).size == hi_near
    assert np.unique(p.j).size == n - lo_far


def test_clean_global_custom_blocks():
    rng = np.random.default_rng(7)
    p = global_pairs_1d(64, rng, n_pairs=50_000, near=0.25, far=0.5)
    assert p.i.min() == 0 and p.i.max() == 15
    assert p.j.min() == 32 and p.j.max() == 63


@pytest.mark.parametrize("window,n", [(0.001, 256), (1 / 256, 256), (1.5, 256), (0.0, 2048), (-0.1, 2048)])
def test_impossible_local_window_raises(window, n):
    with pytest.raises(ConfigError):
        local_pairs_1d(n, np.random.default_rng(0), n_windows=2, pairs_per_window=3, window=window)


def test_window_of_whole_domain_is_allowed():
    p = local_pairs_1d(10, np.random.default_rng(0), n_windows=2, pairs_per_window=500, window=1.0)
    assert p.i.min() == 0 and p.j.max() == 9


@pytest.mark.parametrize("near,far", [(0.0, 0.5), (0.6, 0.5), (0.4, 1.0), (-0.1, 0.5)])
def test_impossible_global_blocks_raise(near, far):
    with pytest.raises(ConfigError):
        global_pairs_1d(100, np.random.default_rng(0), n_pairs=5, near=near, far=far)
