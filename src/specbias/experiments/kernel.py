"""X5 -- theory versus observed: the kernel prediction from ``Θ₀`` against the real dynamics.

For each input and seed, a full-batch gradient-descent run at a tenth of the linearised model's stability
limit and an Adam run on the 1D study's tone mixture; the analysis rebuilds every run's initial network,
predicts each tone's relative error from the empirical NTK ``Θ₀`` (:mod:`specbias.metrics.ntk`), measures
the kernel's drift and the activation patterns' change at every snapshot (one run at a time, under a
progress bar), puts per-seed values in the experiment's :class:`~specbias.claims.SeedTable` and judges the
claims on them. Protocol, profiles, claims and measured numbers: ``docs/experiments/kernel.md``.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from specbias import figures
from specbias.claims import AllOf, Claim, Compare, Level, SeedTable
from specbias.errors import ConfigError
from specbias.experiments.analysis import Groups, Part, encoding_rank, one_thread, raw_and_encoded
from specbias.experiments.base import Experiment, check_study
from specbias.experiments.exact import Configs, every_group, measured_analysis, per_run, within
from specbias.experiments.params import NETWORK, Overridable
from specbias.metrics.ntk import (
    NTKSpectrum,
    adam_equivalent_lr,
    alignment_curve,
    empirical_ntk,
    ntk_drift,
    ntk_spectrum,
    predict_frequency_residuals,
    stable_lr,
)
from specbias.models import MLP
from specbias.runs import (
    ConvergenceSpec,
    HammingSpec,
    PairSpec,
    ProbeSpec,
    RegionSpec,
    RunConfig,
    RunData,
    SnapshotSpec,
    model_at,
)
from specbias.seeding import stream_seed
from specbias.signals import ToneMixture
from specbias.thresholds import threshold
from specbias.training import Schedule, TrainConfig

GD_FRACTION = 0.1
"""Gradient descent's ``η`` as a fraction of the linearised model's stability limit ``N C/λ_max(Θ₀)``."""
EQUIVALENT_CAP = 0.9
"""The Adam runs' equivalent ``η`` is capped at this fraction of the stability limit."""
TOP_K = 10
"""Size of the NTK eigenspace whose change is tracked."""
SHOWN_MODES = 4
"""Eigenvectors of ``Θ₀`` drawn (and saved) per input."""
INIT = "init"
"""Name of the snapshot taken before the first update (the initialisation)."""
MAX_KERNEL_POINTS = 8192
"""X5's largest N: Θ₀ (N × N, float64, 512 MB at 8,192) is formed for every run while planning."""
ONE_THREAD_MAX_POINTS = 1024
"""Kernels of at most this many points are computed on one thread: many small products, which a second
thread does not speed up and which spinning BLAS threads slow down 3× on a busy 2-core machine
(measured at N = 256); larger kernels (the paper's N = 2048: 0.57 s per NTK on one thread) use them all."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class KernelStudy(Overridable):
    """X5 parameters: the 1D target, the inputs, the network, both optimisers' budgets and the
    number of log-spaced checkpoints."""

    signal: ToneMixture = ToneMixture()
    inputs: tuple[str, ...] = ("raw01", "raw11", "pe3", "pe6", "rff10")
    width: int = 128
    depth: int = 4
    gd_steps: int = 4000
    gd_fraction: float = GD_FRACTION
    adam: TrainConfig = TrainConfig(epochs=500)
    checkpoints: int = 14
    seeds: int = 5

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "epochs": ("adam.epochs", "gd_steps"),  # both budgets: GD steps and Adam epochs
        "lr": ("adam.lr",),  # Adam's; gradient descent's comes from Θ₀
        **NETWORK,
        "n": ("signal.n",),
        "inputs": ("inputs",),
    }

    def __post_init__(self) -> None:
        check_study(
            self.inputs,
            width=self.width,
            depth=self.depth,
            seeds=self.seeds,
            gd_steps=self.gd_steps,
            checkpoints=self.checkpoints,
        )
        if not 0 < self.gd_fraction < 1:
            raise ConfigError(
                f"gd_fraction must be in (0, 1) (of the stability limit), got {self.gd_fraction}"
            )
        if self.adam.optimizer != "adam" or self.adam.batch_size is not None:
            raise ConfigError("the Adam runs must use optimizer='adam' with full batches (batch_size=None)")
        if self.signal.n > MAX_KERNEL_POINTS:
            raise ConfigError(
                f"--n {self.signal.n} is too large for X5: planning computes each run's N × N kernel Θ₀; "
                f"allowed: N <= {MAX_KERNEL_POINTS}"
            )

    def probes(self, steps: int) -> tuple[ProbeSpec, ...]:
        """Convergence, regions, Hamming and a snapshot at one schedule, plus the initial snapshot."""
        schedule = Schedule(logspaced=self.checkpoints, every=max(1, steps // 2), last=True)
        return (
            SnapshotSpec(Schedule(explicit=(0,)), before_update=True, name=INIT),
            SnapshotSpec(schedule, before_update=False),
            ConvergenceSpec(schedule),
            RegionSpec(schedule),
            HammingSpec(schedule, PairSpec(25, 250, 5000)),
        )

    def config(self, label: str, seed: int, train: TrainConfig) -> RunConfig:
        return RunConfig(
            signal=self.signal,
            input=label,
            width=self.width,
            depth=self.depth,
            train=train,
            probes=self.probes(train.epochs),
            seed=seed,
        )

    def gd_train(self, label: str, seed: int) -> TrainConfig:
        """Full-batch gradient descent at ``gd_fraction`` of the stability limit of this run's ``Θ₀``."""
        model, x, _ = initial_network(self.config(label, seed, self.adam))
        eta = stable_lr(empirical_ntk(model, x), self.gd_fraction)
        return TrainConfig(epochs=self.gd_steps, lr=float(f"{eta:.3g}"), optimizer="sgd", momentum=0.0)

    def group_keys(self) -> list[KernelGroup]:
        """The groups in report order: every input under gradient descent, then under Adam."""
        return [KernelGroup(opt, label) for opt in OPTIMISERS for label in self.inputs]

    def runs(self, seeds: int) -> list[RunConfig]:
        with kernel_threads(self.signal.n):
            gd = [self.config(lb, s, self.gd_train(lb, s)) for lb in self.inputs for s in range(seeds)]
        return gd + [self.config(lb, s, self.adam) for lb in self.inputs for s in range(seeds)]


def kernel_threads(n_points: int) -> AbstractContextManager:
    """One torch/BLAS thread for small kernels (:data:`ONE_THREAD_MAX_POINTS`), all of them otherwise."""
    return one_thread() if n_points <= ONE_THREAD_MAX_POINTS else nullcontext()


def optimiser(cfg: RunConfig) -> str:
    """``"gd"`` (plain SGD, full batch) or ``"adam"``."""
    return "gd" if cfg.train.optimizer == "sgd" else "adam"


OPTIMISERS = ("gd", "adam")
EVERY_INPUT = "every input"
"""The ``input`` of a group holding one value per seed over every input of an optimiser."""
DEPARTING = "departing inputs"
"""The ``input`` of a group holding one value per seed over the inputs whose prediction departs."""


@dataclass(frozen=True)
class KernelGroup:
    """An X5 group: optimiser (``gd``, ``adam``) and input label (or :data:`EVERY_INPUT`,
    :data:`DEPARTING`); written ``"<optimiser>/<input>"``, the summary's and the arrays' key."""

    optimiser: str
    input: str

    def __str__(self) -> str:
        return f"{self.optimiser}/{self.input}"


def kernel_group(cfg: RunConfig) -> KernelGroup:
    return KernelGroup(optimiser(cfg), cfg.input)


def _departure() -> float:
    """The prediction *departs* when the measured and predicted relative errors differ by more than this,
    averaged over the tones (threshold ``departure``)."""
    return threshold("departure").value


def _drift() -> float:
    """A *material* change: an NTK drift ``‖Θ_t − Θ₀‖_F/‖Θ₀‖_F``, or a region count or local Hamming
    distance relative to its value after the first step, above this (threshold ``drift``)."""
    return threshold("drift").value


def encoded_grid(cfg: RunConfig) -> tuple[torch.Tensor, np.ndarray]:
    """The run's encoded grid as the network sees it (rounded to the run's dtype), widened to float64,
    and the target."""
    sig = cfg.signal.build(cfg.seed)
    x = cfg.encoding()(torch.as_tensor(sig.t, dtype=torch.float64))
    return x.to(getattr(torch, cfg.dtype)).double(), sig.y


def initial_network(cfg: RunConfig) -> tuple[MLP, torch.Tensor, np.ndarray]:
    """The run's network before training, with :func:`encoded_grid`, in float64.

    Built exactly as :func:`~specbias.runs.execute_run` builds it (seed stream ``"init"``, PyTorch's
    default init in float32, copied exactly to float64), so a run's learning rate can depend on its
    own ``Θ₀`` before it trains (the training config plays no part). The global RNG is left alone.
    """
    x, y = encoded_grid(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(cfg.seed, "init"))
        model = MLP(x.shape[1], cfg.width, cfg.depth, y.shape[1])
    return model.double(), x, y


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Trajectory:
    """One run seen through its initial kernel, at the checkpoint steps ``steps`` (``(J,)``).

    ``measured`` and ``predicted``: relative error per checkpoint and tone ``(J, K)``; ``eta``: the
    rate of the prediction, ``eta_fraction = η λ_max(Θ₀)/(N C)``, ``eta_equivalent``: Adam's
    uncapped equivalent rate (``eta`` for gradient descent); ``drift``, ``subspace``, ``eig_growth``:
    ``‖Θ_t − Θ₀‖/‖Θ₀‖``, top-10 eigenspace change, ``λ_max(Θ_t)/λ_max(Θ₀)``; ``regions``,
    ``hamming``: grid region count and mean local Hamming distance; ``eigvals0``, ``modes0``,
    ``alignment0``: ``Θ₀``'s eigenvalues (descending), its top :data:`SHOWN_MODES` eigenvectors as
    signals over ``t`` ``(N, M)``, and the target's alignment ``A_k(y)`` for ``k = 1..N``.
    """

    steps: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    eta: float
    eta_fraction: float
    eta_equivalent: float
    drift: np.ndarray
    subspace: np.ndarray
    eig_growth: np.ndarray
    regions: np.ndarray
    hamming: np.ndarray
    eigvals0: np.ndarray
    modes0: np.ndarray
    alignment0: np.ndarray

    @property
    def departure(self) -> np.ndarray:
        """``D(t) = mean_k |e_meas(k, t) − e_pred(k, t)|``, ``(J,)``."""
        return np.abs(self.measured - self.predicted).mean(axis=1)

    @property
    def pattern_change(self) -> np.ndarray:
        """The larger relative change of the grid region count and the local Hamming distance since
        the first checkpoint, ``(J,)``."""
        return np.maximum(relative_to_first(self.regions), relative_to_first(self.hamming))


def _kernel_change(
    model: MLP, x: torch.Tensor, theta0: torch.Tensor, spec0: NTKSpectrum
) -> tuple[float, float, float]:
    """Drift, top-``TOP_K`` eigenspace change and top-eigenvalue growth of ``model``'s NTK; NaN for a
    network whose kernel is not finite."""
    theta = empirical_ntk(model, x)
    if not torch.isfinite(theta).all():
        return (float("nan"),) * 3
    d = ntk_drift(theta, theta0, k=TOP_K, spectrum_0=spec0)
    return d.rel_change, d.subspace_change, float(d.top_eigvals[0] / spec0.eigvals[0])


def trajectory(cfg: RunConfig, run: RunData) -> Trajectory:
    """Prediction, measurement and kernel/pattern changes of one finished run (docs/experiments/kernel.md)."""
    x, y = encoded_grid(cfg)
    model0 = model_at(cfg, run, 0, name=INIT)
    theta0 = empirical_ntk(model0, x)
    spec0 = ntk_spectrum(theta0)
    f0 = model0(x).detach()
    steps = run.get("convergence", "epochs") + 1
    if optimiser(cfg) == "gd":
        eta = equivalent = cfg.train.lr
    else:
        equivalent = adam_equivalent_lr(model0, x, torch.as_tensor(y), cfg.train.lr)
        eta = min(equivalent, stable_lr(spec0, EQUIVALENT_CAP))
    if not np.array_equal(run.get("snapshot", "epochs"), steps - 1):
        raise ConfigError(f"run {cfg.key()}: snapshots and convergence were not taken at the same epochs")
    freqs = run.arrays["signal/freqs"]
    predicted = predict_frequency_residuals(spec0, f0, y, eta, steps, freqs)["rel_error"]
    changes = np.array(
        [_kernel_change(model_at(cfg, run, i), x, theta0, spec0) for i in range(steps.size)]
    ).reshape(steps.size, 3)
    return Trajectory(
        steps=steps,
        measured=run.get("convergence", "rel_error"),
        predicted=predicted,
        eta=float(eta),
        eta_fraction=float(eta * spec0.eigvals[0] / y.size),
        eta_equivalent=float(equivalent),
        drift=changes[:, 0],
        subspace=changes[:, 1],
        eig_growth=changes[:, 2],
        regions=run.get("regions", "all").astype(np.float64),
        hamming=run.get("hamming", "local_mean").astype(np.float64),
        eigvals0=spec0.eigvals,
        modes0=spec0.eigvecs[:, :SHOWN_MODES],
        alignment0=alignment_curve(spec0, y),
    )


# --------------------------------------------------------------------------- per input


def first_index_above(values: np.ndarray, tol: float) -> int | None:
    """The index of the first value above ``tol`` (NaN never is), or None."""
    hits = np.flatnonzero(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) > tol)
    return int(hits[0]) if hits.size else None


def first_step_above(steps: np.ndarray, values: np.ndarray, tol: float) -> int | None:
    """The first checkpoint step whose value exceeds ``tol`` (NaN never does), or None."""
    index = first_index_above(values, tol)
    return None if index is None else int(steps[index])


def relative_to_first(values: np.ndarray) -> np.ndarray:
    """``|v_t / v_0 − 1|`` along the last axis (0 where ``v_0 = 0``)."""
    first = values[..., :1]
    return np.abs(np.divide(values, first, out=np.ones_like(values), where=first != 0) - 1.0)


def halves(values: np.ndarray) -> tuple[float, float]:
    """Mean over the lower and over the upper half of the tones (last axis)."""
    k = values.shape[-1] // 2
    return float(values[..., :k].mean()), float(values[..., k:].mean())


@dataclass(frozen=True)
class InputView:
    """One (optimiser, input) group: the seeds' trajectories and their seed-mean curves."""

    trajectories: list[Trajectory]

    @property
    def steps(self) -> np.ndarray:
        return self.trajectories[0].steps

    def stack(self, field: str) -> np.ndarray:
        return np.stack([getattr(t, field) for t in self.trajectories])

    def curves(self) -> dict[str, np.ndarray]:
        """Seed-mean curves over the checkpoints: departure, drift, eigenspace change, top-eigenvalue
        growth, and the relative change of region count and local Hamming distance."""
        return {
            "departure": self.stack("departure").mean(axis=0),
            "ntk_drift": np.nanmean(self.stack("drift"), axis=0),
            "ntk_subspace_change": np.nanmean(self.stack("subspace"), axis=0),
            "ntk_top_eig_growth": np.nanmean(self.stack("eig_growth"), axis=0),
            "region_change": relative_to_first(self.stack("regions")).mean(axis=0),
            "hamming_change": relative_to_first(self.stack("hamming")).mean(axis=0),
        }

    def entry(self) -> dict[str, Any]:
        """The seed-mean summary of the group: first steps at which the seed-mean departure, drift and
        pattern changes cross their thresholds, final values, η (docs/experiments/kernel.md)."""
        c, steps = self.curves(), self.steps
        departure, drift = _departure(), _drift()
        meas_low, meas_high = halves(self.stack("measured")[:, -1])
        pred_low, pred_high = halves(self.stack("predicted")[:, -1])
        return {
            "eta": float(np.mean(self.stack("eta"))),
            "eta_fraction_of_limit": float(np.mean(self.stack("eta_fraction"))),
            "eta_equivalent": float(np.mean(self.stack("eta_equivalent"))),
            "eta_capped_seeds": int(np.sum(self.stack("eta") < self.stack("eta_equivalent"))),
            "departure_step": first_step_above(steps, c["departure"], departure),
            "drift_step": first_step_above(steps, c["ntk_drift"], drift),
            "region_step": first_step_above(steps, c["region_change"], drift),
            "hamming_step": first_step_above(steps, c["hamming_change"], drift),
            "pattern_step": first_step_above(
                steps, np.maximum(c["region_change"], c["hamming_change"]), drift
            ),
            "departure_last": float(c["departure"][-1]),
            "departure_max": float(c["departure"].max()),
            "ntk_drift_last": float(c["ntk_drift"][-1]),
            "ntk_subspace_change_last": float(c["ntk_subspace_change"][-1]),
            "ntk_top_eig_growth_last": float(c["ntk_top_eig_growth"][-1]),
            "ntk_top_eig_growth_max": float(np.nanmax(c["ntk_top_eig_growth"])),
            "measured_low_last": meas_low,
            "predicted_low_last": pred_low,
            "measured_high_last": meas_high,
            "predicted_high_last": pred_high,
            f"init_target_alignment_top{TOP_K}": float(self.stack("alignment0")[:, TOP_K - 1].mean()),
            "steps": int(steps[-1]),
            "seeds": len(self.trajectories),
        }


# --------------------------------------------------------------------------- per-seed values and claims

DEPARTS = "the prediction departs within the budget (1: yes)"
HELD = "steps the prediction holds (the budget if it never departs)"
DRIFT_BY = "least NTK drift by the departure"
PATTERN_BY = "least pattern change by the departure"
PATTERN_BEFORE = "largest pattern change before any departure"
SHARE = "share of the inputs whose prediction departs"
MEASURED_HIGH, PREDICTED_HIGH = "measured high-tone error at the end", "predicted high-tone error at the end"
LOW_GAIN = "low-tone error the real network saves over the prediction, relative"
DRIFT_END = "NTK drift at the end"
ADAM_DELAY = "Adam's departure step after GD's, relative (common horizon)"


def _nanmax(values: np.ndarray) -> float:
    """The largest finite value, NaN if there is none (a kernel that was not finite)."""
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else float("nan")


def run_values(t: Trajectory) -> dict[str, float]:
    """One run's per-seed X5 quantities: whether and when the prediction departs (``D > departure``), the
    largest kernel drift and pattern change up to the departure (the inputs that depart) and before it,
    the final high-tone errors, the relative low-tone saving ``(e_pred − e_meas)/e_pred`` and the final
    drift."""
    dep = first_index_above(t.departure, _departure())
    patterns = t.pattern_change
    before = patterns[:dep]
    meas_low, meas_high = halves(t.measured[-1])
    pred_low, pred_high = halves(t.predicted[-1])
    out = {
        DEPARTS: float(dep is not None),
        HELD: float(t.steps[-1] if dep is None else t.steps[dep]),
        PATTERN_BEFORE: float(before.max()) if before.size else 0.0,
        MEASURED_HIGH: meas_high,
        PREDICTED_HIGH: pred_high,
        LOW_GAIN: (pred_low - meas_low) / pred_low,
        DRIFT_END: float(t.drift[-1]),
    }
    if dep is not None:
        out[DRIFT_BY] = _nanmax(t.drift[: dep + 1])
        out[PATTERN_BY] = float(patterns[: dep + 1].max())
    return out


def _adam_delay(gd: Trajectory, adam: Trajectory, held_gd: float, held_adam: float) -> float:
    """``(s_Adam − s_GD)/s_GD`` from the steps each prediction holds (:data:`HELD`), both capped at the
    shorter budget (a prediction that never departs holds to it)."""
    horizon = float(min(gd.steps[-1], adam.steps[-1]))
    s_gd, s_adam = min(held_gd, horizon), min(held_adam, horizon)
    return (s_adam - s_gd) / s_gd


def kernel_values(trajectories: dict[KernelGroup, dict[int, Trajectory]]) -> SeedTable:
    """The per-seed table X5's claims read, from every group's trajectories by seed: each group's
    :func:`run_values`, Adam's departure delay against GD, and per optimiser the share of inputs that
    depart (:data:`EVERY_INPUT`) and the least drift and pattern change by a departure over the inputs
    that depart (:data:`DEPARTING`; marked not measurable where none does)."""
    table = SeedTable()
    per_run = {k: {s: run_values(t) for s, t in runs.items()} for k, runs in trajectories.items()}
    for key, by_seed in per_run.items():
        for seed, values in by_seed.items():
            for quantity, value in values.items():
                table.add(key, quantity, seed, value)
        gd = KernelGroup("gd", key.input)
        for seed in by_seed.keys() & per_run.get(gd, {}).keys() if key.optimiser == "adam" else ():
            held = per_run[gd][seed][HELD], by_seed[seed][HELD]
            table.add(
                key, ADAM_DELAY, seed, _adam_delay(trajectories[gd][seed], trajectories[key][seed], *held)
            )
    for opt in OPTIMISERS:
        groups = [v for k, v in per_run.items() if k.optimiser == opt]
        for seed in sorted({s for g in groups for s in g}):
            runs = [g[seed] for g in groups if seed in g]
            table.add(KernelGroup(opt, EVERY_INPUT), SHARE, seed, float(np.mean([r[DEPARTS] for r in runs])))
            departing = [r for r in runs if r[DEPARTS]]
            for quantity in (DRIFT_BY, PATTERN_BY) if departing else ():
                table.add(KernelGroup(opt, DEPARTING), quantity, seed, min(r[quantity] for r in departing))
        if groups and not table.get(KernelGroup(opt, DEPARTING), DRIFT_BY):
            table.mark(KernelGroup(opt, DEPARTING), "the prediction departs for no input in any seed")
    return table


def _every(text: str, parts: list[Claim]) -> list[Claim]:
    """All of ``parts`` under ``text``; nothing when there are none (no input of that kind)."""
    return [AllOf(text=text, parts=parts)] if parts else []


def kernel_claims(params: KernelStudy) -> list[Claim]:
    """X5's claims over the inputs of ``params`` (the table: :func:`kernel_values`)."""
    gd = {label: KernelGroup("gd", label) for label in params.inputs}
    encoded = [k for label, k in gd.items() if encoding_rank(label)[0] in (1, 2)]
    raws = [k for label, k in gd.items() if encoding_rank(label)[0] == 0]
    departing = KernelGroup("gd", DEPARTING)
    out: list[Claim] = [
        Level(
            text="Θ₀ does not capture the real GD dynamics: the kernel prediction departs from the measured "
            f"convergence (mean |Δ rel. error| > {_departure()}) within the budget for most inputs",
            reads=SHARE,
            group=KernelGroup("gd", EVERY_INPUT),
            threshold="most",
        ),
        Level(
            text=f"where the GD prediction departs, the NTK has drifted by more than {_drift():.0%} by then",
            reads=DRIFT_BY,
            group=departing,
            threshold="drift",
        ),
        Level(
            text="where the GD prediction departs, the activation patterns (grid region count or local "
            f"Hamming) have changed by more than {_drift():.0%} by then",
            reads=PATTERN_BY,
            group=departing,
            threshold="drift",
        ),
        *_every(
            "for the encoded inputs (PE, RFF) the measured high tones end below the kernel prediction "
            "(the real network fits them faster than its initial kernel)",
            [
                within(f"{k.input}: measured < predicted", k, MEASURED_HIGH, PREDICTED_HIGH, "<")
                for k in encoded
            ],
        ),
        *every_group(
            "for raw inputs the activation patterns change materially while the kernel prediction still "
            "holds (a pattern change before, or without, any departure)",
            PATTERN_BEFORE,
            raws,
            "drift",
        ),
        *every_group(
            "for raw inputs the real network fits the low tones no faster than its initial kernel",
            LOW_GAIN,
            raws,
            "material",
            above=False,
        ),
    ]
    raw, pes = raw_and_encoded(list(params.inputs))
    if raw and pes:
        a, b = gd[raw], gd[pes[-1]]
        out += [
            Compare(
                text=f"the kernel prediction holds longer for {raw} than for {pes[-1]}",
                reads=HELD,
                a=a,
                b=b,
                relation=">",
            ),
            Compare(
                text=f"the NTK drifts more for {raw} than for {pes[-1]} (‖Θ_T − Θ₀‖/‖Θ₀‖ at the end)",
                reads=DRIFT_END,
                a=a,
                b=b,
                relation=">",
            ),
        ]
    adam = [KernelGroup("adam", label) for label in params.inputs]
    text = (
        "under Adam the GD-kernel prediction (equivalent η) departs no later than under GD, for every input"
    )
    out += every_group(text, ADAM_DELAY, adam, "material", above=False)
    return out


# --------------------------------------------------------------------------- figures

_OPT_TITLE = {
    "gd": "full-batch gradient descent (η = {f:.2g} of the stability limit)",
    "adam": "Adam (GD-kernel prediction at an equivalent η: not applicable in theory)",
}


def _panels(n: int, width: float = 4.4, height: float = 3.4, ncols: int = 3) -> tuple[Figure, list[Axes]]:
    axes = figures.panel_grid(n, width, height, ncols)
    return axes[0].figure, axes


def _step_axis(ax: Axes) -> None:
    """A log-scaled gradient-step axis labelled 1, 3, 10, 30, ... (no crowded minor labels when the
    run spans less than a decade)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("gradient step")


def _suptitle(fig: Figure, *lines: str) -> None:
    """A figure title, each line wrapped to the figure's width (about 10 characters per inch at the
    default 12 pt), so that no title runs off a narrow figure."""
    width = max(20, int(fig.get_figwidth() * 10))
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in lines))


def _mark_departure(ax: Axes, step: int | None) -> None:
    if step is not None:
        ax.axvline(step, color="red", ls=":", lw=1.0, label=f"departure (step {step})")


def overlay_figure(
    views: dict[KernelGroup, InputView], entries: dict[KernelGroup, dict], freqs: np.ndarray, title: str
) -> Figure:
    """Per input: relative error per tone, measured (solid, seed mean) vs predicted (dashed)."""
    fig, axes = _panels(len(views))
    cmap = plt.get_cmap("viridis")
    for ax, (key, view) in zip(axes, views.items()):
        meas, pred = view.stack("measured").mean(axis=0), view.stack("predicted").mean(axis=0)
        for q, k in enumerate(freqs):
            c = cmap(q / max(1, len(freqs) - 1))
            ax.plot(view.steps, meas[:, q], color=c, lw=1.2, label=f"k={k}" if q % 3 == 0 else None)
            ax.plot(view.steps, pred[:, q], color=c, lw=1.0, ls="--")
        _mark_departure(ax, entries[key]["departure_step"])
        _step_axis(ax)
        ax.set_title(figures.input_title(key.input))
        ax.set_ylabel("relative error |R(k)|/|Y(k)|")
    axes[0].legend(fontsize=6, ncol=2, loc="lower left")
    _suptitle(
        fig, title, "measured (solid) vs kernel prediction from Θ₀ (dashed); low k purple, high k yellow"
    )
    fig.tight_layout()
    return fig


_LINEUP = {
    "departure": ("mean |Δ rel. error| (prediction gap)", "black"),
    "ntk_drift": ("‖Θ_t − Θ₀‖/‖Θ₀‖", "tab:blue"),
    "ntk_subspace_change": (f"top-{TOP_K} eigenspace change", "tab:cyan"),
    "region_change": ("|R_t/R_1 − 1| (region count)", "tab:orange"),
    "hamming_change": ("|H_t/H_1 − 1| (local Hamming)", "tab:green"),
}


def lineup_figure(
    views: dict[KernelGroup, InputView], entries: dict[KernelGroup, dict], title: str
) -> Figure:
    """Per input: the prediction gap next to the kernel drift and the activation-pattern changes."""
    fig, axes = _panels(len(views))
    for ax, (key, view) in zip(axes, views.items()):
        curves = view.curves()
        for name, (text, color) in _LINEUP.items():
            ax.plot(view.steps, np.maximum(curves[name], 1e-4), color=color, lw=1.3, label=text)
        ax.axhline(_departure(), color="black", ls="--", lw=0.7)
        ax.axhline(_drift(), color="grey", ls="--", lw=0.7)
        _mark_departure(ax, entries[key]["departure_step"])
        _step_axis(ax)
        ax.set_yscale("log")
        ax.set_title(figures.input_title(key.input))
    axes[0].legend(fontsize=6, loc="upper left")
    _suptitle(fig, title, "where the prediction departs vs kernel and activation-pattern change")
    fig.tight_layout()
    return fig


def drift_figure(views: dict[KernelGroup, InputView]) -> Figure:
    """NTK drift, eigenspace change and top-eigenvalue growth per input; GD solid, Adam dashed."""
    names = {
        "ntk_drift": "‖Θ_t − Θ₀‖_F / ‖Θ₀‖_F",
        "ntk_subspace_change": f"top-{TOP_K} eigenspace change",
        "ntk_top_eig_growth": "λ_max(Θ_t) / λ_max(Θ₀)",
    }
    fig, axes = _panels(len(names), width=5.0, height=3.8)
    labels = list(dict.fromkeys(k.input for k in views))
    palette = figures.colors(labels)
    for ax, (name, text) in zip(axes, names.items()):
        for key, view in views.items():
            gd = key.optimiser == "gd"
            ax.plot(
                view.steps,
                view.curves()[name],
                color=palette[key.input],
                ls="-" if gd else "--",
                label=f"{figures.input_title(key.input)} ({'GD' if gd else 'Adam'})",
            )
        _step_axis(ax)
        if name != "ntk_subspace_change":
            ax.set_yscale("log")
        ax.set_title(text)
    axes[0].legend(fontsize=6)
    _suptitle(fig, "NTK drift during training per input (GD solid, Adam dashed; mean over seeds)")
    fig.tight_layout()
    return fig


def init_kernel_figure(views: dict[KernelGroup, InputView], t: np.ndarray) -> Figure:
    """``Θ₀`` per input (gradient-descent runs, seed 0): its normalised spectrum ``λ_i/λ_1``, the
    target's alignment ``A_k(y)`` (energy fraction in the top ``k`` eigenvectors; a kernel whose top
    modes hold the target fits it fast in the linearised regime), and its top eigenvectors as signals
    over ``t`` -- smooth, low-frequency modes for raw inputs, oscillating ones under an encoding."""
    gd = {k.input: v.trajectories[0] for k, v in views.items() if k.optimiser == "gd"}
    fig, axes = _panels(2 + len(gd), width=4.4, height=3.2, ncols=4)
    palette = figures.colors(list(gd))
    for label, traj in gd.items():
        ranks = np.arange(1, traj.eigvals0.size + 1)
        spectrum = np.clip(traj.eigvals0 / traj.eigvals0[0], 1e-16, None)
        axes[0].loglog(ranks, spectrum, color=palette[label], label=figures.input_title(label))
        axes[1].semilogx(ranks, traj.alignment0, color=palette[label], label=figures.input_title(label))
    axes[0].set(title="Θ₀ spectrum", xlabel="eigenvalue rank i", ylabel="λ_i / λ_1")
    axes[1].set(title="target alignment A_k(y)", xlabel="top k eigenvectors", ylabel="fraction of ‖y‖²")
    axes[0].legend(fontsize=6)
    for ax, (label, traj) in zip(axes[2:], gd.items()):
        for m in range(traj.modes0.shape[1]):
            mode = traj.modes0[:, m]
            ax.plot(t, mode / (np.abs(mode).max() or 1.0) - 2.2 * m, lw=0.8)
        ax.set(
            title=f"{figures.input_title(label)}: top Θ₀ eigenvectors",
            xlabel="t",
            ylabel=f"modes 1-{traj.modes0.shape[1]}, top to bottom",
            yticks=[],
        )
    _suptitle(fig, "The kernel at initialisation (full-batch GD runs, seed 0)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- analysis


def _rows(key: str, cfg_seeds: list[int], view: InputView, freqs: np.ndarray) -> list[tuple]:
    rows = []
    for seed, t in zip(cfg_seeds, view.trajectories):
        rows.append(("X5", key, seed, 0, "eta", "", t.eta))
        rows.append(("X5", key, seed, 0, "eta_fraction_of_limit", "", t.eta_fraction))
        for j, step in enumerate(t.steps):
            base = ("X5", key, seed, int(step) - 1)
            for q, k in enumerate(freqs):
                rows.append((*base, "rel_error_measured", str(int(k)), float(t.measured[j, q])))
                rows.append((*base, "rel_error_predicted", str(int(k)), float(t.predicted[j, q])))
            for metric, values in (
                ("prediction_gap", t.departure),
                ("ntk_drift", t.drift),
                ("ntk_subspace_change", t.subspace),
                ("ntk_top_eig_growth", t.eig_growth),
            ):
                rows.append((*base, metric, "", float(values[j])))
    return rows


def _arrays(key: str, view: InputView) -> dict[str, np.ndarray]:
    fields = ("measured", "predicted", "departure", "drift", "subspace", "eig_growth", "regions", "hamming")
    out = {f"{f}/{key}": view.stack(f) for f in fields}
    out[f"steps/{key}"] = view.steps
    out[f"eta/{key}"] = view.stack("eta")
    return out


INIT_ARRAYS = {"init_eigvals": "eigvals0", "init_alignment": "alignment0", "init_modes": "modes0"}
"""Saved views of ``Θ₀`` (array name → :class:`Trajectory` field), every group, when a GD run finished."""


def _figures(
    views: dict[KernelGroup, InputView], entries: dict[KernelGroup, dict], freqs: np.ndarray, t: np.ndarray
) -> dict[str, Figure]:
    """Per optimiser the prediction overlay and the departure line-up; the drift of every group; the
    kernel at initialisation of the gradient-descent runs."""
    out: dict[str, Figure] = {}
    for opt in OPTIMISERS:
        group = {k: v for k, v in views.items() if k.optimiser == opt}
        if group:
            frac = float(np.mean([entries[k]["eta_fraction_of_limit"] for k in group]))
            title = _OPT_TITLE[opt].format(f=frac)
            out[f"{opt}_prediction_vs_measured"] = overlay_figure(group, entries, freqs, title)
            out[f"{opt}_departure_lineup"] = lineup_figure(group, entries, title)
    out["ntk_drift"] = drift_figure(views)
    if any(k.optimiser == "gd" for k in views):
        out["kernel_at_init"] = init_kernel_figure(views, t)
    return out


def kernel_part(params: KernelStudy, configs: Configs, groups: Groups, summary: dict) -> Part:
    """X5: every finished run's :func:`trajectory` (a kernel per snapshot), the per-seed table
    (:func:`kernel_values`), each group's seed-mean entry (the summary's ``kernel[optimiser][input]`` and
    the group's summary), rows, arrays and figures."""
    part = Part()
    threads = partial(kernel_threads, params.signal.n)
    keys = [k for k in params.group_keys() if k in groups]
    views = {k: InputView(per_run(configs, groups[k], trajectory, f"X5 {k}", threads)) for k in keys}
    seeds = {k: [d.meta["seed"] for d in groups[k]] for k in keys}
    freqs = groups[keys[0]][0].arrays["signal/freqs"]
    part.table = kernel_values({k: dict(zip(seeds[k], v.trajectories)) for k, v in views.items()})
    entries = {k: view.entry() for k, view in views.items()}
    kernel: dict[str, dict[str, dict]] = {}
    has_gd = any(k.optimiser == "gd" for k in keys)
    for key, view in views.items():
        kernel.setdefault(key.optimiser, {})[key.input] = entries[key]
        summary[key].update({"departure_step": entries[key]["departure_step"], "eta": entries[key]["eta"]})
        part.rows += _rows(str(key), seeds[key], view, freqs)
        part.arrays.update(_arrays(str(key), view))
        for name, field in INIT_ARRAYS.items() if has_gd else ():
            part.arrays[f"{name}/{key}"] = view.stack(field)
    part.arrays["freqs"] = freqs
    part.figures = _figures(views, entries, freqs, params.signal.build(0).t.reshape(-1))
    part.summary = {
        "kernel": kernel,
        "tolerances": {"departure": _departure(), "material": _drift(), "top_k": TOP_K},
    }
    return part


analyse = measured_analysis("X5", kernel_part, kernel_claims, key=kernel_group, order=KernelStudy.group_keys)
"""X5: per-group summary, the per-run kernel view, per-input tables, figures and claims."""


# --------------------------------------------------------------------------- registry

X5_PAPER = KernelStudy()
X5_QUICK = KernelStudy(signal=ToneMixture(n=256), inputs=("raw01", "pe3", "pe6"), gd_steps=600, seeds=3)

KERNEL_EXPERIMENTS = (
    Experiment.of(
        id="X5",
        title="Theory vs observed: kernel prediction from Θ₀ against real GD and Adam dynamics (1D)",
        claim="The NTK at initialisation does not capture the real network's dynamics; where the prediction "
        "departs, the kernel and the activation regions have changed.",
        quick=X5_QUICK,
        standard=dataclasses.replace(X5_QUICK, seeds=5),
        paper=X5_PAPER,
        analyse=analyse,
    ),
)
