"""Exact region geometry of trained networks (issue 7): E13 inspheres, E14 cross-sections, X4 spatial
information.

Every network here is a trained run: the run configs carry a
:class:`~specbias.runs.SnapshotSpec`, the runner trains (or loads) them once, and the analysis rebuilds the
network at each snapshot with :func:`~specbias.runs.model_at` (float64, the float32 weights exactly) and
measures its geometry. Findings are computed from the data and reported whichever way they come out.

E13 -- inscribed spheres (spec §1.8, E13)
-----------------------------------------
Chebyshev radius of the region holding a sample point of the PE network's input space ``ℝ^{4L}``,
intersected with ``[−1, 1]^{4L}`` (:mod:`specbias.metrics.inspheres`, HiGHS LPs), after 1 epoch and after
the last: the paper's first-layer cell of an off-manifold point ``p ~ U[−1, 1]^{4L}``, and the two
extensions the spec asks for -- on-manifold points ``p = γ(t)``, ``t ~ U[0, 1)²``, and the full activation
region (every layer's local linear constraints). The same points are used at both checkpoints (drawn from
the run's ``inspheres:<sampler>`` stream). Figure: KDEs of ``log₁₀ r`` per L. Findings (off-manifold
first layer): the median radius increases with L at both checkpoints; the interquartile range of ``r``
too (the distributions broaden; the detail also gives IQR/median, the width on the figure's log scale);
every L's median moves by at most :data:`SAME_RADIUS` between the checkpoints; the highest L's right
tail is heavier after training (its 90th percentile relative to its median, a shape measure that a mere
rescaling of every radius leaves unchanged, grows); extensions: on-manifold first-layer and off-manifold
full-depth medians increase with L, and training widens the highest L's full regions (E12's claim, seen
through inspheres).

E14 -- cross-sections (spec §1.8, E14)
--------------------------------------
Region maps of the trained network on the plane through the first two ("low") or last two ("high") input
slots, first layer or all layers (:mod:`specbias.metrics.sections`), on the ``S × S`` grid -- the paper's
grid count -- and the exact polygonal partition of the plane, side by side with a ``saturated`` flag.
Findings: at the lowest L every all-layer slice is a fine tessellation (no region covers more than
:data:`FINE_SHARE` of it); at the highest L one region covers at least :data:`LARGE_SHARE` of each
all-layer slice, and more than at the lowest L; the grid misses regions of the all-layer slices.

X4 -- spatial information of the signal (extension)
---------------------------------------------------
1D targets whose local frequency varies (:class:`~specbias.signals.Chirp` from 5 to 70 cycles,
:class:`~specbias.signals.Burst`: a 5-cycle tone with a 60-cycle burst on ``[0.375, 0.625]``), raw and PE
inputs, full-batch Adam. At every snapshot: the exact regions along ``[0, 1]``
(:func:`~specbias.metrics.regions.exact_regions_1d`), their density in sliding windows
(:func:`~specbias.metrics.regions.piece_density`, breakpoints per unit length), the target's local
frequency and the **local relative error** in the same windows,
``e(c) = sqrt(Σ_{t_n ∈ win(c)} (f(t_n) − y_n)² / Σ_{t_n ∈ win(c)} y_n²)`` (1 for ``f = 0``, 0 for a perfect
fit: the windowed analogue of the per-frequency relative error of Rahaman et al. 2019), and the grid
count on the N training points next to the exact count. Where do regions go, and does convergence follow
them? Findings, on seed-mean curves over the windows, with Spearman's ρ: regions concentrate where the
local frequency is high (ρ(density, f_loc) ≥ :data:`RHO` at the end and above its first value); local
convergence follows the regions at equal local frequency (the partial ρ(density, e | f_loc) ≤ −:data:`RHO`,
:func:`partial_rank_corr`; the plain ρ(pieces per local period, e) would hold whenever e grows with f_loc,
even with regions spread evenly, since pieces per period is then a falling function of f_loc); with raw
input the spectral bias is local (ρ(e, f_loc) ≥ :data:`RHO`); PE fits the highest-frequency quarter of the
windows better than raw; the N-point grid misses PE regions.

Profiles
--------
``paper`` (a GPU job for training; the LPs run on one CPU core): E13 on the natural-image suite at the
reference scale (five 512² images, MLP-4×512, batch 8,192, 2,500 epochs, L ∈ {4, 8, 12, 16, 20}),
1,000 first-layer LPs per (image, L, checkpoint, sampler), the spec's count, and
:attr:`RegionGeometry.deep_samples` = 100 full-depth ones (measured at d = 80, width 512: ~0.1 s per
LP either way with the cutting planes, 0.35 s for a full-depth LP with all 2,048 rows), so about
10⁵ LPs, one to three hours of analysis (the LPs grow with L); E14 on image 0 at L ∈ {4, 16} on
the 512² slice grid; X4 at N = 2048 with MLP-4×128, raw ``[0,1)``, raw ``[-1,1)``, PE "L=3" and
"L=6", 1,000 epochs, 5 seeds, 10 log-spaced snapshots.

``quick`` (each ``specbias run`` in about 40 s on 2 cores): E13/E14 use the natural-image quick suite's
setting (64² astronaut, MLP-4×128, batch 512) trained for 100 epochs (800 steps; a run takes
5-10 s here, and the first-layer radii are the paper's "barely change" quantity), one image, L ∈ {2, 4, 8}
(8-, 16-, 32-d: three values for a monotone trend; LPs cost ~4-8 ms each, so 200 first-layer and 40
full-depth points per checkpoint and sampler take about 15 s), and E14 L ∈ {2, 8} on image 0 (so the
runs are E13's) on a 256² grid (an exact all-layer partition of a 4×128 net is ~10⁴ polygons, ~2 s).
X4 uses N = 1024, MLP-4×128, raw ``[0,1)`` and PE "L=3" (the exact PE count costs ~0.3-1 s per
snapshot here, seven octaves ~3 s), 200 full-batch epochs (a run is compute-bound: ~4 s), 2 seeds, 6
snapshots (after epochs 0, 2, 7, 23, 68, 199): by then raw input has fitted the low-frequency part and
PE most of the target, so the regions have moved.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from specbias import figures
from specbias.encodings import Encoding
from specbias.errors import ConfigError
from specbias.experiments.analysis import Runs, by_group, encoding_rank, make_analysis, one_thread, progress
from specbias.experiments.base import Experiment, ExperimentResult, Finding, check_study
from specbias.experiments.density import rank_corr
from specbias.experiments.study2d import NATURAL_PAPER, NATURAL_QUICK, Study2D
from specbias.metrics.inspheres import LAYERS, inspheres, off_manifold_points, on_manifold_points
from specbias.metrics.regions import exact_regions_1d, grid_vs_exact_1d, piece_density
from specbias.metrics.sections import SLICES, Section, section
from specbias.runs import RunConfig, RunData, SnapshotSpec, model_at
from specbias.seeding import rng_for
from specbias.signals import Burst, Chirp
from specbias.training import Schedule, TrainConfig

SNAPSHOTS = SnapshotSpec(Schedule(explicit=(0,), last=True), before_update=False)
"""E13/E14: the parameters after the first epoch and after the last (spec §1.9: "after")."""
SAMPLERS = ("off", "on")
PAPER = "first/off"
"""E13's own measure: first-layer cells of off-manifold points."""
SAME_RADIUS = 0.1
"""E13: a median radius that moves by at most this fraction between the checkpoints "barely changes"."""
FINE_SHARE = 0.01
"""E14: a slice is a *fine tessellation* when no exact region covers more than this share of it."""
LARGE_SHARE = 0.1
"""E14: a region covering at least this share of a slice is a *large uniform region*."""
RHO = 0.5
"""X4: a rank correlation at least this strong (in the claimed direction) counts as a relation."""

# --------------------------------------------------------------------------- shared


def _usable(runs: Runs, key: Any) -> tuple[dict[str, list[RunData]], dict[str, RunConfig]]:
    """Finished runs by group, diverged ones left out, and each run's config by its key."""
    groups = {k: [d for d in v if d.meta["diverged_at"] is None] for k, v in by_group(runs, key).items()}
    return {k: v for k, v in groups.items() if v}, {c.key(): c for c, _ in runs}


def _pe_order(labels: Sequence[str]) -> list[str]:
    return sorted(labels, key=encoding_rank)


def _increasing(values: Sequence[float]) -> bool:
    return bool(np.all(np.diff(np.asarray(values, dtype=np.float64)) > 0))


def _series(labels: Sequence[str], values: Sequence[float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in zip(labels, values))


def _checkpoint(epoch: int) -> str:
    return f"after {epoch + 1} epoch" + ("" if epoch == 0 else "s")


# --------------------------------------------------------------------------- E13 / E14 parameters


@dataclass(frozen=True)
class RegionGeometry:
    """E13/E14 parameters: the image study that trains the networks (its probes: :data:`SNAPSHOTS`) and
    the geometry measured on them."""

    study: Study2D
    samples: int = 200
    deep_samples: int = 40
    section_size: int = 512

    OVERRIDES: ClassVar[tuple[str, ...]] = Study2D.OVERRIDES

    def __post_init__(self) -> None:
        check_study(
            self.study.inputs, in_dim=2, convention="2d", samples=self.samples, deep_samples=self.deep_samples
        )
        if not all(encoding_rank(label)[0] == 1 for label in self.study.inputs):
            raise ConfigError(
                f"E13/E14 measure PE networks; inputs must be pe<L>, got {list(self.study.inputs)}"
            )
        size = self.section_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise ConfigError(f"section grid size must be an integer >= 2, got {size!r}")

    @property
    def seeds(self) -> int:
        return self.study.seeds

    def override(self, **changes: Any) -> RegionGeometry:
        """A copy with the image study's overrides (epochs, lr, width, depth, size, images, inputs, mode)."""
        return dataclasses.replace(self, study=self.study.override(**changes))

    def runs(self, seeds: int) -> list[RunConfig]:
        return self.study.runs(seeds)


def _geometry(study: Study2D, inputs: tuple[str, ...], epochs: int, seeds: int) -> Study2D:
    return dataclasses.replace(
        study,
        inputs=inputs,
        train=dataclasses.replace(study.train, epochs=epochs),
        probes=(SNAPSHOTS,),
        seeds=seeds,
    )


E13_QUICK = RegionGeometry(_geometry(NATURAL_QUICK, ("pe2", "pe4", "pe8"), 100, 1))
E13_PAPER = RegionGeometry(
    _geometry(NATURAL_PAPER, ("pe4", "pe8", "pe12", "pe16", "pe20"), 2500, 5), samples=1000, deep_samples=100
)
E14_QUICK = dataclasses.replace(
    E13_QUICK, study=dataclasses.replace(E13_QUICK.study, inputs=("pe2", "pe8")), section_size=256
)
E14_PAPER = dataclasses.replace(
    E13_PAPER, study=dataclasses.replace(E13_PAPER.study, inputs=("pe4", "pe16"), seeds=1)
)


# --------------------------------------------------------------------------- E13 analysis


def run_radii(params: RegionGeometry, cfg: RunConfig, data: RunData) -> dict[str, np.ndarray]:
    """Radii of one run, ``"<layers>/<sampler>"`` → ``(checkpoints, points)``: the same points at every
    checkpoint, ``samples`` of them for the first layer and the first ``deep_samples`` for all layers."""
    enc = cfg.encoding()
    points = {
        "off": off_manifold_points(rng_for(cfg.seed, "inspheres:off"), params.samples, enc.out_dim),
        "on": on_manifold_points(rng_for(cfg.seed, "inspheres:on"), params.samples, enc),
    }
    out: dict[str, list[np.ndarray]] = {}
    for index in range(data.get("snapshot", "epochs").size):
        model = model_at(cfg, data, index)
        for layers, sampler in itertools.product(LAYERS, SAMPLERS):
            n = params.samples if layers == "first" else min(params.deep_samples, params.samples)
            out.setdefault(f"{layers}/{sampler}", []).append(
                inspheres(model, points[sampler][:n], layers).radii
            )
    return {k: np.stack(v) for k, v in out.items()}


def _stats(r: np.ndarray) -> dict[str, float]:
    q10, q25, q50, q75, q90 = np.nanquantile(r, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {"median": q50, "mean": float(np.nanmean(r)), "q10": q10, "q90": q90, "iqr": q75 - q25}


def _radius_figure(pooled: dict[str, dict[str, np.ndarray]], epochs: np.ndarray) -> Figure:
    """KDEs of ``log₁₀ r``: one panel per (region, sampler), a colour per L, solid after the first
    epoch and dashed after the last."""
    kinds = list(next(iter(pooled.values())))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.8), squeeze=False)
    palette = figures.colors(list(pooled))
    names = {
        "first": "first-layer cell",
        "all": "full activation region",
        "off": "p ~ U[−1,1]^d",
        "on": "p = γ(t)",
    }
    for ax, kind in zip(axes[0], kinds):
        logs = {k: np.log10(np.maximum(v[kind], 1e-300)) for k, v in pooled.items()}
        finite = np.concatenate([x[np.isfinite(x)].ravel() for x in logs.values()])
        grid = np.linspace(finite.min() - 0.3, finite.max() + 0.3, 300)
        for label, x in logs.items():
            for c, style in ((0, "-"), (-1, "--")):
                ax.plot(
                    grid,
                    figures.gaussian_kde(x[c], grid),
                    style,
                    color=palette[label],
                    label=f"{figures.input_title(label)}, {_checkpoint(int(epochs[c]))}",
                )
        layers, sampler = kind.split("/")
        ax.set_title(f"{names[layers]}, {names[sampler]}", fontsize=9)
        ax.set_xlabel("log₁₀ insphere radius")
        ax.set_ylabel("density")
    # outside the panels: at the paper's five L the ten entries would cover the curves
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Inscribed-sphere radii of activation regions (pooled over images)")
    fig.tight_layout()
    return fig


def _radius_findings(summary: dict[str, dict], labels: list[str], first: str, last: str) -> list[Finding]:
    """E13's findings (module docstring): trends over L need two inputs, changes need two checkpoints."""

    def stat(kind: str, ckpt: str, name: str = "median") -> list[float]:
        return [summary[k]["radius"][kind][ckpt][name] for k in labels]

    def both(name: str) -> str:
        return "; ".join(f"{c}: {_series(labels, stat(PAPER, c, name))}" for c in (first, last))

    out = []
    if len(labels) >= 2:
        out += [
            Finding(
                "the typical first-layer radius increases with L (median, off-manifold, both checkpoints)",
                _increasing(stat(PAPER, first)) and _increasing(stat(PAPER, last)),
                both("median"),
            ),
            Finding(
                "the radius distributions broaden as L grows (interquartile range of r, both checkpoints)",
                _increasing(stat(PAPER, first, "iqr")) and _increasing(stat(PAPER, last, "iqr")),
                # the figure's log scale shows the relative width, which a growing median alone can shrink
                f"{both('iqr')}; IQR/median at the last checkpoint: "
                + _series(labels, np.divide(stat(PAPER, last, "iqr"), stat(PAPER, last))),
            ),
        ]
        for kind, what in (("first/on", "on-manifold first-layer"), ("all/off", "off-manifold full-depth")):
            out.append(
                Finding(
                    f"(extension) the {what} median radius also increases with L ({last})",
                    _increasing(stat(kind, last)),
                    _series(labels, stat(kind, last)),
                )
            )
    if first == last:
        return out
    change = [abs(b / a - 1) for a, b in zip(stat(PAPER, first), stat(PAPER, last))]
    top = labels[-1]
    tail, full = summary[top]["radius"][PAPER], summary[top]["radius"]["all/off"]

    def tail_ratio(ckpt: str) -> float:
        return float(tail[ckpt]["q90"] / tail[ckpt]["median"])

    out += [
        Finding(
            f"first-layer radii barely change with training (median moves <= {SAME_RADIUS:.0%} for every L)",
            bool(max(change) <= SAME_RADIUS),
            "relative change of the median: " + _series(labels, change),
        ),
        Finding(
            f"after training the right tail is heavier at the highest L ({top}: 90th percentile / median "
            "grows)",
            bool(tail_ratio(last) > tail_ratio(first)),
            f"{tail_ratio(first):.4g} → {tail_ratio(last):.4g} (90th percentile {tail[first]['q90']:.4g} → "
            f"{tail[last]['q90']:.4g}, median {tail[first]['median']:.4g} → {tail[last]['median']:.4g})",
        ),
        Finding(
            f"(extension) training widens the full activation regions at the highest L ({top}, median)",
            bool(full[last]["median"] > full[first]["median"]),
            f"{full[first]['median']:.4g} → {full[last]['median']:.4g}",
        ),
    ]
    return out


def analyse_inspheres(params: RegionGeometry, runs: Runs) -> ExperimentResult:
    """E13: radii per (L, checkpoint, region, sampler), their KDEs, summary statistics and findings."""
    result = make_analysis("E13", (), {}, order=lambda p: p.study.inputs)(params, runs)
    groups, configs = _usable(runs, lambda c: c.input)
    labels = _pe_order(groups)
    if not labels:
        return result
    pooled: dict[str, dict[str, np.ndarray]] = {}
    epochs = np.zeros(0, dtype=np.int64)
    for label in labels:
        per_run = []
        for d in progress(groups[label], f"E13 inspheres {label}"):
            with one_thread():
                radii = run_radii(params, configs[d.meta["key"]], d)
            epochs = d.get("snapshot", "epochs")
            per_run.append(radii)
            for kind, r in radii.items():
                for c, epoch in enumerate(epochs):
                    result.rows += [
                        ("E13", label, d.meta["seed"], int(epoch), f"insphere_{kind.replace('/', '_')}", s, v)
                        for s, v in _stats(r[c]).items()
                    ]
        pooled[label] = {k: np.concatenate([r[k] for r in per_run], axis=1) for k in per_run[0]}
        stats = {}
        for kind, r in pooled[label].items():
            result.arrays[f"radius/{kind}/{label}"] = r
            stats[kind] = {_checkpoint(int(e)): _stats(r[c]) for c, e in enumerate(epochs)}
        result.summary["inputs"][label]["radius"] = stats
    result.arrays["epochs"] = epochs
    result.figures["inspheres"] = _radius_figure(pooled, epochs)
    first, last = _checkpoint(int(epochs[0])), _checkpoint(int(epochs[-1]))
    result.findings += _radius_findings(result.summary["inputs"], labels, first, last)
    return result


# --------------------------------------------------------------------------- E14 analysis


def run_sections(params: RegionGeometry, cfg: RunConfig, data: RunData) -> dict[str, Section]:
    """Every slice × layers section of the run's last snapshot, ``"<slice>/<layers>"`` → :class:`Section`."""
    model = model_at(cfg, data, -1)
    return {
        f"{which}/{layers}": section(model, which, layers, params.section_size)
        for which, layers in itertools.product(SLICES, LAYERS)
    }


def _section_figure(maps: dict[str, dict[str, Section]], epoch: int) -> Figure:
    """Rows: inputs; columns: slice × layers; every region a random colour (rows follow ``u₂``)."""
    kinds = list(next(iter(maps.values())))
    fig, axes = plt.subplots(
        len(maps), len(kinds), figsize=(3.0 * len(kinds), 3.7 * len(maps)), squeeze=False
    )
    for row, (label, per_kind) in enumerate(maps.items()):
        for ax, kind in zip(axes[row], kinds):
            sec = per_kind[kind]
            palette = np.random.default_rng(0).random((int(sec.ids.max()) + 1, 3))
            ax.imshow(palette[sec.ids], origin="lower", extent=(-1, 1, -1, 1), interpolation="nearest")
            which, layers = kind.split("/")
            exact = sec.partition.n_regions if sec.partition is not None else "?"
            ax.set_title(
                f"{figures.input_title(label)}: {which} slice, "
                f"{'all layers' if layers == 'all' else 'first layer'}\n"
                f"grid {sec.grid_count} / exact {exact}",
                fontsize=8,
            )
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Cross-sections of the regions ({_checkpoint(epoch)}, seed 0)")
    fig.tight_layout()
    return fig


def _counts_figure(counts: dict[str, dict[str, tuple[float, float]]], n_grid: int) -> Figure:
    """Grid vs exact region counts per section (seed means), log scale, the grid size dashed."""
    labels = list(counts)
    kinds = list(next(iter(counts.values())))
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(kinds) * len(labels) / 2, 3.8))
    x = np.arange(len(kinds) * len(labels))
    names = [f"{figures.input_title(k)}\n{kind}" for k in labels for kind in kinds]
    grid = [counts[k][kind][0] for k in labels for kind in kinds]
    exact = [counts[k][kind][1] for k in labels for kind in kinds]
    ax.bar(x - 0.2, grid, 0.4, label="grid (the paper's count)")
    ax.bar(x + 0.2, exact, 0.4, label="exact (polygons)")
    ax.axhline(n_grid, color="black", ls="--", lw=0.8, label=f"grid points ({n_grid})")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("regions")
    ax.legend(fontsize=8)
    ax.set_title("Grid vs exact region counts on the cross-sections")
    fig.tight_layout()
    return fig


def _section_findings(
    shares: dict[str, dict[str, float]], hidden: dict[str, dict[str, float]], labels: list[str], size: int
) -> list[Finding]:
    low, high = labels[0], labels[-1]
    full = [f"{which}/all" for which in SLICES]

    def listing(label: str) -> str:
        return ", ".join(f"{k.split('/')[0]} {shares[label][k]:.3g}" for k in full)

    out = [
        Finding(
            f"{low}, all layers: a fine tessellation everywhere "
            f"(largest region < {FINE_SHARE:.0%} of each slice)",
            all(shares[low][k] < FINE_SHARE for k in full),
            f"largest region's share: {listing(low)}",
        )
    ]
    if high != low:
        out += [
            Finding(
                f"{high}, all layers: one large region covers >= {LARGE_SHARE:.0%} of each slice",
                all(shares[high][k] >= LARGE_SHARE for k in full),
                f"largest region's share: {listing(high)}",
            ),
            Finding(
                f"all layers: the largest region is larger at {high} than at {low} (each slice)",
                all(shares[high][k] > shares[low][k] for k in full),
                f"{high}: {listing(high)}; {low}: {listing(low)}",
            ),
        ]
    missed = {f"{k} {kind}": hidden[k][kind] for k in labels for kind in full}
    out.append(
        Finding(
            f"the {size}² grid misses regions of every all-layer slice (exact > grid)",
            all(v > 0 for v in missed.values()),
            "regions the grid misses: " + ", ".join(f"{k} {v:.0f}" for k, v in missed.items()),
        )
    )
    return out


def analyse_sections(params: RegionGeometry, runs: Runs) -> ExperimentResult:
    """E14: region maps of the slices, grid vs exact counts, largest-region shares and findings."""
    result = make_analysis("E14", (), {}, order=lambda p: p.study.inputs)(params, runs)
    groups, configs = _usable(runs, lambda c: c.input)
    labels = _pe_order(groups)
    if not labels:
        return result
    maps: dict[str, dict[str, Section]] = {}
    counts: dict[str, dict[str, tuple[float, float]]] = {}
    shares: dict[str, dict[str, float]] = {}
    hidden: dict[str, dict[str, float]] = {}
    epoch = 0
    for label in labels:
        per_run = []
        for d in progress(groups[label], f"E14 sections {label}"):
            epoch = int(d.get("snapshot", "epochs")[-1])
            with one_thread():
                secs = run_sections(params, configs[d.meta["key"]], d)
            per_run.append(secs)
            for kind, sec in secs.items():
                cmp = sec.grid_vs_exact()
                values = {
                    "grid_count": cmp.grid_count,
                    "exact_count": cmp.exact_count,
                    "hidden": cmp.hidden,
                    "saturated": float(cmp.saturated),
                    "largest_share": sec.largest_share(),
                }
                result.rows += [("E14", label, d.meta["seed"], epoch, f"section_{kind}", k, float(v))
                                for k, v in values.items()]  # fmt: skip
        maps[label] = per_run[0]
        for kind, sec in per_run[0].items():
            result.arrays[f"region_ids/{label}/{kind}"] = sec.ids
        counts[label] = {
            kind: (
                float(np.mean([r[kind].grid_count for r in per_run])),
                float(np.mean([r[kind].partition.n_regions for r in per_run])),
            )
            for kind in per_run[0]
        }
        shares[label] = {
            kind: float(np.mean([r[kind].largest_share() for r in per_run])) for kind in per_run[0]
        }
        hidden[label] = {kind: counts[label][kind][1] - counts[label][kind][0] for kind in per_run[0]}
        result.summary["inputs"][label]["sections"] = {
            kind: {
                "grid_count": counts[label][kind][0],
                "exact_count": counts[label][kind][1],
                "saturated": bool(all(r[kind].grid_vs_exact().saturated for r in per_run)),
                "largest_share": shares[label][kind],
            }
            for kind in per_run[0]
        }
    result.figures["cross_sections"] = _section_figure(maps, epoch)
    result.figures["grid_vs_exact"] = _counts_figure(counts, params.section_size**2)
    result.findings += _section_findings(shares, hidden, labels, params.section_size)
    return result


# --------------------------------------------------------------------------- X4 parameters


@dataclass(frozen=True)
class Spatial:
    """X4 parameters: 1D targets with a varying local frequency, inputs, network, training, snapshots
    (``snapshots`` log-spaced epochs plus the first and the last) and the sliding window (fraction of
    ``[0, 1]``; centres every quarter window)."""

    signals: tuple[Chirp | Burst, ...] = (Chirp(), Burst())
    inputs: tuple[str, ...] = ("raw01", "raw11", "pe3", "pe6")
    width: int = 128
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=1000)
    snapshots: int = 10
    window: float = 1 / 16
    seeds: int = 5

    OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "lr", "width", "depth", "n", "inputs")

    def __post_init__(self) -> None:
        check_study(
            self.inputs, width=self.width, depth=self.depth, seeds=self.seeds, snapshots=self.snapshots
        )
        if not self.signals:
            raise ConfigError("X4 needs at least one signal")
        if not 0 < self.window <= 0.5:
            raise ConfigError(f"window must be a fraction of the domain in (0, 0.5], got {self.window}")

    def override(self, **changes: Any) -> Spatial:
        """A copy with user overrides: epochs, lr, width, depth, n (samples of every signal), inputs."""
        changes = {k: v for k, v in changes.items() if v is not None}
        train = dataclasses.replace(
            self.train, **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes}
        )
        signals = self.signals
        if "n" in changes:
            n = changes.pop("n")
            signals = tuple(dataclasses.replace(s, n=n) for s in signals)
        if "inputs" in changes:
            changes["inputs"] = tuple(changes["inputs"])
        return dataclasses.replace(self, train=train, signals=signals, **changes)

    def runs(self, seeds: int) -> list[RunConfig]:
        probe = SnapshotSpec(
            Schedule(explicit=(0,), logspaced=self.snapshots, last=True), before_update=False
        )
        return [
            RunConfig(
                signal=signal,
                input=label,
                width=self.width,
                depth=self.depth,
                train=self.train,
                probes=(probe,),
                seed=seed,
            )
            for signal in self.signals
            for label in self.inputs
            for seed in range(seeds)
        ]

    def centres(self) -> np.ndarray:
        """Window centres ``w/2, w/2 + w/4, …, ≤ 1 − w/2``."""
        return np.arange(self.window / 2, 1 - self.window / 2 + 1e-12, self.window / 4)


def partial_rank_corr(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Spearman's ρ of ``x`` and ``y`` with ``z`` held fixed: the partial correlation of the ranks,
    ``(ρ_xy − ρ_xz ρ_yz) / sqrt((1 − ρ_xz²)(1 − ρ_yz²))``; NaN when ``x`` or ``y`` is a monotone function
    of ``z`` (nothing is left once ``z`` is fixed)."""
    xy, xz, yz = rank_corr(x, y), rank_corr(x, z), rank_corr(y, z)
    den = (1 - xz**2) * (1 - yz**2)
    return float((xy - xz * yz) / np.sqrt(den)) if den > 1e-12 else float("nan")


def signal_kind(cfg: RunConfig) -> str:
    return type(cfg.signal).__name__.lower()


def _spatial_key(cfg: RunConfig) -> str:
    return f"{cfg.input}@{signal_kind(cfg)}"


X4_PAPER = Spatial()
X4_QUICK = Spatial(
    signals=(Chirp(n=1024), Burst(n=1024)),
    inputs=("raw01", "pe3"),
    train=TrainConfig(epochs=200),
    snapshots=6,
    seeds=2,
)


# --------------------------------------------------------------------------- X4 analysis


def window_means(t: np.ndarray, values: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """Mean of ``values`` over the samples ``t_n ∈ [c − w/2, c + w/2)`` of each window (``t`` sorted)."""
    total = np.concatenate(([0.0], np.cumsum(values)))
    lo = np.searchsorted(t, centres - width / 2, side="left")
    hi = np.searchsorted(t, centres + width / 2, side="left")
    return (total[hi] - total[lo]) / np.maximum(hi - lo, 1)


def local_rel_error(
    t: np.ndarray, pred: np.ndarray, y: np.ndarray, centres: np.ndarray, width: float
) -> np.ndarray:
    """``e(c) = sqrt(Σ_win (f − y)² / Σ_win y²)`` over the samples of each window (module docstring)."""
    return np.sqrt(window_means(t, (pred - y) ** 2, centres, width) / window_means(t, y**2, centres, width))


@torch.no_grad()
def _predict(model, enc: Encoding, t: np.ndarray) -> np.ndarray:
    return model(enc(torch.as_tensor(t[:, None], dtype=torch.float64))).numpy()[:, 0]


def run_spatial(params: Spatial, cfg: RunConfig, data: RunData) -> dict[str, np.ndarray]:
    """Per snapshot of one run: region density and local error per window, and the grid/exact counts."""
    enc = cfg.encoding()
    t, y = data.get("signal", "t")[:, 0], data.get("signal", "y")[:, 0]
    centres = params.centres()
    density, error, counts = [], [], []
    for index in range(data.get("snapshot", "epochs").size):
        model = model_at(cfg, data, index)
        regions = exact_regions_1d(model, enc, 0.0, 1.0)
        cmp = grid_vs_exact_1d(model, enc, t.size, regions=regions)
        density.append(piece_density(regions, centres, params.window))
        error.append(local_rel_error(t, _predict(model, enc, t), y, centres, params.window))
        counts.append((cmp.grid_count, cmp.exact_count, regions.n_pieces, regions.n_unresolved))
    return {
        "density": np.stack(density),
        "error": np.stack(error),
        "counts": np.array(counts, dtype=np.float64),
    }


def _spatial_figure(
    kind: str,
    epochs: np.ndarray,
    centres: np.ndarray,
    freq: np.ndarray,
    curves: dict[str, dict[str, np.ndarray]],
) -> Figure:
    """Columns: inputs. Top: region density per checkpoint (colour: epoch) and two pieces per local
    period (dashed); bottom: local relative error per checkpoint, the local frequency on a twin axis."""
    labels = list(curves)
    fig, axes = plt.subplots(2, len(labels), figsize=(4.6 * len(labels), 6.4), squeeze=False, sharex=True)
    cmap = plt.get_cmap("viridis")
    for col, label in enumerate(labels):
        top, bottom = axes[0][col], axes[1][col]
        for c, epoch in enumerate(epochs):
            color = cmap(c / max(1, len(epochs) - 1))
            top.plot(centres, curves[label]["density"][c], color=color, label=_checkpoint(int(epoch)))
            bottom.plot(centres, curves[label]["error"][c], color=color)
        top.plot(centres, 2 * freq, "k--", lw=0.9, label="2 × local frequency")
        top.set_yscale("log")
        top.set_title(figures.input_title(label))
        top.set_ylabel("regions per unit length (exact)")
        bottom.set_ylabel("local relative error")
        bottom.set_xlabel("t (window centre)")
        twin = bottom.twinx()
        twin.plot(centres, freq, color="0.5", lw=0.8)
        twin.set_ylabel("local frequency (cycles)", color="0.4")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"X4, {kind}: where the regions go and where the fit converges (seed means)")
    fig.tight_layout()
    return fig


def _grid_exact_figure(
    epochs: dict[str, np.ndarray], counts: dict[str, np.ndarray], n: dict[str, int]
) -> Figure:
    """Per signal: exact pieces (solid) and the N-point grid count (dashed) over training, seed means."""
    kinds = sorted({k.split("@")[1] for k in counts})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.0 * len(kinds), 3.8), squeeze=False)
    palette = figures.colors(sorted({k.split("@")[0] for k in counts}))
    for ax, kind in zip(axes[0], kinds):
        for key, c in counts.items():
            label, k = key.split("@")
            if k != kind:
                continue
            ax.plot(
                epochs[key] + 1,
                c[:, 1],
                "-o",
                ms=3,
                color=palette[label],
                label=f"{figures.input_title(label)}: exact",
            )
            ax.plot(
                epochs[key] + 1,
                c[:, 0],
                "--",
                color=palette[label],
                label=f"{figures.input_title(label)}: grid",
            )
            ax.axhline(n[key], color="black", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("regions on [0, 1]")
        ax.set_title(f"{kind} (dotted: grid points)")
        ax.legend(fontsize=7)
    fig.suptitle("Grid count (the paper's) vs exact count over training")
    fig.tight_layout()
    return fig


def _spatial_findings(
    kind: str, freq: np.ndarray, curves: dict[str, dict[str, np.ndarray]], n: int
) -> list[Finding]:
    out = []
    labels = list(curves)
    for label in labels:
        dens, err = curves[label]["density"], curves[label]["error"]
        first, last = rank_corr(dens[0], freq), rank_corr(dens[-1], freq)
        out.append(
            Finding(
                f"{label} on the {kind}: training concentrates regions where the local frequency is high",
                bool(last >= RHO and last > first),
                f"ρ(density, local frequency): {first:.2f} at the first snapshot, {last:.2f} at the last",
            )
        )
        # regions per local period, density/f_loc, anti-correlates with the error whenever the error grows
        # with f_loc, regions or not: hold f_loc fixed
        follow = partial_rank_corr(dens[-1], err[-1], freq)
        plain = rank_corr(dens[-1] / freq, err[-1])
        out.append(
            Finding(
                f"{label} on the {kind}: local convergence follows the regions "
                "(more regions per local period, lower error, at equal local frequency)",
                bool(follow <= -RHO),
                f"partial ρ(region density, local error | local frequency) = {follow:.2f} at the end "
                f"(plain ρ(regions per local period, local error) = {plain:.2f})",
            )
        )
    raws = [k for k in labels if encoding_rank(k)[0] == 0]
    pes = _pe_order([k for k in labels if encoding_rank(k)[0] == 1])
    if raws:
        bias = rank_corr(curves[raws[0]]["error"][-1], freq)
        out.append(
            Finding(
                f"{raws[0]} on the {kind}: spectral bias is local (the error grows with the local frequency)",
                bool(bias >= RHO),
                f"ρ(local error, local frequency) = {bias:.2f} at the end",
            )
        )
    if raws and pes:
        top = freq >= np.quantile(freq, 0.75)
        a, b = (float(curves[k]["error"][-1][top].mean()) for k in (raws[0], pes[-1]))
        out.append(
            Finding(
                f"on the {kind}, {pes[-1]} fits the highest-frequency quarter better than {raws[0]}",
                bool(b < a),
                f"mean local error there: {pes[-1]} {b:.3g}, {raws[0]} {a:.3g}",
            )
        )
    if pes:
        grid, exact = curves[pes[-1]]["counts"][-1, :2]
        out.append(
            Finding(
                f"on the {kind}, the {n}-point grid misses regions of {pes[-1]} at the end (exact > grid)",
                bool(exact > grid),
                f"grid {grid:.0f}, exact {exact:.0f} distinct patterns",
            )
        )
    return out


def analyse_spatial(params: Spatial, runs: Runs) -> ExperimentResult:
    """X4: density and local error per window over training, grid vs exact counts, figures, findings."""
    order = [f"{label}@{type(s).__name__.lower()}" for s in params.signals for label in params.inputs]
    result = make_analysis("X4", (), {}, key=_spatial_key, order=lambda p: order)(params, runs)
    groups, configs = _usable(runs, _spatial_key)
    centres = params.centres()
    by_kind: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    freqs: dict[str, np.ndarray] = {}
    all_epochs, all_counts, sizes = {}, {}, {}
    for key in (k for k in order if k in groups):
        label, kind = key.split("@")
        with one_thread():
            per_run = [
                run_spatial(params, configs[d.meta["key"]], d) for d in progress(groups[key], f"X4 {key}")
            ]
        first = groups[key][0]
        t = first.get("signal", "t")[:, 0]
        freqs[kind] = window_means(t, first.get("signal", "local_freq"), centres, params.window)
        epochs = first.get("snapshot", "epochs")
        curves = {m: np.mean([r[m] for r in per_run], axis=0) for m in per_run[0]}
        by_kind.setdefault(kind, {})[label] = curves
        all_epochs[key], all_counts[key], sizes[key] = epochs, curves["counts"], t.size
        for m in ("density", "error", "counts"):
            result.arrays[f"{m}/{key}"] = np.stack([r[m] for r in per_run])
        result.arrays[f"epochs/{key}"] = epochs
        for d, r in zip(groups[key], per_run):
            for c, epoch in enumerate(epochs):
                base = ("X4", key, d.meta["seed"], int(epoch))
                grid, exact, pieces, unresolved = r["counts"][c]
                result.rows += [
                    (*base, "regions", "grid", grid),
                    (*base, "regions", "exact_distinct", exact),
                    (*base, "regions", "exact_pieces", pieces),
                    (*base, "regions", "unresolved", unresolved),
                    (*base, "regions", "saturated", float(grid == t.size)),
                    (*base, "local_error", "mean", float(r["error"][c].mean())),
                    (*base, "density_vs_freq", "spearman", rank_corr(r["density"][c], freqs[kind])),
                ]
        result.summary["inputs"][key].update(
            {
                "grid_count_last": float(curves["counts"][-1, 0]),
                "exact_count_last": float(curves["counts"][-1, 1]),
                "saturated_last": bool(curves["counts"][-1, 0] == t.size),
                "rho_density_freq": [rank_corr(dc, freqs[kind]) for dc in curves["density"]],
                "rho_error_freq_last": rank_corr(curves["error"][-1], freqs[kind]),
                "snapshot_epochs": [int(e) for e in epochs],
            }
        )
    for kind, curves in by_kind.items():
        result.arrays[f"local_freq/{kind}"] = freqs[kind]
        key = next(k for k in order if k.endswith(f"@{kind}") and k in groups)
        result.figures[f"spatial_{kind}"] = _spatial_figure(
            kind, all_epochs[key], centres, freqs[kind], curves
        )
        result.findings += _spatial_findings(kind, freqs[kind], curves, sizes[key])
    result.arrays["window_centres"] = centres
    if all_counts:
        result.figures["grid_vs_exact"] = _grid_exact_figure(all_epochs, all_counts, sizes)
    return result


# --------------------------------------------------------------------------- registry

EXACT_EXPERIMENTS = (
    Experiment.of(
        id="E13",
        title="Inscribed spheres of activation regions (natural images)",
        claim="First-layer regions grow with L and barely change with training.",
        quick=E13_QUICK,
        paper=E13_PAPER,
        analyse=analyse_inspheres,
    ),
    Experiment.of(
        id="E14",
        title="2D cross-sections of a PE network's regions",
        claim="Low L tiles every slice finely; high L leaves one large region over part of a slice.",
        quick=E14_QUICK,
        paper=E14_PAPER,
        analyse=analyse_sections,
    ),
    Experiment.of(
        id="X4",
        title="Spatial information: exact region density vs local frequency (chirp, burst)",
        claim="Regions move to where the target's local frequency is high; local convergence follows them.",
        quick=X4_QUICK,
        paper=X4_PAPER,
        analyse=analyse_spatial,
    ),
)
