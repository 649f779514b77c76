"""The analysis every experiment shares: from finished runs to a result with claims to judge.

:func:`start` groups the runs (diverged ones dropped and recorded) and builds the per-seed table of
every headline quantity; *parts* (``hamming``, ``confusion``, …) add rows, arrays, figures, their own
per-seed values and claims; :func:`make_analysis` chains them. The pipeline is drawn in
``docs/architecture.md``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from specbias import figures
from specbias.claims import Claim, Compare, Level, SeedTable, rank_corr
from specbias.experiments.base import ExperimentResult
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import RunConfig, RunData
from specbias.thresholds import threshold

Runs = Sequence[tuple[RunConfig, RunData]]
Groups = dict[Hashable, list[RunData]]
REL_ERR_THRESHOLD = threshold("rel_err").value
NEAR_ONE = threshold("near_one").value


_T = TypeVar("_T")


@dataclass
class Part:
    """What one analysis part contributes to an experiment's output."""

    rows: list[tuple] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim | None] = field(default_factory=list)
    table: SeedTable = field(default_factory=SeedTable)
    summary: dict[str, Any] = field(default_factory=dict)


PartFn = Callable[[str, Groups, dict], Part]


def group_label(cfg: RunConfig) -> str:
    """The default group of a run: its input label."""
    return cfg.input


def by_group(runs: Runs, key: Callable[[RunConfig], Hashable] = group_label) -> Groups:
    """Runs grouped by ``key`` (first-seen order), each group sorted by seed."""
    groups: dict[str, list[tuple[int, RunData]]] = {}
    for cfg, data in runs:
        groups.setdefault(key(cfg), []).append((cfg.seed, data))
    return {k: [d for _, d in sorted(v, key=lambda p: p[0])] for k, v in groups.items()}


def encoding_rank(label: str) -> tuple[int, float]:
    """Sort key: raw inputs first (by range width), then PE by L, then RFF by σ, then others."""
    if m := re.fullmatch(r"raw(-?[\d.e-]+)_(-?[\d.e-]+)", label):
        return (0, float(m[2]) - float(m[1]))
    if label in ("raw01", "raw11"):
        return (0, 1.0 if label == "raw01" else 2.0)
    if m := re.fullmatch(r"pe(\d+)", label):
        return (1, float(m[1]))
    if m := re.fullmatch(r"rff([\d.e-]+)", label):
        return (2, float(m[1]))
    return (3, 0.0)


def raw_and_encoded(labels: Sequence[str]) -> tuple[str | None, list[str]]:
    """The reference raw input (``raw01`` if present) and the PE inputs ordered by L."""
    raws = [lb for lb in labels if encoding_rank(lb)[0] == 0]
    raw = "raw01" if "raw01" in raws else (raws[0] if raws else None)
    pes = sorted((lb for lb in labels if encoding_rank(lb)[0] == 1), key=encoding_rank)
    return raw, pes


def final_loss(data: RunData) -> float:
    """The grid MSE after the last update when measured, else the last epoch's training loss."""
    for probe in ("convergence",):
        if data.has(probe) and data.get(probe, "epochs").size:
            return float(data.get(probe, "mse")[-1])
    return float(data.get("train", "loss")[-1])


def _at(probe: str, key: str, index: int) -> Callable[[RunData], float]:
    return lambda d: float(d.get(probe, key)[index])


def _cos_stat(kind: str, record: str, stat: Callable[[np.ndarray], float]) -> Callable[[RunData], float]:
    return lambda d: float(stat(d.get("confusion", f"{kind}_{record}")[-1]))


def _hamming_ratio(kind: str) -> Callable[[RunData], float]:
    return lambda d: float(d.get("hamming", f"{kind}_mean")[-1]) / d.meta["n_hidden"]


_COS_STATS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda c: np.nanmean(c),
    "abs_mean": lambda c: np.nanmean(np.abs(c)),
    "frac_abs_gt_0.9": lambda c: np.nanmean(np.abs(c) > NEAR_ONE),
}


def n_converged(d: RunData) -> float:
    """Target tones whose relative error fell below ``rel_err`` at some checkpoint."""
    rel = d.get("convergence", "rel_error")
    return float(np.sum((rel < REL_ERR_THRESHOLD).any(axis=0)))


def rho_freq_rel_err(d: RunData) -> float:
    """Spearman's ρ between the tone frequency and its final relative error (spectral bias: > 0)."""
    return rank_corr(d.arrays["signal/freqs"].astype(float), d.get("convergence", "rel_error")[-1])


def _seed_measures() -> dict[str, tuple[str, Callable[[RunData], float]]]:
    """Per-run scalar headlines: ``quantity -> (array the run must have, measure)``."""
    out: dict[str, tuple[str, Callable[[RunData], float]]] = {"final_loss": ("train/loss", final_loss)}
    for kind in ("local", "global"):
        out[f"hamming_{kind}"] = ("hamming/epochs", _at("hamming", f"{kind}_mean", -1))
        out[f"hamming_{kind}_ratio"] = ("hamming/epochs", _hamming_ratio(kind))
        for name, stat in _COS_STATS.items():
            out[f"cos_{kind}_{name}"] = ("confusion/epochs", _cos_stat(kind, "cos", stat))
            out[f"jac_{kind}_{name}"] = (f"confusion/{kind}_jac_cos", _cos_stat(kind, "jac_cos", stat))
    for name, (probe, key) in {
        "regions": ("regions", "all"),
        "dead": ("dead", "total"),
        "norm_product": ("norms", "product"),
        "boundary_feature_mean": ("boundary", "feature_mean"),
        "boundary_input_mean": ("boundary", "input_mean"),
    }.items():
        out[f"{name}_first"] = (f"{probe}/epochs", _at(probe, key, 0))
        out[f"{name}_last"] = (f"{probe}/epochs", _at(probe, key, -1))
    out["regions_share_last"] = ("regions/epochs", lambda d: d.get("regions", "all")[-1] / d.meta["n_points"])
    out["n_converged"] = ("convergence/epochs", n_converged)
    out["rho_freq_rel_err"] = ("convergence/epochs", rho_freq_rel_err)
    out["psnr_last"] = ("bands/epochs", _at("bands", "psnr", -1))
    out["train_psnr"] = ("heldout/epochs", _at("heldout", "train_psnr", -1))
    out["test_psnr"] = ("heldout/epochs", _at("heldout", "test_psnr", -1))
    return out


SEED_MEASURES = _seed_measures()
"""Every scalar headline a run can carry, measured per seed (the unit of replication)."""


def seed_table(groups: Groups) -> SeedTable:
    """Each group's per-seed headline values, for the measures its runs carry."""
    table = SeedTable()
    for label, datas in groups.items():
        for quantity, (needs, measure) in SEED_MEASURES.items():
            if needs in datas[0].arrays:
                table.put(label, quantity, {d.meta["seed"]: measure(d) for d in datas})
    return table


def epochs_to_threshold(datas: list[RunData]) -> dict[str, float | None]:
    """Per target frequency: the mean over seeds of the first checkpoint epoch whose relative
    error is below 0.1, or ``None`` when any seed never got there within the budget.

    The epoch is the spec's 0-based checkpoint label (§1.9): label ``e`` is measured after epoch
    ``e``'s update, i.e. after ``e + 1`` epochs of training (so ``(e + 1)·⌈N/B⌉`` optimiser steps)."""
    per_seed = [
        first_epoch_below(
            d.get("convergence", "epochs"), d.get("convergence", "rel_error"), REL_ERR_THRESHOLD
        )
        for d in datas
    ]
    freqs = [int(k) for k in datas[0].arrays["signal/freqs"]]
    out: dict[str, float | None] = {}
    for q, k in enumerate(freqs):
        hits = [s[q] for s in per_seed]
        out[str(k)] = None if any(h is None for h in hits) else float(np.mean(hits))
    return out


def input_summary(datas: list[RunData], table: SeedTable, label: Any) -> dict[str, Any]:
    """Headline numbers of one input: mean and std over seeds of every per-seed value in ``table``,
    and the per-frequency and per-band profiles."""
    first = datas[0]
    out: dict[str, Any] = {
        "n_params": first.meta["n_params"],
        "in_dim": first.meta["in_dim"],
        "aliased_features": first.meta["aliased_features"],
        "seeds": len(datas),
    }
    for quantity in SEED_MEASURES:
        if values := table.get(label, quantity):
            v = np.fromiter(values.values(), dtype=np.float64)
            out[quantity], out[f"{quantity}_std"] = float(v.mean()), float(v.std())
    if first.has("confusion"):
        for kind in ("local", "global"):
            out[f"cos_{kind}_n_zero"] = int(sum(d.get("confusion", f"{kind}_n_zero")[-1] for d in datas))
    if first.has("convergence"):
        out["epochs_to_rel_err_0.1"] = epochs_to_threshold(datas)
        final = np.mean([d.get("convergence", "rel_error")[-1] for d in datas], axis=0)
        out["final_rel_err"] = {str(int(k)): float(v) for k, v in zip(first.arrays["signal/freqs"], final)}
    if first.has("regions"):
        out["regions_saturated_last"] = bool(all(d.get("regions", "saturated")[-1] for d in datas))
        out["n_points"] = first.meta["n_points"]
    if first.has("bands"):
        out["band_rel_energy_last"] = np.mean(
            [d.get("bands", "rel_energy")[-1] for d in datas], axis=0
        ).tolist()
    return out


def loss_rows(exp: str, groups: Groups) -> list[tuple]:
    return [
        (exp, label, d.meta["seed"], e, "train_loss", "", float(v))
        for label, datas in groups.items()
        for d in datas
        for e, v in enumerate(d.get("train", "loss"))
    ]


def scalar_curve_rows(exp: str, groups: Groups, probe: str, keys: Sequence[str], metric: str) -> list[tuple]:
    """Rows ``(exp, input, seed, epoch, metric, key, value)`` for scalar probe records."""
    rows = []
    for label, datas in groups.items():
        for d in datas:
            epochs = d.get(probe, "epochs")
            for key in keys:
                values = d.get(probe, key)
                rows.extend(
                    (exp, label, d.meta["seed"], int(e), metric, key, float(v))
                    for e, v in zip(epochs, values)
                )
    return rows


def confusion_part(exp: str, groups: Groups, summary: dict) -> Part:
    """Cosine confusion per pair at each confusion checkpoint: KDEs, stats rows, findings."""
    part = Part()
    epochs = next(iter(groups.values()))[0].get("confusion", "epochs")
    for c, epoch in enumerate(epochs):
        values: dict[str, dict[str, np.ndarray]] = {}
        for label, datas in groups.items():
            values[label] = {}
            for kind in ("local", "global"):
                per_seed = [d.get("confusion", f"{kind}_cos")[c] for d in datas]
                values[label][kind] = np.concatenate(per_seed)
                part.arrays[f"cos_{kind}/{label}/epoch{epoch}"] = np.stack(per_seed)
                for d, cos in zip(datas, per_seed):
                    for key, value in (
                        ("mean", np.nanmean(cos)),
                        ("abs_mean", np.nanmean(np.abs(cos))),
                        ("std", np.nanstd(cos)),
                        ("frac_abs_gt_0.9", _COS_STATS["frac_abs_gt_0.9"](cos)),
                        ("n_zero", d.get("confusion", f"{kind}_n_zero")[c]),
                    ):
                        part.rows.append(
                            (exp, label, d.meta["seed"], int(epoch), f"cos_{kind}", key, float(value))
                        )
        title = f"Gradient confusion {figures.trained_for(int(epoch))} (pooled over seeds)"
        part.figures[f"confusion_epoch{epoch}"] = figures.confusion_kde(values, title)
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        part.claims += confusion_claims(raw, pes[-1], "cos", "loss gradients")
        if "confusion/local_jac_cos" in next(iter(groups.values()))[0].arrays:
            part.claims += confusion_claims(raw, pes[-1], "jac", "output Jacobians")
    return part


def confusion_claims(raw: str, top: str, measure: str, name: str) -> list[Claim]:
    """The paper's local-confusion claims on one measure (``cos``: loss gradients, ``jac``: output
    Jacobians): raw neighbours are more (anti)parallel than the top encoding's, and they sit at ±1
    (most pairs above |cos| 0.9, the shape of the paper's KDEs)."""
    return [
        Compare(text=f"local |cos| of {name} is larger for {raw} than {top} (neighbours (anti)parallel)",
                reads=f"{measure}_local_abs_mean", a=raw, b=top, relation=">"),
        Level(text=f"local {name} of {raw} sit at ±1 (most pairs |cos| > 0.9)",
              reads=f"{measure}_local_frac_abs_gt_0.9", group=raw, threshold="concentrated"),
    ]  # fmt: skip


def hamming_part(exp: str, groups: Groups, summary: dict, probe: str = "hamming") -> Part:
    """Mean Hamming distance of each pair kind over training (mean ± std over seeds)."""
    part = Part()
    first = next(iter(groups.values()))[0]
    epochs = first.get(probe, "epochs")
    prefix = f"{probe}/"
    kinds = [
        k[len(prefix) : -len("_mean")]
        for k in first.arrays
        if k.startswith(prefix) and k.endswith("_mean") and not k.endswith("_layer_mean")
    ]
    n_hidden = first.meta["n_hidden"]
    series: dict[str, dict[str, np.ndarray]] = {}
    for label, datas in groups.items():
        series[label] = {}
        for kind in kinds:
            curves = np.stack([d.get(probe, f"{kind}_mean") for d in datas])
            layers = np.stack([d.get(probe, f"{kind}_layer_mean") for d in datas])
            series[label][kind] = curves
            part.arrays[f"{probe}_{kind}/{label}"] = curves
            part.arrays[f"{probe}_{kind}_layers/{label}"] = layers
            for s, d in enumerate(datas):
                for c, epoch in enumerate(epochs):
                    base = (exp, label, d.meta["seed"], int(epoch))
                    h = float(curves[s, c])
                    part.rows.append((*base, f"hamming_{kind}", "all", h))
                    part.rows.append((*base, f"hamming_{kind}_ratio", "all", h / n_hidden))
                    part.rows.extend(
                        (*base, f"hamming_{kind}", f"layer{i + 1}", float(v))
                        for i, v in enumerate(layers[s, c])
                    )
    part.arrays[f"{probe}_epochs"] = epochs
    part.figures[probe] = figures.mean_std_curves(
        epochs, series, "Hamming distance (units)", "Activation-pattern Hamming distance", n_hidden
    )
    raw, pes = raw_and_encoded(list(groups))
    if probe == "hamming" and raw and pes:
        part.claims += [
            Compare(text=f"local Hamming: {a} < {b}", reads="hamming_local", a=a, b=b, relation="<")
            for a, b in itertools.pairwise([raw, *pes])
        ]
        part.claims.append(
            Compare(text=f"global Hamming: {raw} < {pes[-1]}", reads="hamming_global", a=raw, b=pes[-1],
                    relation="<")
        )  # fmt: skip
    return part


def start(
    exp: str,
    runs: Runs,
    key: Callable[[RunConfig], Hashable] = group_label,
    labels: Sequence[Hashable] | None = None,
) -> tuple[Groups, ExperimentResult]:
    """The finished runs per group (in ``labels`` order; diverged runs dropped) and the result every
    analysis starts from: loss rows, the per-group summary (``summary["inputs"]``, diverged runs
    recorded) and the per-seed table (groups whose runs all diverged marked not measurable)."""
    everything = by_group(runs, key)
    order = list(everything) if labels is None else [k for k in labels if k in everything]
    groups = {k: [d for d in everything[k] if d.meta["diverged_at"] is None] for k in order}
    groups = {k: v for k, v in groups.items() if v}
    values = seed_table(groups)
    inputs = {k: input_summary(groups[k], values, k) if k in groups else {"seeds": 0} for k in everything}
    for k, datas in everything.items():
        diverged = [{"seed": d.meta["seed"], "epoch": d.meta["diverged_at"]} for d in datas
                    if d.meta["diverged_at"] is not None]  # fmt: skip
        if diverged:
            inputs[k]["diverged"] = diverged
        if k not in groups:
            values.mark(k, f"every run diverged ({len(diverged)} seeds)")
    result = ExperimentResult(
        rows=loss_rows(exp, groups), arrays={}, figures={}, summary={"inputs": inputs}, table=values
    )
    return groups, result


def add_part(result: ExperimentResult, part: Part) -> list[Claim | None]:
    """Merge a part's rows, arrays, figures, per-seed values and summary into ``result``; its claims."""
    result.rows.extend(part.rows)
    result.arrays.update(part.arrays)
    result.figures.update(part.figures)
    result.table.update(part.table)
    result.summary.update(part.summary)
    return list(part.claims)


def make_analysis(
    exp: str,
    parts: Sequence[str],
    table: dict[str, PartFn],
    key: Callable[[RunConfig], Hashable] = group_label,
    order: Callable[[Any], Sequence[Hashable]] | None = None,
) -> Callable[[Any, Runs], ExperimentResult]:
    """An experiment's analysis: :func:`start`, then each part in turn, then its claims judged on the
    per-seed table (complete once every part has added its values)."""

    def analyse(params: Any, runs: Runs) -> ExperimentResult:
        groups, result = start(exp, runs, key, order(params) if order else None)
        claims = [
            c
            for name in (parts if groups else ())
            for c in add_part(result, table[name](exp, groups, result.summary["inputs"]))
        ]
        result.judge(claims)
        return result

    return analyse


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch and the BLAS on one thread while the geometry is computed: it is many small matrix products,
    which a second thread does not speed up, and on a busy machine spinning BLAS threads made the X4
    analysis 2-3× slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def progress(items: Sequence[_T], desc: str) -> Iterator[_T]:
    """Iterate over ``items`` with a terminal progress bar (hidden when stderr is not a terminal):
    analyses that take minutes at the paper scale -- LPs, exact regions, kernels -- say how far they are."""
    yield from tqdm(items, desc=desc, leave=False, disable=None)
