"""X6b (coordinate density in 2D): parameters and their errors, physically fixed bands and patches,
the equal-step budget, the band numbers against brute force, findings that follow the data, and the
summary contract end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specbias.claims import Outcome, SeedTable, evaluate
from specbias.cli import main
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.density2d import (
    EPOCHS_FIELD,
    STEPS_FIELD,
    X6B_PAPER,
    X6B_QUICK,
    Budget,
    Density2D,
    band_hits,
    density_2d_claims,
    first_below,
    high_error_at,
)
from specbias.experiments.sweep import SweepLine, put_range
from specbias.metrics.spectrum import radial_bands
from specbias.runs import BandSpec, PatchPairSpec, RunData
from specbias.signals import NaturalImage
from specbias.training import TrainConfig

TINY = ["--epochs", "3", "--width", "8", "--seeds", "1", "--no-progress", "--workers", "1"]
BLOCK = (
    "size",
    "n_points",
    "steps_per_epoch",
    "epochs",
    "steps",
    "patch_pixels",
    "points_per_patch",
    EPOCHS_FIELD,
    STEPS_FIELD,
    "n_converged",
    "final_rel_energy",
    "rel_energy_at_common_step",
    "band_err_high_at_common_step",
    "band_err_high_at_common_epoch",
    "cos_local_abs_mean",
    "hamming_local",
    "regions_last",
    "regions_saturated",
    "points_per_region",
)


def test_registered_and_profiles():
    assert "X6b" in EXPERIMENTS and get_experiment("x6b").id == "X6b"
    p = X6B_PAPER
    assert p.sizes == (32, 64, 128, 256) and len(p.images) == 5 and p.seeds == 5
    assert (p.width, p.depth) == (256, 4) and {"raw01", "pe5"} <= set(p.inputs)
    q = X6B_QUICK
    assert q.sizes == (32, 64, 128) and q.images == ("camera",) and q.channels == 1
    assert q.inputs == ("raw01", "pe5") and q.seeds == 3


@pytest.mark.parametrize("params", [X6B_QUICK, X6B_PAPER])
def test_every_size_trains_the_same_steps_on_the_same_picture(params):
    configs = params.runs(params.seeds)
    assert len(configs) == len(params.inputs) * len(params.sizes) * params.seeds
    assert len({c.key() for c in configs}) == len(configs)
    for c in configs:
        size, spe = c.signal.size, params.steps_per_epoch(c.signal.size)
        assert spe == -(-size * size // params.train.batch_size)
        # at least the common budget, and less than one more epoch
        assert params.steps <= c.train.epochs * spe < params.steps + spe
        assert c.signal.name == params.images[c.seed % len(params.images)]
        assert (c.width, c.depth, c.train.lr, c.train.batch_size) == (
            params.width,
            params.depth,
            params.train.lr,
            params.train.batch_size,
        )
    assert params.epochs(min(params.sizes)) == params.train.epochs


def test_bands_are_the_same_frequencies_at_every_size():
    """The probe's bands at each size against a direct reading of each FFT bin's radius."""
    w = X6B_PAPER.band_width
    for size in X6B_PAPER.sizes:
        probe = next(p for p in X6B_PAPER.probes(size) if isinstance(p, BandSpec))
        band = radial_bands((size, size), probe.n_bands)
        k = np.fft.fftfreq(size) * size
        radius = np.hypot(k[:, None], k[None, :])
        inside = (radius > 0) & (radius < size / 2)
        assert np.array_equal(band[inside], (radius[inside] // w).astype(int))  # cycles per image
        assert (band[radius > size / 2] == probe.n_bands - 1).all()  # the corners: dropped
        assert X6B_PAPER.band_labels(size)[-1] == f"{size // 2 - w}-{size // 2}"


def test_local_patches_have_a_fixed_physical_size():
    rng = np.random.default_rng(0)
    for size in X6B_PAPER.sizes:
        pairs = next(
            p.pairs for p in X6B_PAPER.probes(size) if isinstance(getattr(p, "pairs", None), PatchPairSpec)
        )
        local = pairs.sample((size, size), rng, faithful=False)["local"]
        side = size // 16
        rows = np.abs(local.i // size - local.j // size)
        cols = np.abs(local.i % size - local.j % size)
        assert max(rows.max(), cols.max()) == side - 1  # the pair stays within a side × side patch
        assert (local.i != local.j).all()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"sizes": (32, 36)}, "image size 36 must be a multiple of 2·band_width = 8"),
        ({"sizes": (64, 64)}, "distinct"),
        ({"sizes": ()}, "distinct and non-empty"),
        ({"train": TrainConfig(epochs=3, batch_size=1024)}, r"pixel count - 1 \(1023\), got 1024"),
        ({"train": TrainConfig(epochs=3)}, "got None"),
        ({"images": ("nosuchimage",)}, "unknown image 'nosuchimage'"),
        ({"images": ()}, "at least one image"),
        ({"patch": 1 / 64}, "need from 2 px to the whole side"),
        ({"patch": 1.5}, "is 48 px at 32²; need from 2 px to the whole side"),
        ({"inputs": ("raw01", "raw01")}, "distinct"),
        ({"inputs": ("lin2",)}, "lifts a 1D coordinate"),
        ({"checkpoints": 0}, "checkpoints must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_config_errors(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        Density2D(**{**{f: getattr(X6B_QUICK, f) for f in ("sizes", "train", "images")}, **changes})


def test_overrides(capsys, tmp_path):
    over = X6B_QUICK.override(epochs=10, lr=1e-2, inputs=["raw11"], images=["astronaut"])
    assert over.steps == 40 and over.train.lr == 1e-2 and over.inputs == ("raw11",)
    assert over.images == ("astronaut",) and over.channels == 1
    assert main(["run", "X6b", "--size", "64", "--out", str(tmp_path)]) == 2
    assert "--size does not apply to X6b" in capsys.readouterr().err


# --------------------------------------------------------------------------- numbers


def _run(rel: np.ndarray, epochs: list[int], seed: int = 0) -> RunData:
    return RunData({"bands/epochs": np.array(epochs), "bands/rel_energy": rel}, {"seed": seed})


def test_high_error_at_interpolates_steps_and_epochs_like_brute_force():
    rng = np.random.default_rng(3)
    epochs = [0, 2, 5, 9]
    rel = rng.uniform(0, 1, (4, 5))  # 4 checkpoints × (4 bands + corners)
    data, high, spe = _run(rel, epochs), slice(2, 4), 7
    mean_high = rel[:, 2:4].mean(axis=1)
    for x in rng.uniform(1, 10, 20):  # epochs done
        # brute force: find the two checkpoints around x epochs done and interpolate by hand
        done = np.array(epochs) + 1
        j = min(np.searchsorted(done, x), len(done) - 1)
        i = max(j - 1, 0)
        frac = 0.0 if done[j] == done[i] else (min(max(x, done[0]), done[-1]) - done[i]) / (done[j] - done[i])
        expected = mean_high[i] + frac * (mean_high[j] - mean_high[i])
        assert high_error_at(data, high, spe, x, "epoch") == pytest.approx(expected)
        assert high_error_at(data, high, spe, x * spe, "step") == pytest.approx(expected)


def test_band_hits_and_first_below():
    rel = np.array([[0.9, 0.5, 1.0], [0.05, 0.5, 1.0], [0.01, 0.09, 1.0]])
    a, b = _run(rel, [0, 4, 9]), _run(rel[[0, 0, 2]], [0, 4, 9], seed=1)
    hits = band_hits([a, b], ["0-4", "4-8"])
    assert hits == [[4, 9], [9, 9]]
    epochs, steps = first_below(hits, ["0-4", "4-8"], spe=16)
    # hits at labels (4, 9) and (9, 9): 5 and 10 epochs trained, 10 and 10
    assert epochs == {"0-4": 7.5, "4-8": 10.0} and steps == {"0-4": 7.5 * 16, "4-8": 160}
    epochs, _ = first_below([[4, None], [9, 9]], ["0-4", "4-8"], spe=1)
    assert epochs["4-8"] is None  # one seed never got there


BUDGET = Budget(common=["0-4", "4-8", "8-12", "12-16"], high=slice(2, 4), steps=1200, epochs=19)
SWEEPS = {s.line: s for s in X6B_QUICK.sweeps()}
RAW, PE = SweepLine("raw01", 256, dim=2), SweepLine("pe5", 256, dim=2)


def _put(table: SeedTable, line: SweepLine, quantity: str, values: list[float], spread: float = 0.01) -> None:
    """Three seeds around ``values`` (one per side of the quick sweep), ±``spread`` relative."""
    for i, size in enumerate(X6B_QUICK.sizes):
        table.put(line.at(size), quantity, {s: values[i] * (1 + spread * (s - 1)) for s in range(3)})


def _verdicts(table: SeedTable) -> dict[str, Outcome]:
    for line in (RAW, PE):
        put_range(table, SWEEPS[line], "band_err_high_step")
    claims = density_2d_claims([SWEEPS[RAW], SWEEPS[PE]], table, BUDGET)
    return {v.claim: v.outcome for v in evaluate(claims, table)}


def _table(raw_hamming: list[float]) -> SeedTable:
    table = SeedTable()
    _put(table, RAW, "band_err_high_step", [0.6, 0.7, 0.8])
    _put(table, RAW, "band_err_high_epoch", [0.8, 0.6, 0.4])
    _put(table, RAW, "steps_to_converge", [300.0, 400.0, 500.0])
    _put(table, RAW, "cos_local_abs", [0.84, 0.89, 0.94])
    _put(table, RAW, "hamming_local", raw_hamming)
    _put(table, RAW, "points_per_region", [2.0, 8.0, 32.0])
    _put(table, PE, "band_err_high_step", [0.03, 0.03, 0.031])
    _put(table, PE, "steps_to_converge", [200.0, 205.0, 210.0])
    _put(table, PE, "epochs_to_converge", [50.0, 12.5, 3.2])
    return table


def test_claims_follow_the_numbers():
    found = _verdicts(_table([3.0, 2.0, 1.0]))
    assert len(found) == 6 + 2 + 1 and set(found.values()) == {Outcome.HOLDS}, found
    high = "the high bands (8-16 cycles/image)"
    assert f"raw [0,1): per step, {high} are further from the target after 1200 steps as N grows" in found
    # reversed raw numbers break every raw claim; PE slowing down per step breaks PE's "hardly depends"
    table = _table([1.0, 2.0, 3.0])
    for q in (
        "band_err_high_step",
        "band_err_high_epoch",
        "steps_to_converge",
        "cos_local_abs",
        "points_per_region",
    ):
        _put(table, RAW, q, [table.get(RAW.at(s), q)[1] for s in X6B_QUICK.sizes][::-1])
    _put(table, PE, "steps_to_converge", [200.0, 800.0, 3200.0])
    found = _verdicts(table)
    assert {v for k, v in found.items() if k.startswith("raw")} == {Outcome.CONTRADICTED}, found
    assert found["PE L=5: per step, the steps to converge hardly depend on N"] is Outcome.CONTRADICTED


def test_a_small_hamming_change_within_the_seed_spread_is_inconclusive():
    table = _table([3.0, 2.0, 1.0])
    rows = [[2.0, 2.0, 2.15], [2.0, 2.05, 1.93], [2.0, 1.97, 2.0]]  # +1.3 % on average, ±5 % per seed
    for i, size in enumerate(X6B_QUICK.sizes):
        table.put(RAW.at(size), "hamming_local", {s: row[i] for s, row in enumerate(rows)})
    found = _verdicts(table)
    assert found["raw [0,1): local Hamming distance in a patch of fixed physical size falls as N grows"] is (
        Outcome.INCONCLUSIVE
    )


def test_claims_not_measurable_are_not_contradicted():
    table = _table([3.0, 2.0, 1.0])
    for q in ("steps_to_converge", "epochs_to_converge"):  # no band converged at every size
        for line in (RAW, PE):
            for size in X6B_QUICK.sizes:
                table.put(line.at(size), q, {})
    for line in (RAW, PE):
        _put(table, line, "n_converged", [1.0, 0.0, 0.0])
    _put(table, RAW, "band_err_high_step", [0.95, 0.97, 0.99])  # nothing of the high bands learned
    found = _verdicts(table)
    unmeasurable = [k for k, v in found.items() if v is Outcome.NOT_MEASURABLE]
    assert len(unmeasurable) == 5, found  # raw: per step twice; PE: both; the spread claim
    assert found["raw [0,1): more grid points per activation region as N grows"] is Outcome.HOLDS


# --------------------------------------------------------------------------- end to end


def test_x6b_end_to_end(tmp_path):
    assert NaturalImage("camera", size=128, channels=1).load().shape == (128, 128, 1)
    assert main(["run", "X6b", "--out", str(tmp_path), *TINY]) == 0
    summary = json.loads((tmp_path / "quick/X6b/summary.json").read_text())
    table = summary["by_size"]
    assert {k: list(v) for k, v in table.items()} == {
        "raw01": ["32", "64", "128"],
        "pe5": ["32", "64", "128"],
    }
    assert summary["bands"]["common"] == ["0-4", "4-8", "8-12", "12-16"]
    assert summary["bands"]["high"] == ["8-12", "12-16"]
    assert summary["budget"] == {"common_steps": 12, "common_epochs": 1}
    for label, per_size in table.items():
        for size, entry in per_size.items():
            s = int(size)
            for field in BLOCK:
                assert field in entry, (label, size, field)
            assert entry["steps_per_epoch"] == s * s // 256 and entry["patch_pixels"] == s // 16
            assert list(entry[EPOCHS_FIELD]) == X6B_QUICK.band_labels(s)
            assert list(entry["rel_energy_at_common_step"]) == summary["bands"]["common"]
            assert entry["points_per_region"] == pytest.approx(s * s / entry["regions_last"])
    assert "raw01@S64" in summary["inputs"] and summary["inputs"]["pe5@S128"]["size"] == 128
    assert summary["findings"]
    for finding in summary["findings"]:
        assert finding["verdict"] in {o.value for o in Outcome} and finding["reason"]
        assert finding["holds"] is (finding["verdict"] == "holds")
    assert {p.name for p in (tmp_path / "quick/X6b/figures").glob("*.png")} == {
        "density_metrics.png",
        "convergence_steps.png",
        "convergence_epochs.png",
        "rel_energy_at_common_step.png",
    }
