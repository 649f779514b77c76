"""Helpers shared by the exact-region algorithms: float64 copies of the model, argument
checks, packed activation patterns.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch

from specbias.encodings import Encoding
from specbias.errors import ConfigError
from specbias.metrics.patterns import Patterns, activation_patterns
from specbias.models import MLP

_EPS = float(np.finfo(np.float64).eps)


_SUPPORTED = "exact regions support Raw, NeRFPE, GaussianRFF, BasicEncoding and RestrictedPE encodings"


_CHUNK_FLOATS = 1 << 22  # per-chunk float64 working set (32 MiB) for coefficient tensors


def _hidden_weights(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W_l, b_l)`` of every hidden layer as float64 NumPy arrays (the output layer is excluded)."""
    with torch.no_grad():
        return [
            (layer.weight.detach().double().cpu().numpy(), layer.bias.detach().double().cpu().numpy())
            for layer in model.layers[:-1]
        ]


def _model64(model: MLP) -> MLP:
    """The model itself if it is float64 on the CPU, else a float64 CPU copy (the same function)."""
    w = model.layers[0].weight
    if w.dtype == torch.float64 and w.device.type == "cpu":
        return model
    return copy.deepcopy(model).double().cpu()


def _check_model(model: MLP, encoding: Encoding) -> None:
    if model.in_dim != encoding.out_dim:
        raise ConfigError(
            f"model input dimension {model.in_dim} does not match the encoding's {encoding.out_dim} features"
        )


def _point(value: float | np.ndarray, in_dim: int, name: str) -> np.ndarray:
    p = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if p.shape != (in_dim,) or not np.all(np.isfinite(p)):
        raise ConfigError(f"segment end {name} must be {in_dim} finite number(s), got {value!r}")
    return p


@torch.no_grad()
def _patterns_at(model64: MLP, encoding: Encoding, t: np.ndarray) -> Patterns:
    feats = encoding(torch.as_tensor(t, dtype=torch.float64))
    return activation_patterns(model64, feats)


def _unique_rows(packed: np.ndarray) -> np.ndarray:
    """The distinct rows of a packed pattern matrix (byte-string view, as ``count_regions``)."""
    packed = np.ascontiguousarray(packed)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return np.unique(rows).view(np.uint8).reshape(-1, packed.shape[1])


def _pack_rows(bits: np.ndarray, widths: list[int]) -> np.ndarray:
    """A boolean ``(N, Σ W)`` matrix packed per layer, layers side by side (``Patterns.packed`` layout)."""
    offsets = np.cumsum([0, *widths])
    return np.concatenate([np.packbits(bits[:, a:b], axis=1) for a, b in itertools.pairwise(offsets)], axis=1)


def _pack_layers(bits: np.ndarray, widths: list[int]) -> Patterns:
    """A boolean ``(N, Σ W)`` matrix as :class:`Patterns` (one packed block per layer)."""
    offsets = np.cumsum([0, *widths])
    layers = [np.packbits(bits[:, a:b], axis=1) for a, b in itertools.pairwise(offsets)]
    return Patterns(layers=layers, widths=list(widths))


def _unpack_rows(packed: np.ndarray, widths: list[int]) -> np.ndarray:
    """Per-layer-packed rows back to a boolean ``(N, Σ W)`` matrix."""
    bits, col = [], 0
    for w in widths:
        nb = (w + 7) // 8
        bits.append(np.unpackbits(packed[:, col : col + nb], axis=1, count=w).astype(bool))
        col += nb
    return np.concatenate(bits, axis=1)
