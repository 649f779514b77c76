"""The 2D study: reference parameters, shared runs, every experiment end to end on tiny settings,
and the checks the issue asks for (parameter counts, RFF features identical in training and probes)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from specbias.claims import Outcome
from specbias.cli import main
from specbias.encodings import aliased_features
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.study2d import (
    MAIN_PAPER,
    NATURAL_PAPER,
    STUDY_2D_EXPERIMENTS,
    Net,
    early_minimum_rise,
    row_minima,
)
from specbias.models import MLP
from specbias.pipeline import describe_scale, plan
from specbias.probes import RegionProbe
from specbias.runs import ConfusionSpec, RegionSpec, RunConfig, RunData, execute_run
from specbias.signals import RandomImage
from specbias.training import Schedule, TrainConfig

IDS_2D = [e.id for e in STUDY_2D_EXPERIMENTS]
OUTCOMES = {o.value for o in Outcome}
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
    folder = tmp_path / "quick" / exp_id
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["inputs"]
    assert list((folder / "figures").glob("*.png"))
    assert (folder / "metrics.csv").read_text().startswith("experiment,input,seed,epoch,metric,key,value")
    for finding in summary["findings"]:
        assert finding["verdict"] in OUTCOMES and finding["holds"] == (finding["verdict"] == "holds")
        assert finding["reason"] and (finding["detail"] or finding["verdict"] == "not measurable")


def test_2d_summary_has_headline_numbers(tmp_path):
    assert main(["run", "E4b", "--out", str(tmp_path), "--size", "16", *TINY_2D]) == 0
    inputs = json.loads((tmp_path / "quick/E4b/summary.json").read_text())["inputs"]
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
    assert (
        json.loads((tmp_path / "o/quick/E9/summary.json").read_text())["inputs"]["raw01"]["n_points"] == 256
    )
    assert main(["run", "E9", "--images", str(tmp_path / "missing.png"), "--out", str(tmp_path / "p")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["run", "E4b", "--images", "camera", "--out", str(tmp_path / "q")]) == 2
    assert "natural-image experiments" in capsys.readouterr().err


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


# ------------------------------------------------- claims, judged on synthetic runs of each experiment


def _meta(cfg: RunConfig) -> dict:
    """What a finished run records about itself, with the aliasing of its grid as execute_run counts it."""
    side = cfg.signal.size // (2 if cfg.held_out else 1)
    enc = cfg.encoding()
    return {
        "input": cfg.input,
        "seed": cfg.seed,
        "diverged_at": None,
        "n_params": 1,
        "n_hidden": cfg.depth * cfg.width,
        "hidden_sizes": [cfg.width] * cfg.depth,
        "in_dim": enc.out_dim,
        "n_points": side * side,
        "shape": [side, side],
        "aliased_features": int(aliased_features(enc, spacing=1.0 / side).size),
    }


def _verdicts(exp_id, arrays, profile="quick", diverged=(), **overrides):
    """Run ``exp_id``'s analysis on its planned runs, each carrying ``arrays(cfg)`` instead of
    training; the inputs in ``diverged`` diverged. Returns ``(claim -> verdict, summary)``."""
    exp = get_experiment(exp_id)
    params = exp.params(profile)
    params = params.override(**overrides) if overrides else params
    runs = []
    for cfg in exp.runs(params, params.seeds):
        meta = _meta(cfg)
        meta["diverged_at"] = 3 if cfg.input in diverged else None
        runs.append((cfg, RunData({"train/loss": np.ones(3), **arrays(cfg)}, meta)))
    result = exp.analyse(params, runs)
    json.dumps(result.summary)  # string group names only
    for fig in result.figures.values():
        plt.close(fig)
    return {v.claim: v for v in result.findings}, result.summary


def _confusion(local, jac, pairs=200):
    """Confusion records at one checkpoint: loss-gradient and output-Jacobian cosines of local and
    global pairs."""
    out = {"confusion/epochs": np.array([9])}
    for kind, cos, jcos in (("local", local, jac), ("global", local * 0.1, jac * 0.1)):
        out[f"confusion/{kind}_cos"] = cos.reshape(1, pairs)
        out[f"confusion/{kind}_jac_cos"] = jcos.reshape(1, pairs)
        out[f"confusion/{kind}_n_zero"] = np.array([0])
    return out


def _hamming(local, global_=None, epochs=3):
    g = local if global_ is None else global_
    return {
        "hamming/epochs": np.arange(epochs),
        "hamming/local_mean": np.full(epochs, float(local)),
        "hamming/global_mean": np.full(epochs, float(g)),
        "hamming/local_layer_mean": np.full((epochs, 2), float(local) / 2),
        "hamming/global_layer_mean": np.full((epochs, 2), float(g) / 2),
    }


def test_run_configs_carry_the_output_jacobian_only_where_it_is_read():
    """E4d, E5, E15 and X3 record the output-Jacobian cosine where their claims read it (and the runs
    shared with them); the other runs keep their configs, hence their cached hashes."""

    def jacobian(exp_id):
        exp = get_experiment(exp_id)
        out = {}
        for cfg in exp.runs(exp.params("quick"), 1):
            specs = [p for p in cfg.probes if isinstance(p, ConfusionSpec)]
            out[cfg.input] = bool(specs) and all(p.output_jacobian for p in specs)
        return out

    assert all(jacobian("E4d").values()) and all(jacobian("E15").values())
    # the natural suite and X3: the inputs their claims read (raw and the top PE)
    assert [k for k, v in jacobian("E5").items() if v] == ["raw01", "pe16"]
    assert [k for k, v in jacobian("X3").items() if v] == ["raw01", "pe6"]
    assert not any(jacobian("E8")[k] for k in ("pe1", "pe2", "pe8"))
    assert not any(jacobian("E4e").values()) and not any(jacobian("E16").values())
    e4d = get_experiment("E4d")
    user = e4d.params("quick").override(inputs=["raw01", "pe8"])  # overridden inputs measure it too
    assert all(p.output_jacobian for c in e4d.runs(user, 1) for p in c.probes if isinstance(p, ConfusionSpec))


def test_e4d_plus_minus_one_is_judged_on_the_share_near_one_on_both_measures():
    """The issue's case: raw01's loss-gradient cosines spread uniformly over [-1, 1] (about 10 %
    above 0.9) while its output Jacobians are parallel. 'Sits at ±1' is contradicted on the first
    measure and holds on the second; PE's neighbours are spread on both."""

    def arrays(cfg):
        rng = np.random.default_rng(cfg.seed + 10 * len(cfg.input))
        if cfg.input.startswith("raw"):
            return _confusion(rng.uniform(-1, 1, 200), rng.uniform(0.99, 1.0, 200))
        return _confusion(rng.uniform(-0.3, 0.3, 200), rng.uniform(0.0, 0.6, 200))

    verdicts, summary = _verdicts("E4d", arrays)
    grad = verdicts["local loss gradients of raw01 sit at ±1 (most pairs |cos| > 0.9)"]
    jac = verdicts["local output Jacobians of raw01 sit at ±1 (most pairs |cos| > 0.9)"]
    assert grad.outcome is Outcome.CONTRADICTED and 0.05 < grad.effect < 0.15 and grad.n == 3
    assert jac.outcome is Outcome.HOLDS and jac.effect > 0.99
    assert all(v.holds for c, v in verdicts.items() if "is larger for raw01 than pe5" in c)
    assert summary["inputs"]["raw01"]["jac_local_frac_abs_gt_0.9"] > 0.99
    claim = get_experiment("E4d").claim
    assert "loss-gradient cosines mix in the per-channel residuals" in claim and "network's part" in claim


def test_e6_comparisons_with_an_input_that_aliases_only_here_are_not_measurable():
    """pe8's top octave aliases on the quick 64² grid, not on the paper's 512²: every claim reading
    pe8 is not measurable there, with the reason; on a 512² grid the same data are judged."""
    local = {"raw01": 1.0, "raw11": 1.5, "pe4": 4.0, "pe8": 8.0, "pe16": 16.0}

    def arrays(cfg):
        return _hamming(local[cfg.input] * (1 + 0.01 * cfg.seed))

    quick, _ = _verdicts("E6", arrays)
    claim = quick["local Hamming: pe8 < pe16"]
    assert claim.outcome is Outcome.NOT_MEASURABLE
    assert "pe8 aliases on this 64² grid (4 of 32 features" in claim.reason and "paper's 512²" in claim.reason
    assert quick["local Hamming: pe4 < pe8"].outcome is Outcome.NOT_MEASURABLE
    assert quick["local Hamming: raw01 < pe4"].holds
    paper_grid, _ = _verdicts("E6", arrays, size=512)
    assert paper_grid["local Hamming: pe8 < pe16"].holds
    reversed_, _ = _verdicts(
        "E6", lambda cfg: _hamming(100 / local[cfg.input] * (1 + 0.01 * cfg.seed)), size=512
    )
    assert reversed_["local Hamming: pe8 < pe16"].outcome is Outcome.CONTRADICTED


def _boundary_arrays(curves):
    def arrays(cfg):
        c = np.asarray(curves[cfg.seed] if cfg.input == "pe16" else [5.0] * len(curves[0]), dtype=float)
        return {
            "boundary/epochs": np.arange(c.size) * 10,
            "boundary/input_mean": c,
            "boundary/feature_mean": c,
        }

    return arrays


@pytest.mark.parametrize(
    ("curves", "outcome"),
    [
        ([[4, 1, 1.5, 2, 2.5, 3], [4, 1.1, 1.4, 2, 2.6, 3.1], [4, 0.9, 1.5, 2.1, 2.4, 2.9]], Outcome.HOLDS),
        # falling to the end, a last point above the late minimum: no widening after an early minimum
        (
            [[4, 3, 2, 1.5, 1, 1.01], [4, 3, 2, 1.4, 1, 1.02], [4, 3.1, 2, 1.5, 1.1, 1.1]],
            Outcome.CONTRADICTED,
        ),
        # an early minimum, then a rise that the seeds do not agree on
        ([[4, 1, 1, 1, 1, 1.6], [4, 1, 1, 1, 1, 0.6], [4, 1, 1, 1, 1, 1.1]], Outcome.INCONCLUSIVE),
    ],
)
def test_e12_regions_widen_after_an_early_minimum_per_seed(curves, outcome):
    verdicts, _ = _verdicts("E12", _boundary_arrays(curves))
    assert verdicts["pe16: regions widen after an early minimum (first half of training)"].outcome is outcome


def test_e12_early_minimum_rise_is_relative_to_the_first_half_minimum():
    assert early_minimum_rise(np.array([4.0, 1.0, 1.5, 2.0])) == pytest.approx(1.0)
    assert early_minimum_rise(np.array([4.0, 3.0, 2.0, 1.0])) == pytest.approx(-2 / 3)
    assert np.isnan(early_minimum_rise(np.array([0.0, 1.0])))


def test_e15_trends_over_network_size_per_seed_and_typed_groups():
    """Hamming count up with d·w, PE's local ratio and every global ratio down; flipped data are
    contradicted; an all-zero sweep cannot be measured; groups are typed (input, depth, width)."""
    sizes = {(2, 64): 0, (4, 128): 1, (6, 128): 2}

    def arrays(grow):
        def make(cfg):
            step = sizes[cfg.depth, cfg.width] if grow else 2 - sizes[cfg.depth, cfg.width]
            units = cfg.depth * cfg.width
            scale = 1 + 0.02 * cfg.seed
            local = (2.0 if cfg.input == "raw01" else 10.0) * (1 + step) * scale
            global_ = units * (0.6 - 0.2 * step) * scale
            return {**_hamming(local, global_), **_confusion(np.full(200, 0.5), np.full(200, 0.9))}

        return make

    verdicts, summary = _verdicts("E15", arrays(True))
    trends = [c for c in verdicts if c.startswith(("raw01:", "pe5:"))]
    assert trends == [
        "raw01: the local Hamming count grows with network size",
        "raw01: the global Hamming ratio H/n falls as the net grows",
        "pe5: the local Hamming count grows with network size",
        "pe5: the local Hamming ratio H/n falls as the net grows",
        "pe5: the global Hamming ratio H/n falls as the net grows",
    ]
    assert all(verdicts[c].holds and verdicts[c].n == 3 for c in trends)
    assert verdicts["4x128: local Hamming ratio raw < PE"].holds
    assert "raw01@4x128" in summary["inputs"]
    flipped, _ = _verdicts("E15", arrays(False))
    assert all(flipped[c].outcome is Outcome.CONTRADICTED for c in trends if "count grows" in c)
    zeros, _ = _verdicts("E15", lambda cfg: {**_hamming(0.0), **_confusion(np.zeros(200), np.zeros(200))})
    assert zeros["raw01: the local Hamming count grows with network size"].outcome is Outcome.NOT_MEASURABLE
    assert str(Net("pe5", 4, 128)) == "pe5@4x128"


def _regions(counts, n=4096):
    """Region records whose final count is ``counts[(input, seed)]``."""

    def arrays(cfg):
        last = counts[cfg.input] * (1 + 0.002 * cfg.seed) if cfg.input in counts else 900.0
        last = min(last, n)
        return {
            "regions/epochs": np.arange(2),
            "regions/all": np.array([10.0, last]),
            "regions/layer1": np.array([10.0, last]),
            "regions/saturated": np.array([0, int(last >= n)]),
        }

    return arrays


def test_e16_region_claims_per_seed():
    # the quick profile's largest count, 3920 of 4096 (96 %), stays below one region per pixel
    counts = {"rpe2x20": 3920.0, "rpe32x40": 3878.0, "rpe2x4": 900.0, "rpe1024x4": 5.0, "rpe1024x20": 40.0}
    verdicts, _ = _verdicts("E16", _regions(counts))
    most = "the d = 20 and d = 40 encodings give the most regions (the two largest counts)"
    fewest = "ω = 2^10 at d = 4 gives the fewest regions"
    below = "every restricted PE stays below one region per pixel (4096)"
    assert verdicts[most].holds and verdicts[fewest].holds and verdicts[below].holds
    assert verdicts[most].n == 3
    flipped, _ = _verdicts("E16", _regions({**counts, "rpe32x4": 4000.0, "rpe1024x4": 950.0}))
    assert flipped[most].outcome is Outcome.CONTRADICTED and flipped[fewest].outcome is Outcome.CONTRADICTED
    full, _ = _verdicts("E16", _regions({k: 5000.0 for k in counts} | {"rpe2x4": 5000.0}))
    assert full[below].outcome is Outcome.CONTRADICTED
    assert full[most].outcome is Outcome.NOT_MEASURABLE and "saturated" in full[most].reason
    diverged, _ = _verdicts("E16", _regions(counts), diverged=("rpe32x4",))
    assert diverged[most].outcome is Outcome.NOT_MEASURABLE and "rpe32x4" in diverged[most].reason


def _heldout_arrays(psnr):
    def arrays(cfg):
        train, test = psnr[cfg.input]
        jitter = 0.1 * cfg.seed
        return {
            "heldout/epochs": np.array([0]),
            "heldout/train_psnr": np.array([train + jitter]),
            "heldout/test_psnr": np.array([test - jitter]),
            **_confusion(np.full(200, 0.5), np.full(200, 0.9)),
        }

    return arrays


def test_x3_generalisation_and_overfitting_per_seed():
    psnr = {"raw01": (20, 19), "basic": (22, 21), "pe6": (30, 26), "rff1": (24, 23), "rff10": (33, 29),
            "rff100": (45, 15)}  # fmt: skip
    verdicts, _ = _verdicts(
        "X3", _heldout_arrays(psnr), size=512
    )  # the paper's grid: nothing aliases only here
    assert verdicts["an encoding generalises better than raw coordinates (rff10)"].holds
    assert verdicts["RFF σ=100 overfits more than σ=10 (train-test PSNR gap)"].holds
    quick, _ = _verdicts("X3", _heldout_arrays(psnr))
    # rff10 has features above the 64² training grid's Nyquist limit (not on the paper's 256²):
    # the best encoding is picked among the others, the overfitting claim cannot be measured
    assert quick["an encoding generalises better than raw coordinates (pe6)"].holds
    overfit = quick["RFF σ=100 overfits more than σ=10 (train-test PSNR gap)"]
    assert overfit.outcome is Outcome.NOT_MEASURABLE and "rff10 aliases" in overfit.reason
    gone, _ = _verdicts("X3", _heldout_arrays(psnr), diverged=("rff100",), size=512)
    overfit = gone["RFF σ=100 overfits more than σ=10 (train-test PSNR gap)"]
    assert overfit.outcome is Outcome.NOT_MEASURABLE and "diverged" in overfit.reason


def test_e20_claims_read_three_reference_pixels():
    from specbias.experiments.study2d import EncodingGrid, _encoding_distances

    result = _encoding_distances(EncodingGrid(size=16), None)
    assert [v.outcome for v in result.findings] == [Outcome.HOLDS, Outcome.HOLDS]
    assert all(v.n == 3 for v in result.findings)
    assert set(result.table.get("raw01", "row_minima").values()) == {0}  # no minimum but the pixel itself
    lines = np.add.outer(np.zeros(4), np.abs(np.arange(4) - 1.0))  # |x - 1| from pixel 1 along each row
    assert row_minima(lines, 1, 4) == 0


def test_e4b_region_claims_and_saturated_counts():
    """Raw uses under half the points, PE approaches one per point; a first-checkpoint comparison of
    two counts saturated at one region per grid point cannot be measured."""
    final = {"raw01": 500.0, "raw11": 800.0, "pe5": 4000.0}

    def arrays(first):
        def make(cfg):
            start = first[cfg.input] * (1 + 0.01 * cfg.seed) if first[cfg.input] < 4096 else 4096.0
            last = final[cfg.input] * (1 + 0.01 * cfg.seed)
            return {
                "regions/epochs": np.arange(2),
                "regions/all": np.array([start, last]),
                "regions/layer1": np.array([start, last]),
                "regions/saturated": np.array([int(start >= 4096), 0]),
            }

        return make

    verdicts, _ = _verdicts("E4b", arrays({"raw01": 100.0, "raw11": 200.0, "pe5": 3000.0}))
    assert verdicts["raw01 uses far fewer regions than points (< half)"].holds
    assert verdicts["pe5 approaches one region per point (>= 90%)"].holds
    assert verdicts["regions at the first checkpoint: raw11 < pe5"].holds
    full, _ = _verdicts("E4b", arrays({"raw01": 100.0, "raw11": 4096.0, "pe5": 4096.0}))
    claim = full["regions at the first checkpoint: raw11 < pe5"]
    assert (
        claim.outcome is Outcome.NOT_MEASURABLE and "saturated at one region per grid point" in claim.reason
    )


def test_the_scale_names_the_training_grid_of_held_out_images():
    x3 = plan(get_experiment("X3"), "standard", None, {})
    e5 = plan(get_experiment("E5"), "standard", None, {})
    assert describe_scale(x3)["points"] == ["256² → 128²"]
    assert describe_scale(e5)["points"] == ["128²"]
