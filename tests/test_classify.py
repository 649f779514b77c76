"""Real-data classifier runs: the run description, the training loop, the probes, the runner."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import specbias.classify as classify_mod
from specbias.classify import (
    ClassifierRun,
    CurvesProbe,
    KnnSpec,
    evaluate,
)
from specbias.cost import run_cost
from specbias.datasets import DataSpec
from specbias.errors import ConfigError
from specbias.metrics.pairs import Pairs
from specbias.models import CNN, MLP
from specbias.probes import ConfusionProbe, HammingProbe
from specbias.results import RunStore
from specbias.runner import run_all
from specbias.training import Schedule, TrainConfig, train


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the runner's workers use (small nets; no thread contention)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> DataSpec:
    """60 random 8×8 images of 3 classes (48 train, 12 test)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, X=rng.integers(0, 256, (60, 8, 8)).astype(np.uint8), y=np.arange(60) % 3)
    return DataSpec.of(str(path))


def small_run(data: DataSpec, model: str = "mlp", **kwargs) -> ClassifierRun:
    args = {
        "width": 16,
        "depth": 2,
        "train": TrainConfig(epochs=4, batch_size=16),
        "pairs": KnnSpec(anchors=8, k=3),
        "hamming": Schedule(every=2),
        "confusion": Schedule(explicit=(3,)),
        **kwargs,
    }
    return ClassifierRun(data, model, **args)


def random_data(n: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=g
    )


# --------------------------------------------------------------------------- the run description


def test_key_json_and_label(tiny):
    run = small_run(tiny)
    assert run.input == "mlp tiny"
    assert json.loads(json.dumps(run.to_json()))["data"]["digest"] == tiny.digest
    assert run.key() == small_run(tiny).key()
    others = [
        small_run(tiny, "cnn"),
        small_run(tiny, seed=1),
        small_run(tiny, mode="faithful"),
        small_run(tiny, width=8),
    ]
    assert len({run.key(), *(o.key() for o in others)}) == 5


# E17's first quick-profile run, keyed at version 0.2.0 before ClassifierRun had output_jacobian
E17_DIGITS = DataSpec("digits", "", 0.2, 1438, 359, (1, 8, 8), 10)
E17_FIRST = ClassifierRun(
    E17_DIGITS,
    "mlp",
    256,
    4,
    TrainConfig(epochs=30, batch_size=512),
    KnnSpec(anchors=100, k=10),
    hamming=Schedule(every=2, last=False),
    confusion=Schedule(explicit=(24,), last=False),
)


def test_output_jacobian_keeps_old_keys_and_changes_the_key_when_on(monkeypatch):
    monkeypatch.setattr(classify_mod, "__version__", "0.2.0")
    assert E17_FIRST.key() == "e3142276403abb9e"
    assert "output_jacobian" not in E17_FIRST.to_json()
    on = dataclasses.replace(E17_FIRST, output_jacobian=True)
    assert on.to_json()["output_jacobian"] is True and on.key() != E17_FIRST.key()


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"model": "resnet"}, "model must be one of mlp, cnn"),
        ({"mode": "exact"}, "mode must be"),
        ({"width": 0}, "width must be"),
        ({"depth": 1.5}, "depth must be"),
        ({"train": TrainConfig(batching="fixed")}, "reshuffle"),
        ({"pairs": KnnSpec(anchors=5, k=48)}, "1 <= k < 48"),
        ({"pairs": KnnSpec(anchors=0, k=2)}, "anchors >= 1"),
        ({"pairs": KnnSpec(anchors=5, k=2.5)}, "integer anchors .* k=2.5"),
        ({"pairs": KnnSpec(anchors=5.0, k=2)}, "anchors=5.0"),
    ],
)
def test_bad_runs_raise(tiny, kwargs, needle):
    model = kwargs.pop("model", "mlp")
    with pytest.raises(ConfigError, match=needle):
        small_run(tiny, model, **kwargs)


def test_faithful_mlp_ignores_the_class_flag_b9(tiny):
    loose = KnnSpec(anchors=4, k=2, different_class=False)
    assert not small_run(tiny, pairs=loose).different_class()
    assert small_run(tiny, pairs=loose, mode="faithful").different_class()
    assert not small_run(tiny, "cnn", pairs=loose, mode="faithful").different_class()


def test_cost_counts_training_and_evaluation(tiny):
    for model, macs in (("mlp", 64 * 16 + 16 * 16 + 16 * 3), ("cnn", CNN((1, 8, 8), 3).macs())):
        flops, steps = small_run(tiny, model).flops_and_steps()
        assert steps == 4 * 3  # ceil(48 / 16) steps per epoch
        assert flops == pytest.approx((6 * 48 + 2 * 60) * macs * 4)
        assert run_cost(small_run(tiny, model)).flops == flops
    assert MLP(64, 16, 2, 3).macs() == 64 * 16 + 16 * 16 + 16 * 3


# --------------------------------------------------------------------------- training and probes


def test_full_batch_epoch_loss_is_the_mean_loss_before_the_update():
    """Full batch: epoch e's loss is the mean CE at the weights the curves probe saw after e − 1."""
    x, y = random_data(40, (6,), 4, 1)
    torch.manual_seed(0)
    model = MLP(6, 12, 2, 4).double()
    curves = CurvesProbe(x, y, x[:5], y[:5], Schedule(every=1))
    result = train(model, x, y, TrainConfig(epochs=6, batch_size=None), [curves], loss="ce")
    np.testing.assert_allclose(result.losses[1:], result.records["curves"]["train_loss"][:-1], rtol=1e-12)
    assert result.diverged_at is None and result.losses[-1] < result.losses[0]


def test_probes_never_change_the_training():
    x, y = random_data(50, (1, 8, 8), 3, 2)
    runs = []
    for probes in ((), (HammingProbe(x, {"p": Pairs(np.arange(5), np.arange(5, 10))}, Schedule(every=1)),)):
        torch.manual_seed(3)
        model = CNN((1, 8, 8), 3, channels=(2, 3, 4), hidden=5).double()
        runs.append(train(model, x, y, TrainConfig(epochs=3, batch_size=16), probes, seed=7, loss="ce"))
        runs[-1].weights = [p.detach().clone() for p in model.parameters()]
    np.testing.assert_array_equal(runs[0].losses, runs[1].losses)
    for a, b in zip(runs[0].weights, runs[1].weights):
        assert torch.equal(a, b)
    assert runs[1].records["hamming"]["p_mean"].shape == (3,)


def test_batches_follow_the_seed():
    x, y = random_data(50, (5,), 3, 3)
    losses = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        losses.append(
            train(MLP(5, 8, 1, 3).double(), x, y, TrainConfig(3, batch_size=8), seed=seed, loss="ce").losses
        )
    np.testing.assert_array_equal(losses[0], losses[1])
    assert not np.array_equal(losses[0], losses[2])


def test_divergence_stops_the_run():
    x, y = random_data(30, (4,), 3, 4)
    torch.manual_seed(0)
    model = MLP(4, 8, 2, 3)
    with torch.no_grad():
        model.layers[0].weight.fill_(float("nan"))
    result = train(model, x.float(), y, TrainConfig(epochs=5), [], loss="ce")
    assert result.diverged_at == 0
    assert np.isnan(result.losses).all()


def test_evaluate_matches_a_per_example_loop(monkeypatch):
    monkeypatch.setattr("specbias.classify.EVAL_CHUNK", 7)
    x, y = random_data(30, (5,), 4, 5)
    torch.manual_seed(1)
    model = MLP(5, 9, 2, 4).double()
    losses, hits = [], []
    with torch.no_grad():
        for k in range(30):
            logits = model(x[k])
            losses.append(float(torch.logsumexp(logits, 0) - logits[y[k]]))
            hits.append(int(torch.argmax(logits)) == int(y[k]))
    loss, acc = evaluate(model, x, y)
    assert loss == pytest.approx(np.mean(losses), rel=1e-12)
    assert acc == pytest.approx(np.mean(hits))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_confusion_probe_matches_autograd_cosines(kind):
    x, y = random_data(14, (1, 8, 8), 3, 6)
    torch.manual_seed(2)
    if kind == "mlp":
        x, model = x.flatten(1), MLP(64, 10, 2, 3).double()
    else:
        model = CNN((1, 8, 8), 3, channels=(2, 3, 4), hidden=5).double()
    pairs = {
        "local": Pairs(np.array([0, 0, 3]), np.array([1, 5, 9])),
        "global": Pairs(np.array([2]), np.array([13])),
    }
    out = ConfusionProbe(x, y, pairs, Schedule(every=1), loss="ce").measure(model)

    def grad(k: int) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(model(x[k : k + 1]), y[k : k + 1])
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])

    for name, p in pairs.items():
        ref = [
            float(torch.nn.functional.cosine_similarity(grad(a), grad(b), dim=0)) for a, b in zip(p.i, p.j)
        ]
        np.testing.assert_allclose(out[f"{name}_cos"], ref, rtol=1e-10, atol=1e-12)
        assert out[f"{name}_n_zero"] == 0


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_confusion_probe_output_jacobian_matches_jacrev_cosines(kind):
    """``{kind}_jac_cos`` = tr(J_i J_jᵀ)/(‖J_i‖_F ‖J_j‖_F) over all logits (Gram identity for the MLP,
    torch.func for the CNN) against per-example torch.func.jacrev Jacobians."""
    from torch.func import functional_call, jacrev

    x, y = random_data(14, (1, 8, 8), 3, 6)
    torch.manual_seed(2)
    if kind == "mlp":
        x, model = x.flatten(1), MLP(64, 10, 2, 3).double()
    else:
        model = CNN((1, 8, 8), 3, channels=(2, 3, 4), hidden=5).double()
    pairs = {
        "local": Pairs(np.array([0, 0, 3]), np.array([1, 5, 9])),
        "global": Pairs(np.array([2]), np.array([13])),
    }
    out = ConfusionProbe(x, y, pairs, Schedule(every=1), loss="ce", output_jacobian=True).measure(model)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def jac(k: int) -> torch.Tensor:
        rows = jacrev(lambda p: functional_call(model, p, (x[k : k + 1],))[0])(params)
        return torch.cat([r.reshape(3, -1) for r in rows.values()], dim=1).flatten()

    for name, p in pairs.items():
        ref = [float(torch.nn.functional.cosine_similarity(jac(a), jac(b), dim=0)) for a, b in zip(p.i, p.j)]
        np.testing.assert_allclose(out[f"{name}_jac_cos"], ref, rtol=1e-10, atol=1e-12)
        assert out[f"{name}_jac_cos"].shape == out[f"{name}_cos"].shape


def test_cnn_hamming_counts_every_conv_and_fc_unit():
    """The probe's Hamming distance against sign bits taken from the layers one by one."""
    x, _ = random_data(12, (1, 8, 8), 3, 8)
    torch.manual_seed(4)
    model = CNN((1, 8, 8), 3, channels=(3, 4, 5), hidden=7).double()
    pairs = {"p": Pairs(np.array([0, 1, 2, 3]), np.array([4, 5, 6, 3]))}
    out = HammingProbe(x, pairs, Schedule(every=1)).measure(model)
    with torch.no_grad():
        a1 = model.convs[0](x)
        a2 = model.convs[1](torch.relu(a1))
        a3 = model.convs[2](torch.relu(a2))
        fc = model.fc(torch.relu(a3).reshape(12, -1))
    bits = [(z.reshape(12, -1) > 0).numpy() for z in (a1, a2, a3, fc)]
    per_layer = np.array(
        [[int((b[i] != b[j]).sum()) for i, j in zip(pairs["p"].i, pairs["p"].j)] for b in bits]
    )
    assert sum(b.shape[1] for b in bits) == model.n_hidden == 3 * 36 + 4 * 16 + 5 * 4 + 7
    np.testing.assert_allclose(out["p_layer_mean"], per_layer.mean(axis=1))
    assert out["p_mean"] == pytest.approx(per_layer.sum(axis=0).mean())
    assert per_layer[:, 3].sum() == 0  # a point against itself


# --------------------------------------------------------------------------- whole runs


def test_execute_mlp_and_cnn_share_pairs_and_give_every_record(tiny):
    runs = {m: small_run(tiny, m).execute() for m in ("mlp", "cnn")}
    for model, run in runs.items():
        assert run.get("curves", "epochs").tolist() == [0, 1, 2, 3]
        assert run.get("hamming", "epochs").tolist() == [0, 2]
        assert run.get("confusion", "epochs").tolist() == [3]
        assert run.get("confusion", "local_cos").shape == (1, 24)
        assert run.get("train", "loss").shape == (4,)
        assert run.meta["n_anchors"] == 8 and run.meta["n_points"] == 48 and run.meta["n_test"] == 12
        assert run.meta["model"] == model and run.meta["diverged_at"] is None
    assert runs["cnn"].meta["cnn_stride"] == 1 and runs["cnn"].meta["n_hidden"] == 2816
    for key in ("local_i", "local_j", "global_j"):
        np.testing.assert_array_equal(runs["mlp"].get("pairs", key), runs["cnn"].get("pairs", key))
    data = tiny.load(0)
    labels = data.y_train
    local_i, local_j = runs["mlp"].get("pairs", "local_i"), runs["mlp"].get("pairs", "local_j")
    assert (labels[local_i] != labels[local_j]).all()
    flat = data.x_train.reshape(48, -1)
    np.testing.assert_allclose(
        runs["mlp"].get("pairs", "local_dist"),
        np.linalg.norm(flat[local_i] - flat[local_j], axis=1),
        rtol=1e-6,
    )
    near = runs["mlp"].get("pairs", "local_dist").reshape(8, 3)
    far = runs["mlp"].get("pairs", "global_dist").reshape(8, 3)
    assert (np.diff(near, axis=1) >= 0).all() and (
        np.diff(far, axis=1) <= 0
    ).all()  # nearest / farthest first
    assert (far.min(axis=1) >= near.max(axis=1)).all()


def test_execute_records_the_output_jacobian_cosine_when_asked(tiny):
    run = small_run(tiny, "cnn", output_jacobian=True).execute()
    for kind in ("local", "global"):
        jac = run.get("confusion", f"{kind}_jac_cos")
        assert jac.shape == run.get("confusion", f"{kind}_cos").shape == (1, 24)
        assert np.all(np.abs(jac) <= 1)


def test_runner_caches_a_classifier_run(tiny, tmp_path):
    store = RunStore(tmp_path)
    cfg = small_run(tiny, train=TrainConfig(epochs=2, batch_size=16), confusion=Schedule(explicit=(1,)))
    (first,) = run_all([cfg], store, workers=1, progress=False)
    assert store.has(cfg)
    assert json.loads((store.path(cfg) / "config.json").read_text())["model"] == "mlp"
    (again,) = run_all([cfg], store, workers=1, progress=False)
    assert again.meta["seconds"] == first.meta["seconds"]  # loaded, not recomputed
    np.testing.assert_array_equal(again.get("curves", "test_loss"), first.get("curves", "test_loss"))
