"""Gradient confusion for 5,000 pairs on the 1D MLP-4×128 (N = 2048, after 300 Adam steps).

Baselines: the reference's two single-example backward passes per pair, and ``torch.func``
``vmap(grad)`` per-example gradients followed by pair dot products. Targets (issue 2): ≥ 150×
and ≥ 5×.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, ToneMixture, TrainConfig, train
from specbias.metrics.gradients import _func_grads, loss_gradient_pairs, mse_per_example
from specbias.metrics.pairs import Pairs


def _setup():
    sig = ToneMixture().build(0)
    x = torch.as_tensor(sig.t, dtype=torch.float32)
    y = torch.as_tensor(sig.y, dtype=torch.float32)
    torch.manual_seed(0)
    model = MLP(1, 128, 4, 1)
    train(model, x, y, TrainConfig(epochs=300))
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 2048, 5000), rng.integers(0, 2048, 5000)
    return model, x, y, Pairs(i, j)


def _naive(model, x, y, pairs):
    params = list(model.parameters())

    def grad_of(k):
        loss = mse_per_example(model(x[k : k + 1]), y[k : k + 1]).sum()
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    out = []
    for i, j in zip(pairs.i.tolist(), pairs.j.tolist()):
        gi, gj = grad_of(i), grad_of(j)
        out.append(torch.dot(gi, gj) / (gi.norm() * gj.norm()))
    return torch.stack(out)


def _vmap(model, x, y, pairs):
    g = _func_grads(model, x, y, mse_per_example)
    i, j = torch.as_tensor(pairs.i), torch.as_tensor(pairs.j)
    return (g[i] * g[j]).sum(1) / (g[i].norm(dim=1) * g[j].norm(dim=1))


def main() -> list[Result]:
    model, x, y, pairs = _setup()
    ours = lambda: loss_gradient_pairs(model, x, y, pairs)  # noqa: E731
    b1, o1 = interleaved(lambda: _naive(model, x, y, pairs), ours, repeats=2, inner=5)
    b2, o2 = interleaved(lambda: _vmap(model, x, y, pairs), ours, repeats=3, inner=5)
    return [
        Result("confusion_5000_pairs_vs_two_backward_passes", b1, o1, "target >= 150x"),
        Result("confusion_5000_pairs_vs_torch_func_vmap", b2, o2, "target >= 5x"),
    ]
