"""X6 (coordinate density) and X7 (dimension vs encoding): parameters, run sharing, the summary
contract end to end through the CLI, and findings that are computed and can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from specbias.cli import main
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.density import (
    PROBES,
    WINDOW,
    X6_PAPER,
    X6_QUICK,
    X7_PAPER,
    X7_QUICK,
    Density,
    Lifts,
    block,
    density_findings,
    frequency_map,
    lift_findings,
    lift_inputs,
    lift_kind,
    metric_lines,
    rank_corr,
    rel_err_at_step,
    steps_per_epoch,
    trend,
)
from specbias.runs import RunData

TINY_X = ["--epochs", "3", "--width", "8", "--no-progress", "--workers", "1"]
BLOCK = (
    "epochs_to_rel_err_0.1",
    "steps_to_rel_err_0.1",
    "final_rel_err",
    "n_converged",
    "cos_local_abs_mean",
    "hamming_local",
    "regions_last",
    "points_per_region",
    "steps_per_epoch",
    "window_samples",
)


def _keys(exp_id: str, profile: str = "quick", seeds: int = 2) -> list[str]:
    exp = get_experiment(exp_id)
    return [c.key() for c in exp.runs(exp.params(profile), seeds)]


def test_registered_and_listed(capsys):
    assert {"X6", "X7"} <= set(EXPERIMENTS)
    assert main(["list"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "X6" in ids and "X7" in ids


def test_paper_profiles_are_the_issue_grids():
    p = X6_PAPER
    assert p.sizes == (256, 512, 1024, 2048, 4096, 8192)
    assert p.inputs == ("raw01", "raw11", "pe3", "pe6")
    assert (p.width, p.depth, p.train.epochs, p.train.lr, p.train.batch_size, p.seeds) == (
        128,
        4,
        500,
        1e-3,
        None,
        5,
    )
    assert p.variants() == [(None, p.inputs, 500), (128, p.inputs, 500)]
    assert X7_PAPER.signal.n == 2048 and X7_PAPER.train == p.train
    for d in (2, 8, 14, 32):
        assert {f"lin{d}", f"curve{d}", f"rff10x{d}"} <= set(X7_PAPER.inputs)
    assert {"raw01", "pe0", "pe3", "pe6"} <= set(X7_PAPER.inputs)
    assert "pe15" not in X7_PAPER.inputs  # 16 octaves alias at N = 2048
    assert lift_inputs((14,), 64) == ("raw01", "lin14", "curve14", "rff10x14")  # pe6 aliases at N = 64


def test_local_windows_have_a_fixed_physical_width():
    for spec in PROBES[:2]:
        assert spec.pairs.window == WINDOW
    # the window holds w·N samples: 6 at N = 256, 192 at N = 8192 (exactly w·N for multiples of 128)
    assert [round(WINDOW * n) for n in X6_PAPER.sizes] == [6, 12, 24, 48, 96, 192]


def test_runs_share_nothing_they_should_not():
    x6, x7 = _keys("X6"), _keys("X7")
    assert len(set(x6)) == len(x6) and len(set(x7)) == len(x7)
    # X6: one run per (variant, input, N, seed)
    q = X6_QUICK
    assert len(x6) == 2 * (len(q.inputs) + len(q.batch_inputs)) * len(q.sizes)
    configs = get_experiment("X6").runs(q, 2)
    assert {c.train.batch_size for c in configs} == {None, 128}
    assert {c.train.epochs for c in configs if c.train.batch_size} == {q.batch_epochs}
    assert {c.signal.n for c in configs} == set(q.sizes)
    # X7 quick at N = 512 reuses X6's full-batch raw01 and pe6 runs there (d = 14) -- and nothing else
    shared = {c.key(): c for c in configs if c.key() in set(x7)}
    assert sorted({(c.input, c.signal.n, c.train.batch_size) for c in shared.values()}) == [
        ("pe6", 512, None),
        ("raw01", 512, None),
    ]
    # and nothing with the 1D study (different probes)
    assert set(x6).isdisjoint(_keys("X1")) and set(x7).isdisjoint(_keys("X1"))
    # the lifts are drawn from the run seed: two seeds, two lines
    lin = [c for c in get_experiment("X7").runs(X7_QUICK, 2) if c.input == "lin14"]
    a, b = (c.encoding().direction for c in lin)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sizes": (128, 256)}, "outside 1..63 for N=128"),
        ({"sizes": (256, 256)}, "distinct"),
        ({"batch_size": 256, "sizes": (256, 512)}, "got 256"),
        ({"batch_inputs": ("pe5",)}, "'pe5'"),
        ({"batch_epochs": 0}, "got 0"),
        ({"inputs": ("raw01", "lin0")}, "got 0"),
        ({"sizes": 256}, "non-empty tuple"),
        ({"sizes": (256.0, 512)}, "every N of sizes must be an integer >= 2, got 256.0"),
        ({"batch_size": 2.5}, "batch size must be an integer >= 1, got 2.5"),
        ({"batch_size": "128"}, "batch size must be an integer >= 1, got '128'"),
        ({"batch_epochs": 2.5}, "batch_epochs must be an integer >= 1, got 2.5"),
        ({"batch_inputs": ()}, "at least one input"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Density(**kwargs)


def test_x7_inputs_are_one_per_kind_and_dimension():
    assert lift_kind("raw01") == ("raw", 1) and lift_kind("raw11") == ("other", 1)  # raw = [0,1) only
    assert lift_kind("rff10x8") == ("rff", 8) and lift_kind("pe3") == ("pe", 8)
    for inputs, needle in (
        (("raw01", "rff10x8", "rff5x8"), "'rff10x8' and 'rff5x8' are both rff at d=8"),
        (("raw01", "lin8", "lin8", "pe3"), "distinct"),
    ):
        with pytest.raises(ConfigError, match=needle):
            Lifts(inputs=inputs)
    Lifts(inputs=("raw01", "raw11", "lin8"))  # raw [-1,1) is not the d = 1 reference
    for dims, bad in (((0,), "0"), ((2, 1), "1"), ((2.5,), "2.5")):
        with pytest.raises(ConfigError, match=f"lift dimension d must be an integer >= 2, got {bad}"):
            lift_inputs(dims, 512)


def test_overrides_apply_to_both_variants(tmp_path, capsys):
    over = X6_QUICK.override(inputs=["raw11"], epochs=7)
    assert over.variants() == [(None, ("raw11",), 7), (128, ("raw11",), 7)]
    assert X7_QUICK.override(n=512).signal.n == 512
    assert main(["run", "X6", "--n", "512", "--out", str(tmp_path / "o")]) == 2
    assert "--n does not apply to X6" in capsys.readouterr().err


def test_x6_end_to_end(tmp_path):
    args = ["run", "X6", "--inputs", "raw01,pe3", "--seeds", "1", "--out", str(tmp_path), *TINY_X]
    assert main(args) == 0
    summary = json.loads((tmp_path / "X6/summary.json").read_text())
    assert set(summary["by_n"]) == {"full_batch", "batch128"}
    for variant, per_input in summary["by_n"].items():
        assert list(per_input) == ["raw01", "pe3"]
        for label, per_n in per_input.items():
            assert list(per_n) == ["256", "512", "1024", "2048"]
            for n, entry in per_n.items():
                for field in BLOCK:
                    assert field in entry, (variant, label, n, field)
                assert list(entry["epochs_to_rel_err_0.1"]) == [str(k) for k in range(5, 71, 5)]
                spe = 1 if variant == "full_batch" else int(n) // 128
                assert entry["steps_per_epoch"] == spe
                assert entry["window_samples"] == round(WINDOW * int(n))
    assert "raw01@N1024" in summary["inputs"] and "pe3@N2048/b128" in summary["inputs"]
    assert summary["findings"]
    for finding in summary["findings"]:
        assert isinstance(finding["holds"], bool) and finding["detail"]
    assert {p.name for p in (tmp_path / "X6/figures").glob("*.png")} >= {
        "density_metrics.png",
        "convergence_epochs.png",
        "convergence_steps.png",
    }


def test_x7_end_to_end(tmp_path):
    inputs = "raw01,lin2,curve2,pe0,rff10x2"
    args = ["run", "X7", "--inputs", inputs, "--n", "256", "--seeds", "2", "--out", str(tmp_path), *TINY_X]
    assert main(args) == 0
    summary = json.loads((tmp_path / "X7/summary.json").read_text())
    table = summary["by_dimension"]
    assert {k: list(v) for k, v in table.items()} == {
        "raw": ["1"],
        "lin": ["2"],
        "curve": ["2"],
        "pe": ["2"],
        "rff": ["2"],
    }
    for kind, per_d in table.items():
        for field in BLOCK:
            assert field in per_d[next(iter(per_d))], (kind, field)
    assert summary["inputs"]["curve2"]["kind"] == "curve" and summary["inputs"]["curve2"]["in_dim"] == 2
    claims = " | ".join(f["claim"] for f in summary["findings"])
    assert "linear lift changes nothing" in claims and "separates neighbours" in claims


# --------------------------------------------------------------------------- numbers and findings


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # scipy: NaN, rank_corr: 0
def test_rank_corr_matches_scipy_on_random_inputs_with_ties():
    rng = np.random.default_rng(0)
    for size in (2, 3, 5, 8, 20):
        for _ in range(20):
            x, y = rng.integers(0, 4, size), rng.normal(size=size).round(1)
            expected = spearmanr(x, y).statistic
            assert rank_corr(x, y) == pytest.approx(0.0 if np.isnan(expected) else expected, abs=1e-12)


def test_rank_corr_and_trend_handle_ties():
    assert rank_corr([1, 2, 3], [5, 5, 5]) == 0.0
    assert rank_corr([1, 2, 3], [1, 1, 2]) > 0
    flat = trend("flat", [256, 1024], [3.0, 3.0], rises=False)
    assert flat.holds is False and "ρ = +0.00" in flat.detail
    # a monotone but immaterial change (< 5%) does not count as a trend
    ns = [256, 512, 1024, 2048]
    assert trend("tiny", ns, [0.992, 0.993, 0.994, 0.994], rises=True).holds is False
    assert trend("real", ns, [0.5, 0.6, 0.55, 0.8], rises=True).holds is True
    assert trend("from zero", ns, [0.0, 0.0, 1.0, 2.0], rises=True).holds is True


def test_steps_per_epoch_and_rel_err_at_step():
    assert steps_per_epoch(4096, 128) == 32 and steps_per_epoch(300, 128) == 3
    assert steps_per_epoch(4096, None) == 1 and steps_per_epoch(128, 128) == 1
    rel = np.array([[1.0, 1.0, 0.8, 0.6], [1.0, 1.0, 0.4, 0.2]])  # 2 checkpoints × 4 tones
    data = RunData({"convergence/epochs": np.array([0, 9]), "convergence/rel_error": rel}, {})
    # upper half: 0.7 after 1 epoch (4 steps), 0.3 after 10 epochs (40 steps)
    assert rel_err_at_step([data], 4, 4) == pytest.approx(0.7)
    assert rel_err_at_step([data], 4, 22) == pytest.approx(0.5)


def _entry(count, high, cos, ham, ppr, epochs=None):
    epochs = epochs or {"5": 10.0, "10": None}
    return {
        "n_converged": count,
        "final_rel_err_high": high,
        "cos_local_abs_mean": cos,
        "hamming_local": ham,
        "points_per_region": ppr,
        "epochs_to_rel_err_0.1": epochs,
        "epochs_trained_to_rel_err_0.1": {k: None if e is None else e + 1 for k, e in epochs.items()},
    }


def test_density_findings_follow_the_numbers():
    ns = ("256", "1024", "4096")
    slowing = [_entry(3 - i, 0.5 + 0.1 * i, 0.9 + 0.03 * i, 2 - 0.5 * i, 10 * 4**i) for i in range(3)]
    steady = [_entry(14, 0.01, 0.2, 20, 1, {"5": 70.0, "10": 71.0}) for _ in range(3)]
    table = {"full_batch": {"raw01": dict(zip(ns, slowing)), "pe6": dict(zip(ns, steady))}}
    found = {f.claim: f.holds for f in density_findings(X6_QUICK, table)}
    assert all(found.values()), found
    table = {"full_batch": {"raw01": dict(zip(ns, slowing[::-1])), "pe6": dict(zip(ns, slowing))}}
    found = {f.claim: f.holds for f in density_findings(X6_QUICK, table)}
    assert not any(v for k, v in found.items() if k.startswith("raw")), found
    assert not found["PE L=6, full batch: the number of converged frequencies hardly depends on N"]


def test_batch_density_findings_follow_the_numbers():
    ns = ("256", "1024", "4096")

    def raw(high, at_step):
        return {"final_rel_err_high": high, "rel_err_high_at_common_step": at_step, "common_step": 200}

    def pe(epochs, steps):
        return {
            "epochs_trained_to_rel_err_0.1": {"5": epochs + 1, "10": None},
            "steps_to_rel_err_0.1": {"5": steps, "10": None},
        }

    good = {
        "raw01": dict(zip(ns, [raw(0.9, 0.5), raw(0.7, 0.6), raw(0.5, 0.8)])),
        "pe6": dict(zip(ns, [pe(40.0, 82.0), pe(10.0, 88.0), pe(2.0, 96.0)])),
    }
    found = [f.holds for f in density_findings(X6_QUICK, {"batch128": good})]
    assert found == [True, True, True, True], found
    bad = {
        "raw01": dict(zip(ns, [raw(0.5, 0.8), raw(0.7, 0.6), raw(0.9, 0.5)])),
        "pe6": dict(zip(ns, [pe(2.0, 6.0), pe(10.0, 88.0), pe(40.0, 1312.0)])),
    }
    found = [f.holds for f in density_findings(X6_QUICK, {"batch128": bad})]
    assert found == [False, False, False, False], found


def test_figure_titles_and_legends_stay_clear():
    freqs = list(range(5, 71, 5))
    title = "First epoch with rel. error < 0.1 per target frequency (grey: never)"
    fig = frequency_map(
        {"raw [0,1) (full batch)": (["256", "512"], np.ones((14, 2)))}, freqs, "N", title, "epoch"
    )
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, fig.get_suptitle()
    ns = [256, 512, 1024]
    metrics = {"n_converged": "converged", "regions": "regions"}
    names = [
        f"{a} ({b})"
        for a in ("raw [0,1)", "raw [-1,1)", "PE L=3", "PE L=6")
        for b in ("full batch", "batch 128")
    ]
    series = {k: (ns, {m: (np.arange(3.0) + 1, np.zeros(3)) for m in metrics}) for k in names}
    fig = metric_lines(series, metrics, "N", "Coordinate density: convergence and regions over N")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    assert [ax.get_ylabel() for ax in fig.axes] == list(metrics.values())  # density2d indexes them
    legend = fig.legends[0].get_window_extent(renderer)
    assert len(fig.legends[0].get_texts()) == len(names)
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width


def test_epoch_findings_use_epochs_trained_not_labels():
    # checkpoint labels 3, 4, 3 are 4, 5, 4 epochs trained: relative range 0.23 (weak), not 0.30
    ns = ("256", "1024", "4096")
    pe = [_entry(14, 0.01, 0.2, 20, 1, {"5": e, "10": None}) for e in (3.0, 4.0, 3.0)]
    found = density_findings(X6_QUICK, {"full_batch": {"pe6": dict(zip(ns, pe))}})
    epochs = next(f for f in found if "epochs to converge" in f.claim)
    assert epochs.holds and "relative range 0.23" in epochs.detail, epochs.detail


def test_block_counts_epochs_and_steps_from_the_checkpoint_label():
    seeds = {m: np.array([0.5]) for m in ("n_converged", "rel_err_mean", "rel_err_high")}
    fields = ("cos_local_abs_mean", "cos_local_mean", "hamming_local", "hamming_local_ratio", "final_loss")
    summary = {
        "epochs_to_rel_err_0.1": {"5": 0.0, "10": None},  # label 0: after the first epoch
        "final_rel_err": {},
        "regions_last": 4.0,
        "seeds": 1,
        **dict.fromkeys(fields, 1.0),
    }
    out = block(summary, seeds, 512, 128)
    assert out["epochs_trained_to_rel_err_0.1"] == {"5": 1.0, "10": None}
    assert out["steps_to_rel_err_0.1"] == {"5": 4.0, "10": None}
    assert out["points_per_region"] == 128


def _lift(ham, err, count=0.0, regions=100.0):
    return {"hamming_local": ham, "final_rel_err_mean": err, "n_converged": count, "regions_last": regions}


def test_lift_findings_follow_the_numbers():
    good = {
        "raw": {"1": _lift(1.0, 0.9)},
        "lin": {"8": _lift(1.1, 0.92)},
        "curve": {"8": _lift(3.0, 0.8)},
        "pe": {"8": _lift(40.0, 0.05, 14)},
    }
    found = {f.claim: f.holds for f in lift_findings(good)}
    assert all(found.values()), found
    bad = {**good, "lin": {"8": _lift(60.0, 0.01, 14, 900.0)}}
    found = {f.claim: f.holds for f in lift_findings(bad)}
    assert not any(v for k, v in found.items() if "linear lift changes nothing" in k), found
