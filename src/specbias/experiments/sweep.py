"""The sweep analysis shared by the density experiments: X6 (1D, over N), X6b (2D, over the image
side) and X7 (1D lifts at one N).

A run's group is a typed :class:`SweepKey` (input, N or image side, batch size); one input's runs
over the sweep form a :class:`Sweep`. Each sweep point's per-seed quantities go into a
:class:`~specbias.claims.SeedTable`, and the paper's statements about a sweep are claims over it
(:mod:`specbias.claims`), so the seed spread enters every verdict. The figures (metric lines over
the sweep, frequency or band maps) are shared too. Protocols and the claims list:
``docs/experiments/density.md``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from specbias import figures
from specbias.claims import AllOf, Claim, Compare, Flat, Level, SeedTable, Trend
from specbias.encodings import CurveLift, GaussianRFF, LinearLift, NeRFPE, Raw, parse_input
from specbias.experiments.analysis import Runs, start
from specbias.experiments.base import ExperimentResult
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import RunConfig, RunData, signal_dim
from specbias.thresholds import threshold

Hits = list[list[int | None]]
"""Per seed (in seed order) and unit (tone or band): the first checkpoint label whose error is below
the convergence threshold, None when the seed never got there within its budget."""


# --------------------------------------------------------------------------- keys


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Optimiser steps per epoch: ``⌈N/B⌉`` for ``B < N``, else 1 (full batch)."""
    return 1 if batch_size is None or batch_size >= n else math.ceil(n / batch_size)


@dataclass(frozen=True)
class SweepLine:
    """One input's sweep at one batch size (None: full batch), in ``dim`` dimensions: the group of
    the quantities measured over the whole sweep (e.g. the range over N)."""

    input: str
    batch: int | None = None
    dim: int = 1

    def at(self, size: int) -> SweepKey:
        """This input's point at ``size`` (N in 1D, the image side in 2D)."""
        return SweepKey(self.input, size, self.batch, self.dim)

    @property
    def variant(self) -> str | None:
        """``full batch`` or ``batch 128`` in 1D (X6 sweeps both); None in 2D (X6b trains one)."""
        if self.dim == 2:
            return None
        return "full batch" if self.batch is None else f"batch {self.batch}"

    @property
    def name(self) -> str:
        """How claims name it: ``raw [0,1), full batch`` in 1D, ``raw [0,1)`` in 2D."""
        return title(self.input) + (f", {self.variant}" if self.variant else "")

    @property
    def series(self) -> str:
        """How figures name it: ``raw [0,1) (full batch)`` in 1D, ``raw [0,1)`` in 2D."""
        return title(self.input) + (f" ({self.variant})" if self.variant else "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class SweepKey:
    """The group of a run in a density sweep: ``input`` at ``size`` (the number of samples N in 1D,
    the image side S in 2D, so ``N = S²``) with batch size ``batch`` (None: full batch).

    Its name is ``raw01@N1024`` or ``raw01@N1024/b128`` in 1D, ``raw01@S64`` in 2D (X6b trains one
    batch size, so its names leave it out)."""

    input: str
    size: int
    batch: int | None = None
    dim: int = 1

    @classmethod
    def of(cls, cfg: RunConfig) -> SweepKey:
        """The key of a run config."""
        dim = signal_dim(cfg.signal)
        size = cfg.signal.size if dim == 2 else cfg.signal.n
        return cls(cfg.input, size, cfg.train.batch_size, dim)

    @property
    def n_points(self) -> int:
        """The number of coordinates N (``S²`` in 2D)."""
        return self.size**self.dim

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.n_points, self.batch)

    @property
    def line(self) -> SweepLine:
        return SweepLine(self.input, self.batch, self.dim)

    def __str__(self) -> str:
        if self.dim == 2:
            return f"{self.input}@S{self.size}"
        return f"{self.input}@N{self.size}" + (f"/b{self.batch}" if self.batch else "")


@dataclass(frozen=True)
class Sweep:
    """One input's sweep: its points in sweep order (every planned one: a point whose runs all
    diverged makes its claims *not measurable*), and the common step and epoch budgets its
    convergence is compared at (the smallest over its points)."""

    line: SweepLine
    keys: tuple[SweepKey, ...]
    steps: int
    epochs: int

    @property
    def xs(self) -> list[int]:
        """The sweep's x values: the number of coordinates N at each point."""
        return [k.n_points for k in self.keys]


# --------------------------------------------------------------------------- numbers


def begin(
    exp: str, params: Any, runs: Runs, key: Callable[[RunConfig], Hashable], order: Callable[[Any], Sequence]
) -> tuple[ExperimentResult, dict[Any, list[RunData]]]:
    """The shared start (per-group summary, headline seed table, diverged runs) and the finished runs
    by group."""
    groups, result = start(exp, runs, key, order(params))
    return result, groups


def finish(result: ExperimentResult, values: SeedTable, claims: Sequence[Claim | None]) -> ExperimentResult:
    """Judge ``claims`` on the headline table completed by ``values``; name the groups in the summary."""
    result.table.update(values)
    result.judge(claims)
    result.summary["inputs"] = {str(k): v for k, v in result.summary["inputs"].items()}
    return result


def put_seeds(table: SeedTable, group: Hashable, datas: Sequence[RunData], values: Mapping[str, Any]) -> None:
    """Put each per-seed array of ``values`` (aligned with ``datas``) into ``table`` under ``group``."""
    seeds = [d.meta["seed"] for d in datas]
    for quantity, v in values.items():
        table.put(group, quantity, dict(zip(seeds, np.asarray(v, dtype=np.float64).tolist())))


def neighbourhood(datas: Sequence[RunData], n_points: int) -> dict[str, np.ndarray]:
    """Per seed after the last epoch: local |gradient confusion|, local Hamming distance, grid regions
    and grid points per region."""
    regions = np.array([float(d.get("regions", "all")[-1]) for d in datas])
    return {
        "cos_local_abs": np.array([np.nanmean(np.abs(d.get("confusion", "local_cos")[-1])) for d in datas]),
        "hamming_local": np.array([float(d.get("hamming", "local_mean")[-1]) for d in datas]),
        "regions": regions,
        "points_per_region": n_points / regions,
    }


def neighbourhood_entry(summary: Mapping[str, Any], seeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The table fields every sweep point shares (means over seeds): tones or bands converged, local
    confusion and Hamming, regions and points per region, final loss; ``summary`` is the point's
    :func:`~.analysis.input_summary`, ``seeds`` its per-seed numbers."""
    shared = ("cos_local_abs_mean", "cos_local_mean", "hamming_local", "hamming_local_ratio", "regions_last")
    return {
        "n_converged": float(seeds["n_converged"].mean()),
        **{f: summary[f] for f in shared},
        "points_per_region": float(seeds["points_per_region"].mean()),
        "final_loss": summary["final_loss"],
        "seeds": summary["seeds"],
    }


def error_at(epochs: np.ndarray, errors: np.ndarray, spe: int, x: float, per: str = "step") -> float:
    """``errors`` (one per checkpoint) after ``x`` optimiser steps (``per="step"``) or epochs, linear
    between checkpoints: checkpoint label ``e`` comes after ``e + 1`` epochs, ``(e + 1)·spe`` steps."""
    done = (np.asarray(epochs) + 1) * (spe if per == "step" else 1)
    return float(np.interp(x, done, errors))


def hits(datas: Sequence[RunData], curves: Callable[[RunData], tuple[np.ndarray, np.ndarray]]) -> Hits:
    """Per seed and unit: the first checkpoint label with error below ``rel_err`` (``curves(run)`` is
    ``(checkpoint labels, checkpoints × units errors)``)."""
    return [first_epoch_below(*curves(d), threshold("rel_err").value) for d in datas]


def common_units(per_point: Iterable[Hits]) -> list[int]:
    """The units (column indices) every seed brought below the threshold at every sweep point."""
    rows = [row for h in per_point for row in h]
    return [u for u in range(len(rows[0]) if rows else 0) if all(row[u] is not None for row in rows)]


def time_to_converge(
    table: SeedTable, key: SweepKey, datas: Sequence[RunData], point_hits: Hits, common: Sequence[int]
) -> None:
    """Per seed: ``epochs_to_converge`` (epochs trained, label + 1) and ``steps_to_converge`` (times
    the steps per epoch), each the mean over the ``common`` units; nothing when there are none."""
    if not common:
        return
    epochs = np.array([np.mean([h[u] + 1 for u in common]) for h in point_hits], dtype=np.float64)
    put_seeds(
        table, key, datas, {"epochs_to_converge": epochs, "steps_to_converge": epochs * key.steps_per_epoch}
    )


def put_range(table: SeedTable, sweep: Sweep, reads: str) -> None:
    """Per seed: the range over the sweep of ``reads``, as ``{reads}_range`` of the sweep's line."""
    series = [table.get(k, reads) for k in sweep.keys if table.get(k, reads)]
    seeds = sorted(set.intersection(*(set(s) for s in series))) if series else []
    table.put(sweep.line, f"{reads}_range", {s: float(np.ptp([v[s] for v in series])) for s in seeds})


def seed_mean(table: SeedTable, group: Hashable, quantity: str) -> float:
    """The mean over seeds of ``quantity`` in ``group`` (NaN when it was never measured)."""
    values = list(table.get(group, quantity).values())
    return float(np.mean(values)) if values else float("nan")


# --------------------------------------------------------------------------- claims


def raw_and_pe(sweeps: Sequence[Sweep]) -> tuple[list[Sweep], list[Sweep]]:
    """The sweeps (of at least two points) of raw inputs and of PE inputs, in their order: the
    inputs the paper's density claims are about."""
    out: tuple[list[Sweep], list[Sweep]] = ([], [])
    for sweep in sweeps:
        dim = sweep.line.dim
        enc = parse_input(sweep.line.input, in_dim=dim, convention="2d" if dim == 2 else "1d")
        if len(sweep.keys) >= 2 and isinstance(enc, (Raw, NeRFPE)):
            out[0 if isinstance(enc, Raw) else 1].append(sweep)
    return out


def unresolved(table: SeedTable, reads: str, over: Sequence[Hashable]) -> str | None:
    """Why a claim over ``over`` is not measurable when, within every seed, ``reads`` is one value at
    every point (a count stuck at its floor or ceiling: no tone converges at any N, or the same one);
    None otherwise."""
    series = [table.get(g, reads) for g in over]
    if not all(series):
        return None
    seeds = sorted(set.intersection(*(set(s) for s in series)))
    per_seed = [{s[seed] for s in series} for seed in seeds]
    if not seeds or any(len(v) > 1 for v in per_seed):
        return None
    values = ", ".join(f"{v.pop():g}" for v in per_seed)
    return (
        f"{reads} does not change over the sweep in any seed (per seed: {values}): the measure does not "
        "resolve the sweep at this budget"
    )


def ceiling(table: SeedTable, reads: str, over: Sequence[Hashable], level: str, what: str) -> str | None:
    """Why a claim on ``reads`` is not measurable when it stays at or above the named ``level`` at
    every point in every seed: a quantity bounded by 1 (a relative error, a |cosine|) that sits at
    its ceiling everywhere has no room to move with N (``what`` says what that means); None otherwise."""
    values = [v for g in over for v in table.get(g, reads).values()]
    bound = threshold(level).value
    if not values or min(values) < bound:
        return None
    return (
        f"{what} at every point of the sweep ({reads} >= {level} = {bound:g} in every seed, lowest "
        f"{min(values):.3g}): the measure sits at its ceiling"
    )


def unlearned(table: SeedTable, reads: str, over: Sequence[Hashable], what: str) -> str | None:
    """:func:`ceiling` of a relative error: ``what`` (tones, bands) is not learned anywhere in the sweep."""
    return ceiling(table, reads, over, "unlearned", f"{what} are not learned")


def never(table: SeedTable, sweep: Sweep, what: str) -> str | None:
    """Why a claim on the time to converge is not measurable: no unit converged at every point in
    every seed (``what`` says what converging means); None when some did, or when nothing finished."""
    if any(table.get(k, "epochs_to_converge") for k in sweep.keys):
        return None
    if not any(table.get(k, "n_converged") for k in sweep.keys):
        return None
    return f"no {what} at every N in every seed"


def sweep_trend(
    table: SeedTable, text: str, reads: str, sweep: Sweep, rises: bool, unless: str | None = None
) -> Trend:
    """A per-seed :class:`~specbias.claims.Trend` over the sweep; not measurable for ``unless`` or
    when the quantity does not change over the sweep in any seed (:func:`unresolved`)."""
    why = unless or unresolved(table, reads, sweep.keys)
    return Trend(text=text, reads=reads, over=sweep.keys, xs=sweep.xs, rises=rises, unless=why)


def neighbour_claims(table: SeedTable, sweep: Sweep, where: str) -> list[Claim]:
    """The paper's reading for raw coordinates on a denser grid: neighbours in a neighbourhood of
    fixed physical size conflict more (not measurable where their gradients are (anti)parallel at
    every N already), share more units, and regions hold more points."""
    name = sweep.line.name
    parallel = ceiling(
        table, "cos_local_abs", sweep.keys, "near_one", "neighbours' loss gradients are (anti)parallel"
    )
    return [
        sweep_trend(
            table,
            f"{name}: local |gradient confusion| {where} grows with N",
            "cos_local_abs",
            sweep,
            True,
            parallel,
        ),
        sweep_trend(
            table, f"{name}: local Hamming distance {where} falls as N grows", "hamming_local", sweep, False
        ),
        sweep_trend(
            table,
            f"{name}: more grid points per activation region as N grows",
            "points_per_region",
            sweep,
            True,
        ),
    ]


def encoded_claims(table: SeedTable, sweep: Sweep, why: str, what: str) -> list[Claim]:
    """An encoding with a fixed batch size: per step N hardly matters (the steps to converge are flat
    over N), per epoch denser grids converge sooner (``why``: they take more steps per epoch)."""
    name, unless = sweep.line.name, never(table, sweep, what)
    return [
        Flat(
            text=f"{name}: per step, the steps to converge hardly depend on N",
            reads="steps_to_converge",
            over=sweep.keys,
            unless=unless,
        ),
        sweep_trend(
            table,
            f"{name}: per epoch, convergence gets faster as N grows ({why})",
            "epochs_to_converge",
            sweep,
            False,
            unless,
        ),
    ]


def spread_claim(
    table: SeedTable, raws: Sequence[Sweep], pes: Sequence[Sweep], reads: str, what: str, moved: str, how: str
) -> Claim | None:
    """N moves the error ``reads`` (``moved`` in words, ``how`` it is measured) less for the last PE
    input than for the first raw one: raw's per-seed range over the sweep is material, and the
    encoding's is smaller (seeds paired); not measurable when raw's ``what`` are not learned
    anywhere (:func:`unlearned`). None without both inputs. Needs :func:`put_range`."""
    if not raws or not pes:
        return None
    raw, pe, spread = raws[0], pes[-1], f"{reads}_range"
    text = (
        f"N moves {moved} less for {title(pe.line.input)} than for {title(raw.line.input)} ({how}; raw's "
        f"range > {threshold('material').value:g})"
    )
    return AllOf(
        text=text,
        parts=[
            Level(text=f"{raw.line.name}: N moves {reads} materially", reads=spread, group=raw.line),
            Compare(text=f"range over N of {reads}: {pe.line.name} < {raw.line.name}", reads=spread,
                    a=pe.line, b=raw.line, relation="<"),
        ],
        unless=unlearned(table, reads, raw.keys, what),
    )  # fmt: skip


# --------------------------------------------------------------------------- figures


def title(label: str) -> str:
    """An input's name in figures and claims, lifts included (``lin8`` → ``linear lift d=8``)."""
    enc = parse_input(label)
    if isinstance(enc, LinearLift):
        return f"linear lift d={enc.out_dim}"
    if isinstance(enc, CurveLift):
        return f"curve d={enc.out_dim}"
    if isinstance(enc, GaussianRFF):
        return f"RFF σ={enc.sigma:g}, d={enc.out_dim}"
    return figures.input_title(label)


def _suptitle(fig: Figure, text: str) -> None:
    """The figure title wrapped to the figure's width (about 10 characters per inch at the default
    12 pt), so that it does not run off a figure of one or two panels."""
    fig.suptitle(textwrap.fill(text, max(20, int(fig.get_figwidth() * 10))))


def unit_matrix(blocks: Sequence[Mapping[str, Any]], field: str, units: Sequence[Any]) -> np.ndarray:
    """``units × blocks``: ``block[field][str(unit)]``, NaN where it is None (never within the budget)."""
    return np.array(
        [[np.nan if b[field][str(u)] is None else b[field][str(u)] for b in blocks] for u in units],
        dtype=float,
    )


def frequency_map(
    panels: dict[str, tuple[list[str], np.ndarray]],
    freqs: Sequence[Any],
    xlabel: str,
    text: str,
    colorbar: str,
    log: bool = False,
    vmax: float | None = None,
) -> Figure:
    """Frequency (or band) × column heatmaps, one panel per entry of ``panels`` (``(column labels,
    K × columns matrix)``); NaN cells (e.g. never below the threshold within the budget) are grey."""
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
    _suptitle(fig, text)
    return fig


def metric_lines(
    series: dict[str, tuple[Sequence[int], dict[str, tuple[np.ndarray, np.ndarray]]]],
    metrics: dict[str, str],
    xlabel: str,
    text: str,
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
        if metric in ("regions", "points_per_region"):
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = max(1, min(len(labels), int(fig.get_figwidth() / 2.2)))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8)
    _suptitle(fig, text)
    return fig


def seed_stats(
    per_point: Sequence[Mapping[str, np.ndarray]], metrics: Iterable[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{metric: (mean over seeds per point, std over seeds per point)}`` for :func:`metric_lines`."""
    return {
        m: (np.array([s[m].mean() for s in per_point]), np.array([s[m].std() for s in per_point]))
        for m in metrics
    }


def record_seeds(
    result: ExperimentResult, exp: str, group: Hashable, datas: Sequence[RunData], values: Mapping, last: str
) -> None:
    """Rows ``(exp, group, seed, last epoch, metric, "last", value)`` of each per-seed headline number
    (``last``: the probe whose last checkpoint they follow) and an array ``metric/group`` of each."""
    for s, d in enumerate(datas):
        epoch = int(d.get(last, "epochs")[-1])
        result.rows += [
            (exp, str(group), d.meta["seed"], epoch, m, "last", float(v[s])) for m, v in values.items()
        ]
    for m, v in values.items():
        result.arrays[f"{m}/{group}"] = np.asarray(v)


def record_hits(
    result: ExperimentResult,
    exp: str,
    group: Hashable,
    datas: Sequence[RunData],
    point_hits: Hits,
    units: Sequence[str],
    fields: tuple[str, str],
    trained: bool,
) -> None:
    """Rows of the first checkpoint each seed brought each unit below the threshold (none when it
    never did): ``fields = (epochs field, steps field)``; the epoch row holds the checkpoint label,
    or the epochs trained (label + 1) when ``trained``; the step row ``(label + 1)·steps per epoch``."""
    spe = group.steps_per_epoch if isinstance(group, SweepKey) else 1
    for d, seed_hits in zip(datas, point_hits):
        for unit, e in zip(units, seed_hits):
            if e is not None:
                base = (exp, str(group), d.meta["seed"], e)
                result.rows.append((*base, fields[0], unit, float(e + 1 if trained else e)))
                result.rows.append((*base, fields[1], unit, float((e + 1) * spe)))
