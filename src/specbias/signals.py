"""Target signals sampled on a grid of coordinates.

A :class:`Signal` holds the sampling coordinates ``t`` (shape ``(N, d)``, each coordinate in
``[0, 1)``), the target values ``y`` (shape ``(N, C)``) and the arrays that describe how the
target was drawn (kept with the run so that every result can be regenerated).

1D targets
----------
* :class:`ToneMixture` -- the paper's target (Lazzari & Liu 2023, §1.3 of the spec; after
  Rahaman et al. 2019): ``y(t) = Σ_k A_k sin(2πkt + 2πφ_k)`` on ``t_n = n/N`` without the
  endpoint, so every integer frequency falls exactly on an FFT bin.
* :class:`PowerLaw1D` -- Tancik et al. (2020)'s random 1D signal: random phases on every FFT bin
  with amplitude ``k^{-α}``, normalised to unit RMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specbias.errors import ConfigError
from specbias.seeding import rng_for

PAPER_FREQS: tuple[int, ...] = tuple(range(5, 71, 5))
"""K = {5, 10, …, 70}: the 14 unit-amplitude tones of the final paper's 1D target."""

V1_FREQS: tuple[int, ...] = tuple(range(5, 51, 5))
"""K = {5, …, 50}: the 10 tones of the paper's v1 appendix (E3b)."""


@dataclass(frozen=True)
class Signal:
    """A target sampled on a grid: ``t`` is ``(N, d)`` in ``[0, 1)``, ``y`` is ``(N, C)``."""

    t: np.ndarray
    y: np.ndarray
    freqs: tuple[int, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.t.shape[0])


def grid_1d(n: int) -> np.ndarray:
    """``t_n = n/N`` for ``n = 0..N-1``: the paper's 1D grid on ``[0, 1)`` (endpoint excluded)."""
    if n < 2:
        raise ConfigError(f"number of samples must be >= 2, got {n}")
    return (np.arange(n, dtype=np.float64) / n)[:, None]


@dataclass(frozen=True)
class ToneMixture:
    """Sum of unit (or given) amplitude sines at integer frequencies with random phases.

    ``phases="per_run"`` draws φ from the run's seed (clean mode); ``"shared"`` draws them once
    from a fixed stream so that every run sees the same signal, as the reference does (bug B2).
    """

    n: int = 2048
    freqs: tuple[int, ...] = PAPER_FREQS
    amplitudes: tuple[float, ...] | None = None
    phases: str = "per_run"

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ConfigError(f"number of samples must be >= 2, got {self.n}")
        if not self.freqs:
            raise ConfigError("the tone mixture needs at least one frequency")
        nyquist = self.n // 2
        bad = [k for k in self.freqs if not 0 < k < nyquist]
        if bad:
            raise ConfigError(f"frequencies {bad} are outside 1..{nyquist - 1} for N={self.n}")
        if self.amplitudes is not None and len(self.amplitudes) != len(self.freqs):
            raise ConfigError(f"{len(self.amplitudes)} amplitudes given for {len(self.freqs)} frequencies")
        if self.phases not in ("per_run", "shared"):
            raise ConfigError(f"phases must be 'per_run' or 'shared', got {self.phases!r}")

    def build(self, seed: int) -> Signal:
        t = grid_1d(self.n)
        rng = rng_for(0 if self.phases == "shared" else seed, "signal")
        phases = rng.random(len(self.freqs))
        amps = np.ones(len(self.freqs)) if self.amplitudes is None else np.array(self.amplitudes)
        k = np.asarray(self.freqs, dtype=np.float64)
        y = np.sin(2 * np.pi * (t * k[None, :] + phases[None, :])) @ amps
        return Signal(
            t=t,
            y=y[:, None],
            freqs=tuple(self.freqs),
            arrays={"phases": phases, "amplitudes": amps},
        )


@dataclass(frozen=True)
class PowerLaw1D:
    """Tancik et al. (2020) 1D random signal: amplitude ``k^{-alpha}`` at every bin ``k >= 1``."""

    n: int = 2048
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.n < 4:
            raise ConfigError(f"number of samples must be >= 4, got {self.n}")

    def build(self, seed: int) -> Signal:
        t = grid_1d(self.n)
        rng = rng_for(seed, "signal")
        k = np.arange(1, self.n // 2)
        phases = rng.random(k.size)
        amps = k.astype(np.float64) ** (-self.alpha)
        y = np.sin(2 * np.pi * (t * k[None, :] + phases[None, :])) @ amps
        y = y / np.sqrt(np.mean(y**2))
        return Signal(t=t, y=y[:, None], freqs=(), arrays={"phases": phases, "amplitudes": amps})
