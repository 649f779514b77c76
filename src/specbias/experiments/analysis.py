"""Analysis building blocks shared by every experiment: grouping, summaries, parts, findings.

An experiment's analysis is a list of *parts* (``hamming``, ``confusion``, ``regions``, …). Each
part turns the finished runs, grouped by input label, into tidy metric rows, arrays, figures and
findings. :func:`make_analysis` assembles them with the per-input headline summary and the
bookkeeping of diverged runs, so no experiment repeats that logic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from specbias import figures
from specbias.experiments.base import ExperimentResult, Finding
from specbias.metrics.spectrum import first_epoch_below
from specbias.runs import RunConfig, RunData

Runs = Sequence[tuple[RunConfig, RunData]]
Groups = dict[str, list[RunData]]
REL_ERR_THRESHOLD = 0.1


_T = TypeVar("_T")


@dataclass
class Part:
    """What one analysis part contributes to an experiment's output."""

    rows: list[tuple] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding | None] = field(default_factory=list)


PartFn = Callable[[str, Groups, dict], Part]


def group_label(cfg: RunConfig) -> str:
    """The default group of a run: its input label."""
    return cfg.input


def by_group(runs: Runs, key: Callable[[RunConfig], str] = group_label) -> Groups:
    """Runs grouped by ``key`` (first-seen order), each group sorted by seed."""
    groups: dict[str, list[tuple[int, RunData]]] = {}
    for cfg, data in runs:
        groups.setdefault(key(cfg), []).append((cfg.seed, data))
    return {k: [d for _, d in sorted(v, key=lambda p: p[0])] for k, v in groups.items()}


def compare(claim: str, summary: dict, a: str, b: str, fld: str, relation: str) -> Finding | None:
    """Finding ``summary[a][fld] <relation> summary[b][fld]``; None when a value is missing."""
    va, vb = summary.get(a, {}).get(fld), summary.get(b, {}).get(fld)
    if va is None or vb is None:
        return None
    holds = va < vb if relation == "<" else va > vb
    return Finding(claim, bool(holds), f"{a} {va:.4g} vs {b} {vb:.4g} ({fld})")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


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


def _last_mean(datas: list[RunData], probe: str, key: str) -> float:
    return float(np.mean([d.get(probe, key)[-1] for d in datas]))


def _first_mean(datas: list[RunData], probe: str, key: str) -> float:
    return float(np.mean([d.get(probe, key)[0] for d in datas]))


def _add_spread(out: dict[str, Any], datas: list[RunData]) -> None:
    """``<key>_std`` over seeds for every scalar headline that comes from one probe record."""
    sources = {
        "hamming_local": ("hamming", "local_mean", -1),
        "hamming_global": ("hamming", "global_mean", -1),
        "regions_first": ("regions", "all", 0),
        "regions_last": ("regions", "all", -1),
        "dead_first": ("dead", "total", 0),
        "dead_last": ("dead", "total", -1),
        "norm_product_last": ("norms", "product", -1),
        "boundary_input_mean_last": ("boundary", "input_mean", -1),
        "psnr_last": ("bands", "psnr", -1),
        "train_psnr": ("heldout", "train_psnr", -1),
        "test_psnr": ("heldout", "test_psnr", -1),
    }
    for key, (probe, record, index) in sources.items():
        if key in out:
            out[f"{key}_std"] = float(np.std([d.get(probe, record)[index] for d in datas]))
    out["final_loss_std"] = float(np.std([final_loss(d) for d in datas]))
    if "cos_local_abs_mean" in out:
        for kind in ("local", "global"):
            per_seed = [np.nanmean(np.abs(d.get("confusion", f"{kind}_cos")[-1])) for d in datas]
            out[f"cos_{kind}_abs_mean_std"] = float(np.std(per_seed))


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


def input_summary(datas: list[RunData]) -> dict[str, Any]:
    """Headline numbers of one input, means over seeds, for every probe the runs carry."""
    first = datas[0]
    n_hidden = first.meta["n_hidden"]
    out: dict[str, Any] = {
        "final_loss": float(np.mean([final_loss(d) for d in datas])),
        "n_params": first.meta["n_params"],
        "in_dim": first.meta["in_dim"],
        "aliased_features": first.meta["aliased_features"],
        "seeds": len(datas),
    }
    has = {p for p in ("hamming", "confusion", "convergence", "regions", "dead", "norms", "boundary",
                       "bands", "heldout", "hamming_random") if first.has(p)}  # fmt: skip
    if "hamming" in has:
        for kind in ("local", "global"):
            h = _last_mean(datas, "hamming", f"{kind}_mean")
            out[f"hamming_{kind}"], out[f"hamming_{kind}_ratio"] = h, h / n_hidden
    if "confusion" in has:
        for kind in ("local", "global"):
            cos = [d.get("confusion", f"{kind}_cos")[-1] for d in datas]
            out[f"cos_{kind}_mean"] = float(np.mean([np.nanmean(c) for c in cos]))
            out[f"cos_{kind}_abs_mean"] = float(np.mean([np.nanmean(np.abs(c)) for c in cos]))
            out[f"cos_{kind}_frac_abs_gt_0.9"] = float(np.mean([np.nanmean(np.abs(c) > 0.9) for c in cos]))
            out[f"cos_{kind}_n_zero"] = int(sum(d.get("confusion", f"{kind}_n_zero")[-1] for d in datas))
    if "convergence" in has:
        out["epochs_to_rel_err_0.1"] = epochs_to_threshold(datas)
        final = np.mean([d.get("convergence", "rel_error")[-1] for d in datas], axis=0)
        out["final_rel_err"] = {str(int(k)): float(v) for k, v in zip(first.arrays["signal/freqs"], final)}
    if "regions" in has:
        out["regions_first"] = _first_mean(datas, "regions", "all")
        out["regions_last"] = _last_mean(datas, "regions", "all")
        out["regions_saturated_last"] = bool(all(d.get("regions", "saturated")[-1] for d in datas))
        out["n_points"] = first.meta["n_points"]
    if "dead" in has:
        out["dead_first"] = _first_mean(datas, "dead", "total")
        out["dead_last"] = _last_mean(datas, "dead", "total")
    if "norms" in has:
        out["norm_product_first"] = _first_mean(datas, "norms", "product")
        out["norm_product_last"] = _last_mean(datas, "norms", "product")
    if "boundary" in has:
        for key in ("feature_mean", "input_mean"):
            out[f"boundary_{key}_first"] = _first_mean(datas, "boundary", key)
            out[f"boundary_{key}_last"] = _last_mean(datas, "boundary", key)
    if "bands" in has:
        out["psnr_last"] = _last_mean(datas, "bands", "psnr")
        out["band_rel_energy_last"] = np.mean(
            [d.get("bands", "rel_energy")[-1] for d in datas], axis=0
        ).tolist()
    if "heldout" in has:
        out["train_psnr"] = _last_mean(datas, "heldout", "train_psnr")
        out["test_psnr"] = _last_mean(datas, "heldout", "test_psnr")
    _add_spread(out, datas)
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
                        ("frac_abs_gt_0.9", np.nanmean(np.abs(cos) > 0.9)),
                        ("n_zero", d.get("confusion", f"{kind}_n_zero")[c]),
                    ):
                        part.rows.append(
                            (exp, label, d.meta["seed"], int(epoch), f"cos_{kind}", key, float(value))
                        )
        title = f"Gradient confusion {figures.trained_for(int(epoch))} (pooled over seeds)"
        part.figures[f"confusion_epoch{epoch}"] = figures.confusion_kde(values, title)
    raw, pes = raw_and_encoded(list(groups))
    if raw and pes:
        top = pes[-1]
        part.findings += [
            compare(f"local |cos| is larger for {raw} than {top} (neighbours' gradients (anti)parallel)",
                    summary, raw, top, "cos_local_abs_mean", ">"),
            compare(f"local confusion of {raw} sits nearer ±1 than {top} (share of |cos| > 0.9)",
                    summary, raw, top, "cos_local_frac_abs_gt_0.9", ">"),
        ]  # fmt: skip
    return part


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
        part.findings.append(
            compare(f"local Hamming: {raw} < {pes[0]}", summary, raw, pes[0], "hamming_local", "<")
        )
        part.findings += [
            compare(f"local Hamming: {a} < {b}", summary, a, b, "hamming_local", "<")
            for a, b in itertools.pairwise(pes)
        ]
        part.findings.append(
            compare(f"global Hamming: {raw} < {pes[-1]}", summary, raw, pes[-1], "hamming_global", "<")
        )
    return part


def make_analysis(
    exp: str,
    parts: Sequence[str],
    table: dict[str, PartFn],
    key: Callable[[RunConfig], str] = group_label,
    order: Callable[[Any], Sequence[str]] | None = None,
) -> Callable[[Any, Runs], ExperimentResult]:
    """An experiment's analysis: per-group summaries, diverged runs, then each part in turn."""

    def analyse(params: Any, runs: Runs) -> ExperimentResult:
        everything = by_group(runs, key)
        labels = list(order(params)) if order else list(everything)
        groups = {
            k: [d for d in everything[k] if d.meta["diverged_at"] is None] for k in labels if k in everything
        }
        groups = {k: v for k, v in groups.items() if v}
        inputs = {k: input_summary(groups[k]) if k in groups else {"seeds": 0} for k in everything}
        for k, datas in everything.items():
            diverged = [{"seed": d.meta["seed"], "epoch": d.meta["diverged_at"]} for d in datas
                        if d.meta["diverged_at"] is not None]  # fmt: skip
            if diverged:
                inputs[k]["diverged"] = diverged
        result = ExperimentResult(rows=loss_rows(exp, groups), arrays={}, figures={}, summary={})
        for name in parts if groups else ():
            part = table[name](exp, groups, inputs)
            result.rows.extend(part.rows)
            result.arrays.update(part.arrays)
            result.figures.update(part.figures)
            result.findings.extend(f for f in part.findings if f is not None)
        result.summary = {"inputs": inputs}
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
