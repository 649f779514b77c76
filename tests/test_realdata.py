"""E17-E19: parameters and overrides, shared runs, the analysis and its computed findings."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest

from specbias.errors import ConfigError
from specbias.experiments import get_experiment
from specbias.experiments.realdata import (
    PAPER,
    QUICK,
    _confusion_findings,
    _curves,
    _hamming_findings,
)
from specbias.pipeline import execute, plan
from specbias.runs import RunData


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
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 4


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
    e17, _ = done["E17"]
    assert set(e17.figures) == {"confusion_epoch5"}
    assert len(e17.findings) == 8  # four per model
    assert e17.summary["setup"]["anchors"] == 72 and e17.summary["setup"]["cnn_stride"] == 1
    cos = e17.arrays["cos_local/mlp blobs/epoch5"]
    assert cos.shape == (1, 720)
    share = float(np.nanmean(np.abs(cos) > 0.9))
    assert e17.findings[0].holds == (share <= 0.1) and f"share {share:.3f}" in e17.findings[0].detail
    e18, path18 = done["E18"]
    assert (path18 / "figures" / "hamming.png").is_file()
    assert e18.arrays["hamming_epochs"].tolist() == [0, 2, 4]
    inputs = e18.summary["inputs"]
    assert inputs["cnn blobs"]["hamming_local_ratio"] == pytest.approx(
        inputs["cnn blobs"]["hamming_local"] / 2816
    )
    e19, _ = done["E19"]
    curves = e19.arrays["test_loss/mlp blobs"]
    assert curves.shape == (1, 6)
    assert e19.summary["inputs"]["mlp blobs"]["min_test_loss"] == pytest.approx(curves.min())
    assert {row[4] for row in e19.rows} >= {"curve", "train_loss"}


def fake_run(local: np.ndarray, far: np.ndarray, different_class: bool = True) -> RunData:
    arrays = {
        "confusion/local_cos": local[None],
        "confusion/global_cos": far[None],
        "confusion/epochs": np.array([0]),
    }
    return RunData(arrays, {"model": "mlp", "seed": 0, "different_class": different_class})


def test_confusion_findings_follow_the_data():
    rng = np.random.default_rng(0)
    coordinate_like = fake_run(np.sign(rng.normal(size=500)) * 0.97, rng.normal(0, 0.05, 500))
    real_like = fake_run(rng.normal(0, 0.1, 500), rng.normal(0, 0.05, 500))
    for run, expected in ((coordinate_like, [False, True]), (real_like, [True, True])):
        part = _confusion_findings("E17", {"x": [run]}, {"x": {}})
        assert [part.findings[k].holds for k in (0, 2)] == expected  # piled at ±1?, distant orthogonal?
    assert _confusion_findings("E17", {"x": [real_like]}, {"x": {}}).findings[1].holds  # centred at 0
    shifted = fake_run(rng.normal(-0.5, 0.1, 500), rng.normal(0.3, 0.3, 500))
    holds = [f.holds for f in _confusion_findings("E17", {"x": [shifted]}, {"x": {}}).findings]
    assert holds == [True, False, False, True]
    claims = [f.claim for f in _confusion_findings("E17", {"x": [shifted]}, {"x": {}}).findings]
    assert "different-class neighbours are more confused" in claims[3]
    loose = fake_run(rng.normal(0, 0.1, 500), rng.normal(0, 0.05, 500), different_class=False)
    claims = [f.claim for f in _confusion_findings("E17", {"x": [loose]}, {"x": {}}).findings]
    assert not any("different-class" in c or "another class" in c for c in claims), claims


def curve_run(seed: int, train_loss, test_loss, test_acc) -> RunData:
    n = len(train_loss)
    arrays = {
        "curves/epochs": np.arange(n),
        "curves/train_loss": np.asarray(train_loss, float),
        "curves/test_loss": np.asarray(test_loss, float),
        "curves/train_acc": np.linspace(0.1, 1.0, n),
        "curves/test_acc": np.asarray(test_acc, float),
    }
    return RunData(arrays, {"model": "mlp", "seed": seed, "n_classes": 10})


def test_curves_findings_and_summary_follow_the_data():
    overfit = [
        curve_run(0, [2.0, 1.0, 0.5, 0.2], [2.0, 1.0, 1.1, 1.3], [0.1, 0.5, 0.6, 0.55]),
        curve_run(1, [2.0, 1.2, 0.4, 0.1], [2.0, 1.0, 1.3, 1.5], [0.1, 0.6, 0.8, 0.7]),
    ]
    flat = [curve_run(0, [2.0, 2.1, 2.2, 2.3], [2.3, 2.2, 2.1, 2.0], [0.1, 0.12, 0.15, 0.14])]
    summary = {"over": {}, "flat": {}}
    part = _curves("E19", {"over": overfit, "flat": flat}, summary)
    holds = {f.claim.split(": ", 1)[0]: [] for f in part.findings}
    for f in part.findings:
        holds[f.claim.split(": ", 1)[0]].append(f.holds)
    assert holds == {"over": [True, True, True], "flat": [False, False, False]}
    over = summary["over"]
    assert over["best_test_acc"] == pytest.approx(0.7)  # mean over seeds of each seed's best
    assert over["min_test_loss"] == pytest.approx(1.0) and over["min_test_loss_epoch"] == 1
    assert over["final_test_loss"] == pytest.approx(1.4) and "+40.0%" in part.findings[2].detail
    assert part.arrays["test_loss/over"].shape == (2, 4)
    plt.close(part.figures["curves"])


def test_hamming_findings_follow_the_data():
    def stats(local, far):
        local, far = np.asarray(local, float), np.asarray(far, float)
        return {"local_mean": local, "global_mean": far, "local_std": local * 0, "global_std": far * 0}

    up = _hamming_findings("m", "mlp", stats([5, 8, 10], [300, 250, 200]), 100, {})
    assert [f.holds for f in up] == [True, True, True]
    down = _hamming_findings("m", "mlp", stats([1, 2, 3], [2, 2, 4]), 100, {})
    assert [f.holds for f in down] == [False, False, False]
    cnn = _hamming_findings("c", "cnn", stats([50, 40], [90, 95]), 1000, {})
    assert [f.holds for f in cnn] == [False, True, False] and "grows" in cnn[2].claim
