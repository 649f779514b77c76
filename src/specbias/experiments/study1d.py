"""The 1D study (spec §2): E1, E2, E3, X1 share one set of runs; E3b is the v1 variant.

One run per (input, seed) carries every probe the four experiments read, so they train once.
Protocol, profiles and the claims list: ``docs/experiments/study1d.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specbias import figures
from specbias.claims import Claim, Compare, Level
from specbias.experiments.analysis import (
    REL_ERR_THRESHOLD,
    Groups,
    Part,
    PartFn,
    confusion_part,
    final_loss,
    hamming_part,
    make_analysis,
)
from specbias.experiments.base import Experiment, check_study
from specbias.experiments.params import NETWORK, TRAIN, Overridable, replace_at
from specbias.runs import (
    ConfusionSpec,
    ConvergenceSpec,
    HammingSpec,
    PairSpec,
    PredictionSpec,
    RunConfig,
)
from specbias.signals import V1_FREQS, ToneMixture
from specbias.training import Schedule, TrainConfig


@dataclass(frozen=True)
class Study1D(Overridable):
    """Parameters of a 1D study: signal, inputs, network, training and probe schedules."""

    signal: ToneMixture = ToneMixture()
    inputs: tuple[str, ...] = ("raw01", "raw11", "pe3", "pe6")
    width: int = 128
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=500)
    hamming: HammingSpec = HammingSpec(Schedule(every=25, last=True), PairSpec(25, 250, 5000))
    confusion: ConfusionSpec = ConfusionSpec(Schedule(last=True), PairSpec(25, 100, 5000))
    convergence: ConvergenceSpec = ConvergenceSpec(Schedule(every=5, last=True))
    prediction: PredictionSpec = PredictionSpec(Schedule(last=True))
    mode: str = "clean"
    seeds: int = 5

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TRAIN,
        **NETWORK,
        "n": ("signal.n",),
        "inputs": ("inputs",),
        "mode": ("mode",),
    }

    def __post_init__(self) -> None:
        check_study(self.inputs, mode=self.mode, width=self.width, depth=self.depth, seeds=self.seeds)

    def apply(self, name: str, value: Any) -> Study1D:
        """``mode`` also sets the tone phases: faithful shares one draw across runs (B2), clean draws
        them per run."""
        out = super().apply(name, value)
        if name == "mode":
            return replace_at(out, "signal.phases", "shared" if value == "faithful" else "per_run")
        return out

    def runs(self, seeds: int) -> list[RunConfig]:
        probes = (self.hamming, self.confusion, self.convergence, self.prediction)
        return [
            RunConfig(
                signal=self.signal,
                input=label,
                width=self.width,
                depth=self.depth,
                train=self.train,
                probes=probes,
                seed=seed,
                mode=self.mode,
            )
            for label in self.inputs
            for seed in range(seeds)
        ]


PAPER_1D = Study1D()
QUICK_1D = dataclasses.replace(PAPER_1D, seeds=3)
V1_1D = Study1D(
    signal=ToneMixture(freqs=V1_FREQS),
    inputs=("raw01", "pe5"),
    width=256,
    depth=2,
    train=TrainConfig(epochs=1000),
    hamming=HammingSpec(Schedule(every=100, last=True), PairSpec(100, 500, 10000)),
    confusion=ConfusionSpec(Schedule(explicit=(99,), last=True), PairSpec(100, 500, 10000)),
)
V1_1D_QUICK = dataclasses.replace(V1_1D, seeds=3)


def _reconstruction(exp: str, groups: Groups, summary: dict) -> Part:
    """Target and predictions after training, per seed. Only the seeds every input finished (none
    diverged) are drawn and saved, so that each row pairs one seed's target with that seed's
    predictions."""
    by_seed = {k: {d.meta["seed"]: d for d in v} for k, v in groups.items()}
    seeds = sorted(set.intersection(*(set(v) for v in by_seed.values())))
    first = next(iter(by_seed.values()))
    t = next(iter(first.values())).arrays["signal/t"][:, 0]
    targets = [first[s].arrays["signal/y"][:, 0] for s in seeds]
    preds = {k: [v[s].get("prediction", "pred")[-1][:, 0] for s in seeds] for k, v in by_seed.items()}
    rows = [
        (
            exp,
            k,
            d.meta["seed"],
            int(d.get("convergence", "epochs")[-1]),
            "grid_mse",
            "",
            final_loss(d),
        )
        for k, v in groups.items()
        for d in v
        if d.has("convergence")
    ]
    figs = {}
    if seeds:
        arrays = {f"pred/{k}": np.stack(v) for k, v in preds.items()}
        arrays["target"], arrays["seeds"] = np.stack(targets), np.array(seeds)
        figs["reconstruction"] = figures.reconstruction(t, targets[:5], preds, seeds[:5])
    else:
        arrays = {}
    arrays["t"] = t
    claim = Compare(
        text="PE L=6 fits the target better than raw [0,1)",
        reads="final_loss",
        a="pe6",
        b="raw01",
        relation="<",
    )
    return Part(rows, arrays, figs, claims=[claim])


def _convergence(exp: str, groups: Groups, summary: dict) -> Part:
    rows, arrays, rel = [], {}, {}
    first = next(iter(groups.values()))[0]
    epochs, freqs = first.get("convergence", "epochs"), first.arrays["signal/freqs"]
    for label, datas in groups.items():
        rel[label] = np.stack([d.get("convergence", "rel_error") for d in datas])
        for metric in ("rel_error", "learned_fraction", "magnitude_error"):
            arrays[f"{metric}/{label}"] = np.stack([d.get("convergence", metric) for d in datas])
            for d in datas:
                values = d.get("convergence", metric)
                rows.extend(
                    (exp, label, d.meta["seed"], int(e), metric, str(k), float(values[c, q]))
                    for c, e in enumerate(epochs)
                    for q, k in enumerate(freqs)
                )
    arrays["convergence_epochs"], arrays["freqs"] = epochs, freqs
    figs = {
        "convergence_curves": figures.convergence_curves(epochs, freqs, rel, REL_ERR_THRESHOLD),
        "convergence_heatmap": figures.convergence_heatmap(epochs, freqs, rel),
    }
    claims: list[Claim] = []
    if "raw01" in groups:
        claims.append(
            Level(
                text="raw [0,1): the higher the frequency, the larger its final relative error",
                reads="rho_freq_rel_err",
                group="raw01",
                threshold="rank_corr",
            )
        )
        if "pe6" in groups:
            claims.append(
                Compare(
                    text="PE L=6 brings more target frequencies below 0.1 relative error than raw [0,1)",
                    reads="n_converged",
                    a="pe6",
                    b="raw01",
                    relation=">",
                )
            )
    return Part(rows, arrays, figs, claims=claims)


_PARTS: dict[str, PartFn] = {
    "reconstruction": _reconstruction,
    "confusion": confusion_part,
    "hamming": hamming_part,
    "convergence": _convergence,
}


def _runs(params: Study1D, seeds: int) -> list[RunConfig]:
    return params.runs(seeds)


def _study(
    exp_id: str, title: str, claim: str, parts: tuple[str, ...], params: Study1D, quick: Study1D | None = None
) -> Experiment:
    return Experiment(
        id=exp_id,
        title=title,
        claim=claim,
        profiles={"quick": quick or params, "standard": params, "paper": params},
        runs=_runs,
        analyse=make_analysis(exp_id, parts, _PARTS, order=lambda p: p.inputs),
    )


STUDY_1D_EXPERIMENTS = (
    _study(
        "E1",
        "1D reconstruction",
        "Spectral bias exists: raw coordinates fit only the low-frequency envelope; PE fits the high tones.",
        ("reconstruction",),
        PAPER_1D,
        quick=QUICK_1D,
    ),
    _study(
        "E2",
        "1D gradient confusion, local vs global",
        "Dense coordinates give (anti)parallel gradients for neighbours; PE decorrelates them.",
        ("confusion",),
        PAPER_1D,
        quick=QUICK_1D,
    ),
    _study(
        "E3",
        "1D Hamming distance over training",
        "With raw coordinates neighbours share activation patterns; with PE they do not.",
        ("hamming",),
        PAPER_1D,
        quick=QUICK_1D,
    ),
    _study(
        "X1",
        "1D per-frequency convergence",
        "Low frequencies converge first for raw inputs; PE converges across the band.",
        ("convergence", "reconstruction"),
        PAPER_1D,
        quick=QUICK_1D,
    ),
    _study(
        "E3b",
        "1D v1 variant (MLP-2×256, 10 tones, 1000 epochs)",
        "As E2 and E3 in the v1 setting: raw neighbours share patterns and have (anti)parallel gradients.",
        ("hamming", "confusion"),
        V1_1D,
        quick=V1_1D_QUICK,
    ),
)
