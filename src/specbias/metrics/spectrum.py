"""Per-frequency convergence from the complex residual spectrum.

At a checkpoint with prediction ``f`` and target ``y`` on an ``N``-point grid of ``[0, 1)``
(endpoint excluded, so integer frequency ``k`` is exactly FFT bin ``k``):

* residual spectrum ``R(k) = F(f − y)(k) / N`` (one-sided ``rfft``), target ``Y(k) = F(y)(k)/N``;
* **relative error** ``|R(k)| / |Y(k)|`` -- phase-aware: 0 for a perfect fit, 1 for ``f = 0``
  (the brief's measure; Rahaman et al. 2019 track the residual spectrum the same way);
* **learned fraction** ``|F(f)(k)| / |Y(k)|`` -- Rahaman et al. (ICML 2019), "On the Spectral Bias
  of Neural Networks": the fraction of each component learned (blind to phase);
* **magnitude error** ``| |F(f)(k)| − |Y(k)| | / |Y(k)|`` -- Xu et al. (2019), the F-Principle's
  relative error at the target's peaks (also blind to phase);
* **absolute error** ``|R(k)|`` -- Tancik et al. (2020) plot this directly.

Multi-channel outputs combine channels as a root-sum-of-squares of each channel's coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def spectrum(values: np.ndarray) -> np.ndarray:
    """One-sided DFT along the sample axis divided by ``N``: shape ``(N//2 + 1, C)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    return np.fft.rfft(values, axis=0) / values.shape[0]


def residual_spectrum(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``R(k) = F(f − y)(k) / N``: the complex residual spectrum, shape ``(N//2 + 1, C)``."""
    return spectrum(np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64))


def _magnitude(coeffs: np.ndarray) -> np.ndarray:
    """Root-sum-of-squares over channels of complex coefficients ``(K, C) -> (K,)``."""
    return np.sqrt(np.sum(np.abs(coeffs) ** 2, axis=1))


@dataclass(frozen=True)
class FrequencyConvergence:
    """The four per-frequency measures at one checkpoint, each of shape ``(K,)``."""

    freqs: np.ndarray
    rel_error: np.ndarray
    learned_fraction: np.ndarray
    magnitude_error: np.ndarray
    abs_error: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "rel_error": self.rel_error,
            "learned_fraction": self.learned_fraction,
            "magnitude_error": self.magnitude_error,
            "abs_error": self.abs_error,
        }


def frequency_convergence(
    pred: np.ndarray, target: np.ndarray, freqs: tuple[int, ...] | np.ndarray
) -> FrequencyConvergence:
    """Per-frequency convergence of ``pred`` towards ``target`` at integer frequencies ``freqs``."""
    k = np.asarray(freqs, dtype=np.int64)
    f_hat = spectrum(pred)[k]
    y_hat = spectrum(target)[k]
    r_hat = residual_spectrum(pred, target)[k]
    y_mag = _magnitude(y_hat)
    f_mag = _magnitude(f_hat)
    return FrequencyConvergence(
        freqs=k,
        rel_error=_magnitude(r_hat) / y_mag,
        learned_fraction=f_mag / y_mag,
        magnitude_error=np.abs(f_mag - y_mag) / y_mag,
        abs_error=_magnitude(r_hat),
    )


def first_epoch_below(epochs: np.ndarray, values: np.ndarray, threshold: float) -> list[int | None]:
    """For each column of ``values`` (checkpoints × K), the first epoch with value < threshold."""
    out: list[int | None] = []
    for col in np.asarray(values).T:
        hits = np.flatnonzero(col < threshold)
        out.append(int(epochs[hits[0]]) if hits.size else None)
    return out
