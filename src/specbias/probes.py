"""Probes: measurements a run takes at checkpoints, each a small object with fixed data.

A probe owns its evaluation inputs (the encoded training grid, in sample order) and any pairs it
needs, so measuring never touches the training loop's state. Each implements the
:class:`~specbias.training.Probe` protocol and returns arrays of the same shape at every
checkpoint; the trainer stacks them along a leading checkpoint axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias.metrics.gradients import cosine_from_products, loss_gradient_pairs
from specbias.metrics.pairs import Pairs
from specbias.metrics.patterns import activation_patterns, dead_units, hamming, region_counts
from specbias.metrics.spectrum import frequency_convergence
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
    """Gradient confusion (cosine and raw inner product) of each pair set, per pair."""

    x: torch.Tensor
    y: torch.Tensor
    pairs: dict[str, Pairs]
    schedule: Schedule
    zero: str = "nan"
    name: str = "confusion"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        out = {}
        for kind, p in self.pairs.items():
            products = loss_gradient_pairs(model, self.x, self.y, p)
            confusion = cosine_from_products(products, self.zero)
            out[f"{kind}_cos"] = confusion.values
            out[f"{kind}_inner"] = products.inner
            out[f"{kind}_n_zero"] = np.asarray(confusion.n_zero)
        return out


@dataclass
class RegionProbe:
    """Distinct activation patterns over the grid, per layer and over all layers."""

    x: torch.Tensor
    schedule: Schedule
    name: str = "regions"
    before_update: bool = False

    def measure(self, model: MLP) -> dict[str, np.ndarray]:
        counts = region_counts(activation_patterns(model, self.x))
        return {k: np.asarray(v) for k, v in counts.items()}


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
