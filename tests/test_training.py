"""The training loop: determinism, probe independence, batching, schedules, timing, divergence."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.metrics.pairs import global_pairs_1d, local_pairs_1d
from specbias.models import MLP
from specbias.probes import (
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    PredictionProbe,
    RegionProbe,
)
from specbias.seeding import stream_seed
from specbias.training import Schedule, TrainConfig, make_optimizer, train

N = 48


def data(dtype=torch.float64):
    x = (torch.arange(N, dtype=torch.float64) / N)[:, None]
    y = torch.sin(2 * math.pi * 3 * x) + 0.5 * torch.sin(2 * math.pi * 7 * x)
    return x.to(dtype), y.to(dtype)


def make_model(seed=0, dtype=torch.float64, width=12, depth=2):
    torch.manual_seed(seed)
    return MLP(1, width, depth, 1).to(dtype)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


@dataclass
class ParamProbe:
    """Records the flattened parameters."""

    schedule: Schedule
    name: str = "params"
    before_update: bool = False

    def measure(self, model):
        return {"theta": flat(model).numpy()}


class Recorder(nn.Module):
    """Wraps an MLP and logs which grid samples each training forward pass sees."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.seen: list[list[int]] = []

    def forward(self, x):
        if torch.is_grad_enabled():
            self.seen.append(torch.round(x[:, 0] * N).long().tolist())
        return self.inner(x)


def all_probes(x, y, every=1):
    rng = np.random.default_rng(0)
    pairs = {
        "local": local_pairs_1d(N, rng, n_windows=2, pairs_per_window=5, window=0.25),
        "global": global_pairs_1d(N, rng, n_pairs=6),
    }
    sched = Schedule(every=every)
    return [
        PredictionProbe(x, sched),
        ConvergenceProbe(x, y.numpy(), (3, 7), sched),
        HammingProbe(x, pairs, sched),
        ConfusionProbe(x, y, pairs, sched),
        RegionProbe(x, sched),
        DeadUnitProbe(x, sched),
        ParamProbe(sched, name="after"),
        ParamProbe(sched, name="before", before_update=True),
    ]


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(epochs=25, lr=1e-2),
        TrainConfig(epochs=25, lr=1e-2, batch_size=10),
        TrainConfig(epochs=25, lr=1e-2, batch_size=10, batching="fixed"),
        TrainConfig(epochs=25, lr=1e-2, optimizer="sgd", batch_size=16, momentum=0.9),
    ],
    ids=["full", "reshuffle", "fixed", "sgd"],
)
def test_probes_do_not_change_training(config):
    x, y = data()
    plain = make_model()
    probed = make_model()
    r1 = train(plain, x, y, config, seed=3)
    r2 = train(probed, x, y, config, probes=all_probes(x, y, every=3), seed=3)
    assert torch.equal(flat(plain), flat(probed))
    np.testing.assert_array_equal(r1.losses, r2.losses)
    assert r1.records == {} and set(r2.records) == {
        "prediction",
        "convergence",
        "hamming",
        "confusion",
        "regions",
        "dead",
        "after",
        "before",
    }
    # and a second identical run is bit-identical too
    again = make_model()
    train(again, x, y, config, seed=3)
    assert torch.equal(flat(again), flat(plain))


def test_different_seed_changes_batches_not_full_batch():
    x, y = data()
    a, b = make_model(), make_model()
    cfg = TrainConfig(epochs=5, lr=1e-2, batch_size=8)
    train(a, x, y, cfg, seed=0)
    train(b, x, y, cfg, seed=1)
    assert not torch.equal(flat(a), flat(b))
    a, b = make_model(), make_model()
    cfg = TrainConfig(epochs=5, lr=1e-2)
    train(a, x, y, cfg, seed=0)
    train(b, x, y, cfg, seed=1)
    assert torch.equal(flat(a), flat(b))


# --------------------------------------------------------------------------- batching


def ref_replay(model, x, y, batches_per_epoch, lr, fused=True):
    """Adam on an explicit batch sequence; returns per-epoch size-weighted mean losses."""
    opt = torch.optim.Adam(
        model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, fused=fused
    )
    losses = []
    for batches in batches_per_epoch:
        total = 0.0
        for idx in batches:
            idx = torch.as_tensor(idx)
            opt.zero_grad()
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / x.shape[0])
    return np.array(losses)


def epochs_of(seen, n_batches):
    return [seen[k : k + n_batches] for k in range(0, len(seen), n_batches)]


@pytest.mark.parametrize("batching", ["reshuffle", "fixed"])
def test_minibatch_sequence(batching):
    x, y = data()
    bs, epochs = 10, 6
    rec = Recorder(make_model())
    result = train(rec, x, y, TrainConfig(epochs=epochs, lr=1e-2, batch_size=bs, batching=batching), seed=5)
    n_batches = math.ceil(N / bs)
    assert len(rec.seen) == epochs * n_batches
    per_epoch = epochs_of(rec.seen, n_batches)
    for batches in per_epoch:
        # each epoch is a partition of all samples into consecutive batches of size bs
        assert [len(b) for b in batches] == [bs] * (N // bs) + ([N % bs] if N % bs else [])
        assert sorted(i for b in batches for i in b) == list(range(N))
    orders = [tuple(i for b in batches for i in b) for batches in per_epoch]
    if batching == "fixed":
        # the same batches in the same order every epoch (reference bug B3) ...
        assert len(set(orders)) == 1
        # ... namely the first permutation of the run's "batches" stream
        gen = torch.Generator()
        gen.manual_seed(stream_seed(5, "batches"))
        assert list(orders[0]) == torch.randperm(N, generator=gen).tolist()
    else:
        assert len(set(orders)) == epochs  # a new order every epoch
    # replaying the logged batches by hand gives the same weights and losses
    ref = make_model()
    ref_losses = ref_replay(ref, x, y, per_epoch, 1e-2)
    assert torch.equal(flat(ref), flat(rec.inner))
    np.testing.assert_allclose(result.losses, ref_losses, rtol=1e-12)


def test_fused_adam_is_the_textbook_update_up_to_rounding():
    """The trainer's fused Adam and PyTorch's per-tensor loop agree to float64 rounding."""
    x, y = data()
    model = make_model()
    train(model, x, y, TrainConfig(epochs=30, lr=1e-2), seed=0)
    ref = make_model()
    ref_replay(ref, x, y, [[list(range(N))]] * 30, 1e-2, fused=False)
    torch.testing.assert_close(flat(model), flat(ref), rtol=1e-10, atol=1e-12)
    assert not torch.equal(flat(model), flat(make_model()))


def test_full_batch_uses_every_sample_once_per_epoch():
    x, y = data()
    rec = Recorder(make_model())
    result = train(rec, x, y, TrainConfig(epochs=4, lr=1e-2), seed=0)
    assert rec.seen == [list(range(N))] * 4
    ref = make_model()
    ref_losses = ref_replay(ref, x, y, [[list(range(N))]] * 4, 1e-2)
    assert torch.equal(flat(ref), flat(rec.inner))
    np.testing.assert_allclose(result.losses, ref_losses, rtol=1e-12)
    # the loss of epoch 0 is the MSE at initialisation
    with torch.no_grad():
        np.testing.assert_allclose(result.losses[0], float(((make_model()(x) - y) ** 2).mean()), rtol=1e-12)


def test_full_minibatch_fixed_reshuffle_differ():
    x, y = data()
    results = {}
    for name, cfg in {
        "full": TrainConfig(epochs=10, lr=1e-2),
        "reshuffle": TrainConfig(epochs=10, lr=1e-2, batch_size=12),
        "fixed": TrainConfig(epochs=10, lr=1e-2, batch_size=12, batching="fixed"),
    }.items():
        m = make_model()
        train(m, x, y, cfg, seed=2)
        results[name] = flat(m)
    assert not torch.equal(results["full"], results["reshuffle"])
    assert not torch.equal(results["full"], results["fixed"])
    assert not torch.equal(results["fixed"], results["reshuffle"])
    # a batch at least as large as the data set is full batch
    for bs in (N, N + 5):
        m = make_model()
        train(m, x, y, TrainConfig(epochs=10, lr=1e-2, batch_size=bs), seed=2)
        assert torch.equal(flat(m), results["full"])


def test_optimizers():
    model = make_model()
    adam = make_optimizer(model, TrainConfig(lr=3e-3))
    assert isinstance(adam, torch.optim.Adam)
    group = adam.param_groups[0]
    assert group["lr"] == 3e-3 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert group["weight_decay"] == 0
    sgd = make_optimizer(model, TrainConfig(lr=0.1, optimizer="sgd", momentum=0.5))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["lr"] == 0.1 and sgd.param_groups[0]["momentum"] == 0.5


def test_sgd_step_matches_manual_update():
    x, y = data()
    model = make_model()
    theta0 = flat(model)
    ref = make_model()
    loss = ((ref(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    expected = theta0 - 0.05 * torch.cat([g.reshape(-1) for g in grads])
    train(model, x, y, TrainConfig(epochs=1, lr=0.05, optimizer="sgd"))
    torch.testing.assert_close(flat(model), expected, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- schedules


def ref_logspaced(total, k):
    if k == 1:
        return [0]
    return sorted({round(total ** (i / (k - 1))) - 1 for i in range(k)})


def test_schedule_every_last_explicit():
    assert Schedule(every=25).epochs(500) == list(range(0, 500, 25))
    assert len(Schedule(every=25).epochs(500)) == 20
    assert Schedule(every=1).epochs(5) == [0, 1, 2, 3, 4]
    assert Schedule(every=100).epochs(50) == [0]
    assert Schedule(last=True).epochs(500) == [499]
    assert Schedule(last=True).epochs(1) == [0]
    assert Schedule(explicit=(7, 3, 3, 1000)).epochs(500) == [3, 7]
    assert Schedule(explicit=(499, 500)).epochs(500) == [499]
    assert Schedule().epochs(100) == []
    assert Schedule(every=10, last=True, explicit=(5,)).epochs(35) == [0, 5, 10, 20, 30, 34]
    assert Schedule(every=10, last=True).epochs(0) == []


@pytest.mark.parametrize("total,k", [(1000, 4), (500, 20), (100, 10), (2500, 30), (7, 3), (50, 50), (10, 1)])
def test_schedule_logspaced(total, k):
    got = Schedule(logspaced=k).epochs(total)
    assert got == ref_logspaced(total, k)
    assert got[0] == 0
    if k > 1:
        assert got[-1] == total - 1
    assert len(got) <= k


def test_schedule_logspaced_paper_example():
    assert Schedule(logspaced=4).epochs(1000) == [0, 9, 99, 999]


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"every": -5}, {"logspaced": 0}, {"explicit": (3, -1)}])
def test_schedule_rejects(kwargs):
    with pytest.raises(ConfigError):
        Schedule(**kwargs)


# --------------------------------------------------------------------------- timing


def test_before_and_after_update_timing():
    x, y = data()
    model = make_model()
    init = copy.deepcopy(model)
    sched = Schedule(every=1)
    probes = [ParamProbe(sched, name="before", before_update=True), ParamProbe(sched, name="after")]
    result = train(model, x, y, TrainConfig(epochs=5, lr=1e-2), probes=probes)
    before, after = result.records["before"], result.records["after"]
    np.testing.assert_array_equal(before["epochs"], np.arange(5))
    np.testing.assert_array_equal(after["epochs"], np.arange(5))
    assert before["theta"].shape == after["theta"].shape == (5, flat(model).numel())
    # before at epoch 0 is the initialisation
    np.testing.assert_array_equal(before["theta"][0], flat(init).numpy())
    # after at epoch 0 is one Adam step from the initialisation
    one = copy.deepcopy(init)
    opt = torch.optim.Adam(one.parameters(), lr=1e-2)
    opt.zero_grad()
    ((one(x) - y) ** 2).mean().backward()
    opt.step()
    np.testing.assert_array_equal(after["theta"][0], flat(one).numpy())
    assert not np.array_equal(after["theta"][0], before["theta"][0])
    # before at epoch e sees what after saw at e-1; the last after is the final model
    np.testing.assert_array_equal(before["theta"][1:], after["theta"][:-1])
    np.testing.assert_array_equal(after["theta"][-1], flat(model).numpy())


def test_records_follow_each_schedule():
    x, y = data()
    probes = [
        ParamProbe(Schedule(every=4), name="a"),
        ParamProbe(Schedule(last=True), name="b", before_update=True),
        ParamProbe(Schedule(explicit=(2, 5)), name="c"),
    ]
    result = train(make_model(), x, y, TrainConfig(epochs=10, lr=1e-3), probes=probes)
    np.testing.assert_array_equal(result.records["a"]["epochs"], [0, 4, 8])
    np.testing.assert_array_equal(result.records["b"]["epochs"], [9])
    np.testing.assert_array_equal(result.records["c"]["epochs"], [2, 5])
    assert result.records["a"]["theta"].shape[0] == 3
    assert result.records["a"]["epochs"].dtype == np.int64
    assert result.diverged_at is None and np.isfinite(result.losses).all()
    assert result.losses.shape == (10,)
    assert result.seconds > 0


def test_duplicate_probe_names_rejected():
    x, y = data()
    probes = [ParamProbe(Schedule(every=1)), ParamProbe(Schedule(last=True))]
    with pytest.raises(ConfigError):
        train(make_model(), x, y, TrainConfig(epochs=2), probes=probes)


# --------------------------------------------------------------------------- divergence


def test_divergence_stops_training():
    x, y = data(torch.float32)
    model = make_model(dtype=torch.float32)
    probes = [
        ParamProbe(Schedule(every=1), name="after"),
        ParamProbe(Schedule(every=1), name="before", before_update=True),
    ]
    result = train(model, x, y, TrainConfig(epochs=300, lr=1e6, optimizer="sgd"), probes=probes)
    d = result.diverged_at
    assert d is not None
    assert np.isfinite(result.losses[:d]).all()
    assert not np.isfinite(result.losses[d])
    # after-update probes run every epoch, so the loop stops at the divergent epoch itself
    np.testing.assert_array_equal(result.records["after"]["epochs"], np.arange(d))
    np.testing.assert_array_equal(result.records["before"]["epochs"], np.arange(d + 1))
    assert np.isnan(result.losses[d + 1 :]).all()


def test_divergence_without_probes_stops_early():
    x, y = data(torch.float32)
    probes = [ParamProbe(Schedule(every=1), name="before", before_update=True)]
    result = train(
        make_model(dtype=torch.float32), x, y, TrainConfig(epochs=300, lr=1e6, optimizer="sgd"), probes
    )
    d = result.diverged_at
    assert d is not None and d < 50
    assert not np.isfinite(result.losses[d])
    seen = result.records["before"]["epochs"]
    assert seen.max() < 299  # stopped long before the last epoch
    assert seen.max() <= d + 49


def test_divergence_in_a_short_run_is_reported():
    x, y = data(torch.float32)
    result = train(make_model(dtype=torch.float32), x, y, TrainConfig(epochs=8, lr=1e6, optimizer="sgd"))
    d = result.diverged_at
    assert d is not None and d < 8
    assert np.isfinite(result.losses[:d]).all() and not np.isfinite(result.losses[d])


def test_no_divergence_at_small_lr():
    x, y = data()
    result = train(make_model(), x, y, TrainConfig(epochs=30, lr=1e-3))
    assert result.diverged_at is None
    assert result.losses[-1] < result.losses[0]


# --------------------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"epochs": -1},
        {"lr": 0.0},
        {"lr": -1e-3},
        {"lr": math.nan},
        {"lr": math.inf},
        {"optimizer": "rmsprop"},
        {"batch_size": 0},
        {"batch_size": -4},
        {"batching": "random"},
    ],
)
def test_train_config_rejects(kwargs):
    with pytest.raises(ConfigError):
        TrainConfig(**kwargs)


def test_unknown_loss_is_a_config_error():
    x, y = data()
    with pytest.raises(ConfigError, match="loss must be one of mse, ce, got 'l1'"):
        train(make_model(), x, y, TrainConfig(epochs=1), loss="l1")
