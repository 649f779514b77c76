"""One paper-scale natural-image run on CUDA, measured against the cost model (issue 12).

``python benchmarks/gpu_check.py`` takes E5's paper-profile run (a 512² photograph, MLP-4×512,
batch 8,192, PE L=16, seed 0) for ``--epochs`` epochs twice on one device: once without probes
(seconds per epoch) and once with every probe of the profile (the difference is the probes'
time). It prints each figure beside the cost model's estimate (:func:`specbias.cost.run_cost`,
:func:`specbias.cost.run_memory`) and the ratio to put into ``RATES``. ``benchmarks/gpu_check.sh``
calls it; ``--device cpu --size 64 --width 64`` checks the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from specbias.cost import fmt_bytes, run_cost, run_memory
from specbias.experiments import get_experiment
from specbias.pipeline import plan
from specbias.runs import RunConfig, execute_run


def paper_run(epochs: int, size: int | None, width: int | None, label: str) -> RunConfig:
    """E5's first paper-profile run of input ``label`` with ``epochs`` (and optional smaller sizes)."""
    over = {"epochs": epochs, "inputs": [label], "size": size, "width": width}
    return plan(get_experiment("E5"), "paper", 1, over).configs[0]


def timed(cfg: RunConfig, device: str) -> tuple[float, float, float]:
    """Wall seconds, the run's own training seconds, and peak GPU memory (bytes; 0 on CPU)."""
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    data = execute_run(cfg, device=device)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else 0.0
    return wall, float(data.meta["seconds"]), float(peak)


def compare_e4b(out: Path, device: str) -> None:
    """Each run of ``specbias run E4b --profile paper --seeds 1 --out OUT``: measured training
    seconds (from the run cache) beside the cost model's estimate."""
    for cfg in plan(get_experiment("E4b"), "paper", 1, {}).configs:
        meta = json.loads((out / "runs" / cfg.key() / "meta.json").read_text())
        est = run_cost(cfg, device).seconds
        took = meta["seconds"]
        print(
            f"E4b {cfg.input}: {took:.1f} s measured on {meta['device']}, {est:.1f} s estimated "
            f"(ratio {took / est:.2f}; {took / cfg.train.epochs * 1e3:.2f} ms per epoch)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--e4b", type=Path, default=None, help="only compare the E4b runs cached under this OUT")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=None, help="image side (default: the paper's 512)")
    p.add_argument("--width", type=int, default=None, help="network width (default: the paper's 512)")
    p.add_argument("--input", default="pe16", help="input label (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = p.parse_args()
    if args.e4b:
        compare_e4b(args.e4b, args.device)
        return
    torch.set_num_threads(1)
    probed = paper_run(args.epochs, args.size, args.width, args.input)
    bare = dataclasses.replace(probed, probes=())
    side = probed.signal.size
    net = f"MLP-{probed.depth}×{probed.width}, batch {probed.train.batch_size}"
    print(f"run: E5 paper, {args.input}, {side}², {net}, {args.epochs} epochs, {len(probed.probes)} probes")
    timed(dataclasses.replace(bare, train=dataclasses.replace(bare.train, epochs=1)), args.device)  # warm-up
    wall_bare, train_bare, peak_bare = timed(bare, args.device)
    wall_probed, _, peak_probed = timed(probed, args.device)
    estimate = run_cost(bare, args.device)
    memory = run_memory(probed, args.device)
    per_epoch, est_epoch = train_bare / args.epochs, estimate.seconds / args.epochs
    figures = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "seconds_per_epoch": per_epoch,
        "estimated_seconds_per_epoch": est_epoch,
        "measured_over_estimate": per_epoch / est_epoch,
        "achieved_flops": estimate.flops / train_bare,
        "probe_seconds": wall_probed - wall_bare,
        "wall_seconds_without_probes": wall_bare,
        "wall_seconds_with_probes": wall_probed,
        "peak_gpu_bytes_without_probes": peak_bare,
        "peak_gpu_bytes_with_probes": peak_probed,
        "estimated_gpu_bytes": memory.device,
        "estimated_host_bytes": memory.host,
    }
    rate = figures["achieved_flops"] / 1e12
    print(
        f"seconds per epoch: {per_epoch:.3f} measured, {est_epoch:.3f} estimated "
        f"(ratio {per_epoch / est_epoch:.2f}; achieved {rate:.2f} TFLOP/s)"
    )
    print(
        f"probes: {figures['probe_seconds']:.1f} s for {args.epochs} epochs "
        f"(run wall {wall_probed:.1f} s with, {wall_bare:.1f} s without)"
    )
    if args.device == "cuda":
        print(
            f"peak GPU memory: {fmt_bytes(peak_probed)} with probes, {fmt_bytes(peak_bare)} without; "
            f"estimated {fmt_bytes(memory.device)}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
