"""Density and dimension (issue 6): X6, how spectral bias depends on how densely the 1D coordinate is
sampled, and X7, whether lifting the coordinate to more dimensions helps or only an encoding that
separates neighbours does.

The paper (Lazzari & Liu 2023) states that the slowdown of the high frequencies is *magnified by the
density of the coordinates* and that the bias is *severe in low-dimensional settings* and overcome
by encoding; no reference script measures either. Both experiments are configurations of the 1D
study's parts: the paper's tone mixture ``y(t) = Σ_{k∈{5,…,70}} sin(2πkt + 2πφ_k)`` on ``t_n = n/N``,
MLP-4×128, Adam 1e-3, 500 epochs, MSE, one training run per (input, N or d, seed) carrying every
probe (:data:`PROBES`):

* **per-frequency convergence** every 5 epochs and at 25 log-spaced epochs (the early ones resolve
  fast mini-batch runs): the first epoch at which ``|R(k)|/|Y(k)| < 0.1`` (the residual spectrum of
  Rahaman et al. 2019, :mod:`specbias.metrics.spectrum`), ``None`` ("not within the budget") when
  a seed never gets there; per optimiser step it is ``(epoch + 1)·⌈N/B⌉`` for a batch size
  ``B < N``, ``epoch + 1`` full batch. Raw coordinates bring hardly any tone below 0.1 in 500
  epochs, so the final relative error per tone, and its mean over the upper half of the tones
  (k >= 40, "the high tones"), are reported as well;
* **local gradient confusion** (cosine of per-example loss gradients, Sankararaman et al. 2020) and
  **local Hamming distance** of activation patterns, for pairs of samples inside windows of a
  *fixed physical width* ``w = 3/128`` of the domain (the reference's ``50/2048`` rounded to a whole
  number of samples at every N of the sweep): ``w·N`` samples per window, 6 at N = 256 and 192 at
  N = 8192, so the number of points per window grows with N while the distance between the two
  points of a pair keeps its distribution; global pairs join ``[0, 0.39)`` to ``[0.586, 1)``;
* **grid region count**: distinct activation patterns over the N grid points (every 50 epochs), and
  the points per region ``N / regions``.

X6 -- coordinate density
------------------------
Raw ``[0,1)``, raw ``[-1,1)``, PE L=3 and L=6, each at every N, full batch and with a fixed batch
size ``B = 128`` (``N/B`` steps per epoch, so convergence is reported per epoch and per step; per
step, raw inputs are compared by their high-tone error after the smallest N's step budget).
N = 128, which the issue lists, is left out: it is below the target's Nyquist rate (``2·70``
samples) and :class:`~specbias.signals.ToneMixture` refuses it (tones 65 and 70 would alias).
The 2D variant of the issue (one image at 32²…256²) is X6b, :mod:`specbias.experiments.density2d`.

X7 -- the dimension or the encoding?
------------------------------------
At N = 2048 the 1D coordinate is lifted to ``ℝᵈ``, ``d ∈ {2, 8, 14, 32}``, in three ways at equal
``d`` (:mod:`specbias.encodings`): ``lin<d>``, a random straight line whose first-layer statistics
at initialisation match raw ``[0,1)``'s; ``curve<d>``, the same line bent by three low harmonics (a
smooth curve that never crosses itself); and encodings that separate neighbours -- PE with ``d/2``
octaves (``pe<d/2-1>``; only where every octave is below the grid's Nyquist limit, so not at
``d = 32``) and Gaussian RFF σ = 10 with ``d/2`` frequencies (``rff10x<d>``). Raw ``[0,1)`` is the
``d = 1`` reference. The same network is trained on the same target.

Findings
--------
Computed from the tables (means over seeds), never hard-coded, and reported whichever way they come
out. A trend over N holds when Spearman's ρ (average ranks for ties, 0 for a constant series) has
the claimed sign *and* the last value differs from the first by more than :data:`MATERIAL` (5%,
relative); a dependence is *weak* when the relative range ``(max − min)/mean`` over N is at most
:data:`WEAK`; a claim that cannot be measured (e.g. no tone converged at every N) does not hold. X6:
for raw inputs (full batch) fewer tones converge, the high tones end further from the target, local
|confusion| rises, local Hamming falls and points per region rise as N grows; for PE the converged
count and epochs hardly depend on N, and N moves the high tones' error less than for raw (whose
range must exceed :data:`MATERIAL`); with batch 128, per epoch convergence speeds up with N and per
step raw slows down while PE hardly changes. X7: a linear lift changes nothing (converged count ±1,
mean final error ±:data:`SAME_ERR`, local Hamming and regions within a factor :data:`SAME_FACTOR` of
raw at every d); at each d the input with the highest local Hamming fits best; a smooth curve
separates neighbours less than PE/RFF; over all inputs, local Hamming and fit are rank-correlated (ρ
>= :data:`SEPARATION_RHO`).

Profiles
--------
``paper``: the issue's grids, 5 seeds -- X6 at N ∈ {256, …, 8192}, both variants for every input
(240 runs; a fixed-batch run at N = 8192 takes 32,000 steps: a GPU job), X7 at N = 2048 (16
inputs, 80 runs). ``quick`` is sized for a 2-core CPU (X6 + X7 in a few minutes): 2 seeds and 300
epochs (PE L=6 converges every tone within ~75 full-batch epochs and raw stays far from the high
tones either way, so the orderings are in place), X6 at N ∈ {256, 512, 1024, 2048} (a factor 8 in
density: four points for a trend, the full-batch cost grows with N), the fixed-batch variant for raw
``[0,1)`` and PE L=6 only and for 100 epochs (it costs ``N/128`` steps per epoch: 1,600 steps at
N = 2048, while PE converges per epoch within ~50), and X7 at N = 512 for d ∈ {2, 14, 32} with the
same settings, so X7's raw01 and pe6 runs are X6's full-batch runs at N = 512 (trained once).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from specbias import figures
from specbias.encodings import CurveLift, GaussianRFF, LinearLift, NeRFPE, Raw, parse_input
from specbias.errors import ConfigError
from specbias.experiments.analysis import REL_ERR_THRESHOLD, Runs, by_group, group_label, make_analysis
from specbias.experiments.base import Experiment, ExperimentResult, Finding, check_study
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import (
    ConfusionSpec,
    ConvergenceSpec,
    HammingSpec,
    PairSpec,
    ProbeSpec,
    RegionSpec,
    RunConfig,
    RunData,
)
from specbias.signals import ToneMixture
from specbias.training import Schedule, TrainConfig

WINDOW = 3 / 128
"""Physical width of a local window (fraction of ``[0, 1)``): a whole number of samples for every N
that is a multiple of 128 (48 at N = 2048, the reference's 50/2048 rounded)."""

PROBES: tuple[ProbeSpec, ...] = (
    HammingSpec(Schedule(every=25, last=True), PairSpec(25, 250, 5000, window=WINDOW)),
    ConfusionSpec(Schedule(last=True), PairSpec(25, 100, 5000, window=WINDOW)),
    ConvergenceSpec(Schedule(every=5, logspaced=25, last=True)),
    RegionSpec(Schedule(every=50, last=True)),
)

WEAK = 0.25
"""A dependence on N is *weak* when the relative range ``(max − min)/mean`` of a quantity over N is
at most this."""
MATERIAL = 0.05
"""A trend over N is *material* when the last value differs from the first by more than this
fraction (of the larger of the two); a relative error moves materially over N when its range
exceeds this."""
SAME_ERR = 0.1
SAME_FACTOR = 1.5
"""A linear lift *changes nothing* when, at every d, its converged count stays within one frequency
of raw ``[0,1)``'s, its final relative error (mean over the tones) within ``SAME_ERR``, and its local
Hamming distance and region count within a factor ``SAME_FACTOR``."""
SEPARATION_RHO = 0.5
"""X7: the rank correlation between separating neighbours (local Hamming) and fitting the target
(minus the mean final relative error) that counts as "the encoding that separates neighbours
helps"."""

_S = TypeVar("_S", bound="Sweep1D")


def _check_count(name: str, value: Any, least: int) -> None:
    """ConfigError unless ``value`` is an integer (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}")


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Sweep1D:
    """What X6 and X7 share: the paper's 1D target, the network, the optimiser and the probes."""

    inputs: tuple[str, ...] = ("raw01", "raw11", "pe3", "pe6")
    signal: ToneMixture = ToneMixture()
    width: int = 128
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=500)
    probes: tuple[ProbeSpec, ...] = PROBES
    seeds: int = 5

    OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "lr", "width", "depth", "inputs")

    def __post_init__(self) -> None:
        check_study(self.inputs, width=self.width, depth=self.depth, seeds=self.seeds)

    def override(self: _S, **changes: Any) -> _S:
        """A copy with user overrides (``epochs``, ``lr``, ``width``, ``depth``, ``inputs``, ``n``)."""
        return dataclasses.replace(self, **self._replacements(changes))

    def _replacements(self, changes: dict[str, Any]) -> dict[str, Any]:
        changes = {k: v for k, v in changes.items() if v is not None}
        train = dataclasses.replace(
            self.train, **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes}
        )
        signal = dataclasses.replace(self.signal, n=changes.pop("n")) if "n" in changes else self.signal
        if "inputs" in changes:
            changes["inputs"] = tuple(changes["inputs"])
        return {"train": train, "signal": signal, **changes}

    def config(
        self,
        label: str,
        seed: int,
        n: int | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
    ) -> RunConfig:
        """The run of ``label`` at ``n`` samples (default: the signal's), ``batch_size`` and ``epochs``
        (default: the training config's)."""
        return RunConfig(
            signal=self.signal if n is None else dataclasses.replace(self.signal, n=n),
            input=label,
            width=self.width,
            depth=self.depth,
            train=dataclasses.replace(self.train, batch_size=batch_size, epochs=epochs or self.train.epochs),
            probes=self.probes,
            seed=seed,
        )


def _key(label: str, n: int, batch_size: int | None) -> str:
    """X6's group of a run: ``raw01@N1024`` full batch, ``raw01@N1024/b128`` with batch size 128."""
    return f"{label}@N{n}" + (f"/b{batch_size}" if batch_size else "")


def _variant(batch_size: int | None) -> str:
    return f"batch{batch_size}" if batch_size else "full_batch"


@dataclass(frozen=True)
class Density(Sweep1D):
    """X6 parameters: the 1D study at every N of ``sizes``, full batch and with ``batch_size``.

    ``batch_inputs`` and ``batch_epochs`` restrict the fixed-batch variant (None: every input, the
    full-batch epochs; an ``--inputs`` or ``--epochs`` override applies to both variants);
    ``batch_size=None`` drops the variant.
    """

    sizes: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    batch_size: int | None = 128
    batch_inputs: tuple[str, ...] | None = None
    batch_epochs: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.sizes, tuple) or not self.sizes or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"sizes must be a non-empty tuple of distinct N, got {self.sizes!r}")
        for n in self.sizes:
            _check_count("every N of sizes", n, 2)
            dataclasses.replace(self.signal, n=n)  # ConfigError when the target does not fit N
        if self.batch_size is not None:
            _check_count("batch size", self.batch_size, 1)
            if self.batch_size >= min(self.sizes):
                raise ConfigError(
                    f"batch size must be between 1 and the smallest N - 1 ({min(self.sizes) - 1}), "
                    f"got {self.batch_size}"
                )
        if self.batch_inputs is not None and not self.batch_inputs:
            raise ConfigError("batch_inputs must name at least one input (None: every input), got ()")
        extra = set(self.batch_inputs or ()) - set(self.inputs)
        if extra:
            raise ConfigError(f"batch inputs {sorted(extra)} are not among the inputs {list(self.inputs)}")
        if self.batch_epochs is not None:
            _check_count("batch_epochs", self.batch_epochs, 1)

    def override(self, **changes: Any) -> Density:
        replacements = self._replacements(changes)
        if "inputs" in replacements:
            replacements["batch_inputs"] = None
        if changes.get("epochs") is not None:
            replacements["batch_epochs"] = None
        return dataclasses.replace(self, **replacements)

    def variants(self) -> list[tuple[int | None, tuple[str, ...], int]]:
        """``(batch size, inputs, epochs)`` of each variant: full batch first."""
        out = [(None, self.inputs, self.train.epochs)]
        if self.batch_size is not None:
            out.append(
                (self.batch_size, self.batch_inputs or self.inputs, self.batch_epochs or self.train.epochs)
            )
        return out

    def keys(self) -> list[str]:
        return [
            _key(lb, n, b) for b, labels, _ in self.variants() for lb in labels for n in sorted(self.sizes)
        ]

    def runs(self, seeds: int) -> list[RunConfig]:
        return [
            self.config(label, seed, n=n, batch_size=b, epochs=epochs)
            for b, labels, epochs in self.variants()
            for label in labels
            for n in sorted(self.sizes)
            for seed in range(seeds)
        ]


def lift_inputs(dims: Sequence[int], n: int, sigma: float = 10) -> tuple[str, ...]:
    """X7's inputs: ``raw01``, then per ``d``: ``lin<d>``, ``curve<d>``, PE with ``d/2`` octaves
    (``d`` even and every octave below the Nyquist limit of ``n`` samples) and ``rff<σ>x<d>``."""
    out = ["raw01"]
    for d in dims:
        _check_count("lift dimension d", d, 2)  # the curve needs two
        out += [f"lin{d}", f"curve{d}"]
        if d % 2 == 0 and NeRFPE(d // 2).frequencies().max() < n / 2:
            out.append(f"pe{d // 2 - 1}")
        out.append(f"rff{sigma:g}x{d}")
    return tuple(out)


@dataclass(frozen=True)
class Lifts(Sweep1D):
    """X7 parameters: every input (raw, lifts, encodings) at the signal's N, full batch."""

    inputs: tuple[str, ...] = lift_inputs((2, 8, 14, 32), 2048)

    OVERRIDES: ClassVar[tuple[str, ...]] = (*Sweep1D.OVERRIDES, "n")

    def __post_init__(self) -> None:
        super().__post_init__()
        seen: dict[tuple[str, int], str] = {}
        for label in self.inputs:
            kind = lift_kind(label)
            if kind in seen:
                raise ConfigError(
                    f"inputs {seen[kind]!r} and {label!r} are both {kind[0]} at d={kind[1]}; X7 compares one "
                    "input per (kind, d)"
                )
            seen[kind] = label

    def runs(self, seeds: int) -> list[RunConfig]:
        return [self.config(label, seed) for label in self.inputs for seed in range(seeds)]


# --------------------------------------------------------------------------- numbers


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks ``0..n-1`` with ties sharing their average rank."""
    _, inverse, counts = np.unique(
        np.asarray(values, dtype=np.float64), return_inverse=True, return_counts=True
    )
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2)[inverse]


def rank_corr(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ with average ranks for ties; 0 when either series is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def relative_range(values: Sequence[float]) -> float:
    """``(max − min) / mean`` (0 for a constant series)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.ptp(v) / np.mean(v)) if v.size and np.mean(v) else 0.0


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Optimiser steps per epoch: ``⌈N/B⌉`` for ``B < N``, else 1 (full batch)."""
    return 1 if batch_size is None or batch_size >= n else math.ceil(n / batch_size)


def _high(rel_error: np.ndarray) -> np.ndarray:
    """Mean relative error over the upper half of the target's tones (k >= 40 for the paper's)."""
    return rel_error[..., rel_error.shape[-1] // 2 :].mean(axis=-1)


def _per_seed(datas: list[RunData]) -> dict[str, np.ndarray]:
    """Headline numbers of each seed after the last epoch."""

    def converged(d: RunData) -> int:
        hits = first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        return sum(h is not None for h in hits)

    final = np.stack([d.get("convergence", "rel_error")[-1] for d in datas])
    return {
        "n_converged": np.array([converged(d) for d in datas], dtype=np.float64),
        "rel_err_mean": final.mean(axis=1),
        "rel_err_high": _high(final),
        "cos_local_abs": np.array([np.nanmean(np.abs(d.get("confusion", "local_cos")[-1])) for d in datas]),
        "hamming_local": np.array([float(d.get("hamming", "local_mean")[-1]) for d in datas]),
        "regions": np.array([float(d.get("regions", "all")[-1]) for d in datas]),
    }


def rel_err_at_step(datas: list[RunData], spe: int, step: float) -> float:
    """Mean over seeds of the upper-half relative error after ``step`` optimiser steps, linear between
    checkpoints (checkpoint epoch ``e`` comes after ``(e + 1)·spe`` steps)."""
    values = [
        np.interp(step, (d.get("convergence", "epochs") + 1) * spe, _high(d.get("convergence", "rel_error")))
        for d in datas
    ]
    return float(np.mean(values))


def block(summary: dict, seeds: dict[str, np.ndarray], n: int, batch_size: int | None) -> dict[str, Any]:
    """One (input, N or d) entry of the tables: convergence per frequency in epochs and steps, the
    final relative errors, the local confusion and Hamming, the region count."""
    spe = steps_per_epoch(n, batch_size)
    epochs = summary["epochs_to_rel_err_0.1"]
    return {
        "n": n,
        "batch_size": batch_size,
        "steps_per_epoch": spe,
        "window_samples": round(WINDOW * n),
        "epochs_to_rel_err_0.1": epochs,
        "epochs_trained_to_rel_err_0.1": {k: None if e is None else e + 1 for k, e in epochs.items()},
        "steps_to_rel_err_0.1": {k: None if e is None else (e + 1) * spe for k, e in epochs.items()},
        "n_converged": float(seeds["n_converged"].mean()),
        "n_converged_all_seeds": sum(e is not None for e in epochs.values()),
        "final_rel_err": summary["final_rel_err"],
        "final_rel_err_mean": float(seeds["rel_err_mean"].mean()),
        "final_rel_err_high": float(seeds["rel_err_high"].mean()),
        "cos_local_abs_mean": summary["cos_local_abs_mean"],
        "cos_local_mean": summary["cos_local_mean"],
        "hamming_local": summary["hamming_local"],
        "hamming_local_ratio": summary["hamming_local_ratio"],
        "regions_last": summary["regions_last"],
        "points_per_region": n / summary["regions_last"],
        "final_loss": summary["final_loss"],
        "seeds": summary["seeds"],
    }


# --------------------------------------------------------------------------- findings


def _series(values: Sequence[float], xs: Sequence[Any]) -> str:
    return ", ".join(f"{x}: {v:.3g}" for x, v in zip(xs, values))


def relative_change(first: float, last: float) -> float:
    """``(last − first) / max(|first|, |last|)``, 0 when both are 0."""
    scale = max(abs(first), abs(last))
    return (last - first) / scale if scale else 0.0


def trend(claim: str, xs: Sequence[int], values: Sequence[float], rises: bool) -> Finding:
    """``values`` rise (or fall) with ``xs``: ρ of that sign and a material change (more than
    :data:`MATERIAL`) from the first value to the last."""
    rho, change = rank_corr(xs, values), relative_change(values[0], values[-1])
    holds = (rho > 0 and change > MATERIAL) if rises else (rho < 0 and change < -MATERIAL)
    return Finding(claim, bool(holds), f"ρ = {rho:+.2f}, change {change:+.1%}; {_series(values, xs)}")


def weak(claim: str, xs: Sequence[int], values: Sequence[float]) -> Finding:
    """``values`` hardly depend on ``xs``: relative range at most :data:`WEAK`."""
    r = relative_range(values)
    return Finding(claim, bool(r <= WEAK), f"relative range {r:.2f} (weak: <= {WEAK}); {_series(values, xs)}")


def common_trend(
    claim: str,
    xs: Sequence[int],
    blocks: Sequence[dict],
    field: str,
    rises: bool | None,
    converged: str = "target frequency reached rel. error 0.1",
) -> Finding:
    """:func:`trend` (``rises`` True or False) or :func:`weak` (``rises=None``) of the mean of ``field``
    (epochs or steps to convergence) over the frequencies (or bands) converged at every ``x``; a claim
    that cannot be measured (none such; ``converged`` says what converging means) does not hold."""
    common = [k for k in blocks[0][field] if all(b[field][k] is not None for b in blocks)]
    if not common:
        return Finding(claim, False, f"not measurable: no {converged} at every N")
    values = [float(np.mean([b[field][k] for k in common])) for b in blocks]
    out = weak(claim, xs, values) if rises is None else trend(claim, xs, values, rises)
    out.detail = f"mean over k ∈ {{{', '.join(common)}}}; {out.detail}"
    return out


_EPOCHS = "epochs_trained_to_rel_err_0.1"
"""The epoch findings compare epochs *trained* (checkpoint label + 1): a ratio such as the relative
range is meaningless on 0-based labels (labels 3, 4, 3 are 4, 5, 4 epochs: a range of 0.30 vs 0.23)."""


def _column(blocks: Sequence[dict], field: str) -> list[float]:
    return [b[field] for b in blocks]


def _raw_density(name: str, ns: list[int], blocks: list[dict]) -> list[Finding]:
    """The paper's reading for raw coordinates, full batch: denser means slower high frequencies,
    more conflicting neighbours, more points per region."""
    window = "in a window of fixed width"
    claims = (
        ("n_converged", False, "fewer frequencies reach rel. error 0.1 within the budget as N grows"),
        ("final_rel_err_high", True, "the high tones (upper half) end further from the target as N grows"),
        ("cos_local_abs_mean", True, f"local |gradient confusion| {window} grows with N"),
        ("hamming_local", False, f"local Hamming distance {window} falls as N grows"),
        ("points_per_region", True, "more grid points per activation region as N grows"),
    )
    return [trend(f"{name}: {claim}", ns, _column(blocks, f), rises) for f, rises, claim in claims]


def _pe_density(name: str, ns: list[int], blocks: list[dict]) -> list[Finding]:
    """PE, full batch: N hardly matters."""
    return [
        weak(
            f"{name}: the number of converged frequencies hardly depends on N",
            ns,
            _column(blocks, "n_converged"),
        ),
        common_trend(f"{name}: the epochs to converge hardly depend on N", ns, blocks, _EPOCHS, None),
    ]


def _batch_density(name: str, raw: bool, ns: list[int], blocks: list[dict]) -> list[Finding]:
    """Fixed batch size: ``N/B`` steps per epoch, so per epoch denser is faster; per step, raw should
    still slow down (compared at the smallest N's step budget) and PE hardly depend on N."""
    per_epoch = f"{name}: per epoch, convergence gets faster as N grows (N/B steps per epoch)"
    if raw:
        step = blocks[0]["common_step"]
        per_step = (
            f"{name}: per step, convergence slows down as N grows (upper-half rel. error after {step} steps)"
        )
        return [
            trend(
                per_epoch + " (final upper-half rel. error)", ns, _column(blocks, "final_rel_err_high"), False
            ),
            trend(per_step, ns, _column(blocks, "rel_err_high_at_common_step"), rises=True),
        ]
    per_step = f"{name}: per step, the steps to converge hardly depend on N"
    return [
        common_trend(per_epoch, ns, blocks, _EPOCHS, rises=False),
        common_trend(per_step, ns, blocks, "steps_to_rel_err_0.1", rises=None),
    ]


def density_findings(params: Density, table: dict[str, dict[str, dict[str, dict]]]) -> list[Finding]:
    """X6's findings, computed from the per-(input, N) table."""
    out: list[Finding] = []
    spread: dict[str, float] = {}
    for variant, per_input in table.items():
        for label, per_n in per_input.items():
            ns, blocks = [int(n) for n in per_n], list(per_n.values())
            enc = parse_input(label)
            if len(ns) < 2 or not isinstance(enc, (Raw, NeRFPE)):
                continue
            if variant != "full_batch":
                name = f"{_title(label)}, batch {params.batch_size}"
                out += _batch_density(name, isinstance(enc, Raw), ns, blocks)
                continue
            name = f"{_title(label)}, full batch"
            out += _raw_density(name, ns, blocks) if isinstance(enc, Raw) else _pe_density(name, ns, blocks)
            spread[label] = float(np.ptp(_column(blocks, "final_rel_err_high")))
    raws = [k for k in spread if isinstance(parse_input(k), Raw)]
    pes = [k for k in spread if isinstance(parse_input(k), NeRFPE)]
    if raws and pes:
        raw, pe = raws[0], pes[-1]
        out.append(
            Finding(
                f"N moves the high tones' final error less for {_title(pe)} than for {_title(raw)} "
                f"(range over N of the upper-half rel. error, full batch; raw's range > {MATERIAL})",
                spread[raw] > MATERIAL and spread[pe] < spread[raw],
                f"{pe} {spread[pe]:.3g} vs {raw} {spread[raw]:.3g}",
            )
        )
    return out


def lift_findings(table: dict[str, dict[str, dict]]) -> list[Finding]:
    """X7's findings, computed from the per-(kind, d) table."""
    out: list[Finding] = []
    raw = next(iter(table.get("raw", {}).values()), None)
    lin = table.get("lin", {})
    if raw is not None and lin:
        ds = list(lin)
        count = _column(lin.values(), "n_converged")
        out.append(
            Finding(
                "a linear lift changes nothing: at every d it converges as many frequencies as raw [0,1) "
                "(±1)",
                all(abs(c - raw["n_converged"]) <= 1 for c in count),
                f"raw01 {raw['n_converged']:.3g}; lin at d = {_series(count, ds)}",
            )
        )
        err = _column(lin.values(), "final_rel_err_mean")
        out.append(
            Finding(
                f"a linear lift changes nothing: at every d its final rel. error (mean over the tones) is "
                f"within {SAME_ERR} of raw [0,1)'s",
                all(abs(e - raw["final_rel_err_mean"]) <= SAME_ERR for e in err),
                f"raw01 {raw['final_rel_err_mean']:.3g}; lin at d = {_series(err, ds)}",
            )
        )
        for field, what in (("hamming_local", "local Hamming distance"), ("regions_last", "region count")):
            ratio = [b[field] / raw[field] if raw[field] else math.inf for b in lin.values()]
            out.append(
                Finding(
                    f"a linear lift changes nothing: its {what} stays within a factor {SAME_FACTOR} of raw "
                    "[0,1)'s at every d",
                    all(1 / SAME_FACTOR <= r <= SAME_FACTOR for r in ratio),
                    f"raw01 {raw[field]:.3g}; lin / raw at d = {_series(ratio, ds)}",
                )
            )
    dims = sorted({d for kind, per_d in table.items() if kind != "raw" for d in per_d}, key=int)
    for d in dims:
        at_d = {kind: per_d[d] for kind, per_d in table.items() if kind != "raw" and d in per_d}
        if len(at_d) < 2:
            continue
        top = max(at_d, key=lambda k: at_d[k]["hamming_local"])
        best = min(b["final_rel_err_mean"] for b in at_d.values())
        out.append(
            Finding(
                f"d={d}: the input that separates neighbours most (highest local Hamming) fits the target "
                "best (lowest mean final rel. error)",
                at_d[top]["final_rel_err_mean"] <= best,
                "; ".join(
                    f"{k}: Hamming {b['hamming_local']:.3g}, rel. error {b['final_rel_err_mean']:.3g}"
                    for k, b in at_d.items()
                ),
            )
        )
        encoded = [k for k in ("pe", "rff") if k in at_d]
        if "curve" in at_d and encoded:
            sep = max(at_d[k]["hamming_local"] for k in encoded)
            out.append(
                Finding(
                    f"d={d}: a smooth low-frequency curve separates neighbours less than PE/RFF "
                    "(local Hamming)",
                    at_d["curve"]["hamming_local"] < sep,
                    f"curve {at_d['curve']['hamming_local']:.3g} vs best of {'/'.join(encoded)} {sep:.3g}",
                )
            )
    blocks = [b for per_d in table.values() for b in per_d.values()]
    if len(blocks) >= 3:
        rho = rank_corr(_column(blocks, "hamming_local"), [-e for e in _column(blocks, "final_rel_err_mean")])
        out.append(
            Finding(
                "across all inputs and d, separating neighbours goes with fitting the target (rank "
                f"correlation of local Hamming and minus the mean final rel. error >= {SEPARATION_RHO})",
                rho >= SEPARATION_RHO,
                f"ρ = {rho:+.2f} over {len(blocks)} inputs",
            )
        )
    return out


# --------------------------------------------------------------------------- figures


def _title(label: str) -> str:
    enc = parse_input(label)
    if isinstance(enc, LinearLift):
        return f"linear lift d={enc.out_dim}"
    if isinstance(enc, CurveLift):
        return f"curve d={enc.out_dim}"
    if isinstance(enc, GaussianRFF):
        return f"RFF σ={enc.sigma:g}, d={enc.out_dim}"
    return figures.input_title(label)


def _suptitle(fig: Figure, title: str) -> None:
    """The figure title wrapped to the figure's width (about 10 characters per inch at the default
    12 pt), so that it does not run off a figure of one or two panels."""
    fig.suptitle(textwrap.fill(title, max(20, int(fig.get_figwidth() * 10))))


def frequency_map(
    panels: dict[str, tuple[list[str], np.ndarray]],
    freqs: Sequence[int],
    xlabel: str,
    title: str,
    colorbar: str,
    log: bool = False,
    vmax: float | None = None,
) -> Figure:
    """Frequency × column heatmaps, one panel per entry of ``panels`` (``(column labels, K × columns
    matrix)``); NaN cells (e.g. never below the threshold within the budget) are grey."""
    finite = [m[np.isfinite(m)] for _, m in panels.values()]
    top = vmax or max((float(v.max()) for v in finite if v.size), default=1.0)
    norm = LogNorm(1, max(top, 2)) if log else Normalize(0, top)
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    image = None
    for ax, (name, (labels, mat)) in zip(axes.ravel(), panels.items()):
        image = ax.imshow(
            np.ma.masked_invalid(mat),
            aspect="auto",
            origin="lower",
            cmap=cmap,
            norm=norm,
            interpolation="nearest",
        )
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=45 if len(labels) > 6 else 0)
        ax.set_yticks(range(len(freqs)), [str(k) for k in freqs], fontsize=6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in axes.ravel()[len(panels) :]:
        ax.remove()
    axes[0][0].set_ylabel("target frequency k")
    fig.colorbar(image, ax=axes.ravel()[: len(panels)].tolist(), label=colorbar)
    _suptitle(fig, title)
    return fig


def metric_lines(
    series: dict[str, tuple[Sequence[int], dict[str, tuple[np.ndarray, np.ndarray]]]],
    metrics: dict[str, str],
    xlabel: str,
    title: str,
    dashed: Sequence[str] = (),
) -> Figure:
    """One panel per metric, one line per series: mean ± std over seeds against N or d (log₂ axis).
    ``series[name] = (xs, {metric: (mean, std)})``; series named in ``dashed`` are dashed, and series
    sharing the text before `` (`` share a colour. The legend sits below the panels (inside one it
    hid the data once there were more than a few series); ``fig.axes`` are the metric panels in order."""
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.0 * len(metrics), 3.8), squeeze=False, layout="constrained"
    )
    base = {name: name.split(" (")[0] for name in series}
    palette = figures.colors(list(dict.fromkeys(base.values())))
    for ax, (metric, ylabel) in zip(axes[0], metrics.items()):
        for name, (xs, values) in series.items():
            mean, std = values[metric]
            style = {"color": palette[base[name]], "ls": "--" if name in dashed else "-"}
            ax.errorbar(xs, mean, yerr=std, marker="o", ms=3, capsize=2, label=name, **style)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, fontsize=9)
        if metric == "regions":
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = max(1, min(len(labels), int(fig.get_figwidth() / 2.2)))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8)
    _suptitle(fig, title)
    return fig


_METRICS = {
    "n_converged": "frequencies with rel. error < 0.1",
    "rel_err_high": "final rel. error, upper-half tones",
    "cos_local_abs": "local |cos| (gradient confusion)",
    "hamming_local": "local Hamming distance (units)",
    "regions": "activation regions on the grid",
}


def _stats(per_seed: Sequence[dict[str, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        m: (np.array([s[m].mean() for s in per_seed]), np.array([s[m].std() for s in per_seed]))
        for m in _METRICS
    }


def _matrix(blocks: Sequence[dict], field: str, freqs: Sequence[int]) -> np.ndarray:
    """``K × len(blocks)``: ``block[field][k]`` per frequency, NaN where it is None."""
    return np.array(
        [[np.nan if b[field][str(k)] is None else b[field][str(k)] for b in blocks] for k in freqs],
        dtype=float,
    )


_MAPS = {
    "convergence_epochs": ("epochs_to_rel_err_0.1", "first epoch with rel. error < 0.1", False),
    "convergence_steps": ("steps_to_rel_err_0.1", "first step with rel. error < 0.1", True),
    "final_rel_error": ("final_rel_err", "final relative error", False),
}


def _maps(
    columns: dict[str, tuple[list[str], list[dict]]], freqs: Sequence[int], xlabel: str, names: Sequence[str]
) -> dict[str, Figure]:
    """The frequency maps ``names`` of :data:`_MAPS`, one panel per entry of ``columns``."""
    out = {}
    for name in names:
        field, label, log = _MAPS[name]
        panels = {k: (cols, _matrix(blocks, field, freqs)) for k, (cols, blocks) in columns.items()}
        title = f"{label.capitalize()} per target frequency" + ("" if "final" in name else " (grey: never)")
        out[name] = frequency_map(
            panels, freqs, xlabel, title, label, log=log, vmax=1.0 if "final" in name else None
        )
    return out


def _rows(exp: str, key: str, datas: list[RunData], seeds: dict[str, np.ndarray], spe: int) -> list[tuple]:
    """Per seed: the headline numbers after the last epoch, and the first epoch (and step) at which
    each frequency's relative error is below 0.1 (no row when it never is within the budget)."""
    rows = []
    for s, d in enumerate(datas):
        last = int(d.get("convergence", "epochs")[-1])
        rows += [(exp, key, d.meta["seed"], last, m, "last", float(v[s])) for m, v in seeds.items()]
        hits = first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        for k, e in zip(d.arrays["signal/freqs"], hits):
            if e is not None:
                base = (exp, key, d.meta["seed"], e)
                rows.append((*base, "epochs_to_rel_err_0.1", str(int(k)), float(e)))
                rows.append((*base, "steps_to_rel_err_0.1", str(int(k)), float((e + 1) * spe)))
    return rows


def _usable(runs: Runs, key: Any) -> dict[str, list[RunData]]:
    """Finished runs by group, diverged ones left out (as :func:`make_analysis` does)."""
    return {k: [d for d in v if d.meta["diverged_at"] is None] for k, v in by_group(runs, key).items()}


def _record(
    result: ExperimentResult, exp: str, key: str, datas: list[RunData], seeds: dict, spe: int
) -> None:
    """Rows and arrays of one group: per-seed headline numbers, and the relative error per checkpoint
    and tone (seeds × checkpoints × K) with its checkpoint epochs."""
    result.rows += _rows(exp, key, datas, seeds, spe)
    for m, v in seeds.items():
        result.arrays[f"{m}/{key}"] = v
    result.arrays[f"rel_error/{key}"] = np.stack([d.get("convergence", "rel_error") for d in datas])
    result.arrays[f"rel_error_epochs/{key}"] = datas[0].get("convergence", "epochs")


# --------------------------------------------------------------------------- X6 analysis


def _density_key(cfg: RunConfig) -> str:
    return _key(cfg.input, cfg.signal.n, cfg.train.batch_size)


def analyse_density(params: Density, runs: Runs) -> ExperimentResult:
    """X6: the per-group summary, then the per-(input, N) table, figures and findings."""
    result = make_analysis("X6", (), {}, key=_density_key, order=lambda p: p.keys())(params, runs)
    groups = _usable(runs, _density_key)
    inputs = result.summary["inputs"]
    table: dict[str, dict[str, dict[str, dict]]] = {}
    series: dict[str, tuple[list[int], dict]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    freqs: list[int] = []
    for b, labels, epochs in params.variants():
        for label in labels:
            found = [
                (n, groups[_key(label, n, b)]) for n in sorted(params.sizes) if groups.get(_key(label, n, b))
            ]
            if not found:
                continue
            budget = min(epochs * steps_per_epoch(n, b) for n, _ in found)  # the smallest N's steps
            per_n, per_seed = {}, []
            for n, datas in found:
                key, spe, seeds = _key(label, n, b), steps_per_epoch(n, b), _per_seed(datas)
                entry = block(inputs[key], seeds, n, b)
                if b is not None:
                    entry["common_step"] = budget
                    entry["rel_err_high_at_common_step"] = rel_err_at_step(datas, spe, budget)
                per_n[str(n)] = entry
                inputs[key].update(
                    {f: entry[f] for f in ("n", "batch_size", "steps_per_epoch", "n_converged")}
                )
                _record(result, "X6", key, datas, seeds, spe)
                per_seed.append(seeds)
                freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
            table.setdefault(_variant(b), {})[label] = per_n
            name = f"{_title(label)} ({'full batch' if b is None else f'batch {b}'})"
            series[name] = ([n for n, _ in found], _stats(per_seed))
            columns[name] = (list(per_n), list(per_n.values()))
    result.summary["by_n"] = table
    result.summary["window_width"] = WINDOW
    if series:
        title = "Coordinate density: convergence, local confusion and Hamming (fixed window width), regions"
        dashed = [s for s in series if "(batch " in s]
        result.figures["density_metrics"] = metric_lines(
            series, _METRICS, "number of samples N", title, dashed
        )
        result.figures.update(_maps(columns, freqs, "N", tuple(_MAPS)))
    result.findings += density_findings(params, table)
    return result


# --------------------------------------------------------------------------- X7 analysis

_KINDS = {"raw": "raw [0,1) (d=1)", "lin": "linear lift", "curve": "smooth curve", "pe": "PE", "rff": "RFF"}


def lift_kind(label: str) -> tuple[str, int]:
    """``(kind, d)`` of an X7 input: raw (``[0,1)`` only, the reference), lin, curve, pe, rff or other
    (e.g. raw ``[-1,1)``), and its dimension."""
    enc = parse_input(label)
    if isinstance(enc, Raw):
        return ("raw" if (enc.lo, enc.hi) == (0.0, 1.0) else "other"), enc.out_dim
    kinds = ((LinearLift, "lin"), (CurveLift, "curve"), (NeRFPE, "pe"), (GaussianRFF, "rff"))
    return next((name for cls, name in kinds if isinstance(enc, cls)), "other"), enc.out_dim


def analyse_lifts(params: Lifts, runs: Runs) -> ExperimentResult:
    """X7: the per-input summary, then the per-(kind, d) table, figures and findings."""
    result = make_analysis("X7", (), {}, order=lambda p: p.inputs)(params, runs)
    groups = _usable(runs, group_label)
    inputs = result.summary["inputs"]
    n = params.signal.n
    table: dict[str, dict[str, dict]] = {}
    per_kind: dict[str, tuple[list[int], list[dict]]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    freqs: list[int] = []
    for label in params.inputs:
        datas = groups.get(label)
        if not datas:
            continue
        kind, d = lift_kind(label)
        seeds = _per_seed(datas)
        entry = {"input": label, "d": d, **block(inputs[label], seeds, n, None)}
        table.setdefault(kind, {})[str(d)] = entry
        inputs[label].update({"kind": kind, "d": d, "n_converged": entry["n_converged"]})
        _record(result, "X7", label, datas, seeds, 1)
        xs, ss = per_kind.setdefault(kind, ([], []))
        xs.append(d)
        ss.append(seeds)
        cols, blocks = columns.setdefault(_KINDS.get(kind, kind), ([], []))
        cols.append(f"d={d}")
        blocks.append(entry)
        freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
    result.summary["by_dimension"] = table
    if per_kind:
        series = {_KINDS.get(k, k): (xs, _stats(ss)) for k, (xs, ss) in per_kind.items()}
        title = "Lifting the 1D coordinate to d dimensions: is it the dimension or the encoding?"
        result.figures["dimension_metrics"] = metric_lines(series, _METRICS, "input dimension d", title)
        result.figures.update(_maps(columns, freqs, "dimension", ("convergence_epochs", "final_rel_error")))
    result.findings += lift_findings(table)
    return result


# --------------------------------------------------------------------------- registry

X6_PAPER = Density()
X6_QUICK = Density(
    sizes=(256, 512, 1024, 2048),
    train=TrainConfig(epochs=300),
    batch_inputs=("raw01", "pe6"),
    batch_epochs=100,
    seeds=2,
)
X7_PAPER = Lifts()
X7_QUICK = Lifts(
    inputs=lift_inputs((2, 14, 32), 512),
    signal=ToneMixture(n=512),
    train=TrainConfig(epochs=300),
    seeds=2,
)

DENSITY_EXPERIMENTS = (
    Experiment.of(
        id="X6",
        title="Coordinate density (1D, N = 256 … 8192, full batch and batch 128)",
        claim="With raw coordinates the high frequencies slow down as N grows; with PE N hardly matters.",
        quick=X6_QUICK,
        paper=X6_PAPER,
        analyse=analyse_density,
    ),
    Experiment.of(
        id="X7",
        title="Dimension or encoding (1D coordinate lifted to d = 2, 8, 14, 32)",
        claim="A linear lift changes nothing; what helps is an encoding that separates neighbours.",
        quick=X7_QUICK,
        paper=X7_PAPER,
        analyse=analyse_lifts,
    ),
)
