"""The shared analysis pipeline, tested directly: grouping, divergence, per-seed tables, summaries,
progress over runs and the one-thread context."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from specbias.claims import Compare, Outcome
from specbias.experiments import analysis
from specbias.experiments.analysis import (
    SEED_MEASURES,
    Part,
    by_group,
    input_summary,
    make_analysis,
    one_thread,
    progress,
    seed_table,
    start,
)
from specbias.runs import RunData


def _run(label: str, seed: int, hamming: float, diverged: int | None = None):
    arrays = {
        "train/loss": np.array([2.0, 1.0 + seed]),
        "hamming/epochs": np.array([0, 9]),
        "hamming/local_mean": np.array([0.0, hamming]),
        "hamming/global_mean": np.array([0.0, 2 * hamming]),
    }
    meta = {"seed": seed, "diverged_at": diverged, "n_params": 10, "in_dim": 1, "aliased_features": 0,
            "n_hidden": 4}  # fmt: skip
    return SimpleNamespace(input=label, seed=seed), RunData(arrays, meta)


def test_by_group_keeps_first_seen_order_and_sorts_seeds():
    runs = [_run("pe6", 2, 1.0), _run("raw01", 1, 1.0), _run("pe6", 0, 1.0)]
    groups = by_group(runs)
    assert list(groups) == ["pe6", "raw01"]
    assert [d.meta["seed"] for d in groups["pe6"]] == [0, 2]
    typed = by_group(runs, key=lambda cfg: (cfg.input, cfg.seed % 2))
    assert set(typed) == {("pe6", 0), ("raw01", 1)}


def test_seed_table_measures_each_seed_and_only_what_the_runs_carry():
    groups = by_group([_run("raw01", s, 1.0 + s) for s in range(3)])
    table = seed_table(groups)
    assert table.get("raw01", "hamming_local") == {0: 1.0, 1: 2.0, 2: 3.0}
    assert table.get("raw01", "hamming_local_ratio") == {0: 0.25, 1: 0.5, 2: 0.75}
    assert table.get("raw01", "final_loss") == {0: 1.0, 1: 2.0, 2: 3.0}
    assert table.get("raw01", "regions_last") == {}  # no region probe
    assert "regions_last" in SEED_MEASURES


def test_input_summary_is_the_mean_and_std_of_the_per_seed_table():
    groups = by_group([_run("raw01", s, 1.0 + s) for s in range(3)])
    summary = input_summary(groups["raw01"], seed_table(groups), "raw01")
    assert summary["hamming_local"] == pytest.approx(2.0)
    assert summary["hamming_local_std"] == pytest.approx(np.std([1, 2, 3]))
    assert summary["seeds"] == 3 and "regions_last" not in summary


def _analysis(runs, claims):
    def part(exp, groups, summary):
        out = Part(claims=list(claims))
        out.table.put("pe6", "extra", {0: 1.0})
        return out

    return make_analysis("T", ("p",), {"p": part}, order=lambda params: ["raw01", "pe6", "rff10"])(None, runs)


def test_make_analysis_drops_and_records_diverged_runs_and_judges_the_parts_claims():
    runs = [_run("raw01", s, 1.0 + 0.01 * s) for s in range(3)]
    runs += [_run("pe6", s, 5.0 + 0.01 * s, diverged=7 if s == 2 else None) for s in range(3)]
    runs += [_run("rff10", s, 9.0, diverged=3) for s in range(3)]
    claims = [
        Compare(text="raw < pe", reads="hamming_local", a="raw01", b="pe6", relation="<"),
        Compare(text="raw < rff", reads="hamming_local", a="raw01", b="rff10", relation="<"),
    ]
    result = _analysis(runs, claims)
    inputs = result.summary["inputs"]
    assert inputs["pe6"]["seeds"] == 2 and inputs["pe6"]["diverged"] == [{"seed": 2, "epoch": 7}]
    assert inputs["rff10"]["seeds"] == 0 and len(inputs["rff10"]["diverged"]) == 3
    pe, rff = result.findings
    assert pe.outcome is Outcome.INCONCLUSIVE and pe.n == 2  # a diverged seed leaves two: no interval
    assert rff.outcome is Outcome.NOT_MEASURABLE and "every run diverged" in rff.reason
    assert result.table.get("pe6", "extra") == {0: 1.0}  # the part's own quantities join the table
    assert {r[1] for r in result.rows} == {"raw01", "pe6"}  # loss rows only for finished runs


def test_progress_yields_every_item_in_order_through_a_terminal_bar(monkeypatch):
    seen = {}

    def fake_tqdm(items, **kwargs):
        seen.update(kwargs)
        return iter(items)

    monkeypatch.setattr(analysis, "tqdm", fake_tqdm)
    assert list(progress(["a", "b", "c"], "E13 inspheres pe4")) == ["a", "b", "c"]
    # labelled, and hidden automatically when stderr is not a terminal (tqdm's disable=None)
    assert seen == {"desc": "E13 inspheres pe4", "leave": False, "disable": None}


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_start_groups_in_the_given_order_and_judges_nothing_itself():
    runs = [_run("pe6", s, 5.0) for s in range(2)] + [_run("raw01", s, 1.0, diverged=4) for s in range(2)]
    groups, result = start("T", runs, labels=["raw01", "pe6", "absent"])
    assert list(groups) == ["pe6"]  # raw01's runs all diverged
    assert list(result.summary["inputs"]) == ["pe6", "raw01"] and result.findings == []
    assert result.table.why_not("raw01") == "every run diverged (2 seeds)"
    result.judge([Compare(text="c", reads="hamming_local", a="raw01", b="pe6", relation="<")])
    assert result.findings[0].outcome is Outcome.NOT_MEASURABLE
