"""Exact activation regions (issue 7) against sampling and against regioncam, on the issue's three targets.

* 1D, the 1D 4×128 net at initialisation on ``[0, 1]`` with raw input: exact pieces (``exact_regions_1d``)
  vs dense sampling at 10⁵ points (``dense_region_count_1d``, float64). Target: ≥ 100× faster.
* 1D, the same net on NeRF PE with 7 octaves (the paper's 1D "L=6"): exact vs dense sampling at 10⁶
  points, which is not even exact. Targets: the whole exact count under 1 s, and ≥ 5× faster.
* 2D, raw coordinates on ``[-1, 1]²``: the exact partition (``exact_partition_2d``, no inradii) of a
  2→64→64→1 and of the issue's 2→256→256→1 net vs regioncam on the same net (aim: within 5×, i.e. a
  ratio ≥ 0.2); without regioncam the baseline is the 512² grid count, which is not exact.

Everything runs on one thread (torch and the BLAS under NumPy), as a run does inside the runner: the
small matrices of the 1D marching gain nothing from a second thread, and on a shared 2-core machine
oversubscribed threads cost the exact 1D counts 2-4×.
"""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from benchmarks.common import Result, interleaved
from specbias import MLP, NeRFPE, Raw, activation_patterns, count_regions
from specbias.metrics.regions import (
    dense_region_count_1d,
    exact_partition_2d,
    exact_regions_1d,
    missed_pieces,
)


def _net(in_dim: int, width: int, depth: int) -> MLP:
    torch.manual_seed(0)
    return MLP(in_dim, width, depth, 1)


def _bench_1d(label: str, encoding, n: int) -> Result:
    model = _net(encoding.out_dim, 128, 4)
    regions = exact_regions_1d(model, encoding)
    dense = dense_region_count_1d(model, encoding, 0.0, 1.0, n)
    missed = missed_pieces(regions, n).size
    base, ours = interleaved(
        lambda: dense_region_count_1d(model, encoding, 0.0, 1.0, n),
        lambda: exact_regions_1d(model, encoding),
        repeats=1,
        inner=3,
    )
    note = (
        f"exact {regions.n_pieces} pieces ({regions.n_distinct} distinct, {regions.n_unresolved} unresolved, "
        f"narrowest {regions.widths.min():.1e}) in {ours:.3f}s vs dense {n:.0e} {dense} ({missed} pieces "
        "hold no sample)"
    )
    return Result(f"exact_1d_{label}_4x128_vs_dense_{n:.0e}", base, ours, note)


def _regioncam_count(model: MLP) -> int:
    import regioncam

    rc = regioncam.Regioncam(size=1)
    for layer in model.layers[:-1]:
        rc.linear(layer.weight.detach().float().numpy().T, layer.bias.detach().float().numpy())
        rc.relu()
    return rc.num_faces


@torch.no_grad()
def _grid_count(model: MLP, n: int = 512) -> int:
    xs = np.linspace(-1.0, 1.0, n)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    return count_regions(activation_patterns(model.double(), torch.as_tensor(grid)).packed())


def _bench_2d(width: int) -> Result:
    model = _net(2, width, 2)

    def ours():
        return exact_partition_2d(model, None, (-1.0, -1.0), (1.0, 1.0), inradius=False).n_regions

    try:
        import regioncam  # noqa: F401

        baseline, name = (lambda: _regioncam_count(model)), "regioncam"
    except ImportError:
        copy = _net(2, width, 2)
        baseline, name = (lambda: _grid_count(copy)), "grid 512²"
    exact, other = ours(), baseline()
    base, mine = interleaved(baseline, ours, repeats=2)
    note = f"exact {exact} regions vs {name} {other}; aim: within 5x of regioncam"
    return Result(f"exact_2d_raw_2x{width}_vs_{name.split()[0]}", base, mine, note)


def main() -> list[Result]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return [
                _bench_1d("raw", Raw(), 100_000),
                _bench_1d("pe7", NeRFPE(n_freqs=7), 1_000_000),
                _bench_2d(64),
                _bench_2d(256),
            ]
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for result in main():
        print(result.line(), flush=True)
