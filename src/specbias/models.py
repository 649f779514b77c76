"""The coordinate network: a ReLU MLP that can expose every layer's pre-activations.

``MLP(in_dim, width, depth, out_dim)`` is ``depth`` hidden ``Linear -> ReLU`` layers of ``width``
units and a linear output layer (the spec's MLP-D(W), §1.1). Layers use PyTorch's default
``nn.Linear`` initialisation, weights and biases ``U(-1/√fan_in, 1/√fan_in)``, which the
dead-unit and region counts at initialisation depend on.

:meth:`MLP.trace` returns, in one forward pass, each linear layer's input ``a_{l-1}`` and
pre-activation ``z_l = W_l a_{l-1} + b_l`` -- everything the activation-pattern, Hamming,
gradient-Gram and boundary-distance metrics need.

:class:`CNN` is the small convolutional classifier of the real-data contrast (spec §6.0): three
3×3 convolutions without padding to 32, 64 and 96 channels, each followed by ReLU, then a ReLU
fully connected layer of 256 and a linear layer to the classes (no pooling). Its
:meth:`CNN.hidden_preacts` returns every conv feature-map unit (channel × position) and the FC
hidden layer, flattened per layer, so the activation-pattern metrics treat it like the MLP.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from specbias._checks import check_int
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


class _ReLUNet(nn.Module):
    """What every network here reports about itself: its hidden ReLU units and parameters."""

    @property
    def hidden_sizes(self) -> list[int]:
        raise NotImplementedError

    @property
    def n_hidden(self) -> int:
        """Total number of hidden ReLU units (the length of an activation pattern)."""
        return sum(self.hidden_sizes)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class MLP(_ReLUNet):
    """ReLU MLP with ``depth`` hidden layers of ``width`` units and PyTorch's default init."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int = 1) -> None:
        super().__init__()
        for name, value, low in (
            ("input dimension", in_dim, 1),
            ("width", width, 1),
            ("depth", depth, 1),
            ("output dimension", out_dim, 1),
        ):
            check_int(name, value, low)
        in_dim, width, depth, out_dim = int(in_dim), int(width), int(depth), int(out_dim)
        dims = [in_dim] + [width] * depth + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.in_dim, self.width, self.depth, self.out_dim = in_dim, width, depth, out_dim

    @property
    def hidden_sizes(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one input (for the cost model)."""
        return sum(layer.weight.numel() for layer in self.layers)

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


SPEC_STRIDE_MIN_SIDE = 15
"""The smallest input side on which the spec's three stride-2 valid 3×3 convolutions leave a
feature map (15 → 7 → 3 → 1); smaller images (scikit-learn's 8×8 digits) use stride 1."""


def conv_out(side: int, stride: int, kernel: int = 3) -> int:
    """Side of a valid (unpadded) convolution's output: ``⌊(side − kernel) / stride⌋ + 1``."""
    return (side - kernel) // stride + 1


class CNN(_ReLUNet):
    """The spec's real-data CNN (§6.0) on ``in_shape = (C, H, W)`` images.

    Three valid 3×3 convolutions (``channels``), each + ReLU, flatten, ``Linear(·, hidden)`` + ReLU,
    ``Linear(hidden, n_classes)``; PyTorch's default initialisation. ``stride=None`` picks the
    spec's stride 2 when ``min(H, W) >= 15`` and stride 1 otherwise -- the one adaptation to small
    inputs: on 8×8 digits stride 2 would give 8 → 3 → 1 and no room for the third convolution, while
    stride 1 gives 8 → 6 → 4 → 2, i.e. 384 flattened features, exactly MNIST's (28 → 13 → 6 → 2), so
    the digits CNN has MNIST's 175,338 parameters (2,816 hidden units instead of 8,352).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        channels: tuple[int, ...] = (32, 64, 96),
        hidden: int = 256,
        stride: int | None = None,
    ) -> None:
        super().__init__()
        c, h, w = (int(v) for v in in_shape)
        if min(c, h, w) < 1 or n_classes < 2 or hidden < 1 or not channels or min(channels) < 1:
            raise ConfigError(
                f"CNN needs positive sizes and >= 2 classes, got input {in_shape}, classes {n_classes}, "
                f"channels {channels}, hidden {hidden}"
            )
        stride = (2 if min(h, w) >= SPEC_STRIDE_MIN_SIDE else 1) if stride is None else int(stride)
        sides = [(h, w)]
        for _ in channels:
            sides.append((conv_out(sides[-1][0], stride), conv_out(sides[-1][1], stride)))
        if stride < 1 or min(sides[-1]) < 1:
            raise ConfigError(
                f"a {h}×{w} image is too small for {len(channels)} valid 3×3 convolutions of stride "
                f"{stride}; allowed: stride >= 1 and a side of at least {2 * len(channels) + 1} at stride 1"
            )
        dims = [c, *channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=stride) for a, b in itertools.pairwise(dims))
        flat = channels[-1] * sides[-1][0] * sides[-1][1]
        self.fc = nn.Linear(flat, hidden)
        self.out = nn.Linear(hidden, n_classes)
        self.in_shape, self.stride, self.maps = (c, h, w), stride, sides[1:]

    @property
    def hidden_sizes(self) -> list[int]:
        """Units per hidden layer: channels × positions of each conv map, then the FC layer."""
        convs = [conv.out_channels * h * w for conv, (h, w) in zip(self.convs, self.maps)]
        return [*convs, self.fc.out_features]

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one image (for the cost model)."""
        conv = sum(
            conv.in_channels * 9 * conv.out_channels * h * w for conv, (h, w) in zip(self.convs, self.maps)
        )
        return (
            conv + self.fc.in_features * self.fc.out_features + self.out.in_features * self.out.out_features
        )

    def hidden_preacts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pre-activations of every hidden layer, each flattened to ``(N, units)`` (channel-major)."""
        out = []
        for conv in self.convs:
            z = conv(x)
            out.append(z.flatten(1))
            x = torch.relu(z)
        z = self.fc(x.flatten(1))
        out.append(z)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.out(torch.relu(self.fc(x.flatten(1))))
