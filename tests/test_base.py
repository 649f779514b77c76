"""The checks every study's parameters share, and the profiles (experiments/base.py)."""

from __future__ import annotations

import json

import pytest

from specbias.cli import main
from specbias.cost import fit_workers, sweep_cost
from specbias.encodings import aliased_features
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.base import PROFILES, check_study
from specbias.pipeline import Planned, plan


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inputs": ()}, "at least one input is needed"),
        ({"inputs": ("raw01", "raw01")}, "inputs must be distinct"),
        ({"inputs": ("nope",)}, "nope"),
        ({"mode": "loose"}, "mode must be 'clean' or 'faithful', got 'loose'"),
        ({"width": 0}, "width must be an integer >= 1, got 0"),
        ({"seeds": 2.5}, "seeds must be an integer >= 1, got 2.5"),
        ({"depth": True}, "depth must be an integer >= 1, got True"),
    ],
)
def test_check_study_names_the_bad_value(kwargs, message):
    args = {"inputs": ("raw01", "pe3"), **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_study(**args)


def test_check_study_accepts_a_valid_study():
    check_study(("raw01", "pe3"), width=128, depth=4, seeds=5)


# ------------------------------------------------------------------ profiles

NATURAL = ("E5", "E6", "E7", "E8", "E9", "E10", "E11", "E12", "X2", "X3")
REFERENCE = ("E1", "E2", "E3", "E3b", "X1", "E4a", "E4b", "E4c", "E4d", "E4e", "E4f", "E16", "E20")
FIVE_SEEDS = ("X4", "X5", "X6", "X6b", "X7", "E17", "E18", "E19", *REFERENCE[:-2])


def _standard(exp_id: str) -> Planned:
    return plan(get_experiment(exp_id), "standard", None, {})


def test_every_experiment_has_every_profile():
    assert PROFILES == ("quick", "standard", "paper")
    for exp in EXPERIMENTS.values():
        assert tuple(exp.profiles) == PROFILES, exp.id


@pytest.mark.parametrize("exp_id", REFERENCE)
def test_standard_runs_the_main_suite_and_the_1d_study_at_the_paper_scale(exp_id):
    exp = get_experiment(exp_id)
    assert exp.params("standard") == exp.params("paper")


@pytest.mark.parametrize("exp_id", FIVE_SEEDS)
def test_standard_gives_every_claim_five_seeds(exp_id):
    assert _standard(exp_id).seeds >= 5


@pytest.mark.parametrize("exp_id", NATURAL)
def test_standard_natural_images_alias_as_on_the_paper_grid(exp_id):
    """An input aliases on the standard grid exactly when it aliases on the paper's."""
    standard = _standard(exp_id)
    paper_side = get_experiment(exp_id).params("paper").training_side()
    side = standard.params.training_side()
    assert side < paper_side
    for cfg in standard.configs:
        here = aliased_features(cfg.encoding(), 1.0 / side).size > 0
        there = aliased_features(cfg.encoding(), 1.0 / paper_side).size > 0
        assert here == there, (exp_id, cfg.input)


def test_standard_fits_two_hours_and_24_gb_on_two_cpu_workers():
    """The cost model's training estimate leaves room for the probes and the analyses."""
    runs = [(exp, c) for exp in EXPERIMENTS for c in _standard(exp).configs]
    assert sweep_cost([c for _, c in runs], "cpu", workers=2).hours < 1.5
    assert fit_workers(runs, "cpu", 2, available=24e9).workers == 2


def test_standard_smoke_run_writes_its_own_result_set(tmp_path):
    out = tmp_path / "out"
    argv = ["run", "E4b", "--profile", "standard", "--seeds", "1", "--epochs", "2", "--width", "8",
            "--no-progress", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "standard" / "E4b" / "summary.json").read_text())
    assert summary["profile"] == summary["scale"]["profile"] == "standard"
    assert not (out / "quick").exists()
