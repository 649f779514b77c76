"""Density and dimension (issue 6), the 1D side of the sweep analysis (:mod:`.sweep`): X6 trains the
paper's tone mixture at every N of a sweep, full batch and with a fixed batch size, and asks whether
the high tones slow down as the coordinate gets denser; X7 lifts the coordinate to ``ℝᵈ`` (a line, a
smooth curve, PE, RFF) at one N and asks whether the dimension or the encoding helps. Protocols,
profiles, the claims list and measured numbers: ``docs/experiments/density.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from matplotlib.figure import Figure

from specbias._checks import check_int
from specbias.claims import AllOf, Claim, Compare, Flat, Level, RankCorrelation, SeedTable
from specbias.encodings import CurveLift, GaussianRFF, LinearLift, NeRFPE, Raw, parse_input
from specbias.errors import ConfigError
from specbias.experiments.analysis import Runs, group_label
from specbias.experiments.base import Experiment, ExperimentResult, check_study
from specbias.experiments.params import NETWORK, TRAIN, Overridable
from specbias.experiments.sweep import (
    Hits,
    Sweep,
    SweepKey,
    SweepLine,
    begin,
    common_units,
    encoded_claims,
    error_at,
    finish,
    frequency_map,
    hits,
    metric_lines,
    neighbour_claims,
    neighbourhood,
    neighbourhood_entry,
    never,
    put_range,
    put_seeds,
    raw_and_pe,
    record_hits,
    record_seeds,
    seed_mean,
    seed_stats,
    spread_claim,
    sweep_trend,
    time_to_converge,
    unit_matrix,
    unlearned,
)
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
from specbias.thresholds import threshold
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

CONVERGED = f"target frequency reached rel. error {threshold('rel_err').value:g}"
"""What converging means, in the reason of a claim that cannot be measured."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Sweep1D(Overridable):
    """What X6 and X7 share: the paper's 1D target, the network, the optimiser and the probes."""

    inputs: tuple[str, ...] = ("raw01", "raw11", "pe3", "pe6")
    signal: ToneMixture = ToneMixture()
    width: int = 128
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=500)
    probes: tuple[ProbeSpec, ...] = PROBES
    seeds: int = 5

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TRAIN, **NETWORK, "inputs": ("inputs",)}

    def __post_init__(self) -> None:
        check_study(self.inputs, width=self.width, depth=self.depth, seeds=self.seeds)

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
            check_int("every N of sizes", n, 2)
            dataclasses.replace(self.signal, n=n)  # ConfigError when the target does not fit N
        if self.batch_size is not None:
            check_int("batch size", self.batch_size, 1)
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
            check_int("batch_epochs", self.batch_epochs, 1)

    def apply(self, name: str, value: Any) -> Density:
        """``--inputs`` and ``--epochs`` apply to both variants (the batch variant's own inputs and
        epochs are reset to follow them)."""
        if name == "inputs":
            return dataclasses.replace(self, inputs=value, batch_inputs=None)
        out = super().apply(name, value)
        return dataclasses.replace(out, batch_epochs=None) if name == "epochs" else out

    def variants(self) -> list[tuple[int | None, tuple[str, ...], int]]:
        """``(batch size, inputs, epochs)`` of each variant: full batch first."""
        out = [(None, self.inputs, self.train.epochs)]
        if self.batch_size is not None:
            out.append(
                (self.batch_size, self.batch_inputs or self.inputs, self.batch_epochs or self.train.epochs)
            )
        return out

    def sweeps(self) -> list[Sweep]:
        """Every input's sweep over N, per variant (full batch first), with its common step budget
        (the smallest N's ``epochs × ⌈N/B⌉``)."""
        out = []
        for batch, labels, epochs in self.variants():
            for label in labels:
                keys = tuple(SweepLine(label, batch).at(n) for n in sorted(self.sizes))
                out.append(Sweep(keys[0].line, keys, epochs * keys[0].steps_per_epoch, epochs))
        return out

    def points(self) -> list[SweepKey]:
        """Every sweep point in order: the groups of the analysis."""
        return [k for sweep in self.sweeps() for k in sweep.keys]

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
        check_int("lift dimension d", d, 2)  # the curve needs two
        out += [f"lin{d}", f"curve{d}"]
        if d % 2 == 0 and NeRFPE(d // 2).frequencies().max() < n / 2:
            out.append(f"pe{d // 2 - 1}")
        out.append(f"rff{sigma:g}x{d}")
    return tuple(out)


@dataclass(frozen=True)
class Lifts(Sweep1D):
    """X7 parameters: every input (raw, lifts, encodings) at the signal's N, full batch."""

    inputs: tuple[str, ...] = lift_inputs((2, 8, 14, 32), 2048)

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {**Sweep1D.OVERRIDES, "n": ("signal.n",)}

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


def _tone_curves(data: RunData) -> tuple[np.ndarray, np.ndarray]:
    """``(checkpoint labels, checkpoints × tones relative error)`` of a run."""
    return data.get("convergence", "epochs"), data.get("convergence", "rel_error")


def _high(rel_error: np.ndarray) -> np.ndarray:
    """Mean relative error over the upper half of the target's tones (k >= 40 for the paper's)."""
    return rel_error[..., rel_error.shape[-1] // 2 :].mean(axis=-1)


def _high_at(data: RunData, spe: int, step: float) -> float:
    """The upper half's mean relative error after ``step`` optimiser steps (linear between checkpoints)."""
    epochs, rel = _tone_curves(data)
    return error_at(epochs, _high(rel), spe, step)


def per_seed(
    datas: Sequence[RunData], key: SweepKey, common_step: int | None = None
) -> dict[str, np.ndarray]:
    """Headline numbers of each seed after the last epoch: tones converged, the final relative error
    (mean over the tones and over the upper half), the neighbourhood numbers; with ``common_step``,
    the upper half's relative error after that many optimiser steps."""
    final = np.stack([d.get("convergence", "rel_error")[-1] for d in datas])
    out = {
        "n_converged": np.array(
            [sum(h is not None for h in row) for row in hits(datas, _tone_curves)], float
        ),
        "rel_err_mean": final.mean(axis=1),
        "rel_err_high": _high(final),
        **neighbourhood(datas, key.n_points),
    }
    if common_step is not None:
        spe = key.steps_per_epoch
        out["rel_err_high_at_common_step"] = np.array([_high_at(d, spe, common_step) for d in datas])
    return out


def block(summary: dict, seeds: dict[str, np.ndarray], key: SweepKey) -> dict[str, Any]:
    """One (input, N or d) entry of the tables: convergence per frequency in epochs and steps, the
    final relative errors, the local confusion and Hamming, the region count (means over seeds)."""
    spe = key.steps_per_epoch
    epochs = summary["epochs_to_rel_err_0.1"]
    out = {
        "n": key.size,
        "batch_size": key.batch,
        "steps_per_epoch": spe,
        "window_samples": round(WINDOW * key.size),
        "epochs_to_rel_err_0.1": epochs,
        "epochs_trained_to_rel_err_0.1": {k: None if e is None else e + 1 for k, e in epochs.items()},
        "steps_to_rel_err_0.1": {k: None if e is None else (e + 1) * spe for k, e in epochs.items()},
        "n_converged_all_seeds": sum(e is not None for e in epochs.values()),
        "final_rel_err": summary["final_rel_err"],
        "final_rel_err_mean": float(seeds["rel_err_mean"].mean()),
        "final_rel_err_high": float(seeds["rel_err_high"].mean()),
        **neighbourhood_entry(summary, seeds),
    }
    if "rel_err_high_at_common_step" in seeds:
        out["rel_err_high_at_common_step"] = float(seeds["rel_err_high_at_common_step"].mean())
    return out


def _record(
    result: ExperimentResult, exp: str, group: Any, datas: list[RunData], seeds: dict, found: Hits
) -> None:
    """Rows and arrays of one group: per-seed headline numbers, the first epoch (and step) each tone
    is below the threshold, and the relative error per checkpoint and tone (seeds × checkpoints × K)."""
    record_seeds(result, exp, group, datas, seeds, "convergence")
    tones = [str(int(k)) for k in datas[0].arrays["signal/freqs"]]
    record_hits(
        result, exp, group, datas, found, tones, ("epochs_to_rel_err_0.1", "steps_to_rel_err_0.1"), False
    )
    result.arrays[f"rel_error/{group}"] = np.stack([d.get("convergence", "rel_error") for d in datas])
    result.arrays[f"rel_error_epochs/{group}"] = datas[0].get("convergence", "epochs")


# --------------------------------------------------------------------------- X6 claims


_HIGH = "the high tones (upper half)"


def _raw_claims(table: SeedTable, sweep: Sweep) -> list[Claim]:
    """Raw coordinates, full batch (the paper's reading): denser means slower high frequencies, more
    conflicting neighbours, more points per region."""
    name = sweep.line.name
    return [
        sweep_trend(
            table,
            f"{name}: fewer frequencies reach rel. error 0.1 within the budget as N grows",
            "n_converged",
            sweep,
            False,
        ),
        sweep_trend(
            table,
            f"{name}: {_HIGH} end further from the target as N grows",
            "rel_err_high",
            sweep,
            True,
            unlearned(table, "rel_err_high", sweep.keys, _HIGH),
        ),
        *neighbour_claims(table, sweep, "in a window of fixed width"),
    ]


def _pe_claims(table: SeedTable, sweep: Sweep) -> list[Claim]:
    """PE, full batch: N hardly matters, neither for the count of converged tones nor for the epochs."""
    name = sweep.line.name
    return [
        Flat(
            text=f"{name}: the number of converged frequencies hardly depends on N",
            reads="n_converged",
            over=sweep.keys,
        ),
        Flat(
            text=f"{name}: the epochs to converge hardly depend on N",
            reads="epochs_to_converge",
            over=sweep.keys,
            unless=never(table, sweep, CONVERGED),
        ),
    ]


def _batch_raw_claims(table: SeedTable, sweep: Sweep) -> list[Claim]:
    """Raw, fixed batch size: ``N/B`` steps per epoch, so per epoch denser is faster, while per step
    (at the smallest N's step budget) raw should still slow down."""
    name, why = sweep.line.name, unlearned(table, "rel_err_high", sweep.keys, _HIGH)
    at_step = unlearned(table, "rel_err_high_at_common_step", sweep.keys, _HIGH)
    return [
        sweep_trend(
            table,
            f"{name}: per epoch, convergence gets faster as N grows (N/B steps per epoch) (final "
            "upper-half rel. error)",
            "rel_err_high",
            sweep,
            False,
            why,
        ),
        sweep_trend(
            table,
            f"{name}: per step, convergence slows down as N grows (upper-half rel. error after "
            f"{sweep.steps} steps)",
            "rel_err_high_at_common_step",
            sweep,
            True,
            at_step,
        ),
    ]


def density_claims(sweeps: Sequence[Sweep], table: SeedTable) -> list[Claim | None]:
    """X6's claims over each raw or PE input's sweep (of at least two N), and the comparison of how
    much N moves the high tones for PE and for raw; ``table`` holds :func:`per_seed`'s quantities,
    the times to converge (:func:`~.sweep.time_to_converge`) and the ranges (:func:`~.sweep.put_range`)."""
    raws, pes = raw_and_pe(sweeps)
    claims: list[Claim | None] = []
    for sweep in raws:
        claims += _raw_claims(table, sweep) if sweep.line.batch is None else _batch_raw_claims(table, sweep)
    for sweep in pes:
        claims += (
            _pe_claims(table, sweep)
            if sweep.line.batch is None
            else encoded_claims(table, sweep, "N/B steps per epoch", CONVERGED)
        )
    full = [[s for s in sweeps if s.line.batch is None] for sweeps in (raws, pes)]
    how = "range over N of the upper-half rel. error, full batch"
    claims.append(spread_claim(table, *full, "rel_err_high", _HIGH, "the high tones' final error", how))
    return claims


# --------------------------------------------------------------------------- figures

_METRICS = {
    "n_converged": "frequencies with rel. error < 0.1",
    "rel_err_high": "final rel. error, upper-half tones",
    "cos_local_abs": "local |cos| (gradient confusion)",
    "hamming_local": "local Hamming distance (units)",
    "regions": "activation regions on the grid",
}

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
        panels = {k: (cols, unit_matrix(blocks, field, freqs)) for k, (cols, blocks) in columns.items()}
        text = f"{label.capitalize()} per target frequency" + ("" if "final" in name else " (grey: never)")
        out[name] = frequency_map(
            panels, freqs, xlabel, text, label, log=log, vmax=1.0 if "final" in name else None
        )
    return out


# --------------------------------------------------------------------------- X6 analysis


def analyse_density(params: Density, runs: Runs) -> ExperimentResult:
    """X6: per (input, N, batch) the per-seed numbers and the table entry, figures over N, and the
    claims over each input's sweep."""
    result, groups = begin("X6", params, runs, SweepKey.of, lambda p: p.points())
    inputs, values = result.summary["inputs"], SeedTable()
    by_n: dict[str, dict[str, dict[str, dict]]] = {}
    series: dict[str, tuple[list[int], dict]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    freqs: list[int] = []
    sweeps = params.sweeps()
    for sweep in sweeps:
        found = {k: groups[k] for k in sweep.keys if groups.get(k)}
        if not found:
            continue
        found_hits = {k: hits(datas, _tone_curves) for k, datas in found.items()}
        common = common_units(found_hits.values())
        per_n, per_point = {}, []
        for key, datas in found.items():
            seeds = per_seed(datas, key, sweep.steps if key.batch else None)
            put_seeds(values, key, datas, seeds)
            time_to_converge(values, key, datas, found_hits[key], common)
            entry = block(inputs[key], seeds, key)
            if key.batch:
                entry["common_step"] = sweep.steps
            per_n[str(key.size)] = entry
            inputs[key].update({f: entry[f] for f in ("n", "batch_size", "steps_per_epoch", "n_converged")})
            _record(result, "X6", key, datas, seeds, found_hits[key])
            per_point.append(seeds)
            freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
        put_range(values, sweep, "rel_err_high")
        by_n.setdefault(_variant(sweep.line.batch), {})[sweep.line.input] = per_n
        series[sweep.line.series] = ([k.size for k in found], seed_stats(per_point, _METRICS))
        columns[sweep.line.series] = (list(per_n), list(per_n.values()))
    result.summary["by_n"] = by_n
    result.summary["window_width"] = WINDOW
    if series:
        text = "Coordinate density: convergence, local confusion and Hamming (fixed window width), regions"
        dashed = [s for s in series if "(batch " in s]
        result.figures["density_metrics"] = metric_lines(
            series, _METRICS, "number of samples N", text, dashed
        )
        result.figures.update(_maps(columns, freqs, "N", tuple(_MAPS)))
    return finish(result, values, density_claims(sweeps, values))


# --------------------------------------------------------------------------- X7

_KINDS = {"raw": "raw [0,1) (d=1)", "lin": "linear lift", "curve": "smooth curve", "pe": "PE", "rff": "RFF"}


def lift_kind(label: str) -> tuple[str, int]:
    """``(kind, d)`` of an X7 input: raw (``[0,1)`` only, the reference), lin, curve, pe, rff or other
    (e.g. raw ``[-1,1)``), and its dimension."""
    enc = parse_input(label)
    if isinstance(enc, Raw):
        return ("raw" if (enc.lo, enc.hi) == (0.0, 1.0) else "other"), enc.out_dim
    kinds = ((LinearLift, "lin"), (CurveLift, "curve"), (NeRFPE, "pe"), (GaussianRFF, "rff"))
    return next((name for cls, name in kinds if isinstance(enc, cls)), "other"), enc.out_dim


def _difference(lift: float, raw: float) -> float:
    return abs(lift - raw)


def _factor(lift: float, raw: float) -> float:
    """How many times larger or smaller ``lift`` is than ``raw`` (1 when both are 0, inf when one is)."""
    if lift == raw:
        return 1.0
    return max(lift / raw, raw / lift) if lift > 0 and raw > 0 else math.inf


_SAME = {
    "n_converged": ("same_count", _difference),
    "rel_err_mean": ("same_err", _difference),
    "hamming_local": ("same_factor", _factor),
    "regions": ("same_factor", _factor),
}
"""X7's "a linear lift changes nothing": per quantity, its threshold and the per-seed distance of a
lift from raw ``[0,1)`` (a difference, or a factor either way), stored as ``{quantity}_vs_raw``."""


def put_lift_distances(table: SeedTable, inputs: Sequence[str]) -> None:
    """Per linear lift and seed: its distance from raw ``[0,1)``'s value on the same seed (:data:`_SAME`)."""
    raw = next((lb for lb in inputs if lift_kind(lb)[0] == "raw"), None)
    for label in (lb for lb in inputs if lift_kind(lb)[0] == "lin" and raw is not None):
        for quantity, (_, distance) in _SAME.items():
            lift, ref = table.get(label, quantity), table.get(raw, quantity)
            table.put(label, f"{quantity}_vs_raw", {s: distance(lift[s], ref[s]) for s in lift if s in ref})


def _nothing_converged(table: SeedTable, labels: Sequence[str]) -> str | None:
    """Why counting converged tones cannot compare ``labels``: none of them converges one in any seed."""
    counts = [v for lb in labels for v in table.get(lb, "n_converged").values()]
    if not counts or any(counts):
        return None
    return f"no tone converges for {', '.join(labels)} in any seed: the count cannot tell them apart"


def _same_claims(table: SeedTable, raw: str, lins: Sequence[str]) -> list[Claim]:
    """A linear lift changes nothing: at every d its distance from raw stays below the threshold."""
    err, factor = threshold("same_err").value, threshold("same_factor").value
    texts = {
        "n_converged": "at every d it converges as many frequencies as raw [0,1) (±1)",
        "rel_err_mean": f"at every d its final rel. error (mean over the tones) is within {err:g} of "
        "raw [0,1)'s",
        "hamming_local": f"its local Hamming distance stays within a factor {factor:g} of raw [0,1)'s "
        "at every d",
        "regions": f"its region count stays within a factor {factor:g} of raw [0,1)'s at every d",
    }
    claims: list[Claim] = []
    for quantity, (name, _) in _SAME.items():
        parts = [
            Level(
                text=f"{lb} vs {raw}: {quantity}",
                reads=f"{quantity}_vs_raw",
                group=lb,
                threshold=name,
                above=False,
            )
            for lb in lins
        ]
        unless = _nothing_converged(table, [raw, *lins]) if quantity == "n_converged" else None
        claims.append(
            AllOf(text=f"a linear lift changes nothing: {texts[quantity]}", parts=parts, unless=unless)
        )
    return claims


def _per_dimension_claims(table: SeedTable, d: int, labels: Sequence[str]) -> list[Claim]:
    """At one d: the input that separates neighbours most fits best, and a smooth curve separates
    neighbours less than PE/RFF (the tops chosen by their means over seeds)."""
    top = max(labels, key=lambda lb: seed_mean(table, lb, "hamming_local"))
    claims: list[Claim] = [
        AllOf(
            text=f"d={d}: the input that separates neighbours most (highest local Hamming) fits the target "
            "best (lowest mean final rel. error)",
            parts=[
                Compare(
                    text=f"d={d}: {top} fits better than {lb}",
                    reads="rel_err_mean",
                    a=top,
                    b=lb,
                    relation="<",
                )
                for lb in labels
                if lb != top
            ],
        )
    ]
    curve = next((lb for lb in labels if lift_kind(lb)[0] == "curve"), None)
    encoded = [lb for lb in labels if lift_kind(lb)[0] in ("pe", "rff")]
    if curve and encoded:
        best = max(encoded, key=lambda lb: seed_mean(table, lb, "hamming_local"))
        claims.append(
            Compare(
                text=f"d={d}: a smooth low-frequency curve separates neighbours less than PE/RFF "
                "(local Hamming)",
                reads="hamming_local",
                a=curve,
                b=best,
                relation="<",
            )
        )
    return claims


def lift_claims(table: SeedTable, inputs: Sequence[str]) -> list[Claim]:
    """X7's claims over its inputs; ``table`` holds :func:`per_seed`'s quantities per input and the
    lifts' distances from raw (:func:`put_lift_distances`)."""
    kinds = {lb: lift_kind(lb) for lb in inputs}
    raw = next((lb for lb, (kind, _) in kinds.items() if kind == "raw"), None)
    lins = [lb for lb, (kind, _) in kinds.items() if kind == "lin"]
    claims = _same_claims(table, raw, lins) if raw and lins else []
    by_d: dict[int, list[str]] = {}
    for lb, (kind, d) in kinds.items():
        if kind != "raw":
            by_d.setdefault(d, []).append(lb)
    for d in sorted(by_d):
        if len(by_d[d]) >= 2:
            claims += _per_dimension_claims(table, d, by_d[d])
    if len(inputs) >= 3:
        claims.append(
            RankCorrelation(
                text="across all inputs and d, separating neighbours goes with fitting the target (rank "
                "correlation of local Hamming and minus the mean final rel. error >= "
                f"{threshold('rank_corr').value:g})",
                reads="hamming_local",
                against="rel_err_mean",
                over=list(inputs),
                negative=True,
            )
        )
    return claims


def analyse_lifts(params: Lifts, runs: Runs) -> ExperimentResult:
    """X7: per input its per-seed numbers and table entry, figures over d, and the claims."""
    result, groups = begin("X7", params, runs, group_label, lambda p: p.inputs)
    inputs, values = result.summary["inputs"], SeedTable()
    by_dimension: dict[str, dict[str, dict]] = {}
    per_kind: dict[str, tuple[list[int], list[dict]]] = {}
    columns: dict[str, tuple[list[str], list[dict]]] = {}
    freqs: list[int] = []
    for label in params.inputs:
        datas = groups.get(label)
        if not datas:
            continue
        kind, d = lift_kind(label)
        seeds = per_seed(datas, SweepKey(label, params.signal.n))
        put_seeds(values, label, datas, seeds)
        entry = {"input": label, "d": d, **block(inputs[label], seeds, SweepKey(label, params.signal.n))}
        by_dimension.setdefault(kind, {})[str(d)] = entry
        inputs[label].update({"kind": kind, "d": d, "n_converged": entry["n_converged"]})
        _record(result, "X7", label, datas, seeds, hits(datas, _tone_curves))
        xs, ss = per_kind.setdefault(kind, ([], []))
        xs.append(d)
        ss.append(seeds)
        cols, blocks = columns.setdefault(_KINDS.get(kind, kind), ([], []))
        cols.append(f"d={d}")
        blocks.append(entry)
        freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
    result.summary["by_dimension"] = by_dimension
    if per_kind:
        series = {_KINDS.get(k, k): (xs, seed_stats(ss, _METRICS)) for k, (xs, ss) in per_kind.items()}
        text = "Lifting the 1D coordinate to d dimensions: is it the dimension or the encoding?"
        result.figures["dimension_metrics"] = metric_lines(series, _METRICS, "input dimension d", text)
        result.figures.update(_maps(columns, freqs, "dimension", ("convergence_epochs", "final_rel_error")))
    put_lift_distances(values, params.inputs)
    return finish(result, values, lift_claims(values, params.inputs))


# --------------------------------------------------------------------------- registry

X6_PAPER = Density()
X6_QUICK = Density(
    sizes=(256, 512, 1024, 2048),
    train=TrainConfig(epochs=300),
    batch_inputs=("raw01", "pe6"),
    batch_epochs=100,
    seeds=3,
)
X7_PAPER = Lifts()
X7_QUICK = Lifts(
    inputs=lift_inputs((2, 14, 32), 512),
    signal=ToneMixture(n=512),
    train=TrainConfig(epochs=300),
    seeds=3,
)

DENSITY_EXPERIMENTS = (
    Experiment.of(
        id="X6",
        title="Coordinate density (1D, N = 256 … 8192, full batch and batch 128)",
        claim="With raw coordinates the high frequencies slow down as N grows; with PE N hardly matters.",
        quick=X6_QUICK,
        standard=dataclasses.replace(X6_QUICK, seeds=5),
        paper=X6_PAPER,
        analyse=analyse_density,
    ),
    Experiment.of(
        id="X7",
        title="Dimension or encoding (1D coordinate lifted to d = 2, 8, 14, 32)",
        claim="A linear lift changes nothing; what helps is an encoding that separates neighbours.",
        quick=X7_QUICK,
        standard=dataclasses.replace(X7_QUICK, seeds=5),
        paper=X7_PAPER,
        analyse=analyse_lifts,
    ),
)
