"""Local and global pair samplers (spec §1.7): faithful reference ranges and the clean variant."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from specbias.errors import ConfigError
from specbias.metrics.pairs import (
    LOCAL_WINDOW,
    Pairs,
    global_pairs_1d,
    global_pairs_2d,
    knn_pairs,
    local_pairs_1d,
    local_pairs_2d,
    random_pairs,
    window_pairs_2d_faithful,
)
from specbias.runs import PatchPairSpec


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
    hi_near = math.ceil(Fraction(800, 2048) * n)
    lo_far = math.ceil(Fraction(1200, 2048) * n)  # 2048: the reference's 0..799 and 1200..
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


# --------------------------------------------------------------------------- 2D local


def patch_blocks(p: Pairs, w: int, per_patch: int):
    """Rows and columns of both ends of each pair, grouped ``(patches, per_patch)``."""
    i, j = p.i.reshape(-1, per_patch), p.j.reshape(-1, per_patch)
    return i // w, i % w, j // w, j % w


def all_patch_pairs(top: int, left: int, side: int, w: int) -> set[tuple[int, int]]:
    """Every unordered pair of distinct pixels of the patch, as (earlier, later) flat indices."""
    pix = [(top + r) * w + left + c for r in range(side) for c in range(side)]
    return set(itertools.combinations(sorted(pix), 2))


def test_faithful_local_2d_matches_reference():
    h = w = 64
    rng = np.random.default_rng(0)
    p = local_pairs_2d(h, w, rng, n_patches=3000, faithful=True)
    assert len(p) == 3000 * 36
    ri, ci, rj, cj = patch_blocks(p, w, 36)
    rows = np.concatenate([ri, rj], axis=1)
    cols = np.concatenate([ci, cj], axis=1)
    centre_r = rows.min(axis=1) + 1
    centre_c = cols.min(axis=1) + 1
    np.testing.assert_array_equal(rows.max(axis=1) - rows.min(axis=1), 2)  # 3×3 patches
    np.testing.assert_array_equal(cols.max(axis=1) - cols.min(axis=1), 2)
    assert centre_r.min() == 4 and centre_r.max() == 59 and np.unique(centre_r).size == 56
    assert centre_c.min() == 4 and centre_c.max() == 59 and np.unique(centre_c).size == 56
    assert not np.any(p.i == p.j)
    i, j = p.i.reshape(-1, 36), p.j.reshape(-1, 36)
    for k in range(0, 3000, 97):
        got = set(zip(i[k].tolist(), j[k].tolist()))
        assert got == all_patch_pairs(centre_r[k] - 1, centre_c[k] - 1, 3, w)


def test_faithful_local_2d_scales_the_centres():
    rng = np.random.default_rng(1)
    p = local_pairs_2d(128, 128, rng, n_patches=5000, faithful=True)
    ri, ci, rj, cj = patch_blocks(p, 128, 36)
    centre_r = np.minimum(ri.min(axis=1), rj.min(axis=1)) + 1
    assert centre_r.min() == 8 and centre_r.max() == 118  # 4·2 .. 59·2
    centre_c = np.minimum(ci.min(axis=1), cj.min(axis=1)) + 1
    assert centre_c.min() == 8 and centre_c.max() == 118
    np.testing.assert_array_equal(np.maximum(ri.max(axis=1), rj.max(axis=1)) + 1 - centre_r, 2)
    np.testing.assert_array_equal(np.maximum(ci.max(axis=1), cj.max(axis=1)) + 1 - centre_c, 2)
    with pytest.raises(ConfigError, match="pairs_per_patch=5"):
        local_pairs_2d(64, 64, rng, n_patches=2, pairs_per_patch=5, faithful=True)
    with pytest.raises(ConfigError, match="8×8"):
        local_pairs_2d(8, 8, rng, n_patches=2, faithful=True)


@pytest.mark.parametrize("size,side", [(64, 3), (128, 6), (512, 24), (100, 5)])
def test_clean_local_2d_all_pairs_of_a_fractional_patch(size, side):
    rng = np.random.default_rng(size)
    n_patches = 3 if size == 512 else 40
    per = side * side * (side * side - 1) // 2
    p = local_pairs_2d(size, size, rng, n_patches=n_patches)
    assert len(p) == n_patches * per
    assert not np.any(p.i == p.j) and np.all(p.i < p.j)
    i, j = p.i.reshape(-1, per), p.j.reshape(-1, per)
    for k in range(n_patches):
        ends = np.concatenate([i[k], j[k]])
        top, left = ends.min() // size, (ends % size).min()
        assert 0 <= top <= size - side and 0 <= left <= size - side
        assert set(zip(i[k].tolist(), j[k].tolist())) == all_patch_pairs(top, left, side, size)


def test_clean_local_2d_positions_cover_every_fit():
    rng = np.random.default_rng(2)
    h, w = 20, 30  # non-square: side round(3/64·30) = 1 -> 2
    p = local_pairs_2d(h, w, rng, n_patches=20_000)
    ri, ci, rj, cj = patch_blocks(p, w, 6)
    top = np.minimum(ri.min(axis=1), rj.min(axis=1))
    left = np.minimum(ci.min(axis=1), cj.min(axis=1))
    np.testing.assert_array_equal(np.unique(top), np.arange(h - 1))
    np.testing.assert_array_equal(np.unique(left), np.arange(w - 1))
    np.testing.assert_array_equal(np.maximum(ri.max(axis=1), rj.max(axis=1)) - top, 1)


def test_clean_local_2d_sampled_pairs_per_patch():
    rng = np.random.default_rng(3)
    side, per = 6, 200  # 128²: 6×6 patches hold 630 unordered pairs
    p = local_pairs_2d(128, 128, rng, n_patches=50, pairs_per_patch=per)
    assert len(p) == 50 * per
    assert np.all(p.i < p.j)
    i, j = p.i.reshape(-1, per), p.j.reshape(-1, per)
    for k in range(50):
        ends = np.concatenate([i[k], j[k]])
        top, left = ends.min() // 128, (ends % 128).min()
        got = list(zip(i[k].tolist(), j[k].tolist()))
        assert len(set(got)) == per  # no pair drawn twice
        assert set(got) <= all_patch_pairs(top, left, side, 128)
    full = local_pairs_2d(128, 128, rng, n_patches=2, pairs_per_patch=630)
    assert len(set(zip(full.i[:630].tolist(), full.j[:630].tolist()))) == 630
    with pytest.raises(ConfigError, match="631"):
        local_pairs_2d(128, 128, rng, n_patches=2, pairs_per_patch=631)


@pytest.mark.parametrize("patch", [0.0, -0.1, 1.5, math.nan])
def test_clean_local_2d_rejects_impossible_patch(patch):
    with pytest.raises(ConfigError):
        local_pairs_2d(64, 64, np.random.default_rng(0), n_patches=2, patch=patch)


# --------------------------------------------------------------------------- 2D global


def split_global(p: Pairs, w: int):
    return p.i // w, p.i % w, p.j // w, p.j % w


def test_faithful_global_2d_matches_reference():
    rng = np.random.default_rng(4)
    n = 100_000
    p = global_pairs_2d(64, 64, rng, n_pairs=n, faithful=True)
    assert len(p) == n
    r1, c1, r2, c2 = split_global(p, 64)
    assert r1.min() == 0 and r1.max() == 24 and np.unique(r1).size == 25
    assert r2.min() == 35 and r2.max() == 62 and np.unique(r2).size == 28  # 63 exclusive (B5)
    anti = c1 >= 35
    main = c1 <= 24
    assert np.all(anti | main)
    # anti-diagonal: p1 top-right, p2 bottom-left; main diagonal: p1 top-left, p2 bottom-right
    assert c1[anti].min() == 35 and c1[anti].max() == 62 and c2[anti].min() == 0 and c2[anti].max() == 24
    assert c1[main].min() == 0 and c1[main].max() == 24 and c2[main].min() == 35 and c2[main].max() == 62
    assert abs(anti.sum() - n / 2) < 5 * math.sqrt(n / 4)


@pytest.mark.parametrize("size", [64, 128, 512, 100])
def test_clean_global_2d_blocks(size):
    rng = np.random.default_rng(size)
    n = 200_000
    p = global_pairs_2d(size, size, rng, n_pairs=n)
    hi_near = math.ceil(Fraction(25, 64) * size)  # 64: 25
    lo_far = math.ceil(Fraction(35, 64) * size)  # 64: 35, the reference's far block
    r1, c1, r2, c2 = split_global(p, size)
    assert r1.min() == 0 and r1.max() == hi_near - 1
    assert r2.min() == lo_far and r2.max() == size - 1
    anti = c1 >= lo_far
    main = c1 < hi_near
    assert np.all(anti ^ main)
    assert np.all(c2[anti] < hi_near) and np.all(c2[main] >= lo_far)
    assert c1[main].min() == 0 and c1[anti].max() == size - 1
    assert c2[anti].min() == 0 and c2[main].max() == size - 1
    assert abs(anti.sum() - n / 2) < 5 * math.sqrt(n / 4)


def test_global_2d_non_square_and_errors():
    rng = np.random.default_rng(5)
    p = global_pairs_2d(40, 100, rng, n_pairs=50_000, near=0.25, far=0.5)
    r1, c1, r2, c2 = split_global(p, 100)
    assert r1.max() == 9 and r2.min() == 20 and r2.max() == 39
    assert c1.max() == 99 and c2.max() == 99 and min(c1.min(), c2.min()) == 0
    assert np.all((c1 < 25) | (c1 >= 50))
    for near, far in [(0.0, 0.5), (0.6, 0.5), (0.4, 1.0)]:
        with pytest.raises(ConfigError):
            global_pairs_2d(64, 64, rng, n_pairs=5, near=near, far=far)


# --------------------------------------------------------------------------- random pairs


def test_random_pairs():
    rng = np.random.default_rng(6)
    p = random_pairs(50, rng, n_pairs=200_000)
    assert len(p) == 200_000 and not np.any(p.i == p.j)
    assert p.i.min() == 0 and p.i.max() == 49 and p.j.min() == 0 and p.j.max() == 49
    counts = np.bincount(p.i, minlength=50)
    assert np.abs(counts - 4000).max() < 5 * math.sqrt(4000)
    loose = random_pairs(3, rng, n_pairs=1000, distinct=False)
    assert np.any(loose.i == loose.j)
    with pytest.raises(ConfigError):
        random_pairs(1, rng, n_pairs=3)
    with pytest.raises(ConfigError):
        random_pairs(10, rng, n_pairs=-1)


# --------------------------------------------------------------------------- real data (kNN)


def brute_knn(x: np.ndarray, labels: np.ndarray, anchor: int, k: int, different: bool):
    """Nearest (allowed) and farthest points of one anchor by a Python sort of every distance."""
    dist = [float(np.sqrt(((x[anchor] - x[j]) ** 2).sum())) for j in range(len(x))]
    allowed = [j for j in range(len(x)) if j != anchor and (labels[j] != labels[anchor] or not different)]
    near = sorted(allowed, key=lambda j: dist[j])[:k]
    far = sorted((j for j in range(len(x)) if j != anchor), key=lambda j: -dist[j])[:k]
    return near, far


@pytest.mark.parametrize("different", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_knn_pairs_match_brute_force(different, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3, 2, 2))
    labels = rng.integers(0, 3, 60)
    pairs = knn_pairs(
        torch.as_tensor(x), torch.as_tensor(labels), np.random.default_rng(seed), n_anchors=17, k=4,
        different_class=different, chunk=5,
    )  # fmt: skip
    local, glob = pairs["local"], pairs["global"]
    assert len(local) == len(glob) == 17 * 4
    anchors = local.i[::4]
    assert np.unique(anchors).size == 17
    np.testing.assert_array_equal(local.i, glob.i)
    flat = x.reshape(60, -1)
    for p, a in enumerate(anchors):
        near, far = brute_knn(flat, labels, int(a), 4, different)
        assert local.j[4 * p : 4 * p + 4].tolist() == near
        assert glob.j[4 * p : 4 * p + 4].tolist() == far
    assert not (local.i == local.j).any() and not (glob.i == glob.j).any()
    if different:
        assert (labels[local.i] != labels[local.j]).all()


def test_knn_pairs_same_for_any_chunk_and_all_anchors_when_too_many():
    rng = np.random.default_rng(3)
    x, labels = torch.as_tensor(rng.normal(size=(30, 5))), torch.as_tensor(rng.integers(0, 2, 30))
    a = knn_pairs(x, labels, np.random.default_rng(9), n_anchors=100, k=3, chunk=7)
    b = knn_pairs(x, labels, np.random.default_rng(9), n_anchors=100, k=3, chunk=256)
    for kind in ("local", "global"):
        np.testing.assert_array_equal(a[kind].i, b[kind].i)
        np.testing.assert_array_equal(a[kind].j, b[kind].j)
    assert sorted(a["local"].i[::3].tolist()) == list(range(30))  # every point is an anchor


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"k": 0}, "k >= 1"),
        ({"n_anchors": 0}, "at least one anchor"),
        ({"k": 12}, "more than 12 training points"),
        ({"k": 6}, "only 5 points of another class"),
    ],
)
def test_knn_pairs_bad_sizes_raise(kwargs, needle):
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(12, 2)))
    labels = torch.as_tensor(np.repeat([0, 1], [7, 5]))
    args = {"n_anchors": 12, "k": 2, **kwargs}
    with pytest.raises(ConfigError, match=needle):
        knn_pairs(x, labels, np.random.default_rng(0), **args)


# --------------------------------------------------------------------------- faithful natural images


def test_faithful_natural_windows_match_the_reference_at_512():
    """Spec §1.7, 512²: a 50×50 window r-25..r+24, c-25..c+24 with r, c ~ U{30..479}; two flat
    offsets ~ U{0..2498} drawn independently (self-pairs allowed, offset 2499 never drawn)."""
    windows, per = 300, 2000
    p = window_pairs_2d_faithful(512, 512, np.random.default_rng(4), n_windows=windows, pairs_per_window=per)
    assert len(p) == windows * per
    rows = np.concatenate([p.i.reshape(windows, per), p.j.reshape(windows, per)], axis=1) // 512
    cols = np.concatenate([p.i.reshape(windows, per), p.j.reshape(windows, per)], axis=1) % 512
    top, left = rows.min(1, keepdims=True), cols.min(1, keepdims=True)  # every row/col is hit
    centres = np.concatenate([top, left]).ravel() + 25
    assert centres.min() >= 30 and centres.max() <= 479 and np.ptp(centres) > 400
    offsets = (rows - top) * 50 + cols - left
    assert offsets.min() == 0 and offsets.max() == 2498
    assert np.bincount(offsets.ravel(), minlength=2500)[2499] == 0
    assert (p.i == p.j).any(), "self-pairs are part of the reference's sampler"


def test_faithful_natural_corners_match_the_reference_at_512():
    rng = np.random.default_rng(6)
    p = global_pairs_2d(512, 512, rng, n_pairs=50_000, faithful=True, scheme="natural")
    r1, c1, r2, c2 = p.i // 512, p.i % 512, p.j // 512, p.j % 512
    assert r1.min() == 0 and r1.max() == 224 and r2.min() == 275 and r2.max() == 510
    anti = c1 >= 275
    assert (c1[anti] <= 510).all() and (c2[anti] <= 224).all()
    assert (c1[~anti] <= 224).all() and (c2[~anti] >= 275).all()
    assert 0.45 < anti.mean() < 0.55


def test_faithful_natural_scheme_through_the_pair_spec():
    """PatchPairSpec(faithful_scheme="natural") uses the window sampler in faithful mode only."""
    spec = PatchPairSpec(patches=10, patch=50 / 512, pairs_per_patch=50, faithful_scheme="natural")
    faithful = spec.sample((64, 64), np.random.default_rng(0), faithful=True)
    clean = spec.sample((64, 64), np.random.default_rng(0), faithful=False)
    assert len(faithful["local"]) == 500 and (faithful["local"].i == faithful["local"].j).any()
    assert (clean["local"].i != clean["local"].j).all()
    with pytest.raises(ConfigError, match="unknown faithful pair scheme 'odd'"):
        PatchPairSpec(faithful_scheme="odd")
    with pytest.raises(ConfigError, match="do not fit a 8×8 image"):
        window_pairs_2d_faithful(8, 8, np.random.default_rng(0))


def test_faithful_depth_width_corners_match_the_e15_reference():
    """Spec §1.7, E15 at 64²: the same 3×3 patches as E4, corners [0,30) against [35,64)."""
    p = global_pairs_2d(64, 64, np.random.default_rng(7), n_pairs=50_000, faithful=True, scheme="depth_width")
    r1, r2 = p.i // 64, p.j // 64
    assert r1.min() == 0 and r1.max() == 29 and r2.min() == 35 and r2.max() == 63
    spec = PatchPairSpec(faithful_scheme="depth_width", global_pairs=5000)
    faithful = spec.sample((64, 64), np.random.default_rng(0), faithful=True)
    assert (faithful["global"].j // 64).max() == 63  # E4's faithful blocks stop at row 62
    clean = spec.sample((64, 64), np.random.default_rng(0), faithful=False)
    main = PatchPairSpec(global_pairs=5000).sample((64, 64), np.random.default_rng(0), faithful=False)
    np.testing.assert_array_equal(clean["global"].i, main["global"].i)  # clean mode: fractions, as E4
