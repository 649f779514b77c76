"""The real-data contrast (spec §6): E17 gradient confusion, E18 Hamming over training, E19 curves.

Classifiers of real images -- an MLP on flattened pixels and the spec's small CNN, on scikit-learn's
digits or a user ``.npz`` -- share one training run per (model, seed)
(:class:`~specbias.classify.ClassifierRun`). This module holds their parameters and profiles, the
analysis parts (figures, tidy rows, per-seed tables) and the paper's claims, judged on per-seed
values (:mod:`specbias.claims`). Protocol, profiles, the claims list and measured numbers:
``docs/realdata.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from specbias import figures
from specbias._checks import check_int
from specbias.claims import Claim, Compare, Level, SeedTable, Trend, evaluate
from specbias.classify import MODELS, ClassifierRun, KnnSpec
from specbias.datasets import DIGITS, DataSpec
from specbias.errors import ConfigError
from specbias.experiments.analysis import (
    Groups,
    Part,
    PartFn,
    Runs,
    confusion_part,
    make_analysis,
    scalar_curve_rows,
)
from specbias.experiments.base import Experiment, ExperimentResult
from specbias.experiments.params import NETWORK, TRAIN, Overridable
from specbias.runs import RunData
from specbias.thresholds import threshold
from specbias.training import Schedule, TrainConfig

KINDS = ("local", "global")
"""The pair kinds: each anchor's nearest images of another class, and its farthest."""

# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class RealData(Overridable):
    """Parameters of the real-data contrast; ``data`` is None (digits) or an ``.npz`` path.

    ``output_jacobian``: the models whose confusion probe also records the output-Jacobian cosine
    (the residual-free part of the confusion); switching it on changes those runs' hashes."""

    data: str | None = None
    models: tuple[str, ...] = MODELS
    width: int = 512
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=100, batch_size=512)
    pairs: KnnSpec = KnnSpec(anchors=2500, k=25)
    confusion_epoch: int = 24
    hamming_every: int = 5
    mode: str = "clean"
    seeds: int = 3
    output_jacobian: tuple[str, ...] = MODELS

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TRAIN,
        **NETWORK,
        "data": ("data",),
        "mode": ("mode",),
    }

    def __post_init__(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models) or set(self.models) - set(MODELS):
            raise ConfigError(
                f"models must be distinct names from {', '.join(MODELS)}, got {list(self.models)}"
            )
        if set(self.output_jacobian) - set(MODELS):
            raise ConfigError(
                f"output_jacobian must name models from {', '.join(MODELS)}, got {list(self.output_jacobian)}"
            )
        if self.mode not in ("clean", "faithful"):
            raise ConfigError(f"mode must be 'clean' or 'faithful', got {self.mode!r}")
        for name, least in (
            ("width", 1),
            ("depth", 1),
            ("seeds", 1),
            ("hamming_every", 1),
            ("confusion_epoch", 0),
        ):
            check_int(name, getattr(self, name), least)

    def apply(self, name: str, value: Any) -> RealData:
        """``data`` (an ``.npz`` path) is read here, so that a bad file is a one-line error before
        anything runs."""
        return super().apply(name, DataSpec.of(value).source if name == "data" else value)

    @property
    def dataset(self) -> str:
        """The dataset's name in run labels: ``digits`` or the file's stem."""
        return Path(self.data).stem if self.data else DIGITS

    def labels(self) -> list[str]:
        """Group labels in plotting order, e.g. ``["mlp digits", "cnn digits"]``."""
        return [f"{model} {self.dataset}" for model in self.models]

    def runs(self, seeds: int) -> list[ClassifierRun]:
        """One run per (model, seed); the confusion checkpoint is at most the last epoch."""
        spec = DataSpec.of(self.data)
        confusion = Schedule(explicit=(min(self.confusion_epoch, self.train.epochs - 1),))
        return [
            ClassifierRun(
                data=spec,
                model=model,
                width=self.width,
                depth=self.depth,
                train=self.train,
                pairs=self.pairs,
                hamming=Schedule(every=self.hamming_every),
                confusion=confusion,
                seed=seed,
                mode=self.mode,
                output_jacobian=model in self.output_jacobian,
            )
            for model in self.models
            for seed in range(seeds)
        ]


# --------------------------------------------------------------------------- per-seed values


@dataclass(frozen=True)
class Checkpoint:
    """A model's group (its run label, e.g. ``"mlp digits"``) at one checkpoint: the 0-based epoch
    label, measured after that epoch's update."""

    group: str
    epoch: int

    def __str__(self) -> str:
        return f"{self.group} {figures.trained_for(self.epoch)}"


def checkpoints(cfg: ClassifierRun) -> list[Checkpoint]:
    """The Hamming checkpoints of a model's runs, as groups."""
    return [Checkpoint(cfg.input, e) for e in cfg.hamming.epochs(cfg.train.epochs)]


def _summarise(summary: dict, table: SeedTable, group: Any, quantities: Sequence[str]) -> None:
    """Mean and std over seeds of the per-seed ``quantities`` into the group's summary."""
    for quantity in quantities:
        v = np.fromiter(table.get(group, quantity).values(), dtype=np.float64)
        summary[quantity], summary[f"{quantity}_std"] = float(v.mean()), float(v.std())


# --------------------------------------------------------------------------- E17: confusion

JAC = "confusion/local_jac_cos"
"""The array a run carries when its confusion probe recorded the output-Jacobian cosine."""
NO_JACOBIAN = (
    "the output-Jacobian cosine was not computed for this model at this profile (for the CNN, torch.func "
    "Jacobians of the logits cost about five times the rest of its run on a CPU; the paper profile has them)"
)


def _last(d: RunData, kind: str, record: str = "cos") -> np.ndarray:
    """The pairs' cosines at the last confusion checkpoint."""
    return d.get("confusion", f"{kind}_{record}")[-1]


def confusion_claims(cfg: ClassifierRun) -> list[Claim]:
    """E17's claims for the model of ``cfg``: loss-gradient confusion, then the output-Jacobian
    cosine (not measurable where the runs do not record it)."""
    label = cfg.input
    neighbours = "different-class neighbours" if cfg.different_class() else "neighbours"
    piled, centred, orthogonal = (threshold(n).value for n in ("piled_share", "centred", "orthogonal"))
    no_jac = None if cfg.output_jacobian else NO_JACOBIAN
    return [
        Level(text=f"{label}: neighbours' gradients are not (anti)parallel, unlike dense coordinates "
                   f"(share of local |cos| > 0.9 <= {piled:g})",
              reads="cos_local_frac_abs_gt_0.9", group=label, threshold="piled_share", above=False),
        Level(text=f"{label}: {neighbours}' confusion is centred at 0 (|median cos| <= {centred:g})",
              reads="cos_local_off_centre", group=label, threshold="centred", above=False),
        Level(text=f"{label}: distant pairs' gradients are nearly orthogonal (mean |cos| <= {orthogonal:g})",
              reads="cos_global_abs_mean", group=label, threshold="orthogonal", above=False),
        Compare(text=f"{label}: {neighbours} are more confused than distant pairs (lower mean cos)",
                reads="cos_local_mean", reads_b="cos_global_mean", a=label, b=label, relation="<"),
        Level(text=f"{label}: neighbours' output Jacobians are not (anti)parallel, unlike dense coordinates "
                   f"(share of local |cos(J_i, J_j)| > 0.9 <= {piled:g})",
              reads="jac_local_frac_abs_gt_0.9", group=label, threshold="piled_share", above=False,
              unless=no_jac),
        Level(text=f"{label}: distant pairs' output Jacobians are nearly orthogonal "
                   f"(mean |cos(J_i, J_j)| <= {orthogonal:g})",
              reads="jac_global_abs_mean", group=label, threshold="orthogonal", above=False, unless=no_jac),
    ]  # fmt: skip


def _jacobian_figure(part: Part, groups: Groups) -> None:
    """KDEs and per-seed arrays of the output-Jacobian cosine, for the models that carry it."""
    carrying = {label: datas for label, datas in groups.items() if JAC in datas[0].arrays}
    if not carrying:
        return
    epoch = int(next(iter(carrying.values()))[0].get("confusion", "epochs")[-1])
    values = {}
    for label, datas in carrying.items():
        values[label] = {}
        for kind in KINDS:
            per_seed = np.stack([_last(d, kind, "jac_cos") for d in datas])
            part.arrays[f"jac_cos_{kind}/{label}/epoch{epoch}"] = per_seed
            values[label][kind] = per_seed.ravel()
    title = f"Output-Jacobian cosine {figures.trained_for(epoch)} (pooled over seeds)"
    fig = figures.confusion_kde(values, title)
    for ax in fig.axes:
        ax.set_xlabel("cos(Jᵢ, Jⱼ) = tr(JᵢJⱼᵀ)/‖Jᵢ‖‖Jⱼ‖")
    part.figures[f"jacobian_epoch{epoch}"] = fig


def _median(kind: str) -> Callable[[RunData], float]:
    return lambda d: float(np.nanmedian(_last(d, kind)))


CONFUSION_MEASURES: dict[str, Callable[[RunData], float]] = {
    "cos_local_median": _median("local"),
    "cos_global_median": _median("global"),
    "cos_local_off_centre": lambda d: abs(_median("local")(d)),
}
"""E17's per-seed values beside the shared ones: the median loss-gradient cosine of each pair kind,
and how far the neighbours' median sits from 0."""


def _confusion(exp: str, groups: Groups, summary: dict) -> Part:
    """E17: per-seed medians of the last confusion checkpoint and the Jacobian figure."""
    part = Part(table=SeedTable.of(groups, CONFUSION_MEASURES))
    for label in groups:
        _summarise(summary[label], part.table, label, ["cos_local_median", "cos_global_median"])
    _jacobian_figure(part, groups)
    return part


# --------------------------------------------------------------------------- E18: Hamming

HAMMING_TRENDS = {"mlp": ("global", False), "cnn": ("local", True)}
"""The paper's Hamming trend per model: (pair kind, rises): the MLP's distant pairs decline, the
CNN's neighbours grow."""


def _hamming_figure(
    epochs: np.ndarray, stats: dict[str, dict[str, np.ndarray]], units: dict[str, int]
) -> Figure:
    """One panel per model: mean Hamming distance of local and global pairs, ± std over pairs."""
    fig, grid = plt.subplots(1, len(stats), figsize=(5.2 * len(stats), 3.8), squeeze=False)
    axes = grid[0]
    palette = figures.colors(list(KINDS))
    for ax, (label, s) in zip(axes, stats.items()):
        for kind in KINDS:
            mean, std = s[f"{kind}_mean"], s[f"{kind}_std"]
            ax.plot(epochs, mean, color=palette[kind], label=f"{kind} pairs")
            ax.fill_between(epochs, mean - std, mean + std, color=palette[kind], alpha=0.2)
        n = units[label]
        sec = ax.secondary_yaxis("right", functions=(lambda h, n=n: h / n, lambda r, n=n: r * n))
        sec.set_ylabel(f"fraction of the {n} units")
        ax.set_title(label)
        ax.set_xlabel("epoch (after the update)")
        ax.set_ylabel("Hamming distance (units)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Activation-pattern Hamming distance of real images (± std over pairs, mean over seeds)")
    fig.tight_layout()
    return fig


def _smallest_gap(d: RunData) -> float:
    """The smallest relative excess of the distant pairs' Hamming distance over the neighbours' over
    the checkpoints, ``min_e (H_global − H_local)/max(H_global, H_local)`` (> 0: more at every
    checkpoint; NaN, not measurable, when every checkpoint has both at 0)."""
    local, far = d.get("hamming", "local_mean"), d.get("hamming", "global_mean")
    scale = np.maximum(far, local)
    gaps = (far - local)[scale > 0] / scale[scale > 0]
    return float(gaps.min()) if gaps.size else float("nan")


def hamming_claims(cfg: ClassifierRun) -> list[Claim]:
    """E18's claims for the model of ``cfg``; the trend is the paper's for it (:data:`HAMMING_TRENDS`)."""
    label, over = cfg.input, checkpoints(cfg)
    substantial = threshold("substantial").value
    claims: list[Claim] = [
        Level(text=f"{label}: neighbouring images differ in a substantial fraction of the units "
                   f"(H/n >= {substantial:g} at the end)",
              reads="hamming_local_ratio", group=label, threshold="substantial"),
        Level(text=f"{label}: distant pairs differ in more units than neighbours at every checkpoint",
              reads="hamming_smallest_gap", group=label, threshold="material"),
    ]  # fmt: skip
    if cfg.model in HAMMING_TRENDS:
        kind, rises = HAMMING_TRENDS[cfg.model]
        who = "distant pairs'" if kind == "global" else "neighbours'"
        how = "grows" if rises else "declines"
        claims.append(
            Trend(text=f"{label}: the {who} Hamming distance {how} over training", reads=f"hamming_{kind}",
                  over=over, xs=[c.epoch + 1 for c in over], rises=rises)
        )  # fmt: skip
    return claims


def _hamming_at(kind: str, c: int) -> Callable[[RunData], float]:
    """A run's mean Hamming distance of ``kind`` pairs at its ``c``-th checkpoint."""
    return lambda d: float(d.get("hamming", f"{kind}_mean")[c])


def _hamming_rows(exp: str, label: str, datas: list[RunData], epochs: np.ndarray) -> list[tuple]:
    """Per-layer rows ``(exp, label, seed, epoch, hamming_{kind}, layer{q}, value)``."""
    return [
        (exp, label, d.meta["seed"], int(e), f"hamming_{kind}", f"layer{q + 1}", float(v))
        for kind in KINDS
        for d in datas
        for e, row in zip(epochs, d.get("hamming", f"{kind}_layer_mean"))
        for q, v in enumerate(row)
    ]


def _hamming(exp: str, groups: Groups, summary: dict) -> Part:
    """E18: Hamming curves (rows per seed, per layer), per-checkpoint tables, the figure."""
    part = Part()
    epochs = next(iter(groups.values()))[0].get("hamming", "epochs")
    keys = ("local_mean", "local_std", "global_mean", "global_std")
    part.rows = scalar_curve_rows(exp, groups, "hamming", keys, "hamming")
    stats, units = {}, {}
    for label, datas in groups.items():
        units[label] = int(datas[0].meta["n_hidden"])
        stats[label] = {k: np.mean([d.get("hamming", k) for d in datas], axis=0) for k in keys}
        for k in keys:
            part.arrays[f"hamming_{k}/{label}"] = np.stack([d.get("hamming", k) for d in datas])
        for kind in KINDS:
            part.arrays[f"hamming_{kind}_layers/{label}"] = np.stack(
                [d.get("hamming", f"{kind}_layer_mean") for d in datas]
            )
        part.rows += _hamming_rows(exp, label, datas, epochs)
        for c, point in enumerate(Checkpoint(label, int(e)) for e in epochs):
            part.table.update(
                SeedTable.of({point: datas}, {f"hamming_{k}": _hamming_at(k, c) for k in KINDS})
            )
        part.table.update(SeedTable.of({label: datas}, {"hamming_smallest_gap": _smallest_gap}))
        summary[label].update(
            hamming_local_first=float(stats[label]["local_mean"][0]),
            hamming_global_first=float(stats[label]["global_mean"][0]),
            hamming_local_pair_std=float(stats[label]["local_std"][-1]),
            hamming_global_pair_std=float(stats[label]["global_std"][-1]),
        )
        _summarise(summary[label], part.table, label, ["hamming_smallest_gap"])
    part.arrays["hamming_epochs"] = epochs
    part.figures["hamming"] = _hamming_figure(epochs, stats, units)
    return part


# --------------------------------------------------------------------------- E19: curves

CURVES = ("train_loss", "test_loss", "train_acc", "test_acc")


def _curves_figure(epochs: np.ndarray, curves: dict[str, dict[str, np.ndarray]]) -> Figure:
    """Per model: cross-entropy (top) and accuracy (bottom), train and test, mean ± std over seeds."""
    fig, axes = plt.subplots(2, len(curves), figsize=(5.2 * len(curves), 6.6), squeeze=False)
    palette = figures.colors(["train", "test"])
    for col, (label, c) in enumerate(curves.items()):
        for row, metric in enumerate(("loss", "acc")):
            ax = axes[row][col]
            for split in ("train", "test"):
                values = c[f"{split}_{metric}"]
                mean, std = values.mean(axis=0), values.std(axis=0)
                ax.plot(epochs, mean, color=palette[split], label=split)
                ax.fill_between(epochs, mean - std, mean + std, color=palette[split], alpha=0.2)
            ax.set_xlabel("epoch (after the update)")
            ax.set_ylabel("cross-entropy (mean over examples)" if metric == "loss" else "accuracy")
            if metric == "loss":
                ax.set_yscale("log")
                ax.set_title(label)
        axes[0][col].legend(fontsize=8)
    fig.suptitle("Training and test curves (± std over seeds)")
    fig.tight_layout()
    return fig


def _curve(key: str, stat: Callable[[np.ndarray], float]) -> Callable[[RunData], float]:
    return lambda d: float(stat(d.get("curves", key)))


CURVE_MEASURES: dict[str, Callable[[RunData], float]] = {
    "train_loss_first": _curve("train_loss", lambda c: c[0]),
    "train_loss_last": _curve("train_loss", lambda c: c[-1]),
    "best_test_acc": _curve("test_acc", np.max),
    "best_test_acc_over_chance": lambda d: (
        float(np.max(d.get("curves", "test_acc"))) * int(d.meta["n_classes"])
    ),
    "test_loss_rise": _curve("test_loss", lambda c: c[-1] / np.min(c) - 1),
}
"""E19's per-seed values: the training loss at the ends, the best test accuracy (also in units of
chance), and how far the test loss ends above its minimum (overfitting)."""


def curves_claims(cfg: ClassifierRun) -> list[Claim]:
    """E19's claims for the model of ``cfg``."""
    label = cfg.input
    overfit = threshold("overfit").value
    return [
        Compare(text=f"{label}: the training loss falls (last epoch below the first)",
                reads="train_loss_last", reads_b="train_loss_first", a=label, b=label, relation="<"),
        Level(text=f"{label}: the best test accuracy is at least twice chance",
              reads="best_test_acc_over_chance", group=label, threshold="chance_multiple"),
        Level(text=f"{label}: the test loss ends more than {overfit:.0%} above its minimum "
                   "(overfitting; the paper: yes on CIFAR, flat on MNIST)",
              reads="test_loss_rise", group=label, threshold="overfit"),
    ]  # fmt: skip


def _curves(exp: str, groups: Groups, summary: dict) -> Part:
    """E19: per-epoch train/test loss and accuracy rows, the figure, summary numbers."""
    part = Part(rows=scalar_curve_rows(exp, groups, "curves", CURVES, "curve"))
    part.table = SeedTable.of(groups, CURVE_MEASURES)
    epochs = next(iter(groups.values()))[0].get("curves", "epochs")
    curves = {}
    for label, datas in groups.items():
        curves[label] = {k: np.stack([d.get("curves", k) for d in datas]) for k in CURVES}
        part.arrays.update({f"{k}/{label}": v for k, v in curves[label].items()})
        mean = {k: v.mean(axis=0) for k, v in curves[label].items()}
        summary[label].update(
            final_test_acc=float(mean["test_acc"][-1]),
            final_train_loss=float(mean["train_loss"][-1]),
            final_test_loss=float(mean["test_loss"][-1]),
            min_test_loss=float(mean["test_loss"].min()),
            min_test_loss_epoch=int(epochs[int(mean["test_loss"].argmin())]),
        )
        _summarise(summary[label], part.table, label, ["best_test_acc", "test_loss_rise"])
    part.arrays["curve_epochs"] = epochs
    part.figures["curves"] = _curves_figure(epochs, curves)
    return part


# --------------------------------------------------------------------------- registry

_PARTS: dict[str, PartFn] = {
    "confusion": confusion_part,
    "confusion_values": _confusion,
    "hamming": _hamming,
    "curves": _curves,
}


ClaimsFn = Callable[[ClassifierRun], list[Claim]]


def _judge(result: ExperimentResult, runs: Sequence[tuple[ClassifierRun, Any]], claims: ClaimsFn) -> None:
    """Evaluate ``claims`` of every model (one run stands for its model) on the per-seed table; a
    model whose runs all diverged has its checkpoint groups marked like its own."""
    models = {cfg.model: cfg for cfg, _ in runs}
    for cfg in models.values():
        if (why := result.table.why_not(cfg.input)) is not None:
            for point in checkpoints(cfg):
                result.table.mark(point, why)
    result.findings.extend(evaluate([c for cfg in models.values() for c in claims(cfg)], result.table))


def _analysis(
    exp: str, parts: tuple[str, ...], claims: ClaimsFn
) -> Callable[[RealData, Runs], ExperimentResult]:
    """The shared analysis (per-model summaries, diverged runs, the parts), the claims, the setup."""
    base = make_analysis(exp, parts, _PARTS, order=lambda p: p.labels())

    def analyse(params: RealData, runs: Sequence[tuple[ClassifierRun, Any]]) -> ExperimentResult:
        result = base(params, runs)
        _judge(result, runs, claims)
        cfg, data = runs[0]
        result.summary["setup"] = {
            "dataset": cfg.data.name,
            "n_train": cfg.data.n_train,
            "n_test": cfg.data.n_test,
            "image_shape": list(cfg.data.image_shape),
            "n_classes": cfg.data.n_classes,
            "anchors": data.meta["n_anchors"],
            "k": cfg.pairs.k,
            "different_class": data.meta["different_class"],
            "hidden_units": {c.input: d.meta["n_hidden"] for c, d in runs},
            "cnn_stride": next((d.meta["cnn_stride"] for _, d in runs if d.meta["cnn_stride"]), None),
            "output_jacobian": sorted({c.input for c, _ in runs if c.output_jacobian}),
        }
        return result

    return analyse


PAPER = RealData()
QUICK = RealData(
    width=256,
    train=TrainConfig(epochs=30, batch_size=512),
    pairs=KnnSpec(anchors=100, k=10),
    hamming_every=2,
    seeds=4,
    output_jacobian=("mlp",),
)
STANDARD = dataclasses.replace(
    QUICK, width=PAPER.width, train=PAPER.train, confusion_epoch=PAPER.confusion_epoch, seeds=5
)
"""Standard: the paper's MLP width and 100 epochs, quick's neighbour pairs, 5 seeds."""


def _experiment(exp_id: str, title: str, claim: str, parts: tuple[str, ...], claims: ClaimsFn) -> Experiment:
    return Experiment.of(
        id=exp_id,
        title=title,
        claim=claim,
        quick=QUICK,
        standard=STANDARD,
        paper=PAPER,
        analyse=_analysis(exp_id, parts, claims),
    )


REALDATA_EXPERIMENTS = (
    _experiment(
        "E17",
        "Gradient confusion of neighbouring and distant real images (MLP and CNN)",
        "In sparse, high-dimensional data even neighbours have nearly orthogonal gradients.",
        ("confusion", "confusion_values"),
        confusion_claims,
    ),
    _experiment(
        "E18",
        "Hamming distance of neighbouring and distant real images over training",
        "On real data, neighbours differ in many units, unlike dense coordinates.",
        ("hamming",),
        hamming_claims,
    ),
    _experiment(
        "E19",
        "Training and test curves on real data",
        "Context: the classifiers learn; the MLP's test loss may rise (overfitting).",
        ("curves",),
        curves_claims,
    ),
)
