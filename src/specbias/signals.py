"""Target signals sampled on a grid of coordinates.

A :class:`Signal` holds the sampling coordinates ``t`` (shape ``(N, d)``, each coordinate in
``[0, 1)``), the target values ``y`` (shape ``(N, C)``), the grid shape (``(N,)`` in 1D, ``(H, W)``
for images) and the arrays that describe how the target was drawn (kept with the run so that every
result can be regenerated).

1D targets
----------
* :class:`ToneMixture` -- the paper's target (Lazzari & Liu 2023, §1.3 of the spec; after
  Rahaman et al. 2019): ``y(t) = Σ_k A_k sin(2πkt + 2πφ_k)`` on ``t_n = n/N`` without the
  endpoint, so every integer frequency falls exactly on an FFT bin.
* :class:`PowerLaw1D` -- Tancik et al. (2020)'s random 1D signal: random phases on every FFT bin
  with amplitude ``k^{-α}``, normalised to unit RMS.
* :class:`Chirp` and :class:`Burst` -- targets whose *local* frequency varies along ``t`` (X4, the
  paper's "spatial information of the signal"): a linear chirp, and a low tone with a Hann-windowed
  high-frequency burst. Each saves its local frequency ``arrays["local_freq"]`` (cycles per unit of
  ``t``, at every sample), the RMS instantaneous frequency of its components,
  ``f_loc(t) = sqrt(Σ_j a_j(t)² f_j(t)² / Σ_j a_j(t)²)`` with ``a_j(t)`` the local amplitude and
  ``f_j(t)`` the instantaneous frequency of component ``j`` (Gabor's RMS frequency, taken locally; for
  a single component it is that component's instantaneous frequency).

2D targets (spec §1.2)
----------------------
* Pixel order is row-major: the row ``y`` is the outer index and the column ``x`` the inner one,
  so flat index ``= row·W + col`` and ``y.reshape(H, W, C)`` gives ``[row, col]``. The input
  vector is ``(x, y) = (col/W, row/H)`` (:func:`grid_2d`): raw ``[0, 1)`` coordinates without the
  endpoint, ``x`` varying fastest.
* :class:`RandomImage` -- the paper's main-text target (Lazzari & Liu 2023, §3): every entry an
  independent uniform integer ``k ∈ {0, …, 254}``, divided by 255. The reference redraws it every
  run and never saves it; here it is drawn from the run's ``"signal"`` stream and saved.
* :class:`NaturalImage` -- a scikit-image bundled photograph (those that load offline) or a
  PNG/JPEG file, centre-cropped to a square and **area-averaged** to ``size × size`` (spec §9.12):
  output pixel ``(i, j)`` is the mean of the source over the square
  ``[i·s, (i+1)·s) × [j·s, (j+1)·s)`` with ``s = side/size``, source pixels that straddle an edge
  weighted by the fraction they overlap. For an integer ratio this is the exact block mean (and
  what PIL's ``Image.resize(..., BOX)`` computes); it is done in float64 with NumPy.
* :func:`held_out_split` (alias :func:`offset_grids`) -- the generalisation protocol of Tancik
  et al. (2020), who train on a regularly spaced quarter of the pixels: from an image of side
  ``2S`` train on the pixels with even ``(row, col)`` and test on those with odd ``(row, col)``
  (the training grid shifted by half its spacing on both axes; the other two quarters are
  unused), both at their coordinates on the fine grid, ``(col/2S, row/2S)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specbias._checks import check_positive
from specbias.errors import ConfigError
from specbias.seeding import rng_for

PAPER_FREQS: tuple[int, ...] = tuple(range(5, 71, 5))
"""K = {5, 10, …, 70}: the 14 unit-amplitude tones of the final paper's 1D target."""

V1_FREQS: tuple[int, ...] = tuple(range(5, 51, 5))
"""K = {5, …, 50}: the 10 tones of the paper's v1 appendix (E3b)."""

SKIMAGE_IMAGES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
)
"""scikit-image ``skimage.data`` images that ship in the wheel and load without network or pooch
(checked with scikit-image 0.26). Colour: astronaut, cat, chelsea, coffee, colorwheel,
hubble_deep_field, immunohistochemistry, retina, rocket; the rest are grayscale."""

LUMINANCE_WEIGHTS: tuple[float, float, float] = (0.2125, 0.7154, 0.0721)
"""RGB → luminance weights (ITU-R BT.709, as ``skimage.color.rgb2gray``)."""


@dataclass(frozen=True)
class Signal:
    """A target sampled on a grid: ``t`` is ``(N, d)`` in ``[0, 1)``, ``y`` is ``(N, C)``.

    ``shape`` is the grid shape: ``(N,)`` in 1D, ``(H, W)`` for an image (row-major, ``N = H·W``).
    """

    t: np.ndarray
    y: np.ndarray
    freqs: tuple[int, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    shape: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return int(self.t.shape[0])


def grid_1d(n: int) -> np.ndarray:
    """``t_n = n/N`` for ``n = 0..N-1``: the paper's 1D grid on ``[0, 1)`` (endpoint excluded)."""
    if n < 2:
        raise ConfigError(f"number of samples must be >= 2, got {n}")
    return (np.arange(n, dtype=np.float64) / n)[:, None]


def grid_2d(h: int, w: int) -> np.ndarray:
    """The ``(H·W, 2)`` pixel coordinates ``(x, y) = (col/W, row/H)`` in row-major order.

    Row ``y`` is the outer index and column ``x`` the inner one (``x`` varies fastest), so
    ``grid_2d(h, w).reshape(h, w, 2)[row, col] == (col/w, row/h)`` (spec §1.2). The endpoint 1 is
    never reached.
    """
    if h < 2 or w < 2:
        raise ConfigError(f"image height and width must be >= 2, got {h}×{w}")
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64) / w, np.arange(h, dtype=np.float64) / h)
    return np.stack((xs.ravel(), ys.ravel()), axis=1)


def _image_signal(image: np.ndarray, **arrays: np.ndarray) -> Signal:
    """A Signal for an ``(H, W, C)`` image in row-major pixel order, the image saved as ``"image"``."""
    h, w, c = image.shape
    return Signal(
        t=grid_2d(h, w),
        y=image.reshape(h * w, c).copy(),
        arrays={"image": image, **arrays},
        shape=(h, w),
    )


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
            shape=(self.n,),
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
        return Signal(
            t=t, y=y[:, None], freqs=(), arrays={"phases": phases, "amplitudes": amps}, shape=(self.n,)
        )


def _check_local_freqs(n: int, **freqs: float) -> None:
    """ConfigError unless every named frequency is finite, > 0 and below the grid's Nyquist ``n/2``."""
    if n < 4:
        raise ConfigError(f"number of samples must be >= 4, got {n}")
    for name, f in freqs.items():
        if not (np.isfinite(f) and 0 < f < n / 2):
            raise ConfigError(f"{name} must be in (0, {n / 2:g}) cycles (below Nyquist for N={n}), got {f}")


@dataclass(frozen=True)
class Chirp:
    """Linear chirp ``y(t) = A sin(2π(f₀ t + (f₁ − f₀) t²/2) + 2πφ)``, ``φ ~ U[0, 1)`` from the run's seed.

    The instantaneous frequency ``f(t) = f₀ + (f₁ − f₀) t`` (cycles per unit of ``t``) sweeps the
    paper's tone range 5…70 by default; it is saved as ``arrays["local_freq"]``.
    """

    n: int = 2048
    f0: float = 5.0
    f1: float = 70.0
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        _check_local_freqs(self.n, f0=self.f0, f1=self.f1)
        check_positive("chirp amplitude", self.amplitude)

    def build(self, seed: int) -> Signal:
        t = grid_1d(self.n)
        phase = float(rng_for(seed, "signal").random())
        cycles = self.f0 * t + 0.5 * (self.f1 - self.f0) * t**2
        y = self.amplitude * np.sin(2 * np.pi * (cycles + phase))
        local = self.f0 + (self.f1 - self.f0) * t[:, 0]
        return Signal(t=t, y=y, arrays={"local_freq": local, "phase": np.array([phase])}, shape=(self.n,))


@dataclass(frozen=True)
class Burst:
    """A low tone with a localised high-frequency burst:
    ``y(t) = sin(2π f_low t + 2πφ₀) + A·w(t)·sin(2π f_high t + 2πφ₁)``, phases ``U[0, 1)`` from the seed.

    ``w(t) = sin²(π (t − c + h/2)/h)`` on ``|t − c| < h/2`` and 0 elsewhere (a Hann window of width
    ``h = width`` centred at ``c = center``), so outside the burst the target is the low tone alone.
    Local frequency (RMS, see the module docstring):
    ``f_loc(t) = sqrt((f_low² + A² w(t)² f_high²) / (1 + A² w(t)²))``.
    """

    n: int = 2048
    low: float = 5.0
    high: float = 60.0
    center: float = 0.5
    width: float = 0.25
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        _check_local_freqs(self.n, low=self.low, high=self.high)
        if (
            not 0 < self.width <= 1
            or not 0 <= self.center - self.width / 2 < self.center + self.width / 2 <= 1
        ):
            raise ConfigError(
                f"burst [center ± width/2] must lie in [0, 1] with width > 0, got center={self.center}, "
                f"width={self.width}"
            )
        check_positive("burst amplitude", self.amplitude)

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """The Hann window ``w(t)`` of the burst."""
        u = (t - self.center + self.width / 2) / self.width
        return np.where((u > 0) & (u < 1), np.sin(np.pi * u) ** 2, 0.0)

    def build(self, seed: int) -> Signal:
        t = grid_1d(self.n)
        phases = rng_for(seed, "signal").random(2)
        w = self.envelope(t[:, 0])
        base = np.sin(2 * np.pi * (self.low * t[:, 0] + phases[0]))
        burst = self.amplitude * w * np.sin(2 * np.pi * (self.high * t[:, 0] + phases[1]))
        aw2 = (self.amplitude * w) ** 2
        local = np.sqrt((self.low**2 + aw2 * self.high**2) / (1 + aw2))
        return Signal(
            t=t,
            y=(base + burst)[:, None],
            arrays={"local_freq": local, "envelope": w, "phases": phases},
            shape=(self.n,),
        )


# --------------------------------------------------------------------------- images


def _check_image_size(size: int) -> None:
    if size < 2:
        raise ConfigError(f"image size must be >= 2 pixels, got {size}")


@dataclass(frozen=True)
class RandomImage:
    """The paper's random image: entries ``k/255`` with ``k ~ U{0..254}`` i.i.d., shape ``size² × C``.

    Drawn from the run's ``"signal"`` stream (the reference never seeds or saves it, bug B1).
    """

    size: int = 64
    channels: int = 3

    def __post_init__(self) -> None:
        _check_image_size(self.size)
        if self.channels < 1:
            raise ConfigError(f"random image channels must be >= 1, got {self.channels}")

    def build(self, seed: int) -> Signal:
        rng = rng_for(seed, "signal")
        image = rng.integers(0, 255, size=(self.size, self.size, self.channels)) / 255.0
        return _image_signal(image)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` averaging matrix: row ``i`` weights input pixel ``j`` by its overlap with
    ``[i·s, (i+1)·s)``, ``s = n_in/n_out``, divided by ``s`` (rows sum to 1)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(1, n_in + 1)[None, :])
    return np.clip(hi - lo, 0.0, None) / (n_in / n_out)


def _center_crop_area_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre crop ``(H, W, C)`` to ``side = min(H, W)`` (offsets ``(H-side)//2``, ``(W-side)//2``),
    then area-average to ``(size, size, C)``."""
    h, w = image.shape[:2]
    side = min(h, w)
    if size > side:
        raise ConfigError(
            f"image size {size} exceeds the {side}-pixel centre crop; area averaging only downsamples"
        )
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    a = _area_weights(side, size)
    rows = np.tensordot(a, crop, axes=(1, 0))  # (size, side, C)
    return np.tensordot(rows, a, axes=(1, 1)).transpose(0, 2, 1)


def _to_unit_range(array: np.ndarray, source: str) -> np.ndarray:
    """Integer/bool image data to float64 in ``[0, 1]`` (8-bit /255, 16-bit /65535)."""
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if array.dtype == np.uint8:
        return array / 255.0
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ConfigError(f"image {source} has integer values outside 0..65535")
        return array / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise ConfigError(f"image {source} has float values outside [0, 1]")
        return array.astype(np.float64)
    raise ConfigError(f"image {source} has unsupported data type {array.dtype}")


def _to_channels(image: np.ndarray, channels: int, source: str) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1..4)`` to ``(H, W, channels)``: gray lifted to RGB by repetition, RGB to
    BT.709 luminance, an alpha channel (2nd of 2, 4th of 4) dropped without compositing."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ConfigError(f"image {source} has shape {image.shape}; need (H, W) or (H, W, 1..4)")
    image = image[:, :, :1] if image.shape[2] in (1, 2) else image[:, :, :3]
    if channels == 1 and image.shape[2] == 3:
        return image @ np.asarray(LUMINANCE_WEIGHTS)[:, None]
    if channels == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def unusable_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a data file ("is a directory", "does not exist", ...), or
    None when it is a readable regular file: the message a user needs instead of "not found"."""
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    if not path.is_file():
        return "is not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def _load_skimage(name: str) -> np.ndarray:
    import skimage.data  # slow to import: only when a bundled image is asked for

    return np.asarray(getattr(skimage.data, name)())


def _load_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            return np.asarray(im)
    except UnidentifiedImageError as err:
        raise ConfigError(f"image file {str(path)!r} is not an image Pillow can read") from err
    except OSError as err:
        raise ConfigError(f"image file {str(path)!r} cannot be read: {err}") from err


@dataclass(frozen=True)
class NaturalImage:
    """A fixed natural image as a ``size × size × channels`` target with values in ``[0, 1]``.

    ``name`` is one of :data:`SKIMAGE_IMAGES` (bundled with scikit-image, loaded offline) or the path
    of an image file (PNG or JPEG; any format Pillow decodes works). The image is centre-cropped to
    a square and area-averaged to ``size`` (see the module docstring; ``size`` larger than the crop
    is refused). Grayscale becomes 3 equal channels for ``channels=3``; RGB becomes BT.709
    luminance for ``channels=1``. ``build(seed)`` ignores the seed: the image is fixed.
    """

    name: str = "astronaut"
    size: int = 64
    channels: int = 3

    def __post_init__(self) -> None:
        _check_image_size(self.size)
        if self.channels not in (1, 3):
            raise ConfigError(f"natural image channels must be 1 or 3, got {self.channels}")
        if self.name in SKIMAGE_IMAGES:
            return
        path = Path(self.name)
        problem = unusable_file(path)
        if problem is None:
            return
        if path.exists() or path.suffix or "/" in self.name or "\\" in self.name:
            raise ConfigError(f"image file {self.name!r} {problem}")
        raise ConfigError(
            f"unknown image {self.name!r}: not an image file nor a bundled scikit-image image "
            f"({', '.join(SKIMAGE_IMAGES)})"
        )

    def load(self) -> np.ndarray:
        """The ``(size, size, channels)`` float64 image."""
        if self.name in SKIMAGE_IMAGES:
            raw, source = _load_skimage(self.name), f"skimage.data.{self.name}"
        else:
            raw, source = _load_file(Path(self.name)), repr(self.name)
        image = _to_channels(_to_unit_range(raw, source), self.channels, source)
        return np.clip(_center_crop_area_resize(image, self.size), 0.0, 1.0)

    def build(self, seed: int) -> Signal:
        del seed  # the image is fixed; the signature matches the other targets
        return _image_signal(self.load())


# --------------------------------------------------------------------------- held-out pixels


@dataclass(frozen=True)
class HeldOut:
    """Training pixels (even row and column) and test pixels (odd row and column) of an image.

    Both halves are ``S_h × S_w`` grids (``shape``) in row-major order; coordinates stay on the
    fine grid. Iterating yields ``t_train, y_train, t_test, y_test``.
    """

    t_train: np.ndarray
    y_train: np.ndarray
    t_test: np.ndarray
    y_test: np.ndarray
    shape: tuple[int, int]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.t_train, self.y_train, self.t_test, self.y_test))


def held_out_split(signal: Signal) -> HeldOut:
    """Split an image of shape ``(2S_h, 2S_w)`` for the Tancik et al. (2020) generalisation test.

    Train on pixels ``(2r, 2c)`` and test on pixels ``(2r+1, 2c+1)``, each with its coordinates on
    the fine grid: ``(2c/2S_w, 2r/2S_h)`` and ``((2c+1)/2S_w, (2r+1)/2S_h)``. The test grid is the
    training grid shifted by half its spacing along both axes.
    """
    if len(signal.shape) != 2:
        raise ConfigError(f"offset grids need an image signal with shape (H, W), got shape {signal.shape}")
    h, w = signal.shape
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise ConfigError(f"offset grids need an even image height and width, got {h}×{w}")
    t = signal.t.reshape(h, w, -1)
    y = signal.y.reshape(h, w, -1)
    return HeldOut(
        t_train=t[0::2, 0::2].reshape(-1, t.shape[2]).copy(),
        y_train=y[0::2, 0::2].reshape(-1, y.shape[2]).copy(),
        t_test=t[1::2, 1::2].reshape(-1, t.shape[2]).copy(),
        y_test=y[1::2, 1::2].reshape(-1, y.shape[2]).copy(),
        shape=(h // 2, w // 2),
    )


offset_grids = held_out_split
"""Alias of :func:`held_out_split` (the name the brief of the 2D extension used)."""
