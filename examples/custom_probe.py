"""Add a probe: any object with ``name``, ``schedule``, ``before_update`` and ``measure(model)``.

This one records the mean absolute output of the network on the grid. Probes run under
``torch.no_grad`` and never touch the optimiser, so the trajectory is the same with or without them.
Run: ``python examples/custom_probe.py``.
"""

from dataclasses import dataclass

import numpy as np
import torch

import specbias as sb


@dataclass
class OutputScaleProbe:
    x: torch.Tensor
    schedule: sb.Schedule
    name: str = "output_scale"
    before_update: bool = False

    def measure(self, model: sb.MLP) -> dict[str, np.ndarray]:
        return {"mean_abs": np.asarray(model(self.x).abs().mean().item())}


signal = sb.ToneMixture(n=256, freqs=(3, 7, 15)).build(seed=0)
x = torch.as_tensor(signal.t, dtype=torch.float32)
y = torch.as_tensor(signal.y, dtype=torch.float32)
torch.manual_seed(0)
model = sb.MLP(1, width=32, depth=2)
probes = [
    OutputScaleProbe(x, sb.Schedule(every=20, last=True)),
    sb.RegionProbe(x, sb.Schedule(every=20, last=True)),
]
result = sb.train(model, x, y, sb.TrainConfig(epochs=100), probes)
for epoch, scale, regions in zip(
    result.records["output_scale"]["epochs"],
    result.records["output_scale"]["mean_abs"],
    result.records["regions"]["all"],
):
    print(f"epoch {epoch:3d}: mean |f| {scale:.3f}, regions on the grid {regions}")
