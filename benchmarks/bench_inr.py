"""Probes and encodings of today's INR families.

* The full 4,096 × 4,096 loss-gradient Gram of a 4×256 SIREN (``sin(30 z)``, Sitzmann's init, 3
  outputs) on the 64² random image, 198,915 parameters. Ours: the Gram identity on any
  ``nn.Linear`` model (forward hooks + autograd δ, symmetric tiles). Baseline: ``torch.func``
  ``vmap(grad)`` per-example gradients (in chunks of 256 examples, into one ``(N, P)`` float32 matrix,
  3.3 GB) and ``G Gᵀ`` (6.7 TFLOP), timed once after a warm-up on 64 points: it takes minutes.
  Target (issue 13): ≥ 10× and ours under 2 s.
* Multiresolution hash encoding forward + backward (table gradient) on 65,536 2D points: 16 levels,
  2 features, N_min = 16, N_max = 2048, T = 2^19 (the 4 finest levels hashed). Baseline: the same 16
  levels as dense grids of the same resolutions, each looked up by ``grid_sample`` (bilinear,
  ``align_corners=True``) with its gradient. And one level of 128² (no hashing) against one
  ``grid_sample``. Target: within 3× (ratio ≥ 0.33).
"""

from __future__ import annotations

import itertools
import math
import time

import torch
from torch import nn

from benchmarks.common import Result, interleaved
from specbias import HashGrid, RandomImage, loss_gradient_gram
from specbias.hashgrid import growth_factor_for
from specbias.metrics.gradients import _func_grads, mse_per_example

FUNC_CHUNK = 256


class Sine(nn.Module):
    """SIREN's activation ``sin(ω₀ z)`` (Sitzmann et al. 2020), ω₀ = 30."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(30.0 * z)


def siren(in_dim: int = 2, width: int = 256, depth: int = 4, out_dim: int = 3) -> nn.Sequential:
    """A local 4×256 SIREN: first layer ``U(−1/n, 1/n)``, others ``U(−√(6/n)/ω₀, √(6/n)/ω₀)``."""
    dims = [in_dim] + [width] * depth
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        lin = nn.Linear(a, b)
        bound = 1 / a if i == 0 else math.sqrt(6 / a) / 30.0
        nn.init.uniform_(lin.weight, -bound, bound)
        layers += [lin, Sine()]
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def func_gram(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Baseline: per-example gradients by ``torch.func`` in chunks, then ``G Gᵀ``."""
    n_params = sum(p.numel() for p in model.parameters())
    g = torch.empty(x.shape[0], n_params)
    for s in range(0, x.shape[0], FUNC_CHUNK):
        g[s : s + FUNC_CHUNK] = _func_grads(
            model, x[s : s + FUNC_CHUNK], y[s : s + FUNC_CHUNK], mse_per_example
        )
    return g @ g.T


def _once(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def siren_gram() -> Result:
    sig = RandomImage(64).build(0)
    torch.manual_seed(0)
    model = siren()
    x = torch.as_tensor(sig.t, dtype=torch.float32)
    y = torch.as_tensor(sig.y, dtype=torch.float32)
    func_gram(model, x[:64], y[:64])  # warm-up
    ours_times = []
    for _ in range(3):
        t, gram = _once(lambda: loss_gradient_gram(model, x, y, method="gram"))
        ours_times.append(t)
    base, ref = _once(lambda: func_gram(model, x, y))
    err = float((gram - ref).abs().max() / ref.abs().max())
    assert err < 1e-4, err
    note = f"target >= 10x and ours < 2 s; max rel. difference {err:.1e}"
    return Result("siren4x256_loss_gradient_gram_4096_vs_torch_func", base, min(ours_times), note)


def _dense_grids(hg: HashGrid) -> list[torch.Tensor]:
    return [torch.zeros(1, hg.features, r + 1, r + 1, requires_grad=True) for r in hg.resolutions]


def hashgrid_vs_grid_sample(levels: int, finest: int, log2_table: int, name: str) -> Result:
    base = 16 if levels > 1 else finest
    growth = growth_factor_for(base, finest, levels) if levels > 1 else 1.0
    hg = HashGrid(2, levels, log2_table, 2, base, growth, seed=0)
    grids = _dense_grids(hg)
    x = torch.rand(65536, 2, generator=torch.Generator().manual_seed(0))
    coords = (x * 2 - 1)[None, None]

    def dense() -> None:
        out = [nn.functional.grid_sample(g, coords, align_corners=True)[0, :, 0].T for g in grids]
        torch.autograd.grad(torch.cat(out, 1).sum(), grids)

    def ours() -> None:
        torch.autograd.grad(hg(x).sum(), hg.table)

    b, o = interleaved(dense, ours, repeats=5)
    hashed = levels - hg.n_dense
    return Result(name, b, o, f"target: ratio >= 0.33 (within 3x); {hashed} of {levels} levels hashed")


def main() -> list[Result]:
    return [
        hashgrid_vs_grid_sample(16, 2048, 19, "hashgrid_16lv_65536pts_fwd_bwd_vs_grid_sample"),
        hashgrid_vs_grid_sample(1, 128, 19, "hashgrid_1lv_128_65536pts_fwd_bwd_vs_grid_sample"),
        siren_gram(),
    ]
