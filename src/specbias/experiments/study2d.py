"""The 2D study (spec §3-§5, §7): coordinate images, activation regions and their geometry.

Three run families, each trained once and measured by every probe:

* **Main-text suite** (E4a-f, E15, E16): the paper's 64×64 random image, MLP-2×128, batch 256.
  ``paper`` is the reference scale (5,000 epochs, probes every 100, 5 seeds; the exact boundary
  distance, which no E4 panel reads and which costs as much as all other probes together, every
  500). ``quick`` trains 500 epochs (8,000 steps) with probes every 25 and 3 seeds: the orderings
  the paper reports are in place by then, and the suite runs in about a minute on 2 cores. E15's
  ``quick`` scales the reference's 2×128, 4×256, 6×512 down to 2×64, 4×128, 6×128 at 200 epochs
  (the 6×512 net alone would take longer than the whole quick reproduction). E4e trains its own
  runs (lr 5e-3) with only the probe it reads, the spectral norms: every epoch in ``paper`` (spec
  §1.9), every 5 in ``quick``.
* **Natural-image suite** (E5-E12, X2): the reference uses five 512² DIV2K crops and MLP-4×512
  (≈1.3 PFLOP per model, hours per run on this CPU). Substitute: scikit-image's bundled photographs
  (astronaut, camera, coffee, chelsea, rocket; spec §9.12). ``quick`` area-resizes them to 64²,
  trains MLP-4×128 with batch 512 (8 steps per epoch, the reference's 32 batches scaled to the
  smaller grid) for 300 epochs, probes every 15 (the exact boundary distance every 30), 3 images,
  and drops the fully aliased L = 12 and 20 (64² holds 5 unaliased octaves); windows and corner
  blocks are the reference's fractions of the side (spec §1.7), so the numbers compare across resolutions.
  ``paper`` is the reference scale for a GPU (512², MLP-4×512, batch 8,192, 1,000 epochs, 5 images).
* **X3** (Fourier-features generalisation, Tancik et al. 2020): train on the even pixels of an
  image of side 2S, test on the odd ones; none / basic / PE / RFF σ ∈ {1, 10, 100}. ``paper``
  follows Tancik et al. (512² images, MLP-4×256, 2,000 full-batch Adam steps, 5 images);
  ``quick`` uses 128² images (64² training grids), MLP-4×128 and 200 steps, 3 images.

PE labels follow the 2D convention: ``pe5`` has 5 octaves (20 features). Aliased encoding
features (above the grid's Nyquist limit) are counted in each input's ``aliased_features``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from specbias import figures
from specbias.encodings import parse_input
from specbias.errors import ConfigError
from specbias.experiments.analysis import (
    Groups,
    Part,
    PartFn,
    compare,
    confusion_part,
    encoding_rank,
    hamming_part,
    make_analysis,
    raw_and_encoded,
    scalar_curve_rows,
)
from specbias.experiments.base import Experiment, ExperimentResult, Finding, check_study
from specbias.experiments.density import trend
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
)
from specbias.signals import NaturalImage, RandomImage, grid_2d
from specbias.training import Schedule, TrainConfig

NATURAL_IMAGES = ("astronaut", "camera", "coffee", "chelsea", "rocket")
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
class Study2D:
    """Parameters of an image study. Seed ``s`` trains on ``images[s % len(images)]``."""

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

    OVERRIDES: ClassVar[tuple[str, ...]] = (
        "epochs", "lr", "width", "depth", "size", "images", "inputs", "mode"
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_study(
            self.inputs, in_dim=2, convention="2d", mode=self.mode, width=self.width, depth=self.depth,
            seeds=self.seeds,
        )  # fmt: skip

    def override(self, **changes: Any) -> Study2D:
        """A copy with user overrides: epochs, lr, width, depth, inputs, size, images, mode.

        ``images`` are scikit-image names or paths of the user's PNG/JPEG files; seed ``s``
        trains on image ``s mod len(images)``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        fixed = [k for k in ("width", "depth") if k in changes and self.archs]
        if fixed:
            sizes = ", ".join(f"{d}×{w}" for d, w in self.archs)
            raise ConfigError(
                f"--{fixed[0]} does not apply to an architecture sweep (it trains depth × width {sizes})"
            )
        train = dataclasses.replace(
            self.train, **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes}
        )
        if changes.get("mode") == "faithful":
            train = dataclasses.replace(train, batching="fixed")  # the reference's batches (bug B3)
        images = self.images
        if "images" in changes:
            if not all(isinstance(im, NaturalImage) for im in images):
                raise ConfigError("--images applies to the natural-image experiments")
            names = changes.pop("images")
            size, channels = images[0].size, images[0].channels
            images = tuple(NaturalImage(name, size=size, channels=channels) for name in names)
        if "size" in changes:
            size = changes.pop("size")
            images = tuple(dataclasses.replace(im, size=size) for im in images)
        if "inputs" in changes:
            changes["inputs"] = tuple(changes["inputs"])
        return dataclasses.replace(self, train=train, images=images, **changes)

    def runs(self, seeds: int) -> list[RunConfig]:
        archs = self.archs or ((self.depth, self.width),)
        return [
            RunConfig(
                signal=self.images[seed % len(self.images)],
                input=label,
                width=width,
                depth=depth,
                train=self.train,
                probes=self.probes,
                seed=seed,
                mode=self.mode,
                held_out=self.held_out,
            )
            for depth, width in archs
            for label in self.inputs
            for seed in range(seeds)
        ]


def _natural(size: int, count: int = 5) -> tuple[NaturalImage, ...]:
    return tuple(NaturalImage(name, size=size) for name in NATURAL_IMAGES[:count])


MAIN_QUICK = Study2D(train=TrainConfig(epochs=500, batch_size=256), probes=suite_probes(25, MAIN_PAIRS))
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


def _regions(exp: str, groups: Groups, summary: dict) -> Part:
    part = _regions_rows_and_figure(exp, groups)
    n = next(iter(groups.values()))[0].meta["n_points"]
    raw, pes = raw_and_encoded(list(groups))
    if raw:
        value = summary[raw]["regions_last"]
        part.findings.append(
            Finding(
                f"{raw} uses far fewer regions than points (< half)", value < 0.5 * n, f"{value:.0f} of {n}"
            )
        )
    if pes:
        value = summary[pes[-1]]["regions_last"]
        part.findings.append(
            Finding(
                f"{pes[-1]} approaches one region per point (>= 90%)", value >= 0.9 * n, f"{value:.0f} of {n}"
            )
        )
    ordered = sorted(groups, key=encoding_rank)
    part.findings += [
        compare(f"regions at the first checkpoint: {a} < {b}", summary, a, b, "regions_first", "<")
        for a, b in itertools.pairwise(ordered)
    ]
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
    part.findings += [
        compare(f"dead units fall as the range widens: {a} > {b}", summary, a, b, "dead_last", ">")
        for a, b in itertools.pairwise(raws)
    ]
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        part.findings.append(
            compare(f"{raw} has more dead units than {pes[-1]}", summary, raw, pes[-1], "dead_last", ">")
        )
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
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        part.findings.append(
            compare(
                f"PE does not need larger weights: {pes[-1]} < {raw} (norm product, end)",
                summary,
                pes[-1],
                raw,
                "norm_product_last",
                "<",
            )
        )
        part.findings += [
            compare(f"higher L needs smaller norms: {b} < {a}", summary, b, a, "norm_product_last", "<")
            for a, b in itertools.pairwise(pes)
        ]
    return part


def _hyperplanes(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part(rows=[])
    first = next(iter(groups.values()))[0]
    epochs = first.get("hyperplanes", "epochs")
    series: dict[str, dict[str, np.ndarray]] = {}
    deepest: dict[str, dict[str, float]] = {}
    for label, datas in groups.items():
        stats = np.stack([d.get("hyperplanes", "mean_offdiag") for d in datas])  # seeds × ckpt × layers
        part.arrays[f"hyperplane_mean_cos/{label}"] = stats
        part.arrays[f"hyperplane_frac_pos/{label}"] = np.stack(
            [d.get("hyperplanes", "frac_positive") for d in datas]
        )
        series[label] = {f"layer {i + 1}": stats[:, :, i] for i in range(stats.shape[2])}
        deepest[label] = {"first": float(stats[:, 0, -1].mean()), "last": float(stats[:, -1, -1].mean())}
        for d in datas:
            for c, e in enumerate(epochs):
                part.rows.extend(
                    (exp, label, d.meta["seed"], int(e), "hyperplane_mean_cos", f"layer{i + 1}", float(v))
                    for i, v in enumerate(d.get("hyperplanes", "mean_offdiag")[c])
                )
    part.figures["hyperplane_stats"] = figures.mean_std_curves(
        epochs, series, "mean off-diagonal cosine", "Hyperplane alignment per layer", panel_title="{}"
    )
    n_layers = len(first.meta["hidden_sizes"])
    mats = {}
    for label, datas in groups.items():
        d = datas[0]
        for c, e in enumerate(d.get("hyperplane_matrices", "epochs")):
            layer_mats = [d.get("hyperplane_matrices", f"layer{i + 1}")[c] for i in range(n_layers)]
            mats[f"{figures.input_title(label)}, {figures.trained_for(int(e))}"] = hyperplane_matrix(
                layer_mats
            )
    part.figures["hyperplane_matrices"] = figures.matrices(
        mats, "Weight-row cosines (cross-layer blocks masked)"
    )
    ordered = sorted(groups, key=encoding_rank)
    if len(ordered) >= 2:
        lo, hi = ordered[0], ordered[-1]
        part.findings.append(
            Finding(
                f"deepest-layer hyperplanes are more positively aligned for {hi} than {lo} (end)",
                deepest[hi]["last"] > deepest[lo]["last"],
                f"{hi} {deepest[hi]['last']:.3g} vs {lo} {deepest[lo]['last']:.3g}",
            )
        )
        part.findings.append(
            Finding(
                f"{hi}: deepest-layer alignment grows over training",
                deepest[hi]["last"] > deepest[hi]["first"],
                f"first {deepest[hi]['first']:.3g}, last {deepest[hi]['last']:.3g}",
            )
        )
    return part


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
    ordered = sorted(groups, key=encoding_rank)
    if len(ordered) >= 2:
        lo, hi = ordered[0], ordered[-1]
        part.findings.append(
            compare(
                f"the highest L has the widest regions at the end: {hi} > {lo}",
                summary,
                hi,
                lo,
                "boundary_input_mean_last",
                ">",
            )
        )
        # the spec's shape: an early minimum, then a rise beyond the seed-to-seed spread (any noisy
        # curve whose last point is not its lowest would pass ``end > min`` alone)
        per_seed = series[hi]["input space (exact)"]
        curve = per_seed.mean(axis=0)
        low = int(curve.argmin())
        spread = float(per_seed[:, -1].std())
        early = low < len(curve) / 2
        part.findings.append(
            Finding(
                f"{hi}: regions widen after an early minimum (first half of training)",
                bool(early and curve[-1] - curve[low] > spread),
                f"min {curve[low]:.3g} at epoch {int(epochs[low])} of {int(epochs[-1])}, "
                f"end {curve[-1]:.3g} (seed std {spread:.2g})",
            )
        )
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
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        a, b = rel[raw][:, -1, -1].mean(), rel[pes[-1]][:, -1, -1].mean()
        part.findings.append(
            Finding(
                f"highest band is learned better by {pes[-1]} than {raw}",
                b < a,
                f"{pes[-1]} {b:.3g} vs {raw} {a:.3g}",
            )
        )
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
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        a, b = series[raw]["layer 1"][:, -1].mean(), series[pes[-1]]["layer 1"][:, -1].mean()
        part.findings.append(
            Finding(
                f"{pes[-1]} disperses inputs already in layer 1 (above {raw})", b > a, f"{b:.3g} vs {a:.3g}"
            )
        )
    return part


def _heldout(exp: str, groups: Groups, summary: dict) -> Part:
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
    encoded = [k for k in groups if k != "raw01"]
    if "raw01" in groups and encoded:
        best = max(encoded, key=lambda k: summary[k]["test_psnr"])
        part.findings.append(
            compare(
                f"an encoding generalises better than raw coordinates ({best})",
                summary,
                best,
                "raw01",
                "test_psnr",
                ">",
            )
        )
    if "rff10" in groups and "rff100" in groups:  # (a diverged input is in summary, without PSNRs)
        gap = {k: summary[k]["train_psnr"] - summary[k]["test_psnr"] for k in ("rff10", "rff100")}
        part.findings.append(
            Finding(
                "RFF σ=100 overfits more than σ=10 (train-test PSNR gap)",
                gap["rff100"] > gap["rff10"],
                f"σ=100 {gap['rff100']:.2f} dB vs σ=10 {gap['rff10']:.2f} dB",
            )
        )
    return part


def _restricted(exp: str, groups: Groups, summary: dict) -> Part:
    """E16: region counts of the restricted PE (spec §5): all below the number of pixels, the
    fewest for the highest frequency at the lowest dimension."""
    part = _regions_rows_and_figure(exp, groups)
    n = next(iter(groups.values()))[0].meta["n_points"]
    last = {k: summary[k]["regions_last"] for k in groups}
    top = max(last, key=last.get)
    part.findings.append(
        Finding(
            f"every restricted PE stays below one region per pixel ({n})",
            all(v < n for v in last.values()),
            f"largest: {top} with {last[top]:.0f}",
        )
    )
    part.findings += _most_regions_at_high_d(last)
    if "rpe1024x4" in last:
        low = min(last, key=last.get)
        part.findings.append(
            Finding(
                "ω = 2^10 at d = 4 gives the fewest regions",
                last["rpe1024x4"] == last[low],
                f"rpe1024x4 {last['rpe1024x4']:.0f}; fewest {low} {last[low]:.0f}",
            )
        )
    return part


def _most_regions_at_high_d(last: dict[str, float]) -> list[Finding]:
    """E16: the two largest final region counts belong to d = 20 or d = 40 encodings (``rpe<ω>x<d>``);
    nothing to check when every encoding has the same d."""
    dims = {k: int(k.split("x")[1]) for k in last if re.fullmatch(r"rpe\d+x\d+", k)}
    if len(set(dims.values())) < 2:
        return []
    top = sorted(dims, key=last.get)[-2:]
    return [
        Finding(
            "the d = 20 and d = 40 encodings give the most regions (the two largest counts)",
            all(dims[k] >= 20 for k in top),
            "two largest: " + ", ".join(f"{k} {last[k]:.0f}" for k in top),
        )
    ]


def _arch_label(cfg: RunConfig) -> str:
    return f"{cfg.input}@{cfg.depth}x{cfg.width}"


def _archs(exp: str, groups: Groups, summary: dict) -> Part:
    part = Part()
    for kind in ("local", "global"):
        for field in (f"hamming_{kind}", f"hamming_{kind}_ratio", f"cos_{kind}_abs_mean"):
            for label, s in summary.items():
                if field in s:
                    part.rows.append((exp, label, -1, -1, field, "mean_over_seeds", float(s[field])))
    archs = sorted({k.split("@")[1] for k in groups}, key=lambda a: int(a.split("x")[0]))
    for arch in archs:
        raw, pe = (
            f"raw01@{arch}",
            next((k for k in groups if k.endswith(f"@{arch}") and k.startswith("pe")), None),
        )
        if pe:
            part.findings.append(
                compare(f"{arch}: local Hamming ratio raw < PE", summary, raw, pe, "hamming_local_ratio", "<")
            )
    part.findings += _size_trends(groups, summary, archs)
    return part


def _size_trends(groups: Groups, summary: dict, archs: list[str]) -> list[Finding]:
    """E15's trends over network size (hidden units d·w): the raw Hamming count grows for every input,
    PE's local ratio H/n falls (2L > 4L > 6L) and every input's global ratio falls."""
    units = [int(d) * int(w) for d, w in (a.split("x") for a in archs)]
    out = []
    for label in dict.fromkeys(k.split("@")[0] for k in groups):
        keys = [f"{label}@{a}" for a in archs]
        if len(keys) < 2 or not all("hamming_local" in summary.get(k, {}) for k in keys):
            continue
        claims = [("hamming_local", True, "the local Hamming count grows with network size")]
        if label.startswith("pe"):
            claims.append(
                ("hamming_local_ratio", False, "the local Hamming ratio H/n falls as the net grows")
            )
        claims.append(("hamming_global_ratio", False, "the global Hamming ratio H/n falls as the net grows"))
        for field, rises, claim in claims:
            out.append(trend(f"{label}: {claim}", units, [float(summary[k][field]) for k in keys], rises))
    return out


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
}


def _runs(params: Study2D, seeds: int) -> list[RunConfig]:
    return params.runs(seeds)


def _order(params: Study2D) -> list[str]:
    if params.archs:
        return [f"{label}@{d}x{w}" for d, w in params.archs for label in params.inputs]
    return list(params.inputs)


def _exp(
    exp_id: str, title: str, claim: str, parts: tuple[str, ...], quick: Study2D, paper: Study2D
) -> Experiment:
    key = _arch_label if quick.archs else (lambda cfg: cfg.input)
    return Experiment(
        id=exp_id,
        title=title,
        claim=claim,
        profiles={"quick": quick, "paper": paper},
        runs=_runs,
        analyse=make_analysis(exp_id, parts, _PARTS, key=key, order=_order),
        default_seeds=quick.seeds,
    )


# ------------------------------------------------------------------------ E20


@dataclass(frozen=True)
class EncodingGrid:
    """E20 parameters: an encoding of a square grid (no training)."""

    size: int = 64
    input: str = "pe5"
    seeds: int = 1

    OVERRIDES: ClassVar[tuple[str, ...]] = ("size",)
    MAX_SIZE: ClassVar[int] = 96  # the matrix has size⁴ entries: 96² points is 680 MB in float64

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 2 <= self.size <= self.MAX_SIZE:
            raise ConfigError(f"E20 grid size must be an integer in 2..{self.MAX_SIZE}, got {self.size!r}")

    def override(self, **changes: Any) -> EncodingGrid:
        return dataclasses.replace(self, **changes)

    def runs(self, seeds: int) -> list[RunConfig]:
        return []


def _encoding_distances(params: EncodingGrid, runs: Any) -> ExperimentResult:
    """E20: ‖γ(p_i) − γ(p_j)‖ over every pair of grid points, row-major (spec §1.8, §7)."""
    enc = parse_input(params.input, in_dim=2, convention="2d")
    t = torch.as_tensor(grid_2d(params.size, params.size), dtype=torch.float64)
    dist = encoding_distance_matrix(enc(t)).numpy()
    coord = encoding_distance_matrix(t).numpy()
    adjacent = np.isclose(coord, 1.0 / params.size)
    # neighbours relative to the typical pair: for raw coordinates 1/S over the median distance
    spread_enc = float(dist[adjacent].mean() / np.median(dist))
    spread_raw = float(coord[adjacent].mean() / np.median(coord))
    row = dist[0, : params.size]  # distance from pixel (0, 0) along the first row
    minima = int(np.sum((row[1:-1] < row[:-2]) & (row[1:-1] < row[2:])))
    fig = figures.matrices(
        {f"{figures.input_title(params.input)} on {params.size}²": dist},
        "Encoding distance ‖γ(p_i) − γ(p_j)‖ (row-major pixel order)",
        vmin=0,
        vmax=float(dist.max()),
        cmap="viridis",
    )
    findings = [
        Finding(
            "PE pushes neighbours apart: adjacent pixels are farther, relative to a typical pair, than raw",
            spread_enc > spread_raw,
            f"adjacent / median distance: encoded {spread_enc:.3f}, raw {spread_raw:.3f}",
        ),
        Finding(
            "the distance is periodic: along a row it has interior local minima (distant points come close)",
            minima > 0,
            f"{minima} local minima of ‖γ(p_0) − γ(p_x)‖ over x",
        ),
    ]
    summary = {
        "adjacent_over_median": spread_enc,
        "raw_adjacent_over_median": spread_raw,
        "row_minima": minima,
    }
    rows = [("E20", params.input, 0, 0, "encoding_distance", k, float(v)) for k, v in summary.items()]
    return ExperimentResult(
        rows=rows,
        arrays={"distance": dist.astype(np.float32)},
        figures={"encoding_distance": fig},
        summary={"inputs": {params.input: summary}},
        findings=findings,
    )


# ---------------------------------------------------------------- the registry

_MAIN_INPUTS = ("raw01", "raw11", "pe5")
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
    probes=(HeldOutSpec(Schedule(every=10, last=True)),),
    held_out=True,
)
_X3_PAPER = dataclasses.replace(
    _X3_QUICK,
    images=_natural(512),
    inputs=("raw01", "basic", "pe8", "rff1", "rff10", "rff100"),
    width=256,
    train=TrainConfig(epochs=2000),
    seeds=5,
)


def _nat(inputs: tuple[str, ...], quick_inputs: tuple[str, ...] | None = None) -> tuple[Study2D, Study2D]:
    return _select(NATURAL_QUICK, quick_inputs or inputs), _select(NATURAL_PAPER, inputs)


def _main(inputs: tuple[str, ...] = _MAIN_INPUTS) -> tuple[Study2D, Study2D]:
    return _select(MAIN_QUICK, inputs), _select(MAIN_PAPER, inputs)


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
        "Raw local confusion sits at ±1; PE spreads it towards 0.",
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
        "The link between confusion and expressivity holds on natural signals.",
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
        ("hamming", "confusion", "archs"),
        _E15_QUICK,
        _E15_PAPER,
    ),
    _exp(
        "E16",
        "Restricted PE (a reconstruction)",
        "One repeated frequency does not lift the region count to one per pixel.",
        ("restricted",),
        _E16,
        _E16,
    ),
    Experiment(
        id="E20",
        title="Encoding distance matrix (PE L=5 on 64²)",
        claim="PE maps neighbours apart and brings some distant points close, periodically.",
        profiles={"quick": EncodingGrid(), "paper": EncodingGrid()},
        runs=lambda p, s: p.runs(s),
        analyse=_encoding_distances,
        default_seeds=1,
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
        ("heldout",),
        _X3_QUICK,
        _X3_PAPER,
    ),
)
