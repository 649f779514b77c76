"""Per-frequency convergence against an explicit DFT and closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from specbias.metrics.spectrum import first_epoch_below, frequency_convergence, residual_spectrum, spectrum


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
