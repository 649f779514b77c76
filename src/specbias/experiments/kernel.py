"""X5 -- theory versus observed: the kernel prediction from ``Θ₀`` against the real training dynamics.

The kernel view (Jacot et al. 2018; Lee et al., NeurIPS 2019) predicts full-batch gradient descent
from the empirical NTK at initialisation alone: on the trainer's loss ``L = (1/(N C)) Σ (f − y)²``
with learning rate ``η`` the linearised network's residual decays mode by mode,

    r_t = U diag((1 − 2ηλ_k/(N C))^t) Uᵀ r_0,        Θ₀ = U Λ Uᵀ,

(:func:`~specbias.metrics.ntk.linearised_residuals`), so the relative error of every target
frequency, ``|R_t(k)|/|Y(k)|`` (:mod:`specbias.metrics.spectrum`), is predicted at every step
(:func:`~specbias.metrics.ntk.predict_frequency_residuals`). The paper (Lazzari & Liu 2023)
explains spectral bias by activation regions instead and states that the NTK does not capture the
real network's dynamics. X5 puts the two side by side on the 1D study's target (the tone mixture
``k ∈ {5, 10, …, 70}``, MLP-4×128) for raw ``[0,1)``, raw ``[-1,1)``, PE L=3, PE L=6 and RFF σ=10
(256 Gaussian frequencies).

Runs
----
For each input and seed, two ordinary :class:`~specbias.runs.RunConfig` runs on the same target and
initialisation:

* **gradient descent**, full batch, no momentum, ``η = GD_FRACTION · N C / λ_max(Θ₀)`` -- a tenth of
  the linearised model's stability limit (:func:`~specbias.metrics.ntk.stable_lr`; rounded to 3
  significant digits, the value in the run's config is the one the prediction uses). ``Θ₀`` comes
  from the run's own initial network, rebuilt when the runs are planned exactly as
  :func:`~specbias.runs.execute_run` builds it (seed stream ``"init"``). A tenth, not more: in the
  standard parameterisation at width 128 the kernel's top eigenvalue grows 5-20× within a few
  hundred steps (progressive sharpening, Cohen et al., ICLR 2021), so at ``η`` = 0.5 of the limit a
  PE L=6 network hit the edge of stability within ~15 steps and died (constant output) at N = 1024,
  and at 0.2 an RFF σ=30 network blew up;
* **Adam** ``lr = 1e-3``, full batch, as in the 1D study. No kernel prediction holds for Adam; its
  plots carry the GD prediction at the *equivalent* ``η`` -- the gradient-descent rate whose first
  step lowers the loss as much, to first order, as Adam's first step
  (:func:`~specbias.metrics.ntk.adam_equivalent_lr`, ``≈ lr ‖g‖₁/‖g‖₂²``), capped at
  ``EQUIVALENT_CAP`` of the stability limit so that the linear model stays bounded -- and are
  labelled "not applicable in theory".

Every run carries, at one schedule (14 log-spaced steps, the middle and the last one), the
per-frequency convergence, the grid region count (distinct activation patterns), the local and
global Hamming distance (spec §1.4, §1.7) and a parameter snapshot; a second snapshot before
the first update is the initialisation. The probes see the network after the update, so checkpoint
epoch ``e`` is the state after ``e + 1`` steps (full batch: one step per epoch); the
``epoch`` column of ``metrics.csv`` holds ``e``, every ``*_step`` of the summary counts steps.

Analysis
--------
Per run: ``Θ₀`` (:func:`~specbias.metrics.ntk.empirical_ntk` on the rebuilt initial network, float64)
and its full spectrum; the predicted relative error of every tone at every checkpoint; ``Θ_t`` at
every snapshot, its **drift** ``‖Θ_t − Θ₀‖_F/‖Θ₀‖_F``, the change of its top-10 eigenspace
``1 − ‖U_tᵀU₀‖_F²/10`` (Fort et al., NeurIPS 2020; :func:`~specbias.metrics.ntk.ntk_drift`) and the
growth of its top eigenvalue ``λ_max(Θ_t)/λ_max(Θ₀)``. Per input (means over seeds):

* the **departure** ``D(t) = mean_k |e_meas(k, t) − e_pred(k, t)|``, the measured and predicted
  relative errors' gap averaged over the tones, and the **departure step**: the first checkpoint
  with ``D > DEPARTURE_TOL`` (None: the prediction holds within the budget);
* the first checkpoint at which the activation regions, the local Hamming distance and the kernel
  change **materially**: ``|R_t/R_1 − 1|``, ``|H_t/H_1 − 1|`` (relative to the first checkpoint,
  after one step) and the drift above ``MATERIAL``;
* the final measured and predicted errors of the low and high tones (lower and upper half of the
  tones; k ≥ 40 for the paper's).

Findings (computed from these tables, reported whichever way they come out): the GD prediction
departs within the budget for most inputs (the paper's "the NTK does not capture real network
dynamics"); where it departs, the kernel has drifted materially by then, and so have the activation
patterns; for the encoded inputs the measured high tones end below the prediction (the real network
is faster than its initial kernel); for raw inputs the activation patterns change materially while
the prediction still holds, and the real network fits the low tones no faster than predicted; the
prediction holds longer for raw ``[0,1)`` than for the highest PE; the NTK drifts more for raw
``[0,1)`` than for the highest PE (a claim of the issue); under Adam the GD-kernel prediction departs
no later than under GD, for every input. Measured (quick, seeds 0-2 give the same verdicts): the
encoded inputs depart after 31-137 steps, each after its NTK drifted past 0.1, and end with high-tone
errors of 0.05-0.9 against predicted 0.97-1.0 (the kernel's top eigenvalue grows 13-30×); raw inputs
never depart within 600 steps; the activation patterns of PE/RFF (one region per point throughout)
change only at or after the departure, so the departure lines up with the kernel drift rather than
with the regions; the NTK drifts *less* for raw ``[0,1)`` than for PE L=6 (1.6 vs 10.8). See
``docs/metrics/ntk.md`` for the table.

Profiles
--------
``paper``: the 1D study's scale -- N = 2048, MLP-4×128, 5 seeds, 4,000 GD steps and Adam's 500
epochs (a GPU job: 50 runs; the analysis computes ~17 kernels of 2048² per run, 0.57 s each on one
CPU thread, so kernels above :data:`ONE_THREAD_MAX_POINTS` points use every thread). ``quick`` runs on
a 2-core CPU in about 30 s (27 s measured with 2 workers, 57 s with 3 seeds): N = 256 (the tones up
to 70 stay below the Nyquist limit of 128; a step costs ~8× and a kernel ~64× less than at 2048; the
quantities compared are per step, and the step rate ``ηλ/N`` does not depend on N), 600 GD steps
(PE and RFF depart within ~30-140 steps and fit most tones by 600; raw inputs barely learn either
way), Adam's 500 epochs, 1 seed, 14 log-spaced checkpoints (the parameter snapshots dominate the
run files: ~3.5 MB per run, 7.7 MB for RFF with its 512 features; 42 MB in all).
"""

from __future__ import annotations

import dataclasses
import textwrap
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from specbias import figures
from specbias.errors import ConfigError
from specbias.experiments.analysis import (
    Runs,
    encoding_rank,
    make_analysis,
    one_thread,
    progress,
    raw_and_encoded,
)
from specbias.experiments.base import Experiment, ExperimentResult, Finding, check_study
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
from specbias.training import Schedule, TrainConfig

GD_FRACTION = 0.1
"""Gradient descent's ``η`` as a fraction of the linearised model's stability limit ``N C/λ_max(Θ₀)``."""
EQUIVALENT_CAP = 0.9
"""The Adam runs' equivalent ``η`` is capped at this fraction of the stability limit."""
DEPARTURE_TOL = 0.05
"""The prediction *departs* when the measured and predicted relative errors differ by more than this,
averaged over the tones."""
MATERIAL = 0.1
"""A *material* change: region count or local Hamming distance by more than 10% of its value after
the first step, or an NTK drift ``‖Θ_t − Θ₀‖_F/‖Θ₀‖_F`` above 0.1."""
TOP_K = 10
"""Size of the NTK eigenspace whose change is tracked."""
SHOWN_MODES = 4
"""Eigenvectors of ``Θ₀`` drawn (and saved) per input."""
INIT = "init"
"""Name of the snapshot taken before the first update (the initialisation)."""
ONE_THREAD_MAX_POINTS = 1024
"""Kernels of at most this many points are computed on one thread: many small products, which a second
thread does not speed up and which spinning BLAS threads slow down 3× on a busy 2-core machine
(measured at N = 256); larger kernels (the paper's N = 2048: 0.57 s per NTK on one thread) use them all."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class KernelStudy:
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

    OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "lr", "width", "depth", "n", "inputs")

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

    def override(self, **changes: Any) -> KernelStudy:
        """A copy with user overrides: ``epochs`` (both budgets: GD steps and Adam epochs), ``lr``
        (Adam's; gradient descent's comes from ``Θ₀``), ``width``, ``depth``, ``n``, ``inputs``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        adam = dataclasses.replace(self.adam, **{k: changes[k] for k in ("epochs", "lr") if k in changes})
        out: dict[str, Any] = {"adam": adam}
        if "epochs" in changes:
            out["gd_steps"] = changes["epochs"]
        if "n" in changes:
            out["signal"] = dataclasses.replace(self.signal, n=changes["n"])
        if "inputs" in changes:
            out["inputs"] = tuple(changes["inputs"])
        out.update({k: changes[k] for k in ("width", "depth") if k in changes})
        return dataclasses.replace(self, **out)

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

    def group_keys(self) -> list[str]:
        return [group_key(opt, label) for opt in ("gd", "adam") for label in self.inputs]

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


def group_key(opt: str, label: str) -> str:
    return f"{opt}/{label}"


def _key(cfg: RunConfig) -> str:
    return group_key(optimiser(cfg), cfg.input)


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
    """Prediction, measurement and kernel/pattern changes of one finished run (module docstring)."""
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


def first_step_above(steps: np.ndarray, values: np.ndarray, tol: float) -> int | None:
    """The first checkpoint step whose value exceeds ``tol`` (NaN never does), or None."""
    hits = np.flatnonzero(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) > tol)
    return int(steps[hits[0]]) if hits.size else None


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
        """The summary numbers of the group (see the module docstring)."""
        c, steps = self.curves(), self.steps
        meas_low, meas_high = halves(self.stack("measured")[:, -1])
        pred_low, pred_high = halves(self.stack("predicted")[:, -1])
        return {
            "eta": float(np.mean(self.stack("eta"))),
            "eta_fraction_of_limit": float(np.mean(self.stack("eta_fraction"))),
            "eta_equivalent": float(np.mean(self.stack("eta_equivalent"))),
            "eta_capped_seeds": int(np.sum(self.stack("eta") < self.stack("eta_equivalent"))),
            "departure_step": first_step_above(steps, c["departure"], DEPARTURE_TOL),
            "drift_step": first_step_above(steps, c["ntk_drift"], MATERIAL),
            "region_step": first_step_above(steps, c["region_change"], MATERIAL),
            "hamming_step": first_step_above(steps, c["hamming_change"], MATERIAL),
            "pattern_step": first_step_above(
                steps, np.maximum(c["region_change"], c["hamming_change"]), MATERIAL
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


# --------------------------------------------------------------------------- findings


def _later(a: int | None, b: int | None) -> bool:
    """``a`` comes strictly later than ``b``; None (never within the budget) is latest."""
    return (a is None and b is not None) or (a is not None and b is not None and a > b)


def _steps(entries: dict[str, dict], field: str) -> str:
    return ", ".join(f"{lb}: {e[field] if e[field] is not None else 'never'}" for lb, e in entries.items())


def _precedes(claim: str, gd: dict[str, dict], field: str) -> Finding:
    """Every input whose prediction departs had its ``field`` change no later than the departure."""
    departing = {lb: e for lb, e in gd.items() if e["departure_step"] is not None}
    if not departing:
        return Finding(claim, False, "not measurable: the prediction departs for no input")
    late = [lb for lb, e in departing.items() if _later(e[field], e["departure_step"])]
    detail = f"departure {_steps(departing, 'departure_step')}; {field} {_steps(departing, field)}"
    return Finding(claim, not late, detail + (f"; later or never for {', '.join(late)}" if late else ""))


def _compare_last(entries: dict[str, dict], tones: str) -> tuple[dict[str, bool], str]:
    """Per input: measured final error of the ``tones`` (low/high) below the prediction, and a detail."""
    below = {lb: e[f"measured_{tones}_last"] < e[f"predicted_{tones}_last"] for lb, e in entries.items()}
    detail = "; ".join(
        f"{lb}: measured {e[f'measured_{tones}_last']:.3g} vs predicted {e[f'predicted_{tones}_last']:.3g}"
        for lb, e in entries.items()
    )
    return below, detail


def _gd_findings(gd: dict[str, dict]) -> list[Finding]:
    departed = [lb for lb, e in gd.items() if e["departure_step"] is not None]
    return [
        Finding(
            "Θ₀ does not capture the real GD dynamics: the kernel prediction departs from the measured "
            f"convergence (mean |Δ rel. error| > {DEPARTURE_TOL}) within the budget for most inputs",
            len(departed) > len(gd) / 2,
            f"{len(departed)} of {len(gd)} inputs depart; {_steps(gd, 'departure_step')}",
        ),
        _precedes(
            f"where the GD prediction departs, the NTK has drifted by more than {MATERIAL:.0%} by then",
            gd,
            "drift_step",
        ),
        _precedes(
            "where the GD prediction departs, the activation patterns (grid region count or local Hamming) "
            f"have changed by more than {MATERIAL:.0%} by then",
            gd,
            "pattern_step",
        ),
    ]


def _input_kind_findings(gd: dict[str, dict]) -> list[Finding]:
    out = []
    encoded = {lb: e for lb, e in gd.items() if encoding_rank(lb)[0] in (1, 2)}
    if encoded:
        below, detail = _compare_last(encoded, "high")
        out.append(
            Finding(
                "for the encoded inputs (PE, RFF) the measured high tones end below the kernel prediction "
                "(the real network fits them faster than its initial kernel)",
                all(below.values()),
                detail,
            )
        )
    raws = {lb: e for lb, e in gd.items() if encoding_rank(lb)[0] == 0}
    if raws:
        out.append(
            Finding(
                "for raw inputs the activation patterns change materially while the kernel prediction "
                "still holds (a pattern change before, or without, any departure)",
                all(_later(e["departure_step"], e["pattern_step"]) for e in raws.values()),
                f"pattern change {_steps(raws, 'pattern_step')}; departure {_steps(raws, 'departure_step')}",
            )
        )
        below, detail = _compare_last(raws, "low")
        out.append(
            Finding(
                "for raw inputs the real network fits the low tones no faster than its initial kernel",
                not any(below.values()),
                detail,
            )
        )
    return out


def _raw_vs_pe_findings(gd: dict[str, dict]) -> list[Finding]:
    raw, pes = raw_and_encoded(list(gd))
    if not (raw and pes):
        return []
    top = pes[-1]
    r, p = gd[raw], gd[top]
    return [
        Finding(
            f"the kernel prediction holds longer for {raw} than for {top}",
            _later(r["departure_step"], p["departure_step"]),
            f"departure {_steps({raw: r, top: p}, 'departure_step')}",
        ),
        Finding(
            f"the NTK drifts more for {raw} than for {top} (‖Θ_T − Θ₀‖/‖Θ₀‖ at the end)",
            r["ntk_drift_last"] > p["ntk_drift_last"],
            f"{raw} {r['ntk_drift_last']:.3g} vs {top} {p['ntk_drift_last']:.3g}; top-{TOP_K} eigenspace "
            f"change {r['ntk_subspace_change_last']:.2f} vs {p['ntk_subspace_change_last']:.2f}",
        ),
    ]


def _adam_findings(gd: dict[str, dict], adam: dict[str, dict]) -> list[Finding]:
    both = [lb for lb in gd if lb in adam]
    if not both:
        return []
    late = [lb for lb in both if _later(adam[lb]["departure_step"], gd[lb]["departure_step"])]
    return [
        Finding(
            "under Adam the GD-kernel prediction (equivalent η) departs no later than under GD, for every "
            "input",
            not late,
            f"Adam {_steps({lb: adam[lb] for lb in both}, 'departure_step')}; "
            f"GD {_steps({lb: gd[lb] for lb in both}, 'departure_step')}",
        )
    ]


def kernel_findings(table: dict[str, dict[str, dict]]) -> list[Finding]:
    """The X5 findings from the per-input tables ``table[opt][label]`` (opt ``gd``/``adam``)."""
    gd, adam = table.get("gd", {}), table.get("adam", {})
    if not gd:
        return []
    return [*_gd_findings(gd), *_input_kind_findings(gd), *_raw_vs_pe_findings(gd), *_adam_findings(gd, adam)]


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
    views: dict[str, InputView], entries: dict[str, dict], freqs: np.ndarray, title: str
) -> Figure:
    """Per input: relative error per tone, measured (solid, seed mean) vs predicted (dashed)."""
    fig, axes = _panels(len(views))
    cmap = plt.get_cmap("viridis")
    for ax, (label, view) in zip(axes, views.items()):
        meas, pred = view.stack("measured").mean(axis=0), view.stack("predicted").mean(axis=0)
        for q, k in enumerate(freqs):
            c = cmap(q / max(1, len(freqs) - 1))
            ax.plot(view.steps, meas[:, q], color=c, lw=1.2, label=f"k={k}" if q % 3 == 0 else None)
            ax.plot(view.steps, pred[:, q], color=c, lw=1.0, ls="--")
        _mark_departure(ax, entries[label]["departure_step"])
        _step_axis(ax)
        ax.set_title(figures.input_title(label.split("/", 1)[1]))
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


def lineup_figure(views: dict[str, InputView], entries: dict[str, dict], title: str) -> Figure:
    """Per input: the prediction gap next to the kernel drift and the activation-pattern changes."""
    fig, axes = _panels(len(views))
    for ax, (label, view) in zip(axes, views.items()):
        curves = view.curves()
        for name, (text, color) in _LINEUP.items():
            ax.plot(view.steps, np.maximum(curves[name], 1e-4), color=color, lw=1.3, label=text)
        ax.axhline(DEPARTURE_TOL, color="black", ls="--", lw=0.7)
        ax.axhline(MATERIAL, color="grey", ls="--", lw=0.7)
        _mark_departure(ax, entries[label]["departure_step"])
        _step_axis(ax)
        ax.set_yscale("log")
        ax.set_title(figures.input_title(label.split("/", 1)[1]))
    axes[0].legend(fontsize=6, loc="upper left")
    _suptitle(fig, title, "where the prediction departs vs kernel and activation-pattern change")
    fig.tight_layout()
    return fig


def drift_figure(views: dict[str, InputView]) -> Figure:
    """NTK drift, eigenspace change and top-eigenvalue growth per input; GD solid, Adam dashed."""
    names = {
        "ntk_drift": "‖Θ_t − Θ₀‖_F / ‖Θ₀‖_F",
        "ntk_subspace_change": f"top-{TOP_K} eigenspace change",
        "ntk_top_eig_growth": "λ_max(Θ_t) / λ_max(Θ₀)",
    }
    fig, axes = _panels(len(names), width=5.0, height=3.8)
    labels = list(dict.fromkeys(k.split("/", 1)[1] for k in views))
    palette = figures.colors(labels)
    for ax, (name, text) in zip(axes, names.items()):
        for key, view in views.items():
            opt, label = key.split("/", 1)
            ax.plot(
                view.steps,
                view.curves()[name],
                color=palette[label],
                ls="-" if opt == "gd" else "--",
                label=f"{figures.input_title(label)} ({'GD' if opt == 'gd' else 'Adam'})",
            )
        _step_axis(ax)
        if name != "ntk_subspace_change":
            ax.set_yscale("log")
        ax.set_title(text)
    axes[0].legend(fontsize=6)
    _suptitle(fig, "NTK drift during training per input (GD solid, Adam dashed; mean over seeds)")
    fig.tight_layout()
    return fig


def init_kernel_figure(views: dict[str, InputView], t: np.ndarray) -> Figure:
    """``Θ₀`` per input (gradient-descent runs, seed 0): its normalised spectrum ``λ_i/λ_1``, the
    target's alignment ``A_k(y)`` (energy fraction in the top ``k`` eigenvectors; a kernel whose top
    modes hold the target fits it fast in the linearised regime), and its top eigenvectors as signals
    over ``t`` -- smooth, low-frequency modes for raw inputs, oscillating ones under an encoding."""
    gd = {k.split("/", 1)[1]: v.trajectories[0] for k, v in views.items() if k.startswith("gd/")}
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


def analyse(params: KernelStudy, runs: Runs) -> ExperimentResult:
    """X5: per-group summary, the per-run kernel view, per-input tables, figures and findings."""
    result = make_analysis("X5", (), {}, key=_key, order=lambda p: p.group_keys())(params, runs)
    usable = sorted(((cfg, d) for cfg, d in runs if d.meta["diverged_at"] is None), key=lambda p: p[0].seed)
    views: dict[str, InputView] = {}
    seeds: dict[str, list[int]] = {}
    freqs = np.zeros(0, dtype=np.int64)
    for key in params.group_keys():
        members = [(cfg, d) for cfg, d in usable if _key(cfg) == key]
        if members:
            with kernel_threads(params.signal.n):
                views[key] = InputView([trajectory(cfg, d) for cfg, d in progress(members, f"X5 {key}")])
            seeds[key] = [cfg.seed for cfg, _ in members]
            freqs = members[0][1].arrays["signal/freqs"]
    table: dict[str, dict[str, dict]] = {}
    for key, view in views.items():
        opt, label = key.split("/", 1)
        entry = view.entry()
        table.setdefault(opt, {})[label] = entry
        result.summary["inputs"][key].update({"departure_step": entry["departure_step"], "eta": entry["eta"]})
        result.rows += _rows(key, seeds[key], view, freqs)
        result.arrays.update(_arrays(key, view))
    result.arrays["freqs"] = freqs
    result.summary["kernel"] = table
    result.summary["tolerances"] = {"departure": DEPARTURE_TOL, "material": MATERIAL, "top_k": TOP_K}
    for opt in ("gd", "adam"):
        group = {k: v for k, v in views.items() if k.startswith(f"{opt}/")}
        if group:
            entries = {k: table[opt][k.split("/", 1)[1]] for k in group}
            frac = float(np.mean([e["eta_fraction_of_limit"] for e in entries.values()]))
            title = _OPT_TITLE[opt].format(f=frac)
            result.figures[f"{opt}_prediction_vs_measured"] = overlay_figure(group, entries, freqs, title)
            result.figures[f"{opt}_departure_lineup"] = lineup_figure(group, entries, title)
    if views:
        result.figures["ntk_drift"] = drift_figure(views)
        if any(k.startswith("gd/") for k in views):
            result.figures["kernel_at_init"] = init_kernel_figure(views, params.signal.build(0).t.reshape(-1))
            for key, view in views.items():
                result.arrays[f"init_eigvals/{key}"] = view.stack("eigvals0")
                result.arrays[f"init_alignment/{key}"] = view.stack("alignment0")
                result.arrays[f"init_modes/{key}"] = view.stack("modes0")
    result.findings += kernel_findings(table)
    return result


# --------------------------------------------------------------------------- registry

X5_PAPER = KernelStudy()
X5_QUICK = KernelStudy(signal=ToneMixture(n=256), gd_steps=600, seeds=1)

KERNEL_EXPERIMENTS = (
    Experiment.of(
        id="X5",
        title="Theory vs observed: kernel prediction from Θ₀ against real GD and Adam dynamics (1D)",
        claim="The NTK at initialisation does not capture the real network's dynamics; where the prediction "
        "departs, the kernel and the activation regions have changed.",
        quick=X5_QUICK,
        paper=X5_PAPER,
        analyse=analyse,
    ),
)
