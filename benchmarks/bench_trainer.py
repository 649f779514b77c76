"""Trainer overhead and step speed: ``specbias.train`` with probes off against bare hand-written loops.

* Full batch, the 1D MLP-4×128 (N = 2048), 500 epochs, against a bare loop with the same (fused)
  Adam: the trainer's own overhead. Target (issue 2): within 1.15×, i.e. ratio >= 0.87.
* Mini-batch, the E4 shape (4,096 points of 22 PE features, MLP-2×128, batch 256, 30 epochs), against
  the loop a user would write (``torch.optim.Adam`` defaults, ``x[idx]`` per batch): what the fused
  optimiser and the one-gather-per-epoch batching buy per step (issue 3's E4 time target).
"""

from __future__ import annotations

import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, ToneMixture, TrainConfig, train

EPOCHS = 500
MINI_EPOCHS = 30


def _data():
    sig = ToneMixture().build(0)
    return torch.as_tensor(sig.t, dtype=torch.float32), torch.as_tensor(sig.y, dtype=torch.float32)


def _bare(x, y):
    torch.manual_seed(0)
    model = MLP(1, 128, 4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    for _ in range(EPOCHS):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()


def _ours(x, y):
    torch.manual_seed(0)
    train(MLP(1, 128, 4, 1), x, y, TrainConfig(epochs=EPOCHS))


def _mini_data():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(4096, 22, generator=gen), torch.rand(4096, 3, generator=gen)


def _bare_mini(x, y):
    torch.manual_seed(0)
    model = MLP(22, 128, 2, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(MINI_EPOCHS):
        for idx in torch.randperm(x.shape[0], generator=gen).split(256):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            opt.step()


def _ours_mini(x, y):
    torch.manual_seed(0)
    train(MLP(22, 128, 2, 3), x, y, TrainConfig(epochs=MINI_EPOCHS, batch_size=256))


def main() -> list[Result]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as inside the runner
    try:
        x, y = _data()
        base, ours = interleaved(lambda: _bare(x, y), lambda: _ours(x, y), repeats=3)
        xm, ym = _mini_data()
        base_m, ours_m = interleaved(lambda: _bare_mini(xm, ym), lambda: _ours_mini(xm, ym), repeats=3)
    finally:
        torch.set_num_threads(threads)
    steps = MINI_EPOCHS * 16
    return [
        Result("trainer_vs_bare_loop", base, ours, "target ratio >= 0.87 (within 1.15x)"),
        Result(
            "trainer_minibatch_vs_default_adam_loop",
            base_m,
            ours_m,
            f"{1e3 * ours_m / steps:.2f} ms/step vs {1e3 * base_m / steps:.2f}",
        ),
    ]
