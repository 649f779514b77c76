"""Probes: measurements a run takes at checkpoints, each a small object with fixed data.

A probe owns its evaluation inputs (the encoded training grid, in sample order) and any pairs it
needs, so measuring never touches the training loop's state. Each implements the
:class:`~specbias.training.Probe` protocol and returns arrays of the same shape at every
checkpoint; the trainer stacks them along a leading checkpoint axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specbias._checks import check_int
from specbias.metrics.geometry import (
    boundary_distance_feature,
    boundary_distance_input,
    hyperplane_cosines,
    hyperplane_stats,
    norm_product,
    spectral_norms,
)
from specbias.metrics.gradients import cosine_from_products, loss_gradient_pairs, output_jacobian_cosine
from specbias.metrics.ntk import NTKSpectrum, alignment_curve, empirical_ntk, ntk_spectrum
from specbias.metrics.pairs import Pairs
from specbias.metrics.patterns import (
    activation_patterns,
    count_regions,
    dead_units,
    hamming,
    region_counts,
    region_ids,
)
from specbias.metrics.spectrum import frequency_convergence, psnr, radial_band_error, radial_bands
from specbias.models import MLP
from specbias.training import Schedule


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


@dataclass
class PredictionProbe:
    """The network's output on the grid (``pred``, shape ``(N, C)``)."""

    x: torch.Tensor
    schedule: Schedule
    name: str = "prediction"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        return {"pred": _numpy(model(self.x))}


@dataclass
class ConvergenceProbe:
    """Per-frequency convergence (:mod:`specbias.metrics.spectrum`) and the grid MSE."""

    x: torch.Tensor
    y: np.ndarray
    freqs: tuple[int, ...]
    schedule: Schedule
    name: str = "convergence"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        pred = _numpy(model(self.x))
        out = frequency_convergence(pred, self.y, self.freqs).as_dict()
        out["mse"] = np.asarray(np.mean((pred - self.y) ** 2))
        return out


@dataclass
class HammingProbe:
    """Mean and std of the Hamming distance of each pair set, total and per layer."""

    x: torch.Tensor
    pairs: dict[str, Pairs]
    schedule: Schedule
    name: str = "hamming"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        patterns = activation_patterns(model, self.x)
        out = {}
        for kind, p in self.pairs.items():
            per_layer = hamming(patterns, p.i, p.j)
            total = per_layer.sum(axis=0)
            out[f"{kind}_mean"] = np.asarray(total.mean())
            out[f"{kind}_std"] = np.asarray(total.std())
            out[f"{kind}_layer_mean"] = per_layer.mean(axis=1)
        return out


@dataclass
class ConfusionProbe:
    """Gradient confusion (cosine and raw inner product) of each pair set, per pair, for the
    training loss ``loss`` ("mse" on targets, "ce" on class labels).

    Records ``{kind}_cos``, ``{kind}_inner`` and ``{kind}_n_zero``; with ``output_jacobian`` also
    ``{kind}_jac_cos``, the residual-free part: the cosine of the two points' output Jacobians,
    ``tr(J_i J_jᵀ)/(‖J_i‖_F ‖J_j‖_F)`` (:func:`~specbias.metrics.gradients.output_jacobian_pairs`).
    """

    x: torch.Tensor
    y: torch.Tensor
    pairs: dict[str, Pairs]
    schedule: Schedule
    zero: str = "nan"
    name: str = "confusion"
    before_update: bool = False
    loss: str = "mse"
    output_jacobian: bool = False

    def measure(self, model: nn.Module) -> dict[str, np.ndarray]:
        out = {}
        for kind, p in self.pairs.items():
            products = loss_gradient_pairs(model, self.x, self.y, p, loss=self.loss)
            confusion = cosine_from_products(products, self.zero)
            out[f"{kind}_cos"] = confusion.values
            out[f"{kind}_inner"] = products.inner
            out[f"{kind}_n_zero"] = np.asarray(confusion.n_zero)
            if self.output_jacobian:
                out[f"{kind}_jac_cos"] = output_jacobian_cosine(model, self.x, p, self.zero).values
        return out


@dataclass
class RegionProbe:
    """Distinct activation patterns over the grid: per layer (``layer1``…), over all layers
    (``all``), and over layers 1..l (``upto1``…, monotone in l); ``saturated`` is 1 when every
    grid point has its own pattern (the count is then only a lower bound)."""

    x: torch.Tensor
    schedule: Schedule
    name: str = "regions"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        patterns = activation_patterns(model, self.x)
        out = {k: np.asarray(v) for k, v in region_counts(patterns).items()}
        for depth in range(1, len(patterns.layers)):
            out[f"upto{depth}"] = np.asarray(count_regions(np.concatenate(patterns.layers[:depth], axis=1)))
        out["saturated"] = np.asarray(int(out["all"] == patterns.n_points))
        return out


@dataclass
class RegionMapProbe:
    """Region id of every grid point (ids in order of first appearance) and the on/off maps of
    chosen layer-1 units (the reference shows units 0, 9 and 100); units beyond layer 1's width
    are left out, and ``unit_ids`` lists the ones kept."""

    x: torch.Tensor
    schedule: Schedule
    units: tuple[int, ...] = (0, 9, 100)
    name: str = "region_map"
    before_update: bool = False

    def __post_init__(self) -> None:
        for u in self.units:
            check_int(f"each of the region-map units {self.units!r}", u, 0)

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        patterns = activation_patterns(model, self.x)
        bits = np.unpackbits(patterns.layers[0], axis=1, count=patterns.widths[0])
        units = [u for u in self.units if u < patterns.widths[0]]
        return {
            "ids": region_ids(patterns.packed()),
            "units": bits[:, units].T.astype(np.uint8),
            "unit_ids": np.asarray(units, dtype=np.int64),
        }


@dataclass
class SpectralNormProbe:
    """σ_max of every weight matrix (output layer included) and their product."""

    schedule: Schedule
    name: str = "norms"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        norms = spectral_norms(model)
        return {"per_layer": norms, "product": np.asarray(norm_product(norms))}


@dataclass
class HyperplaneProbe:
    """Per-layer hyperplane-angle statistics; the cosine matrices themselves when ``keep``."""

    schedule: Schedule
    keep: bool = False
    name: str = "hyperplanes"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        mats = hyperplane_cosines(model)
        out = dict(hyperplane_stats(mats))
        if self.keep:
            out.update({f"layer{i + 1}": m.astype(np.float32) for i, m in enumerate(mats)})
        return out


@dataclass
class BoundaryProbe:
    """Mean distance to the nearest region boundary over the grid: the reference's feature-space
    approximation and the true input-space distance (:mod:`specbias.metrics.geometry`).

    Means and the median are over every grid point (spec §1.8). A distance is ``+inf`` only when
    no hidden unit bounds the region, which holds at every point or at none (all first-layer rows
    zero, or all hidden rows zero for the feature space), so a statistic is then ``inf``."""

    x: torch.Tensor
    schedule: Schedule
    name: str = "boundary"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        feat = boundary_distance_feature(model, self.x)
        inp = boundary_distance_input(model, self.x)
        return {
            "feature_mean": np.asarray(feat.mean()),
            "input_mean": np.asarray(inp.mean()),
            "input_median": np.asarray(np.median(inp)),
        }


@dataclass
class BandProbe:
    """Relative residual energy per radial band of the 2D image spectrum (X2)."""

    x: torch.Tensor
    y: np.ndarray
    shape: tuple[int, int]
    schedule: Schedule
    n_bands: int = 8
    name: str = "bands"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        pred = _numpy(model(self.x))
        return {
            "rel_energy": radial_band_error(pred, self.y, self.shape, self.n_bands),
            "psnr": np.asarray(psnr(pred, self.y)),
        }


@dataclass
class HeldOutProbe:
    """PSNR on the training grid and on the held-out offset grid (X3, Tancik et al. 2020)."""

    x: torch.Tensor
    y: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    schedule: Schedule
    name: str = "heldout"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        return {
            "train_psnr": np.asarray(psnr(_numpy(model(self.x)), self.y)),
            "test_psnr": np.asarray(psnr(_numpy(model(self.x_test)), self.y_test)),
        }


@dataclass
class DeadUnitProbe:
    """Units off at every grid point, per layer; measured before the update (spec §1.5)."""

    x: torch.Tensor
    schedule: Schedule
    name: str = "dead"
    before_update: bool = True

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        per_layer = dead_units(activation_patterns(model, self.x))
        return {"per_layer": per_layer, "total": np.asarray(per_layer.sum())}


@dataclass
class SnapshotProbe:
    """The model's parameters, exactly (``<parameter name>`` arrays, e.g. ``layers.0.weight``).

    Analyses that need the network itself at a checkpoint -- exact regions, inspheres, the
    empirical NTK, cross-sections -- rebuild it with :func:`specbias.runs.model_at` instead of
    retraining. Float32 weights are stored as float64, which represents them exactly.
    """

    schedule: Schedule
    name: str = "snapshot"
    before_update: bool = True

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        return {name: _numpy(p) for name, p in model.named_parameters()}


def high_band_target(
    y: np.ndarray, shape: tuple[int, ...], freqs: tuple[int, ...], share: float = 1 / 3, n_bands: int = 8
) -> np.ndarray:
    """The target's high band, ``(N, C)``: ``y`` filtered to its top ``share`` of the spectrum by an
    ideal filter (the inverse DFT of the kept bins).

    1D (``shape = (N,)``): the bins at and above the lowest of the top ``⌈share·K⌉`` target tones
    ``freqs`` (above ``(1 − share)·N/2`` when there are none); 2D (``(H, W)``): the bins of the top
    ``⌈share·n_bands⌉`` radial bands of :func:`~specbias.metrics.spectrum.radial_bands` -- the
    tones and bands whose convergence X8 calls high-frequency.
    """
    y = np.asarray(y, dtype=np.float64).reshape(int(np.prod(shape)), -1)
    if len(shape) == 1:
        n = shape[0]
        tones = sorted(freqs)
        cut = tones[-math.ceil(share * len(tones))] if tones else (1 - share) * n / 2
        coeffs = np.fft.rfft(y, axis=0)
        coeffs[np.arange(coeffs.shape[0]) < cut] = 0
        return np.fft.irfft(coeffs, n=n, axis=0)
    h, w = shape
    keep = radial_bands((h, w), n_bands) >= n_bands - math.ceil(share * n_bands)
    coeffs = np.fft.fft2(y.reshape(h, w, -1), axes=(0, 1)) * keep[:, :, None]
    return np.fft.ifft2(coeffs, axes=(0, 1)).real.reshape(h * w, -1)


def channel_alignment(spectrum: NTKSpectrum, y: np.ndarray) -> np.ndarray:
    """``A_k = Σ_c Σ_{m<k} (u_mᵀ y_c)² / Σ_c ‖y_c‖²``, ``k = 1..K``: the target's energy fraction in
    the kernel's top modes (Yüce et al. 2022), over the channels of ``y`` ``(N, C)`` of a traced
    kernel; NaN for an all-zero target."""
    energy = np.sum(y * y, axis=0)
    if energy.sum() == 0:
        return np.full(spectrum.eigvals.shape[0], np.nan)
    curves = [alignment_curve(spectrum, y[:, c]) * energy[c] for c in range(y.shape[1]) if energy[c] > 0]
    return np.sum(curves, axis=0) / energy.sum()


def kernel_rate(theta: torch.Tensor, y: np.ndarray, top: float) -> float:
    """``Σ_c y_cᵀ Θ y_c / (λ_max Σ_c ‖y_c‖²)`` in ``[0, 1]``: how fast linearised gradient descent at
    its largest stable step (``∝ 1/λ_max``) starts to fit ``y``, relative to the fastest mode (1 when
    ``y`` lies in the top eigenspace; Lee et al. 2019, Arora et al. 2019's per-mode rates averaged
    over the target's energy). NaN for an all-zero target."""
    energy = float(np.sum(y * y))
    if energy == 0 or top <= 0:
        return float("nan")
    yt = torch.as_tensor(y, dtype=torch.float64, device=theta.device)
    return float(torch.sum(yt * (theta.to(torch.float64) @ yt)) / (top * energy))


@dataclass
class KernelProbe:
    """The empirical NTK ``Θ`` (trace over output channels) on the grid
    (:func:`~specbias.metrics.ntk.empirical_ntk`), measured at the start of the epoch (epoch 0: Θ₀).

    Records ``eigvals`` (the top ``top``, descending), ``trace`` (``tr Θ``), ``align`` and
    ``align_high`` (:func:`channel_alignment` of the centred target and of its high band
    :func:`high_band_target`, ``k = 1..top``) and ``rate``/``rate_high`` (:func:`kernel_rate`).
    """

    x: torch.Tensor
    y: np.ndarray
    y_high: np.ndarray
    schedule: Schedule
    top: int = 64
    name: str = "ntk"
    before_update: bool = True

    def measure(self, model: nn.Module) -> dict[str, np.ndarray]:
        theta = empirical_ntk(model, self.x)
        spectrum = ntk_spectrum(theta, k=min(self.top, theta.shape[0]))
        centred = self.y - self.y.mean(axis=0)
        largest = float(spectrum.eigvals[0])
        return {
            "eigvals": spectrum.eigvals,
            "trace": np.asarray(float(torch.trace(theta))),
            "align": channel_alignment(spectrum, centred),
            "align_high": channel_alignment(spectrum, self.y_high),
            "rate": np.asarray(kernel_rate(theta, centred, largest)),
            "rate_high": np.asarray(kernel_rate(theta, self.y_high, largest)),
        }
