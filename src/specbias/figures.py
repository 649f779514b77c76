"""Matplotlib figures shared by the experiments (Agg backend, no display needed)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

_RANGE = re.compile(r"raw(-?[\d.e-]+)_(-?[\d.e-]+)")


def input_title(label: str, out_dim: int | None = None) -> str:
    """Human-readable name of an input label (``pe6`` → ``PE L=6``)."""
    dims = f" ({out_dim}-d)" if out_dim else ""
    if label == "raw01":
        return "raw [0,1)"
    if label == "raw11":
        return "raw [-1,1)"
    if m := _RANGE.fullmatch(label):
        return f"raw [{m[1]},{m[2]})"
    if label.startswith("pe"):
        return f"PE L={label[2:]}{dims}"
    if label.startswith("rpe"):
        omega, d = label[3:].split("x")
        return f"restricted PE ω={omega}, d={d}"
    if m := re.fullmatch(r"rff([\d.e-]+)x(\d+)", label):
        return f"RFF σ={m[1]}, d={m[2]}"
    if label.startswith("rff"):
        return f"RFF σ={label[3:]}{dims}"
    if m := re.fullmatch(r"(lin|curve)(\d+)", label):
        return f"{'linear lift' if m[1] == 'lin' else 'smooth curve'}, d={m[2]}"
    return label


def colors(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def gaussian_kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density estimate with Scott's bandwidth ``σ̂ n^{-1/5}``; NaNs dropped."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return np.zeros_like(grid)
    bw = max(float(v.std()) * v.size ** (-0.2), 1e-3)
    density = np.zeros_like(grid, dtype=np.float64)
    for chunk in np.array_split(v, max(1, v.size // 4096)):
        density += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bw) ** 2).sum(axis=1)
    return density / (v.size * bw * np.sqrt(2 * np.pi))


def confusion_kde(values: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """Filled KDEs of the cosine confusion on [-1, 1]: one panel per pair kind, one curve per input."""
    kinds = list(next(iter(values.values())))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 3.8), squeeze=False)
    grid = np.linspace(-1, 1, 401)
    palette = colors(list(values))
    for ax, kind in zip(axes[0], kinds):
        for label, per_kind in values.items():
            dens = gaussian_kde(per_kind[kind], grid)
            ax.fill_between(grid, dens, alpha=0.25, color=palette[label])
            ax.plot(grid, dens, color=palette[label], label=input_title(label))
        ax.set_title(f"{kind} pairs")
        ax.set_xlabel("cos(∇ℓᵢ, ∇ℓⱼ)")
        ax.set_ylabel("density")
        ax.set_xlim(-1, 1)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def mean_std_curves(
    epochs: np.ndarray,
    series: dict[str, dict[str, np.ndarray]],
    ylabel: str,
    title: str,
    ratio_denominator: int | None = None,
    panel_title: str = "{} pairs",
    logy: bool = False,
) -> Figure:
    """Mean ± std bands over seeds; ``series[input][kind]`` is ``(seeds, checkpoints)``, one panel
    per kind."""
    kinds = list(next(iter(series.values())))
    axes = panel_grid(len(kinds), 5.5, 3.8)
    fig = axes[0].figure
    palette = colors(list(series))
    for ax, kind in zip(axes, kinds):
        for label, per_kind in series.items():
            data = per_kind[kind]
            mean, std = data.mean(axis=0), data.std(axis=0)
            ax.plot(epochs, mean, color=palette[label], label=input_title(label))
            ax.fill_between(epochs, mean - std, mean + std, color=palette[label], alpha=0.2)
        ax.set_title(panel_title.format(kind))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        if ratio_denominator:
            sec = ax.secondary_yaxis(
                "right",
                functions=(lambda h: h / ratio_denominator, lambda r: r * ratio_denominator),
            )
            sec.set_ylabel(f"ratio (÷{ratio_denominator} units)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def panel_grid(n: int, width: float, height: float, ncols: int = 3) -> list:
    """``n`` axes on a grid at most ``ncols`` wide (unused cells removed), in reading order."""
    cols = min(n, ncols)
    rows = -(-n // cols)
    _, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return flat[:n]


def reconstruction(
    t: np.ndarray, targets: list[np.ndarray], preds: dict[str, list[np.ndarray]], seeds: list[int]
) -> Figure:
    """One wide panel per seed: the target and each input's prediction after training."""
    fig, axes = plt.subplots(len(seeds), 1, figsize=(12, 2.4 * len(seeds)), squeeze=False)
    palette = colors(list(preds))
    for row, seed in enumerate(seeds):
        ax = axes[row][0]
        ax.plot(t, targets[row], color="black", lw=1.6, label="target")
        for label, per_seed in preds.items():
            ax.plot(t, per_seed[row], color=palette[label], lw=1.0, label=input_title(label))
        ax.set_ylabel(f"seed {seed}")
        ax.set_xlim(t.min(), t.max())
    axes[0][0].legend(ncol=len(preds) + 1, fontsize=8, loc="upper right")
    axes[-1][0].set_xlabel("t")
    fig.suptitle("Reconstruction after training")
    fig.tight_layout()
    return fig


def convergence_curves(
    epochs: np.ndarray, freqs: np.ndarray, rel: dict[str, np.ndarray], threshold: float
) -> Figure:
    """Relative residual ``|R(k)|/|Y(k)|`` per target frequency over training: geometric mean over
    seeds with a ×/÷ geometric-std band (the axis is logarithmic). ``rel[input]`` is
    ``(seeds, checkpoints, K)``."""
    n = len(rel)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, (label, data) in zip(axes[0], rel.items()):
        for q, k in enumerate(freqs):
            c = cmap(q / max(1, len(freqs) - 1))
            logs = np.log(np.maximum(data[:, :, q], 1e-12))
            mean, std = np.exp(logs.mean(axis=0)), np.exp(logs.std(axis=0))
            ax.plot(epochs, mean, color=c, lw=1.2, label=f"k={k}")
            ax.fill_between(epochs, mean / std, mean * std, color=c, alpha=0.12, lw=0)
        ax.axhline(threshold, color="red", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(input_title(label))
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("relative error |R(k)| / |Y(k)|")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="lower left")
    fig.suptitle("Per-frequency convergence (low k: purple, high k: yellow)")
    fig.tight_layout()
    return fig


def convergence_heatmap(
    epochs: np.ndarray,
    freqs: np.ndarray,
    rel: dict[str, np.ndarray],
    ylabel: str = "target frequency k",
    title: str = "Per-frequency relative error over training (mean over seeds)",
) -> Figure:
    """Frequency × epoch heatmap of the seed-mean relative error, one panel per input."""
    n = len(rel)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True, layout="constrained")
    image = None
    for ax, (label, data) in zip(axes[0], rel.items()):
        image = ax.imshow(
            data.mean(axis=0).T,
            aspect="auto",
            origin="lower",
            cmap="magma_r",
            vmin=0,
            vmax=1,
            extent=(epochs[0], epochs[-1], -0.5, len(freqs) - 0.5),
            interpolation="nearest",
        )
        ax.set_yticks(range(len(freqs)), [str(k) for k in freqs], fontsize=7)
        ax.set_title(input_title(label))
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(ylabel)
    fig.colorbar(image, ax=axes[0].tolist(), label="relative error", shrink=0.9)
    fig.suptitle(title)
    return fig


def region_maps(maps: dict[str, tuple[np.ndarray, np.ndarray]], title: str, unit_ids: list[int]) -> Figure:
    """Rows: inputs. Columns: the region map (each activation pattern a random colour) and the
    on/off maps of a few layer-1 units. ``maps[input] = (ids (H, W), units (U, H, W))``."""
    n_units = max(u.shape[0] for _, u in maps.values())
    fig, axes = plt.subplots(
        len(maps), 1 + n_units, figsize=(2.6 * (1 + n_units), 2.6 * len(maps)), squeeze=False
    )
    for row, (label, (ids, units)) in enumerate(maps.items()):
        palette = np.random.default_rng(0).random((int(ids.max()) + 1, 3))
        axes[row][0].imshow(palette[ids], interpolation="nearest")
        axes[row][0].set_title(f"{input_title(label)}: {int(ids.max()) + 1} regions", fontsize=8)
        for u in range(n_units):
            ax = axes[row][1 + u]
            if u < units.shape[0]:
                ax.imshow(units[u], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(f"layer-1 unit {unit_ids[u]}: on (white) / off", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def matrices(
    mats: dict[str, np.ndarray], title: str, vmin: float = -1, vmax: float = 1, cmap: str = "RdBu_r"
) -> Figure:
    """Side-by-side heatmaps (NaN cells, e.g. masked cross-layer blocks, in light grey)."""
    fig, axes = plt.subplots(
        1, len(mats), figsize=(4.2 * len(mats), 4.0), squeeze=False, layout="constrained"
    )
    cm = plt.get_cmap(cmap).with_extremes(bad="0.9")
    image = None
    for ax, (name, mat) in zip(axes[0], mats.items()):
        image = ax.imshow(np.ma.masked_invalid(mat), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes.ravel()[: len(mats)].tolist(), shrink=0.8)
    fig.suptitle(title)
    return fig


def bars(values: dict[str, dict[str, np.ndarray]], ylabel: str, title: str) -> Figure:
    """Grouped bars, mean ± std over seeds: ``values[input][series]`` is ``(seeds,)``."""
    labels = list(values)
    series = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(labels), 3.8))
    width = 0.8 / len(series)
    for s, name in enumerate(series):
        means = [np.mean(values[k][name]) for k in labels]
        stds = [np.std(values[k][name]) for k in labels]
        ax.bar(np.arange(len(labels)) + s * width, means, width, yerr=stds, label=name, capsize=3)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, [input_title(k) for k in labels], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)


def trained_for(epoch: int) -> str:
    """A checkpoint label (0-based epoch, measured after its update) in words: "after 25 epochs"."""
    return f"after {epoch + 1} epoch{'s' if epoch else ''}"
