"""The 2D study (E4a-f, E5-E12, E15, E16, E20, X2, X3): coordinate images, activation regions and
their geometry -- run configs, analysis parts and the paper's claims about them.

Three run families (the 64² random image, natural photographs, held-out generalisation) are each
trained once and read by every experiment that needs them. Protocols, profile choices, the claims
with what they read and their thresholds, and measured numbers: docs/experiments/study2d.md.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from specbias import figures
from specbias.claims import AllOf, Claim, Compare, Level, SeedTable, Trend, evaluate
from specbias.encodings import RestrictedPE, aliased_features, parse_input
from specbias.errors import ConfigError
from specbias.experiments.analysis import (
    Groups,
    Part,
    PartFn,
    Runs,
    confusion_part,
    encoding_rank,
    hamming_part,
    make_analysis,
    raw_and_encoded,
    scalar_curve_rows,
)
from specbias.experiments.base import Experiment, ExperimentResult, check_study
from specbias.experiments.params import NETWORK, TRAIN, Overridable, replace_at
from specbias.metrics.geometry import encoding_distance_matrix, hyperplane_matrix
from specbias.runs import (
    BandSpec,
    BoundarySpec,
    ConfusionSpec,
    DeadUnitSpec,
    HammingSpec,
    HeldOutSpec,
    HyperplaneSpec,
    NormSpec,
    PatchPairSpec,
    ProbeSpec,
    RandomPairSpec,
    RegionMapSpec,
    RegionSpec,
    RunConfig,
    RunData,
)
from specbias.seeding import rng_for
from specbias.signals import NaturalImage, RandomImage, grid_2d
from specbias.training import Schedule, TrainConfig

NATURAL_IMAGES = ("astronaut", "camera", "coffee", "chelsea", "rocket")
NATURAL_IMAGES_512 = ("astronaut", "camera", "immunohistochemistry", "hubble_deep_field", "retina")
MAIN_PAIRS = PatchPairSpec(patches=100, patch=3 / 64, global_pairs=10000)
E15_PAIRS = dataclasses.replace(MAIN_PAIRS, faithful_scheme="depth_width")
"""E4's pairs; in faithful mode with the E15 script's corner blocks ``[0,30)``/``[35,64)`` (spec §1.7)."""
NATURAL_PAIRS = PatchPairSpec(
    patches=100,
    patch=50 / 512,
    pairs_per_patch=500,
    global_pairs=50000,
    near=0.44,
    far=0.537,
    faithful_scheme="natural",
)

X3_PAIRS = dataclasses.replace(NATURAL_PAIRS, pairs_per_patch=50, global_pairs=5000)
"""X3's confusion pairs: E5's windows with a tenth of the pairs (5,000 of each kind are plenty for a
share above 0.9, and X3's runs are otherwise cheap)."""


def suite_probes(
    every: int, pairs: PatchPairSpec, random_pairs: int | None = None, boundary_every: int | None = None
) -> tuple[ProbeSpec, ...]:
    """Every probe of the 2D suites at one checkpoint cadence (confusion and maps at the ends); the
    exact input-space boundary distance, the costliest probe, may run less often."""
    often = Schedule(every=every, last=True)
    ends = Schedule(explicit=(0,), last=True)
    probes: list[ProbeSpec] = [
        HammingSpec(often, pairs),
        RegionSpec(often),
        RegionMapSpec(ends),
        DeadUnitSpec(often),
        NormSpec(often),
        HyperplaneSpec(often),
        HyperplaneSpec(ends, keep_matrices=True, name="hyperplane_matrices"),
        BoundarySpec(Schedule(every=boundary_every or every, last=True)),
        BandSpec(often),
        ConfusionSpec(Schedule(last=True), pairs),
    ]
    if random_pairs:
        probes.append(HammingSpec(often, RandomPairSpec(random_pairs), name="hamming_random"))
    return tuple(probes)


@dataclass(frozen=True)
class Study2D(Overridable):
    """Parameters of an image study. Seed ``s`` trains on ``images[s % len(images)]``.

    ``jacobian_inputs``: the inputs whose confusion probe also records the output-Jacobian cosine
    (the residual-free part of the loss-gradient cosine). It is per input so that the runs other
    experiments share with E5 carry it while the rest keep their cached hashes."""

    images: tuple[RandomImage | NaturalImage, ...] = (RandomImage(64),)
    inputs: tuple[str, ...] = ("raw01", "raw11", "pe5")
    width: int = 128
    depth: int = 2
    archs: tuple[tuple[int, int], ...] = ()
    train: TrainConfig = TrainConfig(epochs=1000, batch_size=256)
    probes: tuple[ProbeSpec, ...] = suite_probes(50, MAIN_PAIRS)
    seeds: int = 3
    mode: str = "clean"
    held_out: bool = False
    jacobian_inputs: tuple[str, ...] = ()

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TRAIN, **NETWORK, "size": ("images.*.size",), "images": ("images",), "inputs": ("inputs",),
        "mode": ("mode",),
    }  # fmt: skip

    def __post_init__(self) -> None:
        check_study(
            self.inputs, in_dim=2, convention="2d", mode=self.mode, width=self.width, depth=self.depth,
            seeds=self.seeds,
        )  # fmt: skip

    def apply(self, name: str, value: Any) -> Study2D:
        """Overrides that do more than set a path: ``--width``/``--depth`` do not apply to an
        architecture sweep; ``--images`` (scikit-image names or PNG/JPEG paths; seed ``s`` trains on
        image ``s mod count``) keep the size and channels; ``--mode faithful`` also takes the
        reference's fixed batches (B3); a study that measures the output Jacobian on all its inputs
        measures it on overridden inputs too."""
        if name in ("width", "depth") and self.archs:
            sizes = ", ".join(f"{d}×{w}" for d, w in self.archs)
            raise ConfigError(
                f"--{name} does not apply to an architecture sweep (it trains depth × width {sizes})"
            )
        if name == "images":
            if not all(isinstance(im, NaturalImage) for im in self.images):
                raise ConfigError("--images applies to the natural-image experiments")
            size, channels = self.images[0].size, self.images[0].channels
            value = tuple(NaturalImage(im, size=size, channels=channels) for im in value)
        out = super().apply(name, value)
        if name == "mode" and value == "faithful":
            return replace_at(out, "train.batching", "fixed")
        if name == "inputs" and self.jacobian_inputs and set(self.inputs) <= set(self.jacobian_inputs):
            return replace_at(out, "jacobian_inputs", tuple(dict.fromkeys((*self.jacobian_inputs, *value))))
        return out

    def probes_for(self, label: str) -> tuple[ProbeSpec, ...]:
        """The probes of ``label``'s runs: with the output-Jacobian cosine when ``label`` is in
        ``jacobian_inputs``."""
        if label not in self.jacobian_inputs:
            return self.probes
        return tuple(
            dataclasses.replace(p, output_jacobian=True) if isinstance(p, ConfusionSpec) else p
            for p in self.probes
        )

    def runs(self, seeds: int) -> list[RunConfig]:
        archs = self.archs or ((self.depth, self.width),)
        return [
            RunConfig(
                signal=self.images[seed % len(self.images)],
                input=label,
                width=width,
                depth=depth,
                train=self.train,
                probes=self.probes_for(label),
                seed=seed,
                mode=self.mode,
                held_out=self.held_out,
            )
            for depth, width in archs
            for label in self.inputs
            for seed in range(seeds)
        ]

    def training_side(self) -> int:
        """The side of the grid the networks train on (held out: every other pixel)."""
        return self.images[0].size // (2 if self.held_out else 1)


def _natural(size: int, count: int = 5) -> tuple[NaturalImage, ...]:
    """``count`` bundled photographs at side ``size``: the quick set, or at 512² the ones whose centre
    crop is that large (chelsea, coffee and rocket are 300-427 px; images are never upsampled)."""
    names = NATURAL_IMAGES if size <= 256 else NATURAL_IMAGES_512
    return tuple(NaturalImage(name, size=size) for name in names[:count])


_MAIN_INPUTS = ("raw01", "raw11", "pe5")
_E5_JACOBIAN = ("raw01", "pe16")
"""The natural-suite inputs whose runs measure the output Jacobian: the two E5's claims read (raw and
the top PE). On E5's 100,000 pairs it costs 2-3 times the loss-gradient pass (1-1.6 s a run)."""
MAIN_QUICK = Study2D(
    train=TrainConfig(epochs=500, batch_size=256),
    probes=suite_probes(25, MAIN_PAIRS),
    jacobian_inputs=_MAIN_INPUTS,
)
MAIN_PAPER = dataclasses.replace(
    MAIN_QUICK,
    train=TrainConfig(epochs=5000, batch_size=256),
    probes=suite_probes(100, MAIN_PAIRS, boundary_every=500),
    seeds=5,
)
NATURAL_QUICK = Study2D(
    images=_natural(64),
    inputs=("raw01", "raw11", "pe4", "pe8"),
    width=128,
    depth=4,
    train=TrainConfig(epochs=300, batch_size=512),
    probes=suite_probes(15, NATURAL_PAIRS, random_pairs=20000, boundary_every=30),
    jacobian_inputs=_E5_JACOBIAN,
)
NATURAL_STANDARD = dataclasses.replace(
    NATURAL_QUICK,
    images=_natural(128),
    train=TrainConfig(epochs=500, batch_size=512),
    probes=suite_probes(25, NATURAL_PAIRS, random_pairs=20000, boundary_every=50),
)
NATURAL_PAPER = dataclasses.replace(
    NATURAL_QUICK,
    images=_natural(512),
    width=512,
    train=TrainConfig(epochs=1000, batch_size=8192),
    probes=suite_probes(10, NATURAL_PAIRS, random_pairs=50000),
    seeds=5,
)


def _select(params: Study2D, inputs: tuple[str, ...], **changes: Any) -> Study2D:
    return dataclasses.replace(params, inputs=inputs, **changes)


@dataclass(frozen=True)
class Net:
    """E15's group: one input on one network size (depth × width)."""

    input: str
    depth: int
    width: int

    def __str__(self) -> str:
        return f"{self.input}@{self.depth}x{self.width}"


@dataclass(frozen=True)
class Extreme:
    """E16's derived group: a per-seed order statistic of the final region counts of some inputs."""

    what: str

    def __str__(self) -> str:
        return self.what


# ---------------------------------------------------------------- aliasing against the paper's grid


def aliased_here_only(
    runs: Runs, key: Callable[[RunConfig], Hashable], paper: Study2D
) -> dict[Hashable, str]:
    """The groups whose input aliases on this grid (a run's ``aliased_features``; the most over its
    seeds) but has no feature above the Nyquist limit of the paper profile's grid, with the reason
    in words: a claim reading them does not compare what the paper compared."""
    side = paper.training_side()
    most: dict[Hashable, tuple[int, RunConfig, RunData]] = {}
    for cfg, data in runs:
        here = int(data.meta["aliased_features"])
        if here > most.get(key(cfg), (0,))[0] and not aliased_features(cfg.encoding(), 1.0 / side).size:
            most[key(cfg)] = (here, cfg, data)
    return {
        group: f"{cfg.input} aliases on this {data.meta['shape'][-1]}² grid ({here} of {data.meta['in_dim']} "
        f"features above its Nyquist limit) but not on the paper's {side}² grid: not the paper's comparison"
        for group, (here, cfg, data) in most.items()
    }


def _marking(reasons: dict[Hashable, str]) -> PartFn:
    """A part that marks the groups in ``reasons`` not measurable (every claim reading them)."""

    def part(exp: str, groups: Groups, summary: dict) -> Part:
        out = Part()
        for group, why in reasons.items():
            out.table.mark(group, why)
        return out

    return part


# ---------------------------------------------------------------- analysis parts


def _first_seed_maps(groups: Groups, c: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Region ids and layer-1 unit maps at region-map checkpoint ``c`` of each input's first
    (converged) seed."""
    out = {}
    for label, datas in groups.items():
        d = datas[0]
        h, w = d.meta["shape"]
        ids = d.get("region_map", "ids")[c].reshape(h, w)
        units = d.get("region_map", "units")[c].reshape(-1, h, w)
        out[label] = (ids, units)
    return out


def _region_maps(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part()
    first = next(iter(groups.values()))[0]
    epochs = first.get("region_map", "epochs")
    for c, epoch in enumerate(epochs):
        maps = _first_seed_maps(groups, c)
        for label, (ids, units) in maps.items():
            part.arrays[f"region_ids/{label}/epoch{epoch}"] = ids
            part.arrays[f"unit_maps/{label}/epoch{epoch}"] = units
        when = figures.trained_for(int(epoch))
        units = [int(u) for u in first.get("region_map", "unit_ids")[c]]
        seeds = sorted({datas[0].meta["seed"] for datas in groups.values()})
        seed = f"seed {seeds[0]}" if len(seeds) == 1 else "first converged seed"
        part.figures[f"region_map_epoch{epoch}"] = figures.region_maps(
            maps, f"Activation regions ({when}, {seed})", units
        )
    return part


def _regions_rows_and_figure(exp: str, groups: Groups) -> Part:
    part = Part(rows=scalar_curve_rows(exp, groups, "regions", ("all", "layer1", "saturated"), "regions"))
    first = next(iter(groups.values()))[0]
    epochs = first.get("regions", "epochs")
    series = {k: {"all layers": np.stack([d.get("regions", "all") for d in v])} for k, v in groups.items()}
    for label, s in series.items():
        part.arrays[f"regions/{label}"] = s["all layers"]
    part.figures["regions"] = figures.mean_std_curves(
        epochs,
        series,
        f"distinct patterns (of {first.meta['n_points']} points)",
        "Activation regions on the grid",
        panel_title="{}",
    )
    return part


def saturated(groups: Groups, labels: Sequence[Hashable], index: int) -> str | None:
    """Why a comparison of region counts at checkpoint ``index`` cannot be measured: every run of
    every group in ``labels`` has one region per grid point there (the count is only a lower bound)."""
    if all(d.get("regions", "saturated")[index] for g in labels for d in groups.get(g, ())):
        names = " and ".join(str(g) for g in labels)
        return f"{names}: saturated at one region per grid point (the count is only a lower bound)"
    return None


def _pairwise(
    text: str,
    reads: str,
    labels: Sequence[Hashable],
    relation: str,
    unless: Callable[[Hashable, Hashable], str | None] | None = None,
) -> list[Claim]:
    """``a <relation> b`` for each consecutive pair of ``labels`` (``text`` formatted with a, b);
    ``unless(a, b)``: why a pair cannot be measured, or None."""
    return [
        Compare(text=text.format(a=a, b=b), reads=reads, a=a, b=b, relation=relation,
                unless=unless(a, b) if unless else None)
        for a, b in itertools.pairwise(labels)
    ]  # fmt: skip


def _highest_vs_lowest(groups: Groups, text: str, reads: str) -> list[Compare]:
    """``highest > lowest`` on ``reads`` for the first and last inputs in encoding order (``text``
    formatted with ``hi`` and ``lo``); none for a single input."""
    ordered = sorted(groups, key=encoding_rank)
    if len(ordered) < 2:
        return []
    lo, hi = ordered[0], ordered[-1]
    return [Compare(text=text.format(hi=hi, lo=lo), reads=reads, a=hi, b=lo, relation=">")]


def _top_pe_vs_raw(groups: Groups, text: str, reads: str, relation: str) -> list[Claim]:
    """``top PE <relation> raw`` on ``reads`` (``text`` formatted with ``pe`` and ``raw``); none
    without a raw input and a PE."""
    raw, pes = raw_and_encoded(list(groups))
    if not (raw and pes):
        return []
    return [Compare(text=text.format(pe=pes[-1], raw=raw), reads=reads, a=pes[-1], b=raw, relation=relation)]


def _regions(exp: str, groups: Groups, summary: dict) -> Part:
    part = _regions_rows_and_figure(exp, groups)
    raw, pes = raw_and_encoded(list(groups))
    if raw:
        part.claims.append(
            Level(
                text=f"{raw} uses far fewer regions than points (< half)",
                reads="regions_share_last",
                group=raw,
                threshold="few_regions",
                above=False,
            )
        )
    if pes:
        part.claims.append(
            Level(
                text=f"{pes[-1]} approaches one region per point (>= 90%)",
                reads="regions_share_last",
                group=pes[-1],
                threshold="saturated_regions",
            )
        )
    part.claims += _pairwise(
        "regions at the first checkpoint: {a} < {b}",
        "regions_first",
        sorted(groups, key=encoding_rank),
        "<",
        lambda a, b: saturated(groups, (a, b), 0),
    )
    return part


def _dead(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part(rows=scalar_curve_rows(exp, groups, "dead", ("total",), "dead_units"))
    epochs = next(iter(groups.values()))[0].get("dead", "epochs")
    series = {k: {"dead units": np.stack([d.get("dead", "total") for d in v])} for k, v in groups.items()}
    for label, s in series.items():
        part.arrays[f"dead/{label}"] = s["dead units"]
    part.figures["dead_units"] = figures.mean_std_curves(
        epochs, series, "dead ReLUs (before the update)", "Dead units over training", panel_title="{}"
    )
    raws = [k for k in sorted(groups, key=encoding_rank) if encoding_rank(k)[0] == 0]
    part.claims += _pairwise("dead units fall as the range widens: {a} > {b}", "dead_last", raws, ">")
    part.claims += _top_pe_vs_raw(groups, "{raw} has more dead units than {pe}", "dead_last", "<")
    return part


def _norms(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part(rows=scalar_curve_rows(exp, groups, "norms", ("product",), "spectral_norm"))
    epochs = next(iter(groups.values()))[0].get("norms", "epochs")
    series = {
        k: {"product of σ_max": np.stack([d.get("norms", "product") for d in v])} for k, v in groups.items()
    }
    for label, datas in groups.items():
        per_layer = np.stack([d.get("norms", "per_layer") for d in datas])
        part.arrays[f"norms/{label}"] = per_layer
        series[label].update({f"layer {i + 1}": per_layer[:, :, i] for i in range(per_layer.shape[2])})
    part.figures["spectral_norms"] = figures.mean_std_curves(
        epochs, series, "spectral norm", "Spectral norms of the weights", panel_title="{}", logy=True
    )
    text = "PE does not need larger weights: {pe} < {raw} (norm product, end)"
    part.claims += _top_pe_vs_raw(groups, text, "norm_product_last", "<")
    _, pes = raw_and_encoded(list(groups))
    part.claims += _pairwise("higher L needs smaller norms: {a} < {b}", "norm_product_last", pes[::-1], "<")
    return part


def _deepest(index: int) -> Callable[[RunData], float]:
    """The deepest layer's mean off-diagonal hyperplane cosine at checkpoint ``index``."""
    return lambda d: float(d.get("hyperplanes", "mean_offdiag")[index, -1])


def _hyperplanes(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part(rows=[])
    first = next(iter(groups.values()))[0]
    epochs = first.get("hyperplanes", "epochs")
    series: dict[str, dict[str, np.ndarray]] = {}
    for label, datas in groups.items():
        stats = np.stack([d.get("hyperplanes", "mean_offdiag") for d in datas])  # seeds × ckpt × layers
        part.arrays[f"hyperplane_mean_cos/{label}"] = stats
        part.arrays[f"hyperplane_frac_pos/{label}"] = np.stack(
            [d.get("hyperplanes", "frac_positive") for d in datas]
        )
        series[label] = {f"layer {i + 1}": stats[:, :, i] for i in range(stats.shape[2])}
        for d in datas:
            for c, e in enumerate(epochs):
                part.rows.extend(
                    (exp, label, d.meta["seed"], int(e), "hyperplane_mean_cos", f"layer{i + 1}", float(v))
                    for i, v in enumerate(d.get("hyperplanes", "mean_offdiag")[c])
                )
    part.figures["hyperplane_stats"] = figures.mean_std_curves(
        epochs, series, "mean off-diagonal cosine", "Hyperplane alignment per layer", panel_title="{}"
    )
    part.figures["hyperplane_matrices"] = _hyperplane_matrices(groups, len(first.meta["hidden_sizes"]))
    part.table = SeedTable.of(
        groups, {"hyperplane_deepest_first": _deepest(0), "hyperplane_deepest_last": _deepest(-1)}
    )
    text = "deepest-layer hyperplanes are more positively aligned for {hi} than {lo} (end)"
    if highest := _highest_vs_lowest(groups, text, "hyperplane_deepest_last"):
        hi = highest[0].a
        part.claims += [
            *highest,
            Compare(text=f"{hi}: deepest-layer alignment grows over training",
                    reads="hyperplane_deepest_last", a=hi, b=hi, reads_b="hyperplane_deepest_first",
                    relation=">"),
        ]  # fmt: skip
    return part


def _hyperplane_matrices(groups: Groups, n_layers: int) -> Any:
    """Weight-row cosine matrices of each input's first seed at the saved checkpoints."""
    mats = {}
    for label, datas in groups.items():
        d = datas[0]
        for c, e in enumerate(d.get("hyperplane_matrices", "epochs")):
            layer_mats = [d.get("hyperplane_matrices", f"layer{i + 1}")[c] for i in range(n_layers)]
            mats[f"{figures.input_title(label)}, {figures.trained_for(int(e))}"] = hyperplane_matrix(
                layer_mats
            )
    return figures.matrices(mats, "Weight-row cosines (cross-layer blocks masked)")


def early_minimum_rise(curve: np.ndarray) -> float:
    """How far a curve ends above its early minimum (the lowest value of its first half), relative
    to that minimum: one seed's "regions widen after an early minimum" (negative when it ends
    lower; NaN when the minimum is not positive)."""
    curve = np.asarray(curve, dtype=np.float64)
    low = float(curve[: (curve.size + 1) // 2].min())
    return float((curve[-1] - low) / low) if low > 0 else float("nan")


def _boundary(exp: str, groups: Groups, summary: dict) -> Part:
    keys = ("feature_mean", "input_mean")
    part = Part(rows=scalar_curve_rows(exp, groups, "boundary", keys, "boundary_distance"))
    epochs = next(iter(groups.values()))[0].get("boundary", "epochs")
    series = {
        label: {
            "feature space (reference)": np.stack([d.get("boundary", "feature_mean") for d in datas]),
            "input space (exact)": np.stack([d.get("boundary", "input_mean") for d in datas]),
        }
        for label, datas in groups.items()
    }
    for label, s in series.items():
        part.arrays[f"boundary_feature/{label}"] = s["feature space (reference)"]
        part.arrays[f"boundary_input/{label}"] = s["input space (exact)"]
    part.figures["boundary_distance"] = figures.mean_std_curves(
        epochs,
        series,
        "mean distance to nearest boundary",
        "Region width over training",
        panel_title="{}",
        logy=True,
    )
    rise = "boundary_rise_after_early_min"
    part.table = SeedTable.of(groups, {rise: lambda d: early_minimum_rise(d.get("boundary", "input_mean"))})
    text = "the highest L has the widest regions at the end: {hi} > {lo}"
    if highest := _highest_vs_lowest(groups, text, "boundary_input_mean_last"):
        hi = highest[0].a
        part.claims += [
            *highest,
            Level(text=f"{hi}: regions widen after an early minimum (first half of training)", reads=rise,
                  group=hi, threshold="drift"),
        ]  # fmt: skip
    return part


def _bands(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part()
    first = next(iter(groups.values()))[0]
    epochs = first.get("bands", "epochs")
    rel = {k: np.stack([d.get("bands", "rel_energy") for d in v]) for k, v in groups.items()}
    n_bands = next(iter(rel.values())).shape[2]
    for label, data in rel.items():
        part.arrays[f"band_rel_energy/{label}"] = data
        for s, d in enumerate(groups[label]):
            part.rows.extend(
                (exp, label, d.meta["seed"], int(e), "band_rel_energy", str(b), float(data[s, c, b]))
                for c, e in enumerate(epochs)
                for b in range(n_bands)
            )
    part.rows += scalar_curve_rows(exp, groups, "bands", ("psnr",), "psnr")
    part.figures["band_convergence"] = figures.convergence_heatmap(
        epochs,
        np.arange(n_bands),
        rel,
        ylabel="radial band (low → high)",
        title="Relative residual energy per radial frequency band (mean over images)",
    )
    top = "top_band_rel_energy_last"
    part.table = SeedTable.of(groups, {top: lambda d: float(d.get("bands", "rel_energy")[-1, -1])})
    part.claims += _top_pe_vs_raw(groups, "highest band is learned better by {pe} than {raw}", top, "<")
    return part


def _layer_hamming(exp: str, groups: Groups, summary: dict) -> Part:
    part = hamming_part(exp, groups, summary, probe="hamming_random")
    first = next(iter(groups.values()))[0]
    epochs = first.get("hamming_random", "epochs")
    series = {}
    for label, datas in groups.items():
        layers = np.stack([d.get("hamming_random", "random_layer_mean") for d in datas])
        series[label] = {f"layer {i + 1}": layers[:, :, i] for i in range(layers.shape[2])}
    part.figures["hamming_per_layer"] = figures.mean_std_curves(
        epochs,
        series,
        "Hamming distance (units of the layer)",
        "Per-layer Hamming, random pairs",
        panel_title="{}",
    )
    layer1 = "hamming_random_layer1_last"
    part.table = SeedTable.of(
        groups, {layer1: lambda d: float(d.get("hamming_random", "random_layer_mean")[-1, 0])}
    )
    part.claims += _top_pe_vs_raw(
        groups, "{pe} disperses inputs already in layer 1 (above {raw})", layer1, ">"
    )
    return part


def _psnr_gap(d: RunData) -> float:
    """Train minus test PSNR after training (dB): how much the fit fails to carry to unseen pixels."""
    return float(d.get("heldout", "train_psnr")[-1] - d.get("heldout", "test_psnr")[-1])


def _heldout(exp: str, groups: Groups, summary: dict, unusable: Iterable[Hashable] = ()) -> Part:
    """X3: train and test PSNR; an encoding generalises better than raw coordinates (the best one
    whose claims can be measured here), and RFF σ=100 overfits more than σ=10."""
    part = Part(rows=scalar_curve_rows(exp, groups, "heldout", ("train_psnr", "test_psnr"), "psnr"))
    values = {
        label: {
            "train (even pixels)": np.array([d.get("heldout", "train_psnr")[-1] for d in datas]),
            "test (odd pixels)": np.array([d.get("heldout", "test_psnr")[-1] for d in datas]),
        }
        for label, datas in groups.items()
    }
    for label, v in values.items():
        part.arrays[f"train_psnr/{label}"] = v["train (even pixels)"]
        part.arrays[f"test_psnr/{label}"] = v["test (odd pixels)"]
    part.figures["generalisation"] = figures.bars(
        values, "PSNR (dB)", "Held-out generalisation (Tancik et al.)"
    )
    part.table = SeedTable.of(groups, {"psnr_gap": _psnr_gap})
    encoded = [k for k in groups if k != "raw01" and k not in set(unusable)]
    if "raw01" in summary and encoded:
        best = max(encoded, key=lambda k: float(values[k]["test (odd pixels)"].mean()))
        part.claims.append(
            Compare(
                text=f"an encoding generalises better than raw coordinates ({best})",
                reads="test_psnr",
                a=best,
                b="raw01",
                relation=">",
            )
        )
    if "rff10" in summary and "rff100" in summary:  # a diverged input is in the summary, marked
        part.claims.append(
            Compare(
                text="RFF σ=100 overfits more than σ=10 (train-test PSNR gap)",
                reads="psnr_gap",
                a="rff100",
                b="rff10",
                relation=">",
            )
        )
    return part


def _rpe_dim(label: Hashable) -> int | None:
    """The feature dimension d of a restricted-PE label ``rpe<ω>x<d>`` (None for other inputs)."""
    enc = parse_input(str(label), in_dim=2, convention="2d")
    return enc.dim if isinstance(enc, RestrictedPE) else None


def order_statistic(groups: Groups, labels: Sequence[Hashable], rank: int) -> dict[int, float]:
    """Per seed (those every group in ``labels`` finished), the ``rank``-th largest final region
    count over ``labels`` (1: the largest, 2: the second largest; -1: the smallest)."""
    per_group = [{d.meta["seed"]: float(d.get("regions", "all")[-1]) for d in groups[g]} for g in labels]
    seeds = sorted(set.intersection(*(set(v) for v in per_group)))
    return {
        s: float(sorted((v[s] for v in per_group), reverse=True)[rank - 1 if rank > 0 else rank])
        for s in seeds
    }


def _restricted_table(
    groups: Groups, summary: dict, unusable: Iterable[Hashable] = ()
) -> tuple[SeedTable, list[Claim]]:
    """E16's derived groups (order statistics of the final counts per seed) and the claims on them:
    the d = 20 and d = 40 encodings give the two largest counts (the second largest at d >= 20 beats
    the largest at d < 20), and ω = 2^10 at d = 4 gives fewer regions than every other encoding.
    The derived groups cannot be measured when an input diverged or is ``unusable`` (marked)."""
    table, claims = SeedTable(), []
    left_out = [str(k) for k in summary if k not in groups or k in set(unusable)]
    dims = {k: _rpe_dim(k) for k in groups}
    high = [k for k, d in dims.items() if d is not None and d >= 20]
    low = [k for k, d in dims.items() if d is not None and d < 20]
    if len(high) >= 2 and low:
        a, b = Extreme("second-largest count at d >= 20"), Extreme("largest count at d < 20")
        table.put(a, "regions_last", order_statistic(groups, high, 2))
        table.put(b, "regions_last", largest := order_statistic(groups, low, 1))
        n = next(iter(groups.values()))[0].meta["n_points"]
        full = largest and min(largest.values()) >= n
        claims.append(
            Compare(
                text="the d = 20 and d = 40 encodings give the most regions (the two largest counts)",
                reads="regions_last",
                a=a,
                b=b,
                relation=">",
                unless=f"{b} is saturated at one region per grid point (a lower bound)" if full else None,
            )
        )
    others = [k for k in groups if k != "rpe1024x4"]
    if "rpe1024x4" in summary and others:
        fewest = Extreme("fewest regions of the other encodings")
        table.put(fewest, "regions_last", order_statistic(groups, others, -1))
        claims.append(
            Compare(
                text="ω = 2^10 at d = 4 gives the fewest regions",
                reads="regions_last",
                a="rpe1024x4",
                b=fewest,
                relation="<",
            )
        )
    for group in table.groups if left_out else ():
        table.mark(
            group, f"{', '.join(left_out)} diverged or cannot be measured: the order statistic needs them"
        )
    return table, claims


def _restricted(exp: str, groups: Groups, summary: dict, unusable: Iterable[Hashable] = ()) -> Part:
    """E16: region counts of the restricted PE (spec §5): all below one region per pixel, the most
    at d = 20 and 40, the fewest for the highest frequency at the lowest dimension."""
    part = _regions_rows_and_figure(exp, groups)
    n = next(iter(groups.values()))[0].meta["n_points"]
    below = [
        Level(
            text=f"{k} stays below one region per pixel",
            reads="regions_share_last",
            group=k,
            threshold="one_per_point",
            above=False,
        )
        for k in summary
    ]
    part.claims.append(AllOf(text=f"every restricted PE stays below one region per pixel ({n})", parts=below))
    part.table, claims = _restricted_table(groups, summary, unusable)
    part.claims += claims
    return part


def _archs(exp: str, groups: Groups, summary: dict) -> Part:
    """E15 (groups keyed by :class:`Net`): per network size, raw's local Hamming ratio stays below
    PE's; over network size, the Hamming count grows, PE's local ratio and every global ratio fall."""
    part = Part()
    for kind in ("local", "global"):
        for field in (f"hamming_{kind}", f"hamming_{kind}_ratio", f"cos_{kind}_abs_mean"):
            for net, s in summary.items():
                if field in s:
                    part.rows.append((exp, str(net), -1, -1, field, "mean_over_seeds", float(s[field])))
    nets: list[Net] = list(summary)
    sizes = sorted({(k.depth, k.width) for k in nets}, key=lambda dw: dw[0] * dw[1])
    inputs = list(dict.fromkeys(k.input for k in nets))
    raw, pes = raw_and_encoded(inputs)
    if raw and pes:
        part.claims += [
            Compare(
                text=f"{d}x{w}: local Hamming ratio raw < PE",
                reads="hamming_local_ratio",
                a=Net(raw, d, w),
                b=Net(pes[-1], d, w),
                relation="<",
            )
            for d, w in sizes
        ]
    part.claims += size_trends(inputs, sizes)
    return part


def size_trends(inputs: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[Claim]:
    """E15's per-seed trends over network size (``sizes``: (depth, width) from small to large): the
    local Hamming count grows for every input, PE's local ratio H/n falls and every global ratio
    falls. None for a single size."""
    if len(sizes) < 2:
        return []
    xs = [d * w for d, w in sizes]
    out: list[Claim] = []
    for label in inputs:
        specs = [("hamming_local", True, "the local Hamming count grows with network size")]
        if encoding_rank(label)[0] == 1:
            specs.append(("hamming_local_ratio", False, "the local Hamming ratio H/n falls as the net grows"))
        specs.append(("hamming_global_ratio", False, "the global Hamming ratio H/n falls as the net grows"))
        over = [Net(label, d, w) for d, w in sizes]
        out += [Trend(text=f"{label}: {text}", reads=q, over=over, xs=xs, rises=up) for q, up, text in specs]
    return out


def _by_name(part: PartFn) -> PartFn:
    """A shared part on string group names: the shared parts read input labels out of the keys."""

    @functools.wraps(part)
    def named(exp: str, groups: Groups, summary: dict) -> Part:
        return part(exp, {str(k): v for k, v in groups.items()}, {str(k): v for k, v in summary.items()})

    return named


_PARTS: dict[str, PartFn] = {
    "region_maps": _region_maps,
    "regions": _regions,
    "hamming": hamming_part,
    "confusion": confusion_part,
    "dead": _dead,
    "norms": _norms,
    "hyperplanes": _hyperplanes,
    "boundary": _boundary,
    "bands": _bands,
    "layer_hamming": _layer_hamming,
    "heldout": _heldout,
    "archs": _archs,
    "restricted": _restricted,
    "net_hamming": _by_name(hamming_part),
    "net_confusion": _by_name(confusion_part),
}


_SELECTING = ("heldout", "restricted")
"""Parts that pick or pool groups by their values: they leave out the groups marked not measurable."""


def _runs(params: Study2D, seeds: int) -> list[RunConfig]:
    return params.runs(seeds)


def _input_key(cfg: RunConfig) -> str:
    return cfg.input


def _net_key(cfg: RunConfig) -> Net:
    return Net(cfg.input, cfg.depth, cfg.width)


def _order(params: Study2D) -> list[Hashable]:
    if params.archs:
        return [Net(label, d, w) for d, w in params.archs for label in params.inputs]
    return list(params.inputs)


def _analysis(
    exp_id: str, parts: tuple[str, ...], paper: Study2D
) -> Callable[[Study2D, Runs], ExperimentResult]:
    """The experiment's analysis: groups keyed by input (by :class:`Net` in a size sweep); inputs
    that alias on this grid but not on the paper profile's grid are marked not measurable first."""

    def analyse(params: Study2D, runs: Runs) -> ExperimentResult:
        key = _net_key if params.archs else _input_key
        unusable = aliased_here_only(runs, key, paper)
        table = {**_PARTS, "aliasing": _marking(unusable)}
        table.update({name: functools.partial(_PARTS[name], unusable=tuple(unusable)) for name in _SELECTING})
        result = make_analysis(exp_id, ("aliasing", *parts), table, key=key, order=_order)(params, runs)
        result.summary["inputs"] = {str(k): v for k, v in result.summary["inputs"].items()}
        return result

    return analyse


def _exp(
    exp_id: str,
    title: str,
    claim: str,
    parts: tuple[str, ...],
    quick: Study2D,
    standard: Study2D,
    paper: Study2D,
) -> Experiment:
    return Experiment(
        id=exp_id,
        title=title,
        claim=claim,
        profiles={"quick": quick, "standard": standard, "paper": paper},
        runs=_runs,
        analyse=_analysis(exp_id, parts, paper),
        default_seeds=quick.seeds,
    )


# ------------------------------------------------------------------------ E20


@dataclass(frozen=True)
class EncodingGrid(Overridable):
    """E20 parameters: an encoding of a square grid (no training). Seed ``s`` draws the reference
    pixel whose distances the claims read."""

    size: int = 64
    input: str = "pe5"
    seeds: int = 3

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {"size": ("size",)}
    MAX_SIZE: ClassVar[int] = 96  # the matrix has size⁴ entries: 96² points is 680 MB in float64

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 2 <= self.size <= self.MAX_SIZE:
            raise ConfigError(f"E20 grid size must be an integer in 2..{self.MAX_SIZE}, got {self.size!r}")

    def runs(self, seeds: int) -> list[RunConfig]:
        return []


def adjacent_over_median(dist: np.ndarray, adjacent: np.ndarray, rows: np.ndarray | slice) -> float:
    """Mean distance of adjacent pixels over the median distance, from the reference pixels ``rows``
    (all pixels: ``slice(None)``): how far apart neighbours are relative to a typical pair."""
    return float(dist[rows][adjacent[rows]].mean() / np.median(dist[rows]))


def row_minima(dist: np.ndarray, pixel: int, size: int) -> int:
    """Interior local minima of the distance from ``pixel`` to the pixels of its own row, other than
    the pixel itself: distant points that come close (periodicity)."""
    row = pixel // size
    profile = dist[pixel, row * size : (row + 1) * size]
    x = np.arange(1, size - 1)
    minima = (profile[1:-1] < profile[:-2]) & (profile[1:-1] < profile[2:]) & (x != pixel % size)
    return int(minima.sum())


def _encoding_distances(params: EncodingGrid, runs: Any) -> ExperimentResult:
    """E20: ‖γ(p_i) − γ(p_j)‖ over every pair of grid points, row-major (spec §1.8, §7); per seed,
    the distances from one reference pixel, encoded and raw."""
    s = params.size
    enc = parse_input(params.input, in_dim=2, convention="2d")
    t = torch.as_tensor(grid_2d(s, s), dtype=torch.float64)
    dist = encoding_distance_matrix(enc(t)).numpy()
    coord = encoding_distance_matrix(t).numpy()
    adjacent = np.isclose(coord, 1.0 / s)
    pixels = {seed: int(rng_for(seed, "e20:reference").integers(s * s)) for seed in range(params.seeds)}
    table = SeedTable()
    for label, d in ((params.input, dist), ("raw01", coord)):
        table.put(
            label,
            "adjacent_over_median",
            {k: adjacent_over_median(d, adjacent, [p]) for k, p in pixels.items()},
        )
        table.put(label, "row_minima", {k: row_minima(d, p, s) for k, p in pixels.items()})
    claims = [
        Compare(
            text="PE pushes neighbours apart: adjacent pixels are farther, relative to a typical pair, "
            "than raw",
            reads="adjacent_over_median",
            a=params.input,
            b="raw01",
            relation=">",
        ),
        Compare(
            text="the distance is periodic: along a row it has interior local minima (distant points come "
            "close), where raw coordinates have none",
            reads="row_minima",
            a=params.input,
            b="raw01",
            relation=">",
        ),
    ]
    summary = {
        "adjacent_over_median": adjacent_over_median(dist, adjacent, slice(None)),
        "raw_adjacent_over_median": adjacent_over_median(coord, adjacent, slice(None)),
        "row_minima": row_minima(dist, 0, s),
        "reference_pixels": list(pixels.values()),
    }
    fig = figures.matrices(
        {f"{figures.input_title(params.input)} on {s}²": dist},
        "Encoding distance ‖γ(p_i) − γ(p_j)‖ (row-major pixel order)",
        vmin=0,
        vmax=float(dist.max()),
        cmap="viridis",
    )
    rows = [
        ("E20", params.input, 0, 0, "encoding_distance", k, float(v))
        for k, v in summary.items()
        if k != "reference_pixels"
    ]
    return ExperimentResult(
        rows=rows,
        arrays={"distance": dist.astype(np.float32)},
        figures={"encoding_distance": fig},
        summary={"inputs": {params.input: summary}},
        findings=evaluate(claims, table),
        table=table,
    )


# ---------------------------------------------------------------- the registry

_E4E_QUICK = dataclasses.replace(
    MAIN_QUICK,
    train=TrainConfig(epochs=500, batch_size=256, lr=5e-3),
    probes=(NormSpec(Schedule(every=5, last=True)),),
)
_E4E_PAPER = dataclasses.replace(
    MAIN_PAPER,
    train=TrainConfig(epochs=5000, batch_size=256, lr=5e-3),
    probes=(NormSpec(Schedule(every=1)),),  # every epoch (spec §1.9), the only probe E4e reads
)
_E15_QUICK = dataclasses.replace(
    MAIN_QUICK,
    inputs=("raw01", "pe5"),
    archs=((2, 64), (4, 128), (6, 128)),
    train=TrainConfig(epochs=200, batch_size=256),
    probes=suite_probes(20, E15_PAIRS),
)
_E15_PAPER = dataclasses.replace(
    MAIN_PAPER,
    inputs=("raw01", "pe5"),
    archs=((2, 128), (4, 256), (6, 512)),
    probes=suite_probes(100, E15_PAIRS, boundary_every=500),
)
_E15_STANDARD = dataclasses.replace(
    _E15_PAPER,
    archs=((2, 128), (4, 256), (6, 256)),
    train=TrainConfig(epochs=300, batch_size=256),
    probes=suite_probes(25, E15_PAIRS, boundary_every=100),
)
_RPE = tuple(f"rpe{omega}x{d}" for omega in (2, 32, 1024) for d in (4, 20, 40))
_E16 = dataclasses.replace(
    MAIN_QUICK,
    inputs=_RPE,
    train=TrainConfig(epochs=10, batch_size=256),
    probes=(RegionSpec(Schedule(every=1)),),
)
_X3_QUICK = Study2D(
    images=_natural(128, 3),
    inputs=("raw01", "basic", "pe6", "rff1", "rff10", "rff100"),
    width=128,
    depth=4,
    train=TrainConfig(epochs=200),
    probes=(HeldOutSpec(Schedule(every=10, last=True)), ConfusionSpec(Schedule(last=True), X3_PAIRS)),
    held_out=True,
    jacobian_inputs=("raw01", "pe6", "pe8"),  # the inputs its claims read: raw and the top PE
)
_X3_PAPER = dataclasses.replace(
    _X3_QUICK,
    images=_natural(512),
    inputs=("raw01", "basic", "pe8", "rff1", "rff10", "rff100"),
    width=256,
    train=TrainConfig(epochs=2000),
    seeds=5,
)
_X3_STANDARD = dataclasses.replace(
    _X3_PAPER, images=_natural(256, 3), width=128, train=TrainConfig(epochs=200), seeds=3
)


_TWO_MEASURES = (
    "Judged on two measures: loss-gradient cosines mix in the per-channel residuals, "
    "output-Jacobian cosines are the network's part."
)


def _nat(
    inputs: tuple[str, ...], quick_inputs: tuple[str, ...] | None = None
) -> tuple[Study2D, Study2D, Study2D]:
    """The natural-image profiles of one experiment: ``quick_inputs`` (default ``inputs``) at quick
    and standard, ``inputs`` at paper."""
    small = quick_inputs or inputs
    return _select(NATURAL_QUICK, small), _select(NATURAL_STANDARD, small), _select(NATURAL_PAPER, inputs)


def _main(inputs: tuple[str, ...] = _MAIN_INPUTS) -> tuple[Study2D, Study2D, Study2D]:
    """The main suite's profiles: standard is the paper's own scale (spec §1)."""
    return _select(MAIN_QUICK, inputs), _select(MAIN_PAPER, inputs), _select(MAIN_PAPER, inputs)


STUDY_2D_EXPERIMENTS = (
    _exp(
        "E4a",
        "Region maps on the 64² random image",
        "Raw coordinates give large regions shared by many pixels; PE gives about one region per pixel.",
        ("region_maps",),
        *_main(),
    ),
    _exp(
        "E4b",
        "Region count over training (64² random image)",
        "Raw coordinates occupy far fewer regions than pixels; PE about one per pixel.",
        ("regions",),
        *_main(),
    ),
    _exp(
        "E4c",
        "Local and global Hamming (64² random image)",
        "PE separates even neighbouring pixels; raw neighbours share patterns.",
        ("hamming",),
        *_main(),
    ),
    _exp(
        "E4d",
        "Local and global gradient confusion (64² random image)",
        "Raw local confusion sits at ±1; PE spreads it towards 0. " + _TWO_MEASURES,
        ("confusion",),
        *_main(),
    ),
    _exp(
        "E4e",
        "Spectral norms, lr 5e-3 (64² random image)",
        "PE's expressivity does not come from larger weights.",
        ("norms",),
        _select(_E4E_QUICK, _MAIN_INPUTS),
        _select(_E4E_PAPER, _MAIN_INPUTS),
        _select(_E4E_PAPER, _MAIN_INPUTS),
    ),
    _exp(
        "E4f",
        "Dead ReLUs (64² random image)",
        "Dense coordinates kill many units; PE fewer.",
        ("dead",),
        *_main(),
    ),
    _exp(
        "E5",
        "Gradient confusion on natural images",
        "The link between confusion and expressivity holds on natural signals. " + _TWO_MEASURES,
        ("confusion",),
        *_nat(("raw01", "raw11", "pe4", "pe8", "pe16")),
    ),
    _exp(
        "E6",
        "Hamming distance on natural images",
        "PE patterns are far more distinct, locally and globally.",
        ("hamming",),
        *_nat(("raw01", "raw11", "pe4", "pe8", "pe16")),
    ),
    _exp(
        "E7",
        "Per-layer Hamming on natural images",
        "PE disperses inputs already in layer 1; coordinates separate mostly in deeper layers.",
        ("layer_hamming",),
        *_nat(("raw01", "pe8")),
    ),
    _exp(
        "E8",
        "Region growth on natural images",
        "PE occupies many more regions from initialisation on; [-1,1) gives more than [0,1).",
        ("regions", "region_maps"),
        *_nat(("raw01", "raw11", "pe1", "pe2", "pe8")),
    ),
    _exp(
        "E9",
        "Dead neurons against the coordinate range",
        "Dead units fall as the coordinate range widens.",
        ("dead",),
        *_nat(("raw01", "raw11", "raw-2_2", "raw-3_3")),
    ),
    _exp(
        "E10",
        "Spectral norms on natural images",
        "Coordinates need larger norms than PE; higher L needs smaller norms.",
        ("norms",),
        *_nat(("raw01", "raw11", "pe4", "pe8")),
    ),
    _exp(
        "E11",
        "Hyperplane angles",
        "With higher-frequency PE the deeper layers' hyperplanes align positively.",
        ("hyperplanes",),
        *_nat(("pe4", "pe8", "pe16")),
    ),
    _exp(
        "E12",
        "Distance to the nearest region boundary",
        "With higher-L PE, regions widen over training.",
        ("boundary",),
        *_nat(("pe4", "pe8", "pe12", "pe16", "pe20"), quick_inputs=("pe4", "pe8", "pe16")),
    ),
    _exp(
        "E15",
        "Depth and width (64² random image)",
        "Locally, coordinates stay at a tiny fraction of units whatever the size, while PE stays high.",
        ("net_hamming", "net_confusion", "archs"),
        _E15_QUICK,
        _E15_STANDARD,
        _E15_PAPER,
    ),
    _exp(
        "E16",
        "Restricted PE (a reconstruction)",
        "One repeated frequency does not lift the region count to one per pixel.",
        ("restricted",),
        _E16,
        _E16,
        _E16,
    ),
    Experiment(
        id="E20",
        title="Encoding distance matrix (PE L=5 on 64²)",
        claim="PE maps neighbours apart and brings some distant points close, periodically.",
        profiles={"quick": EncodingGrid(), "standard": EncodingGrid(), "paper": EncodingGrid()},
        runs=lambda p, s: p.runs(s),
        analyse=_encoding_distances,
        default_seeds=EncodingGrid.seeds,
    ),
    _exp(
        "X2",
        "Per-band 2D convergence on natural images",
        "Raw coordinates leave the high radial bands unlearned; PE learns them.",
        ("bands",),
        *_nat(("raw01", "raw11", "pe4", "pe8")),
    ),
    _exp(
        "X3",
        "Held-out generalisation (Fourier-features protocol)",
        "Encodings with a moderate frequency scale generalise between pixels; too high a σ overfits.",
        ("heldout", "confusion"),
        _X3_QUICK,
        _X3_STANDARD,
        _X3_PAPER,
    ),
)
