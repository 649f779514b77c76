"""Coordinate density in 2D (issue 6), the image side of the sweep analysis (:mod:`.sweep`): X6b
trains one picture at several sides ``S`` (``N = S²`` points) with the same network and the same
number of optimiser steps, from raw coordinates and from PE, and asks whether the high bands of the
spectrum slow down as the grid gets denser. Protocol, budgets, bands, patches, profiles and the
claims list: ``docs/experiments/density.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from matplotlib.figure import Figure

from specbias.claims import Claim, SeedTable
from specbias.errors import ConfigError
from specbias.experiments import sweep as shared
from specbias.experiments.analysis import Runs
from specbias.experiments.base import Experiment, ExperimentResult, check_study
from specbias.experiments.params import NETWORK, TRAIN, Overridable
from specbias.experiments.study2d import NATURAL_IMAGES
from specbias.experiments.sweep import Hits, Sweep, SweepKey, SweepLine
from specbias.runs import (
    BandSpec,
    ConfusionSpec,
    HammingSpec,
    PatchPairSpec,
    ProbeSpec,
    RegionSpec,
    RunConfig,
    RunData,
)
from specbias.signals import NaturalImage
from specbias.thresholds import threshold
from specbias.training import Schedule, TrainConfig

_LEVEL = threshold("rel_err").value
"""A band is *converged* once its relative residual energy ``E_b(f − y)/E_b(y)`` is below this."""
CONVERGED = f"band reached rel. energy {_LEVEL:g}"
"""What converging means, in the reason of a claim that cannot be measured."""
EPOCHS_FIELD = f"epochs_to_rel_energy_{_LEVEL:g}"
STEPS_FIELD = f"steps_to_rel_energy_{_LEVEL:g}"


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Density2D(Overridable):
    """X6b parameters: ``images`` at every side of ``sizes``, each input, the same network and the
    same number of optimiser steps (``train.epochs`` epochs of the smallest image)."""

    images: tuple[str, ...] = NATURAL_IMAGES
    channels: int = 3
    sizes: tuple[int, ...] = (32, 64, 128, 256)
    inputs: tuple[str, ...] = ("raw01", "raw11", "pe5")
    width: int = 256
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=5000, batch_size=256)
    band_width: int = 4
    patch: float = 1 / 16
    checkpoints: int = 25
    seeds: int = 5

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TRAIN,
        **NETWORK,
        "images": ("images",),
        "inputs": ("inputs",),
    }

    def __post_init__(self) -> None:
        check_study(
            self.inputs,
            in_dim=2,
            convention="2d",
            width=self.width,
            depth=self.depth,
            seeds=self.seeds,
            checkpoints=self.checkpoints,
            band_width=self.band_width,
        )
        if not self.sizes or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"sizes must be distinct and non-empty, got {list(self.sizes)}")
        for size in self.sizes:
            if size < 2 * self.band_width or size % (2 * self.band_width):
                raise ConfigError(
                    f"image size {size} must be a multiple of 2·band_width = {2 * self.band_width} "
                    f"(bands of {self.band_width} cycles per image up to the Nyquist radius)"
                )
        if not self.images:
            raise ConfigError("at least one image is needed")
        for name in self.images:
            NaturalImage(name, size=max(self.sizes), channels=self.channels)  # ConfigError if unknown
        smallest = min(self.sizes) ** 2
        if self.train.batch_size is None or self.train.batch_size >= smallest:
            raise ConfigError(
                f"batch size must be between 1 and the smallest image's pixel count - 1 ({smallest - 1}), "
                f"got {self.train.batch_size}"
            )
        if not 2 <= round(self.patch * min(self.sizes)) <= min(self.sizes):
            raise ConfigError(
                f"local patch {self.patch} of the side is {round(self.patch * min(self.sizes))} px at "
                f"{min(self.sizes)}²; need from 2 px to the whole side at the smallest size"
            )

    @property
    def steps(self) -> int:
        """The optimiser steps every size trains: ``epochs`` epochs of the smallest image."""
        return self.train.epochs * self.steps_per_epoch(min(self.sizes))

    def steps_per_epoch(self, size: int) -> int:
        return shared.steps_per_epoch(size * size, self.train.batch_size)

    def epochs(self, size: int) -> int:
        """Epochs at side ``size``: enough for :attr:`steps` steps."""
        return math.ceil(self.steps / self.steps_per_epoch(size))

    def n_bands(self, size: int) -> int:
        """Inner radial bands at side ``size`` (``band_width`` cycles each, up to ``size/2``)."""
        return size // (2 * self.band_width)

    def band_labels(self, size: int) -> list[str]:
        """``"0-4"``, ``"4-8"``, …: each inner band's range in cycles per image."""
        w = self.band_width
        return [f"{b * w}-{(b + 1) * w}" for b in range(self.n_bands(size))]

    def probes(self, size: int) -> tuple[ProbeSpec, ...]:
        """Every probe at side ``size``: bands at ``checkpoints`` even and as many log-spaced
        epochs (the early ones resolve the common epoch budget), patterns and regions after the
        first and last epoch, confusion at the end; patches of ``patch`` of the side."""
        epochs = self.epochs(size)
        pairs = PatchPairSpec(patches=100, patch=self.patch, pairs_per_patch=100, global_pairs=2000)
        ends = Schedule(explicit=(0,), last=True)
        bands = Schedule(every=max(1, epochs // self.checkpoints), logspaced=self.checkpoints, last=True)
        return (
            BandSpec(bands, n_bands=self.n_bands(size) + 1),  # + the corners
            HammingSpec(ends, pairs),
            RegionSpec(ends),
            ConfusionSpec(Schedule(last=True), pairs),
        )

    def sweeps(self) -> list[Sweep]:
        """Every input's sweep over the sides, with the common step and epoch budgets."""
        out = []
        for label in self.inputs:
            keys = tuple(SweepLine(label, self.train.batch_size, dim=2).at(s) for s in sorted(self.sizes))
            out.append(Sweep(keys[0].line, keys, self.steps, min(self.epochs(s) for s in self.sizes)))
        return out

    def points(self) -> list[SweepKey]:
        """Every sweep point in order: the groups of the analysis."""
        return [k for sweep in self.sweeps() for k in sweep.keys]

    def runs(self, seeds: int) -> list[RunConfig]:
        return [
            RunConfig(
                signal=NaturalImage(self.images[seed % len(self.images)], size=size, channels=self.channels),
                input=label,
                width=self.width,
                depth=self.depth,
                train=dataclasses.replace(self.train, epochs=self.epochs(size)),
                probes=self.probes(size),
                seed=seed,
            )
            for label in self.inputs
            for size in sorted(self.sizes)
            for seed in range(seeds)
        ]


# --------------------------------------------------------------------------- numbers


def band_errors(data: RunData, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """``(checkpoint epochs, relative energy of the first n_bands bands per checkpoint)``."""
    return data.get("bands", "epochs"), data.get("bands", "rel_energy")[:, :n_bands]


def high_error_at(data: RunData, high: slice, spe: int, x: float, per: str) -> float:
    """Mean relative energy of the ``high`` bands after ``x`` steps (``per="step"``) or epochs
    (``per="epoch"``), linear between checkpoints (:func:`~.sweep.error_at`)."""
    epochs, rel = band_errors(data, high.stop)
    return shared.error_at(epochs, rel[:, high].mean(axis=1), spe, x, per)


def band_hits(datas: Sequence[RunData], labels: Sequence[str]) -> Hits:
    """Per seed and band: the first checkpoint epoch with relative energy below the threshold."""
    return shared.hits(datas, lambda d: band_errors(d, len(labels)))


def first_below(found: Hits, labels: Sequence[str], spe: int) -> tuple[dict, dict]:
    """``({band: mean epochs trained}, {band: mean steps})`` over seeds, ``None`` where a seed never got
    there. A hit at checkpoint label ``e`` (after epoch ``e``'s update) is ``e + 1`` epochs of training
    and ``(e + 1)·spe`` optimiser steps."""
    epochs: dict[str, float | None] = {}
    for b, label in enumerate(labels):
        seeds = [h[b] for h in found]
        epochs[label] = None if any(e is None for e in seeds) else float(np.mean(seeds)) + 1
    steps = {k: None if e is None else e * spe for k, e in epochs.items()}
    return epochs, steps


@dataclass(frozen=True)
class Budget:
    """What every size is compared at: the common bands, their upper half, and the common step
    and epoch budgets (the smallest over the sizes)."""

    common: list[str]
    high: slice
    steps: int
    epochs: int

    @classmethod
    def of(cls, params: Density2D, sizes: Sequence[int]) -> Budget:
        common = params.band_labels(min(sizes))
        return cls(
            common=common,
            high=slice(len(common) // 2, len(common)),
            steps=min(params.epochs(s) * params.steps_per_epoch(s) for s in sizes),
            epochs=min(params.epochs(s) for s in sizes),
        )

    @property
    def high_label(self) -> str:
        first, last = self.common[self.high][0], self.common[self.high][-1]
        return f"{first.split('-')[0]}-{last.split('-')[1]}"


def per_seed(datas: Sequence[RunData], found: Hits, key: SweepKey, budget: Budget) -> dict[str, np.ndarray]:
    """Headline numbers of each seed: the high bands' relative energy at the common step and epoch
    budgets, the common bands converged by the end (``found``: :func:`band_hits`), and the
    neighbourhood numbers (local |confusion|, local Hamming, regions, points per region)."""
    spe, common = key.steps_per_epoch, len(budget.common)
    return {
        "band_err_high_step": np.array(
            [high_error_at(d, budget.high, spe, budget.steps, "step") for d in datas]
        ),
        "band_err_high_epoch": np.array(
            [high_error_at(d, budget.high, spe, budget.epochs, "epoch") for d in datas]
        ),
        "n_converged": np.array([sum(e is not None for e in h[:common]) for h in found], dtype=np.float64),
        **shared.neighbourhood(datas, key.n_points),
    }


def block(
    summary: dict,
    seeds: dict[str, np.ndarray],
    datas: Sequence[RunData],
    found: Hits,
    params: Density2D,
    size: int,
    budget: Budget,
) -> dict[str, Any]:
    """One (input, S) entry of the table: per-band convergence in epochs and steps, the relative
    energy per band at the end and at the common step budget, local confusion and Hamming, regions."""
    spe, labels = params.steps_per_epoch(size), params.band_labels(size)
    epochs, steps = first_below(found, labels, spe)
    final = np.mean([band_errors(d, len(labels))[1][-1] for d in datas], axis=0)
    at_step = np.mean(
        [
            [high_error_at(d, slice(b, b + 1), spe, budget.steps, "step") for b in range(len(budget.common))]
            for d in datas
        ],
        axis=0,
    )
    side = round(params.patch * size)
    return {
        "size": size,
        "n_points": size * size,
        "batch_size": params.train.batch_size,
        "steps_per_epoch": spe,
        "epochs": params.epochs(size),
        "steps": params.epochs(size) * spe,
        "patch_pixels": side,
        "points_per_patch": side * side,
        EPOCHS_FIELD: epochs,
        STEPS_FIELD: steps,
        "final_rel_energy": dict(zip(labels, final.tolist())),
        "rel_energy_at_common_step": dict(zip(budget.common, at_step.tolist())),
        "band_err_high_at_common_step": float(seeds["band_err_high_step"].mean()),
        "band_err_high_at_common_epoch": float(seeds["band_err_high_epoch"].mean()),
        "regions_saturated": summary["regions_saturated_last"],
        "psnr_last": summary["psnr_last"],
        **shared.neighbourhood_entry(summary, seeds),
    }


# --------------------------------------------------------------------------- claims


def _raw_claims(table: SeedTable, sweep: Sweep, budget: Budget) -> list[Claim]:
    """The paper's reading for raw coordinates: on a denser grid the high bands are slower per step,
    neighbours in a patch of fixed size conflict more and share more, regions hold more points; per
    epoch (more steps on a denser grid) the high bands converge faster."""
    name, keys = sweep.line.name, sweep.keys
    high = f"the high bands ({budget.high_label} cycles/image)"
    return [
        shared.sweep_trend(
            table,
            f"{name}: per step, {high} are further from the target after {budget.steps} steps as N grows",
            "band_err_high_step",
            sweep,
            True,
            shared.unlearned(table, "band_err_high_step", keys, high),
        ),
        shared.sweep_trend(
            table,
            f"{name}: per step, the steps to bring a band below rel. energy {_LEVEL:g} grow with N",
            "steps_to_converge",
            sweep,
            True,
            shared.never(table, sweep, CONVERGED),
        ),
        *shared.neighbour_claims(table, sweep, "in a patch of fixed physical size"),
        shared.sweep_trend(
            table,
            f"{name}: per epoch, {high} converge faster as N grows (more steps per epoch; rel. energy "
            f"after {budget.epochs} epochs)",
            "band_err_high_epoch",
            sweep,
            False,
            shared.unlearned(table, "band_err_high_epoch", keys, high),
        ),
    ]


def density_2d_claims(sweeps: Sequence[Sweep], table: SeedTable, budget: Budget) -> list[Claim | None]:
    """X6b's claims over each raw or PE input's sweep (of at least two sides), and the comparison of
    how much N moves the high bands for PE and for raw; ``table`` holds :func:`per_seed`'s quantities,
    the times to converge (:func:`~.sweep.time_to_converge`) and the ranges (:func:`~.sweep.put_range`)."""
    raws, pes = shared.raw_and_pe(sweeps)
    claims: list[Claim | None] = [c for sweep in raws for c in _raw_claims(table, sweep, budget)]
    for sweep in pes:
        claims += shared.encoded_claims(table, sweep, "more steps per epoch", CONVERGED)
    high = f"the high bands ({budget.high_label} cycles/image)"
    how = f"range over N of their rel. energy after {budget.steps} steps"
    claims.append(
        shared.spread_claim(table, raws, pes, "band_err_high_step", high, "the high bands' error", how)
    )
    return claims


# --------------------------------------------------------------------------- figures and analysis


def _metrics(budget: Budget) -> dict[str, str]:
    high = f"rel. energy, {budget.high_label} cyc./image"
    return {
        "band_err_high_step": f"{high}, after {budget.steps} steps",
        "band_err_high_epoch": f"{high}, after {budget.epochs} epochs",
        "cos_local_abs": "local |cos| (gradient confusion)",
        "hamming_local": "local Hamming distance (units)",
        "points_per_region": "grid points per activation region",
    }


def _maps(columns: dict[str, tuple[list[str], list[dict]]], budget: Budget) -> dict[str, Figure]:
    """Band × size heatmaps per input over the common bands: steps and epochs to the threshold, and
    the relative energy after the common step budget."""
    below = f"rel. energy < {_LEVEL:g}"
    maps = {
        "convergence_steps": (STEPS_FIELD, f"first step with {below}", True, None),
        "convergence_epochs": (EPOCHS_FIELD, f"epochs trained to {below}", False, None),
        "rel_energy_at_common_step": (
            "rel_energy_at_common_step",
            f"rel. energy after {budget.steps} steps",
            False,
            1.0,
        ),
    }
    out = {}
    for name, (field, label, log, vmax) in maps.items():
        panels = {
            name: (cols, shared.unit_matrix(blocks, field, budget.common))
            for name, (cols, blocks) in columns.items()
        }
        text = f"{label.capitalize()} per radial band" + ("" if vmax else " (grey: never)")
        fig = shared.frequency_map(panels, budget.common, "image side S", text, label, log=log, vmax=vmax)
        fig.axes[0].set_ylabel("radial band (cycles / image)")
        out[name] = fig
    return out


def _record(
    result: ExperimentResult,
    key: SweepKey,
    datas: Sequence[RunData],
    seeds: dict,
    found: Hits,
    labels: list[str],
) -> None:
    """Rows and arrays of one (input, S) group: per-seed headline numbers, the per-band convergence
    epoch (trained) and step, and the relative energy per checkpoint and band (seeds × checkpoints ×
    bands, the corners last)."""
    shared.record_seeds(result, "X6b", key, datas, seeds, "bands")
    shared.record_hits(result, "X6b", key, datas, found, labels, (EPOCHS_FIELD, STEPS_FIELD), True)
    result.arrays[f"band_rel_energy/{key}"] = np.stack([d.get("bands", "rel_energy") for d in datas])
    result.arrays[f"band_epochs/{key}"] = datas[0].get("bands", "epochs")


def analyse_density_2d(params: Density2D, runs: Runs) -> ExperimentResult:
    """X6b: per (input, S) the per-seed numbers and the table entry, figures over S, and the claims
    over each input's sweep."""
    result, groups = shared.begin("X6b", params, runs, SweepKey.of, lambda p: p.points())
    inputs, values = result.summary["inputs"], SeedTable()
    sweeps = params.sweeps()
    if not any(groups.get(k) for sweep in sweeps for k in sweep.keys):
        return shared.finish(result, values, ())
    budget = Budget.of(params, params.sizes)
    metrics = _metrics(budget)
    by_size: dict[str, dict[str, dict]] = {}
    series: dict[str, tuple[list[int], dict]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    for sweep in sweeps:
        found = {k: groups[k] for k in sweep.keys if groups.get(k)}
        if not found:
            continue
        found_hits = {k: band_hits(datas, params.band_labels(k.size)) for k, datas in found.items()}
        common = shared.common_units([[row[: len(budget.common)] for row in h] for h in found_hits.values()])
        per_size, per_point = {}, []
        for key, datas in found.items():
            seeds = per_seed(datas, found_hits[key], key, budget)
            shared.put_seeds(values, key, datas, seeds)
            shared.time_to_converge(values, key, datas, found_hits[key], common)
            entry = block(inputs[key], seeds, datas, found_hits[key], params, key.size, budget)
            per_size[str(key.size)] = entry
            inputs[key].update({f: entry[f] for f in ("size", "steps_per_epoch", "epochs", "n_converged")})
            _record(result, key, datas, seeds, found_hits[key], params.band_labels(key.size))
            per_point.append(seeds)
        shared.put_range(values, sweep, "band_err_high_step")
        by_size[sweep.line.input] = per_size
        series[sweep.line.series] = ([k.size for k in found], shared.seed_stats(per_point, metrics))
        columns[sweep.line.series] = ([f"{s}²" for s in per_size], list(per_size.values()))
    result.summary["by_size"] = by_size
    result.summary["bands"] = {
        "width_cycles": params.band_width,
        "common": budget.common,
        "high": budget.common[budget.high],
        "threshold_rel_energy": _LEVEL,
    }
    result.summary["budget"] = {"common_steps": budget.steps, "common_epochs": budget.epochs}
    result.summary["patch_fraction"] = params.patch
    text = "Coordinate density in 2D: high bands per step and per epoch, local confusion, Hamming, regions"
    result.figures["density_metrics"] = shared.metric_lines(
        series, metrics, "image side S (N = S² points)", text
    )
    result.figures.update(_maps(columns, budget))
    return shared.finish(result, values, density_2d_claims(sweeps, values, budget))


# --------------------------------------------------------------------------- registry

X6B_PAPER = Density2D()
X6B_QUICK = Density2D(
    images=("camera",),
    channels=1,
    sizes=(32, 64, 128),
    inputs=("raw01", "pe5"),
    width=128,
    depth=2,
    train=TrainConfig(epochs=300, batch_size=256),
    seeds=3,
)

DENSITY_2D_EXPERIMENTS = (
    Experiment.of(
        id="X6b",
        title="Coordinate density in 2D (one image at 32² … 256², raw vs PE, equal steps)",
        claim="With raw coordinates, more points per region means more conflicting gradients and slower "
        "high frequencies as N grows; with PE the dependence on N is weak.",
        quick=X6B_QUICK,
        standard=dataclasses.replace(X6B_QUICK, seeds=5),
        paper=X6B_PAPER,
        analyse=analyse_density_2d,
    ),
)
