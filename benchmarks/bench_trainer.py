"""Trainer overhead: ``specbias.train`` with probes off against a bare hand-written loop.

Same model, data, optimiser and 500 full-batch epochs on the 1D MLP-4×128 (N = 2048).
Target (issue 2): ours within 1.15× of the bare loop, i.e. ratio >= 0.87.
"""

from __future__ import annotations

import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, ToneMixture, TrainConfig, train

EPOCHS = 500


def _data():
    sig = ToneMixture().build(0)
    return torch.as_tensor(sig.t, dtype=torch.float32), torch.as_tensor(sig.y, dtype=torch.float32)


def _bare(x, y):
    torch.manual_seed(0)
    model = MLP(1, 128, 4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(EPOCHS):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()


def _ours(x, y):
    torch.manual_seed(0)
    train(MLP(1, 128, 4, 1), x, y, TrainConfig(epochs=EPOCHS))


def main() -> list[Result]:
    x, y = _data()
    base, ours = interleaved(lambda: _bare(x, y), lambda: _ours(x, y), repeats=3)
    return [Result("trainer_vs_bare_loop", base, ours, "target ratio >= 0.87 (within 1.15x)")]
