"""Local, global and random pair samplers over a 1D grid of ``N`` samples or an ``H×W`` image
(spec §1.7). Image pixels are flat row-major indices, ``index = row·W + col``.

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

Images (the 64×64 main-text suite, E4):

* :func:`local_pairs_2d`, faithful: a 3×3 patch centred at ``(r, c)``, ``r, c ~ U{4..59}`` (the
  integers 4 and 59 scaled by ``H/64`` and ``W/64`` and rounded for other sizes; the patch stays
  3×3), and **all 36 unordered pairs** of distinct pixels of the patch. Clean: a square patch of
  side ``s = max(2, round(patch·W))`` (``patch`` a fraction of the side, 3/64 by default: 3 px at
  64², 6 at 128², 24 at 512²), its top-left corner uniform over every position that fits, and
  either all ``s²(s²−1)/2`` unordered pairs of distinct pixels or ``pairs_per_patch`` of them
  drawn without replacement.
* :func:`global_pairs_2d`: opposite corners. Per pair, with probability ½ the anti-diagonal
  (``p1`` in rows ``near`` × cols ``far``, ``p2`` in rows ``far`` × cols ``near``), otherwise the
  main diagonal (``p1`` in ``near²``, ``p2`` in ``far²``). Faithful: ``near = [0, 25)`` and
  ``far = [35, 63)`` at 64 (63 exclusive, bug B5), scaled by ``side/64``; clean:
  ``[0, ceil(near·side))`` and ``[ceil(far·side), side)``.
* Natural images (E5, E6), faithful only: :func:`window_pairs_2d_faithful`, the reference's 512²
  sampler -- a 50×50 window, rows ``r-25 .. r+24`` and columns ``c-25 .. c+24`` around
  ``r, c ~ U{30..479}``, two flat offsets ``~ U{0..2498}`` drawn independently (self-pairs
  allowed, offset 2499 never drawn, as in 1D), 100 windows × 500 pairs; and
  ``global_pairs_2d(..., scheme="natural")`` with ``near = [0, 225)``, ``far = [275, 511)`` at 512.
  Every integer scales by ``side/512``. The clean samplers above cover natural images with
  ``patch = 50/512``, ``near = 0.44``, ``far = 0.537``.
* :func:`random_pairs`: both flat indices uniform (E7, no local/global split). The reference's
  E7 sampler, ``U{0..N-2}`` with self-pairs, is ``random_pairs(N - 1, rng, ..., distinct=False)``.

In :func:`local_pairs_2d` and :func:`global_pairs_2d`, ``i`` is always the earlier pixel in
row-major order; local pairs come grouped patch by patch (patch ``p`` owns one contiguous block).

Real data (E17, E18), :func:`knn_pairs`: anchors drawn uniformly without replacement from the
training set; *local* pairs join each anchor to its ``k`` nearest training points by L2 distance
(in normalised pixel space), excluding the anchor itself and, by default, restricted to a
different class; *global* pairs join it to its ``k`` farthest points. The reference searches the
different-class neighbours among the anchor's 5,000 nearest points and fails when fewer than
``k`` of them are of another class (bug B14); an exact search over the whole training set gives
the same neighbours whenever the reference succeeds, so the pool is not mirrored. Distances come
from ``torch.cdist`` for a chunk of anchors at a time and the neighbours from a boolean class mask
and ``topk`` (the reference's list-membership filter, B30, is not needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias._checks import check_int
from specbias.errors import ConfigError

REFERENCE_N = 2048
LOCAL_WINDOW = 50 / 2048
"""The reference's 1D window as a fraction of the domain (≈ 0.024)."""
GLOBAL_NEAR = 800 / 2048
GLOBAL_FAR = 1200 / 2048
"""Clean 1D global blocks: the spec's 0.39 and 0.586, exact so that N = 2048 gets 0..799 and 1200..."""

REFERENCE_SIDE = 64
LOCAL_PATCH_2D = 3 / 64
"""The reference's 3×3 patch at 64² as a fraction of the image side (≈ 0.047)."""
GLOBAL_NEAR_2D = 25 / 64
GLOBAL_FAR_2D = 35 / 64
"""Clean 2D corner blocks ``[0, 25/64)`` and ``[35/64, 1)`` of the side: the spec's 0.39 and 0.547,
exact so that a 64² grid gets the reference's rows 0..24 and 35..."""
FAITHFUL_CORNERS = {
    "main": (25, 35, 63, 64),
    "depth_width": (30, 35, 64, 64),
    "natural": (225, 275, 511, 512),
}
"""The reference's corner blocks ``[0, near)`` and ``[far, end)`` at its image side, per suite: E4,
E15 (depth and width) and the natural images (spec §1.7)."""


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


# --------------------------------------------------------------------------- images


def _check_image(h: int, w: int) -> None:
    if h < 2 or w < 2:
        raise ConfigError(f"image grid must be at least 2×2, got {h}×{w}")


def _scaled_side(value: int, side: int) -> int:
    return round(value * side / REFERENCE_SIDE)


def _unordered_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``size(size−1)/2`` pairs ``a < b`` of ``0..size-1``, in lexicographic order."""
    a, b = np.triu_indices(size, k=1)
    return a.astype(np.int64), b.astype(np.int64)


def local_pairs_2d(
    h: int,
    w: int,
    rng: np.random.Generator,
    *,
    n_patches: int,
    patch: float = LOCAL_PATCH_2D,
    pairs_per_patch: int | None = None,
    faithful: bool = False,
) -> Pairs:
    """Pairs of distinct pixels from ``n_patches`` small square patches of an ``h×w`` grid.

    Faithful: 3×3 patches centred at ``r ~ U{4..59}·h/64``, ``c ~ U{4..59}·w/64`` (exact at 64),
    all 36 pairs each (``patch`` is ignored; ``pairs_per_patch`` must be None). Clean:
    side ``s = max(2, round(patch·w))``, position uniform over all that fit, all pairs
    (``pairs_per_patch=None``) or ``pairs_per_patch`` distinct unordered pairs per patch.
    """
    _check_image(h, w)
    check_int("number of patches", n_patches, 0)
    if faithful:
        if pairs_per_patch is not None:
            raise ConfigError(
                f"the faithful 2D sampler uses all 36 pairs of each 3×3 patch; got pairs_per_patch="
                f"{pairs_per_patch} (use None)"
            )
        r_lo, r_hi = _scaled_side(4, h), _scaled_side(59, h)
        c_lo, c_hi = _scaled_side(4, w), _scaled_side(59, w)
        if min(r_lo, c_lo) < 1 or r_hi > h - 2 or c_hi > w - 2:
            raise ConfigError(
                f"the faithful 2D sampler's 3×3 patches centred at rows {r_lo}..{r_hi}, cols "
                f"{c_lo}..{c_hi} do not fit a {h}×{w} image"
            )
        side = 3
        tops = rng.integers(r_lo, r_hi + 1, n_patches) - 1
        lefts = rng.integers(c_lo, c_hi + 1, n_patches) - 1
    else:
        side = max(2, round(patch * w)) if np.isfinite(patch) else 0
        if not patch > 0 or not 2 <= side <= min(h, w):
            raise ConfigError(
                f"local patch {patch} of a {h}×{w} image is {side} px wide; need a fraction in "
                f"(0, 1] whose patch fits the image"
            )
        tops = rng.integers(0, h - side + 1, n_patches)
        lefts = rng.integers(0, w - side + 1, n_patches)
    a, b = _unordered_pairs(side * side)
    if pairs_per_patch is None:
        a_idx = np.broadcast_to(a, (n_patches, a.size))
        b_idx = np.broadcast_to(b, (n_patches, b.size))
    else:
        check_int("pairs per patch", pairs_per_patch, 0)
        if pairs_per_patch > a.size:
            raise ConfigError(
                f"pairs_per_patch={pairs_per_patch} exceeds the {a.size} distinct pairs of a "
                f"{side}×{side} patch"
            )
        picks = np.stack([rng.choice(a.size, pairs_per_patch, replace=False) for _ in range(n_patches)])
        picks = picks.reshape(n_patches, pairs_per_patch)
        a_idx, b_idx = a[picks], b[picks]
    corner = (tops * w + lefts)[:, None]
    i = corner + (a_idx // side) * w + a_idx % side
    j = corner + (b_idx // side) * w + b_idx % side
    return Pairs(i.reshape(-1).astype(np.int64), j.reshape(-1).astype(np.int64))


def global_pairs_2d(
    h: int,
    w: int,
    rng: np.random.Generator,
    *,
    n_pairs: int,
    near: float = GLOBAL_NEAR_2D,
    far: float = GLOBAL_FAR_2D,
    faithful: bool = False,
    scheme: str = "main",
) -> Pairs:
    """``n_pairs`` pairs of pixels in opposite corner blocks, each diagonal with probability ½.

    Faithful: the reference's blocks of :data:`FAITHFUL_CORNERS` for ``scheme`` ("main": ``[0, 25)``
    and ``[35, 63)`` at 64; "natural": ``[0, 225)`` and ``[275, 511)`` at 512), scaled per axis
    (``near`` and ``far`` are then ignored). Clean: ``[0, ceil(near·side))`` and
    ``[ceil(far·side), side)``.
    """
    _check_image(h, w)
    check_int("number of pairs", n_pairs, 0)
    if scheme not in FAITHFUL_CORNERS:
        raise ConfigError(f"unknown faithful pair scheme {scheme!r}; allowed: {', '.join(FAITHFUL_CORNERS)}")
    ref_near, ref_far, ref_end, ref_side = FAITHFUL_CORNERS[scheme]

    def blocks(side: int) -> tuple[int, int, int, int]:
        if faithful:
            scale = side / ref_side
            return 0, round(ref_near * scale), round(ref_far * scale), round(ref_end * scale)
        return 0, int(np.ceil(near * side)), int(np.ceil(far * side)), side

    if not faithful and not 0 < near <= far < 1:
        raise ConfigError(f"global blocks need 0 < near <= far < 1, got near={near}, far={far}")
    r_near, r_far, c_near, c_far = blocks(h)[:2], blocks(h)[2:], blocks(w)[:2], blocks(w)[2:]
    if r_near[1] < 1 or c_near[1] < 1 or r_far[0] >= r_far[1] or c_far[0] >= c_far[1]:
        raise ConfigError(f"global corner blocks are empty on a {h}×{w} image")
    anti = rng.random(n_pairs) < 0.5
    row1 = rng.integers(*r_near, n_pairs)
    row2 = rng.integers(*r_far, n_pairs)
    col1 = np.where(anti, rng.integers(*c_far, n_pairs), rng.integers(*c_near, n_pairs))
    col2 = np.where(anti, rng.integers(*c_near, n_pairs), rng.integers(*c_far, n_pairs))
    return Pairs(row1 * w + col1, row2 * w + col2)


def window_pairs_2d_faithful(
    h: int, w: int, rng: np.random.Generator, *, n_windows: int = 100, pairs_per_window: int = 500
) -> Pairs:
    """The reference's natural-image local sampler (E5, E6), every integer scaled by ``side/512``.

    A ``2q×2q`` window (``q = 25`` at 512) spans rows ``r-q .. r+q-1`` and columns ``c-q .. c+q-1``
    around ``r ~ U{30..479}``, ``c ~ U{30..479}``; each pair is two flat offsets into the window drawn
    independently from ``U{0..4q²-2}``, so self-pairs occur (bug B4) and the last pixel is never
    drawn (B5). Pairs come grouped window by window; ``i`` is the first draw, not the earlier pixel.
    """
    _check_image(h, w)
    check_int("number of windows", n_windows, 0)
    check_int("pairs per window", pairs_per_window, 0)
    qr, qc = round(25 * h / 512), round(25 * w / 512)
    r_lo, r_hi, c_lo, c_hi = (round(v * s / 512) for v, s in ((30, h), (479, h), (30, w), (479, w)))
    if min(qr, qc) < 1 or r_lo - qr < 0 or c_lo - qc < 0 or r_hi + qr > h or c_hi + qc > w:
        raise ConfigError(f"the faithful natural-image windows do not fit a {h}×{w} image")
    rows = np.repeat(rng.integers(r_lo, r_hi + 1, n_windows) - qr, pairs_per_window)
    cols = np.repeat(rng.integers(c_lo, c_hi + 1, n_windows) - qc, pairs_per_window)
    side_c, size = 2 * qc, 4 * qr * qc
    a = rng.integers(0, size - 1, rows.size)
    b = rng.integers(0, size - 1, rows.size)
    return Pairs((rows + a // side_c) * w + cols + a % side_c, (rows + b // side_c) * w + cols + b % side_c)


def random_pairs(n: int, rng: np.random.Generator, *, n_pairs: int, distinct: bool = True) -> Pairs:
    """``n_pairs`` pairs of indices uniform on ``0..n-1`` (E7); ``distinct`` excludes ``i == j``."""
    check_int("number of pairs", n_pairs, 0)
    if n < (2 if distinct else 1):
        raise ConfigError(f"random pairs need n >= {2 if distinct else 1} samples, got {n}")
    if distinct:
        i, j = _distinct_offsets(rng, n, n_pairs)
        return Pairs(i, j)
    return Pairs(rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs))


# --------------------------------------------------------------------------- real data


def knn_pairs(
    x: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
    *,
    n_anchors: int,
    k: int,
    different_class: bool = True,
    chunk: int = 256,
) -> dict[str, Pairs]:
    """Nearest-neighbour (``"local"``) and farthest-point (``"global"``) pairs of real data.

    ``x`` is ``(N, ...)`` (flattened to vectors), ``labels`` ``(N,)``. ``min(n_anchors, N)``
    anchors are drawn without replacement; each gives ``k`` local pairs ``(anchor, neighbour)``,
    nearest first, among points of another class (``different_class``) or any other point, and
    ``k`` global pairs ``(anchor, far point)``, farthest first. Pairs come grouped by anchor.
    """
    n = int(x.shape[0])
    if k < 1 or n_anchors < 1:
        raise ConfigError(f"kNN pairs need k >= 1 and at least one anchor, got k={k}, anchors={n_anchors}")
    if k > n - 1:
        raise ConfigError(f"k={k} neighbours need more than {k} training points, got {n}")
    anchors = rng.choice(n, size=min(n_anchors, n), replace=False)
    points = x.reshape(n, -1).double()
    labels = torch.as_tensor(labels, device=x.device)
    index = torch.arange(n, device=x.device)
    near, far = [], []
    for s in range(0, anchors.size, chunk):
        a = torch.as_tensor(anchors[s : s + chunk], device=x.device)
        dist = torch.cdist(points[a], points)
        itself = index[None, :] == a[:, None]
        excluded = labels[None, :] == labels[a][:, None] if different_class else itself
        short = int((~excluded).sum(1).min())
        if short < k:
            kind = "points of another class" if different_class else "other points"
            raise ConfigError(f"k={k} neighbours, but an anchor has only {short} {kind} in the training set")
        near.append(dist.masked_fill(excluded, torch.inf).topk(k, largest=False).indices)
        far.append(dist.masked_fill(itself, -torch.inf).topk(k, largest=True).indices)
    i = np.repeat(anchors, k).astype(np.int64)

    def flat(parts: list[torch.Tensor]) -> np.ndarray:
        return torch.cat(parts).reshape(-1).cpu().numpy().astype(np.int64)

    return {"local": Pairs(i, flat(near)), "global": Pairs(i.copy(), flat(far))}
