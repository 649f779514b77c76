"""Real-data loading: bundled digits, user .npz layouts and errors, normalisation, seeded splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from specbias.datasets import DataSpec, as_images, normalise, split
from specbias.errors import ConfigError
from specbias.seeding import rng_for


def save(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.uint8)


def test_digits_spec_and_load():
    spec = DataSpec.of(None)
    assert (spec.source, spec.n_train, spec.n_test, spec.image_shape, spec.n_classes) == (
        "digits", 1438, 359, (1, 8, 8), 10
    )  # fmt: skip
    data = spec.load(0)
    assert data.x_train.shape == (1438, 1, 8, 8) and data.x_test.shape == (359, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    # Normalize(0.5, 0.5) after /16, checked image by image against scikit-learn's arrays
    ref = load_digits()
    expected = (ref.images / 16.0 - 0.5) / 0.5
    lookup = {tuple(row): k for k, row in enumerate(ref.data.astype(int))}
    for x, y in zip(data.x_test[:50], data.y_test[:50]):
        k = lookup[tuple(np.rint((x[0].ravel() + 1) * 8).astype(int))]
        np.testing.assert_allclose(x[0], expected[k], atol=1e-6)
        assert y == ref.target[k]
    assert min(data.x_train.min(), data.x_test.min()) == -1.0
    assert max(data.x_train.max(), data.x_test.max()) == 1.0


def test_split_is_seeded_disjoint_and_complete():
    a_train, a_test = split(100, 0.2, np.random.default_rng(1))
    b_train, _ = split(100, 0.2, np.random.default_rng(1))
    c_train, _ = split(100, 0.2, np.random.default_rng(2))
    np.testing.assert_array_equal(a_train, b_train)
    assert not np.array_equal(a_train, c_train)
    assert a_test.size == 20 and np.union1d(a_train, a_test).tolist() == list(range(100))
    assert np.intersect1d(a_train, a_test).size == 0
    d0, d1 = DataSpec.of(None).load(0), DataSpec.of(None).load(1)
    assert not np.array_equal(d0.y_train, d1.y_train)
    np.testing.assert_array_equal(d0.x_train, DataSpec.of(None).load(0).x_train)


@pytest.mark.parametrize(
    "shape,make",
    [
        ((5, 6, 7), lambda x: x[:, None]),
        ((5, 6, 7, 3), lambda x: x.transpose(0, 3, 1, 2)),
        ((5, 3, 6, 7), lambda x: x),
        ((5, 49), lambda x: x.reshape(5, 1, 7, 7)),
    ],
)
def test_layouts_become_channels_first(shape, make):
    x = np.arange(np.prod(shape)).reshape(shape)
    out = as_images(x, "X")
    np.testing.assert_array_equal(out, make(x))
    if len(shape) == 4 and shape[-1] == 3:
        assert out[2, 1, 4, 5] == x[2, 4, 5, 1]  # channel 1 of pixel (row 4, col 5)


def test_user_npz_maps_labels_and_normalises(tmp_path):
    x = images(30, (9, 9, 3))
    y = np.repeat([3, 7, 11], 10)
    spec = DataSpec.of(save(tmp_path / "tiny.npz", X=x, y=y))
    assert (spec.name, spec.image_shape, spec.n_classes, spec.n_train, spec.n_test) == (
        "tiny",
        (3, 9, 9),
        3,
        24,
        6,
    )
    data = spec.load(4)
    assert sorted(np.unique(np.concatenate([data.y_train, data.y_test]))) == [0, 1, 2]
    train, test = split(30, 0.2, rng_for(4, "split"))  # the run seed's split stream
    lo, hi = float(x.min()), float(x.max())
    ref = ((x.transpose(0, 3, 1, 2).astype(float) - lo) / (hi - lo) - 0.5) / 0.5
    np.testing.assert_allclose(data.x_train, ref[train], atol=1e-6)
    np.testing.assert_allclose(data.x_test, ref[test], atol=1e-6)
    np.testing.assert_array_equal(data.y_test, np.searchsorted([3, 7, 11], y[test]))


def test_user_test_split_is_used_as_given(tmp_path):
    x, y = images(20, (8, 8)), np.arange(20) % 2
    xt, yt = images(6, (8, 8), seed=1), np.array([0, 1, 1, 0, 1, 0])
    spec = DataSpec.of(save(tmp_path / "d.npz", X=x, y=y, X_test=xt, y_test=yt))
    assert (spec.n_train, spec.n_test) == (20, 6)
    data = spec.load(0)
    np.testing.assert_array_equal(data.y_train, y)
    np.testing.assert_array_equal(data.y_test, yt)
    lo, hi = min(x.min(), xt.min()), max(x.max(), xt.max())
    np.testing.assert_allclose(data.x_test[:, 0], ((xt - lo) / (hi - lo) - 0.5) / 0.5, atol=1e-6)


def test_digest_follows_the_file_contents(tmp_path):
    path = save(tmp_path / "d.npz", X=images(12, (8, 8)), y=np.arange(12) % 3)
    first = DataSpec.of(path)
    assert DataSpec.of(path) == first
    first.load(0)
    save(tmp_path / "d.npz", X=images(12, (8, 8), seed=5), y=np.arange(12) % 3)
    assert DataSpec.of(path).digest != first.digest
    # a spec (a run's cache key) made from the old file does not silently train on the new one
    with pytest.raises(ConfigError, match="changed since the run was planned") as exc:
        first.load(0)
    assert "\n" not in str(exc.value)
    (tmp_path / "d.npz").unlink()
    with pytest.raises(ConfigError, match="no such file"):
        first.load(0)


GOOD_X, GOOD_Y = images(12, (8, 8)), np.arange(12) % 3


@pytest.mark.parametrize(
    "arrays,needle",
    [
        ({"X": GOOD_X}, "lacks X or y"),
        ({"X": GOOD_X, "y": GOOD_Y[:5]}, "y must be (12,) integer labels"),
        ({"X": GOOD_X, "y": GOOD_Y.astype(float)}, "integer labels, got shape (12,) of float64"),
        ({"X": GOOD_X.reshape(12, 64)[:, :60], "y": GOOD_Y}, "not a square image"),
        ({"X": GOOD_X[:, :, :, None, None], "y": GOOD_Y}, "has shape (12, 8, 8, 1, 1)"),
        ({"X": GOOD_X, "y": np.zeros(12, int)}, "at least 2 classes"),
        ({"X": np.float64(3.0), "y": GOOD_Y}, "non-empty array of real numbers, got float64 of shape ()"),
        ({"X": GOOD_X + 1j, "y": GOOD_Y}, "real numbers, got complex128"),
        ({"X": np.array(["a"] * 12), "y": GOOD_Y}, "real numbers, got <U1"),
        ({"X": np.full((12, 8, 8), np.nan), "y": GOOD_Y}, "NaN or infinite"),
        ({"X": np.zeros((12, 8, 8)), "y": GOOD_Y}, "constant"),
        ({"X": GOOD_X, "y": GOOD_Y, "X_test": GOOD_X}, "X_test and y_test come together"),
        ({"X": GOOD_X, "y": GOOD_Y, "X_test": GOOD_X[:, :7], "y_test": GOOD_Y}, "must match"),
        ({"X": GOOD_X, "y": GOOD_Y, "X_test": GOOD_X, "y_test": GOOD_Y + 5}, "labels that y does not have"),
        ({"X": GOOD_X[:2], "y": GOOD_Y[:2]}, "no usable train/test split"),
    ],
)
def test_bad_npz_is_a_one_line_config_error(tmp_path, arrays, needle):
    path = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError) as exc:
        DataSpec.of(path).load(0)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unreadable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        DataSpec.of(str(tmp_path / "missing.npz"))
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(ConfigError, match=r"not a readable NumPy \.npz archive"):
        DataSpec.of(str(text))
    np.save(tmp_path / "single.npy", GOOD_X)
    with pytest.raises(ConfigError, match=r"single \.npy array"):
        DataSpec.of(str(tmp_path / "single.npy"))
    np.savez(tmp_path / "objects.npz", X=np.array([GOOD_X, None], dtype=object), y=GOOD_Y)
    with pytest.raises(ConfigError, match="not a readable"):
        DataSpec.of(str(tmp_path / "objects.npz"))


def test_normalise_maps_the_range_to_minus_one_one():
    out = normalise(np.array([2.0, 4.0, 6.0]), 2.0, 6.0)
    np.testing.assert_array_equal(out, np.array([-1.0, 0.0, 1.0], dtype=np.float32))
