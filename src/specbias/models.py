"""The coordinate network: a ReLU MLP that can expose every layer's pre-activations.

``MLP(in_dim, width, depth, out_dim)`` is ``depth`` hidden ``Linear -> ReLU`` layers of ``width``
units and a linear output layer (the spec's MLP-D(W), §1.1). Layers use PyTorch's default
``nn.Linear`` initialisation, weights and biases ``U(-1/√fan_in, 1/√fan_in)``, which the
dead-unit and region counts at initialisation depend on.

:meth:`MLP.trace` returns, in one forward pass, each linear layer's input ``a_{l-1}`` and
pre-activation ``z_l = W_l a_{l-1} + b_l`` -- everything the activation-pattern, Hamming,
gradient-Gram and boundary-distance metrics need.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from specbias.errors import ConfigError


@dataclass(frozen=True)
class Trace:
    """One forward pass: ``inputs[l]`` feeds linear layer ``l``, ``preacts[l]`` is its output.

    The last pre-activation is the network output; ``preacts[:-1]`` are the hidden layers.
    """

    inputs: list[torch.Tensor]
    preacts: list[torch.Tensor]

    @property
    def output(self) -> torch.Tensor:
        return self.preacts[-1]

    @property
    def hidden(self) -> list[torch.Tensor]:
        return self.preacts[:-1]


class MLP(nn.Module):
    """ReLU MLP with ``depth`` hidden layers of ``width`` units and PyTorch's default init."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int = 1) -> None:
        super().__init__()
        for name, value, low in (
            ("input dimension", in_dim, 1),
            ("width", width, 1),
            ("depth", depth, 1),
            ("output dimension", out_dim, 1),
        ):
            if not isinstance(value, numbers.Integral) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value}")
        in_dim, width, depth, out_dim = int(in_dim), int(width), int(depth), int(out_dim)
        dims = [in_dim] + [width] * depth + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.in_dim, self.width, self.depth, self.out_dim = in_dim, width, depth, out_dim

    @property
    def hidden_sizes(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    @property
    def n_hidden(self) -> int:
        """Total number of hidden ReLU units (the length of an activation pattern)."""
        return sum(self.hidden_sizes)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)

    def trace(self, x: torch.Tensor) -> Trace:
        """Forward pass that keeps every layer's input and pre-activation."""
        inputs, preacts = [], []
        a = x
        for i, layer in enumerate(self.layers):
            inputs.append(a)
            z = layer(a)
            preacts.append(z)
            if i < len(self.layers) - 1:
                a = torch.relu(z)
        return Trace(inputs, preacts)

    def hidden_preacts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pre-activations of the hidden layers only (skips the output layer's matmul)."""
        out = []
        for layer in self.layers[:-1]:
            z = layer(x)
            out.append(z)
            x = torch.relu(z)
        return out
