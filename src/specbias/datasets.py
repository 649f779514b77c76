"""Image classification data for the real-data contrast (E17-E19): bundled digits or a user ``.npz``.

The paper (Lazzari & Liu 2023, spec §6.0) uses MNIST, FashionMNIST, CIFAR10 and CIFAR100 through
torchvision, which cannot be downloaded here. The default is scikit-learn's bundled ``digits``
(1,797 grey 8×8 images of 10 classes, values 0..16), which loads offline; any MNIST-scale set can
be supplied as an ``.npz`` archive:

* ``X``: ``(n, H, W)`` grey images, ``(n, H, W, C)`` channels-last (torchvision's CIFAR arrays) or
  ``(n, C, H, W)`` channels-first with ``C <= 4``, or ``(n, D)`` flat grey images with ``D`` a
  square (MNIST's 784);
* ``y``: ``(n,)`` integer labels (any integers: they are mapped to ``0..K-1`` in sorted order);
* optionally ``X_test`` and ``y_test``, a held-out split of the same layout (torchvision's
  test split); without them a seeded ``test_fraction`` of the examples is held out per run seed.

Normalisation follows the spec's ``ToTensor`` + ``Normalize(0.5, 0.5)``: values are scaled to
``[0, 1]`` by ``(x − min) / (max − min)`` over the whole dataset -- ``/255`` for 8-bit images that
reach black and white, ``/16`` for digits -- then mapped to ``[-1, 1]`` by ``(v − 0.5) / 0.5``.
Images are returned as float32 ``(n, C, H, W)``.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specbias.errors import ConfigError
from specbias.seeding import rng_for
from specbias.signals import unusable_file

DIGITS = "digits"
TEST_FRACTION = 0.2
_NEEDED = "needed: X (n, H, W[, C]) images and y (n,) integer labels"


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: images ``(n, C, H, W)`` in ``[-1, 1]`` (float32) and labels ``0..K-1``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class _Raw:
    """Arrays as read, before the split: images ``(n, C, H, W)``, labels ``0..K-1``."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int


def as_images(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` in ``(n, C, H, W)`` layout from any accepted layout (see the module docstring)."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ConfigError(
                f"{what} has flat rows of {x.shape[1]} values, not a square image; reshape to (n, H, W[, C])"
            )
        return x.reshape(x.shape[0], 1, side, side)
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] <= 4:
        return np.moveaxis(x, -1, 1)
    if x.ndim == 4 and x.shape[1] <= 4:
        return x
    raise ConfigError(
        f"{what} has shape {x.shape}; allowed: (n, H, W), (n, H, W, C), (n, C, H, W) with C <= 4, "
        "or (n, D) with D a square"
    )


def _labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{what} must be ({n},) integer labels, got shape {y.shape} of {y.dtype}")
    return y


def _numeric(x: np.ndarray, what: str) -> np.ndarray:
    real = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == bool
    if not real or x.ndim == 0 or x.shape[0] < 1:
        raise ConfigError(
            f"{what} must be a non-empty array of real numbers, got {x.dtype} of shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ConfigError(f"{what} holds NaN or infinite values")
    return x


def read_npz(path: str) -> _Raw:
    """Read and check a user ``.npz`` (``X``, ``y`` and optionally ``X_test``, ``y_test``)."""
    file = Path(path)
    problem = unusable_file(file)
    if problem == "does not exist":
        raise ConfigError(f"--data {path!r}: no such file")
    if problem is not None:
        raise ConfigError(f"--data {path!r} {problem}")
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array")
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(
            f"--data {path!r} is not a readable NumPy .npz archive ({exc}); {_NEEDED}"
        ) from None
    if not {"X", "y"} <= set(arrays):
        found = ", ".join(sorted(arrays)) or "nothing"
        raise ConfigError(f"--data {path!r} lacks X or y ({_NEEDED}); found: {found}")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ConfigError(f"--data {path!r}: X_test and y_test come together; found only one of them")
    x = as_images(_numeric(arrays["X"], "X"), "X")
    y = _labels(arrays["y"], x.shape[0], "y")
    classes = np.unique(y)
    if classes.size < 2:
        raise ConfigError(f"--data {path!r}: y needs at least 2 classes, got {classes.tolist()}")
    x_test = y_test = None
    if "X_test" in arrays:
        x_test = as_images(_numeric(arrays["X_test"], "X_test"), "X_test")
        y_test = _labels(arrays["y_test"], x_test.shape[0], "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(
                f"X_test images are {x_test.shape[1:]}, X images {x.shape[1:]}; they must match"
            )
        if not np.isin(y_test, classes).all():
            raise ConfigError("y_test has labels that y does not have")
        y_test = np.searchsorted(classes, y_test)
    return _Raw(x, np.searchsorted(classes, y), x_test, y_test, int(classes.size))


def read_digits() -> _Raw:
    """scikit-learn's bundled 8×8 digits (offline)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _Raw(digits.images[:, None], digits.target.astype(np.int64), None, None, 10)


def normalise(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``((x − lo) / (hi − lo) − 0.5) / 0.5``: ``[lo, hi]`` to ``[-1, 1]`` as float32."""
    if not hi > lo:
        raise ConfigError(f"the images are constant (every value {lo}); nothing to classify")
    return (((x.astype(np.float64) - lo) / (hi - lo) - 0.5) / 0.5).astype(np.float32)


def test_size(n: int, test_fraction: float) -> int:
    """``round(test_fraction·n)`` held-out examples; ConfigError unless both sides keep examples."""
    n_test = round(test_fraction * n)
    if not 0 < test_fraction < 1 or not 1 <= n_test <= n - 2:
        raise ConfigError(
            f"test fraction {test_fraction} of {n} examples leaves no usable train/test split; "
            "allowed: a fraction in (0, 1) that holds out at least one example and keeps two"
        )
    return n_test


def split(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/test split of ``n`` examples (sorted indices of each side)."""
    n_test = test_size(n, test_fraction)
    order = rng.permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (part of a run's cache key, so an edited file is not stale)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class DataSpec:
    """Which dataset a run uses and its sizes: ``source`` is ``"digits"`` or an ``.npz`` path.

    Build it with :meth:`of`, which reads and checks the data once and records the file's digest
    and the sizes the cost model needs; :meth:`load` gives the split data of a run seed.
    """

    source: str = DIGITS
    digest: str = ""
    test_fraction: float = TEST_FRACTION
    n_train: int = 0
    n_test: int = 0
    image_shape: tuple[int, int, int] = (1, 8, 8)
    n_classes: int = 10

    @property
    def name(self) -> str:
        return self.source if self.source == DIGITS else Path(self.source).stem

    @classmethod
    def of(cls, source: str | None, test_fraction: float = TEST_FRACTION) -> DataSpec:
        """The spec of ``source`` (None: digits), checked; ConfigError for a bad file."""
        source = source or DIGITS
        raw = read_digits() if source == DIGITS else read_npz(source)
        if raw.x_test is None:
            n_test = test_size(raw.x.shape[0], test_fraction)
            n_train = raw.x.shape[0] - n_test
        else:
            n_train, n_test = raw.x.shape[0], raw.x_test.shape[0]
        c, h, w = raw.x.shape[1:]
        return cls(
            source=source if source == DIGITS else str(Path(source).resolve()),
            digest="" if source == DIGITS else file_digest(source),
            test_fraction=test_fraction,
            n_train=int(n_train),
            n_test=int(n_test),
            image_shape=(int(c), int(h), int(w)),
            n_classes=raw.n_classes,
        )

    def load(self, seed: int) -> Dataset:
        """Read, normalise to ``[-1, 1]`` and split (the stream ``(seed, "split")``); ConfigError if
        the file is no longer the one this spec (and so the run's cache key) was made from."""
        if self.source != DIGITS:
            if not Path(self.source).is_file():
                raise ConfigError(f"--data {self.source!r}: no such file")
            if file_digest(self.source) != self.digest:
                raise ConfigError(
                    f"--data {self.source!r} changed since the run was planned (digest {self.digest}); "
                    "plan the run again"
                )
        raw = read_digits() if self.source == DIGITS else read_npz(self.source)
        if raw.x_test is None:
            train, test = split(raw.x.shape[0], self.test_fraction, rng_for(seed, "split"))
            x_train, y_train, x_test, y_test = raw.x[train], raw.y[train], raw.x[test], raw.y[test]
        else:
            x_train, y_train, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
        lo = float(min(x_train.min(), x_test.min()))
        hi = float(max(x_train.max(), x_test.max()))
        return Dataset(
            name=self.name,
            x_train=normalise(x_train, lo, hi),
            y_train=y_train.astype(np.int64),
            x_test=normalise(x_test, lo, hi),
            y_test=y_test.astype(np.int64),
            n_classes=raw.n_classes,
        )
