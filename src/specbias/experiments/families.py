"""X8: the paper's mechanism across today's INR families, at matched parameter count.

Every family of :mod:`specbias.families` (ReLU on raw, PE and RFF inputs; SIREN; FINER; Gaussian;
real-Gabor WIRE; hash grid + ReLU) trains on the paper's 1D tone target and on one photograph, with
its paper's learning rate, sized to one parameter budget. Each run records per-frequency (1D) or
per-radial-band (2D) convergence, local and global gradient confusion at initialisation and during
training, Θ₀'s spectrum and its alignment with the target's high band, and region counts and Hamming
distances where activation patterns exist. The claims ask whether the paper's explanation -- low
local confusion goes with fast high frequencies -- orders the families, and whether Θ₀ orders them
the same way. Protocol, parameter table and measured numbers: ``docs/experiments/X8.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from matplotlib.figure import Figure

from specbias import figures
from specbias._checks import check_int
from specbias.claims import AllOf, Claim, Compare, RankCorrelation, SeedTable
from specbias.encodings import parse_input
from specbias.experiments.analysis import Groups, Part, make_analysis
from specbias.experiments.base import Experiment, check_study
from specbias.experiments.params import Overridable
from specbias.families import FINER, SIREN, Family, Gabor, GaussianINR, HashGridMLP, ReLUMLP, match_width
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import (
    BandSpec,
    ConfusionSpec,
    ConvergenceSpec,
    HammingSpec,
    KernelSpec,
    PairSpec,
    PatchPairSpec,
    ProbeSpec,
    RegionSpec,
    RunConfig,
    RunData,
    signal_dim,
)
from specbias.signals import NaturalImage, ToneMixture
from specbias.thresholds import threshold
from specbias.training import Schedule, TrainConfig

HIGH_SHARE = 1 / 3
"""The high band: the top third of the target's tones (1D) or radial bands (2D)."""
KERNEL_SHARE = 16
"""Claim (c) reads the high band's energy share in Θ₀'s top ``N / KERNEL_SHARE`` eigenvectors."""


# --------------------------------------------------------------------------- what is compared


@dataclass(frozen=True)
class Entry:
    """One compared network: a family (its width is set by the budget) fed the input ``input``;
    ``baseline`` names the entry it is the encoded counterpart of (claim (b)), if any."""

    name: str
    family: Family
    input: str
    baseline: str | None = None


@dataclass(frozen=True)
class Variant:
    """The group of a run: an entry on the 1D (``dim = 1``) or the 2D target."""

    name: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name} ({self.dim}D)"


@dataclass(frozen=True)
class Target:
    """One target and how its runs are probed: the signal, the entries (per dimension their inputs
    differ), the epochs, the pair sampler and the convergence probe's checkpoint spacing."""

    signal: ToneMixture | NaturalImage
    entries: tuple[Entry, ...]
    epochs: int
    pairs: PairSpec | PatchPairSpec
    every: int

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs)

    @property
    def dim(self) -> int:
        return signal_dim(self.signal)

    @property
    def out_dim(self) -> int:
        return 1 if self.dim == 1 else self.signal.channels

    @property
    def confusion_epochs(self) -> tuple[int, ...]:
        """Initialisation, early (a tenth of the budget), half-way and the last epoch."""
        return tuple(sorted({0, self.early, self.epochs // 2, self.epochs - 1}))

    @property
    def early(self) -> int:
        """The confusion checkpoint that claim (a) calls early in training: a tenth of the epochs."""
        return max(1, self.epochs // 10)

    @property
    def n_points(self) -> int:
        return self.signal.n if self.dim == 1 else self.signal.size**2

    @property
    def kernel_modes(self) -> int:
        """``k`` of the alignment ``A_k`` claim (c) reads: Θ₀'s top ``N/16`` modes (64 of 1,024 points)."""
        return max(1, self.n_points // KERNEL_SHARE)


def entries(depth: int, rff: str, pe: str, grid: HashGridMLP) -> tuple[Entry, ...]:
    """The compared networks at one depth: ReLU on raw ``[0,1)``, PE and RFF inputs; the periodic
    and localised families on ``[-1, 1)`` (Sitzmann et al.'s grid); the hash grid on ``[0, 1)``."""
    return (
        Entry("ReLU raw", ReLUMLP(width=1, depth=depth), "raw01"),
        Entry("ReLU PE", ReLUMLP(width=1, depth=depth), pe, baseline="ReLU raw"),
        Entry("ReLU RFF", ReLUMLP(width=1, depth=depth), rff, baseline="ReLU raw"),
        Entry("SIREN", SIREN(width=1, depth=depth), "raw11"),
        Entry("FINER", FINER(width=1, depth=depth), "raw11"),
        Entry("Gaussian", GaussianINR(width=1, depth=depth), "raw11"),
        Entry("WIRE", Gabor(width=1, depth=depth), "raw11"),
        Entry("hash grid", grid, "raw01", baseline="ReLU raw"),
    )


@functools.lru_cache(maxsize=256)
def sized(family: Family, in_dim: int, out_dim: int, budget: int) -> Family:
    """``family`` at the width that brings it closest to ``budget`` parameters (cached: planning
    sizes every entry once)."""
    return match_width(family, in_dim, out_dim, budget)


@dataclass(frozen=True)
class FamilyStudy(Overridable):
    """X8's parameters: the two targets, the parameter budget every network is sized to, seeds."""

    tones: Target
    image: Target
    budget: int
    seeds: int = 3

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {"epochs": ("tones.epochs", "image.epochs")}

    def __post_init__(self) -> None:
        check_study(["raw01"], budget=self.budget, seeds=self.seeds)

    @property
    def targets(self) -> tuple[Target, ...]:
        return (self.tones, self.image)

    def target(self, dim: int) -> Target:
        return self.tones if dim == 1 else self.image

    @property
    def variants(self) -> list[Variant]:
        """Every group, in the order figures and claims list them."""
        return [Variant(e.name, t.dim) for t in self.targets for e in t.entries]

    def variant(self, cfg: RunConfig) -> Variant:
        """The group of a run: the entry of its target with the run's family and input."""
        target = self.target(signal_dim(cfg.signal))
        name = cfg.network().NAME
        entry = next(e for e in target.entries if e.input == cfg.input and name == e.family.NAME)
        return Variant(entry.name, target.dim)

    def table(self) -> list[dict[str, Any]]:
        """The parameter-matching table: every entry's family, input, size, parameters and learning rate."""
        rows = []
        for target in self.targets:
            for entry in target.entries:
                family = self.network(target, entry)
                enc = parse_input(entry.input, in_dim=target.dim, convention=f"{target.dim}d")
                rows.append(
                    {
                        "target": f"{target.dim}D",
                        "network": entry.name,
                        "family": family.NAME,
                        "input": entry.input,
                        "depth": family.depth,
                        "width": family.width,
                        "params": family.n_params(enc.out_dim, target.out_dim),
                        "lr": family.LR,
                        "lr_source": family.LR_SOURCE,
                    }
                )
        return rows

    def network(self, target: Target, entry: Entry) -> Family:
        """The entry's family sized to the budget for this target's input and output dimensions."""
        enc = parse_input(entry.input, in_dim=target.dim, convention=f"{target.dim}d")
        return sized(entry.family, enc.out_dim, target.out_dim, self.budget)

    def probes(self, target: Target, family: Family) -> tuple[ProbeSpec, ...]:
        """Confusion before the update at :attr:`Target.confusion_epochs`, convergence (tones or
        bands) every ``target.every`` epochs, Θ₀, and regions and Hamming distances where patterns exist."""
        checkpoints = Schedule(explicit=target.confusion_epochs)
        spectral = (
            ConvergenceSpec(Schedule(every=target.every, last=True))
            if target.dim == 1
            else BandSpec(Schedule(every=target.every, last=True))
        )
        probes: list[ProbeSpec] = [
            ConfusionSpec(checkpoints, target.pairs, before_update=True),
            spectral,
            KernelSpec(Schedule(explicit=(0,)), top=target.kernel_modes, high_share=HIGH_SHARE),
        ]
        if family.piecewise_linear:
            ends = Schedule(explicit=(0, target.epochs - 1))
            probes += [RegionSpec(ends), HammingSpec(ends, target.pairs)]
        return tuple(probes)

    def runs(self, seeds: int) -> list[RunConfig]:
        out = []
        for target in self.targets:
            for entry in target.entries:
                family = self.network(target, entry)
                for seed in range(seeds):
                    out.append(
                        RunConfig(
                            signal=target.signal,
                            input=entry.input,
                            width=family.width,
                            depth=family.depth,
                            train=TrainConfig(epochs=target.epochs, lr=family.LR),
                            probes=self.probes(target, family),
                            seed=seed,
                            family=family,
                        )
                    )
        return out


def profile(
    n: int,
    side: int,
    depth: int,
    rff_m: str,
    levels: int,
    log2_table: int,
    budget: int,
    epochs: int,
    global_2d: int,
    seeds: int,
) -> FamilyStudy:
    """A profile: the tones on ``n`` samples and the ``camera`` photograph at ``side``², networks of
    ``depth`` sized to ``budget``, RFF with the label suffix ``rff_m`` (``""``: m = 256), hash grids
    of ``levels`` × ``2^log2_table`` rows (finest resolution N/2 in 1D, the side in 2D), checkpoints
    every ``epochs/50``."""

    def grid(base: int, finest: int) -> HashGridMLP:
        return HashGridMLP(
            width=1,
            depth=2,
            levels=levels,
            log2_table_size=log2_table,
            features=2,
            base_resolution=base,
            finest_resolution=finest,
        )

    every = max(1, epochs // 50)
    tones = Target(
        ToneMixture(n=n),
        entries(depth, f"rff20{rff_m}", "pe6", grid(8, n // 2)),
        epochs,
        PairSpec(25, 100, 5000),
        every,
    )
    image = Target(
        NaturalImage("camera", size=side, channels=1),
        entries(depth, f"rff5{rff_m}", "pe5", grid(4, side)),
        epochs,
        PatchPairSpec(patches=100, global_pairs=global_2d),
        every,
    )
    return FamilyStudy(tones=tones, image=image, budget=budget, seeds=seeds)


X8_QUICK = profile(
    1024, 32, 3, "x64", levels=8, log2_table=8, budget=8513, epochs=300, global_2d=5000, seeds=3
)
"""Quick: MLP-3×64's 8,513 parameters, 1,024 tone samples and a 32² photograph, RFF with 32
frequencies, 300 epochs, 3 seeds."""
X8_STANDARD = dataclasses.replace(X8_QUICK, seeds=5)
"""Standard: the quick sizes with 5 seeds."""
X8_PAPER = profile(
    2048, 64, 4, "", levels=16, log2_table=10, budget=49921, epochs=2000, global_2d=10000, seeds=5
)
"""Paper scale (a GPU run): MLP-4×128's 49,921 parameters (the paper's network), the paper's 2,048
tone samples, a 64² photograph, RFF with m = 256, 2,000 epochs, 5 seeds."""


# --------------------------------------------------------------------------- per-seed quantities


def high_band_curves(d: RunData) -> tuple[np.ndarray, np.ndarray]:
    """``(checkpoint labels, checkpoints × high units)``: the relative error of the top third of the
    tones (1D), or ``√(relative residual energy)`` of the top third of the radial bands (2D, so that
    both read as a relative residual amplitude)."""
    if d.has("convergence"):
        epochs, rel = d.get("convergence", "epochs"), d.get("convergence", "rel_error")
    else:
        epochs, rel = d.get("bands", "epochs"), np.sqrt(d.get("bands", "rel_energy"))
    keep = math.ceil(HIGH_SHARE * rel.shape[1])
    return epochs, rel[:, -keep:]


def all_units_curve(d: RunData) -> np.ndarray:
    """The mean relative error over every tone (1D) or band (2D) at each checkpoint."""
    rel = d.get("convergence", "rel_error") if d.has("convergence") else np.sqrt(d.get("bands", "rel_energy"))
    return np.nanmean(rel, axis=1)


def high_band_auc(d: RunData) -> float:
    """Claim (a)'s speed: the high band's mean relative error averaged over the checkpoints (evenly
    spaced in epochs), i.e. the area under its curve per epoch -- 0 if learned at once, 1 if never."""
    return float(np.nanmean(high_band_curves(d)[1]))


def high_band_epochs(d: RunData) -> float:
    """Epochs trained (checkpoint label + 1) until every high unit is below ``rel_err``; NaN if some
    never got there within the budget."""
    hits = first_epoch_below(*high_band_curves(d), threshold("rel_err").value)
    return float("nan") if any(h is None for h in hits) else float(max(hits) + 1)


def local_confusion(d: RunData, kind: str, epoch: int) -> float:
    """Mean |cos| of the ``kind`` pairs' loss gradients at the confusion checkpoint ``epoch``."""
    index = int(np.flatnonzero(d.get("confusion", "epochs") == epoch)[0])
    return float(np.nanmean(np.abs(d.get("confusion", f"{kind}_cos")[index])))


def seed_quantities(d: RunData, early: int) -> dict[str, float]:
    """Every per-seed number X8's claims read (``early``: the early confusion checkpoint)."""
    out = {
        "hf_auc": high_band_auc(d),
        "hf_err_last": float(np.nanmean(high_band_curves(d)[1][-1])),
        "hf_epochs": high_band_epochs(d),
        "ntk_rate_high": float(d.get("ntk", "rate_high")[0]),
        "ntk_rate": float(d.get("ntk", "rate")[0]),
        "ntk_align_high": float(d.get("ntk", "align_high")[0][-1]),
    }
    for kind in ("local", "global"):
        out[f"conf_{kind}_init"] = local_confusion(d, kind, 0)
        out[f"conf_{kind}_early"] = local_confusion(d, kind, early)
    return out


# --------------------------------------------------------------------------- claims


def family_claims(target: Target) -> list[Claim]:
    """(a) local |confusion| early in training (and at initialisation) against the high band's speed,
    across the families; (b) each encoded entry against its raw baseline; (c) Θ₀'s high-band alignment
    against the same speed, and against local confusion's ordering."""
    where, early, modes = f"{target.dim}D", target.early, target.kernel_modes
    over = [Variant(e.name, target.dim) for e in target.entries]
    speed = "faster high-frequency convergence (a lower high-band error averaged over training)"
    claims: list[Claim] = [
        RankCorrelation(
            text=f"{where}: across families, lower local |confusion| after {early} epochs goes with {speed}",
            reads="conf_local_early", against="hf_auc", over=over,
        ),
        RankCorrelation(
            text=f"{where}: across families, lower local |confusion| at initialisation goes with {speed}",
            reads="conf_local_init", against="hf_auc", over=over,
        ),
        RankCorrelation(
            text=f"{where}: across families, more of the high band in Θ₀'s top {modes} eigenvectors goes "
            f"with {speed}",
            reads="ntk_align_high", against="hf_auc", over=over, negative=True,
        ),
        RankCorrelation(
            text=f"{where}: Θ₀'s high-band alignment (top {modes} modes) orders the families as local "
            f"|confusion| after {early} epochs does (more aligned, less confused)",
            reads="ntk_align_high", against="conf_local_early", over=over, negative=True,
        ),
    ]  # fmt: skip
    for entry in target.entries:
        if entry.baseline is None:
            continue
        enc, raw = Variant(entry.name, target.dim), Variant(entry.baseline, target.dim)
        claims.append(
            AllOf(
                text=f"{where}: {entry.name} against {entry.baseline} (the paper's contrast): the encoding "
                f"lowers local |confusion| after {early} epochs and converges the high band faster",
                parts=[
                    Compare(text=f"{where}: local |confusion|, {entry.name} < {entry.baseline}",
                            reads="conf_local_early", a=enc, b=raw, relation="<"),
                    Compare(text=f"{where}: high-band error over training, {entry.name} < {entry.baseline}",
                            reads="hf_auc", a=enc, b=raw, relation="<"),
                ],
            )
        )  # fmt: skip
    return claims


# --------------------------------------------------------------------------- parts


def _by_dim(groups: Groups, dim: int) -> dict[Variant, list[RunData]]:
    return {k: v for k, v in groups.items() if isinstance(k, Variant) and k.dim == dim}


def quantities_part(params: FamilyStudy) -> Any:
    """Per-seed quantities of every group (rows and the seed table), the claims of each target and
    the figure they read."""

    def part(exp: str, groups: Groups, summary: dict) -> Part:
        out = Part()
        for target in params.targets:
            for variant, datas in _by_dim(groups, target.dim).items():
                per_seed = [seed_quantities(d, target.early) for d in datas]
                for quantity in per_seed[0]:
                    out.table.put(
                        variant, quantity, {d.meta["seed"]: q[quantity] for d, q in zip(datas, per_seed)}
                    )
                for d, q in zip(datas, per_seed):
                    epoch = int(d.get("train", "loss").size - 1)
                    out.rows += [(exp, str(variant), d.meta["seed"], epoch, m, "", v) for m, v in q.items()]
            if variants := list(_by_dim(groups, target.dim)):
                out.figures[f"ordering_{target.dim}d"] = ordering_figure(out.table, variants, target.dim)
            out.claims += family_claims(target)
        return out

    return part


def _series(datas: Sequence[RunData], fn: Any) -> np.ndarray:
    return np.stack([fn(d) for d in datas])


def convergence_part(exp: str, groups: Groups, summary: dict) -> Part:
    """High-band and all-unit relative error over training, per target (mean ± std over seeds)."""
    out = Part()
    for dim, unit in ((1, "tones"), (2, "radial bands")):
        variants = _by_dim(groups, dim)
        if not variants:
            continue
        epochs = high_band_curves(next(iter(variants.values()))[0])[0]
        series = {}
        for variant, datas in variants.items():
            high = _series(datas, lambda d: np.nanmean(high_band_curves(d)[1], axis=1))
            every = _series(datas, all_units_curve)
            series[variant.name] = {"high band (top third)": high, f"all {unit}": every}
            out.arrays[f"high_band/{variant}"], out.arrays[f"all_units/{variant}"] = high, every
        out.arrays[f"convergence_epochs/{dim}d"] = epochs
        out.figures[f"convergence_{dim}d"] = figures.mean_std_curves(
            epochs + 1, series, "relative error", f"{dim}D: convergence by family (epochs trained)",
            panel_title="{}", logy=True,
        )  # fmt: skip
    return out


def confusion_part(exp: str, groups: Groups, summary: dict) -> Part:
    """Mean |cos| of local and global pairs' loss gradients at the confusion checkpoints."""
    out = Part()
    for dim in (1, 2):
        variants = _by_dim(groups, dim)
        if not variants:
            continue
        epochs = next(iter(variants.values()))[0].get("confusion", "epochs")
        series = {}
        for variant, datas in variants.items():
            series[variant.name] = {}
            for kind in ("local", "global"):
                curves = _series(
                    datas, lambda d, k=kind: np.nanmean(np.abs(d.get("confusion", f"{k}_cos")), axis=1)
                )
                series[variant.name][kind] = curves
                out.arrays[f"cos_{kind}_abs/{variant}"] = curves
        out.arrays[f"confusion_epochs/{dim}d"] = epochs
        out.figures[f"confusion_{dim}d"] = figures.mean_std_curves(
            epochs,
            series,
            "mean |cos(∇ℓᵢ, ∇ℓⱼ)|",
            f"{dim}D: gradient confusion by family (before the epoch's update)",
        )
    return out


def kernel_figure(variants: dict[Variant, list[RunData]], dim: int) -> Figure:
    """Θ₀'s normalised top eigenvalues ``λ_k/λ_1`` and the high band's alignment ``A_k`` per family."""
    axes = figures.panel_grid(2, 5.5, 3.8)
    palette = figures.colors([v.name for v in variants])
    for variant, datas in variants.items():
        eig = _series(datas, lambda d: d.get("ntk", "eigvals")[0] / d.get("ntk", "eigvals")[0][0])
        align = _series(datas, lambda d: d.get("ntk", "align_high")[0])
        k = np.arange(1, eig.shape[1] + 1)
        axes[0].plot(k, eig.mean(0), color=palette[variant.name], label=variant.name)
        axes[1].plot(k, align.mean(0), color=palette[variant.name], label=variant.name)
    axes[0].set(xscale="log", yscale="log", xlabel="k", ylabel="λ_k / λ_1", title="Θ₀ spectrum")
    axes[1].set(
        xscale="log", xlabel="k", ylabel="A_k(high band)", title="high band's energy in the top k modes"
    )
    axes[0].legend(fontsize=7)
    fig = axes[0].figure
    fig.suptitle(f"{dim}D: the empirical NTK at initialisation (mean over seeds)")
    fig.tight_layout()
    return fig


def ordering_figure(table: SeedTable, variants: Sequence[Variant], dim: int) -> Figure:
    """Each family's high-band error over training against its local |confusion| after the early
    checkpoint and against Θ₀'s high-band alignment (mean ± std over seeds): claims (a) and (c)."""
    axes = figures.panel_grid(2, 5.0, 4.0)
    palette = figures.colors([v.name for v in variants])
    for ax, reads, xlabel in (
        (axes[0], "conf_local_early", "local |confusion| early in training"),
        (axes[1], "ntk_align_high", "Θ₀ high-band alignment A_k (top N/16 modes)"),
    ):
        for v in variants:
            xs, ys = table.get(v, reads), table.get(v, "hf_auc")
            if not xs or not ys:
                continue
            x, y = np.array(list(xs.values())), np.array(list(ys.values()))
            ax.errorbar(
                x.mean(), y.mean(), xerr=x.std(), yerr=y.std(), fmt="o", color=palette[v.name], label=v.name
            )
        ax.set(xlabel=xlabel, ylabel="high-band error averaged over training")
    axes[0].legend(fontsize=7)
    fig = axes[0].figure
    fig.suptitle(f"{dim}D: what orders the families' high-frequency speed")
    fig.tight_layout()
    return fig


def kernel_part(exp: str, groups: Groups, summary: dict) -> Part:
    """Θ₀'s spectrum and the high band's alignment, per target."""
    out = Part()
    for dim in (1, 2):
        if variants := _by_dim(groups, dim):
            out.figures[f"ntk_{dim}d"] = kernel_figure(variants, dim)
            for variant, datas in variants.items():
                out.arrays[f"ntk_eigvals/{variant}"] = _series(datas, lambda d: d.get("ntk", "eigvals")[0])
                out.arrays[f"ntk_align_high/{variant}"] = _series(
                    datas, lambda d: d.get("ntk", "align_high")[0]
                )
    return out


def analyse(params: FamilyStudy, runs: Sequence[tuple[RunConfig, RunData]]) -> Any:
    """The shared analysis keyed by :class:`Variant`, X8's parts, and the parameter table."""
    parts = {
        "quantities": quantities_part(params),
        "convergence": convergence_part,
        "confusion": confusion_part,
        "kernel": kernel_part,
    }
    result = make_analysis("X8", tuple(parts), parts, key=params.variant, order=lambda p: p.variants)(
        params, runs
    )
    result.summary["inputs"] = {str(k): v for k, v in result.summary["inputs"].items()}
    result.summary["networks"] = params.table()
    return result


X8 = Experiment.of(
    "X8",
    "INR families at matched parameters",
    "Across ReLU (raw, PE, RFF), SIREN, FINER, Gaussian, WIRE and hash-grid networks, lower local gradient "
    "confusion goes with faster high frequencies, and Θ₀ orders the families the same way.",
    quick=X8_QUICK,
    standard=X8_STANDARD,
    paper=X8_PAPER,
    analyse=analyse,
)
FAMILY_EXPERIMENTS = (X8,)
