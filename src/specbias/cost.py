"""A cost model for planned runs: training FLOPs and an expected wall time on a device.

Training one epoch of an MLP with ``P`` parameters on ``N`` samples costs about ``6·P·N`` FLOP
(forward + backward, spec §12.1); each optimiser step adds a fixed overhead. Rates are the
planning assumptions measured for this project (``shared/research/ecosystem.md`` §3-4): about
30 GFLOP/s per one-thread CPU worker for these small MLPs plus 0.4 ms per step, and about
20 TFLOP/s on an H100-class GPU plus 0.1 ms per step. Probes are not counted; the estimate is a
floor for heavily probed runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from specbias.runs import RunConfig, Runnable, signal_dim
from specbias.signals import NaturalImage, RandomImage

RATES = {"cpu": (30e9, 4e-4), "cuda": (20e12, 1e-4)}
"""device -> (FLOP/s per worker, seconds of overhead per optimiser step)."""


@dataclass(frozen=True)
class Cost:
    """Planned work: FLOPs, optimiser steps and the expected wall time in seconds."""

    flops: float
    steps: int
    seconds: float

    @property
    def hours(self) -> float:
        return self.seconds / 3600


def _points_and_outputs(cfg: RunConfig) -> tuple[int, int]:
    spec = cfg.signal
    if isinstance(spec, (RandomImage, NaturalImage)):
        side = spec.size // 2 if cfg.held_out else spec.size
        return side * side, spec.channels
    return spec.n, 1


def run_cost(cfg: RunConfig | Runnable, device: str = "cpu") -> Cost:
    """The training cost of one run on one worker of ``device``."""
    rate, overhead = RATES[device]
    if not isinstance(cfg, RunConfig):  # another Runnable knows its own cost
        flops, steps = cfg.flops_and_steps()
        return Cost(flops, steps, flops / rate + steps * overhead)
    n, out = _points_and_outputs(cfg)
    in_dim = cfg.encoding().out_dim if signal_dim(cfg.signal) else 1
    dims = [in_dim] + [cfg.width] * cfg.depth + [out]
    params = sum(a * b + b for a, b in itertools.pairwise(dims))
    batch = cfg.train.batch_size or n
    steps = cfg.train.epochs * math.ceil(n / min(batch, n))
    flops = 6.0 * params * n * cfg.train.epochs
    return Cost(flops, steps, flops / rate + steps * overhead)


def sweep_cost(configs: Sequence[RunConfig], device: str = "cpu", workers: int = 1) -> Cost:
    """The cost of the distinct runs in ``configs`` spread over ``workers`` parallel workers."""
    costs = [run_cost(c, device) for c in dict.fromkeys(configs)]
    total = Cost(sum(c.flops for c in costs), sum(c.steps for c in costs), sum(c.seconds for c in costs))
    return Cost(total.flops, total.steps, total.seconds / max(1, workers))
