"""The whole 1D study at the reference scale (issue 2 target: under 3 minutes on 2 cores).

4 inputs × 5 seeds × 500 full-batch epochs, Hamming every 25 epochs (6,250 local + 5,000 global
pairs), confusion at the end, per-frequency convergence every 5 epochs. Ours: the runner's
worker pool (one torch thread per worker). Baseline: the same runs one after another in this
process with torch's default thread count.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Result
from specbias.experiments.study1d import PAPER_1D
from specbias.results import RunStore
from specbias.runner import run_all
from specbias.runs import execute_run


def main() -> list[Result]:
    configs = PAPER_1D.runs(5)
    start = time.perf_counter()
    for cfg in configs:
        execute_run(cfg)
    baseline = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_all(configs, RunStore(Path(tmp)), progress=False)
        ours = time.perf_counter() - start
    note = f"whole 1D study in {ours:.0f} s with the worker pool; torch threads {torch.get_num_threads()}"
    return [Result("study1d_reference_scale_pool_vs_serial", baseline, ours, note)]
