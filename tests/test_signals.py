"""Target signals: the tone mixture of spec §1.3 and the power-law signal, against their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from specbias.errors import ConfigError
from specbias.signals import PAPER_FREQS, V1_FREQS, PowerLaw1D, ToneMixture, grid_1d


def test_grid_1d():
    t = grid_1d(2048)
    assert t.shape == (2048, 1) and t.dtype == np.float64
    np.testing.assert_array_equal(t[:, 0], [n / 2048 for n in range(2048)])
    assert t.max() < 1.0 and t[1, 0] - t[0, 0] == 1 / 2048
    with pytest.raises(ConfigError):
        grid_1d(1)


def test_paper_frequencies():
    assert PAPER_FREQS == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70)
    assert V1_FREQS == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert ToneMixture().n == 2048 and ToneMixture().freqs == PAPER_FREQS


def test_tone_mixture_matches_formula():
    sig = ToneMixture(n=256, freqs=(2, 5, 9)).build(seed=4)
    phases = sig.arrays["phases"]
    assert phases.shape == (3,) and ((phases >= 0) & (phases < 1)).all()
    t = np.arange(256) / 256
    expected = sum(np.sin(2 * np.pi * k * t + 2 * np.pi * p) for k, p in zip((2, 5, 9), phases))
    assert sig.y.shape == (256, 1) and sig.t.shape == (256, 1)
    np.testing.assert_allclose(sig.y[:, 0], expected, atol=1e-12)
    assert sig.freqs == (2, 5, 9) and sig.n == 256
    np.testing.assert_array_equal(sig.arrays["amplitudes"], [1, 1, 1])


def test_paper_target_statistics():
    sig = ToneMixture().build(seed=0)
    assert np.abs(sig.y).max() <= 14
    np.testing.assert_allclose(np.sqrt(np.mean(sig.y**2)), np.sqrt(7), rtol=1e-10)
    spec = np.abs(np.fft.rfft(sig.y[:, 0])) / 2048
    on = np.zeros(spec.size, bool)
    on[list(PAPER_FREQS)] = True
    np.testing.assert_allclose(spec[on], 0.5, atol=1e-10)
    assert spec[~on].max() < 1e-10


def test_amplitudes():
    sig = ToneMixture(n=128, freqs=(3, 4), amplitudes=(2.0, 0.5)).build(seed=1)
    spec = np.abs(np.fft.rfft(sig.y[:, 0])) / 128
    np.testing.assert_allclose(spec[[3, 4]], [1.0, 0.25], atol=1e-12)


def test_phase_modes():
    per_run = ToneMixture(n=128, freqs=(3, 7))
    a, b, a2 = per_run.build(1), per_run.build(2), per_run.build(1)
    np.testing.assert_array_equal(a.y, a2.y)
    assert not np.allclose(a.arrays["phases"], b.arrays["phases"])
    shared = ToneMixture(n=128, freqs=(3, 7), phases="shared")
    np.testing.assert_array_equal(shared.build(1).y, shared.build(2).y)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 1},
        {"freqs": ()},
        {"n": 64, "freqs": (32,)},
        {"n": 64, "freqs": (0,)},
        {"n": 64, "freqs": (-3,)},
        {"freqs": (5, 10), "amplitudes": (1.0,)},
        {"phases": "fixed"},
    ],
)
def test_tone_mixture_rejects(kwargs):
    with pytest.raises(ConfigError):
        ToneMixture(**kwargs)


def test_tone_mixture_accepts_highest_bin_below_nyquist():
    ToneMixture(n=64, freqs=(31,))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_power_law_signal(alpha):
    n = 256
    sig = PowerLaw1D(n=n, alpha=alpha).build(seed=3)
    assert sig.y.shape == (n, 1)
    np.testing.assert_allclose(np.sqrt(np.mean(sig.y**2)), 1.0, rtol=1e-12)
    k = np.arange(1, n // 2)
    spec = np.abs(np.fft.rfft(sig.y[:, 0]))[1 : n // 2]
    ratio = spec / k.astype(float) ** (-alpha)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)  # amplitude ∝ k^-α
    assert abs(np.fft.rfft(sig.y[:, 0])[0]) < 1e-9 and abs(np.fft.rfft(sig.y[:, 0])[n // 2]) < 1e-9
    np.testing.assert_array_equal(sig.y, PowerLaw1D(n=n, alpha=alpha).build(seed=3).y)
    assert not np.allclose(sig.y, PowerLaw1D(n=n, alpha=alpha).build(seed=4).y)
    with pytest.raises(ConfigError):
        PowerLaw1D(n=3)
