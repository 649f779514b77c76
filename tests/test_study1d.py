"""The 1D study experiments: the summary contract, repeatability, shared runs, findings."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from specbias.claims import Outcome, evaluate
from specbias.cli import main
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.analysis import seed_table
from specbias.experiments.study1d import _PARTS, PAPER_1D, V1_1D
from specbias.metrics.pairs import LOCAL_WINDOW
from specbias.runs import RunData
from tests.conftest import TINY

CONTRACT = ("hamming_local", "hamming_global", "cos_local_abs_mean", "cos_global_abs_mean", "final_loss")


def _run(out, exp, *extra):
    args = ["run", exp, *TINY, "--out", str(out), "--workers", "1", *extra]
    assert main(args) == 0
    return json.loads((out / "quick" / exp / "summary.json").read_text())


def test_reference_parameters_match_the_spec():
    p = PAPER_1D
    assert (p.width, p.depth, p.train.epochs, p.train.lr, p.train.batch_size) == (128, 4, 500, 1e-3, None)
    assert p.signal.n == 2048 and p.signal.freqs == tuple(range(5, 71, 5))
    assert p.inputs == ("raw01", "raw11", "pe3", "pe6")
    assert p.hamming.schedule.epochs(500)[:20] == list(range(0, 500, 25))
    assert (
        p.hamming.pairs.local_windows * p.hamming.pairs.local_per_window,
        p.hamming.pairs.global_pairs,
    ) == (
        6250,
        5000,
    )
    assert (p.confusion.pairs.local_windows * p.confusion.pairs.local_per_window) == 2500
    assert p.confusion.schedule.epochs(500) == [499]
    assert p.hamming.pairs.window == LOCAL_WINDOW
    v1 = V1_1D
    assert (v1.width, v1.depth, v1.train.epochs, v1.inputs) == (256, 2, 1000, ("raw01", "pe5"))
    assert v1.confusion.schedule.epochs(1000) == [99, 999]


def test_e1_e2_e3_x1_share_their_runs():
    keys = {
        e: [c.key() for c in get_experiment(e).runs(get_experiment(e).params("quick"), 2)]
        for e in EXPERIMENTS
    }
    assert keys["E1"] == keys["E2"] == keys["E3"] == keys["X1"]
    assert set(keys["E3b"]).isdisjoint(keys["E2"])


@pytest.mark.parametrize("exp", ["E2", "E3", "X1"])
def test_summary_contract(tmp_path, exp):
    summary = _run(tmp_path, exp)
    assert list(summary["inputs"]) == ["raw01", "raw11", "pe3", "pe6"]
    for label, block in summary["inputs"].items():
        for field in CONTRACT:
            assert isinstance(block[field], float), (label, field)
        if exp == "X1":
            assert list(block["epochs_to_rel_err_0.1"]) == [str(k) for k in range(5, 71, 5)]
    assert summary["findings"], "findings are computed from the data"
    for finding in summary["findings"]:
        assert finding["verdict"] in {o.value for o in Outcome}
        assert finding["holds"] == (finding["verdict"] == "holds")
        assert {"effect", "interval", "n", "threshold", "reason", "detail"} <= set(finding)


def test_same_seed_gives_bit_identical_metrics(tmp_path):
    for name in ("a", "b"):
        _run(tmp_path / name, "E2", "--inputs", "raw01,pe6")
    assert (tmp_path / "a/quick/E2/metrics.csv").read_bytes() == (
        tmp_path / "b/quick/E2/metrics.csv"
    ).read_bytes()


def test_metrics_csv_is_tidy(tmp_path):
    _run(tmp_path, "E3", "--inputs", "raw11")
    with open(tmp_path / "quick/E3/metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["metric"] for r in rows} >= {"train_loss", "hamming_local", "hamming_global_ratio"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {r["input"] for r in rows} == {"raw11"}


def test_reproduce_runs_each_experiment_once_sharing_runs(tmp_path, monkeypatch):
    small = PAPER_1D.override(epochs=30, n=256, width=16)  # the paper profile takes ~20 s on 2 cores
    for exp in ("E1", "E2"):
        monkeypatch.setitem(get_experiment(exp).profiles, "quick", small)
    assert main(["reproduce", "--only", "E1,E2", "--out", str(tmp_path), "--workers", "1", "--seeds", "1",
                 "--no-progress"]) == 0  # fmt: skip
    assert (tmp_path / "quick/E1/figures/reconstruction.png").is_file()
    assert (tmp_path / "quick/E2/summary.json").is_file()
    assert len(list((tmp_path / "runs").iterdir())) == 4  # 4 inputs × 1 seed, shared by E1 and E2


def test_faithful_mode_shares_phases_across_seeds(tmp_path):
    _run(tmp_path, "E1", "--mode", "faithful", "--inputs", "raw01")
    target = np.load(tmp_path / "quick/E1/arrays.npz")["target"]
    np.testing.assert_array_equal(target[0], target[1])
    _run(tmp_path / "clean", "E1", "--inputs", "raw01")
    target = np.load(tmp_path / "clean/quick/E1/arrays.npz")["target"]
    assert not np.array_equal(target[0], target[1])


def test_faithful_mode_override_sets_and_unsets_shared_phases():
    faithful = PAPER_1D.override(mode="faithful")
    assert faithful.signal.phases == "shared"
    assert faithful.override(mode="clean").signal.phases == "per_run"
    assert faithful.override(epochs=10).signal.phases == "shared"


def _data(seed: int, n: int = 64, pred: float = 0.0, rel=None, freqs=(5, 10, 15)) -> RunData:
    t = np.arange(n)[:, None] / n
    rel = np.full((2, len(freqs)), 0.5) if rel is None else np.stack([np.ones(len(freqs)), rel])
    arrays = {
        "signal/t": t,
        "signal/y": np.sin(2 * np.pi * (5 * t + seed / 10)),  # each seed its own phases
        "signal/freqs": np.array(freqs),
        "prediction/epochs": np.array([9]),
        "prediction/pred": np.full((1, n, 1), pred),
        "convergence/epochs": np.array([4, 9]),
        "convergence/mse": np.array([2.0, 1.0]),
        "convergence/rel_error": rel,
        "convergence/learned_fraction": 1 - rel,
        "convergence/magnitude_error": rel,
        "train/loss": np.ones(10),
    }
    return RunData(arrays, {"seed": seed})


def test_reconstruction_pairs_each_seed_with_its_own_target():
    # pe6's seed 1 diverged (left out of its group): rows must still match seeds, not list positions
    groups = {
        "raw01": [_data(s, pred=10 + s) for s in (0, 1, 2)],
        "pe6": [_data(s, pred=20 + s) for s in (0, 2)],
    }
    summary = {"raw01": {"final_loss": 1.0}, "pe6": {"final_loss": 0.5}}
    part = _PARTS["reconstruction"]("E1", groups, summary)
    np.testing.assert_array_equal(part.arrays["seeds"], [0, 2])
    np.testing.assert_array_equal(part.arrays["target"][1], groups["raw01"][2].arrays["signal/y"][:, 0])
    assert part.arrays["pred/raw01"][:, 0].tolist() == [10, 12]
    assert part.arrays["pred/pe6"][:, 0].tolist() == [20, 22]
    rows = part.figures["reconstruction"].axes
    assert [ax.get_ylabel() for ax in rows] == ["seed 0", "seed 2"]
    target, raw, pe = (line.get_ydata() for line in rows[1].get_lines())
    np.testing.assert_array_equal(target, part.arrays["target"][1])
    assert (raw[0], pe[0]) == (12, 22)


def test_convergence_claims_follow_the_numbers():
    def case(raw_rel):
        groups = {
            "raw01": [_data(s, rel=np.asarray(raw_rel) - 0.01 * s) for s in range(3)],
            "pe6": [_data(s, rel=[0.01, 0.02, 0.03]) for s in range(3)],
        }
        claims = _PARTS["convergence"]("X1", groups, {}).claims
        return [v.outcome for v in evaluate(claims, seed_table(groups))]

    # raw01: error grows with frequency and one tone converges; pe6: every tone converges
    assert case([0.05, 0.4, 0.9]) == [Outcome.HOLDS, Outcome.HOLDS]
    # the reverse order; raw01 converges on every tone too
    assert case([0.09, 0.08, 0.05]) == [Outcome.CONTRADICTED, Outcome.NOT_MEASURABLE]
