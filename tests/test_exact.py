"""E13, E14, X4: reference parameters, shared training, the windowed measures against loops, findings
that are computed and can fail, and each experiment end to end on tiny settings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from specbias.cli import main
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.density import rank_corr
from specbias.experiments.exact import (
    E13_PAPER,
    E13_QUICK,
    E14_PAPER,
    FINE_SHARE,
    LARGE_SHARE,
    SNAPSHOTS,
    X4_PAPER,
    RegionGeometry,
    Spatial,
    _radius_findings,
    _section_findings,
    _spatial_findings,
    local_rel_error,
    partial_rank_corr,
    window_means,
)
from specbias.pipeline import Planned, execute, plan


def _keys(exp_id: str, seeds: int = 1, profile: str = "quick") -> set[str]:
    exp = get_experiment(exp_id)
    return {c.key() for c in exp.runs(exp.params(profile), seeds)}


def test_registered():
    assert {"E13", "E14", "X4"} <= set(EXPERIMENTS)


def test_paper_profiles_follow_the_spec():
    s = E13_PAPER.study
    assert s.inputs == ("pe4", "pe8", "pe12", "pe16", "pe20") and s.seeds == 5
    assert (s.images[0].size, s.width, s.depth, s.train.batch_size, s.train.epochs) == (
        512,
        512,
        4,
        8192,
        2500,
    )
    assert s.probes == (SNAPSHOTS,) and not SNAPSHOTS.before_update
    assert SNAPSHOTS.schedule.epochs(2500) == [0, 2499]  # after 1 epoch and after 2,500 (spec §1.9)
    assert E13_PAPER.samples == 1000
    assert E14_PAPER.study.inputs == ("pe4", "pe16") and E14_PAPER.study.seeds == 1
    assert E14_PAPER.section_size == 512
    assert {s.n for s in X4_PAPER.signals} == {2048} and (X4_PAPER.width, X4_PAPER.depth) == (128, 4)


def test_e14_trains_nothing_e13_does_not():
    assert _keys("E14") <= _keys("E13")
    assert _keys("E14", profile="paper") <= _keys("E13", profile="paper")


def test_window_measures_match_loops():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 300
    v, pred, y = rng.normal(size=300), rng.normal(size=300), rng.normal(size=300)
    centres, w = np.array([0.05, 0.3, 0.51, 0.95]), 0.1
    inside = [(t >= c - w / 2) & (t < c + w / 2) for c in centres]
    np.testing.assert_allclose(window_means(t, v, centres, w), [v[m].mean() for m in inside])
    want = [np.sqrt(np.sum((pred[m] - y[m]) ** 2) / np.sum(y[m] ** 2)) for m in inside]
    np.testing.assert_allclose(local_rel_error(t, pred, y, centres, w), want)
    assert np.allclose(local_rel_error(t, np.zeros(300), y, centres, w), 1.0)


def test_spatial_findings_are_computed_and_can_fail():
    freq = np.linspace(5, 70, 20)
    follows = {"density": np.stack([np.ones(20), 2 * freq]), "error": np.stack([np.ones(20), 1 / freq]),
               "counts": np.array([[100.0, 150, 150, 0], [100, 300, 300, 0]])}  # fmt: skip
    against = {"density": np.stack([freq, 1 / freq]), "error": np.stack([np.ones(20), freq]),
               "counts": np.array([[100.0, 100, 100, 0], [100, 100, 100, 0]])}  # fmt: skip
    good = _spatial_findings("chirp", freq, {"raw01": against, "pe3": follows}, 1024)
    verdict = {f.claim: f.holds for f in good}
    assert verdict["pe3 on the chirp: training concentrates regions where the local frequency is high"]
    assert not verdict["raw01 on the chirp: training concentrates regions where the local frequency is high"]
    assert verdict["raw01 on the chirp: spectral bias is local (the error grows with the local frequency)"]
    assert verdict["on the chirp, pe3 fits the highest-frequency quarter better than raw01"]
    assert verdict["on the chirp, the 1024-point grid misses regions of pe3 at the end (exact > grid)"]
    swapped = {
        f.claim: f.holds for f in _spatial_findings("chirp", freq, {"raw01": follows, "pe3": against}, 1024)
    }
    assert not swapped["on the chirp, pe3 fits the highest-frequency quarter better than raw01"]
    assert not swapped["on the chirp, the 1024-point grid misses regions of pe3 at the end (exact > grid)"]


def _ranks(v):
    return np.argsort(np.argsort(v)).astype(float)


def _rank_residual(v, z):
    """The ranks of ``v`` minus their least-squares fit on the ranks of ``z`` (and a constant)."""
    design = np.stack((np.ones(len(z)), _ranks(z)), axis=1)
    return _ranks(v) - design @ np.linalg.lstsq(design, _ranks(v), rcond=None)[0]


def test_partial_rank_corr_is_the_correlation_of_rank_residuals():
    """Against the definition: regress the ranks of x and y on those of z, correlate the residuals."""
    rng = np.random.default_rng(4)
    for _ in range(10):
        z = rng.normal(size=40)
        x, y = z + rng.normal(size=40), -z + rng.normal(size=40) + 0.5 * rng.normal(size=40)
        want = np.corrcoef(_rank_residual(x, z), _rank_residual(y, z))[0, 1]
        assert partial_rank_corr(x, y, z) == pytest.approx(want, abs=1e-10)
    assert np.isnan(partial_rank_corr(2 * z, y, z))  # x is a function of z: nothing left


def test_convergence_follows_regions_needs_more_than_the_local_frequency():
    """Evenly spread regions and an error that grows with the local frequency make regions per local
    period and the error anti-correlated, but convergence does not follow the regions there; an error
    set by the regions per period (at any frequency) does."""
    freq = np.linspace(5, 70, 24)
    spread = np.random.default_rng(1).uniform(0.5, 1.5, 24)
    counts = np.array([[100.0, 150, 150, 0], [100, 300, 300, 0]])
    even = {"density": np.stack([np.full(24, 40.0)] * 2), "error": np.stack([np.ones(24), freq / 70]),
            "counts": counts}  # fmt: skip
    assert rank_corr(even["density"][-1] / freq, even["error"][-1]) == pytest.approx(-1)
    by_regions = {"density": np.stack([np.full(24, 40.0), 2 * freq * spread]),
                  "error": np.stack([np.ones(24), 1 / spread]), "counts": counts}  # fmt: skip
    verdict = {
        f.claim.split(": ")[0]: f.holds
        for f in _spatial_findings("chirp", freq, {"raw01": even, "pe3": by_regions}, 1024)
        if "local convergence follows the regions" in f.claim
    }
    assert verdict == {"raw01 on the chirp": False, "pe3 on the chirp": True}


def test_section_findings_are_computed_and_can_fail():
    kinds = ("low/first", "low/all", "high/first", "high/all")
    fine = dict.fromkeys(kinds, FINE_SHARE / 2)
    coarse = dict.fromkeys(kinds, 2 * LARGE_SHARE)
    hidden = {k: dict.fromkeys(kinds, 5.0) for k in ("pe4", "pe16")}
    holds = [f.holds for f in _section_findings({"pe4": fine, "pe16": coarse}, hidden, ["pe4", "pe16"], 64)]
    assert holds == [True, True, True, True]
    hidden["pe16"]["high/all"] = 0.0
    fails = [f.holds for f in _section_findings({"pe4": coarse, "pe16": fine}, hidden, ["pe4", "pe16"], 64)]
    assert fails == [False, False, False, False]


def _radius_summary(medians: dict[str, tuple[float, float]], tail: tuple[float, float] = (1.5, 1.5)) -> dict:
    """Checkpoints "a" and "b"; ``tail``: the 90th percentile over the median at each."""

    def stats(m: float, t: float) -> dict:
        return {"median": m, "iqr": m / 4, "q90": t * m, "mean": m, "q10": m / 2}

    return {
        label: {
            "radius": {
                kind: {"a": stats(m0, tail[0]), "b": stats(m1, tail[1])}
                for kind in ("first/off", "first/on", "all/off")
            }
        }
        for label, (m0, m1) in medians.items()
    }


def test_radius_findings_are_computed_and_can_fail():
    grows = _radius_summary({"pe4": (0.1, 0.1), "pe8": (0.2, 0.205)})
    verdict = {f.claim.split(" (")[0]: f.holds for f in _radius_findings(grows, ["pe4", "pe8"], "a", "b")}
    assert verdict["the typical first-layer radius increases with L"]
    assert verdict["first-layer radii barely change with training"]
    shrinks = _radius_summary({"pe4": (0.3, 0.1), "pe8": (0.2, 0.1)})
    results = _radius_findings(shrinks, ["pe4", "pe8"], "a", "b")
    assert not any(f.holds for f in results)
    single = _radius_findings(grows, ["pe8"], "a", "a")  # one input, one checkpoint: nothing to compare
    assert single == []


def test_heavier_tail_is_a_change_of_shape_not_of_scale():
    """Every radius 5 % larger moves the 90th percentile but leaves the tail's weight as it was; a 90th
    percentile further from an unchanged median is a heavier tail."""

    def heavier(summary: dict) -> bool:
        found = _radius_findings(summary, ["pe4", "pe8"], "a", "b")
        return next(f.holds for f in found if f.claim.startswith("after training the right tail"))

    assert not heavier(_radius_summary({"pe4": (0.1, 0.105), "pe8": (0.2, 0.21)}))
    assert heavier(_radius_summary({"pe4": (0.1, 0.1), "pe8": (0.2, 0.2)}, tail=(1.5, 1.6)))
    assert not heavier(_radius_summary({"pe4": (0.1, 0.1), "pe8": (0.2, 0.22)}, tail=(1.5, 1.4)))


def test_bad_parameters_raise_config_error():
    with pytest.raises(ConfigError):
        RegionGeometry(dataclasses.replace(E13_QUICK.study, inputs=("raw01", "pe4")))
    with pytest.raises(ConfigError):
        dataclasses.replace(E13_QUICK, samples=0)
    for size in (1, 64.5):  # caught before any training, not when the analysis draws the grid
        with pytest.raises(ConfigError, match="section grid size must be an integer >= 2"):
            dataclasses.replace(E13_QUICK, section_size=size)
    with pytest.raises(ConfigError):
        Spatial(window=0.0)
    with pytest.raises(ConfigError):
        plan(get_experiment("X4"), "quick", 1, {"size": 32})
    assert {s.n for s in plan(get_experiment("X4"), "quick", 1, {"n": 512}).params.signals} == {512}


def _tiny(exp_id: str, tmp_path, **changes) -> dict:
    planned = plan(get_experiment(exp_id), "quick", 1, {"epochs": 2, "width": 8, "size": 16})
    params = dataclasses.replace(planned.params, **changes)
    tiny = Planned(planned.experiment, "quick", params, 1, planned.configs)
    [(_, result, path)] = execute([tiny], tmp_path, workers=1, progress=False)
    assert all(isinstance(f.holds, bool) for f in result.findings)
    return json.loads((path / "summary.json").read_text())


def test_e13_end_to_end(tmp_path):
    summary = _tiny("E13", tmp_path, samples=6, deep_samples=3)
    assert len(summary["findings"]) == 7
    radius = summary["inputs"]["pe8"]["radius"]
    assert set(radius) == {"first/off", "first/on", "all/off", "all/on"}
    assert set(radius["first/off"]) == {"after 1 epoch", "after 2 epochs"}
    assert (tmp_path / "E13" / "figures" / "inspheres.png").is_file()
    arrays = np.load(tmp_path / "E13" / "arrays.npz")
    assert arrays["radius/first/off/pe8"].shape == (2, 6) and arrays["radius/all/on/pe2"].shape == (2, 3)
    assert np.all(arrays["radius/all/off/pe4"] <= arrays["radius/first/off/pe4"][:, :3] + 1e-9)


def test_e14_end_to_end(tmp_path):
    summary = _tiny("E14", tmp_path, section_size=24)
    sections = summary["inputs"]["pe2"]["sections"]
    assert set(sections) == {"low/first", "low/all", "high/first", "high/all"}
    assert all(s["exact_count"] >= s["grid_count"] for s in sections.values())
    assert len(summary["findings"]) == 4
    for name in ("cross_sections", "grid_vs_exact"):
        assert (tmp_path / "E14" / "figures" / f"{name}.png").is_file()


def test_x4_end_to_end_through_the_cli(tmp_path):
    argv = ["run", "X4", "--epochs", "3", "--n", "256", "--width", "8", "--seeds", "1", "--no-progress",
            "--workers", "1", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "X4" / "summary.json").read_text())
    assert set(summary["inputs"]) == {"raw01@chirp", "pe3@chirp", "raw01@burst", "pe3@burst"}
    entry = summary["inputs"]["pe3@burst"]
    assert entry["exact_count_last"] >= entry["grid_count_last"] and len(entry["rho_density_freq"]) == 3
    assert len(summary["findings"]) == 14
    arrays = np.load(tmp_path / "X4" / "arrays.npz")
    assert arrays["density/raw01@chirp"].shape == (1, 3, arrays["window_centres"].size)
    for name in ("spatial_chirp", "spatial_burst", "grid_vs_exact"):
        assert (tmp_path / "X4" / "figures" / f"{name}.png").is_file()
