"""E17-E19: parameters and overrides, shared runs, the analysis and its computed findings."""

from __future__ import annotations

import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from specbias import classify as classify_mod
from specbias.claims import Outcome, Verdict
from specbias.errors import ConfigError
from specbias.experiments import get_experiment
from specbias.experiments.base import ExperimentResult
from specbias.experiments.realdata import PAPER, QUICK, Checkpoint, RealData
from specbias.pipeline import execute, plan
from specbias.runs import RunData
from specbias.training import TrainConfig


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> str:
    """90 random 8×8 images of 3 classes: 72 train (24 per class on average), 18 test."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    y = np.arange(90) % 3
    x = rng.normal(size=(90, 8, 8)) + y[:, None, None] * np.linspace(-1, 1, 8)[None, None, :]
    np.savez(path, X=x, y=y)
    return str(path)


def test_profiles_and_labels():
    assert (PAPER.width, PAPER.depth, PAPER.train.epochs, PAPER.train.batch_size) == (512, 4, 100, 512)
    assert (PAPER.pairs.anchors, PAPER.pairs.k, PAPER.confusion_epoch, PAPER.hamming_every) == (
        2500,
        25,
        24,
        5,
    )
    assert QUICK.labels() == ["mlp digits", "cnn digits"]
    assert QUICK.train.epochs > QUICK.confusion_epoch


def test_override_and_runs(tiny_npz):
    params = QUICK.override(epochs=10, lr=0.01, width=8, depth=2, mode="faithful", data=tiny_npz)
    assert (params.train.epochs, params.train.lr, params.width, params.mode) == (10, 0.01, 8, "faithful")
    assert params.labels() == ["mlp blobs", "cnn blobs"]
    runs = params.runs(2)
    assert [(r.model, r.seed) for r in runs] == [("mlp", 0), ("mlp", 1), ("cnn", 0), ("cnn", 1)]
    assert all(r.confusion.epochs(10) == [9] for r in runs)  # epoch 24 clamped to the last one
    assert runs[0].data.n_train == 72 and runs[0].data.digest
    assert QUICK.runs(1)[0].confusion.epochs(QUICK.train.epochs) == [24]


def test_the_three_experiments_share_runs():
    keys = [
        {r.key() for r in plan(get_experiment(e), "quick", None, {}).configs} for e in ("E17", "E18", "E19")
    ]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 2 * QUICK.seeds


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"models": ()}, "models must be"),
        ({"models": ("mlp", "mlp")}, "models must be"),
        ({"models": ("vit",)}, "models must be"),
        ({"width": 0}, "width must be"),
        ({"seeds": 0}, "seeds must be"),
        ({"hamming_every": 0}, "hamming_every must be"),
        ({"hamming_every": 2.5}, "hamming_every must be an integer >= 1, got 2.5"),
        ({"seeds": 1.5}, "seeds must be an integer"),
        ({"confusion_epoch": -1}, "confusion_epoch must be an integer >= 0"),
        ({"confusion_epoch": 24.0}, "confusion_epoch must be an integer"),
        ({"mode": "loose"}, "mode must be"),
    ],
)
def test_bad_params_raise(change, needle):
    with pytest.raises(ConfigError, match=needle):
        dataclasses.replace(QUICK, **change)


def test_bad_data_file_is_caught_at_override(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        QUICK.override(data=str(tmp_path / "nope.npz"))


def test_end_to_end_on_a_small_npz(tiny_npz, tmp_path):
    over = {"data": tiny_npz, "epochs": 6, "width": 8, "depth": 2}
    plans = [plan(get_experiment(e), "quick", 1, over) for e in ("E17", "E18", "E19")]
    done = {p.experiment.id: (r, path) for p, r, path in execute(plans, tmp_path, workers=1, progress=False)}
    assert len(list((tmp_path / "runs").iterdir())) == 2  # one MLP and one CNN run for all three
    e17, path17 = done["E17"]
    assert set(e17.figures) == {"confusion_epoch5", "jacobian_epoch5"}
    assert len(e17.findings) == 12  # six per model
    setup = e17.summary["setup"]
    assert setup["anchors"] == 72 and setup["cnn_stride"] == 1 and setup["output_jacobian"] == ["mlp blobs"]
    assert e17.arrays["cos_local/mlp blobs/epoch5"].shape == (1, 720)
    assert e17.arrays["jac_cos_local/mlp blobs/epoch5"].shape == (1, 720)
    assert "jac_cos_local/cnn blobs/epoch5" not in e17.arrays
    # one seed: no interval, so every measured claim is inconclusive; the CNN has no Jacobians here
    outcomes = {(v.claim.split(":")[0], v.outcome) for v in e17.findings}
    assert outcomes == {
        ("mlp blobs", Outcome.INCONCLUSIVE),
        ("cnn blobs", Outcome.INCONCLUSIVE),
        ("cnn blobs", Outcome.NOT_MEASURABLE),
    }
    written = json.loads((path17 / "summary.json").read_text())["findings"]
    assert all(f["verdict"] in {o.value for o in Outcome} and f["n"] in (0, 1) for f in written)
    e18, path18 = done["E18"]
    assert (path18 / "figures" / "hamming.png").is_file()
    assert e18.arrays["hamming_epochs"].tolist() == [0, 2, 4]
    inputs = e18.summary["inputs"]
    assert inputs["cnn blobs"]["hamming_local_ratio"] == pytest.approx(
        inputs["cnn blobs"]["hamming_local"] / 2816
    )
    assert len(e18.findings) == 6
    e19, _ = done["E19"]
    curves = e19.arrays["test_loss/mlp blobs"]
    assert curves.shape == (1, 6)
    assert e19.summary["inputs"]["mlp blobs"]["min_test_loss"] == pytest.approx(curves.min())
    assert {row[4] for row in e19.rows} >= {"curve", "train_loss"}
    assert len(e19.findings) == 6


def test_quick_profile_judges_on_three_seeds_and_keeps_the_cnn_hashes(monkeypatch):
    monkeypatch.setattr(classify_mod, "__version__", "0.2.0")
    n = QUICK.seeds
    runs = QUICK.runs(n)
    assert n >= 3
    assert [r.output_jacobian for r in runs] == [True] * n + [False] * n
    # the CNN runs' hashes are the ones cached before output_jacobian existed (0.2.0)
    assert [r.key() for r in runs if r.model == "cnn"][:3] == [
        "20303cce0fe147eb",
        "eaed4ddeff0d68d3",
        "647ff36c66e6c818",
    ]
    assert all(r.output_jacobian for r in PAPER.runs(1))
    with pytest.raises(ConfigError, match="output_jacobian must name models"):
        RealData(output_jacobian=("vit",))


# --------------------------------------------------------------------------- claims on synthetic runs

SMALL = dataclasses.replace(QUICK, train=TrainConfig(epochs=8, batch_size=512))
"""The quick profile cut to 8 epochs: Hamming checkpoints 0, 2, 4, 6; confusion after epoch 7."""


def synthetic(cfg, rng: np.random.Generator, **arrays: np.ndarray) -> tuple:
    """A finished run of ``cfg`` with real-image-like values (neighbours' gradients mildly
    anti-aligned, distant ones orthogonal, Hamming far > near, a learning classifier), each seed
    drawn with its own noise; ``arrays`` replace entries by name (``"hamming/local_mean"`` …)."""
    n, hidden = 300, 500
    noise = rng.normal(0, 0.02)
    data = {
        "train/loss": np.linspace(2.3, 0.1, 4),
        "confusion/epochs": np.array(cfg.confusion.epochs(cfg.train.epochs)),
        "confusion/local_cos": rng.normal(-0.3 + noise, 0.1, (1, n)),
        "confusion/global_cos": rng.normal(noise, 0.05, (1, n)),
        "confusion/local_n_zero": np.array([0]),
        "confusion/global_n_zero": np.array([0]),
        "hamming/epochs": np.array(cfg.hamming.epochs(cfg.train.epochs)),
        "hamming/local_mean": np.array([60.0, 55, 50, 45]) * (1 + noise),
        "hamming/global_mean": np.array([300.0, 260, 230, 200]) * (1 + noise),
        "curves/epochs": np.arange(4),
        "curves/train_loss": np.array([2.3, 1.0, 0.3, 0.1]) * (1 + noise),
        "curves/test_loss": np.array([2.3, 1.0, 0.5, 0.5]) * (1 + noise),
        "curves/train_acc": np.array([0.1, 0.7, 0.9, 0.99]),
        "curves/test_acc": np.array([0.1, 0.7, 0.9, 0.95]) + noise,
    }
    if cfg.output_jacobian:
        data["confusion/local_jac_cos"] = np.clip(rng.normal(0.88 + noise, 0.05, (1, n)), -1, 1)
        data["confusion/global_jac_cos"] = rng.normal(0.5 + noise, 0.1, (1, n))
    data.update({k.replace("__", "/"): v for k, v in arrays.items()})
    for kind in ("local", "global"):
        data[f"hamming/{kind}_std"] = data[f"hamming/{kind}_mean"] * 0.1
        data[f"hamming/{kind}_layer_mean"] = np.stack([data[f"hamming/{kind}_mean"] / 2] * 2, axis=1)
    meta = {
        "input": cfg.input, "seed": cfg.seed, "model": cfg.model, "diverged_at": None, "n_params": 5000,
        "n_hidden": hidden, "in_dim": 64, "aliased_features": 0, "n_classes": 10, "n_anchors": 100,
        "different_class": True, "cnn_stride": 1 if cfg.model == "cnn" else None,
    }  # fmt: skip
    return cfg, RunData(data, meta)


def analyse(exp: str, seeds: int = 3, **per_model) -> ExperimentResult:
    """The experiment's analysis of synthetic runs of :data:`SMALL`; ``per_model[model]`` is a function
    ``(seed) -> dict`` of array replacements (``"hamming__local_mean"`` …)."""
    rng = np.random.default_rng(7)
    changes = {model: per_model.get(model, lambda seed: {}) for model in QUICK.models}
    runs = [synthetic(cfg, rng, **changes[cfg.model](cfg.seed)) for cfg in SMALL.runs(seeds)]
    result = get_experiment(exp).analyse(SMALL, runs)
    for fig in result.figures.values():
        plt.close(fig)
    return result


def verdict(result: ExperimentResult, *words: str) -> Verdict:
    """The one verdict whose claim contains every word."""
    (match,) = [v for v in result.findings if all(w in v.claim for w in words)]
    return match


def outcome(result: ExperimentResult, *words: str) -> str:
    return verdict(result, *words).outcome.value


def test_e17_claims_on_real_image_like_runs():
    r = analyse("E17")
    assert len(r.findings) == 12
    for model in ("mlp digits", "cnn digits"):
        assert outcome(r, model, "gradients are not (anti)parallel") == "holds"
        assert outcome(r, model, "centred at 0") == "contradicted"  # median -0.3: the negative bulk
        assert outcome(r, model, "distant pairs' gradients are nearly orthogonal") == "holds"
        assert outcome(r, model, "more confused than distant pairs") == "holds"
    # neighbours' output Jacobians are aligned (~0.88, a third of the pairs above 0.9): they pile up
    assert outcome(r, "mlp digits", "output Jacobians are not (anti)parallel") == "contradicted"
    assert outcome(r, "mlp digits", "output Jacobians are nearly orthogonal") == "contradicted"
    for words in ("output Jacobians are not", "output Jacobians are nearly"):
        v = verdict(r, "cnn digits", words)
        assert v.outcome.value == "not measurable" and "not computed" in v.reason
    piled = verdict(r, "mlp digits", "gradients are not (anti)parallel")
    assert piled.n == 3 and piled.threshold.name == "piled_share" and piled.interval[1] < 0.1
    assert r.arrays["jac_cos_local/mlp digits/epoch7"].shape == (3, 300)
    assert set(r.figures) == {"confusion_epoch7", "jacobian_epoch7"}
    mlp = r.summary["inputs"]["mlp digits"]
    assert mlp["cos_local_median"] == pytest.approx(-0.3, abs=0.05) and "jac_local_abs_mean" in mlp


def test_e17_coordinate_like_neighbours_pile_up_and_few_seeds_are_inconclusive():
    def parallel(seed):
        sign = np.where(np.arange(300) % 2, 1.0, -1.0)
        return {"confusion__local_cos": (sign * (0.97 + 0.01 * seed))[None]}

    r = analyse("E17", mlp=parallel)
    assert outcome(r, "mlp digits", "gradients are not (anti)parallel") == "contradicted"
    assert outcome(r, "mlp digits", "centred at 0") == "holds"  # symmetric at ±1: median 0
    assert outcome(r, "cnn digits", "gradients are not (anti)parallel") == "holds"
    two = analyse("E17", seeds=2).findings
    assert {v.outcome.value for v in two} == {"inconclusive", "not measurable"}
    assert all(v.n == 2 and "at least 3" in v.reason for v in two if v.outcome.value == "inconclusive")


@pytest.mark.parametrize("exp,n_claims", [("E17", 6), ("E18", 3), ("E19", 3)])
def test_a_model_whose_runs_all_diverged_is_not_measurable(exp, n_claims):
    rng = np.random.default_rng(0)
    runs = [synthetic(cfg, rng) for cfg in SMALL.runs(3)]
    for cfg, data in runs:
        if cfg.model == "cnn":
            data.meta["diverged_at"] = 3
    findings = get_experiment(exp).analyse(SMALL, runs).findings
    plt.close("all")
    cnn = [v for v in findings if v.claim.startswith("cnn")]
    assert len(cnn) == n_claims and all(v.outcome.value == "not measurable" for v in cnn)
    assert all("every run diverged" in v.reason for v in cnn if "Jacobians" not in v.claim)
    assert all(v.outcome.value != "not measurable" for v in findings if v.claim.startswith("mlp"))


def test_e18_claims_follow_the_curves():
    r = analyse("E18")
    for model in ("mlp digits", "cnn digits"):
        assert outcome(r, model, "substantial fraction") == "holds"  # 45 of 500 units at the end
    assert outcome(r, "mlp digits", "more units than neighbours at every checkpoint") == "holds"
    assert outcome(r, "mlp digits", "distant pairs' Hamming distance declines") == "holds"
    assert outcome(r, "cnn digits", "neighbours' Hamming distance grows") == "contradicted"  # 60 -> 45
    assert str(Checkpoint("mlp digits", 6)) == "mlp digits after 7 epochs"
    assert r.table.get(Checkpoint("mlp digits", 6), "hamming_global")  # per seed, per checkpoint


def test_e18_a_crossing_a_dead_network_and_small_counts():
    def crossing(seed):  # the neighbours overtake the distant pairs at the last checkpoint
        return {"hamming__local_mean": np.array([60.0, 80, 120, 260 + seed])}

    def dead(seed):
        return {"hamming__local_mean": np.zeros(4), "hamming__global_mean": np.zeros(4)}

    r = analyse("E18", mlp=crossing, cnn=dead)
    assert outcome(r, "mlp digits", "more units than neighbours at every checkpoint") == "contradicted"
    # a dead network: no pattern differs anywhere, so neither the gap nor the trend can be judged
    assert outcome(r, "cnn digits", "more units than neighbours at every checkpoint") == "not measurable"
    assert outcome(r, "cnn digits", "neighbours' Hamming distance grows") == "not measurable"
    assert outcome(r, "cnn digits", "substantial fraction") == "contradicted"  # H/n = 0


def test_e19_claims_and_summary():
    def overfits(seed):
        return {"curves__test_loss": np.array([2.3, 0.5, 0.7, 0.9 + 0.05 * seed])}

    def at_chance(seed):
        return {
            "curves__test_acc": np.array([0.1, 0.11, 0.12 + 0.01 * seed, 0.1]),
            "curves__train_loss": np.array([2.3, 2.3, 2.31, 2.32 + 0.01 * seed]),
        }

    r = analyse("E19", mlp=overfits, cnn=at_chance)
    assert outcome(r, "mlp digits", "training loss falls") == "holds"
    assert outcome(r, "mlp digits", "twice chance") == "holds"
    assert outcome(r, "mlp digits", "overfitting") == "holds"
    assert outcome(r, "cnn digits", "training loss falls") == "contradicted"
    assert outcome(r, "cnn digits", "twice chance") == "contradicted"
    assert outcome(r, "cnn digits", "overfitting") == "contradicted"  # 0.5, 0.5: ends at its minimum
    mlp, cnn = (r.summary["inputs"][f"{m} digits"] for m in ("mlp", "cnn"))
    assert mlp["test_loss_rise"] == pytest.approx(np.mean([0.9, 0.95, 1.0]) / 0.5 - 1, rel=0.05)
    assert mlp["min_test_loss_epoch"] == 1 and cnn["min_test_loss_epoch"] == 2
    assert cnn["best_test_acc"] == pytest.approx(np.mean([0.12, 0.13, 0.14]), abs=0.05)
    assert r.arrays["test_loss/mlp digits"].shape == (3, 4)
