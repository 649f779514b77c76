"""Exact region geometry of trained networks: E13 inscribed spheres, E14 cross-sections, X4 spatial
information of the signal.

Every network here is a trained run carrying parameter snapshots; one analysis part per experiment
rebuilds each run at its snapshots (:func:`~specbias.runs.model_at`, float64), measures its geometry
(:func:`per_run`: a progress bar, one torch/BLAS thread) and puts per-seed values in the experiment's
:class:`~specbias.claims.SeedTable`; the claims, declared from the parameters, are judged on it.
Protocols, profiles, the claims and measured numbers: ``docs/experiments/geometry.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from specbias import figures
from specbias._checks import check_int
from specbias.claims import AllOf, Claim, Compare, Level, Trend, rank_corr
from specbias.encodings import Encoding
from specbias.errors import ConfigError
from specbias.experiments.analysis import (
    Groups,
    Part,
    Runs,
    add_part,
    encoding_rank,
    group_label,
    one_thread,
    progress,
    start,
)
from specbias.experiments.base import Experiment, ExperimentResult, check_study
from specbias.experiments.params import NETWORK, TRAIN, Overridable
from specbias.experiments.study2d import NATURAL_PAPER, NATURAL_QUICK, NATURAL_STANDARD, Study2D
from specbias.metrics.inspheres import LAYERS, inspheres, off_manifold_points, on_manifold_points
from specbias.metrics.regions import exact_regions_1d, grid_vs_exact_1d, piece_density
from specbias.metrics.sections import SLICES, Section, section
from specbias.runs import RunConfig, RunData, SnapshotSpec, model_at
from specbias.seeding import rng_for
from specbias.signals import Burst, Chirp
from specbias.thresholds import threshold
from specbias.training import Schedule, TrainConfig

SNAPSHOTS = SnapshotSpec(Schedule(explicit=(0,), last=True), before_update=False)
"""E13/E14: the parameters after the first epoch and after the last (spec §1.9: "after")."""
SAMPLERS = ("off", "on")
PAPER = "first/off"
"""E13's own measure: first-layer cells of off-manifold points."""

_T = TypeVar("_T")

# --------------------------------------------------------------------------- shared

Configs = dict[str, RunConfig]
"""Every run's config by its key (``RunData.meta["key"]``): the geometry rebuilds the network from it."""
GeometryPart = Callable[[Any, Configs, Groups, dict], Part]
"""``part(params, configs, finished runs by group, per-group summary) -> Part``."""


def per_run(
    configs: Configs,
    runs: Sequence[RunData],
    measure: Callable[[RunConfig, RunData], _T],
    desc: str,
    threads: Callable[[], AbstractContextManager] = one_thread,
) -> list[_T]:
    """``measure(config, run)`` of every run, under a progress bar and the torch/BLAS threads of ``threads``
    (one by default: the geometry is many small products, which a second thread slows down)."""
    with threads():
        return [measure(configs[d.meta["key"]], d) for d in progress(runs, desc)]


def measured_analysis(
    exp: str,
    part: GeometryPart,
    claims: Callable[[Any], list[Claim]],
    key: Callable[[RunConfig], Hashable] = group_label,
    order: Callable[[Any], Sequence[Hashable]] | None = None,
) -> Callable[[Any, Runs], ExperimentResult]:
    """An analysis that measures every finished run from its config: the shared start
    (:func:`~specbias.experiments.analysis.start`: grouping, diverged runs, headline table), one part,
    then ``claims(params)`` judged on the table the part filled. Declared from the parameters, a claim
    whose groups all diverged is still reported (not measurable). Summary entries are keyed by
    ``str(group)``."""

    def analyse(params: Any, runs: Runs) -> ExperimentResult:
        configs = {c.key(): c for c, _ in runs}
        groups, result = start(exp, runs, key, order(params) if order else None)
        if groups:
            add_part(result, part(params, configs, groups, result.summary["inputs"]))
        result.judge(claims(params))
        result.summary["inputs"] = {str(k): v for k, v in result.summary["inputs"].items()}
        return result

    return analyse


def _pe_order(labels: Sequence[str]) -> list[str]:
    return sorted(labels, key=encoding_rank)


def _checkpoint(epoch: int) -> str:
    return f"after {epoch + 1} epoch" + ("" if epoch == 0 else "s")


def _finite(value: float) -> float | None:
    """``value``, or None where it is NaN (JSON has no NaN)."""
    return float(value) if np.isfinite(value) else None


def _pct(name: str) -> str:
    return f"{threshold(name).value:.0%}"


def missed_share(grid: float, exact: float) -> float:
    """``(exact − grid)/exact``: the share of a network's exact regions that its grid count misses, one
    value per run (the counts themselves vary up to twofold between seeds; the share hardly does)."""
    return float((exact - grid) / exact) if exact else 0.0


def every_group(
    text: str,
    reads: str,
    groups: Sequence[Hashable],
    name: str,
    above: bool = True,
    unless: str | None = None,
) -> list[Claim]:
    """One claim: every group's per-seed ``reads`` lies above (``above``) or below threshold ``name``, a
    :class:`~specbias.claims.Level` part per group; no claim when there is no group."""
    side = ">" if above else "<="
    parts = [
        Level(text=f"{g}: {reads} {side} {name}", reads=reads, group=g, threshold=name, above=above)
        for g in groups
    ]
    return [AllOf(text=text, parts=parts, unless=unless)] if parts else []


def within(
    text: str, group: Hashable, reads: str, reads_b: str, relation: str, unless: str | None = None
) -> Compare:
    """``reads`` against ``reads_b`` of one group (the end against the start), paired by seed."""
    return Compare(
        text=text, reads=reads, reads_b=reads_b, a=group, b=group, relation=relation, unless=unless
    )


def grid_misses(text: str, group: Hashable, reads: str) -> Level:
    """The grid misses a material share of the exact regions."""
    return Level(text=text, reads=reads, group=group, threshold="material")


# --------------------------------------------------------------------------- E13 / E14 parameters


@dataclass(frozen=True)
class RegionGeometry:
    """E13/E14 parameters: the image study that trains the networks (its probes: :data:`SNAPSHOTS`) and
    the geometry measured on them."""

    study: Study2D
    samples: int = 200
    deep_samples: int = 40
    section_size: int = 512

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = Study2D.OVERRIDES

    def __post_init__(self) -> None:
        check_study(
            self.study.inputs, in_dim=2, convention="2d", samples=self.samples, deep_samples=self.deep_samples
        )
        if not all(encoding_rank(label)[0] == 1 for label in self.study.inputs):
            raise ConfigError(
                f"E13/E14 measure PE networks; inputs must be pe<L>, got {list(self.study.inputs)}"
            )
        size = self.section_size
        check_int("section grid size", size, 2)

    @property
    def seeds(self) -> int:
        return self.study.seeds

    def override(self, **changes: Any) -> RegionGeometry:  # the image study's overrides
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


E13_QUICK = RegionGeometry(_geometry(NATURAL_QUICK, ("pe2", "pe4", "pe8"), 100, 3), samples=100)
E13_PAPER = RegionGeometry(
    _geometry(NATURAL_PAPER, ("pe4", "pe8", "pe12", "pe16", "pe20"), 2500, 5), samples=1000, deep_samples=100
)
E13_STANDARD = RegionGeometry(
    _geometry(NATURAL_STANDARD, ("pe4", "pe8", "pe16"), 300, 3), samples=300, deep_samples=100
)
E14_STANDARD = dataclasses.replace(
    E13_STANDARD, study=dataclasses.replace(E13_STANDARD.study, inputs=("pe4", "pe16")), section_size=256
)
E14_QUICK = dataclasses.replace(
    E13_QUICK, study=dataclasses.replace(E13_QUICK.study, inputs=("pe2", "pe8")), section_size=256
)
E14_PAPER = dataclasses.replace(
    E13_PAPER, study=dataclasses.replace(E13_PAPER.study, inputs=("pe4", "pe16"), seeds=3)
)


# --------------------------------------------------------------------------- E13 analysis

CHECKPOINTS = ("start", "end")
"""E13's two snapshots in quantity names: after the first epoch, after the last."""
MEDIAN_CHANGE = f"relative change of the median r {PAPER}"


def radius_q(stat: str, kind: str, when: str) -> str:
    """The name of a per-seed radius statistic (``median``, ``IQR``, ``q90/median``) of ``kind``
    (``"<layers>/<sampler>"``) at checkpoint ``when`` (``start``/``end``)."""
    return f"{stat} r {kind}, {when}"


def _stats(r: np.ndarray) -> dict[str, float]:
    q10, q25, q50, q75, q90 = np.nanquantile(r, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {"median": q50, "mean": float(np.nanmean(r)), "q10": q10, "q90": q90, "iqr": q75 - q25}


def radius_values(radii: dict[str, np.ndarray]) -> dict[str, float]:
    """One run's per-seed E13 quantities from its radii ``"<layers>/<sampler>"`` → ``(checkpoints,
    points)``: median, IQR and the tail's weight (90th percentile over the median, unchanged by a mere
    rescaling of every radius) at the first and the last checkpoint, and how far the paper's median
    moved, ``|end/start − 1|``."""
    out: dict[str, float] = {}
    for kind, r in radii.items():
        for c, when in zip((0, -1), CHECKPOINTS):
            s = _stats(r[c])
            out[radius_q("median", kind, when)] = float(s["median"])
            out[radius_q("IQR", kind, when)] = float(s["iqr"])
            out[radius_q("q90/median", kind, when)] = float(s["q90"] / s["median"])
    start, end = (out[radius_q("median", PAPER, when)] for when in CHECKPOINTS)
    out[MEDIAN_CHANGE] = abs(end / start - 1)
    return out


def _rises(stat: str, kind: str, when: str, labels: Sequence[str], text: str | None = None) -> Trend:
    """``stat`` of ``kind``'s radii at ``when`` rises over ``labels`` (ordered by L)."""
    reads = radius_q(stat, kind, when)
    return Trend(text=text or f"{reads} rises with L", reads=reads, over=labels, xs=labels, rises=True)


def radius_claims(labels: Sequence[str], epochs: int) -> list[Claim]:
    """E13's claims over the PE inputs ``labels`` (ordered by L) of runs trained for ``epochs``: trends
    over L need two inputs; the changes with training are not measurable when the first and the last
    checkpoint coincide (one epoch)."""
    out: list[Claim] = []
    if len(labels) >= 2:
        out += [
            AllOf(
                text="the typical first-layer radius increases with L (median, off-manifold, "
                "both checkpoints)",
                parts=[_rises("median", PAPER, when, labels) for when in CHECKPOINTS],
            ),
            AllOf(
                text="the radius distributions broaden as L grows (interquartile range of r, "
                "both checkpoints)",
                parts=[_rises("IQR", PAPER, when, labels) for when in CHECKPOINTS],
            ),
        ]
        for kind, what in (("first/on", "on-manifold first-layer"), ("all/off", "off-manifold full-depth")):
            text = f"(extension) the {what} median radius also increases with L ({_checkpoint(epochs - 1)})"
            out.append(_rises("median", kind, "end", labels, text))
    unless = (
        None
        if epochs > 1
        else "one checkpoint: trained for one epoch, the first and the last snapshot coincide"
    )
    top = labels[-1]

    def grows(text: str, stat: str, kind: str) -> Compare:
        return within(text, top, radius_q(stat, kind, "end"), radius_q(stat, kind, "start"), ">", unless)

    barely = (
        f"first-layer radii barely change with training (median moves <= {_pct('same_radius')} for every L)"
    )
    out += [
        *every_group(barely, MEDIAN_CHANGE, labels, "same_radius", above=False, unless=unless),
        grows(
            f"after training the right tail is heavier at the highest L ({top}: 90th percentile / median "
            "grows)",
            "q90/median",
            PAPER,
        ),
        grows(
            f"(extension) training widens the full activation regions at the highest L ({top}, median)",
            "median",
            "all/off",
        ),
    ]
    return out


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


def _radius_rows(label: str, seed: int, epochs: np.ndarray, radii: dict[str, np.ndarray]) -> list[tuple]:
    return [
        ("E13", label, seed, int(epoch), f"insphere_{kind.replace('/', '_')}", s, float(v))
        for kind, r in radii.items()
        for c, epoch in enumerate(epochs)
        for s, v in _stats(r[c]).items()
    ]


def inspheres_part(params: RegionGeometry, configs: Configs, groups: Groups, summary: dict) -> Part:
    """E13: radii per (L, checkpoint, region, sampler) for every run, their per-seed statistics, the
    pooled distributions (arrays, summary, KDE figure)."""
    part = Part()
    pooled: dict[str, dict[str, np.ndarray]] = {}
    epochs = np.zeros(0, dtype=np.int64)
    for label in _pe_order(list(groups)):
        runs = groups[label]
        radii = per_run(configs, runs, partial(run_radii, params), f"E13 inspheres {label}")
        epochs = runs[0].get("snapshot", "epochs")
        for d, r in zip(runs, radii):
            part.rows += _radius_rows(label, d.meta["seed"], epochs, r)
            for quantity, value in radius_values(r).items():
                part.table.add(label, quantity, d.meta["seed"], value)
        pooled[label] = {k: np.concatenate([r[k] for r in radii], axis=1) for k in radii[0]}
        for kind, r in pooled[label].items():
            part.arrays[f"radius/{kind}/{label}"] = r
        summary[label]["radius"] = {
            kind: {_checkpoint(int(e)): _stats(r[c]) for c, e in enumerate(epochs)}
            for kind, r in pooled[label].items()
        }
    part.arrays["epochs"] = epochs
    part.figures["inspheres"] = _radius_figure(pooled, epochs)
    return part


def _radius_claims(params: RegionGeometry) -> list[Claim]:
    return radius_claims(_pe_order(params.study.inputs), params.study.train.epochs)


analyse_inspheres = measured_analysis("E13", inspheres_part, _radius_claims, order=lambda p: p.study.inputs)
"""E13: radii per (L, checkpoint, region, sampler), their KDEs, summary statistics and claims."""


# --------------------------------------------------------------------------- E14 analysis


def section_q(measure: str, kind: str) -> str:
    """The name of a per-seed section quantity (``largest share``, ``missed share``) of ``kind``
    (``"<slice>/<layers>"``)."""
    return f"{measure} {kind}"


def section_values(sec: Section) -> dict[str, float]:
    """One section's per-seed E14 quantities: the largest exact region's share of the slice and the
    share of the exact regions the grid misses (:func:`missed_share`)."""
    cmp = sec.grid_vs_exact()
    kind = f"{sec.which}/{sec.layers}"
    return {
        section_q("largest share", kind): sec.largest_share(),
        section_q("missed share", kind): missed_share(cmp.grid_count, cmp.exact_count),
    }


def section_claims(labels: Sequence[str], size: int) -> list[Claim]:
    """E14's claims over the PE inputs ``labels`` (ordered by L) on the ``size²`` grid: the lowest L
    tiles every all-layer slice finely, the highest leaves one large region in each and a larger one
    than the lowest L, and the grid misses regions of every all-layer slice."""
    low, high = labels[0], labels[-1]
    full = [f"{which}/all" for which in SLICES]

    def share(label: str, kind: str, name: str, above: bool) -> Level:
        side = "at least" if above else "under"
        return Level(
            text=f"{label} {kind}: the largest region covers {side} {name}",
            reads=section_q("largest share", kind),
            group=label,
            threshold=name,
            above=above,
        )

    out: list[Claim] = [
        AllOf(
            text=f"{low}, all layers: a fine tessellation everywhere (largest region < {_pct('fine_share')} "
            "of each slice)",
            parts=[share(low, kind, "fine_share", False) for kind in full],
        )
    ]
    if high != low:
        out += [
            AllOf(
                text=f"{high}, all layers: one large region covers >= {_pct('large_share')} of each slice",
                parts=[share(high, kind, "large_share", True) for kind in full],
            ),
            AllOf(
                text=f"all layers: the largest region is larger at {high} than at {low} (each slice)",
                parts=[
                    Compare(
                        text=f"{kind}: {high} > {low}",
                        reads=section_q("largest share", kind),
                        a=high,
                        b=low,
                        relation=">",
                    )
                    for kind in full
                ],
            ),
        ]
    misses = [
        grid_misses(
            f"{label} {kind}: the grid misses a material share", label, section_q("missed share", kind)
        )
        for label in labels
        for kind in full
    ]
    out.append(
        AllOf(text=f"the {size}² grid misses regions of every all-layer slice (exact > grid)", parts=misses)
    )
    return out


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


def _section_rows(label: str, seed: int, epoch: int, secs: dict[str, Section]) -> list[tuple]:
    rows = []
    for kind, sec in secs.items():
        cmp = sec.grid_vs_exact()
        values = {
            "grid_count": cmp.grid_count,
            "exact_count": cmp.exact_count,
            "hidden": cmp.hidden,
            "saturated": float(cmp.saturated),
            "largest_share": sec.largest_share(),
        }
        rows += [("E14", label, seed, epoch, f"section_{kind}", k, float(v)) for k, v in values.items()]
    return rows


def _section_summary(per_run: list[dict[str, Section]]) -> dict[str, dict[str, Any]]:
    """Seed means per section: grid and exact counts, largest share, and whether every seed saturated."""
    return {
        kind: {
            "grid_count": float(np.mean([r[kind].grid_count for r in per_run])),
            "exact_count": float(np.mean([r[kind].partition.n_regions for r in per_run])),
            "saturated": bool(all(r[kind].grid_vs_exact().saturated for r in per_run)),
            "largest_share": float(np.mean([r[kind].largest_share() for r in per_run])),
        }
        for kind in per_run[0]
    }


def sections_part(params: RegionGeometry, configs: Configs, groups: Groups, summary: dict) -> Part:
    """E14: every run's sections, their per-seed counts and shares, the region maps of the first seed
    and the grid-vs-exact counts (seed means)."""
    part = Part()
    maps: dict[str, dict[str, Section]] = {}
    counts: dict[str, dict[str, tuple[float, float]]] = {}
    epoch = 0
    for label in _pe_order(list(groups)):
        runs = groups[label]
        secs = per_run(configs, runs, partial(run_sections, params), f"E14 sections {label}")
        epoch = int(runs[0].get("snapshot", "epochs")[-1])
        for d, per_kind in zip(runs, secs):
            part.rows += _section_rows(label, d.meta["seed"], epoch, per_kind)
            for sec in per_kind.values():
                for quantity, value in section_values(sec).items():
                    part.table.add(label, quantity, d.meta["seed"], value)
        maps[label] = secs[0]
        for kind, sec in secs[0].items():
            part.arrays[f"region_ids/{label}/{kind}"] = sec.ids
        summary[label]["sections"] = _section_summary(secs)
        counts[label] = {
            k: (v["grid_count"], v["exact_count"]) for k, v in summary[label]["sections"].items()
        }
    part.figures["cross_sections"] = _section_figure(maps, epoch)
    part.figures["grid_vs_exact"] = _counts_figure(counts, params.section_size**2)
    return part


def _section_claims(params: RegionGeometry) -> list[Claim]:
    return section_claims(_pe_order(params.study.inputs), params.section_size)


analyse_sections = measured_analysis("E14", sections_part, _section_claims, order=lambda p: p.study.inputs)
"""E14: region maps of the slices, grid vs exact counts, largest-region shares and claims."""


# --------------------------------------------------------------------------- X4 parameters


@dataclass(frozen=True)
class Spatial(Overridable):
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

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TRAIN,
        **NETWORK,
        "n": ("signals.*.n",),
        "inputs": ("inputs",),
    }

    def __post_init__(self) -> None:
        check_study(
            self.inputs, width=self.width, depth=self.depth, seeds=self.seeds, snapshots=self.snapshots
        )
        if not self.signals:
            raise ConfigError("X4 needs at least one signal")
        if not 0 < self.window <= 0.5:
            raise ConfigError(f"window must be a fraction of the domain in (0, 0.5], got {self.window}")

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

    def group_keys(self) -> list[SpatialKey]:
        """The groups in report order: per signal, every input."""
        return [SpatialKey(signal_kind(s), label) for s in self.signals for label in self.inputs]


@dataclass(frozen=True)
class SpatialKey:
    """An X4 group: a signal kind (``chirp``, ``burst``) and an input label; written ``"<input>@<signal>"``
    (the summary's and the arrays' key)."""

    signal: str
    input: str

    def __str__(self) -> str:
        return f"{self.input}@{self.signal}"


def signal_kind(signal: Chirp | Burst) -> str:
    return type(signal).__name__.lower()


def spatial_key(cfg: RunConfig) -> SpatialKey:
    return SpatialKey(signal_kind(cfg.signal), cfg.input)


def partial_rank_corr(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Spearman's ρ of ``x`` and ``y`` with ``z`` held fixed: the partial correlation of the ranks,
    ``(ρ_xy − ρ_xz ρ_yz) / sqrt((1 − ρ_xz²)(1 − ρ_yz²))``, from :func:`specbias.claims.rank_corr`.
    NaN when ``x`` or ``y`` is constant or a monotone function of ``z`` (nothing is left once ``z`` is
    fixed); the plain ρ when ``z`` is constant (nothing to hold fixed)."""
    xy = rank_corr(x, y)
    if np.ptp(np.asarray(z, dtype=np.float64)) == 0:
        return xy
    xz, yz = rank_corr(x, z), rank_corr(y, z)
    den = (1 - xz**2) * (1 - yz**2)
    return float((xy - xz * yz) / np.sqrt(den)) if np.isfinite(den) and den > 1e-12 else float("nan")


X4_PAPER = Spatial()
X4_QUICK = Spatial(
    signals=(Chirp(n=1024), Burst(n=1024)),
    inputs=("raw01", "pe3"),
    train=TrainConfig(epochs=200),
    snapshots=6,
    seeds=3,
)


# --------------------------------------------------------------------------- X4 analysis

RHO_START = "ρ(density, f_loc) at the first snapshot"
RHO_END = "ρ(density, f_loc) at the end"
FOLLOWS = "partial ρ(density, −error | f_loc) at the end"
"""Regions per window against the (negated) local error at equal local frequency: positive when more
regions go with a lower error. The plain ρ(regions per local period, error) would be positive whenever
the error grows with f_loc, even with regions spread evenly (pieces per period then fall with f_loc)."""
LOCAL_BIAS = "ρ(error, f_loc) at the end"
TOP_ERROR = "mean local error over the highest-frequency quarter at the end"
MISSED_END = "share of the exact regions the grid misses at the end"


def window_means(t: np.ndarray, values: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """Mean of ``values`` over the samples ``t_n ∈ [c − w/2, c + w/2)`` of each window (``t`` sorted)."""
    total = np.concatenate(([0.0], np.cumsum(values)))
    lo = np.searchsorted(t, centres - width / 2, side="left")
    hi = np.searchsorted(t, centres + width / 2, side="left")
    return (total[hi] - total[lo]) / np.maximum(hi - lo, 1)


def local_rel_error(
    t: np.ndarray, pred: np.ndarray, y: np.ndarray, centres: np.ndarray, width: float
) -> np.ndarray:
    """``e(c) = sqrt(Σ_win (f − y)² / Σ_win y²)`` over the samples of each window (1 for ``f = 0``)."""
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


def spatial_values(measured: dict[str, np.ndarray], freq: np.ndarray) -> dict[str, float]:
    """One run's per-seed X4 quantities from :func:`run_spatial`'s output and the windows' local
    frequency: rank correlations across the windows (NaN where a series is constant), the error over the
    highest-frequency quarter of the windows, the share of the exact regions the grid misses at the end."""
    density, error, counts = measured["density"], measured["error"], measured["counts"]
    top = freq >= np.quantile(freq, 0.75)
    return {
        RHO_START: rank_corr(density[0], freq),
        RHO_END: rank_corr(density[-1], freq),
        FOLLOWS: partial_rank_corr(density[-1], -error[-1], freq),
        LOCAL_BIAS: rank_corr(error[-1], freq),
        TOP_ERROR: float(error[-1][top].mean()),
        MISSED_END: missed_share(counts[-1, 0], counts[-1, 1]),
    }


def _input_claims(key: SpatialKey) -> list[Claim]:
    where = f"{key.input} on the {key.signal}"
    return [
        AllOf(
            text=f"{where}: training concentrates regions where the local frequency is high",
            parts=[
                Level(text=f"{RHO_END} >= rank_corr", reads=RHO_END, group=key, threshold="rank_corr"),
                within(f"{RHO_END} > {RHO_START}", key, RHO_END, RHO_START, ">"),
            ],
        ),
        Level(
            text=f"{where}: local convergence follows the regions (more regions per local period, lower "
            "error, at equal local frequency)",
            reads=FOLLOWS,
            group=key,
            threshold="rank_corr",
        ),
    ]


def _signal_claims(kind: str, n: int, inputs: Sequence[str]) -> list[Claim]:
    """Per signal: each input's claims, raw input's local spectral bias, PE against raw on the
    highest-frequency windows, and the ``n``-point grid against the exact count."""
    out = [c for label in inputs for c in _input_claims(SpatialKey(kind, label))]
    raws = [k for k in inputs if encoding_rank(k)[0] == 0]
    pes = _pe_order([k for k in inputs if encoding_rank(k)[0] == 1])
    raw = SpatialKey(kind, raws[0]) if raws else None
    if raw:
        out.append(
            Level(
                text=f"{raw.input} on the {kind}: spectral bias is local (the error grows with the local "
                "frequency)",
                reads=LOCAL_BIAS,
                group=raw,
                threshold="rank_corr",
            )
        )
    if raw and pes:
        top = SpatialKey(kind, pes[-1])
        out.append(
            Compare(
                text=f"on the {kind}, {top.input} fits the highest-frequency quarter better than {raw.input}",
                reads=TOP_ERROR,
                a=top,
                b=raw,
                relation="<",
            )
        )
    if pes:
        top = SpatialKey(kind, pes[-1])
        text = f"on the {kind}, the {n}-point grid misses regions of {top.input} at the end (exact > grid)"
        out.append(grid_misses(text, top, MISSED_END))
    return out


def spatial_claims(params: Spatial) -> list[Claim]:
    """X4's claims, per signal (the rank correlations run across the windows of one run: per seed)."""
    return [c for s in params.signals for c in _signal_claims(signal_kind(s), s.n, params.inputs)]


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
    epochs: dict[SpatialKey, np.ndarray], counts: dict[SpatialKey, np.ndarray], n: dict[SpatialKey, int]
) -> Figure:
    """Per signal: exact pieces (solid) and the N-point grid count (dashed) over training, seed means."""
    kinds = sorted({k.signal for k in counts})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.0 * len(kinds), 3.8), squeeze=False)
    palette = figures.colors(sorted({k.input for k in counts}))
    for ax, kind in zip(axes[0], kinds):
        for key, c in counts.items():
            if key.signal != kind:
                continue
            label = key.input
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


def _spatial_rows(
    key: SpatialKey, seed: int, epochs: np.ndarray, measured: dict[str, np.ndarray], freq: np.ndarray, n: int
) -> list[tuple]:
    """Metric rows of one run at every snapshot (``n``: the grid's points, for ``saturated``)."""
    rows = []
    for c, epoch in enumerate(epochs):
        base = ("X4", str(key), seed, int(epoch))
        grid, exact, pieces, unresolved = measured["counts"][c]
        rows += [
            (*base, "regions", "grid", grid),
            (*base, "regions", "exact_distinct", exact),
            (*base, "regions", "exact_pieces", pieces),
            (*base, "regions", "unresolved", unresolved),
            (*base, "regions", "saturated", float(grid == n)),
            (*base, "local_error", "mean", float(measured["error"][c].mean())),
            (*base, "density_vs_freq", "spearman", rank_corr(measured["density"][c], freq)),
        ]
    return rows


def _spatial_summary(curves: dict[str, np.ndarray], freq: np.ndarray, epochs: np.ndarray, n: int) -> dict:
    """Seed-mean headline numbers of one group (NaN correlations as None)."""
    return {
        "grid_count_last": float(curves["counts"][-1, 0]),
        "exact_count_last": float(curves["counts"][-1, 1]),
        "saturated_last": bool(curves["counts"][-1, 0] == n),
        "rho_density_freq": [_finite(rank_corr(dc, freq)) for dc in curves["density"]],
        "rho_error_freq_last": _finite(rank_corr(curves["error"][-1], freq)),
        "snapshot_epochs": [int(e) for e in epochs],
    }


def spatial_part(params: Spatial, configs: Configs, groups: Groups, summary: dict) -> Part:
    """X4: every run's exact regions and local error per window at every snapshot, the per-seed
    correlations and counts, seed-mean curves (arrays, summary, figures)."""
    part = Part()
    centres = params.centres()
    curves: dict[SpatialKey, dict[str, np.ndarray]] = {}
    freqs: dict[str, np.ndarray] = {}
    epochs: dict[SpatialKey, np.ndarray] = {}
    sizes: dict[SpatialKey, int] = {}
    for key in (k for k in params.group_keys() if k in groups):
        runs = groups[key]
        measured = per_run(configs, runs, partial(run_spatial, params), f"X4 {key}")
        t = runs[0].get("signal", "t")[:, 0]
        freq = freqs[key.signal] = window_means(
            t, runs[0].get("signal", "local_freq"), centres, params.window
        )
        epochs[key], sizes[key] = runs[0].get("snapshot", "epochs"), t.size
        for d, m in zip(runs, measured):
            part.rows += _spatial_rows(key, d.meta["seed"], epochs[key], m, freq, t.size)
            for quantity, value in spatial_values(m, freq).items():
                part.table.add(key, quantity, d.meta["seed"], value)
        curves[key] = {name: np.mean([m[name] for m in measured], axis=0) for name in measured[0]}
        for name in measured[0]:
            part.arrays[f"{name}/{key}"] = np.stack([m[name] for m in measured])
        part.arrays[f"epochs/{key}"] = epochs[key]
        summary[key].update(_spatial_summary(curves[key], freq, epochs[key], t.size))
    for kind, freq in freqs.items():
        part.arrays[f"local_freq/{kind}"] = freq
        of_kind = {k.input: c for k, c in curves.items() if k.signal == kind}
        first = next(k for k in curves if k.signal == kind)
        part.figures[f"spatial_{kind}"] = _spatial_figure(kind, epochs[first], centres, freq, of_kind)
    part.arrays["window_centres"] = centres
    if curves:
        counts = {k: c["counts"] for k, c in curves.items()}
        part.figures["grid_vs_exact"] = _grid_exact_figure(epochs, counts, sizes)
    return part


analyse_spatial = measured_analysis(
    "X4", spatial_part, spatial_claims, key=spatial_key, order=lambda p: p.group_keys()
)
"""X4: density and local error per window over training, grid vs exact counts, figures and claims."""


# --------------------------------------------------------------------------- registry

EXACT_EXPERIMENTS = (
    Experiment.of(
        id="E13",
        title="Inscribed spheres of activation regions (natural images)",
        claim="First-layer regions grow with L and barely change with training.",
        quick=E13_QUICK,
        standard=E13_STANDARD,
        paper=E13_PAPER,
        analyse=analyse_inspheres,
    ),
    Experiment.of(
        id="E14",
        title="2D cross-sections of a PE network's regions",
        claim="Low L tiles every slice finely; high L leaves one large region over part of a slice.",
        quick=E14_QUICK,
        standard=E14_STANDARD,
        paper=E14_PAPER,
        analyse=analyse_sections,
    ),
    Experiment.of(
        id="X4",
        title="Spatial information: exact region density vs local frequency (chirp, burst)",
        claim="Regions move to where the target's local frequency is high; local convergence follows them.",
        quick=X4_QUICK,
        standard=dataclasses.replace(X4_QUICK, seeds=5),
        paper=X4_PAPER,
        analyse=analyse_spatial,
    ),
)
