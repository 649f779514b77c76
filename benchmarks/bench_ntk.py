"""Empirical NTK: the δ/activation identity against the ``torch.func`` Jacobian contraction.

* 2,048 1D points (the tone mixture's grid) on the 1D MLP-4×128, scalar output, at
  initialisation. Baseline: the PyTorch NTK tutorial's method, ``vmap(jacrev)`` per-example
  Jacobians then ``J Jᵀ`` (``empirical_ntk(method="func")``). Target (issue 4): ≥ 10×.
* 4,096 2D points (the 64² random image's grid) on the MLP-2×256 with 3 outputs (RGB): the
  ``(N, N, 3, 3)`` blocks. The same baseline, timed once (its Jacobian is 4096×3×67k floats).
"""

from __future__ import annotations

import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, RandomImage, ToneMixture
from specbias.metrics.ntk import empirical_ntk


def _setup_1d() -> tuple[MLP, torch.Tensor]:
    x = torch.as_tensor(ToneMixture().build(0).t, dtype=torch.float32)
    torch.manual_seed(0)
    return MLP(1, 128, 4, 1), x


def _setup_2d() -> tuple[MLP, torch.Tensor]:
    x = torch.as_tensor(RandomImage(64).build(0).t, dtype=torch.float32)
    torch.manual_seed(0)
    return MLP(2, 256, 2, 3), x


def main() -> list[Result]:
    model, x = _setup_1d()
    ours = lambda: empirical_ntk(model, x, method="identity")  # noqa: E731
    base = lambda: empirical_ntk(model, x, method="func")  # noqa: E731
    assert torch.allclose(ours(), base(), rtol=1e-4, atol=1e-3)
    b1, o1 = interleaved(base, ours, repeats=2)
    model2, x2 = _setup_2d()
    ours2 = lambda: empirical_ntk(model2, x2, mode="blocks", method="identity")  # noqa: E731
    base2 = lambda: empirical_ntk(model2, x2, mode="blocks", method="func")  # noqa: E731
    b2, o2 = interleaved(base2, ours2, repeats=1)
    return [
        Result("ntk_2048_1d_mlp4x128_vs_torch_func_jacobian", b1, o1, "target >= 10x"),
        Result("ntk_blocks_4096_2d_mlp2x256_rgb_vs_torch_func_jacobian", b2, o2, "report the time"),
    ]
