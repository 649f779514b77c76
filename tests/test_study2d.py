"""The 2D study: reference parameters, shared runs, every experiment end to end on tiny settings,
and the checks the issue asks for (parameter counts, RFF features identical in training and probes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from specbias.cli import main
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.study2d import MAIN_PAPER, NATURAL_PAPER, STUDY_2D_EXPERIMENTS
from specbias.models import MLP
from specbias.probes import RegionProbe
from specbias.runs import RegionSpec, RunConfig, execute_run
from specbias.signals import RandomImage
from specbias.training import Schedule, TrainConfig

IDS_2D = [e.id for e in STUDY_2D_EXPERIMENTS]
TINY_2D = ["--epochs", "3", "--seeds", "1", "--width", "8", "--no-progress", "--workers", "1"]


def test_reference_parameters_match_the_spec():
    p = MAIN_PAPER
    assert (p.images[0].size, p.width, p.depth, p.train.batch_size, p.train.epochs) == (64, 128, 2, 256, 5000)
    hamming = p.probes[0]
    assert hamming.schedule.epochs(5000)[:50] == list(range(0, 5000, 100))
    assert (hamming.pairs.patches, hamming.pairs.global_pairs) == (100, 10000)
    n = NATURAL_PAPER
    assert (n.images[0].size, n.width, n.depth, n.train.batch_size, n.train.epochs) == (
        512,
        512,
        4,
        8192,
        1000,
    )


def test_e4_experiments_share_runs_and_e4e_uses_lr_5e_3():
    def keys(exp_id):
        exp = get_experiment(exp_id)
        return [c.key() for c in exp.runs(exp.params("quick"), 2)]

    assert keys("E4a") == keys("E4b") == keys("E4c") == keys("E4d") == keys("E4f")
    assert set(keys("E4e")).isdisjoint(keys("E4b"))
    e4e = get_experiment("E4e")
    assert {c.train.lr for c in e4e.runs(e4e.params("paper"), 1)} == {5e-3}
    # the natural suite: experiments that need the same input train it once
    nat = {e: set(keys(e)) for e in ("E5", "E6", "E10")}
    assert nat["E5"] == nat["E6"] and nat["E10"] & nat["E5"]


@pytest.mark.parametrize(("label", "params"), [("raw01", 17283), ("pe5", 19587), ("rff14", 82563)])
def test_parameter_counts_of_the_main_text_net(label, params):
    cfg = RunConfig(
        signal=RandomImage(16), input=label, width=128, depth=2, train=TrainConfig(epochs=1), probes=()
    )
    assert execute_run(cfg).meta["n_params"] == params
    assert MLP(2, 512, 4, 3).n_params() == 791043


def test_rff_features_in_training_and_probes_are_identical():
    """The reference redraws B between training and evaluation (B8): the region probe would then
    see other features. Here the probe's grid is the training grid, bit for bit."""
    cfg = RunConfig(
        signal=RandomImage(8),
        input="rff10",
        width=16,
        depth=2,
        train=TrainConfig(epochs=2),
        probes=(RegionSpec(Schedule(last=True)),),
        seed=3,
    )
    seen = {}
    real = RegionProbe.measure

    def spy(self, model):
        seen["x"] = self.x.clone()
        return real(self, model)

    RegionProbe.measure = spy
    try:
        data = execute_run(cfg)
    finally:
        RegionProbe.measure = real
    enc = cfg.encoding()
    expected = enc(torch.as_tensor(data.arrays["signal/t"], dtype=torch.float64)).float()
    assert torch.equal(seen["x"], expected)
    np.testing.assert_array_equal(data.arrays["encoding/B"], enc.B)
    assert not np.array_equal(cfg.encoding().B, RunConfig(**{**cfg.__dict__, "seed": 4}).encoding().B)


@pytest.mark.parametrize("exp_id", IDS_2D)
def test_every_2d_experiment_runs_end_to_end(exp_id, tmp_path):
    args = ["run", exp_id, "--out", str(tmp_path), "--size", "32"]
    if exp_id != "E20":
        args += TINY_2D
    assert main(args) == 0
    folder = tmp_path / exp_id
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["inputs"]
    assert list((folder / "figures").glob("*.png"))
    assert (folder / "metrics.csv").read_text().startswith("experiment,input,seed,epoch,metric,key,value")
    for finding in summary["findings"]:
        assert isinstance(finding["holds"], bool) and finding["detail"]


def test_2d_summary_has_headline_numbers(tmp_path):
    assert main(["run", "E4b", "--out", str(tmp_path), "--size", "16", *TINY_2D]) == 0
    inputs = json.loads((tmp_path / "E4b/summary.json").read_text())["inputs"]
    for label in ("raw01", "raw11", "pe5"):
        block = inputs[label]
        headline = (
            "regions_first",
            "regions_last",
            "dead_first",
            "dead_last",
            "hamming_local",
            "hamming_global",
        )
        for key in (*headline, "boundary_input_mean_last", "boundary_feature_mean_last", "psnr_last"):
            assert isinstance(block[key], float), (label, key)
        assert block["n_points"] == 256
    assert inputs["pe5"]["regions_saturated_last"] in (True, False)


def test_overrides_that_do_not_apply_are_errors(tmp_path, capsys):
    assert main(["run", "E4b", "--n", "100", "--out", str(tmp_path / "o")]) == 2
    assert "--n does not apply to E4b" in capsys.readouterr().err
    assert main(["run", "E2", "--size", "32", "--out", str(tmp_path / "o")]) == 2
    assert "--size does not apply to E2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unknown_image_is_a_clean_error(tmp_path, capsys):
    from specbias.errors import ConfigError
    from specbias.signals import NaturalImage

    with pytest.raises(ConfigError, match="nope"):
        NaturalImage("nope").build(0)
    assert set(IDS_2D) <= set(EXPERIMENTS)


def test_user_images_and_bad_paths(tmp_path, capsys):
    from PIL import Image

    picture = tmp_path / "mine.png"
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(picture)
    args = ["run", "E9", "--images", str(picture), "--size", "16", "--out", str(tmp_path / "o"), *TINY_2D]
    assert main(args) == 0
    assert json.loads((tmp_path / "o/E9/summary.json").read_text())["inputs"]["raw01"]["n_points"] == 256
    assert main(["run", "E9", "--images", str(tmp_path / "missing.png"), "--out", str(tmp_path / "p")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["run", "E4b", "--images", "camera", "--out", str(tmp_path / "q")]) == 2
    assert "natural-image experiments" in capsys.readouterr().err
