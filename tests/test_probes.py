"""Probes: fixed output shapes, and values equal to the metric functions and to direct references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from specbias.errors import ConfigError
from specbias.metrics.geometry import boundary_distance_feature, boundary_distance_input
from specbias.metrics.gradients import gradient_confusion, output_jacobian_cosine
from specbias.metrics.pairs import Pairs, global_pairs_1d, local_pairs_1d
from specbias.metrics.patterns import activation_patterns, dead_units, region_counts
from specbias.metrics.spectrum import frequency_convergence
from specbias.models import MLP
from specbias.probes import (
    BandProbe,
    BoundaryProbe,
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    HeldOutProbe,
    HyperplaneProbe,
    PredictionProbe,
    RegionMapProbe,
    RegionProbe,
    SnapshotProbe,
    SpectralNormProbe,
)
from specbias.training import Schedule, TrainConfig, train

N = 64
FREQS = (2, 5, 9)
DEPTH, WIDTH = 3, 11


def setup(seed=0):
    x = (torch.arange(N, dtype=torch.float64) / N)[:, None]
    y = sum(torch.sin(2 * math.pi * (k * x + 0.1 * k)) for k in FREQS)
    torch.manual_seed(seed)
    model = MLP(1, WIDTH, DEPTH, 1).double()
    with torch.no_grad():
        model.layers[0].bias[:2] = -10.0  # two dead first-layer units
    rng = np.random.default_rng(seed)
    pairs = {
        "local": local_pairs_1d(N, rng, n_windows=3, pairs_per_window=4, window=0.2),
        "global": global_pairs_1d(N, rng, n_pairs=7),
    }
    return x, y, model, pairs


def ref_bits(model, x):
    with torch.no_grad():
        return [(z > 0).numpy() for z in model.hidden_preacts(x)]


SCHED = Schedule(every=1)


def test_prediction_probe():
    x, _, model, _ = setup()
    out = PredictionProbe(x, SCHED).measure(model)
    assert set(out) == {"pred"}
    assert out["pred"].shape == (N, 1) and out["pred"].dtype == np.float64
    with torch.no_grad():
        np.testing.assert_array_equal(out["pred"], model(x).numpy())


def test_convergence_probe():
    x, y, model, _ = setup()
    probe = ConvergenceProbe(x, y.numpy(), FREQS, SCHED)
    out = probe.measure(model)
    assert set(out) == {"rel_error", "learned_fraction", "magnitude_error", "abs_error", "mse"}
    for key in ("rel_error", "learned_fraction", "magnitude_error", "abs_error"):
        assert out[key].shape == (len(FREQS),)
    assert out["mse"].shape == ()
    with torch.no_grad():
        pred = model(x).numpy()
    ref = frequency_convergence(pred, y.numpy(), FREQS)
    np.testing.assert_array_equal(out["rel_error"], ref.rel_error)
    np.testing.assert_array_equal(out["learned_fraction"], ref.learned_fraction)
    np.testing.assert_allclose(out["mse"], np.mean((pred - y.numpy()) ** 2), rtol=1e-12)


def test_hamming_probe_matches_reference():
    x, _, model, pairs = setup()
    out = HammingProbe(x, pairs, SCHED).measure(model)
    expected_keys = {f"{k}_{s}" for k in pairs for s in ("mean", "std", "layer_mean")}
    assert set(out) == expected_keys
    bits = ref_bits(model, x)
    full = np.concatenate(bits, axis=1)
    for kind, p in pairs.items():
        assert out[f"{kind}_mean"].shape == () and out[f"{kind}_std"].shape == ()
        assert out[f"{kind}_layer_mean"].shape == (DEPTH,)
        total = np.array([np.count_nonzero(full[a] != full[b]) for a, b in zip(p.i, p.j)])
        per_layer = [np.mean([np.count_nonzero(bl[a] != bl[b]) for a, b in zip(p.i, p.j)]) for bl in bits]
        np.testing.assert_allclose(out[f"{kind}_mean"], total.mean(), rtol=1e-12)
        np.testing.assert_allclose(out[f"{kind}_std"], total.std(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out[f"{kind}_layer_mean"], per_layer, rtol=1e-12)


@pytest.mark.parametrize("zero", ["nan", "zero"])
def test_confusion_probe_equals_gradient_confusion(zero):
    x, y, model, pairs = setup()
    with torch.no_grad():
        y[4] = model(x)[4]  # one exactly-zero gradient
    pairs["hit"] = Pairs(np.array([4, 1, 4]), np.array([9, 4, 4]))
    out = ConfusionProbe(x, y, pairs, SCHED, zero=zero).measure(model)
    assert set(out) == {f"{k}_{s}" for k in pairs for s in ("cos", "inner", "n_zero")}
    for kind, p in pairs.items():
        direct = gradient_confusion(model, x, y, p, zero=zero)
        inner = gradient_confusion(model, x, y, p, measure="inner")
        assert out[f"{kind}_cos"].shape == (len(p),) and out[f"{kind}_inner"].shape == (len(p),)
        assert out[f"{kind}_n_zero"].shape == ()
        np.testing.assert_array_equal(out[f"{kind}_cos"], direct.values)
        np.testing.assert_array_equal(out[f"{kind}_inner"], inner.values)
        assert int(out[f"{kind}_n_zero"]) == direct.n_zero
    assert int(out["hit_n_zero"]) == 3
    if zero == "nan":
        assert np.isnan(out["hit_cos"]).all()
    else:
        np.testing.assert_array_equal(out["hit_cos"], 0.0)


def test_confusion_probe_records_the_output_jacobian_cosine_when_asked():
    """``{kind}_jac_cos`` only with ``output_jacobian=True``, per pair, equal to the metric; the loss
    records stay the same."""
    x, _, _, pairs = setup()
    torch.manual_seed(1)
    model = MLP(1, WIDTH, DEPTH, 3).double()
    y = torch.sin(2 * math.pi * x * torch.tensor([1.0, 3.0, 7.0], dtype=torch.float64))
    plain = ConfusionProbe(x, y, pairs, SCHED).measure(model)
    both = ConfusionProbe(x, y, pairs, SCHED, output_jacobian=True).measure(model)
    assert set(both) == set(plain) | {f"{k}_jac_cos" for k in pairs}
    for kind, p in pairs.items():
        np.testing.assert_array_equal(both[f"{kind}_cos"], plain[f"{kind}_cos"])
        assert both[f"{kind}_jac_cos"].shape == both[f"{kind}_cos"].shape == (len(p),)
        np.testing.assert_array_equal(both[f"{kind}_jac_cos"], output_jacobian_cosine(model, x, p).values)


def test_region_probe_matches_metric_and_reference():
    x, _, model, _ = setup()
    out = RegionProbe(x, SCHED).measure(model)
    assert set(out) == {"layer1", "layer2", "layer3", "all", "upto1", "upto2", "saturated"}
    assert all(v.shape == () for v in out.values())
    ref = region_counts(activation_patterns(model, x))
    assert {k: int(out[k]) for k in ref} == ref
    bits = ref_bits(model, x)
    for layer, b in enumerate(bits):
        assert int(out[f"layer{layer + 1}"]) == len({tuple(r) for r in b.tolist()})
    upto = [len({tuple(r) for r in np.concatenate(bits[: d + 1], 1).tolist()}) for d in range(len(bits))]
    assert [int(out["upto1"]), int(out["upto2"]), int(out["all"])] == upto
    assert upto == sorted(upto), "counts over layers 1..l are monotone in l"
    assert int(out["saturated"]) == int(upto[-1] == x.shape[0])


def test_dead_unit_probe_matches_metric_and_reference():
    x, _, model, _ = setup()
    probe = DeadUnitProbe(x, SCHED)
    assert probe.before_update is True
    out = probe.measure(model)
    assert set(out) == {"per_layer", "total"}
    assert out["per_layer"].shape == (DEPTH,) and out["total"].shape == ()
    np.testing.assert_array_equal(out["per_layer"], dead_units(activation_patterns(model, x)))
    ref = [int(np.count_nonzero(~b.any(axis=0))) for b in ref_bits(model, x)]
    np.testing.assert_array_equal(out["per_layer"], ref)
    assert int(out["total"]) == sum(ref) and ref[0] >= 2


def test_default_timing_flags():
    x, y, _, pairs = setup()
    assert not PredictionProbe(x, SCHED).before_update
    assert not ConvergenceProbe(x, y.numpy(), FREQS, SCHED).before_update
    assert not HammingProbe(x, pairs, SCHED).before_update
    assert not ConfusionProbe(x, y, pairs, SCHED).before_update
    assert not RegionProbe(x, SCHED).before_update
    # §1.9: norms, angles, boundary distances, regions maps and image metrics after the update;
    # dead units (and, by default, snapshots, so checkpoint 0 is the initialisation) before it
    assert not RegionMapProbe(x, SCHED).before_update
    assert not SpectralNormProbe(SCHED).before_update
    assert not HyperplaneProbe(SCHED).before_update
    assert not BoundaryProbe(x, SCHED).before_update
    assert not BandProbe(x, y.numpy(), (8, 8), SCHED).before_update
    assert not HeldOutProbe(x, y.numpy(), x, y.numpy(), SCHED).before_update
    assert DeadUnitProbe(x, SCHED).before_update
    assert SnapshotProbe(SCHED).before_update


def test_probes_in_training_stack_fixed_shapes_and_match_the_weights():
    """Records from a training run equal each probe measured on the weights at that checkpoint."""
    x, y, model, pairs = setup(1)

    class Snapshot:
        name, schedule, before_update = "snap", Schedule(every=4), False

        def measure(self, m):
            return {"theta": torch.cat([p.detach().reshape(-1) for p in m.parameters()]).numpy().copy()}

    sched = Schedule(every=4)
    probes = [
        PredictionProbe(x, sched),
        ConvergenceProbe(x, y.numpy(), FREQS, sched),
        HammingProbe(x, pairs, sched),
        ConfusionProbe(x, y, pairs, sched, output_jacobian=True),
        RegionProbe(x, sched),
        Snapshot(),
    ]
    result = train(model, x, y, TrainConfig(epochs=12, lr=1e-2), probes=probes)
    shapes = {
        "prediction": {"pred": (3, N, 1)},
        "convergence": {"rel_error": (3, 3), "mse": (3,)},
        "hamming": {"local_mean": (3,), "local_layer_mean": (3, DEPTH), "global_std": (3,)},
        "confusion": {
            "local_cos": (3, 12),
            "local_jac_cos": (3, 12),
            "global_inner": (3, 7),
            "global_n_zero": (3,),
        },
        "regions": {"all": (3,), "layer2": (3,)},
    }
    for name, keys in shapes.items():
        rec = result.records[name]
        np.testing.assert_array_equal(rec["epochs"], [0, 4, 8])
        for key, shape in keys.items():
            assert rec[key].shape == shape, (name, key)
    # re-measure on a model loaded with each snapshot
    replay = MLP(1, WIDTH, DEPTH, 1).double()
    for k, theta in enumerate(result.records["snap"]["theta"]):
        torch.nn.utils.vector_to_parameters(torch.as_tensor(theta), replay.parameters())
        for probe in probes[:5]:
            again = probe.measure(replay)
            for key, value in again.items():
                np.testing.assert_array_equal(result.records[probe.name][key][k], value)


def test_spectral_norm_probe_matches_svd():
    _, _, model, _ = setup()
    out = SpectralNormProbe(SCHED).measure(model)
    assert set(out) == {"per_layer", "product"}
    ref = [np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0] for layer in model.layers]
    assert out["per_layer"].shape == (DEPTH + 1,) and out["product"].shape == ()
    np.testing.assert_allclose(out["per_layer"], ref, rtol=1e-12)
    np.testing.assert_allclose(out["product"], math.prod(ref), rtol=1e-12)


def test_hyperplane_probe_matches_direct_cosines():
    _, _, model, _ = setup()
    out = HyperplaneProbe(SCHED).measure(model)
    assert set(out) == {"mean_offdiag", "frac_positive"}
    kept = HyperplaneProbe(SCHED, keep=True).measure(model)
    assert set(kept) == {"mean_offdiag", "frac_positive"} | {f"layer{k + 1}" for k in range(DEPTH)}
    for k, layer in enumerate(model.layers[:-1]):
        w = layer.weight.detach().numpy()
        cos = [
            w[a] @ w[b] / (np.linalg.norm(w[a]) * np.linalg.norm(w[b]))
            for a in range(WIDTH)
            for b in range(WIDTH)
            if a != b
        ]
        assert out["mean_offdiag"][k] == pytest.approx(np.mean(cos), rel=1e-12)
        assert out["frac_positive"][k] == np.mean(np.array(cos) > 0)
        assert kept[f"layer{k + 1}"].shape == (WIDTH, WIDTH) and kept[f"layer{k + 1}"].dtype == np.float32
        np.testing.assert_allclose(kept[f"layer{k + 1}"][~np.eye(WIDTH, dtype=bool)], cos, atol=1e-6)


def test_boundary_probe_means_over_the_grid():
    x, _, model, _ = setup()
    out = BoundaryProbe(x, SCHED).measure(model)
    assert set(out) == {"feature_mean", "input_mean", "input_median"}
    assert all(v.shape == () for v in out.values())
    d_feat, d_in = boundary_distance_feature(model, x), boundary_distance_input(model, x)
    assert np.isfinite(d_in).all()
    # layer 1 only, by hand: |w·x + b| / |w| (1-D input), the feature version's lower bound
    w, b = model.layers[0].weight.detach().numpy()[:, 0], model.layers[0].bias.detach().numpy()
    layer1 = (np.abs(x.numpy() * w + b) / np.abs(w)).min(axis=1)
    assert (d_feat <= layer1 + 1e-15).all() and (d_in <= layer1 + 1e-15).all()
    np.testing.assert_allclose(out["feature_mean"], d_feat.mean(), rtol=1e-12)
    np.testing.assert_allclose(out["input_mean"], d_in.mean(), rtol=1e-12)
    np.testing.assert_allclose(out["input_median"], np.median(d_in), rtol=1e-12)


def test_boundary_probe_with_no_bounding_unit_is_inf_everywhere_without_warnings():
    """All first-layer rows zero: no unit bounds any input-space region. The mean used to drop
    the infinite distances (a NaN mean of nothing, with a warning) while the median kept them."""
    x, _, model, _ = setup()
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.fill_(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = BoundaryProbe(x, SCHED).measure(model)
    assert np.isposinf(out["input_mean"]) and np.isposinf(out["input_median"])
    assert np.isfinite(out["feature_mean"])  # the deeper layers still cut their feature spaces


def test_region_map_probe_matches_first_appearance_reference():
    x, _, model, _ = setup()
    out = RegionMapProbe(x, SCHED, units=(0, 3, 10, 11, 500)).measure(model)
    assert set(out) == {"ids", "units", "unit_ids"}
    bits = ref_bits(model, x)
    full = np.concatenate(bits, axis=1)
    seen: dict[tuple, int] = {}
    ref_ids = [seen.setdefault(tuple(row), len(seen)) for row in full.tolist()]
    np.testing.assert_array_equal(out["ids"], ref_ids)
    np.testing.assert_array_equal(out["unit_ids"], [0, 3, 10])  # width 11: 11 and 500 left out
    np.testing.assert_array_equal(out["units"], bits[0][:, [0, 3, 10]].T.astype(np.uint8))
    for bad in ((-1,), (2.0,), (True,)):
        with pytest.raises(ConfigError, match="region-map units"):
            RegionMapProbe(x, SCHED, units=bad)


def test_band_and_held_out_probes_match_direct_references():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(64, 2, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = MLP(2, 8, 2, 3).double()
    y = np.random.default_rng(0).random((64, 3))
    out = BandProbe(x, y, (8, 8), SCHED, n_bands=3).measure(model)
    with torch.no_grad():
        pred = model(x).numpy()
    img_res = np.fft.fft2((pred - y).reshape(8, 8, 3), axes=(0, 1))
    img_y = np.fft.fft2(y.reshape(8, 8, 3), axes=(0, 1))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(8) * 8, np.fft.fftfreq(8) * 8, indexing="ij"))
    # bands: [0, 2), [2, 4] and the corners (4, sqrt(32)]; DC in none
    masks = [(k > 0) & (k < 2), (k >= 2) & (k <= 4), k > 4]
    ref = [(np.abs(img_res[m]) ** 2).sum() / (np.abs(img_y[m]) ** 2).sum() for m in masks]
    np.testing.assert_allclose(out["rel_energy"], ref, rtol=1e-10)
    np.testing.assert_allclose(out["psnr"], 10 * np.log10(1 / np.mean((pred - y) ** 2)), rtol=1e-12)
    held = HeldOutProbe(x, y, x[:10], y[:10] + 0.5, SCHED).measure(model)
    np.testing.assert_allclose(held["train_psnr"], out["psnr"], rtol=1e-12)
    mse_test = np.mean((pred[:10] - y[:10] - 0.5) ** 2)
    np.testing.assert_allclose(held["test_psnr"], -10 * np.log10(mse_test), rtol=1e-12)


def test_snapshot_probe_rebuilds_the_model_exactly():
    x, _, model, _ = setup()
    model = model.float()
    out = SnapshotProbe(SCHED).measure(model)
    assert set(out) == {name for name, _ in model.named_parameters()}
    replay = MLP(1, WIDTH, DEPTH, 1)
    replay.load_state_dict({k: torch.from_numpy(v).float() for k, v in out.items()})
    for (name, p), q in zip(model.named_parameters(), replay.parameters()):
        assert out[name].dtype == np.float64
        assert torch.equal(p, q)
    with torch.no_grad():
        assert torch.equal(model(x.float()), replay(x.float()))


# --------------------------------------------------------------------------- kernel probe


def test_high_band_of_a_tone_mixture_is_its_top_third_of_tones():
    from specbias.probes import high_band_target
    from specbias.signals import ToneMixture

    sig = ToneMixture(n=128, freqs=(3, 7, 11, 20, 31, 40)).build(2)
    high = high_band_target(sig.y, sig.shape, sig.freqs)
    phases = sig.arrays["phases"]
    expected = sum(np.sin(2 * np.pi * (k * sig.t[:, 0] + p)) for k, p in zip(sig.freqs[-2:], phases[-2:]))
    np.testing.assert_allclose(high[:, 0], expected, atol=1e-10)


def test_high_band_of_an_image_keeps_exactly_the_top_radial_bands():
    from specbias.metrics.spectrum import radial_band_energy
    from specbias.probes import high_band_target

    y = np.random.default_rng(0).random((16 * 16, 2))
    high = high_band_target(y, (16, 16), (), share=3 / 8, n_bands=8)
    full, kept = radial_band_energy(y, (16, 16)), radial_band_energy(high, (16, 16))
    np.testing.assert_allclose(kept[5:], full[5:], rtol=1e-10)
    np.testing.assert_allclose(kept[:5], 0, atol=1e-20)


def test_channel_alignment_and_kernel_rate_against_direct_formulas():
    from specbias.metrics.ntk import alignment_curve, ntk_spectrum
    from specbias.probes import channel_alignment, kernel_rate

    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 20))
    theta = torch.as_tensor(a @ a.T)
    spec = ntk_spectrum(theta)
    y = rng.standard_normal((20, 2))
    energy = (y**2).sum(0)
    expected = (
        alignment_curve(spec, y[:, 0]) * energy[0] + alignment_curve(spec, y[:, 1]) * energy[1]
    ) / energy.sum()
    np.testing.assert_allclose(channel_alignment(spec, y), expected)
    assert channel_alignment(spec, y)[-1] == pytest.approx(1.0)
    top = spec.eigvals[0]
    assert kernel_rate(theta, spec.eigvecs[:, :1], top) == pytest.approx(1.0)
    rate = kernel_rate(theta, y, top)
    assert rate == pytest.approx(np.trace(y.T @ a @ a.T @ y) / (top * energy.sum()))
    assert 0 < rate < 1
    assert np.isnan(kernel_rate(theta, np.zeros((20, 1)), top))
    assert np.isnan(channel_alignment(spec, np.zeros((20, 1)))).all()
