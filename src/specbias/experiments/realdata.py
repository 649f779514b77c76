"""The real-data contrast (spec §6): E17 gradient confusion, E18 Hamming over training, E19 curves.

The paper (Lazzari & Liu 2023) contrasts coordinate networks with classifiers of real images:
neighbouring real images, unlike neighbouring dense coordinates, fall in different activation
regions and have nearly orthogonal gradients. The three experiments share one training run per
(model, seed) (:class:`~specbias.classify.ClassifierRun`): an MLP on flattened pixels and the
spec's small CNN, cross-entropy, Adam lr 1e-3, mini-batches reshuffled every epoch, carrying

* E17 -- the cosine of per-example cross-entropy gradients over all parameters (Sankararaman et
  al. 2020, spec §1.6) after ``confusion_epoch + 1`` epochs (label 24: after 25 epochs, the
  reference's whole E17 run; later epochs do not change what came before) for each anchor's ``k``
  nearest training images of another class ("local") and its ``k`` farthest ("global");
* E18 -- the Hamming distance of activation patterns over every hidden unit for the same pairs,
  every ``hamming_every`` epochs after the update, mean and std over pairs (B20: the axis shows the
  real epochs);
* E19 -- training and test cross-entropy (proper means, B22) and accuracy every epoch, for each
  model (B21: the CNN's panel shows the CNN's losses).

Data: scikit-learn's bundled 8×8 ``digits`` by default (the torchvision sets cannot be downloaded
here), or any ``--data FILE.npz`` (:mod:`specbias.datasets`), normalised to ``[-1, 1]`` and split
with a seeded 20% test set unless the file brings ``X_test``/``y_test``. The CNN keeps the spec's
layers; on inputs smaller than 15 px its convolutions use stride 1 (8 → 6 → 4 → 2 on digits:
MNIST's 384 flattened features and parameter count), see :class:`~specbias.models.CNN`.

Findings
--------
Computed from the data, per model (means over seeds, pairs pooled), never hard-coded:

* E17: local gradients are far from (anti)parallel -- the share of local pairs with
  ``|cos| > 0.9`` is at most :data:`PILED_SHARE` (the 1D study's raw coordinates, E2, have
  about nine in ten of their window pairs there); local confusion is centred at 0
  (``|median cos| <=`` :data:`CENTRED`, the paper's MNIST/CIFAR MLP); distant pairs are nearly
  orthogonal (mean ``|cos| <=`` :data:`ORTHOGONAL`); neighbours of another class are more
  confused than distant pairs (lower mean cosine: the paper's negative tail).
* E18: at the end, neighbouring images differ in at least :data:`SUBSTANTIAL` of the units (raw
  coordinates in E3 differ in well under 1%); distant pairs differ in more units than neighbours
  at every checkpoint; the MLP's distant-pair Hamming declines over training and the CNN's
  neighbour Hamming grows (the paper's trends).
* E19: the training loss falls; the best test accuracy is at least twice chance; whether the test
  loss ends more than :data:`OVERFIT` above its minimum (overfitting: yes on CIFAR, flat on
  MNIST/FashionMNIST in the paper).

Profiles
--------
``paper``: the reference scale -- MLP-4×512 and the CNN, 100 epochs, batch 512, 2,500 anchors ×
25 neighbours and 25 far points (all training images are anchors when there are fewer, as for
digits' 1,438), confusion after 25 epochs, Hamming every 5 epochs, 3 seeds; with ``--data
mnist.npz`` it is the paper's MNIST experiment (a GPU job). ``quick`` (digits on a 2-core CPU,
E17+E18+E19 together about half a minute): MLP-4×256 (the CNN's training dominates the cost, the
MLP's width hardly matters for it), 30 epochs (the confusion checkpoint after 25 and the Hamming
and test-loss trends after it), batch 512 (3 steps per epoch; the nets reach about 97-98% test
accuracy), 100 anchors × 10 neighbours and 10 far points (1,000 pairs of each kind per run: the
CNN's per-example gradients by ``torch.func`` cost about 2 ms per image on one thread), Hamming
every 2 epochs, 2 seeds.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from specbias import figures
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
from specbias.experiments.base import Experiment, ExperimentResult, Finding
from specbias.training import Schedule, TrainConfig

PILED_SHARE = 0.1
"""E17: at most this share of local pairs may have ``|cos| > 0.9`` ("nothing piles up at ±1")."""
CENTRED = 0.1
"""E17: local confusion is centred at 0 when ``|median cos|`` is at most this."""
ORTHOGONAL = 0.2
"""E17: distant pairs are nearly orthogonal when their mean ``|cos|`` is at most this."""
SUBSTANTIAL = 0.05
"""E18: neighbours differ in a substantial fraction of units when ``H / n`` is at least this."""
OVERFIT = 0.05
"""E19: the test loss rises (overfitting) when its last value exceeds its minimum by this fraction."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class RealData:
    """Parameters of the real-data contrast; ``data`` is None (digits) or an ``.npz`` path."""

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

    OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "lr", "width", "depth", "data", "mode")

    def __post_init__(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models) or set(self.models) - set(MODELS):
            raise ConfigError(
                f"models must be distinct names from {', '.join(MODELS)}, got {list(self.models)}"
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
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}")

    def override(self, **changes: Any) -> RealData:
        """A copy with user overrides: epochs, lr, width, depth, mode, and ``data`` (an ``.npz``
        path, checked here so that a bad file is a one-line error before anything runs)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        train = dataclasses.replace(
            self.train, **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes}
        )
        if "data" in changes:
            changes["data"] = DataSpec.of(changes["data"]).source
        return dataclasses.replace(self, train=train, **changes)

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
            )
            for model in self.models
            for seed in range(seeds)
        ]


# --------------------------------------------------------------------------- E17: confusion


def _confusion_findings(exp: str, groups: Groups, summary: dict) -> Part:
    """E17's findings from the last confusion checkpoint, pairs pooled over seeds."""
    part = Part()
    for label, datas in groups.items():
        cos = {
            k: np.concatenate([d.get("confusion", f"{k}_cos")[-1] for d in datas])
            for k in ("local", "global")
        }
        piled = float(np.nanmean(np.abs(cos["local"]) > 0.9))
        median = float(np.nanmedian(cos["local"]))
        far_abs = float(np.nanmean(np.abs(cos["global"])))
        means = {k: float(np.nanmean(v)) for k, v in cos.items()}
        neighbours = (
            "different-class neighbours" if datas[0].meta.get("different_class", True) else "neighbours"
        )
        summary[label].update(cos_local_median=median, cos_global_median=float(np.nanmedian(cos["global"])))
        part.findings += [
            Finding(
                f"{label}: neighbours' gradients are not (anti)parallel, unlike dense coordinates "
                f"(share of local |cos| > 0.9 <= {PILED_SHARE})",
                bool(piled <= PILED_SHARE),
                f"share {piled:.3f} of {cos['local'].size} pairs; mean |cos| "
                f"{np.nanmean(np.abs(cos['local'])):.3f}",
            ),
            Finding(
                f"{label}: {neighbours}' confusion is centred at 0 (|median cos| <= {CENTRED})",
                bool(abs(median) <= CENTRED),
                f"median {median:+.3f}, mean {means['local']:+.3f}",
            ),
            Finding(
                f"{label}: distant pairs' gradients are nearly orthogonal (mean |cos| <= {ORTHOGONAL})",
                bool(far_abs <= ORTHOGONAL),
                f"mean |cos| {far_abs:.3f} over {cos['global'].size} pairs",
            ),
            Finding(
                f"{label}: {neighbours} are more confused than distant pairs (lower mean cos)",
                bool(means["local"] < means["global"]),
                f"local {means['local']:+.3f} vs global {means['global']:+.3f}",
            ),
        ]
    return part


# --------------------------------------------------------------------------- E18: Hamming


def _hamming_figure(
    epochs: np.ndarray, stats: dict[str, dict[str, np.ndarray]], units: dict[str, int]
) -> Figure:
    """One panel per model: mean Hamming distance of local and global pairs, ± std over pairs."""
    fig, grid = plt.subplots(1, len(stats), figsize=(5.2 * len(stats), 3.8), squeeze=False)
    axes = grid[0]
    palette = figures.colors(["local", "global"])
    for ax, (label, s) in zip(axes, stats.items()):
        for kind in ("local", "global"):
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


def _hamming(exp: str, groups: Groups, summary: dict) -> Part:
    """E18: Hamming curves (rows per seed, per layer), the figure, and the findings."""
    part = Part()
    first = next(iter(groups.values()))[0]
    epochs = first.get("hamming", "epochs")
    keys = ("local_mean", "local_std", "global_mean", "global_std")
    part.rows = scalar_curve_rows(exp, groups, "hamming", keys, "hamming")
    stats, units = {}, {}
    for label, datas in groups.items():
        n = int(datas[0].meta["n_hidden"])
        units[label] = n
        stats[label] = {k: np.mean([d.get("hamming", k) for d in datas], axis=0) for k in keys}
        for k in keys:
            part.arrays[f"hamming_{k}/{label}"] = np.stack([d.get("hamming", k) for d in datas])
        for kind in ("local", "global"):
            layers = np.stack([d.get("hamming", f"{kind}_layer_mean") for d in datas])
            part.arrays[f"hamming_{kind}_layers/{label}"] = layers
            part.rows += [
                (exp, label, d.meta["seed"], int(e), f"hamming_{kind}", f"layer{q + 1}", float(v))
                for d, per_seed in zip(datas, layers)
                for e, row in zip(epochs, per_seed)
                for q, v in enumerate(row)
            ]
        part.findings += _hamming_findings(label, datas[0].meta["model"], stats[label], n, summary[label])
    part.arrays["hamming_epochs"] = epochs
    part.figures["hamming"] = _hamming_figure(epochs, stats, units)
    return part


def _hamming_findings(
    label: str, model: str, s: dict[str, np.ndarray], n: int, summary: dict
) -> list[Finding]:
    local, glob = s["local_mean"], s["global_mean"]
    summary.update(
        hamming_local_first=float(local[0]),
        hamming_global_first=float(glob[0]),
        hamming_local_pair_std=float(s["local_std"][-1]),
        hamming_global_pair_std=float(s["global_std"][-1]),
    )
    findings = [
        Finding(
            f"{label}: neighbouring images differ in a substantial fraction of the units "
            f"(H/n >= {SUBSTANTIAL} at the end)",
            bool(local[-1] / n >= SUBSTANTIAL),
            f"H = {local[-1]:.1f} of {n} units ({local[-1] / n:.3f})",
        ),
        Finding(
            f"{label}: distant pairs differ in more units than neighbours at every checkpoint",
            bool((glob > local).all()),
            f"global − local from {glob[0] - local[0]:+.1f} to {glob[-1] - local[-1]:+.1f} units "
            f"(minimum {np.min(glob - local):+.1f})",
        ),
    ]
    if model == "mlp":
        findings.append(
            Finding(
                f"{label}: the distant pairs' Hamming distance declines over training (last < first)",
                bool(glob[-1] < glob[0]),
                f"{glob[0]:.1f} -> {glob[-1]:.1f} units",
            )
        )
    else:
        findings.append(
            Finding(
                f"{label}: the neighbours' Hamming distance grows over training (last > first)",
                bool(local[-1] > local[0]),
                f"{local[0]:.1f} -> {local[-1]:.1f} units",
            )
        )
    return findings


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


def _curves(exp: str, groups: Groups, summary: dict) -> Part:
    """E19: per-epoch train/test loss and accuracy rows, the figure, summary numbers, findings."""
    part = Part(rows=scalar_curve_rows(exp, groups, "curves", CURVES, "curve"))
    first = next(iter(groups.values()))[0]
    epochs = first.get("curves", "epochs")
    curves = {}
    for label, datas in groups.items():
        curves[label] = {k: np.stack([d.get("curves", k) for d in datas]) for k in CURVES}
        part.arrays.update({f"{k}/{label}": v for k, v in curves[label].items()})
        mean = {k: v.mean(axis=0) for k, v in curves[label].items()}
        test, train = mean["test_loss"], mean["train_loss"]
        best = float(curves[label]["test_acc"].max(axis=1).mean())
        chance = 1.0 / int(datas[0].meta["n_classes"])
        summary[label].update(
            best_test_acc=best,
            final_test_acc=float(mean["test_acc"][-1]),
            final_train_loss=float(train[-1]),
            final_test_loss=float(test[-1]),
            min_test_loss=float(test.min()),
            min_test_loss_epoch=int(epochs[int(test.argmin())]),
        )
        rise = test[-1] / test.min() - 1
        part.findings += [
            Finding(
                f"{label}: the training loss falls (last epoch below the first)",
                bool(train[-1] < train[0]),
                f"{train[0]:.4g} -> {train[-1]:.4g}",
            ),
            Finding(
                f"{label}: the best test accuracy is at least twice chance",
                bool(best >= 2 * chance),
                f"best test accuracy {best:.3f}, chance {chance:.3f}",
            ),
            Finding(
                f"{label}: the test loss ends more than {OVERFIT:.0%} above its minimum "
                "(overfitting; the paper: yes on CIFAR, flat on MNIST)",
                bool(rise > OVERFIT),
                f"minimum {test.min():.4g} at epoch {epochs[int(test.argmin())]}, last {test[-1]:.4g} "
                f"({rise:+.1%})",
            ),
        ]
    part.arrays["curve_epochs"] = epochs
    part.figures["curves"] = _curves_figure(epochs, curves)
    return part


# --------------------------------------------------------------------------- registry

_PARTS: dict[str, PartFn] = {
    "confusion": confusion_part,
    "confusion_findings": _confusion_findings,
    "hamming": _hamming,
    "curves": _curves,
}


def _analysis(exp: str, parts: tuple[str, ...]) -> Callable[[RealData, Runs], ExperimentResult]:
    """The shared analysis (per-model summaries, diverged runs, the parts) plus the setup."""
    base = make_analysis(exp, parts, _PARTS, order=lambda p: p.labels())

    def analyse(params: RealData, runs: Sequence[tuple[ClassifierRun, Any]]) -> ExperimentResult:
        result = base(params, runs)
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
        }
        return result

    return analyse


PAPER = RealData()
QUICK = RealData(
    width=256,
    train=TrainConfig(epochs=30, batch_size=512),
    pairs=KnnSpec(anchors=100, k=10),
    hamming_every=2,
    seeds=2,
)


def _experiment(exp_id: str, title: str, claim: str, parts: tuple[str, ...]) -> Experiment:
    return Experiment.of(
        id=exp_id,
        title=title,
        claim=claim,
        quick=QUICK,
        paper=PAPER,
        analyse=_analysis(exp_id, parts),
    )


REALDATA_EXPERIMENTS = (
    _experiment(
        "E17",
        "Gradient confusion of neighbouring and distant real images (MLP and CNN)",
        "In sparse, high-dimensional data even neighbours have nearly orthogonal gradients.",
        ("confusion", "confusion_findings"),
    ),
    _experiment(
        "E18",
        "Hamming distance of neighbouring and distant real images over training",
        "On real data, neighbours differ in many units, unlike dense coordinates.",
        ("hamming",),
    ),
    _experiment(
        "E19",
        "Training and test curves on real data",
        "Context: the classifiers learn; the MLP's test loss may rise (overfitting).",
        ("curves",),
    ),
)
