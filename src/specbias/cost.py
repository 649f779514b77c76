"""A cost model for planned runs: training time and peak memory, before anything trains.

**Time.** Training one epoch of an MLP with ``P`` parameters on ``N`` samples costs about
``6·P·N`` FLOP (forward + backward, spec §12.1); each optimiser step adds a fixed overhead. Rates
are the planning assumptions measured for this project (``shared/research/ecosystem.md`` §3-4):
about 30 GFLOP/s per one-thread CPU worker for these small MLPs plus 0.4 ms per step, and about
20 TFLOP/s on an H100-class GPU plus 0.1 ms per step. Probes are not counted; the estimate is a
floor for heavily probed runs.

**Memory.** A run's peak is the process itself (Python, torch, NumPy: :data:`PROCESS_BASELINE`)
plus what lives for the whole run -- the encoded grid and targets, parameters, gradients and
optimiser state, the probes' pairs -- plus the largest of the transient phases (encoding the grid,
a training step's saved activations, each probe's working set: activation patterns, the Gram
identity's layer inputs and deltas, boundary Jacobians, full-grid predictions) on top of the
records the probes accumulate (predictions, region maps, per-pair cosines, parameter snapshots),
which are copied once more when stacked at the end. Every term is a count of array entries times
their bytes, derived from the code paths in :mod:`specbias.training`, :mod:`specbias.probes` and
:mod:`specbias.metrics`; ``tests/test_cost.py`` checks the total against the measured peak RSS of
real runs (within a factor 1.5), and ``benchmarks/memory_check.py`` prints the comparison.

A sweep on ``k`` workers peaks at the ``k`` largest runs at once (:func:`sweep_memory`);
:func:`fit_workers` lowers ``k`` until that fits the memory available, and refuses a run that
cannot fit even alone (a :class:`~specbias.errors.ConfigError` naming the run, its estimate and the
largest size that would fit).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbias.errors import ConfigError
from specbias.runs import (
    BandSpec,
    BoundarySpec,
    ConfusionSpec,
    ConvergenceSpec,
    DeadUnitSpec,
    HammingSpec,
    HeldOutSpec,
    HyperplaneSpec,
    KernelSpec,
    NormSpec,
    PairSpec,
    PatchPairSpec,
    PredictionSpec,
    RandomPairSpec,
    RegionMapSpec,
    RegionSpec,
    RunConfig,
    Runnable,
    SnapshotSpec,
    signal_dim,
)
from specbias.signals import NaturalImage, RandomImage
from specbias.training import Schedule

RATES = {"cpu": (30e9, 4e-4), "cuda": (20e12, 1e-4)}
"""device -> (FLOP/s per worker, seconds of overhead per optimiser step)."""

GB = 1e9
PROCESS_BASELINE = 340e6
"""Resident memory of a worker that has imported specbias (Python, torch, NumPy, SciPy,
matplotlib): 318-325 MiB measured on Linux with the CPU build of torch 2.13, rounded up."""
REAL_DATA_LIBRARIES = 120e6
"""What a real-data run adds to the process by importing scikit-learn (its bundled digits) and
``torch.func``: measured 494 MB peak for E17's MLP whose arrays take 25 MB."""
CUDA_CONTEXT = 500e6
"""GPU memory the CUDA context and the kernels loaded by one process take before any tensor."""
PATTERN_CHUNK = 65536
"""Points per chunk of :func:`~specbias.metrics.patterns.activation_patterns`."""
GRAM_CHUNK = 16384
"""Pairs per chunk of the Gram identity (:func:`~specbias.metrics.gradients.loss_gradient_pairs`)."""
BOUNDARY_CHUNK = 512
"""Points per chunk of :func:`~specbias.metrics.geometry.boundary_distance_argmin`."""
NTK_CHUNK = 4096
"""Rows per block of the empirical NTK (:func:`~specbias.metrics.ntk.empirical_ntk`)."""
FUNC_BUDGET = 2**26
"""Gradient entries the ``torch.func`` confusion holds at once (:mod:`specbias.metrics.gradients`)."""
HEAP_SLACK = 0.2
"""Share added to the computed working memory for what the allocator keeps: glibc serves blocks
below its (adaptive) mmap threshold from a heap that fragments over chunked probes and is rarely
returned to the system, so the peak RSS exceeds the live arrays (measured 0-60% on the shapes of
``benchmarks/memory_check.py``)."""
USABLE_FRACTION = 0.9
"""Share of the available memory a sweep may plan to use (the rest absorbs what the model misses)."""


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


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """A run's estimated peak memory in bytes: ``host`` (the process's RSS) and ``device`` (GPU
    memory on CUDA, 0 on CPU), with the named terms that make them up (for ``--dry-run``)."""

    host: float
    device: float
    parts: tuple[tuple[str, float], ...] = ()

    @property
    def limiting(self) -> float:
        """The figure that decides whether the run fits: GPU memory on CUDA, RSS on CPU."""
        return self.device if self.device else self.host


def fmt_bytes(n: float) -> str:
    """``1.23 GB`` / ``456 MB`` (decimal units, as the estimate is about that precise)."""
    return f"{n / GB:.2f} GB" if n >= GB else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class _Shape:
    """The sizes the memory terms are written in: points, features, widths, bytes per entry."""

    n: int  # training points
    n_test: int  # held-out points (0 without)
    coords: int  # coordinate dimension (1 or 2)
    feats: int  # encoded features (the MLP's input)
    width: int
    depth: int
    out: int  # output channels
    params: int
    eb: int  # bytes per tensor entry
    batch: int
    faithful: bool

    @property
    def hidden(self) -> int:
        return self.width * self.depth


def _grid_table(cfg: RunConfig) -> tuple[int, int]:
    """``(features, table entries)`` of a network that encodes coordinates itself (a hash grid:
    ``levels × features`` per point from ``levels`` tables of ``2^log2_table_size`` rows); ``(0, 0)``
    for the others. Read from the family's knobs, never by building the network."""
    family = getattr(cfg, "family", None)
    levels = getattr(family, "levels", 0)
    if not levels:
        return 0, 0
    features = getattr(family, "features", 1)
    return levels * features, levels * features * 2 ** getattr(family, "log2_table_size", 0)


def _shape(cfg: RunConfig) -> _Shape:
    n, out = _points_and_outputs(cfg)
    grid_feats, table = _grid_table(cfg)
    feats = grid_feats or cfg.encoding().out_dim
    dims = [feats] + [cfg.width] * cfg.depth + [out]
    params = sum(a * b + b for a, b in itertools.pairwise(dims)) + table
    batch = min(cfg.train.batch_size or n, n)
    return _Shape(
        n=n,
        n_test=n if cfg.held_out else 0,
        coords=signal_dim(cfg.signal),
        feats=feats,
        width=cfg.width,
        depth=cfg.depth,
        out=out,
        params=params,
        eb=8 if cfg.dtype == "float64" else 4,
        batch=batch,
        faithful=cfg.mode == "faithful",
    )


def n_checkpoints(schedule: Schedule, epochs: int) -> int:
    """How many checkpoints ``schedule`` takes in ``epochs`` epochs, without listing them when
    there would be many (an upper bound then: overlaps of its parts are counted twice)."""
    if epochs <= 100_000:
        return len(schedule.epochs(epochs))
    every = math.ceil(epochs / schedule.every) if schedule.every else 0
    return every + len(schedule.explicit) + (schedule.logspaced or 0) + int(schedule.last)


def _n_pairs(spec: Any, s: _Shape) -> int:
    """Pairs a probe's sampler draws (an upper bound where the sampler may draw fewer)."""
    if isinstance(spec, PairSpec):
        return spec.local_windows * spec.local_per_window + spec.global_pairs
    if isinstance(spec, PatchPairSpec):
        if s.faithful:
            per_patch = (spec.pairs_per_patch or 500) if spec.faithful_scheme == "natural" else 36
        else:  # every pair of the patch unless fewer are asked for
            pixels = max(2, round(spec.patch * math.isqrt(max(s.n, 1)))) ** 2
            per_patch = min(spec.pairs_per_patch or pixels * pixels, pixels * (pixels - 1) // 2)
        return spec.patches * per_patch + spec.global_pairs
    if isinstance(spec, RandomPairSpec):
        return spec.pairs
    return 0


# Each probe kind: (device bytes of its transient working set, host bytes of its transient working
# set, host bytes it records per checkpoint). ``s`` holds the sizes; see the module docstring.


def _patterns(s: _Shape) -> tuple[float, float]:
    """Activation patterns: every hidden layer's pre-activations of a chunk, and the packed bits
    (collected per chunk, then concatenated)."""
    chunk = min(s.n, PATTERN_CHUNK)
    device = (s.depth + 1) * chunk * s.width * s.eb
    host = chunk * s.width + 2 * s.n * math.ceil(s.width / 8) * s.depth
    return device, host


def _probe_terms(spec: Any, s: _Shape) -> tuple[float, float, float]:
    packed = s.n * math.ceil(s.width / 8) * s.depth
    grid_forward = 2 * (s.n + s.n_test) * s.width * s.eb + (s.n + s.n_test) * s.out * s.eb
    if isinstance(spec, HammingSpec):
        pairs = _n_pairs(spec.pairs, s)
        device, host = _patterns(s)
        return device, host + 3 * pairs * math.ceil(s.width / 8) + s.depth * pairs * 8, 8.0 * 3 * s.depth
    if isinstance(spec, (RegionSpec, DeadUnitSpec)):
        device, host = _patterns(s)
        return device, host + 3 * packed + 3 * s.n * 8, 8.0 * 3 * s.depth
    if isinstance(spec, RegionMapSpec):
        device, host = _patterns(s)
        units = len([u for u in spec.units if u < s.width])
        return device, host + s.n * s.width + 3 * packed + 4 * s.n * 8, s.n * (8.0 + units)
    if isinstance(spec, ConfusionSpec):
        pairs = _n_pairs(spec.pairs, s)
        channels = s.out if getattr(spec, "output_jacobian", False) else 0
        # layer inputs, pre-activations and deltas of every point (Gram identity), then for the
        # output-Jacobian cosine one delta per output channel; one chunk of gathered pair rows
        layer = s.n * s.width * s.eb
        device = 3 * s.depth * layer + 2 * layer + max(0, channels - 1) * (s.depth + 2) * layer
        device += 4 * min(pairs, GRAM_CHUNK) * max(s.width, s.feats) * s.eb * max(1, channels)
        return device, 4 * pairs * 8.0, pairs * 8.0 * (2 + (channels > 0))
    if isinstance(spec, BoundarySpec):
        chunk = min(s.n, BOUNDARY_CHUNK)
        device = 3 * chunk * s.width * s.feats * s.eb + 2 * chunk * s.hidden * s.eb
        return device, 6 * s.n * 8.0, 24.0
    if isinstance(spec, BandSpec):
        return grid_forward, 8 * s.n * s.out * 8.0, 8.0 * (spec.n_bands + 1)
    if isinstance(spec, (PredictionSpec, ConvergenceSpec, HeldOutSpec)):
        host = 4 * (s.n + s.n_test) * s.out * 8.0
        record = s.n * s.out * 8.0 if isinstance(spec, PredictionSpec) else 64.0
        return grid_forward, host, record
    if isinstance(spec, (NormSpec, HyperplaneSpec)):
        mats = (s.depth * s.width * s.width + s.width * s.feats) * 8.0
        keep = getattr(spec, "keep_matrices", False)
        return 0.0, 3 * mats, (mats / 2 if keep else 0.0) + 8.0 * 4 * s.depth
    if isinstance(spec, SnapshotSpec):
        return 0.0, s.params * 8.0, s.params * 8.0
    if isinstance(spec, KernelSpec):
        # Θ (N × N) in the run's dtype and its symmetrised copy, float64 copies for the spectrum
        # and the rates, and one block of rows of the identity method's per-layer products
        device = s.n * s.n * (2 * s.eb + 16.0) + 3 * min(s.n, NTK_CHUNK) * s.n * s.eb * s.depth
        return device, 4 * s.n * s.out * 8.0, 8.0 * (3 * spec.top + 4)
    return 0.0, 0.0, 0.0


def _optimiser_copies(cfg: RunConfig) -> int:
    """Parameter-sized tensors training keeps: parameters, gradients and the optimiser's state
    (Adam: two moments; SGD: a momentum buffer when momentum is on), plus one fused-step temporary."""
    opt = cfg.train
    if opt.optimizer == "adam":
        return 5
    return 3 + int(opt.momentum > 0)


def _coordinate_run_memory(cfg: RunConfig, device: str) -> Memory:
    s = _shape(cfg)
    points = s.n + s.n_test
    # the grid is encoded in float64 (an RFF's projections and its sines and cosines alongside),
    # then cast to the run's dtype; the signal keeps its own float64 copies of t and y
    signal = points * (s.coords + s.out) * 8.0 * 2
    grid = points * (s.feats + s.out) * s.eb
    params = _optimiser_copies(cfg) * s.params * s.eb
    encode = 3 * points * s.feats * 8.0
    gather = (s.n * (s.feats + s.out) * s.eb) if s.batch < s.n else 0.0
    corners = 2**s.coords * _grid_table(cfg)[0]  # a hash grid's looked-up corner features
    train = (s.depth + 3) * s.batch * s.width * s.eb + 3 * s.batch * corners * s.eb + gather
    probe_dev, probe_host, records, pairs = 0.0, 0.0, 0.0, 0.0
    for spec in cfg.probes:
        dev, host, per_checkpoint = _probe_terms(spec, s)
        probe_dev, probe_host = max(probe_dev, dev), max(probe_host, host)
        records += per_checkpoint * n_checkpoints(spec.schedule, cfg.train.epochs)
        pairs += 2 * 8.0 * _n_pairs(getattr(spec, "pairs", None), s)
    records += cfg.train.epochs * 8.0  # the loss of every epoch
    resident = grid + params  # on the training device
    host_resident = signal + pairs + 2 * points * s.out * 8.0  # targets as float64 for the probes
    transient_dev = max(train, probe_dev)
    # records grow until the end, where they are stacked (a second copy) and sent back as a pickle
    # or a compressed archive (a third); the allocator seldom returns the per-checkpoint rows
    host_peak = max(probe_host + records, 3 * records, encode)
    if device == "cuda":
        return Memory(
            host=PROCESS_BASELINE + (1 + HEAP_SLACK) * (host_resident + host_peak),
            device=CUDA_CONTEXT + resident + transient_dev,
            parts=(
                ("process", PROCESS_BASELINE),
                ("grid, targets and parameters (GPU)", resident),
                ("training step or probe working set (GPU)", transient_dev),
                ("probe records and host arrays", host_resident + host_peak),
            ),
        )
    work = resident + host_resident + max(transient_dev + probe_host, host_peak)
    return Memory(
        host=PROCESS_BASELINE + (1 + HEAP_SLACK) * work,
        device=0.0,
        parts=(
            ("process", PROCESS_BASELINE),
            ("grid, targets, parameters and optimiser state", resident + host_resident),
            ("largest working set (training step or probe)", max(train, probe_dev + probe_host)),
            ("probe records", 3 * records),
            ("allocator slack", HEAP_SLACK * work),
        ),
    )


def _runnable_memory(run: Any, device: str) -> Memory:
    """A real-data classifier run (:class:`~specbias.classify.ClassifierRun`): its images, the
    network, a batch's activations and the confusion probe's per-example gradients or deltas.
    Any other :class:`~specbias.runs.Runnable` counts as the bare process."""
    try:
        data = run.data
        pixels = math.prod(data.image_shape)
        n, n_test = int(data.n_train), int(data.n_test)
        batch = min(run.train.batch_size or n, n)
        if run.model == "mlp":  # counted, not built: a planned width may not fit in memory
            sizes = [int(run.width)] * int(run.depth)
            dims = [pixels, *sizes, int(data.n_classes)]
            params = sum(a * b + b for a, b in itertools.pairwise(dims))
        else:  # the CNN's size is fixed by the images
            model = run.build_model()
            sizes, params = list(model.hidden_sizes), model.n_params()
        units = sum(sizes)
    except (AttributeError, TypeError):
        return Memory(PROCESS_BASELINE, 0.0, (("process", PROCESS_BASELINE),))
    process = PROCESS_BASELINE + REAL_DATA_LIBRARIES
    images = (n + n_test) * pixels * (8.0 * 2 + 4)  # loaded float64, normalised, as tensors
    weights = 5 * params * 4.0
    train = 3 * batch * units * 4.0
    grid = 2 * (n + n_test) * max(sizes) * 4.0  # evaluation of every example
    # the Gram identity's inputs, pre-activations and deltas (MLP), or torch.func's budget of
    # per-example gradient entries and vmap's temporaries (CNN)
    probe = 3 * n * units * 4.0 if run.model == "mlp" else 1.5 * min(FUNC_BUDGET, n * params) * 4.0
    work = max(train, grid, probe)
    parts = (("process", process), ("images", images), ("network and working set", weights + work))
    if device == "cuda":
        return Memory(process + images, CUDA_CONTEXT + weights + work, parts)
    return Memory(process + images + weights + work, 0.0, parts)


@functools.lru_cache(maxsize=4096)
def _memory_cached(cfg: RunConfig, device: str) -> Memory:
    return _coordinate_run_memory(cfg, device)


def run_memory(cfg: RunConfig | Runnable, device: str = "cpu") -> Memory:
    """The estimated peak memory of one run in one worker process on ``device``.

    The seed does not change any size, so runs that differ only in their seed share one estimate.
    """
    if not isinstance(cfg, RunConfig):
        return _runnable_memory(cfg, device)
    return _memory_cached(dataclasses.replace(cfg, seed=0), device)


@dataclass(frozen=True)
class SweepMemory:
    """The memory a sweep needs: the largest run's estimate (per worker) and, with ``workers``
    parallel workers, the sum of the ``workers`` largest (what the sweep peaks at)."""

    per_worker: Memory
    workers: int
    peak: float
    largest: Any


def sweep_memory(configs: Sequence[Any], device: str = "cpu", workers: int = 1) -> SweepMemory:
    """Peak memory of the distinct runs of ``configs`` on ``workers`` workers (see the class)."""
    estimates = sorted(
        ((run_memory(c, device), c) for c in dict.fromkeys(configs)),
        key=lambda mc: mc[0].limiting,
        reverse=True,
    )
    if not estimates:
        empty = Memory(0.0, 0.0)
        return SweepMemory(empty, workers, 0.0, None)
    k = max(1, min(workers, len(estimates)))
    return SweepMemory(estimates[0][0], k, sum(m.limiting for m, _ in estimates[:k]), estimates[0][1])


def available_memory(device: str = "cpu") -> float | None:
    """Bytes a new process can use now: ``MemAvailable`` of ``/proc/meminfo`` (else the free
    physical pages), or the free memory of the current CUDA device; ``None`` when unknown."""
    if device == "cuda":
        try:
            import torch

            return float(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else None
        except RuntimeError:
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class WorkerFit:
    """How many workers a sweep gets (``workers``, ``<= requested``) and why (``note``, empty when
    nothing was lowered); ``memory`` is the sweep's estimate at that count."""

    workers: int
    requested: int
    memory: SweepMemory
    available: float | None
    note: str = ""


def _resized(cfg: Any, field: str) -> tuple[int, Callable[[int], Any]] | None:
    """The run's current ``field`` ("size" or "n" of its signal, or its "width") and a function
    giving the run with another value; None when the run has no such field."""
    if field == "width" and dataclasses.is_dataclass(cfg) and hasattr(cfg, "width"):
        return int(cfg.width), lambda v: dataclasses.replace(cfg, width=v)
    signal = getattr(cfg, "signal", None)
    if dataclasses.is_dataclass(signal) and hasattr(signal, field):
        return int(getattr(signal, field)), lambda v: dataclasses.replace(
            cfg, signal=dataclasses.replace(signal, **{field: v})
        )
    return None


def _largest_fitting(cfg: Any, field: str, budget: float, device: str) -> int | None:
    """The largest value of ``field`` ("size", "n" or "width") below the run's own whose estimate
    fits ``budget``: halve until one fits, then bisect; None when no valid value fits."""
    resized = _resized(cfg, field)
    if resized is None:
        return None
    hi, changed = resized

    def fits(v: int) -> bool | None:  # None: the value itself is not allowed
        try:
            return run_memory(changed(v), device).limiting <= budget
        except ConfigError:
            return None

    lo = hi // 2
    while lo >= 1:
        ok = fits(lo)
        if ok is None:
            return None
        if ok:
            break
        hi, lo = lo, lo // 2
    if lo < 1:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def _what_would_fit(cfg: Any, budget: float, device: str, allowed: Sequence[str]) -> str:
    """``--size 301 or --width 40, or a machine with more free memory`` (the overrides in
    ``allowed`` that would make the run fit, at their largest)."""
    options = []
    for field in ("size", "n", "width"):
        value = _largest_fitting(cfg, field, budget, device) if field in allowed else None
        if value is not None:
            options.append(f"--{field} {value}")
    more = "or a machine with more free memory"
    return f"{' or '.join(options)}, {more}" if options else more


def describe_run(cfg: Any) -> str:
    """A short human label of a run: input, seed and size (for messages)."""
    label = f"{getattr(cfg, 'input', '?')} seed {getattr(cfg, 'seed', '?')}"
    if isinstance(cfg, RunConfig):
        n, _ = _points_and_outputs(cfg)
        grid = f"{math.isqrt(n)}²" if signal_dim(cfg.signal) == 2 else f"N={n}"
        label += f", {grid}, MLP-{cfg.depth}×{cfg.width}"
    return label


def fit_workers(
    runs: Sequence[tuple[str, Any]],
    device: str,
    requested: int,
    available: float | None,
    allowed: Callable[[str], Sequence[str]] = lambda exp: ("size", "n", "width"),
) -> WorkerFit:
    """The worker count for the runs to train, given the memory ``available`` (None: unknown,
    nothing is lowered). ``runs`` pairs each run with the experiment id that names it.

    Raises :class:`ConfigError` when the largest run does not fit even alone: the message names
    the run, its estimate, the memory available and what would fit (the overrides ``allowed(exp)``
    that apply to its experiment, at the largest value that fits)."""
    configs = [cfg for _, cfg in runs]
    memory = sweep_memory(configs, device, requested)
    if available is None or not configs:
        return WorkerFit(memory.workers, requested, memory, available)
    budget = USABLE_FRACTION * available
    per_worker = memory.per_worker.limiting
    if per_worker > budget:
        exp = next(e for e, c in runs if c == memory.largest)
        where = "GPU memory" if device == "cuda" else "memory"
        raise ConfigError(
            f"run {exp} {describe_run(memory.largest)} needs about {fmt_bytes(per_worker)} of {where} at "
            f"its peak, but {fmt_bytes(available)} is available (planning uses {USABLE_FRACTION:.0%}); "
            f"what would fit: {_what_would_fit(memory.largest, budget, device, allowed(exp))}"
        )
    workers = memory.workers
    while workers > 1 and sweep_memory(configs, device, workers).peak > budget:
        workers -= 1
    fitted = sweep_memory(configs, device, workers)
    note = ""
    if workers < memory.workers:
        note = (
            f"using {workers} worker(s) instead of {memory.workers}: {memory.workers} would need "
            f"about {fmt_bytes(memory.peak)} at once (up to {fmt_bytes(per_worker)} per run), "
            f"{fmt_bytes(available)} is available"
        )
    return WorkerFit(workers, requested, fitted, available, note)


# --------------------------------------------------------------------------- calibration

_MEASURE = """
import os, pickle, resource, sys
import torch
from specbias.runs import execute_run
configs = pickle.loads(sys.stdin.buffer.read())
for cfg in configs:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a fresh peak: a forked child's maxrss starts at its resident size
        os.close(read)
        torch.set_num_threads(1)
        result = execute_run(cfg, "cpu")
        pickle.dumps(result)  # a pool worker sends its result back
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        os.write(write, str(peak).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        peak = fh.read()
    _, status = os.waitpid(pid, 0)
    print(peak if status == 0 and peak else "nan", flush=True)
"""


def measure_peaks(configs: Sequence[RunConfig], timeout: float = 600) -> list[float]:
    """The measured peak RSS in bytes of each run on one CPU worker, as a worker would have it:
    one fresh Python process imports specbias once (the :data:`PROCESS_BASELINE` part), then runs
    each config in a forked child whose ``ru_maxrss`` is its own peak (Linux/Unix; NaN for a run
    that failed). The caller's own memory plays no part."""
    import pickle
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        input=pickle.dumps(list(configs)),
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return [float(line) for line in proc.stdout.decode().split()]
