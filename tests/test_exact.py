"""E13, E14, X4: reference parameters, shared training, the windowed measures against loops, the claims
judged on per-seed tables (each outcome reached, both ways), and each experiment end to end on tiny
settings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from specbias.claims import Outcome, SeedTable, Verdict, evaluate, rank_corr
from specbias.cli import main
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.experiments.exact import (
    E13_PAPER,
    E13_QUICK,
    E14_PAPER,
    E14_QUICK,
    SLICES,
    SNAPSHOTS,
    X4_PAPER,
    X4_QUICK,
    RegionGeometry,
    Spatial,
    SpatialKey,
    analyse_sections,
    local_rel_error,
    partial_rank_corr,
    radius_claims,
    radius_values,
    section_claims,
    section_q,
    spatial_claims,
    spatial_values,
    window_means,
)
from specbias.pipeline import Planned, execute, plan
from specbias.runs import RunData
from specbias.signals import Burst, Chirp
from specbias.thresholds import threshold

H, C, INC, N = Outcome.HOLDS, Outcome.CONTRADICTED, Outcome.INCONCLUSIVE, Outcome.NOT_MEASURABLE
SEEDS = (0, 1, 2)


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
    assert E14_PAPER.study.inputs == ("pe4", "pe16") and E14_PAPER.study.seeds == 3
    assert E14_PAPER.section_size == 512
    assert {s.n for s in X4_PAPER.signals} == {2048} and (X4_PAPER.width, X4_PAPER.depth) == (128, 4)


def test_quick_profiles_have_three_seeds():
    assert E13_QUICK.seeds == E14_QUICK.seeds == X4_QUICK.seeds == 3


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


def _outcomes(claims, table: SeedTable) -> dict[str, Outcome]:
    return {v.claim: v.outcome for v in evaluate(claims, table)}


# --------------------------------------------------------------------------- X4 claims

FREQ = np.linspace(5, 70, 24)
CHIRP = Spatial(signals=(Chirp(n=1024),), inputs=("raw01", "pe3"))


def _run(
    start: np.ndarray, end: np.ndarray, error: np.ndarray, exact: float = 300.0, grid: float = 100.0
) -> dict[str, np.ndarray]:
    """What :func:`run_spatial` measures, at two snapshots: density at each, the error at the end, and
    the grid and exact counts."""
    counts = np.array([[grid, exact, exact, 0.0]] * 2)
    return {
        "density": np.stack([start, end]),
        "error": np.stack([np.ones_like(error), error]),
        "counts": counts,
    }


def _follows(seed: int) -> dict[str, np.ndarray]:
    """Regions move to the high local frequencies, and where a window has more regions for its
    frequency its error is lower."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.5, 1.5, FREQ.size)
    return _run(rng.uniform(1, 2, FREQ.size), 2 * FREQ * spread, 0.1 / spread, exact=300 + seed)


def _against(seed: int) -> dict[str, np.ndarray]:
    """Regions leave the high frequencies; the error grows with the local frequency (spectral bias) and,
    at equal frequency, with the regions; the grid sees every region."""
    spread = np.random.default_rng(10 + seed).uniform(0.5, 1.5, FREQ.size)
    return _run(FREQ, spread / FREQ, FREQ / 70 * spread, exact=100 + seed, grid=100 + seed)


def _spatial_table(runs: dict[str, object], seeds=SEEDS, kind: str = "chirp") -> SeedTable:
    table = SeedTable()
    for label, make in runs.items():
        for seed in seeds:
            for quantity, value in spatial_values(make(seed), FREQ).items():
                table.add(SpatialKey(kind, label), quantity, seed, value)
    return table


def test_spatial_claims_hold_and_are_contradicted():
    found = _outcomes(spatial_claims(CHIRP), _spatial_table({"raw01": _against, "pe3": _follows}))
    assert found == {
        "raw01 on the chirp: training concentrates regions where the local frequency is high": C,
        "raw01 on the chirp: local convergence follows the regions (more regions per local period, lower "
        "error, at equal local frequency)": C,
        "pe3 on the chirp: training concentrates regions where the local frequency is high": H,
        "pe3 on the chirp: local convergence follows the regions (more regions per local period, lower "
        "error, at equal local frequency)": H,
        "raw01 on the chirp: spectral bias is local (the error grows with the local frequency)": H,
        "on the chirp, pe3 fits the highest-frequency quarter better than raw01": H,
        "on the chirp, the 1024-point grid misses regions of pe3 at the end (exact > grid)": H,
    }
    swapped = _outcomes(spatial_claims(CHIRP), _spatial_table({"raw01": _follows, "pe3": _against}))
    assert swapped["on the chirp, pe3 fits the highest-frequency quarter better than raw01"] == C
    assert swapped["on the chirp, the 1024-point grid misses regions of pe3 at the end (exact > grid)"] == C


def test_spatial_claims_per_signal_and_unmeasurable_or_inconclusive():
    """Both signals get their claims; regions spread evenly at the end (a constant density: no rank
    correlation exists) are not measurable; a single seed is inconclusive."""
    both = Spatial(signals=(Chirp(n=512), Burst(n=512)), inputs=("raw01", "pe3"))
    even = lambda seed: _run(FREQ, np.full(FREQ.size, 40.0), FREQ / 70)  # noqa: E731
    table = _spatial_table({"raw01": even, "pe3": _follows}, kind="burst")
    table.update(_spatial_table({"raw01": _against, "pe3": _follows}, seeds=(0,)))
    found = _outcomes(spatial_claims(both), table)
    assert len(found) == 14
    assert found["raw01 on the burst: training concentrates regions where the local frequency is high"] == N
    assert found["pe3 on the burst: training concentrates regions where the local frequency is high"] == H
    assert found["pe3 on the chirp: training concentrates regions where the local frequency is high"] == INC
    assert found["on the chirp, the 512-point grid misses regions of pe3 at the end (exact > grid)"] == INC


def test_convergence_follows_regions_needs_more_than_the_local_frequency():
    """Evenly spread regions and an error that grows with the local frequency make regions per local
    period and the error anti-correlated, but convergence does not follow the regions there (the partial
    ρ at equal local frequency is near 0: contradicted over eight seeds); an error set by the regions per
    period, at any frequency, does follow them."""

    def even(seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(100 + seed)
        return _run(FREQ, 40 + rng.uniform(-1, 1, FREQ.size), FREQ / 70 * rng.uniform(0.7, 1.3, FREQ.size))

    assert rank_corr(40 / FREQ, FREQ / 70) == pytest.approx(-1)
    table = _spatial_table({"raw01": even, "pe3": _follows}, seeds=range(8))
    claims = [c for c in spatial_claims(CHIRP) if "local convergence follows the regions" in c.text]
    found = {text.split(":")[0]: outcome for text, outcome in _outcomes(claims, table).items()}
    assert found == {"raw01 on the chirp": C, "pe3 on the chirp": H}


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
        assert partial_rank_corr(x, -y, z) == pytest.approx(-want, abs=1e-10)
    assert np.isnan(partial_rank_corr(2 * z, y, z))  # x is a function of z: nothing left
    assert np.isnan(partial_rank_corr(np.ones(40), y, z))  # a constant series has no rank correlation
    assert partial_rank_corr(x, y, np.ones(40)) == pytest.approx(rank_corr(x, y))  # nothing to hold fixed


# --------------------------------------------------------------------------- E14 claims


def _section_table(shares: dict[str, float], exact_over_grid: float = 1.5) -> SeedTable:
    table = SeedTable()
    for label, share in shares.items():
        for seed in SEEDS:
            for which in SLICES:
                kind = f"{which}/all"
                table.add(label, section_q("largest share", kind), seed, share * (1 + 0.02 * seed))
                missed = 1 - 1 / (exact_over_grid * (1 + 0.01 * seed))
                table.add(label, section_q("missed share", kind), seed, missed)
    return table


def test_section_claims_hold_and_are_contradicted():
    fine, coarse = threshold("fine_share").value / 2, 2 * threshold("large_share").value
    claims = section_claims(["pe4", "pe16"], 64)
    holds = [v.outcome for v in evaluate(claims, _section_table({"pe4": fine, "pe16": coarse}))]
    assert holds == [H, H, H, H]
    fails = [v.outcome for v in evaluate(claims, _section_table({"pe4": coarse, "pe16": fine}, 1.0))]
    assert fails == [C, C, C, C]
    assert [v.outcome for v in evaluate(claims, _section_table({"pe4": fine, "pe16": fine}))] == [H, C, C, H]


def test_sections_of_runs_that_all_diverged_are_not_measurable():
    """No section is computed; every claim reports why, none says 'contradicted'."""
    cfgs = E14_QUICK.runs(3)
    runs = [(c, RunData({"train/loss": np.ones(3)}, {"seed": c.seed, "diverged_at": 2, "key": c.key()}))
            for c in cfgs]  # fmt: skip
    result = analyse_sections(E14_QUICK, runs)
    assert [v.outcome for v in result.findings] == [N] * 4
    assert all("every run diverged" in v.reason for v in result.findings)
    assert result.summary["inputs"]["pe8"]["diverged"][0] == {"seed": 0, "epoch": 2}


# --------------------------------------------------------------------------- E13 claims

KINDS = ("first/off", "first/on", "all/off", "all/on")


def _radii(seed: int, median: float, change: float = 1.0, tail: float = 1.0) -> dict[str, np.ndarray]:
    """Radii of every kind at two checkpoints: log-normal around ``median``; at the end every radius is
    scaled by ``change`` and the upper half stretched ``tail`` times further from the median."""
    base = median * np.exp(0.2 * np.random.default_rng(seed).standard_normal(400))
    mid = np.median(base)
    end = change * np.where(base > mid, mid + tail * (base - mid), base)
    return dict.fromkeys(KINDS, np.stack([base, end]))


def _radius_table(medians: dict[str, float], **change) -> SeedTable:
    table = SeedTable()
    for label, median in medians.items():
        for seed in SEEDS:
            for quantity, value in radius_values(_radii(seed, median, **change)).items():
                table.add(label, quantity, seed, value)
    return table


GROWS = {"pe4": 0.05, "pe8": 0.08, "pe12": 0.13}


def test_radius_claims_hold_and_are_contradicted():
    labels = list(GROWS)
    found = [v.outcome for v in evaluate(radius_claims(labels, 100), _radius_table(GROWS, tail=1.5))]
    # median and IQR rise with L (every kind); barely changes; heavier tail; the medians stay put
    assert found == [H, H, H, H, H, H, C]
    shrinks = _radius_table(dict(zip(labels, reversed(GROWS.values()))), change=0.7)
    assert [v.outcome for v in evaluate(radius_claims(labels, 100), shrinks)] == [C, C, C, C, C, C, C]
    one_epoch = evaluate(radius_claims(labels, 1), _radius_table(GROWS))
    assert [v.outcome for v in one_epoch[-3:]] == [N, N, N]
    assert radius_claims(["pe8"], 100)[0].text.startswith("first-layer radii barely change")


def test_heavier_tail_is_a_change_of_shape_not_of_scale():
    """Every radius 5 % larger moves the 90th percentile but leaves the tail's weight as it was; a 90th
    percentile further from an unchanged median is a heavier tail."""

    def heavier(**change) -> Outcome:
        claims = radius_claims(list(GROWS), 100)
        tail = next(c for c in claims if c.text.startswith("after training the right tail"))
        return tail.evaluate(_radius_table(GROWS, **change)).outcome

    assert heavier(change=1.05) == C
    assert heavier(tail=1.6) == H
    assert heavier(tail=0.7) == C


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
    assert all(isinstance(f, Verdict) for f in result.findings)
    return json.loads((path / "summary.json").read_text())


def test_e13_end_to_end(tmp_path):
    summary = _tiny("E13", tmp_path, samples=6, deep_samples=3)
    assert len(summary["findings"]) == 7
    radius = summary["inputs"]["pe8"]["radius"]
    assert set(radius) == {"first/off", "first/on", "all/off", "all/on"}
    assert set(radius["first/off"]) == {"after 1 epoch", "after 2 epochs"}
    assert (tmp_path / "quick/E13" / "figures" / "inspheres.png").is_file()
    arrays = np.load(tmp_path / "quick/E13" / "arrays.npz")
    assert arrays["radius/first/off/pe8"].shape == (2, 6) and arrays["radius/all/on/pe2"].shape == (2, 3)
    assert np.all(arrays["radius/all/off/pe4"] <= arrays["radius/first/off/pe4"][:, :3] + 1e-9)


def test_e14_end_to_end(tmp_path):
    summary = _tiny("E14", tmp_path, section_size=24)
    sections = summary["inputs"]["pe2"]["sections"]
    assert set(sections) == {"low/first", "low/all", "high/first", "high/all"}
    assert all(s["exact_count"] >= s["grid_count"] for s in sections.values())
    assert len(summary["findings"]) == 4
    for name in ("cross_sections", "grid_vs_exact"):
        assert (tmp_path / "quick/E14" / "figures" / f"{name}.png").is_file()


def test_x4_end_to_end_through_the_cli(tmp_path):
    argv = ["run", "X4", "--epochs", "3", "--n", "256", "--width", "8", "--seeds", "1", "--no-progress",
            "--workers", "1", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "quick/X4" / "summary.json").read_text())
    assert set(summary["inputs"]) == {"raw01@chirp", "pe3@chirp", "raw01@burst", "pe3@burst"}
    entry = summary["inputs"]["pe3@burst"]
    assert entry["exact_count_last"] >= entry["grid_count_last"] and len(entry["rho_density_freq"]) == 3
    assert len(summary["findings"]) == 14
    arrays = np.load(tmp_path / "quick/X4" / "arrays.npz")
    assert arrays["density/raw01@chirp"].shape == (1, 3, arrays["window_centres"].size)
    for name in ("spatial_chirp", "spatial_burst", "grid_vs_exact"):
        assert (tmp_path / "quick/X4" / "figures" / f"{name}.png").is_file()
