"""execute_run: determinism, stored encoding arrays, probe independence, config validation."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import specbias.runs as runs_mod
from specbias.encodings import GaussianRFF
from specbias.errors import ConfigError
from specbias.results import RunStore
from specbias.runner import run_all
from specbias.runs import (
    BandSpec,
    BoundarySpec,
    ConfusionSpec,
    ConvergenceSpec,
    DeadUnitSpec,
    HammingSpec,
    HeldOutSpec,
    HyperplaneSpec,
    KernelSpec,
    NormSpec,
    PairSpec,
    PatchPairSpec,
    PredictionSpec,
    ProbeData,
    RandomPairSpec,
    RegionMapSpec,
    RegionSpec,
    RunConfig,
    SnapshotSpec,
    execute_run,
    model_at,
    to_jsonable,
)
from specbias.seeding import stream_seed
from specbias.signals import NaturalImage, RandomImage, ToneMixture
from specbias.training import Schedule, TrainConfig

SIGNAL = ToneMixture(n=256, freqs=(2, 5, 9))
PAIRS = PairSpec(local_windows=3, local_per_window=10, global_pairs=40)
PROBES = (
    ConvergenceSpec(Schedule(every=5)),
    HammingSpec(Schedule(every=10), PAIRS),
    ConfusionSpec(Schedule(last=True), PAIRS),
    RegionSpec(Schedule(every=10)),
    DeadUnitSpec(Schedule(every=10)),
    PredictionSpec(Schedule(last=True)),
)


def config(**kwargs):
    base = {
        "signal": SIGNAL,
        "input": "raw01",
        "width": 16,
        "depth": 2,
        "train": TrainConfig(epochs=20, lr=1e-2),
        "probes": PROBES,
        "seed": 3,
    }
    return RunConfig(**{**base, **kwargs})


def assert_same_arrays(a, b):
    assert set(a.arrays) == set(b.arrays)
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)


@pytest.mark.parametrize("mode", ["clean", "faithful"])
def test_execute_run_is_deterministic(mode):
    cfg = config(mode=mode)
    a = execute_run(cfg)
    b = execute_run(cfg)
    assert_same_arrays(a, b)
    assert a.meta["key"] == b.meta["key"] == cfg.key()
    for probe in ("convergence", "hamming", "confusion", "regions", "dead", "prediction"):
        assert a.has(probe)
    np.testing.assert_array_equal(a.get("convergence", "epochs"), [0, 5, 10, 15])
    np.testing.assert_array_equal(a.get("confusion", "epochs"), [19])
    assert a.get("confusion", "local_cos").shape == (1, 30)
    assert a.get("confusion", "global_cos").shape == (1, 40)
    assert a.get("prediction", "pred").shape == (1, 256, 1)
    assert a.get("train", "loss").shape == (20,)
    assert a.meta["n_params"] == mlp_params(1, 16, 2, 1)
    assert a.meta["diverged_at"] is None
    # the stored signal is the one the config describes
    sig = SIGNAL.build(3)
    np.testing.assert_array_equal(a.get("signal", "y"), sig.y)
    np.testing.assert_array_equal(a.get("signal", "phases"), sig.arrays["phases"])
    np.testing.assert_array_equal(a.get("signal", "freqs"), [2, 5, 9])


def mlp_params(i, w, d, o):
    return (i + 1) * w + (d - 1) * (w + 1) * w + (w + 1) * o


def test_different_seeds_differ():
    a = execute_run(config(seed=0, probes=()))
    b = execute_run(config(seed=1, probes=()))
    assert not np.array_equal(a.get("train", "loss"), b.get("train", "loss"))


def test_probes_do_not_change_the_run():
    with_probes = execute_run(config())
    without = execute_run(config(probes=()))
    np.testing.assert_array_equal(with_probes.get("train", "loss"), without.get("train", "loss"))
    assert not without.has("hamming")


def test_prediction_matches_manual_training():
    """An independent rebuild of the run (seeded init, encoded grid, Adam) gives the same prediction."""
    cfg = config(probes=(PredictionSpec(Schedule(last=True)),), dtype="float64")
    run = execute_run(cfg)
    from specbias.models import MLP
    from specbias.training import train

    sig = SIGNAL.build(3)
    x = torch.as_tensor(sig.t, dtype=torch.float64)
    y = torch.as_tensor(sig.y, dtype=torch.float64)
    torch.manual_seed(stream_seed(3, "init"))
    model = MLP(1, 16, 2, 1).double()
    train(model, x, y, cfg.train, seed=3)
    with torch.no_grad():
        np.testing.assert_array_equal(run.get("prediction", "pred")[0], model(x).numpy())


def test_rff_input_stores_B():
    cfg = config(
        input="rff10",
        probes=(PredictionSpec(Schedule(last=True)),),
        train=TrainConfig(epochs=5, lr=1e-2),
        dtype="float64",
    )
    run = execute_run(cfg)
    B = run.get("encoding", "B")
    assert B.shape == (256, 1)
    np.testing.assert_array_equal(B, cfg.encoding().B)
    np.testing.assert_array_equal(B, GaussianRFF(10.0, seed=stream_seed(3, "rff")).B)
    assert run.meta["in_dim"] == 512
    assert run.meta["n_params"] == mlp_params(512, 16, 2, 1)
    # the stored B is the one the network was trained on (the reference redraws it, bug B8):
    # train by hand on features built from the stored B and compare the predictions
    from specbias.models import MLP
    from specbias.training import train

    sig = SIGNAL.build(3)
    angles = 2 * np.pi * sig.t @ B.T
    x = torch.as_tensor(np.concatenate([np.sin(angles), np.cos(angles)], axis=1))
    y = torch.as_tensor(sig.y)
    torch.manual_seed(stream_seed(3, "init"))
    model = MLP(512, 16, 2, 1).double()
    train(model, x, y, cfg.train, seed=3)
    with torch.no_grad():
        np.testing.assert_allclose(run.get("prediction", "pred")[0], model(x).numpy(), rtol=1e-8, atol=1e-10)
    other = config(input="rff10", seed=4, probes=()).encoding().B
    assert not np.allclose(other, B)
    assert "encoding/B" not in execute_run(config(probes=(), train=TrainConfig(epochs=2))).arrays


def test_aliased_pe_is_reported_once_by_the_runner(tmp_path, capsys):
    probes = (PredictionSpec(Schedule(last=True)),)
    aliased = config(input="pe9", probes=probes, train=TrainConfig(epochs=2))
    clean = config(input="pe8", probes=probes, train=TrainConfig(epochs=2))
    runs = run_all([aliased, clean], RunStore(tmp_path), workers=1, progress=False)
    # pe9 (1-D label) has 10 octaves; octave 9 has 256 periods > Nyquist 128 on 256 samples
    assert runs[0].meta["aliased_features"] == 2
    assert runs[1].meta["aliased_features"] == 0 and runs[1].meta["in_dim"] == 18
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: pe9: 2 of 20 encoding features exceed the Nyquist limit of the 256 grid and alias"
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": -1},
        {"width": 0},
        {"depth": 0},
        {"width": 2.0},
        {"input": "foo"},
        {"input": "pe-1"},
        {"input": "rff0"},
        {"mode": "strict"},
        {"dtype": "float16"},
    ],
)
def test_run_config_rejects(kwargs):
    with pytest.raises(ConfigError):
        config(**kwargs)


def test_pair_spec_rejects_zero_counts():
    for name in ("local_windows", "local_per_window", "global_pairs"):
        with pytest.raises(ConfigError):
            PairSpec(**{name: 0})


def test_config_key_and_json():
    a, b = config(), config()
    assert a.key() == b.key() and len(a.key()) == 16
    assert config(seed=4).key() != a.key()
    assert config(train=TrainConfig(epochs=20, lr=math.pi)).key() != a.key()
    js = a.to_json()
    assert js["type"] == "RunConfig" and js["width"] == 16 and js["signal"]["freqs"] == [2, 5, 9]


# keys of the first quick-profile RunConfig planned by E2, E4d, E5, E15 and X3, computed at version
# 0.2.0 before ConfusionSpec had output_jacobian: a field added with added_field must not change them
TONES = ToneMixture(n=2048, freqs=tuple(range(5, 75, 5)))
WINDOW = 50 / 2048
PATCHES = PatchPairSpec(patches=100, patch=3 / 64, global_pairs=10000, near=0.390625, far=0.546875)
NATURAL = PatchPairSpec(100, 0.09765625, 500, 50000, near=0.44, far=0.537, faithful_scheme="natural")


def image_probes(every: int, pairs: PatchPairSpec, boundary_every: int) -> tuple:
    """The probe list of the 2D studies (E4/E5/E15) in their planned order."""
    return (
        HammingSpec(Schedule(last=True, every=every), pairs),
        RegionSpec(Schedule(last=True, every=every)),
        RegionMapSpec(Schedule(last=True, explicit=(0,))),
        DeadUnitSpec(Schedule(last=True, every=every)),
        NormSpec(Schedule(last=True, every=every)),
        HyperplaneSpec(Schedule(last=True, every=every)),
        HyperplaneSpec(Schedule(last=True, explicit=(0,)), keep_matrices=True, name="hyperplane_matrices"),
        BoundarySpec(Schedule(last=True, every=boundary_every)),
        BandSpec(Schedule(last=True, every=every)),
        ConfusionSpec(Schedule(last=True), pairs),
    )


E2_PROBES = (
    HammingSpec(Schedule(last=True, every=25), PairSpec(25, 250, 5000, WINDOW)),
    ConfusionSpec(Schedule(last=True), PairSpec(25, 100, 5000, WINDOW)),
    ConvergenceSpec(Schedule(last=True, every=5)),
    PredictionSpec(Schedule(last=True)),
)
E5_PROBES = (
    *image_probes(15, NATURAL, 30),
    HammingSpec(Schedule(last=True, every=15), RandomPairSpec(20000), name="hamming_random"),
)
E15_PAIRS = dataclasses.replace(PATCHES, faithful_scheme="depth_width")
ASTRONAUT = NaturalImage("astronaut", 64, 3)
PLANNED_KEYS = {
    "E2": (RunConfig(TONES, "raw01", 128, 4, TrainConfig(epochs=500), E2_PROBES), "18e7d5b94429980d"),
    "E4d": (
        RunConfig(
            RandomImage(64, 3),
            "raw01",
            128,
            2,
            TrainConfig(500, batch_size=256),
            image_probes(25, PATCHES, 25),
        ),
        "9f17a0ea0aa768b2",
    ),
    "E5": (
        RunConfig(ASTRONAUT, "raw01", 128, 4, TrainConfig(300, batch_size=512), E5_PROBES),
        "e9c25703f9acc75f",
    ),
    "E15": (
        RunConfig(
            RandomImage(64, 3),
            "raw01",
            64,
            2,
            TrainConfig(200, batch_size=256),
            image_probes(20, E15_PAIRS, 20),
        ),
        "80863b92b91ab0c1",
    ),
    "X3": (
        RunConfig(
            NaturalImage("astronaut", 128, 3),
            "raw01",
            128,
            4,
            TrainConfig(epochs=200),
            (HeldOutSpec(Schedule(last=True, every=10)),),
            held_out=True,
        ),
        "2b7ec423150bc528",
    ),
}


@pytest.mark.parametrize("name", PLANNED_KEYS)
def test_keys_computed_before_output_jacobian_existed_are_unchanged(name, monkeypatch):
    monkeypatch.setattr(runs_mod, "__version__", "0.2.0")
    cfg, key = PLANNED_KEYS[name]
    assert cfg.key() == key
    assert "output_jacobian" not in json.dumps(cfg.to_json())


def test_added_field_enters_the_json_and_the_key_only_off_its_default():
    spec = ConfusionSpec(Schedule(), PAIRS)
    assert to_jsonable(spec) == {
        "type": "ConfusionSpec",
        "schedule": to_jsonable(Schedule()),
        "pairs": to_jsonable(PAIRS),
    }
    on = dataclasses.replace(spec, output_jacobian=True)
    assert to_jsonable(on)["output_jacobian"] is True
    base = config(probes=(spec,))
    assert config(probes=(ConfusionSpec(Schedule(), PAIRS, output_jacobian=False),)).key() == base.key()
    assert config(probes=(on,)).key() != base.key()


def test_output_jacobian_confusion_in_a_run():
    """``confusion/{kind}_jac_cos`` beside ``{kind}_cos``, same shape, at every confusion checkpoint."""
    spec = ConfusionSpec(Schedule(every=10), PAIRS, output_jacobian=True)
    run = execute_run(config(input="pe3", probes=(spec,)))
    for kind in ("local", "global"):
        cos, jac = run.get("confusion", f"{kind}_cos"), run.get("confusion", f"{kind}_jac_cos")
        assert jac.shape == cos.shape and jac.shape[0] == run.get("confusion", "epochs").size == 2
        assert np.all(np.abs(jac) <= 1) and not np.isnan(jac).any()
    # one output: the loss-gradient cosine is the Jacobian cosine up to the residuals' signs
    np.testing.assert_allclose(
        np.abs(run.get("confusion", "local_cos")), np.abs(run.get("confusion", "local_jac_cos")), atol=1e-5
    )
    plain = execute_run(config(input="pe3", probes=(ConfusionSpec(Schedule(every=10), PAIRS),)))
    assert not plain.has("confusion") or "confusion/local_jac_cos" not in plain.arrays
    np.testing.assert_array_equal(plain.get("confusion", "local_cos"), run.get("confusion", "local_cos"))


def test_mode_selects_samplers_and_zero_policy():
    sig = SIGNAL.build(3)
    x = torch.as_tensor(sig.t)
    y = torch.as_tensor(sig.y)
    pair_spec = PairSpec(local_windows=50, local_per_window=40, global_pairs=4000)
    spec = ConfusionSpec(Schedule(last=True), pair_spec)
    faithful = spec.build(ProbeData(x=x, y=y, signal=sig, shape=sig.shape, seed=3, faithful=True))
    clean = spec.build(ProbeData(x=x, y=y, signal=sig, shape=sig.shape, seed=3, faithful=False))
    assert faithful.zero == "zero" and clean.zero == "nan"
    # faithful, N = 256: every reference integer scaled by 256/2048
    loc, glo = faithful.pairs["local"], faithful.pairs["global"]
    assert np.any(loc.i == loc.j)  # self-pairs allowed
    assert np.abs(loc.i - loc.j).max() == 4  # offsets 0..2·round(25/8)−2
    assert glo.i.min() == 0 and glo.i.max() == 99 and glo.j.min() == 150 and glo.j.max() == 255
    # clean: no self-pairs, window round(50/2048·256) = 6 samples, blocks [0, 100) and [150, 256)
    loc, glo = clean.pairs["local"], clean.pairs["global"]
    assert not np.any(loc.i == loc.j)
    assert np.abs(loc.i - loc.j).max() == 5
    assert glo.i.max() == math.ceil(800 / 2048 * 256) - 1 and glo.j.min() == math.ceil(1200 / 2048 * 256)


def test_snapshots_rebuild_the_network_bit_for_bit():
    """model_at at the initial and the trained snapshot reproduces the run's own predictions."""
    cfg = RunConfig(
        SIGNAL,
        "pe3",
        16,
        2,
        TrainConfig(epochs=6, lr=1e-2),
        (
            SnapshotSpec(Schedule(explicit=(0, 3))),
            SnapshotSpec(Schedule(last=True), before_update=False, name="trained"),
            PredictionSpec(Schedule(explicit=(2, 5))),
        ),
    )
    run = execute_run(cfg)
    assert run.get("snapshot", "epochs").tolist() == [0, 3]
    x = cfg.encoding()(torch.as_tensor(run.get("signal", "t"))).float()
    with torch.no_grad():
        before = model_at(cfg, run, 1, torch.float32)(x).double().numpy()  # start of epoch 3
        after = model_at(cfg, run, -1, torch.float32, name="trained")(x).double().numpy()
    preds = run.get("prediction", "pred")
    np.testing.assert_array_equal(before, preds[0])  # = after epoch 2
    np.testing.assert_array_equal(after, preds[1])
    torch.manual_seed(stream_seed(cfg.seed, "init"))
    init = torch.nn.Linear(cfg.encoding().out_dim, 16).weight.double()
    assert torch.equal(model_at(cfg, run, 0).layers[0].weight, init)
    with pytest.raises(ConfigError, match="no parameter snapshots"):
        model_at(cfg, run, name="missing")
    state = torch.random.get_rng_state()
    model_at(cfg, run)
    assert torch.equal(torch.random.get_rng_state(), state), "model_at moved the global RNG"


# --------------------------------------------------------------------------- families


def siren_config(**kwargs):
    from specbias.families import SIREN

    base = {
        "input": "raw11",
        "family": SIREN(width=16, depth=2),
        "probes": (),
        "train": TrainConfig(epochs=8, lr=1e-4),
    }
    return config(**{**base, **kwargs})


def test_family_field_keeps_old_keys_and_an_explicit_relu_mlp_shares_them():
    from specbias.families import ReLUMLP

    plain = config()
    assert "family" not in json.dumps(plain.to_json())
    explicit = config(family=ReLUMLP(width=16, depth=2))
    assert explicit.family is None and explicit.key() == plain.key()
    siren = siren_config()
    assert siren.to_json()["family"] == {"type": "SIREN", "width": 16, "depth": 2, "omega0": 30.0}
    assert siren.key() != siren_config(family=dataclasses.replace(siren.family, omega0=20.0)).key()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 32}, "family SIREN is 2×16, the run 2×32"),
        ({"probes": (HammingSpec(Schedule(last=True), PAIRS),)}, "HammingSpec needs activation patterns"),
        ({"probes": (RegionSpec(Schedule(last=True)),)}, "RegionSpec needs activation patterns"),
        ({"probes": (NormSpec(Schedule(last=True)),)}, "NormSpec reads the weights of a plain ReLU MLP"),
    ],
)
def test_family_mismatches_and_probes_it_cannot_take_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        siren_config(**kwargs)


def test_hash_grid_runs_take_pattern_probes_but_not_weight_geometry():
    from specbias.families import HashGridMLP

    grid = HashGridMLP(
        width=16, depth=2, levels=4, log2_table_size=6, base_resolution=4, finest_resolution=64
    )
    cfg = config(
        family=grid, probes=(RegionSpec(Schedule(last=True)), HammingSpec(Schedule(last=True), PAIRS))
    )
    run = execute_run(cfg)
    assert run.meta["family"] == "hashgrid" and run.meta["n_hidden"] == 32
    assert 1 <= run.get("regions", "all")[-1] <= SIGNAL.n
    with pytest.raises(ConfigError, match="BoundarySpec"):
        config(family=grid, probes=(BoundarySpec(Schedule(last=True)),))


def test_a_family_run_trains_the_family_network_and_model_at_rebuilds_it():
    from specbias.families import SIREN
    from specbias.training import train

    probes = (
        PredictionSpec(Schedule(last=True)),
        SnapshotSpec(Schedule(last=True), before_update=False),
        ConvergenceSpec(Schedule(every=4)),
    )
    cfg = siren_config(probes=probes, dtype="float64")
    run = execute_run(cfg)
    sig = SIGNAL.build(3)
    x = 2 * torch.as_tensor(sig.t) - 1
    model = SIREN(width=16, depth=2).build(1, 1, seed=3).double()
    train(model, x, torch.as_tensor(sig.y), cfg.train, seed=3)
    with torch.no_grad():
        np.testing.assert_array_equal(run.get("prediction", "pred")[0], model(x).numpy())
        np.testing.assert_array_equal(model_at(cfg, run, -1)(x).numpy(), model(x).numpy())
    assert run.meta["family"] == "siren" and run.meta["n_params"] == 2 * 16 + 17 * 16 + 17


def test_confusion_before_the_update_sees_the_initialisation():
    from specbias.metrics.gradients import gradient_confusion

    spec = ConfusionSpec(Schedule(explicit=(0, 4)), PAIRS, before_update=True)
    assert "before_update" in json.dumps(to_jsonable(spec))
    assert "before_update" not in json.dumps(to_jsonable(ConfusionSpec(Schedule(), PAIRS)))
    cfg = siren_config(probes=(spec,), dtype="float64")
    run = execute_run(cfg)
    assert run.get("confusion", "epochs").tolist() == [0, 4]
    sig = SIGNAL.build(3)
    x, y = 2 * torch.as_tensor(sig.t) - 1, torch.as_tensor(sig.y)
    pairs = PAIRS.sample(sig.shape, runs_mod.rng_for(3, "pairs:confusion"), False)
    init = cfg.family.build(1, 1, seed=3).double()
    expected = gradient_confusion(init, x, y, pairs["local"], method="func").values
    np.testing.assert_allclose(run.get("confusion", "local_cos")[0], expected, atol=1e-10)


def test_kernel_spec_records_the_spectrum_and_alignment_at_initialisation():
    from specbias.metrics.ntk import empirical_ntk

    spec = KernelSpec(Schedule(explicit=(0,)), top=8)
    cfg = siren_config(probes=(spec,), dtype="float64")
    run = execute_run(cfg)
    eig = run.get("ntk", "eigvals")[0]
    assert eig.shape == (8,) and np.all(np.diff(eig) <= 1e-9)
    theta = empirical_ntk(cfg.family.build(1, 1, seed=3).double(), 2 * torch.as_tensor(SIGNAL.build(3).t) - 1)
    np.testing.assert_allclose(eig, np.linalg.eigvalsh(theta.numpy())[::-1][:8], rtol=1e-8)
    assert run.get("ntk", "trace")[0] == pytest.approx(float(torch.trace(theta)))
    for key in ("align", "align_high"):
        curve = run.get("ntk", key)[0]
        assert curve.shape == (8,) and np.all(np.diff(curve) >= -1e-12) and 0 <= curve[-1] <= 1
    assert 0 < run.get("ntk", "rate_high")[0] <= 1 and 0 < run.get("ntk", "rate")[0] <= 1
    with pytest.raises(ConfigError):
        KernelSpec(Schedule(), high_share=0.0)


def test_every_probe_spec_builds_its_probe_and_states_its_requirement():
    from typing import get_args

    for spec_type in get_args(runs_mod.ProbeSpec):
        assert callable(spec_type.build)
        assert spec_type.REQUIRES in (None, runs_mod.PATTERNS, runs_mod.PLAIN_MLP)
