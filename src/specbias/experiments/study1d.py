"""The 1D study (spec §2): E1, E2, E3, X1 share one set of runs; E3b is the v1 variant.

One training run per (input, seed) carries every probe the four experiments need -- Hamming
every 25 epochs, per-frequency convergence every 5, gradient confusion and the prediction at the
end -- so ``specbias run E2`` followed by ``specbias run E3`` trains nothing the second time.

Profiles. The reference scale (4 inputs × 5 seeds × 500 full-batch epochs, N = 2048, MLP-4×128)
already runs in about a minute on a 2-core CPU, so ``quick`` and ``paper`` are the same
configuration for E1–E3/X1; the reference's phases shared by all runs (bug B2) are the
``--mode faithful`` option, the default draws them from each run's seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from specbias import figures
from specbias.encodings import parse_input
from specbias.errors import ConfigError
from specbias.experiments.base import Experiment, ExperimentResult, Finding
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import (
    ConfusionSpec,
    ConvergenceSpec,
    HammingSpec,
    PairSpec,
    PredictionSpec,
    RunConfig,
    RunData,
)
from specbias.signals import V1_FREQS, ToneMixture
from specbias.training import Schedule, TrainConfig

REL_ERR_THRESHOLD = 0.1
Runs = Sequence[tuple[RunConfig, RunData]]


@dataclass(frozen=True)
class Study1D:
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

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("at least one input is needed")
        if len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(f"inputs must be distinct, got {list(self.inputs)}")
        for label in self.inputs:
            parse_input(label)
        if self.mode not in ("clean", "faithful"):
            raise ConfigError(f"mode must be 'clean' or 'faithful', got {self.mode!r}")
        for name in ("width", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def override(self, **changes: Any) -> Study1D:
        """A copy with user overrides: epochs, lr, width, depth, inputs, n, mode."""
        changes = {k: v for k, v in changes.items() if v is not None}
        train = dataclasses.replace(
            self.train,
            **{k: changes.pop(k) for k in ("epochs", "lr") if k in changes},
        )
        signal = self.signal
        if "n" in changes:
            signal = dataclasses.replace(signal, n=changes.pop("n"))
        if changes.get("mode") == "faithful":
            signal = dataclasses.replace(signal, phases="shared")
        if "inputs" in changes:
            changes["inputs"] = tuple(changes["inputs"])
        return dataclasses.replace(self, train=train, signal=signal, **changes)

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
V1_1D = Study1D(
    signal=ToneMixture(freqs=V1_FREQS),
    inputs=("raw01", "pe5"),
    width=256,
    depth=2,
    train=TrainConfig(epochs=1000),
    hamming=HammingSpec(Schedule(every=100, last=True), PairSpec(100, 500, 10000)),
    confusion=ConfusionSpec(Schedule(explicit=(99,), last=True), PairSpec(100, 500, 10000)),
)


def _by_input(runs: Runs) -> dict[str, list[RunData]]:
    groups: dict[str, list[tuple[int, RunData]]] = {}
    for cfg, data in runs:
        groups.setdefault(cfg.input, []).append((cfg.seed, data))
    return {k: [d for _, d in sorted(v, key=lambda p: p[0])] for k, v in groups.items()}


def _final_loss(data: RunData) -> float:
    if data.has("convergence"):
        return float(data.get("convergence", "mse")[-1])
    return float(data.get("train", "loss")[-1])


def _input_summary(datas: list[RunData]) -> dict[str, Any]:
    """Headline numbers for one input: means over seeds (``None`` when a probe is absent)."""
    first = datas[0]
    n_hidden = first.meta["n_hidden"]
    out: dict[str, Any] = {
        "final_loss": float(np.mean([_final_loss(d) for d in datas])),
        "n_params": first.meta["n_params"],
        "in_dim": first.meta["in_dim"],
        "aliased_features": first.meta["aliased_features"],
        "seeds": len(datas),
    }
    if first.has("hamming"):
        for kind in ("local", "global"):
            h = float(np.mean([d.get("hamming", f"{kind}_mean")[-1] for d in datas]))
            out[f"hamming_{kind}"] = h
            out[f"hamming_{kind}_ratio"] = h / n_hidden
    if first.has("confusion"):
        for kind in ("local", "global"):
            cos = [d.get("confusion", f"{kind}_cos")[-1] for d in datas]
            out[f"cos_{kind}_mean"] = float(np.mean([np.nanmean(c) for c in cos]))
            out[f"cos_{kind}_abs_mean"] = float(np.mean([np.nanmean(np.abs(c)) for c in cos]))
            out[f"cos_{kind}_frac_abs_gt_0.9"] = float(np.mean([np.nanmean(np.abs(c) > 0.9) for c in cos]))
            out[f"cos_{kind}_n_zero"] = int(sum(d.get("confusion", f"{kind}_n_zero")[-1] for d in datas))
    if first.has("convergence"):
        out["epochs_to_rel_err_0.1"] = _epochs_to_threshold(datas)
        final = np.mean([d.get("convergence", "rel_error")[-1] for d in datas], axis=0)
        out["final_rel_err"] = {str(k): float(v) for k, v in zip(_freqs(first), final)}
    return out


def _freqs(data: RunData) -> list[int]:
    return [int(k) for k in data.arrays["signal/freqs"]]


def _epochs_to_threshold(datas: list[RunData]) -> dict[str, float | None]:
    """Per frequency: the mean over seeds of the first checkpoint epoch with relative error
    below 0.1, or ``None`` when any seed never got there within the budget."""
    per_seed = [
        first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        for d in datas
    ]
    out: dict[str, float | None] = {}
    for q, k in enumerate(_freqs(datas[0])):
        hits = [s[q] for s in per_seed]
        out[str(k)] = None if any(h is None for h in hits) else float(np.mean(hits))
    return out


def _compare(claim: str, summary: dict, a: str, b: str, field: str, relation: str) -> Finding | None:
    """Finding ``summary[a][field] <relation> summary[b][field]``; None if an input is absent."""
    if a not in summary or b not in summary or field not in summary[a]:
        return None
    va, vb = summary[a][field], summary[b][field]
    holds = va < vb if relation == "<" else va > vb
    return Finding(claim, bool(holds), f"{a} {va:.4g} vs {b} {vb:.4g} ({field})")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order; enough for distinct frequencies)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _count_converged(s: dict) -> int:
    return sum(v is not None for v in s.get("epochs_to_rel_err_0.1", {}).values())


@dataclass
class _Part:
    rows: list[tuple]
    arrays: dict[str, np.ndarray]
    figures: dict[str, Any]
    findings: list[Finding | None]


def _reconstruction(exp: str, groups: dict[str, list[RunData]], summary: dict) -> _Part:
    first = next(iter(groups.values()))
    t = first[0].arrays["signal/t"][:, 0]
    seeds = [d.meta["seed"] for d in first]
    targets = [d.arrays["signal/y"][:, 0] for d in first]
    preds = {k: [d.get("prediction", "pred")[-1][:, 0] for d in v] for k, v in groups.items()}
    rows = [
        (
            exp,
            k,
            d.meta["seed"],
            int(d.get("convergence", "epochs")[-1]),
            "grid_mse",
            "",
            _final_loss(d),
        )
        for k, v in groups.items()
        for d in v
        if d.has("convergence")
    ]
    arrays = {f"pred/{k}": np.stack(v) for k, v in preds.items()}
    arrays["target"] = np.stack(targets)
    arrays["t"] = t
    fig = figures.reconstruction(t, targets, preds, seeds[:5])
    finding = _compare(
        "PE L=6 fits the target better than raw [0,1)", summary, "pe6", "raw01", "final_loss", "<"
    )
    return _Part(rows, arrays, {"reconstruction": fig}, [finding])


def _confusion(exp: str, groups: dict[str, list[RunData]], summary: dict) -> _Part:
    rows, arrays, figs = [], {}, {}
    epochs = next(iter(groups.values()))[0].get("confusion", "epochs")
    for c, epoch in enumerate(epochs):
        values: dict[str, dict[str, np.ndarray]] = {}
        for label, datas in groups.items():
            values[label] = {}
            for kind in ("local", "global"):
                pooled = np.concatenate([d.get("confusion", f"{kind}_cos")[c] for d in datas])
                values[label][kind] = pooled
                arrays[f"cos_{kind}/{label}/epoch{epoch}"] = np.stack(
                    [d.get("confusion", f"{kind}_cos")[c] for d in datas]
                )
                for d in datas:
                    cos = d.get("confusion", f"{kind}_cos")[c]
                    seed = d.meta["seed"]
                    for key, value in (
                        ("mean", np.nanmean(cos)),
                        ("abs_mean", np.nanmean(np.abs(cos))),
                        ("std", np.nanstd(cos)),
                        ("frac_abs_gt_0.9", np.nanmean(np.abs(cos) > 0.9)),
                        ("n_zero", d.get("confusion", f"{kind}_n_zero")[c]),
                    ):
                        rows.append((exp, label, seed, int(epoch), f"cos_{kind}", key, float(value)))
        title = f"Gradient confusion after epoch {epoch} (pooled over seeds)"
        figs[f"confusion_epoch{epoch}"] = figures.confusion_kde(values, title)
    findings = [
        _compare(
            "local |cos| is larger for raw [0,1) than PE L=6 (neighbours' gradients (anti)parallel)",
            summary,
            "raw01",
            "pe6",
            "cos_local_abs_mean",
            ">",
        ),
        _compare(
            "local confusion of raw [0,1) sits nearer ±1 than PE L=6 (share of |cos| > 0.9)",
            summary,
            "raw01",
            "pe6",
            "cos_local_frac_abs_gt_0.9",
            ">",
        ),
        _compare(
            "local |cos| is larger for raw [0,1) than PE L=5 (v1)",
            summary,
            "raw01",
            "pe5",
            "cos_local_abs_mean",
            ">",
        ),
    ]
    return _Part(rows, arrays, figs, findings)


def _hamming(exp: str, groups: dict[str, list[RunData]], summary: dict) -> _Part:
    rows, arrays, series = [], {}, {}
    first = next(iter(groups.values()))[0]
    epochs = first.get("hamming", "epochs")
    n_hidden = first.meta["n_hidden"]
    for label, datas in groups.items():
        series[label] = {}
        for kind in ("local", "global"):
            curves = np.stack([d.get("hamming", f"{kind}_mean") for d in datas])
            series[label][kind] = curves
            arrays[f"hamming_{kind}/{label}"] = curves
            arrays[f"hamming_{kind}_layers/{label}"] = np.stack(
                [d.get("hamming", f"{kind}_layer_mean") for d in datas]
            )
            for d in datas:
                layer_means = d.get("hamming", f"{kind}_layer_mean")
                for c, epoch in enumerate(epochs):
                    h = float(d.get("hamming", f"{kind}_mean")[c])
                    base = (exp, label, d.meta["seed"], int(epoch))
                    rows.append((*base, f"hamming_{kind}", "all", h))
                    rows.append((*base, f"hamming_{kind}_ratio", "all", h / n_hidden))
                    rows.extend(
                        (*base, f"hamming_{kind}", f"layer{i + 1}", float(v))
                        for i, v in enumerate(layer_means[c])
                    )
    arrays["hamming_epochs"] = epochs
    fig = figures.mean_std_curves(
        epochs, series, "Hamming distance (units)", "Activation-pattern Hamming distance", n_hidden
    )
    findings = [
        _compare("local Hamming: raw [0,1) < PE L=3", summary, "raw01", "pe3", "hamming_local", "<"),
        _compare("local Hamming: PE L=3 < PE L=6", summary, "pe3", "pe6", "hamming_local", "<"),
        _compare("local Hamming: raw [0,1) < PE L=5 (v1)", summary, "raw01", "pe5", "hamming_local", "<"),
        _compare("global Hamming: raw [0,1) < PE L=6", summary, "raw01", "pe6", "hamming_global", "<"),
    ]
    return _Part(rows, arrays, {"hamming": fig}, findings)


def _convergence(exp: str, groups: dict[str, list[RunData]], summary: dict) -> _Part:
    rows, arrays, rel = [], {}, {}
    first = next(iter(groups.values()))[0]
    epochs, freqs = first.get("convergence", "epochs"), np.asarray(_freqs(first))
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
    findings: list[Finding | None] = []
    if "raw01" in summary:
        final = np.array(list(summary["raw01"]["final_rel_err"].values()))
        rho = _spearman(freqs.astype(float), final)
        findings.append(
            Finding(
                "raw [0,1): the higher the frequency, the larger its final relative error",
                bool(rho > 0 and final[0] < final[-1]),
                f"Spearman rho(k, rel. error) = {rho:.2f}; k={freqs[0]}: {final[0]:.3g}, "
                f"k={freqs[-1]}: {final[-1]:.3g}",
            )
        )
        if "pe6" in summary:
            a, b = _count_converged(summary["pe6"]), _count_converged(summary["raw01"])
            findings.append(
                Finding(
                    "PE L=6 brings more target frequencies below 0.1 relative error than raw [0,1)",
                    a > b,
                    f"pe6 {a} of {len(freqs)} vs raw01 {b} of {len(freqs)}",
                )
            )
    return _Part(rows, arrays, figs, findings)


_PARTS = {
    "reconstruction": _reconstruction,
    "confusion": _confusion,
    "hamming": _hamming,
    "convergence": _convergence,
}


def _loss_rows(exp: str, groups: dict[str, list[RunData]]) -> list[tuple]:
    return [
        (exp, label, d.meta["seed"], e, "train_loss", "", float(v))
        for label, datas in groups.items()
        for d in datas
        for e, v in enumerate(d.get("train", "loss"))
    ]


def _analysis(exp: str, parts: tuple[str, ...]):
    """The analysis of a 1D experiment: the summary every 1D experiment shares plus ``parts``."""

    def analyse(params: Study1D, runs: Runs) -> ExperimentResult:
        everything = _by_input(runs)
        diverged = {
            k: [d.meta for d in v if d.meta["diverged_at"] is not None] for k, v in everything.items()
        }
        groups = {
            k: [d for d in everything[k] if d.meta["diverged_at"] is None]
            for k in params.inputs
            if k in everything
        }
        groups = {k: v for k, v in groups.items() if v}
        inputs = {k: _input_summary(groups[k]) if k in groups else {"seeds": 0} for k in everything}
        for k, metas in diverged.items():
            inputs[k]["diverged"] = [{"seed": m["seed"], "epoch": m["diverged_at"]} for m in metas]
        result = ExperimentResult(rows=_loss_rows(exp, groups), arrays={}, figures={}, summary={})
        for name in parts if groups else ():
            part = _PARTS[name](exp, groups, inputs)
            result.rows.extend(part.rows)
            result.arrays.update(part.arrays)
            result.figures.update(part.figures)
            result.findings.extend(f for f in part.findings if f is not None)
        result.summary = {"inputs": inputs}
        return result

    return analyse


def _runs(params: Study1D, seeds: int) -> list[RunConfig]:
    return params.runs(seeds)


def _study(exp_id: str, title: str, claim: str, parts: tuple[str, ...], params: Study1D) -> Experiment:
    return Experiment(
        id=exp_id,
        title=title,
        claim=claim,
        profiles={"quick": params, "paper": params},
        runs=_runs,
        analyse=_analysis(exp_id, parts),
    )


STUDY_1D_EXPERIMENTS = (
    _study(
        "E1",
        "1D reconstruction",
        "Spectral bias exists: raw coordinates fit only the low-frequency envelope; PE fits the high tones.",
        ("reconstruction",),
        PAPER_1D,
    ),
    _study(
        "E2",
        "1D gradient confusion, local vs global",
        "Dense coordinates give (anti)parallel gradients for neighbours; PE decorrelates them.",
        ("confusion",),
        PAPER_1D,
    ),
    _study(
        "E3",
        "1D Hamming distance over training",
        "With raw coordinates neighbours share activation patterns; with PE they do not.",
        ("hamming",),
        PAPER_1D,
    ),
    _study(
        "X1",
        "1D per-frequency convergence",
        "Low frequencies converge first for raw inputs; PE converges across the band.",
        ("convergence", "reconstruction"),
        PAPER_1D,
    ),
    _study(
        "E3b",
        "1D v1 variant (MLP-2×256, 10 tones, 1000 epochs)",
        "As E2 and E3 in the v1 setting: raw neighbours share patterns and have (anti)parallel gradients.",
        ("hamming", "confusion"),
        V1_1D,
    ),
)
