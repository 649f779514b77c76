"""INR families: which network a run trains, as config objects that build it.

A *family* is a frozen dataclass (width, depth and the family's own knobs) whose
``build(in_dim, out_dim, seed)`` returns a seeded ``nn.Module`` with its paper's initialisation; its
``LR`` is its paper's learning rate (``LR_SOURCE`` says where it comes from) and ``piecewise_linear``
says whether activation patterns (Hamming distances, region counts) exist for it. The registry
:data:`FAMILIES` maps a name to its class: a new family is one class and one registry line.

Activations are config objects too (:class:`Activation`), applied elementwise to a layer's
pre-activation ``z = W a + b``, so every family but the hash grid is ``Linear → φ → … → Linear`` (an
:class:`INR`, a plain ``nn.Sequential``) and the per-example Gram identity
``⟨∇ℓᵢ,∇ℓⱼ⟩ = Σₗ (δₗᵢ·δₗⱼ)(aₗ₋₁ᵢ·aₗ₋₁ⱼ + 1)`` holds for it with ``δ`` from autograd.

* :class:`ReLUMLP` -- specbias's :class:`~specbias.models.MLP` (PyTorch's default init), fed raw,
  PE or RFF features by the run's input label; Adam 1e-3 (Tancik et al. 2020; Lazzari & Liu 2023).
* :class:`SIREN` -- ``sin(ω₀ z)``, ω₀ = 30; first layer ``W ~ U(−1/n, 1/n)``, later layers (the
  output layer included) ``U(−√(6/n)/ω₀, √(6/n)/ω₀)``, ``n`` the fan-in; biases PyTorch's
  ``U(±1/√n)`` (Sitzmann et al., NeurIPS 2020, §3.2 and their code); Adam 1e-4.
* :class:`FINER` -- ``sin(ω₀ (|z| + 1) z)`` with SIREN's weights and the first layer's bias
  ``U(−k, k)`` (Liu et al., CVPR 2024); the official code treats ``|z| + 1`` as a constant in the
  backward pass (``scale_req_grad=False``), and so do we unless ``scale_grad``; Adam 5e-4 (their
  image script).
* :class:`GaussianINR` -- ``exp(−z²/(2σ²))`` (Ramasinghe & Lucey, ECCV 2022), PyTorch's init, σ and
  learning rate as in WIRE's reproduction (``exp(−(s z)²)``, ``s = 10``, i.e. ``σ = 1/(10√2)``; Adam 1e-3).
* :class:`Gabor` -- WIRE's Gabor wavelet in its **real** form, ``cos(ω₀ z) exp(−(s₀ z)²)`` (the real
  part of WIRE's ``exp(iω₀z − |s₀z|²)`` for real ``z``), ω₀ = 20, s₀ = 10 (Saragadam et al., CVPR 2023);
  PyTorch's init; Adam 5e-3. The complex form is not implemented.
* :class:`HashGridMLP` -- Instant-NGP's multiresolution hash encoding
  (:class:`~specbias.hashgrid.HashGrid`, tables ``U(±10⁻⁴)``) and a small ReLU MLP (Müller et al.,
  SIGGRAPH 2022: 2 hidden layers of 64); Adam 1e-2 (the paper also uses β₂ = 0.99, ε = 1e-15; the
  trainer keeps PyTorch's β₂ = 0.999, ε = 1e-8).

:func:`match_width` sizes a family to a parameter budget (the width that brings its parameter count
closest), so families are compared at matched parameter count.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from specbias._checks import check_int, check_positive
from specbias.errors import ConfigError
from specbias.models import MLP
from specbias.seeding import stream_seed

# --------------------------------------------------------------------------- activations

EXPONENT_CAP = 60.0
"""The Gaussian factors ``exp(−q)`` hold ``q`` at most 60 (``e⁻⁶⁰ ≈ 9·10⁻²⁷``, so the function moves by
less than that): smaller values would reach float32's subnormal range, whose arithmetic runs about 5×
slower on CPUs (measured: a 3×64 Gaussian network trained 5× slower than SIREN before the cap)."""


def capped_exp_neg(q: torch.Tensor) -> torch.Tensor:
    """``exp(−min(q, 60))`` (:data:`EXPONENT_CAP`); the gradient is 0 where the cap holds."""
    return torch.exp(-torch.clamp(q, max=EXPONENT_CAP))


@dataclass(frozen=True)
class Activation(ABC):
    """An elementwise activation ``φ(z)`` of a layer's pre-activation ``z``, as a config object."""

    piecewise_linear: ClassVar[bool] = False
    """Whether ``φ`` is piecewise linear, so that on/off patterns ``[z > 0]`` define linear regions."""

    @abstractmethod
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """``φ(z)``, elementwise."""

    def module(self) -> Elementwise:
        """This activation as an ``nn.Module`` (for ``nn.Sequential``)."""
        return Elementwise(self)


class Elementwise(nn.Module):
    """An ``nn.Module`` applying an :class:`Activation` elementwise (no parameters)."""

    def __init__(self, fn: Activation) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def extra_repr(self) -> str:
        return repr(self.fn)


@dataclass(frozen=True)
class ReLU(Activation):
    """``max(z, 0)``."""

    piecewise_linear: ClassVar[bool] = True

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z)


@dataclass(frozen=True)
class Sine(Activation):
    """``sin(ω₀ z)`` (Sitzmann et al. 2020)."""

    omega0: float = 30.0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega0 * z)


@dataclass(frozen=True)
class VariablePeriodicSine(Activation):
    """FINER's ``sin(ω₀ (|z| + 1) z)`` (Liu et al. 2024, eq. 5). With ``scale_grad=False`` (their
    code's default) the factor ``|z| + 1`` is a constant in the backward pass, so
    ``∂φ/∂z = ω₀ (|z| + 1) cos(ω₀ (|z| + 1) z)``; with ``True`` it is the full derivative
    ``ω₀ (2|z| + 1) cos(ω₀ (|z| + 1) z)``."""

    omega0: float = 30.0
    scale_grad: bool = False

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        scale = z.abs() + 1.0
        if not self.scale_grad:
            scale = scale.detach()
        return torch.sin(self.omega0 * scale * z)


@dataclass(frozen=True)
class GaussianBump(Activation):
    """``exp(−z²/(2σ²))`` (Ramasinghe & Lucey 2022), exponent capped (:func:`capped_exp_neg`)."""

    sigma: float = 1.0 / (10.0 * math.sqrt(2.0))

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return capped_exp_neg((z * z) / (2.0 * self.sigma**2))


@dataclass(frozen=True)
class RealGaborWavelet(Activation):
    """``cos(ω₀ z) exp(−(s₀ z)²)``: the real part of WIRE's complex Gabor wavelet
    ``exp(i ω₀ z − |s₀ z|²)`` for a real pre-activation (Saragadam et al. 2023); exponent capped
    (:func:`capped_exp_neg`)."""

    omega0: float = 20.0
    s0: float = 10.0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cos(self.omega0 * z) * capped_exp_neg((self.s0 * z) ** 2)


# --------------------------------------------------------------------------- the network


class INR(nn.Sequential):
    """``Linear → φ → Linear → φ → … → Linear``: ``depth`` hidden layers of ``width`` units and a
    linear output, each ``Linear`` built with PyTorch's default init (families re-initialise)."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int, activation: Activation) -> None:
        dims = [in_dim] + [width] * depth + [out_dim]
        modules: list[nn.Module] = []
        for a, b in itertools.pairwise(dims[:-1]):
            modules += [nn.Linear(a, b), activation.module()]
        modules.append(nn.Linear(dims[-2], dims[-1]))
        super().__init__(*modules)
        self.activation = activation

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers in order, the output layer last."""
        return [m for m in self if isinstance(m, nn.Linear)]

    @property
    def hidden_sizes(self) -> list[int]:
        return [layer.out_features for layer in self.linears[:-1]]

    @property
    def n_hidden(self) -> int:
        return sum(self.hidden_sizes)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class HashGridNet(nn.Module):
    """A hash-grid encoding followed by a ReLU :class:`~specbias.models.MLP` on its ``L·F`` features.

    ``hidden_preacts`` is the MLP's on the encoded input, so activation patterns, Hamming distances
    and region counts are those of the MLP's ReLUs (the encoding itself is multilinear per cell)."""

    def __init__(self, encoding: nn.Module, mlp: MLP) -> None:
        super().__init__()
        self.encoding = encoding
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(x))

    def hidden_preacts(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.mlp.hidden_preacts(self.encoding(x))

    @property
    def hidden_sizes(self) -> list[int]:
        return self.mlp.hidden_sizes

    @property
    def n_hidden(self) -> int:
        return self.mlp.n_hidden

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------- initialisations


def uniform_(tensor: torch.Tensor, bound: float) -> None:
    """Fill ``tensor`` from ``U(−bound, bound)`` with the global torch generator (seeded by ``build``)."""
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


def siren_init(linears: Sequence[nn.Linear], omega0: float) -> None:
    """Sitzmann et al. (2020), §3.2 and Suppl. 1.5: first layer ``W ~ U(−1/n, 1/n)``, every later
    layer (the output layer too, as in their ``outermost_linear`` code) ``U(−√(6/n)/ω₀, √(6/n)/ω₀)``,
    ``n`` the layer's fan-in; biases keep PyTorch's ``U(−1/√n, 1/√n)``."""
    first, *rest = linears
    uniform_(first.weight, 1.0 / first.in_features)
    for layer in rest:
        uniform_(layer.weight, math.sqrt(6.0 / layer.in_features) / omega0)


# --------------------------------------------------------------------------- families


@dataclass(frozen=True, kw_only=True)
class Family(ABC):
    """A coordinate-network family: ``depth`` hidden layers of ``width`` units and its own knobs.

    ``build(in_dim, out_dim, seed)`` makes the network with the family's initialisation, drawn from
    the run's ``"init"`` stream (the caller's torch RNG is left untouched). ``LR`` is the paper's
    learning rate, ``LR_SOURCE`` its source, ``NAME`` the registry name.
    """

    width: int
    depth: int

    NAME: ClassVar[str]
    TITLE: ClassVar[str]
    LR: ClassVar[float]
    LR_SOURCE: ClassVar[str]
    POSITIVE: ClassVar[tuple[str, ...]] = ()
    """Knobs that must be finite and > 0 when set (None leaves a knob at its default)."""
    SIZES: ClassVar[tuple[str, ...]] = ()
    """Integer knobs besides width and depth that must be >= 1."""

    def __post_init__(self) -> None:
        for name in ("width", "depth", *self.SIZES):
            check_int(name, getattr(self, name))
        for name in self.POSITIVE:
            if (value := getattr(self, name)) is not None:
                check_positive(name, value)

    @property
    @abstractmethod
    def activation(self) -> Activation:
        """The hidden layers' activation."""

    @property
    def piecewise_linear(self) -> bool:
        """Whether activation patterns (Hamming distances, region counts) exist for this family."""
        return self.activation.piecewise_linear

    @property
    def plain_mlp(self) -> bool:
        """Whether the network is specbias's :class:`~specbias.models.MLP` itself (what the
        weight-geometry probes -- spectral norms, hyperplanes, boundary distances -- read)."""
        return False

    @abstractmethod
    def _network(self, in_dim: int, out_dim: int, seed: int) -> nn.Module:
        """The network, built under the seeded global torch RNG."""

    def build(self, in_dim: int, out_dim: int = 1, seed: int = 0) -> nn.Module:
        """The seeded network for ``in_dim`` input features and ``out_dim`` outputs."""
        check_int("input dimension", in_dim)
        check_int("output dimension", out_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(seed, "init"))
            return self._network(int(in_dim), int(out_dim), seed)

    def n_params(self, in_dim: int, out_dim: int = 1) -> int:
        """Trainable parameters of the network for ``in_dim`` features and ``out_dim`` outputs."""
        return sum(p.numel() for p in self.build(in_dim, out_dim).parameters())

    @property
    def title(self) -> str:
        """How figures and claims name the family."""
        return self.TITLE


@dataclass(frozen=True, kw_only=True)
class SequentialFamily(Family):
    """A family whose network is an :class:`INR` (``Linear → φ → … → Linear``), built with PyTorch's
    default init and then re-initialised by :meth:`initialise` (default: kept as is)."""

    def initialise(self, linears: Sequence[nn.Linear]) -> None:
        """The family's initialisation of the linear layers (drawn from the seeded global RNG)."""

    def _network(self, in_dim: int, out_dim: int, seed: int) -> nn.Module:
        net = INR(in_dim, self.width, self.depth, out_dim, self.activation)
        self.initialise(net.linears)
        return net


@dataclass(frozen=True, kw_only=True)
class ReLUMLP(Family):
    """ReLU MLP with PyTorch's default init (specbias's :class:`~specbias.models.MLP`)."""

    width: int = 128
    depth: int = 4

    NAME: ClassVar[str] = "relu"
    TITLE: ClassVar[str] = "ReLU"
    LR: ClassVar[float] = 1e-3
    LR_SOURCE: ClassVar[str] = "Tancik et al. 2020; Lazzari & Liu 2023 (Adam 1e-3)"

    @property
    def activation(self) -> Activation:
        return ReLU()

    @property
    def plain_mlp(self) -> bool:
        return True

    def _network(self, in_dim: int, out_dim: int, seed: int) -> nn.Module:
        return MLP(in_dim, self.width, self.depth, out_dim)


@dataclass(frozen=True, kw_only=True)
class SIREN(SequentialFamily):
    """``sin(ω₀ z)`` with Sitzmann's initialisation (:func:`siren_init`)."""

    width: int = 256
    depth: int = 4
    omega0: float = 30.0

    NAME: ClassVar[str] = "siren"
    TITLE: ClassVar[str] = "SIREN"
    LR: ClassVar[float] = 1e-4
    LR_SOURCE: ClassVar[str] = "Sitzmann et al. 2020, image fitting (Adam 1e-4)"
    POSITIVE: ClassVar[tuple[str, ...]] = ("omega0",)

    @property
    def activation(self) -> Activation:
        return Sine(self.omega0)

    def initialise(self, linears: Sequence[nn.Linear]) -> None:
        siren_init(linears, self.omega0)


@dataclass(frozen=True, kw_only=True)
class FINER(SequentialFamily):
    """``sin(ω₀ (|z| + 1) z)`` with SIREN's weights and the first layer's bias ``U(−k, k)``.

    ``first_bias`` is FINER's ``k`` (their ``first_bias_scale``); ``None`` keeps PyTorch's
    ``U(±1/√n)`` (``k = 1`` for a 1D input, ``1/√2`` in 2D), the official code's default. A larger
    ``k`` selects higher-frequency parts of the variable-periodic activation (their §3.3).
    """

    width: int = 256
    depth: int = 4
    omega0: float = 30.0
    first_bias: float | None = None
    scale_grad: bool = False

    NAME: ClassVar[str] = "finer"
    TITLE: ClassVar[str] = "FINER"
    LR: ClassVar[float] = 5e-4
    LR_SOURCE: ClassVar[str] = "Liu et al. 2024, official image-fitting script (Adam 5e-4)"
    POSITIVE: ClassVar[tuple[str, ...]] = ("omega0", "first_bias")

    @property
    def activation(self) -> Activation:
        return VariablePeriodicSine(self.omega0, self.scale_grad)

    def initialise(self, linears: Sequence[nn.Linear]) -> None:
        siren_init(linears, self.omega0)
        if self.first_bias is not None:
            uniform_(linears[0].bias, self.first_bias)


@dataclass(frozen=True, kw_only=True)
class GaussianINR(SequentialFamily):
    """``exp(−z²/(2σ²))`` with PyTorch's default init."""

    width: int = 256
    depth: int = 4
    sigma: float = 1.0 / (10.0 * math.sqrt(2.0))

    NAME: ClassVar[str] = "gauss"
    TITLE: ClassVar[str] = "Gaussian"
    LR: ClassVar[float] = 1e-3
    LR_SOURCE: ClassVar[str] = "WIRE's code (Saragadam et al. 2023): Gauss best at Adam 1e-3 to 2e-3"
    POSITIVE: ClassVar[tuple[str, ...]] = ("sigma",)

    @property
    def activation(self) -> Activation:
        return GaussianBump(self.sigma)


@dataclass(frozen=True, kw_only=True)
class Gabor(SequentialFamily):
    """WIRE's Gabor wavelet, real form ``cos(ω₀ z) exp(−(s₀ z)²)``, with PyTorch's default init."""

    width: int = 256
    depth: int = 4
    omega0: float = 20.0
    s0: float = 10.0

    NAME: ClassVar[str] = "wire"
    TITLE: ClassVar[str] = "WIRE (real Gabor)"
    LR: ClassVar[float] = 5e-3
    LR_SOURCE: ClassVar[str] = "Saragadam et al. 2023, image fitting (Adam 5e-3)"
    POSITIVE: ClassVar[tuple[str, ...]] = ("omega0", "s0")

    @property
    def activation(self) -> Activation:
        return RealGaborWavelet(self.omega0, self.s0)


@dataclass(frozen=True, kw_only=True)
class HashGridMLP(Family):
    """Instant-NGP: a multiresolution hash grid (``levels`` L, ``2^log2_table_size`` rows T per
    level, ``features`` F per level, resolutions from ``base_resolution`` to ``finest_resolution``)
    and a ReLU MLP of ``depth`` × ``width`` on its ``L·F`` features. The table is seeded from the
    run's ``"hashgrid"`` stream. Inputs are coordinates in ``[0, 1]^d`` (the run's ``raw01``)."""

    width: int = 64
    depth: int = 2
    levels: int = 16
    log2_table_size: int = 14
    features: int = 2
    base_resolution: int = 16
    finest_resolution: int = 512

    NAME: ClassVar[str] = "hashgrid"
    TITLE: ClassVar[str] = "hash grid + ReLU"
    LR: ClassVar[float] = 1e-2
    LR_SOURCE: ClassVar[str] = "Müller et al. 2022, §4 (Adam 1e-2; β₂ 0.99, ε 1e-15 there)"
    SIZES: ClassVar[tuple[str, ...]] = (
        "levels",
        "log2_table_size",
        "features",
        "base_resolution",
        "finest_resolution",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.levels < 2 or self.finest_resolution < self.base_resolution:
            raise ConfigError(
                f"a hash grid needs levels >= 2 and finest >= base resolution, got {self.levels} levels, "
                f"{self.base_resolution}..{self.finest_resolution}"
            )

    @property
    def activation(self) -> Activation:
        return ReLU()

    def encoding(self, in_dim: int, seed: int) -> nn.Module:
        """The hash-grid encoding of ``in_dim`` coordinates (growth factor from the resolutions)."""
        from specbias.hashgrid import HashGrid, growth_factor_for

        return HashGrid(
            in_dim,
            levels=self.levels,
            log2_table_size=self.log2_table_size,
            features_per_level=self.features,
            base_resolution=self.base_resolution,
            growth_factor=growth_factor_for(self.base_resolution, self.finest_resolution, self.levels),
            seed=stream_seed(seed, "hashgrid"),
        )

    def _network(self, in_dim: int, out_dim: int, seed: int) -> nn.Module:
        grid = self.encoding(in_dim, seed)
        return HashGridNet(grid, MLP(grid.out_dim, self.width, self.depth, out_dim))


FAMILIES: dict[str, type[Family]] = {
    "relu": ReLUMLP,
    "siren": SIREN,
    "finer": FINER,
    "gauss": GaussianINR,
    "wire": Gabor,
    "hashgrid": HashGridMLP,
}
"""Every family by its registry name."""


def family(name: str, **knobs: object) -> Family:
    """The family ``name`` of :data:`FAMILIES` with ``knobs`` (width, depth, ω₀, …)."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown family {name!r}; allowed: {', '.join(FAMILIES)}")
    return FAMILIES[name](**knobs)


def match_width(spec: Family, in_dim: int, out_dim: int, budget: int, widest: int = 4096) -> Family:
    """``spec`` with the width whose parameter count is closest to ``budget`` (ties: the narrower).

    The count grows with the width, so doubling then bisecting finds the crossing (building only
    networks up to twice the answer's width); a budget the narrowest network already exceeds (e.g.
    a hash table larger than it) is a ConfigError.
    """
    check_int("parameter budget", budget)

    def count(width: int) -> int:
        return dataclasses.replace(spec, width=width).n_params(in_dim, out_dim)

    if count(1) > budget:
        raise ConfigError(f"{spec.title} has {count(1)} parameters at width 1, above the budget {budget}")
    lo, hi = 1, 2
    while hi < widest and count(hi) <= budget:
        lo, hi = hi, min(2 * hi, widest)
    while hi - lo > 1:  # invariant: count(lo) <= budget < count(hi) (or hi = widest)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= budget else (lo, mid)
    best = min((lo, hi), key=lambda w: (abs(count(w) - budget), w))
    return dataclasses.replace(spec, width=best)
