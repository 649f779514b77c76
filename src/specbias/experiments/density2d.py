"""Coordinate density in 2D (issue 6, the image variant of X6): X6b, one image at 32² … 256².

X6 asks in 1D whether the slowdown of the high frequencies is *magnified by the density of the
coordinates* (Lazzari & Liu 2023); X6b asks the same of an image. The same photograph is
centre-cropped and exactly area-resized (:class:`~specbias.signals.NaturalImage`) to ``S × S`` for
every side ``S`` of the sweep, so ``N = S²`` points sample the same picture more and more densely,
and the same network and optimiser (Adam, MSE, batch size ``B`` reshuffled every epoch) are
trained on each, from raw coordinates and from PE. One run per (input, S, seed) carries every
probe; seed ``s`` trains on image ``s mod len(images)``.

Budget: equal optimiser steps
-----------------------------
A fixed batch size gives ``⌈S²/B⌉`` steps per epoch, so equal epochs would cost 64 times more at
256² than at 32². Every size gets the same number of **steps** instead: the smallest image trains
``epochs`` epochs and each other size ``⌈steps / steps per epoch⌉`` epochs. Convergence is then
reported both ways: **per step** (the same optimiser work on a denser grid, the fair test of the
claim) at the common step budget, and **per epoch** (every point seen equally often) at the
common epoch budget, the largest image's epochs (where the denser grids have taken more steps). No
full-batch variant: one step per epoch at 256² needs far more epochs than the quick budget has.

Measures (probes carried by every run)
--------------------------------------
* **per-band convergence**: the relative residual energy ``E_b(f − y)/E_b(y)`` of radial bands
  of the 2D spectrum (:func:`~specbias.metrics.spectrum.radial_band_error`; 0 learned, 1 not at
  all). The bands are fixed in **physical** frequency, ``band_width`` cycles per image wide
  (``BandSpec`` with ``S/(2·band_width) + 1`` bands at side ``S``: equal bands up to the grid's
  Nyquist radius ``S/2``, then the corners, which are dropped), so band ``[8, 12)`` is the same
  frequencies at every size; the bands below the smallest image's Nyquist radius are *common* to
  every size (at the smallest size the last one also holds the axis Nyquist bins) and their upper
  half are "the high bands". Per band: the first checkpoint epoch (and step, ``(epoch + 1)·⌈S²/B⌉``)
  at which the relative energy is below :data:`BAND_THRESHOLD`, ``None`` when a seed never gets
  there; the relative energy of the high bands after the common step and epoch budgets (linear
  between checkpoints);
* **local gradient confusion** (cosine of per-example loss gradients, Sankararaman et al. 2020)
  and **local Hamming distance** of activation patterns, for pairs inside square patches of a
  fixed **physical** side, ``patch`` of the image side (1/16: 2×2 pixels at 32², 16×16 at 256²),
  100 patches of 100 pairs (all 6 pairs of a 2×2 patch), after the last epoch; the points per
  patch grow with ``S²`` while the distance between the two points of a pair keeps nearly the same
  distribution (mean 0.036 of the side at 32², 0.033 for large S);
* **grid region count** after the first and the last epoch: distinct activation patterns over the
  ``S²`` pixels (a lower bound on the regions the image crosses; ``regions_saturated`` when every
  pixel has its own), and the points per region ``S²/regions``.

Findings
--------
Computed from the per-(input, S) table (means over seeds) with X6's helpers
(:func:`~specbias.experiments.density.trend`, :func:`~specbias.experiments.density.weak`,
:func:`~specbias.experiments.density.common_trend`: a trend over N needs Spearman's ρ of its sign
and a change first → last above :data:`~specbias.experiments.density.MATERIAL`; *weak* is a
relative range at most :data:`~specbias.experiments.density.WEAK`), reported whichever way they
come out. For raw inputs (the paper's reading): per step the high bands end further from the target
and the steps to reach the threshold grow as N grows; local |confusion| rises, local Hamming falls
and points per region rise with N; per epoch convergence speeds up with N. For PE: per step the
steps to reach the threshold hardly depend on N, per epoch they fall. And N moves the high bands'
error at the common step budget less for PE than for raw.

Profiles
--------
``paper``: the five bundled photographs (RGB; seed ``s`` on image ``s mod 5``) at 32², 64², 128²
and 256², raw ``[0,1)``, raw ``[-1,1)`` and PE L=5 (the 2D convention: 5 octaves, unaliased at
32²), MLP-4×256, batch 256, 20,000 steps (5,000 epochs at 32², 79 at 256²), 5 seeds: 60 runs, a
GPU job. ``quick`` takes about 30 s on 2 idle cores: the camera photograph in grayscale (one output),
32², 64² and 128² (a factor 16 in density: three points for a trend), raw ``[0,1)`` against PE
L=5, the main-text MLP-2×128 with batch 256, 1,200 steps (300 epochs at 32², 19 at 128²; at
~3 ms a step each run takes a few seconds whatever its size) and 2 seeds (error bars). Band
threshold 0.1 on the relative *energy* (an RMS amplitude error of about 0.32), not X6's 0.1 on
the amplitude: within the quick budget neither input brings the upper bands of a photograph to an
amplitude error of 0.1, so nothing would be measurable, while at 0.1 in energy PE converges every
common band and raw the lowest ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from matplotlib.figure import Figure

from specbias import figures
from specbias.encodings import NeRFPE, Raw, parse_input
from specbias.errors import ConfigError
from specbias.experiments.analysis import Runs, by_group, make_analysis
from specbias.experiments.base import Experiment, ExperimentResult, Finding, check_study
from specbias.experiments.density import (
    MATERIAL,
    common_trend,
    frequency_map,
    metric_lines,
    steps_per_epoch,
    trend,
)
from specbias.experiments.study2d import NATURAL_IMAGES
from specbias.metrics.spectrum import first_epoch_below
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
from specbias.training import Schedule, TrainConfig

BAND_THRESHOLD = 0.1
"""A band is *converged* once its relative residual energy ``E_b(f − y)/E_b(y)`` is below this."""
CONVERGED = f"band reached rel. energy {BAND_THRESHOLD:g}"
"""What converging means, for the findings that cannot be measured."""
EPOCHS_FIELD = f"epochs_to_rel_energy_{BAND_THRESHOLD:g}"
STEPS_FIELD = f"steps_to_rel_energy_{BAND_THRESHOLD:g}"


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Density2D:
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

    OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "lr", "width", "depth", "images", "inputs")

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

    def override(self, **changes: Any) -> Density2D:
        """A copy with user overrides: ``epochs`` (of the smallest image; the step budget follows),
        ``lr``, ``width``, ``depth``, ``images`` (names or PNG/JPEG paths), ``inputs``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        train = dataclasses.replace(
            self.train, **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes}
        )
        for key in ("images", "inputs"):
            if key in changes:
                changes[key] = tuple(changes[key])
        return dataclasses.replace(self, train=train, **changes)

    @property
    def steps(self) -> int:
        """The optimiser steps every size trains: ``epochs`` epochs of the smallest image."""
        return self.train.epochs * self.steps_per_epoch(min(self.sizes))

    def steps_per_epoch(self, size: int) -> int:
        return steps_per_epoch(size * size, self.train.batch_size)

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

    def keys(self) -> list[str]:
        return [key(label, size) for label in self.inputs for size in sorted(self.sizes)]

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


def key(label: str, size: int) -> str:
    """X6b's group of a run: ``raw01@S64`` for raw ``[0,1)`` on the 64² image."""
    return f"{label}@S{size}"


def _run_key(cfg: RunConfig) -> str:
    return key(cfg.input, cfg.signal.size)


# --------------------------------------------------------------------------- numbers


def band_errors(data: RunData, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """``(checkpoint epochs, relative energy of the first n_bands bands per checkpoint)``."""
    return data.get("bands", "epochs"), data.get("bands", "rel_energy")[:, :n_bands]


def high_error_at(data: RunData, high: slice, spe: int, x: float, per: str) -> float:
    """Mean relative energy of the ``high`` bands after ``x`` steps (``per="step"``) or epochs
    (``per="epoch"``), linear between checkpoints: checkpoint epoch ``e`` comes after ``e + 1``
    epochs, ``(e + 1)·spe`` steps."""
    epochs, rel = band_errors(data, high.stop)
    done = (epochs + 1) * (spe if per == "step" else 1)
    return float(np.interp(x, done, rel[:, high].mean(axis=1)))


def band_hits(datas: Sequence[RunData], labels: Sequence[str]) -> list[list[int | None]]:
    """Per seed and band: the first checkpoint epoch with relative energy below the threshold."""
    return [first_epoch_below(*band_errors(d, len(labels)), BAND_THRESHOLD) for d in datas]


def first_below(hits: list[list[int | None]], labels: Sequence[str], spe: int) -> tuple[dict, dict]:
    """``({band: mean epochs trained}, {band: mean steps})`` over seeds, ``None`` where a seed never got
    there. A hit at checkpoint label ``e`` (after epoch ``e``'s update) is ``e + 1`` epochs of training
    and ``(e + 1)·spe`` optimiser steps."""
    epochs: dict[str, float | None] = {}
    for b, label in enumerate(labels):
        seeds = [h[b] for h in hits]
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


def per_seed(
    datas: Sequence[RunData], hits: list[list[int | None]], spe: int, size: int, budget: Budget
) -> dict[str, np.ndarray]:
    """Headline numbers of each seed: the high bands' relative energy at the common step and epoch
    budgets, the common bands converged by the end (``hits``: :func:`band_hits`), local |confusion|,
    local Hamming, regions and points per region."""
    common = len(budget.common)
    regions = np.array([float(d.get("regions", "all")[-1]) for d in datas])
    return {
        "band_err_high_step": np.array(
            [high_error_at(d, budget.high, spe, budget.steps, "step") for d in datas]
        ),
        "band_err_high_epoch": np.array(
            [high_error_at(d, budget.high, spe, budget.epochs, "epoch") for d in datas]
        ),
        "n_converged": np.array([sum(e is not None for e in h[:common]) for h in hits], dtype=np.float64),
        "cos_local_abs": np.array([np.nanmean(np.abs(d.get("confusion", "local_cos")[-1])) for d in datas]),
        "hamming_local": np.array([float(d.get("hamming", "local_mean")[-1]) for d in datas]),
        "regions": regions,
        "points_per_region": size * size / regions,
    }


def block(
    summary: dict,
    seeds: dict[str, np.ndarray],
    datas: Sequence[RunData],
    hits: list[list[int | None]],
    params: Density2D,
    size: int,
    budget: Budget,
) -> dict[str, Any]:
    """One (input, S) entry of the table: per-band convergence in epochs and steps, the relative
    energy per band at the end and at the common step budget, local confusion and Hamming, regions."""
    spe, labels = params.steps_per_epoch(size), params.band_labels(size)
    epochs, steps = first_below(hits, labels, spe)
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
        "n_converged": float(seeds["n_converged"].mean()),
        "final_rel_energy": dict(zip(labels, final.tolist())),
        "rel_energy_at_common_step": dict(zip(budget.common, at_step.tolist())),
        "band_err_high_at_common_step": float(seeds["band_err_high_step"].mean()),
        "band_err_high_at_common_epoch": float(seeds["band_err_high_epoch"].mean()),
        "cos_local_abs_mean": summary["cos_local_abs_mean"],
        "cos_local_mean": summary["cos_local_mean"],
        "hamming_local": summary["hamming_local"],
        "hamming_local_ratio": summary["hamming_local_ratio"],
        "regions_last": summary["regions_last"],
        "regions_saturated": summary["regions_saturated_last"],
        "points_per_region": float(seeds["points_per_region"].mean()),
        "psnr_last": summary["psnr_last"],
        "final_loss": summary["final_loss"],
        "seeds": summary["seeds"],
    }


# --------------------------------------------------------------------------- findings


def _column(blocks: Sequence[dict], field: str) -> list[float]:
    return [b[field] for b in blocks]


def _raw_findings(name: str, ns: list[int], blocks: list[dict], budget: Budget) -> list[Finding]:
    """The paper's reading for raw coordinates: on a denser grid the high bands are slower per step,
    neighbours in a patch of fixed size conflict more and share more, regions hold more points."""
    patch = "in a patch of fixed physical size"
    high = f"the high bands ({budget.high_label} cycles/image)"
    out = [
        trend(
            f"{name}: per step, {high} are further from the target after {budget.steps} steps as N grows",
            ns,
            _column(blocks, "band_err_high_at_common_step"),
            rises=True,
        ),
        common_trend(
            f"{name}: per step, the steps to bring a band below rel. energy {BAND_THRESHOLD:g} grow with N",
            ns,
            blocks,
            STEPS_FIELD,
            rises=True,
            converged=CONVERGED,
        ),
    ]
    claims = (
        ("cos_local_abs_mean", True, f"local |gradient confusion| {patch} grows with N"),
        ("hamming_local", False, f"local Hamming distance {patch} falls as N grows"),
        ("points_per_region", True, "more grid points per activation region as N grows"),
    )
    out += [trend(f"{name}: {claim}", ns, _column(blocks, f), rises) for f, rises, claim in claims]
    out.append(
        trend(
            f"{name}: per epoch, {high} converge faster as N grows (more steps per epoch; rel. energy "
            f"after {budget.epochs} epochs)",
            ns,
            _column(blocks, "band_err_high_at_common_epoch"),
            rises=False,
        )
    )
    return out


def _pe_findings(name: str, ns: list[int], blocks: list[dict]) -> list[Finding]:
    """PE: per step N hardly matters; per epoch denser grids converge sooner (more steps)."""
    return [
        common_trend(
            f"{name}: per step, the steps to converge hardly depend on N",
            ns,
            blocks,
            STEPS_FIELD,
            None,
            converged=CONVERGED,
        ),
        common_trend(
            f"{name}: per epoch, convergence gets faster as N grows (more steps per epoch)",
            ns,
            blocks,
            EPOCHS_FIELD,
            rises=False,
            converged=CONVERGED,
        ),
    ]


def density_2d_findings(table: dict[str, dict[str, dict]], budget: Budget) -> list[Finding]:
    """X6b's findings, computed from the per-(input, S) table (``table[label][str(S)]``)."""
    out: list[Finding] = []
    spread: dict[str, float] = {}
    for label, per_size in table.items():
        enc, blocks = parse_input(label, in_dim=2, convention="2d"), list(per_size.values())
        ns = [b["n_points"] for b in blocks]
        if len(ns) < 2 or not isinstance(enc, (Raw, NeRFPE)):
            continue
        name = figures.input_title(label)
        out += (
            _raw_findings(name, ns, blocks, budget)
            if isinstance(enc, Raw)
            else _pe_findings(name, ns, blocks)
        )
        spread[label] = float(np.ptp(_column(blocks, "band_err_high_at_common_step")))
    raws = [k for k in spread if isinstance(parse_input(k, in_dim=2, convention="2d"), Raw)]
    pes = [k for k in spread if isinstance(parse_input(k, in_dim=2, convention="2d"), NeRFPE)]
    if raws and pes:
        raw, pe = raws[0], pes[-1]
        out.append(
            Finding(
                f"N moves the high bands' error less for {figures.input_title(pe)} than for "
                f"{figures.input_title(raw)} (range over N of their rel. energy after {budget.steps} steps; "
                f"raw's range > {MATERIAL})",
                spread[raw] > MATERIAL and spread[pe] < spread[raw],
                f"{pe} {spread[pe]:.3g} vs {raw} {spread[raw]:.3g}",
            )
        )
    return out


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


def _stats(seeds: Sequence[dict[str, np.ndarray]], metrics: Sequence[str]) -> dict[str, tuple]:
    return {
        m: (np.array([s[m].mean() for s in seeds]), np.array([s[m].std() for s in seeds])) for m in metrics
    }


def _maps(columns: dict[str, tuple[list[str], list[dict]]], budget: Budget) -> dict[str, Figure]:
    """Band × size heatmaps per input over the common bands: steps and epochs to the threshold, and
    the relative energy after the common step budget."""
    below = f"rel. energy < {BAND_THRESHOLD:g}"
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
            title: (
                cols,
                np.array(
                    [[np.nan if b[field][k] is None else b[field][k] for b in blocks] for k in budget.common],
                    dtype=float,
                ),
            )
            for title, (cols, blocks) in columns.items()
        }
        title = f"{label.capitalize()} per radial band" + ("" if vmax else " (grey: never)")
        fig = frequency_map(panels, budget.common, "image side S", title, label, log=log, vmax=vmax)
        fig.axes[0].set_ylabel("radial band (cycles / image)")
        out[name] = fig
    return out


def _record(
    result: ExperimentResult,
    group: str,
    datas: Sequence[RunData],
    seeds: dict,
    hits: list[list[int | None]],
    labels: list[str],
    spe: int,
) -> None:
    """Rows and arrays of one (input, S) group: per-seed headline numbers, the per-band convergence
    epoch and step, and the relative energy per checkpoint and band (seeds × checkpoints × bands,
    the corners last)."""
    for s, (d, seed_hits) in enumerate(zip(datas, hits)):
        base = ("X6b", group, d.meta["seed"])
        last = int(d.get("bands", "epochs")[-1])
        result.rows += [(*base, last, m, "last", float(v[s])) for m, v in seeds.items()]
        for band, e in zip(labels, seed_hits):
            if e is not None:
                result.rows.append((*base, e, EPOCHS_FIELD, band, float(e + 1)))
                result.rows.append((*base, e, STEPS_FIELD, band, float((e + 1) * spe)))
    for m, v in seeds.items():
        result.arrays[f"{m}/{group}"] = v
    result.arrays[f"band_rel_energy/{group}"] = np.stack([d.get("bands", "rel_energy") for d in datas])
    result.arrays[f"band_epochs/{group}"] = datas[0].get("bands", "epochs")


def analyse_density_2d(params: Density2D, runs: Runs) -> ExperimentResult:
    """X6b: the per-group summary, then the per-(input, S) table, figures and findings."""
    result = make_analysis("X6b", (), {}, key=_run_key, order=lambda p: p.keys())(params, runs)
    groups = {k: [d for d in v if d.meta["diverged_at"] is None] for k, v in by_group(runs, _run_key).items()}
    found_sizes = sorted({s for s in params.sizes for lb in params.inputs if groups.get(key(lb, s))})
    inputs = result.summary["inputs"]
    if not found_sizes:
        return result
    budget = Budget.of(params, found_sizes)
    metrics = _metrics(budget)
    table: dict[str, dict[str, dict]] = {}
    series: dict[str, tuple[list[int], dict]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    for label in params.inputs:
        found = [(s, groups[key(label, s)]) for s in found_sizes if groups.get(key(label, s))]
        if not found:
            continue
        per_size, seed_stats = {}, []
        for size, datas in found:
            group, labels, spe = key(label, size), params.band_labels(size), params.steps_per_epoch(size)
            hits = band_hits(datas, labels)
            seeds = per_seed(datas, hits, spe, size, budget)
            entry = block(inputs[group], seeds, datas, hits, params, size, budget)
            per_size[str(size)] = entry
            inputs[group].update({f: entry[f] for f in ("size", "steps_per_epoch", "epochs", "n_converged")})
            _record(result, group, datas, seeds, hits, labels, spe)
            seed_stats.append(seeds)
        table[label] = per_size
        name = figures.input_title(label)
        series[name] = ([s for s, _ in found], _stats(seed_stats, metrics))
        columns[name] = ([f"{s}²" for s in per_size], list(per_size.values()))
    result.summary["by_size"] = table
    result.summary["bands"] = {
        "width_cycles": params.band_width,
        "common": budget.common,
        "high": budget.common[budget.high],
        "threshold_rel_energy": BAND_THRESHOLD,
    }
    result.summary["budget"] = {"common_steps": budget.steps, "common_epochs": budget.epochs}
    result.summary["patch_fraction"] = params.patch
    if series:
        title = (
            "Coordinate density in 2D: high bands per step and per epoch, local confusion, Hamming, regions"
        )
        fig = metric_lines(series, metrics, "image side S (N = S² points)", title)
        fig.axes[list(metrics).index("points_per_region")].set_yscale("log")
        result.figures["density_metrics"] = fig
        result.figures.update(_maps(columns, budget))
    result.findings += density_2d_findings(table, budget)
    return result


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
    seeds=2,
)

DENSITY_2D_EXPERIMENTS = (
    Experiment.of(
        id="X6b",
        title="Coordinate density in 2D (one image at 32² … 256², raw vs PE, equal steps)",
        claim="With raw coordinates, more points per region means more conflicting gradients and slower "
        "high frequencies as N grows; with PE the dependence on N is weak.",
        quick=X6B_QUICK,
        paper=X6B_PAPER,
        analyse=analyse_density_2d,
    ),
)
