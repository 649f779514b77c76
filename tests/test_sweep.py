"""The shared sweep analysis of X6, X6b and X7: typed keys, per-seed numbers, and the claims over a
sweep reaching each of the four outcomes; the shared figures stay readable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from specbias.claims import Outcome, SeedTable
from specbias.experiments.density import X6_QUICK
from specbias.experiments.density2d import X6B_QUICK
from specbias.experiments.sweep import (
    Sweep,
    SweepKey,
    SweepLine,
    common_units,
    error_at,
    frequency_map,
    metric_lines,
    neighbour_claims,
    put_range,
    spread_claim,
    steps_per_epoch,
    sweep_trend,
    time_to_converge,
    unlearned,
    unresolved,
)
from specbias.runs import RunData

NS = (256, 512, 1024, 2048)
RAW = SweepLine("raw01")
PE = SweepLine("pe6")


def _sweep(line: SweepLine, sizes=NS) -> Sweep:
    keys = tuple(line.at(n) for n in sizes)
    return Sweep(line, keys, steps=100 * keys[0].steps_per_epoch, epochs=100)


def _table(quantity: str, line: SweepLine, per_seed: list[list[float]], table=None) -> SeedTable:
    """``per_seed[s][i]``: seed ``s``'s value at the i-th N."""
    table = table or SeedTable()
    for i, key in enumerate(_sweep(line).keys):
        table.put(key, quantity, {s: row[i] for s, row in enumerate(per_seed)})
    return table


# --------------------------------------------------------------------------- keys


def test_keys_name_runs_as_the_output_files_do():
    configs = X6_QUICK.runs(1)
    keys = {SweepKey.of(c) for c in configs}
    assert SweepKey("raw01", 1024) in keys and SweepKey("pe6", 2048, 128) in keys
    assert str(SweepKey("raw01", 1024)) == "raw01@N1024"
    assert str(SweepKey("raw01", 1024, 128)) == "raw01@N1024/b128"
    assert [str(k) for k in X6_QUICK.points()][:2] == ["raw01@N256", "raw01@N512"]
    two_d = SweepKey.of(X6B_QUICK.runs(1)[1])
    assert two_d == SweepKey("raw01", 64, 256, dim=2) and str(two_d) == "raw01@S64"
    assert two_d.n_points == 4096 and two_d.steps_per_epoch == 16
    assert SweepKey("pe6", 512, 128).line == SweepLine("pe6", 128)
    assert SweepLine("pe6", 128).name == "PE L=6, batch 128" and str(RAW) == "raw [0,1), full batch"
    assert SweepLine("pe5", 256, dim=2).name == "PE L=5"
    # one hashable, comparable key: equal fields are the same group
    assert len({SweepKey("raw01", 256), dataclasses.replace(SweepKey("raw01", 256))}) == 1


def test_steps_per_epoch_and_error_at():
    assert steps_per_epoch(4096, 128) == 32 and steps_per_epoch(300, 128) == 3
    assert steps_per_epoch(4096, None) == 1 and steps_per_epoch(128, 128) == 1
    epochs, errors = np.array([0, 9]), np.array([0.7, 0.3])
    # label 0 is after 1 epoch (4 steps), label 9 after 10 epochs (40 steps)
    assert error_at(epochs, errors, 4, 4) == pytest.approx(0.7)
    assert error_at(epochs, errors, 4, 22) == pytest.approx(0.5)
    assert error_at(epochs, errors, 4, 5.5, per="epoch") == pytest.approx(0.5)


def test_time_to_converge_uses_the_units_every_seed_reached_at_every_point():
    a, b = SweepKey("pe6", 256, 128), SweepKey("pe6", 512, 128)
    hits = {a: [[0, 4, None], [2, 4, 9]], b: [[1, 3, 5], [1, None, 7]]}
    assert common_units(hits.values()) == [0]
    assert common_units([[[None]], [[3]]]) == [] and common_units([]) == []
    table = SeedTable()
    datas = [RunData({}, {"seed": s}) for s in (0, 1)]
    for key in (a, b):
        time_to_converge(table, key, datas, hits[key], [0])
    assert table.get(a, "epochs_to_converge") == {0: 1.0, 1: 3.0}  # epochs trained: label + 1
    assert table.get(b, "steps_to_converge") == {0: 2.0 * 4, 1: 2.0 * 4}  # 4 steps per epoch at 512
    time_to_converge(table, SweepKey("pe6", 1024), datas, [[1], [1]], [])
    assert not table.get(SweepKey("pe6", 1024), "epochs_to_converge")


def test_put_range_is_each_seeds_range_over_the_sweep():
    table = _table("rel_err_high", RAW, [[0.5, 0.7, 0.6, 0.9], [0.4, 0.4, 0.4, 0.4]])
    put_range(table, _sweep(RAW), "rel_err_high")
    assert table.get(RAW, "rel_err_high_range") == pytest.approx({0: 0.4, 1: 0.0})


# --------------------------------------------------------------------------- claims


def _trend(table, quantity="q", rises=True, unless=None):
    return sweep_trend(table, "q over N", quantity, _sweep(RAW), rises, unless).evaluate(table)


def test_a_clear_trend_holds_and_a_clear_reversal_is_contradicted():
    rising = [[1.0, 1.2, 1.5, 2.0], [1.1, 1.3, 1.4, 2.1], [0.9, 1.2, 1.6, 1.9]]
    assert _trend(_table("q", RAW, rising)).outcome is Outcome.HOLDS
    falling = [row[::-1] for row in rising]
    verdict = _trend(_table("q", RAW, falling))
    assert verdict.outcome is Outcome.CONTRADICTED and verdict.effect < 0 and verdict.n == 3


def test_a_tiny_trend_within_the_seed_spread_is_inconclusive():
    rng = np.random.default_rng(1)
    base = np.array([1.0, 1.001, 1.002, 1.003])  # +0.3 % over the sweep
    noisy = [(base * (1 + 0.05 * rng.standard_normal(4))).tolist() for _ in range(3)]  # 5 % seed noise
    verdict = _trend(_table("q", RAW, noisy))
    assert verdict.outcome is Outcome.INCONCLUSIVE and "straddles" in verdict.reason
    assert _trend(_table("q", RAW, noisy[:2])).outcome is Outcome.INCONCLUSIVE  # 2 seeds: no interval


def test_counts_that_never_move_over_the_sweep_are_not_measurable():
    # nothing converges at any N (0, 0, 0, 0): the trend cannot be tested, not contradicted
    zeros = _table("n_converged", RAW, [[0, 0, 0, 0]] * 3)
    verdict = _trend(zeros, "n_converged", rises=False)
    assert verdict.outcome is Outcome.NOT_MEASURABLE and "0, 0, 0" in verdict.reason
    # raw [-1,1): one seed converges the lowest tone at every N, the others none (0.33 at every N)
    stuck = _table("n_converged", RAW, [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert unresolved(stuck, "n_converged", _sweep(RAW).keys) is not None
    assert _trend(stuck, "n_converged", rises=False).outcome is Outcome.NOT_MEASURABLE
    # one seed that moves is enough to judge
    moving = _table("n_converged", RAW, [[2, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    assert unresolved(moving, "n_converged", _sweep(RAW).keys) is None
    assert _trend(moving, "n_converged", rises=False).outcome is not Outcome.NOT_MEASURABLE


def test_an_error_saturated_near_one_at_every_point_is_not_measurable():
    saturated = _table("rel_err_high", RAW, [[0.990, 0.992, 0.993, 0.994]] * 3)
    why = unlearned(saturated, "rel_err_high", _sweep(RAW).keys, "the high tones")
    assert why is not None and "not learned" in why and "0.99" in why
    verdict = _trend(saturated, "rel_err_high", unless=why)
    assert verdict.outcome is Outcome.NOT_MEASURABLE and verdict.reason == why
    learned = _table("rel_err_high", RAW, [[0.5, 0.9, 0.95, 0.99]] * 3)
    assert unlearned(learned, "rel_err_high", _sweep(RAW).keys, "the high tones") is None


def test_local_confusion_at_its_ceiling_everywhere_is_not_measurable():
    parallel = _table("cos_local_abs", RAW, [[0.983, 0.99, 0.985, 0.986]] * 3)
    verdict = neighbour_claims(parallel, _sweep(RAW), "in a window")[0].evaluate(parallel)
    assert verdict.outcome is Outcome.NOT_MEASURABLE and "(anti)parallel" in verdict.reason
    spread = _table("cos_local_abs", RAW, [[0.5, 0.7, 0.8, 0.95]] * 3)
    assert neighbour_claims(spread, _sweep(RAW), "in a window")[0].evaluate(spread).outcome is Outcome.HOLDS


def _spread(raw_rows, pe_rows):
    table = _table("e", PE, pe_rows, _table("e", RAW, raw_rows))
    for line in (RAW, PE):
        put_range(table, _sweep(line), "e")
    claim = spread_claim(table, [_sweep(RAW)], [_sweep(PE)], "e", "e", "e", "the range of e")
    assert claim.text == "N moves e less for PE L=6 than for raw [0,1) (the range of e; raw's range > 0.05)"
    return claim.evaluate(table)


def test_spread_claim_both_ways_and_unmeasurable():
    moving = [[0.3, 0.5, 0.6, 0.8], [0.35, 0.5, 0.65, 0.8], [0.3, 0.45, 0.6, 0.85]]
    steady = [[0.02, 0.021, 0.02, 0.022], [0.03, 0.03, 0.031, 0.03], [0.02, 0.02, 0.02, 0.021]]
    assert _spread(moving, steady).outcome is Outcome.HOLDS
    assert _spread(steady, moving).outcome is Outcome.CONTRADICTED
    saturated = [[0.95, 0.96, 0.97, 0.99]] * 3
    verdict = _spread(saturated, steady)
    assert verdict.outcome is Outcome.NOT_MEASURABLE and "not learned" in verdict.reason
    assert spread_claim(SeedTable(), [_sweep(RAW)], [], "e", "e", "e", "e") is None  # no PE input


# --------------------------------------------------------------------------- figures


def test_figure_titles_and_legends_stay_clear():
    freqs = list(range(5, 71, 5))
    text = "First epoch with rel. error < 0.1 per target frequency (grey: never)"
    fig = frequency_map(
        {"raw [0,1) (full batch)": (["256", "512"], np.ones((14, 2)))}, freqs, "N", text, "epoch"
    )
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, fig.get_suptitle()
    metrics = {"n_converged": "converged", "regions": "regions"}
    names = [
        f"{a} ({b})"
        for a in ("raw [0,1)", "raw [-1,1)", "PE L=3", "PE L=6")
        for b in ("full batch", "batch 128")
    ]
    series = {k: ([256, 512, 1024], {m: (np.arange(3.0) + 1, np.zeros(3)) for m in metrics}) for k in names}
    fig = metric_lines(series, metrics, "N", "Coordinate density: convergence and regions over N")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    assert [ax.get_ylabel() for ax in fig.axes] == list(metrics.values())
    assert fig.axes[1].get_yscale() == "log"  # region counts span decades
    legend = fig.legends[0].get_window_extent(renderer)
    assert len(fig.legends[0].get_texts()) == len(names)
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
