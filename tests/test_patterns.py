"""Activation patterns: packed-bit Hamming, region counts and dead units against direct references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from specbias.errors import ConfigError
from specbias.metrics.patterns import (
    Patterns,
    activation_patterns,
    count_regions,
    dead_units,
    hamming,
    patterns_from_preacts,
    region_counts,
)
from specbias.models import MLP


def make_model(in_dim, width, depth, seed, kill=0):
    torch.manual_seed(seed)
    model = MLP(in_dim, width, depth, 1).double()
    if kill:
        with torch.no_grad():
            model.layers[0].bias[:kill] = -1e3  # these first-layer units are off everywhere
    return model


def inputs(n, in_dim, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, in_dim, generator=g, dtype=torch.float64) * 4 - 2


def ref_bits(model, x):
    """Per-layer boolean patterns z > 0, computed directly."""
    with torch.no_grad():
        return [(z > 0).numpy() for z in model.hidden_preacts(x)]


# widths not divisible by 8 included
CASES = [(1, 5, 3), (2, 13, 2), (3, 8, 4), (2, 20, 1), (1, 1, 2), (2, 9, 3)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "in{}-w{}-d{}".format(*c))
def test_hamming_matches_unpacked_reference(case):
    in_dim, width, depth = case
    seed = sum(case)
    model = make_model(in_dim, width, depth, seed)
    x = inputs(300, in_dim, seed)
    pats = activation_patterns(model, x)
    bits = ref_bits(model, x)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, 300, 500)
    j = rng.integers(0, 300, 500)
    h = hamming(pats, i, j)
    assert h.shape == (depth, 500)
    for layer, b in enumerate(bits):
        ref = np.array([int(np.count_nonzero(b[p] != b[q])) for p, q in zip(i, j)])
        np.testing.assert_array_equal(h[layer], ref)
        assert h[layer].max() <= width
    full = np.concatenate(bits, axis=1)
    total_ref = np.array([int(np.count_nonzero(full[p] != full[q])) for p, q in zip(i, j)])
    np.testing.assert_array_equal(h.sum(axis=0), total_ref)
    # self-pairs are at distance 0
    np.testing.assert_array_equal(hamming(pats, i, i), 0)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "in{}-w{}-d{}".format(*c))
def test_region_counts_match_set_of_tuples(case):
    in_dim, width, depth = case
    seed = 100 + sum(case)
    model = make_model(in_dim, width, depth, seed)
    x = inputs(400, in_dim, seed)
    pats = activation_patterns(model, x)
    bits = ref_bits(model, x)
    counts = region_counts(pats)
    assert set(counts) == {f"layer{k + 1}" for k in range(depth)} | {"all"}
    for layer, b in enumerate(bits):
        ref = len({tuple(row) for row in b.tolist()})
        assert counts[f"layer{layer + 1}"] == ref
        assert count_regions(pats.layers[layer]) == ref
    full = np.concatenate(bits, axis=1)
    ref_all = len({tuple(row) for row in full.tolist()})
    assert counts["all"] == ref_all
    assert count_regions(pats.packed()) == ref_all
    # per-layer counts never exceed the all-layer count; prefixes are monotone
    for layer in range(depth):
        assert counts[f"layer{layer + 1}"] <= counts["all"]
    prefix = [count_regions(np.concatenate(pats.layers[: k + 1], axis=1)) for k in range(depth)]
    prefix_ref = [
        len({tuple(row) for row in np.concatenate(bits[: k + 1], axis=1).tolist()}) for k in range(depth)
    ]
    assert prefix == prefix_ref
    assert all(a <= b for a, b in itertools.pairwise(prefix))
    assert prefix[-1] == counts["all"]


def test_region_count_of_repeated_rows():
    rows = np.array([[1, 0, 255], [1, 0, 255], [0, 0, 0], [1, 0, 254], [0, 0, 0]], dtype=np.uint8)
    assert count_regions(rows) == 3
    # a non-contiguous slice of a wider array is handled
    wide = np.concatenate([rows, np.arange(5, dtype=np.uint8)[:, None]], axis=1)
    assert count_regions(wide[:, :3]) == 3
    assert count_regions(wide) == 5  # the last column makes every row distinct


@pytest.mark.parametrize("case", [(1, 13, 3), (2, 8, 2), (2, 20, 4)])
def test_dead_units_match_reference(case):
    in_dim, width, depth = case
    model = make_model(in_dim, width, depth, sum(case), kill=3)
    x = inputs(200, in_dim, sum(case))
    dead = dead_units(activation_patterns(model, x))
    ref = np.array([int(np.count_nonzero(~b.any(axis=0))) for b in ref_bits(model, x)])
    np.testing.assert_array_equal(dead, ref)
    assert dead[0] >= 3


def test_dead_units_all_off_and_all_on():
    model = make_model(2, 11, 2, 0)
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.fill_(-1.0)  # layer 1 entirely dead
        model.layers[1].weight.zero_()
        model.layers[1].bias.fill_(1.0)  # layer 2 entirely alive
    dead = dead_units(activation_patterns(model, inputs(50, 2, 0)))
    np.testing.assert_array_equal(dead, [11, 0])


@pytest.mark.parametrize("case", CASES, ids=lambda c: "in{}-w{}-d{}".format(*c))
def test_bits_round_trip(case):
    in_dim, width, depth = case
    model = make_model(in_dim, width, depth, 7 + sum(case))
    x = inputs(64, in_dim, 7)
    pats = activation_patterns(model, x)
    bits = ref_bits(model, x)
    np.testing.assert_array_equal(pats.bits(), np.concatenate(bits, axis=1))
    assert pats.bits().dtype == bool
    assert pats.widths == [width] * depth
    assert pats.n_units == width * depth == model.n_hidden
    assert pats.n_points == 64
    for layer, b in zip(pats.layers, bits):
        assert layer.dtype == np.uint8
        assert layer.shape == (64, (width + 7) // 8)
        np.testing.assert_array_equal(layer, np.packbits(b, axis=1))
    again = Patterns(
        layers=[np.packbits(b, axis=1) for b in np.split(pats.bits(), depth, axis=1)], widths=pats.widths
    )
    np.testing.assert_array_equal(again.bits(), pats.bits())
    with torch.no_grad():
        direct = patterns_from_preacts(model.hidden_preacts(x))
    np.testing.assert_array_equal(direct.packed(), pats.packed())


@pytest.mark.parametrize("chunk", [1, 7, 64, 100000])
def test_chunked_patterns_equal_single_chunk(chunk):
    model = make_model(2, 13, 3, 5)
    x = inputs(150, 2, 5)
    one = activation_patterns(model, x, chunk=len(x))
    many = activation_patterns(model, x, chunk=chunk)
    assert one.widths == many.widths
    for a, b in zip(one.layers, many.layers):
        np.testing.assert_array_equal(a, b)


def test_patterns_are_strict_positive_sign():
    """A pre-activation of exactly zero counts as off (post-ReLU 0)."""
    z = torch.tensor([[0.0, 1e-300, -0.0, -1.0, 2.0]], dtype=torch.float64)
    np.testing.assert_array_equal(patterns_from_preacts([z]).bits(), [[False, True, False, False, True]])


@pytest.mark.parametrize("chunk", [0, -3, 2.5, True])
def test_bad_chunk_is_config_error(chunk):
    """A zero chunk used to be a ValueError from range(); a float a TypeError."""
    with pytest.raises(ConfigError, match="chunk"):
        activation_patterns(make_model(2, 5, 2, 0), inputs(10, 2, 0), chunk=chunk)


def test_empty_input_is_config_error():
    """No points used to be an IndexError deep inside the chunk merge."""
    with pytest.raises(ConfigError, match="at least one input point"):
        activation_patterns(make_model(2, 5, 2, 0), inputs(0, 2, 0))


def test_numpy_integer_chunk_is_accepted():
    model, x = make_model(2, 5, 2, 0), inputs(10, 2, 0)
    np.testing.assert_array_equal(
        activation_patterns(model, x, chunk=np.int64(3)).packed(), activation_patterns(model, x).packed()
    )
