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

Images (``H×W`` grid, row-major pixels; an extension metric, spec §8)
---------------------------------------------------------------------
Per channel, ``R = FFT2(f − y)`` and ``Y = FFT2(y)`` over the ``H×W`` grid (``np.fft.fft2``).
Bin ``(k_y, k_x)`` has integer frequencies in cycles per image (``fftfreq(H)·H``,
``fftfreq(W)·W``) and radius ``|k| = sqrt(k_y² + k_x²)``.

* **band energy** ``E_b(v) = Σ_{k ∈ band b} Σ_c |FFT2(v)(k)|² / (H·W)²`` (by Parseval, the sum over
  all bins, DC included, is the mean of ``v²`` summed over channels);
* **radial band error** ``E_b(f − y) / E_b(y)``: the relative residual energy of band ``b``
  -- 0 when the band is learned, 1 for ``f = 0``; the per-band analogue of the 1D relative error
  (Rahaman et al. 2019 and Xu et al. 2019 follow the residual per frequency; radial averaging of
  the 2D spectrum is the usual image-domain summary, e.g. Tancik et al. 2020's power-law images).
  A band whose target energy is at most ``1e-20`` of the total non-DC energy (none, up to
  round-off) gives NaN.

Band edges (:func:`radial_band_edges`), with ``ν = min(H, W)/2`` (the axis Nyquist radius) and
``r_max = sqrt((H//2)² + (W//2)²)`` (the corner): bands ``0..n_bands-2`` split ``[0, ν]`` into equal
widths, half-open ``[e_b, e_{b+1})`` except that the last of them also takes ``|k| = ν`` (the axis
Nyquist bins); band ``n_bands-1`` holds the corners, ``ν < |k| <= r_max``, where the spectrum is
no longer isotropic. **The DC bin** (``|k| = 0``, the mean) **belongs to no band.**

``psnr(f, y) = 10·log10(range² / MSE)`` with the MSE over every entry (Tancik et al. 2020 report
PSNR for image regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbias._checks import check_int
from specbias.errors import ConfigError

EMPTY_BAND_RTOL = 1e-20
"""A band whose target energy is at most this fraction of the total (non-DC) energy is empty."""


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


def _as_columns(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0:
        raise ConfigError(f"{what} must be (N,) or (N, C) samples with N >= 1, got shape {values.shape}")
    return values


def _check_freqs(freqs: tuple[int, ...] | np.ndarray, n: int) -> np.ndarray:
    raw = np.asarray(freqs)
    if raw.ndim != 1 or raw.dtype == bool or not np.issubdtype(raw.dtype, np.number):
        raise ConfigError(f"frequencies must be a 1-D sequence of integers, got {freqs!r}")
    with np.errstate(invalid="ignore"):
        k = raw.astype(np.int64)
    bad = (k != raw) | (k < 0) | (k > n // 2)
    if bad.any():
        raise ConfigError(
            f"frequencies must be integers in [0, {n // 2}] for N = {n} samples, got {raw[bad].tolist()}"
        )
    return k


def frequency_convergence(
    pred: np.ndarray, target: np.ndarray, freqs: tuple[int, ...] | np.ndarray
) -> FrequencyConvergence:
    """Per-frequency convergence of ``pred`` towards ``target`` at integer frequencies ``freqs``.

    ``pred`` and ``target`` are ``(N,)`` or ``(N, C)`` (a 1-D array is one channel) and must have
    the same shape; ``freqs`` are integers in ``[0, N//2]``. At a frequency where the target has no
    energy (``|Y(k)|² <= EMPTY_BAND_RTOL`` times the target's total non-DC energy, i.e. zero up to
    round-off) the three relative measures are NaN; ``abs_error`` is still defined.
    """
    pred, target = _as_columns(pred, "prediction"), _as_columns(target, "target")
    if pred.shape != target.shape:
        raise ConfigError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    k = _check_freqs(freqs, pred.shape[0])
    y_all = _magnitude(spectrum(target)[1:])
    f_hat = spectrum(pred)[k]
    y_hat = spectrum(target)[k]
    r_hat = residual_spectrum(pred, target)[k]
    y_mag = _magnitude(y_hat)
    f_mag = _magnitude(f_hat)
    r_mag = _magnitude(r_hat)
    empty = y_mag**2 <= EMPTY_BAND_RTOL * np.sum(y_all**2)
    safe = np.where(empty, 1.0, y_mag)

    def rel(v: np.ndarray) -> np.ndarray:
        return np.where(empty, np.nan, v / safe)

    return FrequencyConvergence(
        freqs=k,
        rel_error=rel(r_mag),
        learned_fraction=rel(f_mag),
        magnitude_error=rel(np.abs(f_mag - y_mag)),
        abs_error=r_mag,
    )


def first_epoch_below(epochs: np.ndarray, values: np.ndarray, threshold: float) -> list[int | None]:
    """For each column of ``values`` (checkpoints × K), the first checkpoint label with value < threshold.

    The label is the trainer's checkpoint epoch (label ``e`` = after ``e + 1`` epochs, spec §1.9).
    """
    epochs, values = np.asarray(epochs), np.asarray(values)
    if values.ndim != 2 or epochs.shape != (values.shape[0],):
        raise ConfigError(
            f"values must be (checkpoints, K) with one row per epoch, got values {values.shape} "
            f"and epochs {epochs.shape}"
        )
    out: list[int | None] = []
    for col in values.T:
        hits = np.flatnonzero(col < threshold)
        out.append(int(epochs[hits[0]]) if hits.size else None)
    return out


# --------------------------------------------------------------------------- images


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 2:
        raise ConfigError(f"image shape must be (H, W) with H, W >= 2, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def radial_band_edges(shape: tuple[int, ...], n_bands: int = 8) -> np.ndarray:
    """The ``n_bands + 1`` radii ``[0, ν/(n_bands−1), …, ν, r_max]`` (see the module docstring)."""
    h, w = _image_shape(shape)
    check_int("number of radial bands (the last holds the corners)", n_bands, 2)
    nyq = min(h, w) / 2
    inner = np.arange(n_bands) * nyq / (n_bands - 1)
    return np.append(inner, np.hypot(h // 2, w // 2))


def radial_bands(shape: tuple[int, ...], n_bands: int = 8) -> np.ndarray:
    """The band of every FFT bin, shape ``(H, W)`` in ``np.fft.fft2`` order; ``-1`` for DC."""
    h, w = _image_shape(shape)
    edges = radial_band_edges((h, w), n_bands)
    ky = np.fft.fftfreq(h) * h
    kx = np.fft.fftfreq(w) * w
    radius = np.hypot(ky[:, None], kx[None, :])
    nyq = edges[-2]
    band = np.searchsorted(edges[:-1], radius, side="right") - 1
    band = np.minimum(band, n_bands - 2)  # |k| = ν joins the last inner band
    band[radius > nyq] = n_bands - 1
    band[radius == 0] = -1
    return band


def _as_image(values: np.ndarray, h: int, w: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size % (h * w):
        raise ConfigError(f"{values.shape} values do not fit an image of shape ({h}, {w})")
    return values.reshape(h, w, -1)


def radial_band_energy(values: np.ndarray, shape: tuple[int, ...], n_bands: int = 8) -> np.ndarray:
    """``E_b = Σ_{k∈b} Σ_c |FFT2(v)(k)|² / (H·W)²`` per band, shape ``(n_bands,)``.

    ``values`` is ``(H·W,)``, ``(H·W, C)``, ``(H, W)`` or ``(H, W, C)`` in row-major pixel order.
    """
    h, w = _image_shape(shape)
    power = np.abs(np.fft.fft2(_as_image(values, h, w), axes=(0, 1))) ** 2 / (h * w) ** 2
    bands = radial_bands((h, w), n_bands)
    per_bin = power.sum(axis=2)
    keep = bands >= 0
    return np.bincount(bands[keep], weights=per_bin[keep], minlength=n_bands)


def radial_band_error(
    pred: np.ndarray, target: np.ndarray, shape: tuple[int, ...], n_bands: int = 8
) -> np.ndarray:
    """Relative residual energy ``E_b(f − y) / E_b(y)`` per radial band, shape ``(n_bands,)``.

    0 for a perfect fit, 1 for ``f = 0``; NaN where the target has no energy in the band.
    """
    h, w = _image_shape(shape)
    pred, target = _as_image(pred, h, w), _as_image(target, h, w)
    if pred.shape != target.shape:
        raise ConfigError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    res = radial_band_energy(pred - target, (h, w), n_bands)
    ref = radial_band_energy(target, (h, w), n_bands)
    empty = ref <= EMPTY_BAND_RTOL * ref.sum()
    out = np.full(n_bands, np.nan)
    np.divide(res, ref, out=out, where=~empty)
    return out


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """``10·log10(data_range² / MSE)`` in dB over every entry; ``inf`` for a perfect fit."""
    if not (np.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"PSNR data range must be > 0, got {data_range}")
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ConfigError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    mse = float(np.mean((pred - target) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))
