"""The 1D study experiments: the summary contract, repeatability, shared runs, findings."""

from __future__ import annotations

import csv
import json

import pytest

from specbias.cli import main
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.analysis import compare
from specbias.experiments.study1d import PAPER_1D, V1_1D
from specbias.metrics.pairs import LOCAL_WINDOW
from tests.conftest import TINY

CONTRACT = ("hamming_local", "hamming_global", "cos_local_abs_mean", "cos_global_abs_mean", "final_loss")


def _run(out, exp, *extra):
    args = ["run", exp, *TINY, "--out", str(out), "--workers", "1", *extra]
    assert main(args) == 0
    return json.loads((out / exp / "summary.json").read_text())


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
        assert set(finding) == {"claim", "holds", "detail"}


def test_same_seed_gives_bit_identical_metrics(tmp_path):
    for name in ("a", "b"):
        _run(tmp_path / name, "E2", "--inputs", "raw01,pe6")
    assert (tmp_path / "a/E2/metrics.csv").read_bytes() == (tmp_path / "b/E2/metrics.csv").read_bytes()


def test_metrics_csv_is_tidy(tmp_path):
    _run(tmp_path, "E3", "--inputs", "raw11")
    with open(tmp_path / "E3/metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["metric"] for r in rows} >= {"train_loss", "hamming_local", "hamming_global_ratio"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {r["input"] for r in rows} == {"raw11"}


def test_reproduce_runs_each_experiment_once_sharing_runs(tmp_path):
    assert main(["reproduce", "--only", "E1,E2", "--out", str(tmp_path), "--workers", "1", "--seeds", "1",
                 "--no-progress"]) == 0  # fmt: skip
    assert (tmp_path / "E1/figures/reconstruction.png").is_file()
    assert (tmp_path / "E2/summary.json").is_file()
    assert len(list((tmp_path / "runs").iterdir())) == 4  # 4 inputs × 1 seed, shared by E1 and E2


def test_findings_are_computed_and_can_fail():
    summary = {"raw01": {"hamming_local": 5.0}, "pe6": {"hamming_local": 2.0}}
    finding = compare("local Hamming raw < PE", summary, "raw01", "pe6", "hamming_local", "<")
    assert finding is not None and finding.holds is False
    assert "5" in finding.detail and "2" in finding.detail
    assert compare("x", summary, "raw01", "pe3", "hamming_local", "<") is None


def test_faithful_mode_shares_phases_across_seeds(tmp_path):
    _run(tmp_path, "E1", "--mode", "faithful", "--inputs", "raw01")
    import numpy as np

    target = np.load(tmp_path / "E1/arrays.npz")["target"]
    np.testing.assert_array_equal(target[0], target[1])
    _run(tmp_path / "clean", "E1", "--inputs", "raw01")
    target = np.load(tmp_path / "clean/E1/arrays.npz")["target"]
    assert not np.array_equal(target[0], target[1])
