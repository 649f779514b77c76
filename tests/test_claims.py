"""Claims: each primitive reaches each of the four outcomes on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from specbias.claims import (
    AllOf,
    Compare,
    Flat,
    Level,
    Outcome,
    RankCorrelation,
    SeedTable,
    Trend,
    evaluate,
    for_each,
    judge,
    rank_corr,
    relative_change,
    t_interval,
)
from specbias.errors import ConfigError
from specbias.thresholds import THRESHOLDS, threshold

H, C, INC, N = Outcome.HOLDS, Outcome.CONTRADICTED, Outcome.INCONCLUSIVE, Outcome.NOT_MEASURABLE


def _table(q: str, groups: dict) -> SeedTable:
    table = SeedTable()
    for g, values in groups.items():
        table.put(g, q, dict(enumerate(values)))
    return table


def _sweep(per_point: list[list[float]]) -> SeedTable:
    """Groups ``n0, n1, …`` along a sweep; ``per_point[k]`` are the seeds' values at point k."""
    return _table("q", {f"n{k}": v for k, v in enumerate(per_point)})


def _trend(table: SeedTable, k: int, rises: bool = True) -> Outcome:
    over = [f"n{i}" for i in range(k)]
    return Trend(text="t", reads="q", over=over, xs=list(range(k)), rises=rises).evaluate(table).outcome


# ---------------------------------------------------------------- the statistics


def test_t_interval_is_students_by_hand():
    lo, hi = t_interval(np.array([1.0, 2.0, 3.0]), 0.95)
    half = 4.3026527297 * 1 / np.sqrt(3)  # t_{0.975, 2} · s/√n with s = 1
    assert (lo, hi) == pytest.approx((2 - half, 2 + half), abs=1e-9)
    assert t_interval(np.array([0.5, 0.5, 0.5]), 0.95) == (0.5, 0.5)


def test_judge_reaches_every_outcome_against_its_threshold():
    thr = threshold("material")
    assert judge([0.2, 0.21, 0.19], thr).outcome is H
    assert judge([0.0, 0.01, -0.01], thr).outcome is C
    assert judge([0.0, 0.1, 0.05], thr).outcome is INC  # interval straddles 0.05
    assert judge([0.2, 0.3], thr).outcome is INC  # two seeds: no interval
    assert judge([0.2, 0.3], thr).interval is None
    assert judge([np.nan], thr).outcome is N
    partly = judge([0.2, 0.21, 0.19, np.inf], thr)
    assert partly.outcome is H and partly.n == 3 and "1 seed(s) left out" in partly.reason
    assert judge([0.0, 0.01, 0.02], thr, above=False).outcome is H  # below the threshold
    assert judge([0.2, 0.21, 0.19], thr, above=False).outcome is C


def test_rank_corr_matches_scipy_with_ties_and_is_nan_for_a_constant_series():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 4, 8).astype(float), rng.normal(size=8)
        if np.ptp(x):
            assert rank_corr(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert np.isnan(rank_corr([1, 2, 3], [5, 5, 5]))


def test_relative_change_is_the_fitted_change_over_the_mean_magnitude():
    assert relative_change(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / 2)
    assert relative_change(np.array([0.0, 0.0])) == 0.0
    assert relative_change(np.array([4.0, 2.0])) == pytest.approx(-2 / 3)


# ---------------------------------------------------------------- the primitives


def test_compare_outcomes():
    def outcome(a, b, relation="<"):
        return Compare(text="c", reads="q", a="a", b="b", relation=relation).evaluate(
            _table("q", {"a": a, "b": b})
        )

    assert outcome([1.0, 1.1, 0.9], [9.0, 9.1, 8.9]).outcome is H
    assert outcome([1.0, 1.1, 0.9], [9.0, 9.1, 8.9], ">").outcome is C  # a clear reversal
    assert outcome([1.0, 1.5, 0.5], [1.0, 1.1, 0.9]).outcome is INC  # inside the seed spread
    assert outcome([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).outcome is N  # identical everywhere
    v = outcome([1.0, 1.1, 0.9], [9.0, 9.1, 8.9])
    assert v.effect == pytest.approx(8 / 9) and v.n == 3 and v.threshold.name == "material"
    assert "a 1 ± " in v.detail and "b 9 ± " in v.detail


def test_compare_pairs_seeds_and_falls_back_to_welch_for_disjoint_seeds():
    table = SeedTable()
    table.put("a", "q", {0: 1.0, 1: 2.0, 2: 3.0})
    table.put("b", "q", {0: 1.5, 1: 2.5, 2: 3.5})  # a seed-to-seed spread shared by both groups
    paired = Compare(text="c", reads="q", a="a", b="b", relation="<").evaluate(table)
    assert paired.outcome is H and paired.interval == pytest.approx((0.2, 0.2))  # a constant paired gap
    table.put("b", "q", {10: 1.5, 11: 2.5, 12: 3.5})  # other seeds: the spread no longer cancels
    welch = Compare(text="c", reads="q", a="a", b="b", relation="<").evaluate(table)
    assert (
        welch.outcome is INC
        and welch.effect == pytest.approx(0.2)
        and welch.interval[0] < 0 < welch.interval[1]
    )


def test_compare_reads_a_second_quantity_for_first_vs_last():
    table = SeedTable()
    table.put("pe", "first", {0: 1.0, 1: 1.1, 2: 1.0})
    table.put("pe", "last", {0: 2.0, 1: 2.1, 2: 2.2})
    v = Compare(text="grows", reads="last", reads_b="first", a="pe", b="pe", relation=">").evaluate(table)
    assert v.outcome is H and "pe last" in v.detail and "pe first" in v.detail


def test_compare_refuses_an_unknown_relation():
    with pytest.raises(ConfigError, match="relation"):
        Compare(text="c", reads="q", a="a", b="b", relation="<=")


def test_trend_outcomes_from_the_issue():
    # an all-zeros sweep: nothing converged anywhere
    assert _trend(_sweep([[0, 0, 0]] * 4), 4) is N
    # +0.3 % trend with a 5 % seed spread (each seed's own trend is 0.3 % ± 5 %)
    spread = np.array([-0.06, 0.05, 0.0, 0.04, -0.05])
    noisy = [(1 + (0.003 + spread) * k / 3).tolist() for k in range(4)]
    assert _trend(_sweep(noisy), 4) is INC
    # the same +0.3 % with tight seeds: no material trend, the claim of a trend is contradicted
    tight = [(1 + (0.003 + spread / 100) * k / 3).tolist() for k in range(4)]
    assert _trend(_sweep(tight), 4) is C
    # a clear reversal with tight seeds
    falling = [[1.0 - 0.2 * k + 0.001 * s for s in range(4)] for k in range(4)]
    assert _trend(_sweep(falling), 4) is C
    assert _trend(_sweep(falling), 4, rises=False) is H
    # two seeds only
    assert _trend(_sweep([[1, 1.1], [2, 2.1]]), 2) is INC


def test_trend_uses_only_the_seeds_every_point_has():
    table = _sweep([[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    table.put("n2", "q", {0: 3.0, 1: 3.0})  # seed 2 diverged at the last point
    v = Trend(text="t", reads="q", over=["n0", "n1", "n2"], xs=[1, 2, 3], rises=True).evaluate(table)
    assert v.n == 2 and v.outcome is INC


def test_flat_outcomes():
    def outcome(points):
        return Flat(text="f", reads="q", over=[f"n{k}" for k in range(len(points))]).evaluate(_sweep(points))

    assert outcome([[1.0, 1.01, 0.99], [1.02, 1.0, 1.0], [1.0, 1.0, 1.01]]).outcome is H
    assert outcome([[1.0, 1.0, 1.01], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]).outcome is C
    assert outcome([[1.0, 1.0, 1.0], [1.0, 1.6, 1.1], [1.0, 1.0, 1.0]]).outcome is INC
    assert outcome([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]).outcome is N
    assert outcome([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]).threshold is None


def test_level_outcomes():
    def outcome(values, above=True):
        claim = Level(text="l", reads="q", group="g", threshold="concentrated", above=above)
        return claim.evaluate(_table("q", {"g": values})).outcome

    assert outcome([0.9, 0.95, 0.99]) is H
    assert outcome([0.1, 0.12, 0.09]) is C
    assert outcome([0.1, 0.9, 0.5]) is INC
    assert outcome([0.1, 0.12, 0.09], above=False) is H
    assert Level(text="l", reads="q", group="g", threshold="concentrated").evaluate(SeedTable()).outcome is N


def test_rank_correlation_outcomes():
    table = SeedTable()
    for k in range(4):  # x rises with k; y rises (seed 0..2) with k, z falls, w is unrelated noise
        table.put(f"g{k}", "x", {s: k + 0.01 * s for s in range(3)})
        table.put(f"g{k}", "y", {s: k * 2.0 for s in range(3)})
        table.put(f"g{k}", "z", {s: -k * 1.0 for s in range(3)})
        table.put(f"g{k}", "w", {s: [3, 1, 4, 1][(k + s) % 4] * 1.0 for s in range(3)})
        table.put(f"g{k}", "c", {s: 1.0 for s in range(3)})
    over = [f"g{k}" for k in range(4)]

    def outcome(against, negative=False):
        return RankCorrelation(text="r", reads="x", against=against, over=over, negative=negative).evaluate(
            table
        )

    assert outcome("y").outcome is H
    assert outcome("z").outcome is C
    assert outcome("z", negative=True).outcome is H
    assert outcome("w").outcome is INC
    assert outcome("c").outcome is N


def test_all_of_takes_the_worst_part_and_for_each_expands_groups():
    table = _table("q", {"a": [1.0, 1.0, 1.1], "b": [5.0, 5.1, 5.0], "z": [0.0, 0.0, 0.0]})
    good = Compare(text="a<b", reads="q", a="a", b="b", relation="<")
    bad = Compare(text="a>b", reads="q", a="a", b="b", relation=">")
    missing = Compare(text="a<x", reads="q", a="a", b="x", relation="<")
    assert AllOf(text="all", parts=[good, good]).evaluate(table).outcome is H
    assert AllOf(text="all", parts=[good, missing]).evaluate(table).outcome is N
    both = AllOf(text="all", parts=[good, bad, missing]).evaluate(table)
    assert both.outcome is C and "a>b: contradicted" in both.reason
    claims = for_each(["a", "b", "z"], lambda g: None if g == "z" else Level(text=g, reads="q", group=g))
    assert [c.text for c in claims] == ["a", "b"]


def test_marked_groups_and_unless_are_not_measurable_with_their_reason():
    table = _table("q", {"a": [1.0, 1.0, 1.1], "b": [5.0, 5.1, 5.0]})
    claim = Compare(text="c", reads="q", a="a", b="b", relation="<")
    table.mark("b", "aliases on this grid (4 features above Nyquist) but not at 512²")
    v = claim.evaluate(table)
    assert v.outcome is N and "aliases" in v.reason and v.effect is None
    v = Compare(text="c", reads="q", a="a", b="a", relation="<", unless="nothing converged").evaluate(table)
    assert v.outcome is N and v.reason == "nothing converged"


def test_verdict_as_dict_keeps_the_old_boolean_and_is_json_ready():
    import json

    table = _table("q", {"a": [1.0, 1.0, 1.1], "b": [5.0, 5.1, 5.0]})
    (v,) = evaluate([Compare(text="c", reads="q", a="a", b="b", relation="<"), None], table)
    d = v.as_dict()
    assert d["verdict"] == "holds" and d["holds"] is True
    assert set(d) >= {"claim", "verdict", "holds", "effect", "interval", "n", "threshold", "reason", "detail"}
    assert d["threshold"] == THRESHOLDS["material"].value and len(d["interval"]) == 2
    json.dumps(d)


def test_seed_table_of_runs_and_update():
    class Run:
        def __init__(self, seed, v):
            self.meta, self.v = {"seed": seed}, v

    table = SeedTable.of({"g": [Run(0, 1.0), Run(3, 2.0)]}, {"q": lambda r: r.v})
    assert table.get("g", "q") == {0: 1.0, 3: 2.0}
    other = SeedTable()
    other.put("h", "q", {0: 5.0})
    other.mark("h", "diverged")
    table.update(other)
    assert table.groups == ["g", "h"] and table.why_not("h") == "diverged"


def test_every_threshold_has_a_reason_and_unknown_names_are_refused():
    assert all(t.reason and np.isfinite(t.value) for t in THRESHOLDS.values())
    with pytest.raises(ConfigError, match="unknown threshold"):
        threshold("nope")
