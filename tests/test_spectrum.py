"""Per-frequency convergence against an explicit DFT and closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from specbias.errors import ConfigError
from specbias.metrics.spectrum import (
    first_epoch_below,
    frequency_convergence,
    psnr,
    radial_band_edges,
    radial_band_energy,
    radial_band_error,
    radial_bands,
    residual_spectrum,
    spectrum,
)


def grid(n):
    return np.arange(n) / n


def ref_dft(values, k):
    """(1/N) Σ_n x_n exp(-2πi k n / N) for one integer k, each channel."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    phase = np.exp(-2j * np.pi * k * np.arange(n) / n)
    return (phase[:, None] * values).sum(axis=0) / n


@pytest.mark.parametrize("n,k", [(64, 1), (64, 5), (128, 31), (256, 70), (2048, 70)])
def test_pure_tone_energy_at_its_bin_only(n, k):
    t = grid(n)
    s = spectrum(np.sin(2 * np.pi * k * t))
    assert s.shape == (n // 2 + 1, 1)
    mag = np.abs(s[:, 0])
    np.testing.assert_allclose(mag[k], 0.5, atol=1e-12)
    others = np.delete(mag, k)
    assert others.max() < 1e-12


def test_spectrum_matches_explicit_dft():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    s = spectrum(x)
    for k in range(21):
        np.testing.assert_allclose(s[k], ref_dft(x, k), atol=1e-12)
    # 1-D input becomes one channel
    np.testing.assert_allclose(spectrum(x[:, 0])[:, 0], s[:, 0], atol=1e-15)


def tone_target(n, freqs, phases, amps=None):
    t = grid(n)[:, None]
    amps = np.ones(len(freqs)) if amps is None else np.asarray(amps)
    return (np.sin(2 * np.pi * (t * np.asarray(freqs)[None] + np.asarray(phases)[None])) @ amps)[:, None]


FREQS = (3, 7, 20)


def test_perfect_fit_has_zero_error():
    y = tone_target(256, FREQS, [0.1, 0.5, 0.9])
    fc = frequency_convergence(y.copy(), y, FREQS)
    np.testing.assert_array_equal(fc.freqs, FREQS)
    np.testing.assert_allclose(fc.rel_error, 0.0, atol=1e-12)
    np.testing.assert_allclose(fc.abs_error, 0.0, atol=1e-12)
    np.testing.assert_allclose(fc.learned_fraction, 1.0, atol=1e-12)
    np.testing.assert_allclose(fc.magnitude_error, 0.0, atol=1e-12)
    assert set(fc.as_dict()) == {"rel_error", "learned_fraction", "magnitude_error", "abs_error"}


def test_zero_prediction_has_unit_relative_error():
    amps = [1.0, 2.0, 0.5]
    y = tone_target(256, FREQS, [0.3, 0.2, 0.7], amps)
    fc = frequency_convergence(np.zeros_like(y), y, FREQS)
    np.testing.assert_allclose(fc.rel_error, 1.0, atol=1e-12)
    np.testing.assert_allclose(fc.learned_fraction, 0.0, atol=1e-12)
    np.testing.assert_allclose(fc.magnitude_error, 1.0, atol=1e-12)
    np.testing.assert_allclose(fc.abs_error, np.array(amps) / 2, atol=1e-12)


@pytest.mark.parametrize("shift", [0.25, 0.5, 0.1])
def test_phase_shift_is_seen_only_by_relative_error(shift):
    y = tone_target(512, FREQS, [0.0, 0.4, 0.6])
    pred = tone_target(512, FREQS, [shift, 0.4 + shift, 0.6 + shift])
    fc = frequency_convergence(pred, y, FREQS)
    np.testing.assert_allclose(fc.learned_fraction, 1.0, atol=1e-12)
    np.testing.assert_allclose(fc.magnitude_error, 0.0, atol=1e-12)
    expected = abs(np.exp(2j * np.pi * shift) - 1)  # |e^{iφ} − 1|
    np.testing.assert_allclose(fc.rel_error, expected, atol=1e-12)
    assert (fc.rel_error > 0).all()


def test_scaled_prediction():
    y = tone_target(128, FREQS, [0.3, 0.1, 0.8])
    fc = frequency_convergence(0.25 * y, y, FREQS)
    np.testing.assert_allclose(fc.rel_error, 0.75, atol=1e-12)
    np.testing.assert_allclose(fc.learned_fraction, 0.25, atol=1e-12)
    np.testing.assert_allclose(fc.magnitude_error, 0.75, atol=1e-12)


def test_random_prediction_matches_reference_multichannel():
    rng = np.random.default_rng(3)
    n, c = 96, 3
    y = rng.standard_normal((n, c))
    pred = rng.standard_normal((n, c))
    freqs = (1, 4, 9, 30)
    fc = frequency_convergence(pred, y, freqs)
    for idx, k in enumerate(freqs):
        fy, ff = ref_dft(y, k), ref_dft(pred, k)
        y_mag = np.sqrt(np.sum(np.abs(fy) ** 2))  # root-sum-of-squares over channels
        f_mag = np.sqrt(np.sum(np.abs(ff) ** 2))
        r_mag = np.sqrt(np.sum(np.abs(ff - fy) ** 2))
        np.testing.assert_allclose(fc.rel_error[idx], r_mag / y_mag, rtol=1e-10)
        np.testing.assert_allclose(fc.learned_fraction[idx], f_mag / y_mag, rtol=1e-10)
        np.testing.assert_allclose(fc.magnitude_error[idx], abs(f_mag - y_mag) / y_mag, rtol=1e-10)
        np.testing.assert_allclose(fc.abs_error[idx], r_mag, rtol=1e-10)


def test_multichannel_root_sum_of_squares():
    n = 128
    t = grid(n)
    # channel 0 carries amplitude 3 at k=5, channel 1 amplitude 4: combined |Y| = sqrt(1.5² + 2²) = 2.5
    y = np.stack([3 * np.sin(2 * np.pi * 5 * t), 4 * np.cos(2 * np.pi * 5 * t)], axis=1)
    pred = np.stack([3 * np.sin(2 * np.pi * 5 * t), np.zeros(n)], axis=1)  # channel 1 not learned
    fc = frequency_convergence(pred, y, (5,))
    np.testing.assert_allclose(fc.abs_error, [2.0], atol=1e-12)
    np.testing.assert_allclose(fc.rel_error, [2.0 / 2.5], atol=1e-12)
    np.testing.assert_allclose(fc.learned_fraction, [1.5 / 2.5], atol=1e-12)
    np.testing.assert_allclose(fc.magnitude_error, [1.0 / 2.5], atol=1e-12)


def test_first_epoch_below():
    epochs = np.array([0, 10, 20, 30])
    values = np.array(
        [
            [0.9, 0.5, 1.0],
            [0.2, 0.5, 1.0],
            [0.05, 0.01, 1.0],
            [0.5, 0.001, 0.2],
        ]
    )
    assert first_epoch_below(epochs, values, 0.1) == [20, 20, None]
    assert first_epoch_below(epochs, values, 0.5) == [10, 20, 30]  # strictly below
    assert first_epoch_below(epochs, values, 1.0) == [0, 0, 30]
    assert first_epoch_below(epochs, values, 0.0) == [None, None, None]
    # NaN never counts as below
    values[0, 0] = np.nan
    assert first_epoch_below(epochs, values, 0.95)[0] == 10


def test_residual_spectrum():
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((30, 2))
    target = rng.standard_normal((30, 2))
    r = residual_spectrum(pred, target)
    assert r.shape == (16, 2)
    for k in range(16):
        np.testing.assert_allclose(r[k], ref_dft(pred - target, k), atol=1e-12)
    np.testing.assert_allclose(r, spectrum(pred) - spectrum(target), atol=1e-12)
    # float32 inputs are promoted before subtracting
    p32 = pred.astype(np.float32)
    np.testing.assert_allclose(residual_spectrum(p32, target), spectrum(p32.astype(np.float64) - target))


# --------------------------------------------------------------------------- 2D radial bands


def image_grid(h, w):
    """Row-major (x, y) = (col/W, row/H), written out independently of the package."""
    return np.array([[c / w, r / h] for r in range(h) for c in range(w)])


def cosine_2d(h, w, kx, ky, phase=0.0):
    xy = image_grid(h, w)
    return np.cos(2 * np.pi * (kx * xy[:, 0] + ky * xy[:, 1]) + phase)


def test_radial_band_edges():
    np.testing.assert_allclose(
        radial_band_edges((64, 64), 8), [*(b * 32 / 7 for b in range(8)), np.sqrt(2) * 32], rtol=1e-15
    )
    np.testing.assert_array_equal(radial_band_edges((64, 64), 5), [0, 8, 16, 24, 32, np.hypot(32, 32)])
    np.testing.assert_array_equal(radial_band_edges((32, 48), 3), [0, 8, 16, np.hypot(16, 24)])
    with pytest.raises(ConfigError, match="got 1"):
        radial_band_edges((64, 64), 1)
    with pytest.raises(ConfigError):
        radial_band_edges((64,), 8)


@pytest.mark.parametrize("shape,n_bands,width", [((64, 64), 5, 8), ((32, 48), 5, 4), ((16, 16), 3, 4)])
def test_radial_bands_against_integer_reference(shape, n_bands, width):
    h, w = shape
    bands = radial_bands(shape, n_bands)
    assert bands.shape == (h, w)
    nyq2 = (min(h, w) // 2) ** 2
    for row in range(h):
        for col in range(w):
            ky = row if row < h / 2 else row - h  # fftfreq order
            kx = col if col < w / 2 else col - w
            r2 = kx * kx + ky * ky
            if r2 == 0:
                expected = -1  # DC: no band
            elif r2 > nyq2:
                expected = n_bands - 1  # corners
            else:  # [b·width, (b+1)·width), radius ν joining the last inner band
                expected = min(max(b for b in range(n_bands) if (b * width) ** 2 <= r2), n_bands - 2)
            assert bands[row, col] == expected, (row, col)


@pytest.mark.parametrize(
    "kx,ky,band",
    [
        (3, 4, 1),  # |k| = 5 in [32/7, 64/7)
        (1, 0, 0),
        (0, 32, 6),  # axis Nyquist: last inner band
        (20, 30, 7),  # |k| ≈ 36.1 > 32: corner band
        (-13, 9, 3),  # |k| ≈ 15.8 in [96/7, 128/7)
    ],
)
def test_pure_cosine_energy_in_its_band_only(kx, ky, band):
    y = cosine_2d(64, 64, kx, ky, phase=0.3)[:, None]
    energy = radial_band_energy(y, (64, 64), 8)
    total = np.mean(y**2) - np.mean(y) ** 2  # Parseval, DC removed
    np.testing.assert_allclose(energy[band], total, rtol=1e-12)
    assert np.delete(energy, band).max() < 1e-25
    err = radial_band_error(np.zeros_like(y), y, (64, 64), 8)
    assert err[band] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(np.delete(err, band)).all()  # no target energy elsewhere
    # the residual of a prediction that gets another band wrong lands only in that band
    other = cosine_2d(64, 64, 0, 2)[:, None]
    res = radial_band_energy((y + other) - y, (64, 64), 8)
    assert res[0] == pytest.approx(0.5) and np.delete(res, 0).max() < 1e-25


def test_band_energy_matches_explicit_dft():
    rng = np.random.default_rng(0)
    h, w, c = 6, 8, 2
    v = rng.standard_normal((h * w, c))
    img = v.reshape(h, w, c)
    n_bands = 3
    bands = radial_bands((h, w), n_bands)
    expected = np.zeros(n_bands)
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    for u in range(h):
        for k in range(w):
            basis = np.exp(-2j * np.pi * (u * rows / h + k * cols / w))
            coeff = (basis[:, :, None] * img).sum(axis=(0, 1)) / (h * w)
            if bands[u, k] >= 0:
                expected[bands[u, k]] += np.sum(np.abs(coeff) ** 2)
    np.testing.assert_allclose(radial_band_energy(v, (h, w), n_bands), expected, rtol=1e-12)
    # Parseval: bands + DC = mean square, summed over channels
    dc = np.sum(img.mean(axis=(0, 1)) ** 2)
    np.testing.assert_allclose(expected.sum() + dc, np.sum(np.mean(v**2, axis=0)), rtol=1e-12)
    # the layouts (N, C), (H, W, C), (N,) and (H, W) agree
    np.testing.assert_allclose(radial_band_energy(img, (h, w), n_bands), expected, rtol=1e-12)
    one = radial_band_energy(v[:, 0], (h, w), n_bands)
    np.testing.assert_allclose(radial_band_energy(img[:, :, 0], (h, w), n_bands), one, rtol=1e-12)


def test_radial_band_error_limits_and_scaling():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 255, (64 * 64, 3)) / 255
    np.testing.assert_array_equal(radial_band_error(y.copy(), y, (64, 64)), np.zeros(8))
    np.testing.assert_allclose(radial_band_error(np.zeros_like(y), y, (64, 64)), np.ones(8), atol=1e-12)
    np.testing.assert_allclose(radial_band_error(0.25 * y, y, (64, 64)), np.full(8, 0.5625), atol=1e-12)
    # a constant offset is DC only: no band sees it
    np.testing.assert_allclose(radial_band_error(y + 0.2, y, (64, 64)), np.zeros(8), atol=1e-20)
    # channels add energies: channel 1 learned, channel 0 not, same spectrum -> 1/2
    two = np.stack([y[:, 0], y[:, 0]], axis=1)
    pred = np.stack([np.zeros(4096), y[:, 0]], axis=1)
    np.testing.assert_allclose(radial_band_error(pred, two, (64, 64), 4), np.full(4, 0.5), atol=1e-12)
    with pytest.raises(ConfigError):
        radial_band_error(y[:100], y[:100], (64, 64))
    with pytest.raises(ConfigError):
        radial_band_error(y[:, :2], y, (64, 64))


def test_psnr_by_hand():
    y = np.zeros((4, 1))
    assert psnr(y + 0.1, y) == pytest.approx(20.0, abs=1e-12)
    pred = np.array([[0.1], [0.3], [0.0], [0.0]])  # MSE = (0.01 + 0.09) / 4 = 0.025
    assert psnr(pred, y) == pytest.approx(10 * np.log10(1 / 0.025), abs=1e-12)
    assert psnr(pred, y) == pytest.approx(16.020599913279625, abs=1e-12)
    assert psnr(pred * 255, y, data_range=255.0) == pytest.approx(16.020599913279625, abs=1e-9)
    assert psnr(y, y) == float("inf")
    assert isinstance(psnr(pred, y), float)
    with pytest.raises(ConfigError, match="got 0"):
        psnr(pred, y, data_range=0.0)


def test_one_dimensional_target_against_column_prediction_is_not_broadcast():
    """``(N, 1)`` against ``(N,)`` is the same signal (it used to broadcast to ``(N, N)``)."""
    y = tone_target(64, FREQS, [0.1, 0.2, 0.3])
    fc = frequency_convergence(y, y[:, 0], FREQS)
    np.testing.assert_allclose(fc.rel_error, 0.0, atol=1e-12)
    np.testing.assert_allclose(fc.learned_fraction, 1.0, atol=1e-12)
    half = frequency_convergence(0.5 * y[:, 0], y, FREQS)
    np.testing.assert_allclose(half.rel_error, 0.5, atol=1e-12)
    with pytest.raises(ConfigError, match="differs"):
        frequency_convergence(y[:32], y, FREQS)
    with pytest.raises(ConfigError, match="differs"):
        frequency_convergence(np.repeat(y, 2, axis=1), y, FREQS)


@pytest.mark.parametrize("freqs", [(3.5,), (-1,), (33,), (float("nan"),), (True,), ((3, 7),), "3"])
def test_bad_frequencies_are_config_errors(freqs):
    """Non-integer, negative (used to wrap round to the top bin) or above-Nyquist frequencies."""
    y = tone_target(64, FREQS, [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="frequencies must be"):
        frequency_convergence(y, y, freqs)
    # whole floats and NumPy integers are fine; N // 2 is the top bin
    fc = frequency_convergence(y, y, np.array([3.0, 32]))
    np.testing.assert_array_equal(fc.freqs, [3, 32])


def test_frequency_without_target_energy_gives_nan_relative_measures():
    """Dividing by a round-off ``|Y(k)|`` gave arbitrary numbers; now the relative measures are NaN."""
    y = tone_target(128, FREQS, [0.1, 0.2, 0.3])
    rng = np.random.default_rng(0)
    pred = y + 0.01 * rng.standard_normal(y.shape)
    fc = frequency_convergence(pred, y, (3, 5, 20))
    assert np.isfinite(fc.rel_error[[0, 2]]).all()
    for values in (fc.rel_error, fc.learned_fraction, fc.magnitude_error):
        assert np.isnan(values[1])
    np.testing.assert_allclose(fc.abs_error[1], np.abs(ref_dft(pred, 5))[0], rtol=1e-10)
    assert np.isnan(frequency_convergence(pred, np.zeros_like(y), FREQS).rel_error).all()


def test_first_epoch_below_checks_shapes():
    with pytest.raises(ConfigError, match="one row per epoch"):
        first_epoch_below(np.array([0, 10, 20]), np.array([0.5, 0.05, 0.01]), 0.1)  # 1-D values
    with pytest.raises(ConfigError, match="one row per epoch"):
        first_epoch_below(np.array([0, 10]), np.ones((3, 2)), 0.1)


@pytest.mark.parametrize("n_bands", [2.5, True, "8"])
def test_non_integer_band_count_is_config_error(n_bands):
    with pytest.raises(ConfigError, match="integer >= 2"):
        radial_band_edges((64, 64), n_bands)
