"""The cost model: peak memory against measured RSS, the worker fit, and the time model unchanged."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from specbias import cost
from specbias.cost import (
    PROCESS_BASELINE,
    available_memory,
    fit_workers,
    measure_peaks,
    n_checkpoints,
    run_cost,
    run_memory,
    sweep_memory,
)
from specbias.errors import ConfigError
from specbias.experiments.study1d import PAPER_1D
from specbias.runs import (
    BandSpec,
    ConfusionSpec,
    HammingSpec,
    PatchPairSpec,
    PredictionSpec,
    RandomPairSpec,
    RegionMapSpec,
    RegionSpec,
    RunConfig,
    SnapshotSpec,
)
from specbias.signals import RandomImage, ToneMixture
from specbias.training import Schedule, TrainConfig

LAST = Schedule(last=True)

# Three shapes whose data part is large next to the process itself (a model that ignored the data
# would be off by more than 1.5x), each dominated by another term, and quick to train.
MEASURED = {
    # the Gram identity's layer inputs, pre-activations and deltas of every grid point
    "gram": RunConfig(
        RandomImage(size=320),
        "raw01",
        64,
        2,
        TrainConfig(epochs=1),
        (ConfusionSpec(LAST, RandomPairSpec(2000)), PredictionSpec(LAST)),
    ),
    # activation patterns, region ids and maps, a million patch pairs, band energies
    "patterns": RunConfig(
        RandomImage(size=256),
        "pe4",
        256,
        2,
        TrainConfig(epochs=1, batch_size=4096),
        (HammingSpec(LAST, PatchPairSpec()), RegionSpec(LAST), RegionMapSpec(LAST), BandSpec(LAST)),
    ),
    # records: a parameter snapshot every epoch
    "snapshots": RunConfig(
        ToneMixture(n=144), "pe6", 512, 2, TrainConfig(epochs=60), (SnapshotSpec(Schedule(every=1)),)
    ),
}


def tiny(**changes) -> RunConfig:
    return dataclasses.replace(PAPER_1D.override(epochs=20, n=256, width=16).runs(1)[0], **changes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures a forked child's ru_maxrss")
def test_memory_estimate_is_within_1_5x_of_the_measured_peak_rss():
    peaks = measure_peaks(list(MEASURED.values()))
    for (name, cfg), peak in zip(MEASURED.items(), peaks):
        estimate = run_memory(cfg).host
        # a model that counted the process alone would be off by more than the tolerance
        assert peak > 1.5 * PROCESS_BASELINE, f"{name}: the data part is too small to test the model"
        assert 1 / 1.5 <= estimate / peak <= 1.5, (
            f"{name}: estimate {estimate / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB"
        )


def test_estimate_grows_with_the_grid_the_width_and_the_records():
    base = run_memory(MEASURED["gram"]).host
    bigger = dataclasses.replace(MEASURED["gram"], signal=RandomImage(size=768))
    wider = dataclasses.replace(MEASURED["gram"], width=256)
    assert run_memory(bigger).host - PROCESS_BASELINE > 3.5 * (base - PROCESS_BASELINE)
    assert run_memory(wider).host > 3 * (base - PROCESS_BASELINE)
    snaps = MEASURED["snapshots"]
    longer = dataclasses.replace(snaps, train=TrainConfig(epochs=600))
    grown = run_memory(longer).host - run_memory(snaps).host
    params = 14 * 512 + 512 + 512 * 512 + 512 + 513  # float64 copies, ~3 of each at the end
    assert 2.5 * 540 * params * 8 < grown < 4 * 540 * params * 8


def test_estimate_ignores_the_seed_and_splits_gpu_from_host():
    assert run_memory(tiny(seed=0)) == run_memory(tiny(seed=7))
    gpu = run_memory(MEASURED["gram"], "cuda")
    assert gpu.device > cost.CUDA_CONTEXT and gpu.limiting == gpu.device
    assert run_memory(MEASURED["gram"]).device == 0


def test_checkpoint_count_is_exact_for_small_and_bounded_for_huge_schedules():
    assert n_checkpoints(Schedule(every=10, last=True), 95) == len(Schedule(every=10, last=True).epochs(95))
    assert n_checkpoints(Schedule(every=1), 10**9) == 10**9  # counted, not listed


def test_sweep_peak_is_the_largest_runs_at_once():
    small, big = tiny(), MEASURED["gram"]
    sweep = sweep_memory([small, big, small], workers=2)
    assert sweep.largest == big and sweep.workers == 2
    assert sweep.peak == pytest.approx(run_memory(big).host + run_memory(small).host)
    assert sweep_memory([small], workers=8).workers == 1


def test_fit_lowers_workers_and_says_so():
    runs = [("E4a", MEASURED["gram"]), ("E4a", dataclasses.replace(MEASURED["gram"], seed=1))]
    one = run_memory(MEASURED["gram"]).host
    fit = fit_workers(runs, "cpu", 2, available=1.5 * one / cost.USABLE_FRACTION)
    assert fit.workers == 1 and "using 1 worker(s) instead of 2" in fit.note
    roomy = fit_workers(runs, "cpu", 2, available=3 * one / cost.USABLE_FRACTION)
    assert roomy.workers == 2 and roomy.note == ""
    assert fit_workers(runs, "cpu", 2, available=None).workers == 2  # unknown: nothing lowered


def test_a_run_that_cannot_fit_alone_names_itself_and_what_would_fit():
    cfg = MEASURED["gram"]
    one = run_memory(cfg).host
    with pytest.raises(ConfigError) as exc:
        fit_workers([("E4a", cfg)], "cpu", 1, available=0.8 * one, allowed=lambda exp: ("size", "width"))
    message = str(exc.value)
    assert message.startswith("run E4a raw01 seed 0, 320², MLP-2×64 needs about")
    size = int(message.split("--size ")[1].split()[0])
    width = int(message.split("--width ")[1].split(",")[0])
    assert 150 < size < 320 and 8 < width < 64
    budget = 0.8 * one * cost.USABLE_FRACTION
    for smaller in (
        dataclasses.replace(cfg, signal=RandomImage(size=size)),
        dataclasses.replace(cfg, width=width),
    ):
        assert run_memory(smaller).host <= budget
    assert run_memory(dataclasses.replace(cfg, signal=RandomImage(size=size + 1))).host > budget


def test_available_memory_is_read_from_the_system():
    free = available_memory("cpu")
    assert free is None or 10e6 < free < 1e15


def test_time_model_is_unchanged():
    cfg = tiny(input="pe6")
    params = 14 * 16 + 16 + 3 * (16 * 16 + 16) + 17  # pe6 (14 features) -> 4 x 16 -> 1
    c = run_cost(cfg)
    assert c.flops == 6.0 * params * 256 * 20 and c.steps == 20
    assert c.seconds == pytest.approx(c.flops / 30e9 + 20 * 4e-4)
