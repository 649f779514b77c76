"""Target signals: the tone mixture of spec §1.3 and the power-law signal, against their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from specbias.errors import ConfigError
from specbias.signals import (
    PAPER_FREQS,
    SKIMAGE_IMAGES,
    V1_FREQS,
    Burst,
    Chirp,
    HeldOut,
    NaturalImage,
    PowerLaw1D,
    RandomImage,
    ToneMixture,
    grid_1d,
    grid_2d,
    held_out_split,
    offset_grids,
)


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


def test_1d_builders_set_shape():
    assert ToneMixture(n=128, freqs=(3,)).build(0).shape == (128,)
    assert PowerLaw1D(n=64).build(0).shape == (64,)


# --------------------------------------------------------------------------- 2D grid


@pytest.mark.parametrize("h,w", [(3, 5), (4, 4), (64, 64)])
def test_grid_2d_is_row_major_with_x_fastest(h, w):
    g = grid_2d(h, w)
    assert g.shape == (h * w, 2) and g.dtype == np.float64
    img = g.reshape(h, w, 2)
    for row in range(h):
        for col in range(w):
            assert tuple(img[row, col]) == (col / w, row / h)
            assert tuple(g[row * w + col]) == (col / w, row / h)
    assert g[1, 0] - g[0, 0] == 1 / w and g[1, 1] == 0.0  # x varies fastest
    assert g.max() < 1.0 and g.min() == 0.0


@pytest.mark.parametrize("h,w", [(1, 5), (5, 1), (0, 0)])
def test_grid_2d_rejects_degenerate(h, w):
    with pytest.raises(ConfigError, match=f"{h}×{w}"):
        grid_2d(h, w)


# --------------------------------------------------------------------------- random image


def test_random_image_values_and_layout():
    sig = RandomImage(size=64, channels=3).build(seed=7)
    assert sig.shape == (64, 64) and sig.y.shape == (4096, 3) and sig.n == 4096
    k = sig.y * 255
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    k = np.round(k).astype(int)
    assert k.min() == 0 and k.max() == 254  # U{0..254}: 255 never drawn
    np.testing.assert_allclose(np.bincount(k.ravel(), minlength=255).mean(), 12288 / 255)
    np.testing.assert_array_equal(sig.t, grid_2d(64, 64))
    image = sig.arrays["image"]
    assert image.shape == (64, 64, 3)
    for row, col in [(0, 0), (0, 63), (5, 9), (63, 0), (63, 63)]:
        np.testing.assert_array_equal(image[row, col], sig.y[row * 64 + col])
        np.testing.assert_array_equal(sig.t[row * 64 + col], [col / 64, row / 64])


def test_random_image_seeds():
    a, b, a2 = (RandomImage(size=16).build(s) for s in (1, 2, 1))
    np.testing.assert_array_equal(a.y, a2.y)
    assert not np.allclose(a.y, b.y)
    gray = RandomImage(size=8, channels=1).build(3)
    assert gray.y.shape == (64, 1) and gray.arrays["image"].shape == (8, 8, 1)


@pytest.mark.parametrize("kwargs", [{"size": 1}, {"size": 0}, {"channels": 0}])
def test_random_image_rejects(kwargs):
    with pytest.raises(ConfigError):
        RandomImage(**kwargs)


# --------------------------------------------------------------------------- natural image


def block_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Explicit mean over each ``b×b`` block of a square ``(S, S, C)`` image, ``b = S/size``."""
    b = image.shape[0] // size
    out = np.zeros((size, size, image.shape[2]))
    for i in range(size):
        for j in range(size):
            out[i, j] = image[i * b : (i + 1) * b, j * b : (j + 1) * b].mean(axis=(0, 1))
    return out


def write_png(path, array: np.ndarray) -> str:
    from PIL import Image

    Image.fromarray(array).save(path)
    return str(path)


def test_skimage_list_is_offline_and_loads():
    assert {"astronaut", "camera", "coffee", "chelsea", "cat", "rocket", "brick", "grass"} <= set(
        SKIMAGE_IMAGES
    )
    assert {"gravel", "moon", "coins"} <= set(SKIMAGE_IMAGES)
    for name in ("coffee", "coins", "moon"):  # colour 400×600, gray 303×384, gray 512²
        sig = NaturalImage(name, size=16).build(0)
        assert sig.y.shape == (256, 3) and sig.shape == (16, 16)
        assert sig.y.min() >= 0.0 and sig.y.max() <= 1.0 and sig.y.std() > 0.01


def test_astronaut_is_a_block_mean_of_the_bundled_image():
    import skimage.data

    raw = skimage.data.astronaut() / 255.0  # 512×512×3
    sig = NaturalImage("astronaut", size=32).build(seed=0)
    assert sig.shape == (32, 32) and sig.y.shape == (1024, 3)
    expected = block_mean(raw, 32)
    np.testing.assert_allclose(sig.arrays["image"], expected, atol=1e-12)
    np.testing.assert_allclose(sig.y, expected.reshape(-1, 3), atol=1e-12)
    np.testing.assert_array_equal(sig.t, grid_2d(32, 32))
    np.testing.assert_array_equal(sig.y, NaturalImage("astronaut", size=32).build(seed=9).y)  # seed ignored
    # RGB -> one channel is BT.709 luminance
    gray = NaturalImage("astronaut", size=32, channels=1).build(0)
    assert gray.y.shape == (1024, 1)
    np.testing.assert_allclose(gray.y[:, 0], sig.y @ [0.2125, 0.7154, 0.0721], atol=1e-12)


def test_grayscale_bundled_image_channels():
    import skimage.data

    three = NaturalImage("camera", size=16, channels=3).build(0)
    one = NaturalImage("camera", size=16, channels=1).build(0)
    assert three.y.shape == (256, 3) and one.y.shape == (256, 1)
    np.testing.assert_array_equal(three.y[:, 0], three.y[:, 1])
    np.testing.assert_array_equal(three.y[:, 0], three.y[:, 2])
    np.testing.assert_allclose(one.y[:, 0], three.y[:, 0], atol=1e-15)
    np.testing.assert_allclose(
        one.arrays["image"][..., 0], block_mean(skimage.data.camera()[..., None] / 255, 16)[..., 0]
    )


def test_png_centre_crop_and_box_resize(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 18, 3), dtype=np.uint8)  # H=12, W=18: crop cols 3..14
    path = write_png(tmp_path / "rgb.png", pixels)
    sig = NaturalImage(path, size=4).build(0)
    crop = pixels[:, 3:15] / 255.0
    expected = block_mean(crop, 4)  # 3×3 blocks
    np.testing.assert_allclose(sig.arrays["image"], expected, atol=1e-12)
    # PIL's BOX filter on float data agrees at an integer ratio
    pil = np.stack(
        [
            np.asarray(
                Image.fromarray(crop[..., c].astype(np.float32), mode="F").resize(
                    (4, 4), Image.Resampling.BOX
                )
            )
            for c in range(3)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(sig.arrays["image"], pil, atol=1e-6)
    # a tall image crops rows
    tall = write_png(tmp_path / "tall.png", pixels.transpose(1, 0, 2))  # 18×12: crop rows 3..14
    np.testing.assert_allclose(
        NaturalImage(tall, size=4).build(0).arrays["image"], block_mean(crop.transpose(1, 0, 2), 4)
    )


def test_png_area_average_at_a_non_integer_ratio(tmp_path):
    p = np.array([[0, 90, 180], [30, 120, 210], [60, 150, 240]], dtype=np.uint8)
    path = write_png(tmp_path / "gray.png", p)
    out = NaturalImage(path, size=2, channels=1).load()[..., 0] * 255
    # output pixel 0 covers source [0, 1.5): pixel 0 fully and pixel 1 half, in each axis
    w = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    expected = np.array([[(np.outer(w[a], w[b]) * p).sum() / 2.25 for b in range(2)] for a in range(2)])
    np.testing.assert_allclose(out, expected, atol=1e-9)
    np.testing.assert_allclose(out[0, 0], (0 + 45 + 15 + 30) / 2.25, atol=1e-9)


def test_gray_png_is_lifted_and_alpha_dropped(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    sig = NaturalImage(write_png(tmp_path / "g.png", gray), size=4).build(0)
    expected = block_mean(gray[..., None] / 255.0, 4)[..., 0]
    for c in range(3):
        np.testing.assert_allclose(sig.arrays["image"][..., c], expected, atol=1e-12)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    got = NaturalImage(write_png(tmp_path / "a.png", rgba), size=4).load()
    np.testing.assert_allclose(got, block_mean(rgba[..., :3] / 255.0, 4), atol=1e-12)


def test_natural_image_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.png"):
        NaturalImage(str(tmp_path / "nope.png"))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    with pytest.raises(ConfigError, match=r"notes\.png"):
        NaturalImage(str(text), size=4).build(0)
    with pytest.raises(ConfigError, match="lena"):
        NaturalImage("lena")
    with pytest.raises(ConfigError, match="size"):
        NaturalImage("camera", size=1)
    with pytest.raises(ConfigError, match="channels"):
        NaturalImage("camera", channels=2)
    small = write_png(tmp_path / "small.png", np.zeros((6, 8), np.uint8))
    with pytest.raises(ConfigError, match="16"):
        NaturalImage(small, size=16).build(0)


# --------------------------------------------------------------------------- held-out grids


def test_held_out_split_even_and_odd_pixels():
    sig = RandomImage(size=8, channels=3).build(2)
    split = held_out_split(sig)
    assert isinstance(split, HeldOut) and split.shape == (4, 4)
    t_tr, y_tr, t_te, y_te = split
    assert t_tr.shape == t_te.shape == (16, 2) and y_tr.shape == y_te.shape == (16, 3)
    image = sig.arrays["image"]
    for r in range(4):
        for c in range(4):
            np.testing.assert_array_equal(t_tr[r * 4 + c], [2 * c / 8, 2 * r / 8])
            np.testing.assert_array_equal(y_tr[r * 4 + c], image[2 * r, 2 * c])
            np.testing.assert_array_equal(t_te[r * 4 + c], [(2 * c + 1) / 8, (2 * r + 1) / 8])
            np.testing.assert_array_equal(y_te[r * 4 + c], image[2 * r + 1, 2 * c + 1])
    assert offset_grids is held_out_split


def test_held_out_split_rejects():
    with pytest.raises(ConfigError, match="7×7"):
        held_out_split(RandomImage(size=7).build(0))
    with pytest.raises(ConfigError):
        held_out_split(ToneMixture(n=64, freqs=(3,)).build(0))


# --------------------------------------------------------------------------- chirp and burst (X4)


def test_chirp_matches_formula_and_local_frequency_is_the_phase_derivative():
    sig = Chirp(n=512, f0=3.0, f1=40.0).build(seed=2)
    t = np.arange(512) / 512
    phase = sig.arrays["phase"][0]
    cycles = 3.0 * t + 0.5 * 37.0 * t**2
    np.testing.assert_allclose(sig.y[:, 0], np.sin(2 * np.pi * (cycles + phase)), atol=1e-12)
    assert sig.y.shape == (512, 1) and sig.shape == (512,) and sig.freqs == ()
    # instantaneous frequency = d(cycles)/dt, checked by central differences
    h = 1e-6
    deriv = (3.0 * (t + h) + 18.5 * (t + h) ** 2 - 3.0 * (t - h) - 18.5 * (t - h) ** 2) / (2 * h)
    np.testing.assert_allclose(sig.arrays["local_freq"], deriv, rtol=1e-7)
    assert Chirp(n=512).build(2).arrays["phase"] != Chirp(n=512).build(3).arrays["phase"]


def test_burst_is_the_low_tone_outside_its_window_and_its_rms_frequency_inside():
    spec = Burst(n=1024, low=4.0, high=50.0, center=0.4, width=0.2, amplitude=2.0)
    sig = spec.build(seed=5)
    t = np.arange(1024) / 1024
    p0, p1 = sig.arrays["phases"]
    w = sig.arrays["envelope"]
    outside = (t <= 0.3) | (t >= 0.5)
    assert np.all(w[outside] < 1e-12) and np.all(w[~outside] > 0) and w.max() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(sig.y[outside, 0], np.sin(2 * np.pi * (4.0 * t[outside] + p0)), atol=1e-11)
    np.testing.assert_allclose(sig.arrays["local_freq"][outside], 4.0)
    expected = sig.y[:, 0] - np.sin(2 * np.pi * (4.0 * t + p0))
    np.testing.assert_allclose(expected, 2.0 * w * np.sin(2 * np.pi * (50.0 * t + p1)), atol=1e-12)
    k = int(np.argmax(w))  # the window's peak: amplitudes 1 and 2·w
    a2 = (2.0 * w[k]) ** 2
    assert sig.arrays["local_freq"][k] == pytest.approx(np.sqrt((16.0 + a2 * 2500.0) / (1 + a2)))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (Chirp, {"n": 100, "f1": 50.0}),
        (Chirp, {"f0": 0.0}),
        (Chirp, {"amplitude": -1.0}),
        (Burst, {"n": 64, "high": 40.0}),
        (Burst, {"center": 0.95, "width": 0.2}),
        (Burst, {"width": 0.0}),
    ],
)
def test_chirp_and_burst_reject(cls, kwargs):
    with pytest.raises(ConfigError):
        cls(**kwargs)
