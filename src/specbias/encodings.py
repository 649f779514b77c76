"""Input encodings for coordinate networks: one interface, ``encoding(t) -> features``.

Every encoding maps coordinates ``t`` of shape ``(N, in_dim)`` -- each coordinate in ``[0, 1)`` --
to features of shape ``(N, out_dim)``. Encodings are fixed (not trained), so a run encodes its
grid once and the network sees the features.

* :class:`Raw` -- the affine map of ``[0, 1)`` onto ``[lo, hi)``: "raw coordinates".
* :class:`NeRFPE` -- ``[sin(b·2^l t), cos(b·2^l t)]`` for ``l = 0..n_freqs-1`` with base ``b`` = π
  (the paper) or 2π, per coordinate (Mildenhall et al. 2020; the spec's §1.2-1.3). Feature order,
  per octave ``l``: ``sin(x), cos(x), sin(y), cos(y)`` -- the order E14 relies on.
* :class:`GaussianRFF` -- ``[sin(2π t Bᵀ), cos(2π t Bᵀ)]`` with ``B ~ N(0, σ²)^{m×d}`` drawn once
  from the run's seed and kept with the run (Tancik et al. 2020). The reference redraws ``B``
  between training and evaluation (bug B8); here ``B`` is an attribute of the object, so the
  features a probe sees are the ones the network was trained on.
* :class:`BasicEncoding` -- Tancik et al. (2020)'s "basic" mapping ``γ(v) = [cos(2πv), sin(2πv)]``:
  all cosines (one per coordinate) then all sines, one period over ``[0, 1)``.
* :class:`RestrictedPE` -- **a reconstruction** of the v1 appendix's "restricted PE" (E16; the
  reference lists the option but never implements it, bug B15): ``dim/(2·in_dim)`` copies of
  ``[sin(ωπx + φ_c), cos(ωπx + φ_c), sin(ωπy + φ_c), cos(ωπy + φ_c)]`` (``dim/4`` copies in 2D), a
  single frequency ω on every feature, with the fixed phase ``φ_c = 2πc/n_copies`` on copy ``c``
  so that no two copies are identical. Each coordinate's features lie on a circle (the features
  on a torus: the appendix's "Hypersphere" legend). Every copy is a rotation of copy 0
  (``sin(θ+φ) = sin θ cos φ + cos θ sin φ``), so the copies add no function a first linear layer
  could not already form: raising ``dim`` alone should not raise capacity, which is E16's claim.

Lifts of a 1D coordinate to ``ℝᵈ`` (X7, "is it the dimension or the encoding?"), both drawn from
the run's seed like :class:`GaussianRFF` and saved with the run:

* :class:`LinearLift` (``lin<d>``) -- the random affine line ``x(t) = t·v + u``: ``v`` and ``u``
  random directions of norm ``√d``, ``u ⟂ v`` (for ``d >= 2``), a segment of a straight line in
  ``ℝᵈ``. The first layer sees ``W x + b = (W v) t + (W u + b)``, so the network restricted to the
  line is a ReLU network of ``t`` (piecewise linear in ``t``), and at PyTorch's initialisation
  (rows ``U(±1/√d)``) its first-layer slopes ``s = W v`` and offsets ``c = W u + b`` have the
  moments of raw ``[0, 1)``'s ``U(±1)`` weights and biases: ``Var s = ‖v‖²/(3d) = 1/3``,
  ``Var c = 1/3 + 1/(3d)``, ``Cov(s, c) = v·u/(3d) = 0`` -- so a quarter of the units have their
  kink ``−c/s`` in ``[0, 1)`` either way. (Without the offset the kinks would crowd near ``t = 0``
  as ``d`` grows; with Gaussian ``v, u`` the geometry would vary a lot between seeds at small
  ``d``.) What differs from raw is the dimension alone -- and what the optimiser makes of it:
  Adam's per-coordinate steps are not invariant to a rotation of the input.
* :class:`CurveLift` (``curve<d>``, ``d >= 2``) -- the same line bent by ``J = 3`` low harmonics
  orthogonal to it: ``x(t) = t·v + u + Σ_{j=1..J} (a_j sin 2πjt + b_j cos 2πjt)`` with
  ``a_j, b_j ~ P⊥ N(0, I_d/j²)`` and ``P⊥ = I − v vᵀ/‖v‖²``. Along ``v`` the curve moves as
  ``t‖v‖``, so it never crosses itself; it is smooth and of low frequency (at most 3 cycles over
  ``[0, 1)``, below every tone of the paper's target), so neighbouring ``t`` stay neighbours. The
  same seed gives :class:`LinearLift` the same ``v`` and ``u``: a curve is its line plus a bend.
* ``rff<σ>x<d>`` -- :class:`GaussianRFF` with ``m = d/2`` frequencies, so that RFF can be compared
  with the lifts at equal output dimension ``d``.

Paper labels. The 1D scripts call ``[sin(2^l πt), cos(2^l πt)], l = 0..p`` "L = p" (largest
exponent), the 2D scripts call L the *number* of octaves. We keep one parameter, ``n_freqs``
(number of octaves), and map labels with :func:`n_freqs_from_label`: 1D "L=3" has 4 octaves
(8 features), 1D "L=6" has 7 (14 features), 2D "L=5" has 5 (20 features in 2D).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from specbias._checks import check_positive
from specbias.errors import ConfigError
from specbias.seeding import rng_for


class Encoding:
    """Interface: ``in_dim``, ``out_dim``, ``__call__``, ``frequencies`` and ``config``."""

    in_dim: int

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def frequencies(self) -> np.ndarray:
        """Frequency of each output feature in cycles per unit of ``t`` (0 for non-periodic)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays that define the encoding and are saved with a run (e.g. the RFF matrix)."""
        return {}


def _check_in_dim(in_dim: int) -> None:
    if in_dim < 1:
        raise ConfigError(f"input dimension must be >= 1, got {in_dim}")


@dataclass(frozen=True)
class Raw(Encoding):
    """Raw coordinates on ``[lo, hi)``: ``lo + (hi - lo) t``. ``Raw(0, 1)`` is the identity."""

    lo: float = 0.0
    hi: float = 1.0
    in_dim: int = 1

    def __post_init__(self) -> None:
        _check_in_dim(self.in_dim)
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi <= self.lo:
            raise ConfigError(f"raw range needs lo < hi, got [{self.lo}, {self.hi}]")

    @property
    def out_dim(self) -> int:
        return self.in_dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if self.lo == 0.0 and self.hi == 1.0:
            return t
        return self.lo + (self.hi - self.lo) * t

    def frequencies(self) -> np.ndarray:
        return np.zeros(self.in_dim)


@dataclass(frozen=True)
class NeRFPE(Encoding):
    """NeRF positional encoding with ``n_freqs`` octaves, base π (paper) or 2π.

    Features, for ``l = 0..n_freqs-1`` and each coordinate: ``sin(base·2^l·t)``,
    ``cos(base·2^l·t)``; with ``include_input`` the raw ``t`` comes first.
    Component ``l`` has ``base·2^l/(2π)`` periods over ``[0, 1]`` (2^(l-1) for base π).
    """

    n_freqs: int
    base: float = math.pi
    include_input: bool = False
    in_dim: int = 1

    def __post_init__(self) -> None:
        _check_in_dim(self.in_dim)
        if self.n_freqs < 0:
            raise ConfigError(f"number of octaves must be >= 0, got {self.n_freqs}")
        if not any(math.isclose(self.base, b) for b in (math.pi, 2 * math.pi)):
            raise ConfigError(f"PE base must be pi or 2*pi, got {self.base}")
        if self.n_freqs == 0 and not self.include_input:
            raise ConfigError("PE with 0 octaves and no raw input has no features")

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * self.n_freqs + int(self.include_input))

    def _scales(self) -> np.ndarray:
        return self.base * 2.0 ** np.arange(self.n_freqs)

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        scales = torch.as_tensor(self._scales(), dtype=t.dtype, device=t.device)
        angles = t[:, None, :] * scales[None, :, None]  # (N, n_freqs, in_dim)
        feats = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1)  # (N, F, d, 2)
        feats = feats.reshape(t.shape[0], -1)
        return torch.cat((t, feats), dim=1) if self.include_input else feats

    def frequencies(self) -> np.ndarray:
        per_octave = np.repeat(self._scales() / (2 * math.pi), 2 * self.in_dim)
        raw = np.zeros(self.in_dim if self.include_input else 0)
        return np.concatenate((raw, per_octave))


@dataclass(frozen=True)
class GaussianRFF(Encoding):
    """Gaussian random Fourier features ``[sin(2π t Bᵀ), cos(2π t Bᵀ)]``, ``B_ij ~ N(0, σ²)``.

    ``B`` (shape ``(m, in_dim)``) is drawn once from ``seed`` when the object is made.
    """

    sigma: float
    m: int = 256
    in_dim: int = 1
    seed: int = 0
    B: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_in_dim(self.in_dim)
        check_positive("RFF sigma", self.sigma)
        if self.m < 1:
            raise ConfigError(f"RFF feature count m must be >= 1, got {self.m}")
        b = rng_for(self.seed, "rff").standard_normal((self.m, self.in_dim)) * self.sigma
        object.__setattr__(self, "B", b)

    @property
    def out_dim(self) -> int:
        return 2 * self.m

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        b = torch.as_tensor(self.B, dtype=t.dtype, device=t.device)
        angles = 2 * math.pi * t @ b.T
        return torch.cat((torch.sin(angles), torch.cos(angles)), dim=1)

    def frequencies(self) -> np.ndarray:
        norms = np.linalg.norm(self.B, axis=1)
        return np.concatenate((norms, norms))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"B": self.B}


@dataclass(frozen=True)
class BasicEncoding(Encoding):
    """Tancik et al. (2020) basic mapping ``[cos(2πv_1), …, cos(2πv_d), sin(2πv_1), …, sin(2πv_d)]``."""

    in_dim: int = 2

    def __post_init__(self) -> None:
        _check_in_dim(self.in_dim)

    @property
    def out_dim(self) -> int:
        return 2 * self.in_dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * t
        return torch.cat((torch.cos(angles), torch.sin(angles)), dim=1)

    def frequencies(self) -> np.ndarray:
        return np.ones(2 * self.in_dim)


@dataclass(frozen=True)
class RestrictedPE(Encoding):
    """Restricted PE (E16) -- a reconstruction, not the paper's code (see the module docstring).

    Copy ``c = 0..n_copies-1`` (``n_copies = dim/(2·in_dim)``) holds, per coordinate ``v``,
    ``sin(ωπv + φ_c), cos(ωπv + φ_c)`` with ``φ_c = 2πc/n_copies``. Every feature has
    ``ω/2`` periods over ``[0, 1]``.
    """

    omega: float
    dim: int
    in_dim: int = 2

    def __post_init__(self) -> None:
        _check_in_dim(self.in_dim)
        check_positive("restricted PE frequency omega", self.omega)
        if self.dim < 1 or self.dim % (2 * self.in_dim):
            raise ConfigError(
                f"restricted PE dimension must be a positive multiple of {2 * self.in_dim} "
                f"(2 × input dimension {self.in_dim}), got {self.dim}"
            )

    @property
    def n_copies(self) -> int:
        return self.dim // (2 * self.in_dim)

    @property
    def out_dim(self) -> int:
        return self.dim

    def phases(self) -> np.ndarray:
        """``φ_c = 2πc/n_copies`` for each copy."""
        return 2 * math.pi * np.arange(self.n_copies) / self.n_copies

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        phases = torch.as_tensor(self.phases(), dtype=t.dtype, device=t.device)
        angles = self.omega * math.pi * t[:, None, :] + phases[None, :, None]  # (N, copies, in_dim)
        feats = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1)  # (N, copies, d, 2)
        return feats.reshape(t.shape[0], -1)

    def frequencies(self) -> np.ndarray:
        return np.full(self.dim, self.omega / 2)


def _check_lift(kind: str, dim: int, in_dim: int, least: int) -> None:
    if in_dim != 1:
        raise ConfigError(f"the {kind} lifts a 1D coordinate; got input dimension {in_dim}")
    if dim < least:
        raise ConfigError(f"{kind} dimension d must be >= {least}, got {dim}")


@dataclass(frozen=True)
class LinearLift(Encoding):
    """``x(t) = t·v + u``: a straight line in ``ℝᵈ`` (X7). ``v``, ``u``: random directions of norm
    ``√d`` drawn from ``seed``, ``u`` orthogonal to ``v`` when ``d >= 2``."""

    dim: int
    seed: int = 0
    in_dim: int = 1
    direction: np.ndarray = field(init=False, repr=False, compare=False)
    offset: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_lift("linear lift", self.dim, self.in_dim, 1)
        rng = rng_for(self.seed, "lift")
        v, u = rng.standard_normal(self.dim), rng.standard_normal(self.dim)
        if self.dim > 1:
            u = u - (u @ v) / (v @ v) * v
        scale = math.sqrt(self.dim)
        object.__setattr__(self, "direction", scale * v / np.linalg.norm(v))
        object.__setattr__(self, "offset", scale * u / np.linalg.norm(u))

    @property
    def out_dim(self) -> int:
        return self.dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        v, u = (torch.as_tensor(a, dtype=t.dtype, device=t.device) for a in (self.direction, self.offset))
        return t[:, :1] * v[None, :] + u[None, :]

    def frequencies(self) -> np.ndarray:
        return np.zeros(self.dim)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"direction": self.direction, "offset": self.offset}


@dataclass(frozen=True)
class CurveLift(Encoding):
    """``x(t) = t·v + u + Σ_{j=1..J} (a_j sin 2πjt + b_j cos 2πjt)``: a smooth curve in ``ℝᵈ`` (X7).

    ``v`` and ``u`` are :class:`LinearLift`'s for the same ``seed``; the rows ``a_j``, ``b_j``
    (``J = harmonics``) are ``N(0, I_d/j²)`` projected orthogonally to ``v``.
    """

    dim: int
    harmonics: int = 3
    seed: int = 0
    in_dim: int = 1
    line: LinearLift = field(init=False, repr=False, compare=False)
    sin_coef: np.ndarray = field(init=False, repr=False, compare=False)
    cos_coef: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_lift("curve lift", self.dim, self.in_dim, 2)
        if self.harmonics < 1:
            raise ConfigError(f"curve lift harmonics must be >= 1, got {self.harmonics}")
        line = LinearLift(self.dim, seed=self.seed)
        unit = line.direction / np.linalg.norm(line.direction)
        rng = rng_for(self.seed, "curve")
        scale = 1.0 / np.arange(1, self.harmonics + 1)[:, None]
        for name in ("sin_coef", "cos_coef"):
            c = rng.standard_normal((self.harmonics, self.dim)) * scale
            object.__setattr__(self, name, c - np.outer(c @ unit, unit))
        object.__setattr__(self, "line", line)

    @property
    def out_dim(self) -> int:
        return self.dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        sin_c, cos_c = (
            torch.as_tensor(a, dtype=t.dtype, device=t.device) for a in (self.sin_coef, self.cos_coef)
        )
        j = torch.arange(1, self.harmonics + 1, dtype=t.dtype, device=t.device)
        angles = 2 * math.pi * t[:, :1] * j[None, :]  # (N, J)
        return self.line(t) + torch.sin(angles) @ sin_c + torch.cos(angles) @ cos_c

    def frequencies(self) -> np.ndarray:
        """The highest harmonic ``J`` for every coordinate (the linear part is not periodic)."""
        return np.full(self.dim, float(self.harmonics))

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.line.arrays(), "sin_coef": self.sin_coef, "cos_coef": self.cos_coef}


def n_freqs_from_label(label: int, convention: str) -> int:
    """Map the paper's PE label L to a number of octaves.

    ``convention="1d"``: L is the largest exponent, so ``n_freqs = L + 1``.
    ``convention="2d"``: L is the number of octaves, so ``n_freqs = L``.
    """
    if label < 0:
        raise ConfigError(f"PE label L must be >= 0, got {label}")
    if convention == "1d":
        return label + 1
    if convention == "2d":
        return label
    raise ConfigError(f"PE label convention must be '1d' or '2d', got {convention!r}")


def aliased_features(encoding: Encoding, spacing: float) -> np.ndarray:
    """Indices of the features whose frequency exceeds the grid's Nyquist limit ``1/(2·spacing)``."""
    return np.flatnonzero(encoding.frequencies() > 0.5 / spacing + 1e-12)


def warn_if_aliased(encoding: Encoding, spacing: float) -> int:
    """Warn when features alias on a grid with this spacing; return how many do."""
    bad = aliased_features(encoding, spacing)
    if bad.size:
        top = float(encoding.frequencies().max())
        warnings.warn(
            f"{bad.size} of {encoding.out_dim} encoding features exceed the grid's Nyquist limit "
            f"({0.5 / spacing:g} cycles per unit; highest {top:g}) and alias",
            stacklevel=2,
        )
    return int(bad.size)


_NUM = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
INPUT_GRAMMAR = (
    "raw01, raw11, raw<lo>_<hi>, pe<L>, rff<sigma>, rff<sigma>x<d>, basic, rpe<omega>x<dim>, lin<d>, curve<d>"
)


def parse_input(label: str, *, in_dim: int = 1, convention: str = "1d", seed: int = 0) -> Encoding:
    """Build an encoding from an input label: ``raw01``, ``raw11``, ``raw-2_2``, ``pe6``, ``rff10``,
    ``rff10x8``, ``basic``, ``rpe32x20``, ``lin8`` or ``curve8``.

    ``pe<L>`` uses the paper's label convention for the domain (see :func:`n_freqs_from_label`);
    ``rff<σ>`` draws its ``B`` (256 frequencies) from ``seed``, ``rff<σ>x<d>`` draws ``d/2`` of them
    (``d`` features); ``rpe<ω>x<dim>`` is :class:`RestrictedPE`; ``lin<d>`` and ``curve<d>`` are
    :class:`LinearLift` and :class:`CurveLift` of a 1D coordinate, drawn from ``seed``.
    """
    if label == "raw01":
        return Raw(0.0, 1.0, in_dim=in_dim)
    if label == "raw11":
        return Raw(-1.0, 1.0, in_dim=in_dim)
    if m := re.fullmatch(rf"raw({_NUM})_({_NUM})", label):
        return Raw(float(m[1]), float(m[2]), in_dim=in_dim)
    if m := re.fullmatch(r"pe(-?\d+)", label):
        return NeRFPE(n_freqs_from_label(int(m[1]), convention), in_dim=in_dim)
    if m := re.fullmatch(rf"rff({_NUM})", label):
        return GaussianRFF(float(m[1]), in_dim=in_dim, seed=seed)
    if m := re.fullmatch(rf"rff({_NUM})x(-?\d+)", label):
        d = int(m[2])
        if d < 2 or d % 2:
            raise ConfigError(f"RFF dimension d must be even and >= 2 (sin and cos per frequency), got {d}")
        return GaussianRFF(float(m[1]), m=d // 2, in_dim=in_dim, seed=seed)
    if m := re.fullmatch(r"lin(-?\d+)", label):
        return LinearLift(int(m[1]), seed=seed, in_dim=in_dim)
    if m := re.fullmatch(r"curve(-?\d+)", label):
        return CurveLift(int(m[1]), seed=seed, in_dim=in_dim)
    if label == "basic":
        return BasicEncoding(in_dim=in_dim)
    if m := re.fullmatch(rf"rpe({_NUM})x(\d+)", label):
        return RestrictedPE(float(m[1]), int(m[2]), in_dim=in_dim)
    raise ConfigError(f"unknown encoding {label!r}; allowed: {INPUT_GRAMMAR}")
