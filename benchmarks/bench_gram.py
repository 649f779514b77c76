"""The full 4096×4096 per-example gradient-cosine matrix of the 64² random image, MLP-2×256.

Ours: the δ/activation Gram identity. Baseline: ``torch.func`` vmap(grad) per-example gradients
and ``G Gᵀ``. Target (issue 3): ours under 1 s.
"""

from __future__ import annotations

import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, RandomImage, loss_gradient_gram


def _setup():
    sig = RandomImage(64).build(0)
    torch.manual_seed(0)
    x = torch.as_tensor(sig.t, dtype=torch.float32)
    return MLP(2, 256, 2, 3), x, torch.as_tensor(sig.y, dtype=torch.float32)


def _cosines(gram: torch.Tensor) -> torch.Tensor:
    norms = gram.diagonal().sqrt()
    return gram / (norms[:, None] * norms[None, :])


def main() -> list[Result]:
    model, x, y = _setup()
    ours = lambda: _cosines(loss_gradient_gram(model, x, y, method="gram"))  # noqa: E731
    base = lambda: _cosines(loss_gradient_gram(model, x, y, method="func"))  # noqa: E731
    assert torch.allclose(ours(), base(), atol=1e-4)
    b, o = interleaved(base, ours, repeats=2)
    return [Result("gradient_cosine_matrix_4096_vs_torch_func", b, o, "target: ours < 1 s")]
