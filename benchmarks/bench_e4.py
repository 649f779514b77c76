"""One input of the E4 suite at the reference scale: 64² random image, MLP-2×128, batch 256,
5,000 epochs, every probe every 100 epochs (confusion at the end). Target (issue 3): under
2 minutes on 2 cores. Baseline: the same training with no probes (so the ratio shows what the
probes cost). Both run with one torch thread, as every run does inside the runner (for batch-256
steps one thread is as fast as two and keeps results bit-identical across worker counts)."""

from __future__ import annotations

import dataclasses
import time

import torch

from benchmarks.common import Result
from specbias.experiments.study2d import MAIN_PAPER
from specbias.runs import execute_run


def main() -> list[Result]:
    cfg = next(c for c in MAIN_PAPER.runs(1) if c.input == "pe5")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        execute_run(dataclasses.replace(cfg, probes=()))
        base = time.perf_counter() - start
        start = time.perf_counter()
        execute_run(cfg)
        ours = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return [Result("e4_reference_scale_one_input_probes_vs_none", base, ours, f"one input in {ours:.0f} s")]
