"""Empirical NTK by the δ/activation identity.

* 2,048 1D points (the tone mixture's grid) on the 1D MLP-4×128, scalar output, at
  initialisation. Baseline: the PyTorch NTK tutorial's method, ``vmap(jacrev)`` per-example
  Jacobians then ``J Jᵀ`` (``empirical_ntk(method="func")``). Target (issue 4): ≥ 10×.
* 4,096 2D points (the 64² random image's grid) on the MLP-2×256 with 3 outputs (RGB): the trace
  ``(N, N)`` and the blocks ``(N, N, 3, 3)`` (issue 4: report the time). The torch.func
  contraction is too slow to run here (its Jacobian is 4096 × 3 × 66,819 floats and the
  contraction ~4 TFLOP: 221 s for the blocks, measured once on 2 shared cores), so the reference
  is the loss-gradient Gram of issue 3 on the same points (one cotangent; ratio < 1 expected:
  the trace takes 3 cotangents, the blocks 6 channel pairs).
"""

from __future__ import annotations

import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, RandomImage, ToneMixture, loss_gradient_gram
from specbias.metrics.ntk import empirical_ntk


def _setup_1d() -> tuple[MLP, torch.Tensor]:
    x = torch.as_tensor(ToneMixture().build(0).t, dtype=torch.float32)
    torch.manual_seed(0)
    return MLP(1, 128, 4, 1), x


def _setup_2d() -> tuple[MLP, torch.Tensor, torch.Tensor]:
    sig = RandomImage(64).build(0)
    torch.manual_seed(0)
    x = torch.as_tensor(sig.t, dtype=torch.float32)
    return MLP(2, 256, 2, 3), x, torch.as_tensor(sig.y, dtype=torch.float32)


def main() -> list[Result]:
    model, x = _setup_1d()
    ours = lambda: empirical_ntk(model, x, method="identity")  # noqa: E731
    base = lambda: empirical_ntk(model, x, method="func")  # noqa: E731
    assert torch.allclose(ours(), base(), rtol=1e-4, atol=1e-3)
    b1, o1 = interleaved(base, ours, repeats=2, inner=5)
    model2, x2, y2 = _setup_2d()
    gram = lambda: loss_gradient_gram(model2, x2, y2, method="gram")  # noqa: E731
    trace = lambda: empirical_ntk(model2, x2)  # noqa: E731
    blocks = lambda: empirical_ntk(model2, x2, mode="blocks")  # noqa: E731
    b2, o2 = interleaved(gram, trace, repeats=2)
    b3, o3 = interleaved(gram, blocks, repeats=2)
    note = "report the time; baseline: issue-3 loss-gradient Gram, same points"
    return [
        Result("ntk_2048_1d_mlp4x128_vs_torch_func_jacobian", b1, o1, "target >= 10x"),
        Result("ntk_trace_4096_2d_mlp2x256_rgb", b2, o2, note),
        Result("ntk_blocks_4096_2d_mlp2x256_rgb", b3, o3, note),
    ]
