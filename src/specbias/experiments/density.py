"""Density and dimension (issue 6): X6, how spectral bias depends on how densely the 1D coordinate is
sampled, and X7, whether lifting the coordinate to more dimensions helps or only an encoding that
separates neighbours does.

The paper (Lazzari & Liu 2023) states that the slowdown of the high frequencies is *magnified by the
density of the coordinates* and that the bias is *severe in low-dimensional settings* and overcome
by encoding; no reference script measures either. Both experiments are configurations of the 1D
study's parts: the paper's tone mixture ``y(t) = Σ_{k∈{5,…,70}} sin(2πkt + 2πφ_k)`` on ``t_n = n/N``,
MLP-4×128, Adam 1e-3, 500 epochs, MSE, one training run per (input, N or d, seed) carrying every
probe:

* **per-frequency convergence** every 5 epochs and on 25 log-spaced epochs (the early ones resolve
  fast mini-batch runs): the first epoch at which ``|R(k)|/|Y(k)| < 0.1`` (Rahaman et al. 2019's
  residual spectrum, :mod:`specbias.metrics.spectrum`), ``None`` when a seed never gets there
  within the budget; per step it is ``(epoch + 1)·⌈N/B⌉`` for a batch size ``B < N``, ``epoch + 1``
  full batch;
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
size ``B = 128`` (``N/B`` steps per epoch, so convergence is reported per epoch and per step).
N = 128, which the issue lists, is left out: it is below the target's Nyquist rate (``2·70``
samples) and :class:`~specbias.signals.ToneMixture` refuses it (tones 65 and 70 would alias).
The 2D variant (the same image at 32²…256²) is not part of X6: see the issue report.

X7 -- the dimension or the encoding?
------------------------------------
At N = 2048, the 1D coordinate is lifted to ``ℝᵈ``, ``d ∈ {2, 8, 14, 32}``, three ways at equal
``d`` (:mod:`specbias.encodings`): ``lin<d>`` a random straight line, ``curve<d>`` the same line
bent by three low harmonics (a smooth curve, no self-crossing), and encodings that separate
neighbours -- PE with ``d/2`` octaves (``pe<d/2-1>``; only where every octave is below the grid's
Nyquist limit, so not at ``d = 32``) and Gaussian RFF σ = 10 with ``d/2`` frequencies
(``rff10x<d>``); raw ``[0,1)`` is the ``d = 1`` reference. The same network is trained on the
same target.

Profiles
--------
``paper``: the issue's grids, 5 seeds -- X6 at N ∈ {256, …, 8192} (6 values), both variants for
every input (240 runs; the fixed-batch runs at N = 8192 take 32,000 steps each); X7 at N = 2048.
``quick`` (sized for a 2-core CPU; X6 + X7 in about 3 minutes): 2 seeds, 300 epochs (the
orderings of the 1D study are in place by then and per-frequency convergence is resolved up to
k ≈ 30 for raw inputs), N ∈ {256, 1024, 4096} (a factor 16 in density), the fixed-batch variant
for raw ``[0,1)`` and PE L=6 only (it costs ``N/128`` steps per epoch), and X7 at N = 1024 with the
same settings, so X7's raw01, pe3 and pe6 runs are X6's full-batch runs at N = 1024 (trained once).

Findings are computed from the summary numbers (means over seeds) and reported whichever way they
come out; trends over N or d use the Spearman rank correlation with average ranks for ties (0 for
a constant series) together with the sign of the change from the first to the last value.
"""

from __future__ import annotations

import dataclasses
import math
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
from specbias.experiments.analysis import REL_ERR_THRESHOLD, Runs, by_group, make_analysis
from specbias.experiments.base import Experiment, ExperimentResult, Finding
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
SAME_FACTOR = 1.5
"""A linear lift *changes nothing* when its local Hamming distance and region count stay within this
factor of raw ``[0,1)``'s and its converged count within one frequency."""
SEPARATION_RHO = 0.5
"""X7: the rank correlation between local Hamming and converged frequencies that counts as "the
encoding that separates neighbours helps"."""

_S = TypeVar("_S", bound="Sweep1D")


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
        if not self.inputs:
            raise ConfigError("at least one input is needed")
        if len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(f"inputs must be distinct, got {list(self.inputs)}")
        for label in self.inputs:
            parse_input(label)
        for name in ("width", "depth", "seeds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

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

    def config(self, label: str, seed: int, n: int | None = None, batch_size: int | None = None) -> RunConfig:
        """The run of ``label`` at ``n`` samples (default: the signal's) with ``batch_size``."""
        return RunConfig(
            signal=self.signal if n is None else dataclasses.replace(self.signal, n=n),
            input=label,
            width=self.width,
            depth=self.depth,
            train=dataclasses.replace(self.train, batch_size=batch_size),
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

    ``batch_inputs`` restricts the fixed-batch variant (None: every input; an ``--inputs``
    override applies to both variants); ``batch_size=None`` drops the variant.
    """

    sizes: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    batch_size: int | None = 128
    batch_inputs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sizes or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"sizes must be distinct and non-empty, got {list(self.sizes)}")
        for n in self.sizes:
            dataclasses.replace(self.signal, n=n)  # ConfigError when the target does not fit N
        if self.batch_size is not None and not 1 <= self.batch_size < min(self.sizes):
            raise ConfigError(
                f"batch size must be between 1 and the smallest N - 1 ({min(self.sizes) - 1}), "
                f"got {self.batch_size}"
            )
        extra = set(self.batch_inputs or ()) - set(self.inputs)
        if extra:
            raise ConfigError(f"batch inputs {sorted(extra)} are not among the inputs {list(self.inputs)}")

    def override(self, **changes: Any) -> Density:
        replacements = self._replacements(changes)
        if "inputs" in replacements:
            replacements["batch_inputs"] = None
        return dataclasses.replace(self, **replacements)

    def variants(self) -> list[tuple[int | None, tuple[str, ...]]]:
        """``(batch size, inputs)`` of each variant: full batch first."""
        out: list[tuple[int | None, tuple[str, ...]]] = [(None, self.inputs)]
        if self.batch_size is not None:
            out.append((self.batch_size, self.batch_inputs or self.inputs))
        return out

    def keys(self) -> list[str]:
        return [_key(lb, n, b) for b, labels in self.variants() for lb in labels for n in sorted(self.sizes)]

    def runs(self, seeds: int) -> list[RunConfig]:
        return [
            self.config(label, seed, n=n, batch_size=b)
            for b, labels in self.variants()
            for label in labels
            for n in sorted(self.sizes)
            for seed in range(seeds)
        ]


def lift_inputs(dims: Sequence[int], n: int, sigma: float = 10) -> tuple[str, ...]:
    """X7's inputs: ``raw01``, then per ``d``: ``lin<d>``, ``curve<d>``, PE with ``d/2`` octaves
    (``d`` even and every octave below the Nyquist limit of ``n`` samples) and ``rff<σ>x<d>``."""
    out = ["raw01"]
    for d in dims:
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


def _per_seed(datas: list[RunData]) -> dict[str, np.ndarray]:
    """Headline numbers of each seed after the last epoch."""

    def converged(d: RunData) -> int:
        hits = first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        return sum(h is not None for h in hits)

    return {
        "n_converged": np.array([converged(d) for d in datas], dtype=np.float64),
        "cos_local_abs": np.array([np.nanmean(np.abs(d.get("confusion", "local_cos")[-1])) for d in datas]),
        "hamming_local": np.array([float(d.get("hamming", "local_mean")[-1]) for d in datas]),
        "regions": np.array([float(d.get("regions", "all")[-1]) for d in datas]),
    }


def block(summary: dict, seeds: dict[str, np.ndarray], n: int, batch_size: int | None) -> dict[str, Any]:
    """One (input, N or d) entry of the tables: convergence per frequency in epochs and steps, the
    local confusion and Hamming, the region count."""
    spe = steps_per_epoch(n, batch_size)
    epochs = summary["epochs_to_rel_err_0.1"]
    return {
        "n": n,
        "batch_size": batch_size,
        "steps_per_epoch": spe,
        "window_samples": round(WINDOW * n),
        "epochs_to_rel_err_0.1": epochs,
        "steps_to_rel_err_0.1": {k: None if e is None else (e + 1) * spe for k, e in epochs.items()},
        "n_converged": float(seeds["n_converged"].mean()),
        "n_converged_all_seeds": sum(e is not None for e in epochs.values()),
        "final_rel_err": summary["final_rel_err"],
        "cos_local_abs_mean": summary["cos_local_abs_mean"],
        "cos_local_mean": summary["cos_local_mean"],
        "hamming_local": summary["hamming_local"],
        "hamming_local_ratio": summary["hamming_local_ratio"],
        "regions_last": summary["regions_last"],
        "points_per_region": n / summary["regions_last"],
        "final_loss": summary["final_loss"],
        "seeds": summary["seeds"],
    }


def common_trend(
    claim: str, xs: Sequence[int], blocks: Sequence[dict], field: str, rises: bool | None
) -> Finding:
    """:func:`trend` (``rises`` True or False) or :func:`weak` (``rises=None``) of the mean of ``field``
    (epochs or steps to rel. error 0.1) over the frequencies converged at every ``x``; a claim that
    cannot be measured (no such frequency) does not hold."""
    common = [k for k in blocks[0][field] if all(b[field][k] is not None for b in blocks)]
    if not common:
        return Finding(claim, False, "not measurable: no target frequency reached rel. error 0.1 at every N")
    values = [float(np.mean([b[field][k] for k in common])) for b in blocks]
    out = weak(claim, xs, values) if rises is None else trend(claim, xs, values, rises)
    out.detail = f"mean over k ∈ {{{', '.join(common)}}}; {out.detail}"
    return out


def _series(values: Sequence[float], xs: Sequence[int]) -> str:
    return ", ".join(f"{x}: {v:.3g}" for x, v in zip(xs, values))


def trend(claim: str, xs: Sequence[int], values: Sequence[float], rises: bool, what: str = "N") -> Finding:
    """``values`` rise (or fall) with ``xs``: ρ of the right sign and last value beyond the first."""
    rho = rank_corr(xs, values)
    holds = (rho > 0 and values[-1] > values[0]) if rises else (rho < 0 and values[-1] < values[0])
    return Finding(claim, bool(holds), f"ρ({what}, ·) = {rho:+.2f}; {_series(values, xs)}")


def weak(claim: str, xs: Sequence[int], values: Sequence[float]) -> Finding:
    r = relative_range(values)
    return Finding(claim, bool(r <= WEAK), f"relative range {r:.2f} (weak: <= {WEAK}); {_series(values, xs)}")


# --------------------------------------------------------------------------- figures


def _title(label: str) -> str:
    enc = parse_input(label)
    d = enc.out_dim
    if isinstance(enc, LinearLift):
        return f"linear lift d={d}"
    if isinstance(enc, CurveLift):
        return f"curve d={d}"
    if isinstance(enc, GaussianRFF):
        return f"RFF σ={enc.sigma:g}, d={d}"
    return figures.input_title(label)


def convergence_map(
    panels: dict[str, tuple[list[str], np.ndarray]],
    freqs: Sequence[int],
    xlabel: str,
    title: str,
    unit: str = "epoch",
    log: bool = False,
) -> Figure:
    """Frequency × column heatmaps of the first epoch (or step) with relative error < 0.1, one panel
    per entry of ``panels`` (``(column labels, matrix K × columns)``); never within the budget: grey."""
    finite = [m[np.isfinite(m)] for _, m in panels.values()]
    top = max((float(v.max()) for v in finite if v.size), default=1.0)
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
    fig.colorbar(image, ax=axes.ravel()[: len(panels)].tolist(), label=f"first {unit} with rel. error < 0.1")
    fig.suptitle(f"{title} (grey: not within the budget)")
    return fig


def metric_lines(
    series: dict[str, tuple[Sequence[int], dict[str, tuple[np.ndarray, np.ndarray]]]],
    metrics: dict[str, str],
    xlabel: str,
    title: str,
    dashed: Sequence[str] = (),
) -> Figure:
    """One panel per metric, one line per series: mean ± std over seeds against N or d (log₂ axis).
    ``series[name] = (xs, {metric: (mean, std)})``; series named in ``dashed`` are dashed."""
    cols = min(len(metrics), 4)
    fig, axes = plt.subplots(1, cols, figsize=(4.3 * cols, 3.8), squeeze=False)
    palette = figures.colors(list(dict.fromkeys(name.split(" (")[0] for name in series)))
    for ax, (metric, ylabel) in zip(axes[0], metrics.items()):
        for name, (xs, values) in series.items():
            mean, std = values[metric]
            ax.errorbar(
                xs,
                mean,
                yerr=std,
                marker="o",
                ms=3,
                capsize=2,
                label=name,
                color=palette[name.split(" (")[0]],
                ls="--" if name in dashed else "-",
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if metric == "regions":
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


_METRICS = {
    "n_converged": "frequencies with rel. error < 0.1",
    "cos_local_abs": "local |cos| (gradient confusion)",
    "hamming_local": "local Hamming distance (units)",
    "regions": "activation regions on the grid",
}


def _stats(per_seed: Sequence[dict[str, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        m: (np.array([s[m].mean() for s in per_seed]), np.array([s[m].std() for s in per_seed]))
        for m in _METRICS
    }


def _rows(exp: str, key: str, datas: list[RunData], seeds: dict[str, np.ndarray], spe: int) -> list[tuple]:
    """Per seed: the headline numbers after the last epoch and the first epoch (and step) at which
    each frequency's relative error is below 0.1 (no row when it never is)."""
    rows = []
    for s, d in enumerate(datas):
        last = int(d.get("convergence", "epochs")[-1])
        rows += [(exp, key, d.meta["seed"], last, m, "last", float(seeds[m][s])) for m in _METRICS]
        hits = first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        for k, e in zip(d.arrays["signal/freqs"], hits):
            if e is not None:
                rows.append((exp, key, d.meta["seed"], e, "epochs_to_rel_err_0.1", str(int(k)), float(e)))
                rows.append(
                    (exp, key, d.meta["seed"], e, "steps_to_rel_err_0.1", str(int(k)), float((e + 1) * spe))
                )
    return rows


def _epoch_matrix(blocks: Sequence[dict], field: str, freqs: Sequence[int]) -> np.ndarray:
    """``K × len(blocks)`` first epochs (or steps) below 0.1 relative error; NaN when never."""
    return np.array(
        [[np.nan if b[field][str(k)] is None else b[field][str(k)] for b in blocks] for k in freqs]
    )


def _usable(runs: Runs, key: Any) -> dict[str, list[RunData]]:
    groups = by_group(runs, key)
    return {k: [d for d in v if d.meta["diverged_at"] is None] for k, v in groups.items()}


# --------------------------------------------------------------------------- X6 analysis


def _density_key(cfg: RunConfig) -> str:
    return _key(cfg.input, cfg.signal.n, cfg.train.batch_size)


def _density_findings(params: Density, table: dict[str, dict[str, dict[str, dict]]]) -> list[Finding]:
    out: list[Finding] = []
    sens: dict[str, float] = {}
    for variant, per_input in table.items():
        how = "full batch" if variant == "full_batch" else f"batch {params.batch_size}"
        for label, per_n in per_input.items():
            ns, blocks = [int(n) for n in per_n], list(per_n.values())
            enc, name = parse_input(label), f"{_title(label)}, {how}"
            if len(ns) < 2 or not isinstance(enc, (Raw, NeRFPE)):
                continue
            count = [b["n_converged"] for b in blocks]
            epochs = "epochs_to_rel_err_0.1"
            if variant != "full_batch":
                claim = f"{name}: per epoch, convergence gets faster as N grows (N/B steps per epoch)"
                out.append(common_trend(claim, ns, blocks, epochs, rises=False))
                steps = "steps_to_rel_err_0.1"
                if isinstance(enc, Raw):
                    claim = f"{name}: per step, convergence slows down as N grows"
                    out.append(common_trend(claim, ns, blocks, steps, rises=True))
                else:
                    claim = f"{name}: per step, the steps to converge hardly depend on N"
                    out.append(common_trend(claim, ns, blocks, steps, rises=None))
                continue
            sens[label] = relative_range(count)
            if isinstance(enc, NeRFPE):
                out += [
                    weak(f"{name}: the number of converged frequencies hardly depends on N", ns, count),
                    common_trend(
                        f"{name}: the epochs to converge hardly depend on N", ns, blocks, epochs, None
                    ),
                ]
                continue
            within = "in a window of fixed width"
            out += [
                trend(f"{name}: fewer frequencies reach rel. error 0.1 within the budget as N grows",
                      ns, count, rises=False),
                common_trend(f"{name}: the frequencies converged at every N take more epochs as N grows",
                             ns, blocks, epochs, rises=True),
                trend(f"{name}: local |gradient confusion| {within} grows with N", ns,
                      [b["cos_local_abs_mean"] for b in blocks], rises=True),
                trend(f"{name}: local Hamming distance {within} falls as N grows", ns,
                      [b["hamming_local"] for b in blocks], rises=False),
                trend(f"{name}: more grid points per activation region as N grows", ns,
                      [b["points_per_region"] for b in blocks], rises=True),
            ]  # fmt: skip
    raws = [k for k in sens if isinstance(parse_input(k), Raw)]
    pes = [k for k in sens if isinstance(parse_input(k), NeRFPE)]
    if raws and pes:
        raw, pe = raws[0], pes[-1]
        out.append(
            Finding(
                f"N matters less for {_title(pe)} than for {_title(raw)} (relative range over N of the "
                "converged count, full batch)",
                sens[pe] < sens[raw],
                f"{pe} {sens[pe]:.2f} vs {raw} {sens[raw]:.2f}",
            )
        )
    return out


def analyse_density(params: Density, runs: Runs) -> ExperimentResult:
    """X6: the per-group summary, then tables, figures and findings over N."""
    result = make_analysis("X6", (), {}, key=_density_key, order=lambda p: p.keys())(params, runs)
    groups = _usable(runs, _density_key)
    inputs = result.summary["inputs"]
    table: dict[str, dict[str, dict[str, dict]]] = {}
    series: dict[str, tuple[list[int], dict]] = {}
    epoch_maps, step_maps = {}, {}
    freqs: list[int] = []
    for b, labels in params.variants():
        variant = _variant(b)
        for label in labels:
            ns, per_seed, per_n = [], [], {}
            for n in sorted(params.sizes):
                key = _key(label, n, b)
                datas = groups.get(key)
                if not datas:
                    continue
                seeds = _per_seed(datas)
                per_n[str(n)] = block(inputs[key], seeds, n, b)
                inputs[key].update(
                    {
                        f: per_n[str(n)][f]
                        for f in (
                            "n",
                            "batch_size",
                            "steps_per_epoch",
                            "steps_to_rel_err_0.1",
                            "n_converged",
                            "points_per_region",
                        )
                    }
                )
                result.rows += _rows("X6", key, datas, seeds, steps_per_epoch(n, b))
                for m, v in seeds.items():
                    result.arrays[f"{m}/{key}"] = v
                ns.append(n)
                per_seed.append(seeds)
                freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
            if not per_n:
                continue
            table.setdefault(variant, {})[label] = per_n
            name = f"{_title(label)} ({'full batch' if b is None else f'batch {b}'})"
            series[name] = (ns, _stats(per_seed))
            for maps, field in ((epoch_maps, "epochs_to_rel_err_0.1"), (step_maps, "steps_to_rel_err_0.1")):
                maps[name] = ([str(n) for n in ns], _epoch_matrix(list(per_n.values()), field, freqs))
    result.summary["by_n"] = table
    result.summary["window_width"] = WINDOW
    if series:
        result.figures["density_metrics"] = metric_lines(
            series,
            _METRICS,
            "number of samples N",
            "Coordinate density: convergence, local confusion and Hamming (window of fixed width), regions",
            dashed=[s for s in series if "batch " in s],
        )
        result.figures["convergence_epochs"] = convergence_map(
            epoch_maps, freqs, "N", "Per-frequency convergence against N, per epoch"
        )
        result.figures["convergence_steps"] = convergence_map(
            step_maps, freqs, "N", "Per-frequency convergence against N, per optimiser step", "step", log=True
        )
    result.findings += _density_findings(params, table)
    return result


# --------------------------------------------------------------------------- X7 analysis


def lift_kind(label: str) -> tuple[str, int]:
    """``(kind, d)`` of an X7 input: raw, lin, curve, pe, rff or other, and its dimension."""
    enc = parse_input(label)
    kinds = ((Raw, "raw"), (LinearLift, "lin"), (CurveLift, "curve"), (NeRFPE, "pe"), (GaussianRFF, "rff"))
    return next((name for cls, name in kinds if isinstance(enc, cls)), "other"), enc.out_dim


def _lift_findings(table: dict[str, dict[str, dict]]) -> list[Finding]:
    out: list[Finding] = []
    raw = next(iter(table.get("raw", {}).values()), None)
    lin = table.get("lin", {})
    if raw is not None and lin:
        ds = list(lin)
        gap = [lin[d]["n_converged"] - raw["n_converged"] for d in ds]
        out.append(
            Finding(
                "a linear lift changes nothing: at every d it converges as many frequencies as raw [0,1) "
                "(±1)",
                all(abs(g) <= 1 for g in gap),
                f"raw01 {raw['n_converged']:.3g}; lin d={_series([lin[d]['n_converged'] for d in ds], ds)}",
            )
        )
        for field, what in (("hamming_local", "local Hamming distance"), ("regions_last", "region count")):
            ratio = [lin[d][field] / raw[field] if raw[field] else math.inf for d in ds]
            out.append(
                Finding(
                    f"a linear lift changes nothing: its {what} stays within a factor {SAME_FACTOR} of raw "
                    "[0,1)'s at every d",
                    all(1 / SAME_FACTOR <= r <= SAME_FACTOR for r in ratio),
                    f"raw01 {raw[field]:.3g}; lin / raw at d={_series(ratio, ds)}",
                )
            )
    everything = [(f"{kind}{d}", b) for kind, per_d in table.items() for d, b in per_d.items()]
    for d in sorted({d for kind, per_d in table.items() if kind != "raw" for d in per_d}, key=int):
        at_d = {kind: per_d[d] for kind, per_d in table.items() if kind != "raw" and d in per_d}
        if len(at_d) < 2:
            continue
        top = max(at_d, key=lambda k: at_d[k]["hamming_local"])
        best = max(b["n_converged"] for b in at_d.values())
        out.append(
            Finding(
                f"d={d}: the input that separates neighbours most (highest local Hamming) converges the most "
                "frequencies",
                at_d[top]["n_converged"] >= best,
                "; ".join(
                    f"{k}: Hamming {b['hamming_local']:.3g}, converged {b['n_converged']:.3g}"
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
    if len(everything) >= 3:
        ham = [b["hamming_local"] for _, b in everything]
        conv = [b["n_converged"] for _, b in everything]
        rho = rank_corr(ham, conv)
        out.append(
            Finding(
                f"across all inputs and d, converging more frequencies goes with separating neighbours "
                f"(rank correlation of local Hamming and converged count >= {SEPARATION_RHO})",
                rho >= SEPARATION_RHO,
                f"ρ = {rho:+.2f} over {len(everything)} inputs",
            )
        )
    return out


def analyse_lifts(params: Lifts, runs: Runs) -> ExperimentResult:
    """X7: the per-input summary, then tables by kind and d, figures and findings."""
    result = make_analysis("X7", (), {}, order=lambda p: p.inputs)(params, runs)
    groups = _usable(runs, lambda cfg: cfg.input)
    inputs = result.summary["inputs"]
    n = params.signal.n
    table: dict[str, dict[str, dict]] = {}
    per_kind: dict[str, tuple[list[int], list[dict]]] = {}
    cols: dict[str, list] = {}
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
        result.rows += _rows("X7", label, datas, seeds, 1)
        for m, v in seeds.items():
            result.arrays[f"{m}/{label}"] = v
        per_kind.setdefault(kind, ([], []))[0].append(d)
        per_kind[kind][1].append(seeds)
        freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
        cols.setdefault(kind, []).append((f"d={d}", entry))
    result.summary["by_dimension"] = table
    if per_kind:
        names = {
            "raw": "raw [0,1) (d=1)",
            "lin": "linear lift",
            "curve": "smooth curve",
            "pe": "PE",
            "rff": "RFF σ=10",
        }
        series = {names.get(k, k): (xs, _stats(s)) for k, (xs, s) in per_kind.items()}
        result.figures["dimension_metrics"] = metric_lines(
            series, _METRICS, "input dimension d", "Lifting the coordinate: dimension or encoding?"
        )
        panels = {
            names.get(k, k): (
                [c[0] for c in v],
                _epoch_matrix([c[1] for c in v], "epochs_to_rel_err_0.1", freqs),
            )
            for k, v in cols.items()
        }
        result.figures["convergence_epochs"] = convergence_map(
            panels, freqs, "dimension", "Per-frequency convergence by lift and dimension"
        )
    result.findings += _lift_findings(table)
    return result


# --------------------------------------------------------------------------- registry

X6_PAPER = Density()
X6_QUICK = Density(
    sizes=(256, 1024, 4096), train=TrainConfig(epochs=300), batch_inputs=("raw01", "pe6"), seeds=2
)
X7_PAPER = Lifts()
X7_QUICK = Lifts(
    inputs=lift_inputs((2, 8, 14, 32), 1024),
    signal=ToneMixture(n=1024),
    train=TrainConfig(epochs=300),
    seeds=2,
)

DENSITY_EXPERIMENTS = (
    Experiment(
        id="X6",
        title="Coordinate density (1D, N = 256 … 8192, full batch and batch 128)",
        claim="With raw coordinates the high frequencies slow down as N grows; with PE N hardly matters.",
        profiles={"quick": X6_QUICK, "paper": X6_PAPER},
        runs=lambda p, s: p.runs(s),
        analyse=analyse_density,
        default_seeds=X6_QUICK.seeds,
    ),
    Experiment(
        id="X7",
        title="Dimension or encoding (1D coordinate lifted to d = 2, 8, 14, 32)",
        claim="A linear lift changes nothing; what helps is an encoding that separates neighbours.",
        profiles={"quick": X7_QUICK, "paper": X7_PAPER},
        runs=lambda p, s: p.runs(s),
        analyse=analyse_lifts,
        default_seeds=X7_QUICK.seeds,
    ),
)
