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
from specbias.runs import RegionSpec, RunConfig, RunData, execute_run
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
    if exp_id == "E15":  # an architecture sweep: its own depths and widths
        args += [a for a in TINY_2D if a not in ("--width", "8")]
    elif exp_id != "E20":
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


# ------------------------------------------------------------ review fixes, on synthetic runs


def _boundary_run(curve, seed=0):
    epochs = np.arange(len(curve)) * 10
    c = np.asarray(curve, dtype=float)
    arrays = {"boundary/epochs": epochs, "boundary/input_mean": c, "boundary/feature_mean": c}
    return RunData(arrays, {"seed": seed})


def _widen(curves_by_seed):
    from specbias.experiments.study2d import _boundary

    groups = {
        "pe4": [_boundary_run(np.full(len(curves_by_seed[0]), 5.0))],
        "pe16": [_boundary_run(c, s) for s, c in enumerate(curves_by_seed)],
    }
    summary = {
        k: {"boundary_input_mean_last": float(v[0].get("boundary", "input_mean")[-1])}
        for k, v in groups.items()
    }
    (finding,) = [f for f in _boundary("E12", groups, summary).findings if "widen" in f.claim]
    return finding.holds


def test_regions_widen_needs_an_early_minimum_and_a_rise_beyond_the_seed_spread():
    drop_then_rise = [4.0, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert _widen([drop_then_rise])
    # falling until the end, a noisy last point above the minimum: no early minimum, no widening
    assert not _widen([[4.0, 3.0, 2.0, 1.5, 1.0, 1.01]])
    # an early minimum but a final rise smaller than the seed-to-seed spread at the end
    noisy = [[4.0, 1.0, 1.0, 1.0, 1.0, 1.6], [4.0, 1.0, 1.0, 1.0, 1.0, 0.6]]
    assert not _widen(noisy)
    assert _widen([[4.0, 1.0, 1.0, 1.0, 1.0, 3.1], [4.0, 1.0, 1.0, 1.0, 1.0, 2.9]])


def test_heldout_skips_the_overfitting_finding_when_an_rff_input_diverged():
    from specbias.experiments.study2d import _heldout

    def run(train, test):
        arrays = {"heldout/epochs": np.array([0]), "heldout/train_psnr": np.array([train]),
                  "heldout/test_psnr": np.array([test])}  # fmt: skip
        return RunData(arrays, {"seed": 0})

    groups = {"raw01": [run(20.0, 19.0)], "rff10": [run(30.0, 25.0)]}
    summary = {
        "raw01": {"train_psnr": 20.0, "test_psnr": 19.0},
        "rff10": {"train_psnr": 30.0, "test_psnr": 25.0},
        "rff100": {"seeds": 0, "diverged": [{"seed": 0, "epoch": 3}]},
    }
    findings = [f for f in _heldout("X3", groups, summary).findings if f is not None]
    assert [f.claim for f in findings] == ["an encoding generalises better than raw coordinates (rff10)"]


def test_hyperplane_matrix_and_region_map_titles_name_epochs_trained_and_the_seed_drawn():
    import matplotlib.pyplot as plt

    from specbias.experiments.study2d import _hyperplanes, _region_maps

    rng = np.random.default_rng(0)

    def run(seed):
        cos = rng.uniform(-1, 1, (2, 4, 4))
        arrays = {
            "hyperplanes/epochs": np.array([0, 9]),
            "hyperplanes/mean_offdiag": rng.uniform(-1, 1, (2, 2)),
            "hyperplanes/frac_positive": rng.uniform(0, 1, (2, 2)),
            "hyperplane_matrices/epochs": np.array([0, 9]),
            "hyperplane_matrices/layer1": cos,
            "hyperplane_matrices/layer2": cos,
            "region_map/epochs": np.array([0, 9]),
            "region_map/ids": rng.integers(0, 5, (2, 16)),
            "region_map/units": rng.integers(0, 2, (2, 1, 16)),
            "region_map/unit_ids": np.array([[0], [0]]),
        }
        return RunData(arrays, {"seed": seed, "hidden_sizes": [4, 4], "shape": (4, 4)})

    groups = {"pe4": [run(1)], "pe8": [run(1)]}
    fig = _hyperplanes("E11", groups, {}).figures["hyperplane_matrices"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum("after 1 epoch" in t for t in titles) == 2 and sum("after 10 epochs" in t for t in titles) == 2
    assert not any("epoch 0" in t or "epoch 9" in t for t in titles)
    maps = _region_maps("E8", groups, {}).figures
    assert "seed 1" in maps["region_map_epoch0"]._suptitle.get_text()
    assert "after 1 epoch" in maps["region_map_epoch0"]._suptitle.get_text()
    plt.close("all")


def test_e4e_paper_measures_only_norms_every_epoch():
    from specbias.runs import NormSpec

    e4e = get_experiment("E4e")
    (cfg,) = {c.probes for c in e4e.runs(e4e.params("paper"), 1)}
    assert len(cfg) == 1 and isinstance(cfg[0], NormSpec)
    assert cfg[0].schedule.epochs(5000) == list(range(5000))


def test_architecture_sweep_refuses_width_and_depth_and_e20_bounds_its_size(tmp_path, capsys):
    from specbias.errors import ConfigError
    from specbias.experiments.study2d import EncodingGrid

    for flag in ("--width", "--depth"):
        assert main(["run", "E15", flag, "8", "--out", str(tmp_path / "o")]) == 2
        assert f"{flag} does not apply to an architecture sweep" in capsys.readouterr().err
    assert main(["run", "E20", "--size", "512", "--out", str(tmp_path / "o")]) == 2
    assert "E20 grid size must be an integer in 2..96, got 512" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="got 1"):
        EncodingGrid(size=1)
    assert not (tmp_path / "o").exists()


def test_e20_distances_and_summary_match_a_brute_force_double_loop():
    from specbias.experiments.study2d import EncodingGrid, _encoding_distances

    s = 6
    result = _encoding_distances(EncodingGrid(size=s), None)
    pts = [(col / s, row / s) for row in range(s) for col in range(s)]  # row-major, x fastest

    def gamma(x, y):
        return [f(2**k * np.pi * v) for k in range(5) for v in (x, y) for f in (np.sin, np.cos)]

    feats = [np.array(gamma(*p)) for p in pts]
    n = s * s
    brute = np.array([[np.sqrt(np.sum((feats[i] - feats[j]) ** 2)) for j in range(n)] for i in range(n)])
    np.testing.assert_allclose(result.arrays["distance"], brute, atol=1e-5)
    step = [[abs(pts[i][0] - pts[j][0]) + abs(pts[i][1] - pts[j][1]) for j in range(n)] for i in range(n)]
    adjacent = [(i, j) for i in range(n) for j in range(n) if step[i][j] == pytest.approx(1 / s)]
    coord = np.array(
        [[np.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) for j in range(n)] for i in range(n)]
    )
    stats = result.summary["inputs"]["pe5"]
    enc = np.mean([brute[i, j] for i, j in adjacent]) / np.median(brute)
    raw = np.mean([coord[i, j] for i, j in adjacent]) / np.median(coord)
    assert stats["adjacent_over_median"] == pytest.approx(enc, rel=1e-6)
    assert stats["raw_adjacent_over_median"] == pytest.approx(raw, rel=1e-9)
    row = brute[0, :s]
    assert stats["row_minima"] == sum(row[x] < row[x - 1] and row[x] < row[x + 1] for x in range(1, s - 1))


def test_e15_size_trends_follow_the_data_both_ways():
    """Hamming count up with d·w, PE's local ratio and every global ratio down; flipped data flips them."""
    from specbias.experiments.study2d import _size_trends

    archs = ["2x64", "4x128", "6x128"]

    def summary(local, local_ratio, global_ratio):
        return {
            f"{label}@{a}": {"hamming_local": h, "hamming_local_ratio": lr, "hamming_global_ratio": gr}
            for label in ("raw01", "pe5")
            for a, h, lr, gr in zip(archs, local, local_ratio, global_ratio)
        }

    groups = {k: [] for k in summary([0] * 3, [0] * 3, [0] * 3)}
    good = _size_trends(groups, summary([1, 4, 9], [0.3, 0.2, 0.1], [0.5, 0.4, 0.3]), archs)
    assert [f.claim for f in good] == [
        "raw01: the local Hamming count grows with network size",
        "raw01: the global Hamming ratio H/n falls as the net grows",
        "pe5: the local Hamming count grows with network size",
        "pe5: the local Hamming ratio H/n falls as the net grows",
        "pe5: the global Hamming ratio H/n falls as the net grows",
    ]
    assert all(f.holds for f in good) and "128: 1, 512: 4, 768: 9" in good[0].detail
    bad = _size_trends(groups, summary([9, 4, 1], [0.1, 0.2, 0.3], [0.3, 0.4, 0.5]), archs)
    assert not any(f.holds for f in bad)
    assert _size_trends(groups, summary([1, 4, 9], [0.3, 0.2, 0.1], [0.5, 0.4, 0.3]), archs[:1]) == []


def test_e16_most_regions_at_high_dimension_follows_the_data():
    from specbias.experiments.study2d import _most_regions_at_high_d

    counts = {"rpe2x4": 900.0, "rpe2x20": 3900.0, "rpe32x40": 3800.0, "rpe1024x4": 1.0}
    (found,) = _most_regions_at_high_d(counts)
    assert found.holds and found.detail == "two largest: rpe32x40 3800, rpe2x20 3900"
    (flipped,) = _most_regions_at_high_d({**counts, "rpe2x4": 5000.0})
    assert not flipped.holds
    assert _most_regions_at_high_d({"rpe2x20": 1.0, "rpe32x20": 2.0}) == []
