"""X6 (coordinate density) and X7 (dimension vs encoding): parameters, run sharing, the summary
contract end to end through the CLI, and findings that are computed and can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specbias.claims import Outcome, SeedTable, evaluate
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
    density_claims,
    lift_claims,
    lift_inputs,
    lift_kind,
    per_seed,
    put_lift_distances,
)
from specbias.experiments.sweep import SweepKey, SweepLine, put_range, time_to_converge
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


def _check_findings(summary: dict) -> None:
    """Every finding has a verdict, its reason, and ``holds`` exactly when it holds."""
    assert summary["findings"]
    for finding in summary["findings"]:
        assert finding["verdict"] in {o.value for o in Outcome} and finding["reason"]
        assert finding["holds"] is (finding["verdict"] == "holds")


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
    summary = json.loads((tmp_path / "quick/X6/summary.json").read_text())
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
    _check_findings(summary)
    assert {p.name for p in (tmp_path / "quick/X6/figures").glob("*.png")} >= {
        "density_metrics.png",
        "convergence_epochs.png",
        "convergence_steps.png",
    }


def test_x7_end_to_end(tmp_path):
    inputs = "raw01,lin2,curve2,pe0,rff10x2"
    args = ["run", "X7", "--inputs", inputs, "--n", "256", "--seeds", "2", "--out", str(tmp_path), *TINY_X]
    assert main(args) == 0
    summary = json.loads((tmp_path / "quick/X7/summary.json").read_text())
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
    _check_findings(summary)


# --------------------------------------------------------------------------- per-seed numbers


def test_per_seed_numbers_from_a_run():
    rel = np.array([[1.0, 1.0, 0.8, 0.6], [1.0, 0.05, 0.4, 0.2]])  # 2 checkpoints × 4 tones
    arrays = {
        "convergence/epochs": np.array([0, 9]),
        "convergence/rel_error": rel,
        "confusion/local_cos": np.array([[0.5, -1.0, np.nan]]),
        "hamming/local_mean": np.array([3.0, 2.0]),
        "regions/all": np.array([16.0, 8.0]),
    }
    key = SweepKey("raw01", 512, 128)  # 4 steps per epoch
    seeds = per_seed([RunData(arrays, {"seed": 0})], key, common_step=22)
    assert seeds["n_converged"].tolist() == [1.0]  # tone 2 at the last checkpoint
    assert seeds["rel_err_high"].tolist() == pytest.approx([0.3]) and seeds["rel_err_mean"][
        0
    ] == pytest.approx(0.4125)
    assert seeds["cos_local_abs"][0] == pytest.approx(0.75) and seeds["hamming_local"][0] == 2.0
    assert seeds["points_per_region"][0] == 64.0
    # upper half: 0.7 after 1 epoch (4 steps), 0.3 after 10 epochs (40 steps): 0.5 after 22 steps
    assert seeds["rel_err_high_at_common_step"][0] == pytest.approx(0.5)
    assert "rel_err_high_at_common_step" not in per_seed([RunData(arrays, {"seed": 0})], key)


def test_block_counts_epochs_and_steps_from_the_checkpoint_label():
    seeds = {m: np.array([0.5]) for m in ("n_converged", "rel_err_mean", "rel_err_high")}
    seeds["points_per_region"] = np.array([128.0])
    fields = ("cos_local_abs_mean", "cos_local_mean", "hamming_local", "hamming_local_ratio", "final_loss")
    summary = {
        "epochs_to_rel_err_0.1": {"5": 0.0, "10": None},  # label 0: after the first epoch
        "final_rel_err": {},
        "regions_last": 4.0,
        "seeds": 1,
        **dict.fromkeys(fields, 1.0),
    }
    out = block(summary, seeds, SweepKey("raw01", 512, 128))
    assert out["epochs_trained_to_rel_err_0.1"] == {"5": 1.0, "10": None}
    assert out["steps_to_rel_err_0.1"] == {"5": 4.0, "10": None}
    assert out["points_per_region"] == 128 and out["steps_per_epoch"] == 4 and out["window_samples"] == 12


# --------------------------------------------------------------------------- X6 claims

NS = X6_QUICK.sizes
SWEEPS = {s.line: s for s in X6_QUICK.sweeps()}
RAW, RAW11, PE = SweepLine("raw01"), SweepLine("raw11"), SweepLine("pe6")
RAW_B, PE_B = SweepLine("raw01", 128), SweepLine("pe6", 128)


def _put(table: SeedTable, line: SweepLine, quantity: str, rows: list[list[float]]) -> None:
    """``rows[s][i]``: seed ``s``'s value at the i-th N of the quick sweep."""
    for i, n in enumerate(NS):
        table.put(line.at(n), quantity, {s: row[i] for s, row in enumerate(rows)})


def _seeds(values: list[float], spread: float = 0.01) -> list[list[float]]:
    """Three seeds around ``values`` (±``spread``, relative), deterministic."""
    return [[v * (1 + spread * d) for v in values] for d in (-1, 0, 1)]


def _verdicts(table: SeedTable, lines: list[SweepLine]) -> dict[str, Outcome]:
    for line in lines:
        put_range(table, SWEEPS[line], "rel_err_high")
    return {v.claim: v.outcome for v in evaluate(density_claims([SWEEPS[k] for k in lines], table), table)}


def _full_batch(raw: list[float], pe_epochs: list[float]) -> SeedTable:
    table = SeedTable()
    _put(table, RAW, "n_converged", [[3, 2, 1, 0], [4, 2, 2, 1], [3, 3, 1, 0]])
    _put(table, RAW, "rel_err_high", _seeds(raw))
    _put(table, RAW, "cos_local_abs", _seeds([0.80, 0.85, 0.90, 0.95]))
    _put(table, RAW, "hamming_local", _seeds([4.0, 3.0, 2.0, 1.0]))
    _put(table, RAW, "points_per_region", _seeds([10.0, 20.0, 40.0, 80.0]))
    _put(table, PE, "n_converged", [[14, 14, 13, 14], [14, 14, 14, 14], [13, 14, 14, 14]])
    _put(table, PE, "epochs_to_converge", _seeds(pe_epochs))
    _put(table, PE, "rel_err_high", _seeds([0.02, 0.021, 0.02, 0.022]))
    return table


def test_x6_claims_hold_on_the_papers_numbers_and_are_contradicted_when_reversed():
    found = _verdicts(_full_batch([0.5, 0.6, 0.7, 0.8], [40.0, 41.0, 40.0, 42.0]), [RAW, PE])
    assert len(found) == 5 + 2 + 1 and set(found.values()) == {Outcome.HOLDS}, found
    table = _full_batch([0.8, 0.7, 0.6, 0.5], [5.0, 20.0, 40.0, 80.0])
    _put(table, RAW, "n_converged", [[0, 1, 2, 3], [0, 2, 2, 4], [1, 1, 3, 3]])
    for q in ("cos_local_abs", "hamming_local", "points_per_region"):
        rows = [
            [row[3 - i] for i in range(4)]
            for row in [[table.get(RAW.at(n), q)[s] for n in NS] for s in range(3)]
        ]
        _put(table, RAW, q, rows)
    found = _verdicts(table, [RAW, PE])
    raw = {k: v for k, v in found.items() if k.startswith("raw")}
    assert set(raw.values()) == {Outcome.CONTRADICTED}, raw
    assert found["PE L=6, full batch: the epochs to converge hardly depend on N"] is Outcome.CONTRADICTED


def test_x6_what_cannot_be_measured_is_not_contradicted():
    table = _full_batch([0.990, 0.992, 0.993, 0.993], [40.0, 41.0, 40.0, 42.0])  # +0.3 %, saturated
    _put(table, RAW, "n_converged", [[0, 0, 0, 0]] * 3)  # nothing converges at any N
    _put(
        table, RAW11, "n_converged", [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    )  # raw [-1,1): 0.33 everywhere
    for q in ("rel_err_high", "cos_local_abs", "hamming_local", "points_per_region"):
        _put(table, RAW11, q, [[table.get(RAW.at(n), q)[s] for n in NS] for s in range(3)])
    found = _verdicts(table, [RAW, RAW11, PE])
    for name in ("raw [0,1)", "raw [-1,1)"):
        assert found[
            f"{name}, full batch: fewer frequencies reach rel. error 0.1 within the budget as N grows"
        ] is (Outcome.NOT_MEASURABLE)
        assert found[
            f"{name}, full batch: the high tones (upper half) end further from the target as N grows"
        ] is (Outcome.NOT_MEASURABLE)
    spread = next(k for k in found if k.startswith("N moves the high tones"))
    assert found[spread] is Outcome.NOT_MEASURABLE  # raw learns none of the high tones at any N


def test_x6_a_tiny_change_within_the_seed_spread_is_inconclusive():
    table = _full_batch([0.5, 0.5005, 0.501, 0.5015], [40.0, 41.0, 40.0, 42.0])  # +0.3 %
    _put(table, RAW, "rel_err_high", _seeds([0.5, 0.5005, 0.501, 0.5015], spread=0.05))  # 5 % seed spread
    table.put(RAW.at(2048), "rel_err_high", {0: 0.52, 1: 0.45, 2: 0.55})
    verdict = next(
        v for v in evaluate(density_claims([SWEEPS[RAW]], table), table) if "high tones" in v.claim
    )
    assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.interval[0] < 0.05 < verdict.interval[1]


def test_x6_epoch_claims_use_epochs_trained_not_labels():
    # checkpoint labels 3, 4, 3, 3 are 4, 5, 4, 4 epochs trained: relative range 0.235 (weak), not 0.31
    table = SeedTable()
    datas = [RunData({}, {"seed": s}) for s in range(3)]
    for n, label in zip(NS, (3, 4, 3, 3)):
        time_to_converge(table, PE.at(n), datas, [[label, None]] * 3, [0])
        table.put(PE.at(n), "n_converged", {s: 1.0 for s in range(3)})
    verdict = next(v for v in evaluate(density_claims([SWEEPS[PE]], table), table) if "epochs" in v.claim)
    assert verdict.outcome is Outcome.HOLDS and verdict.effect == pytest.approx(1 / 4.25)


def test_x6_batch_claims_follow_the_numbers():
    def table(raw_epoch, raw_step, pe_epochs, pe_steps):
        t = SeedTable()
        _put(t, RAW_B, "rel_err_high", _seeds(raw_epoch))
        _put(t, RAW_B, "rel_err_high_at_common_step", _seeds(raw_step))
        _put(t, PE_B, "epochs_to_converge", _seeds(pe_epochs))
        _put(t, PE_B, "steps_to_converge", _seeds(pe_steps))
        return {v.claim: v.outcome for v in evaluate(density_claims([SWEEPS[RAW_B], SWEEPS[PE_B]], t), t)}

    good = table([0.9, 0.7, 0.6, 0.5], [0.5, 0.6, 0.7, 0.8], [40.0, 10.0, 5.0, 2.0], [82.0, 84.0, 88.0, 86.0])
    assert len(good) == 4 and set(good.values()) == {Outcome.HOLDS}, good
    bad = table(
        [0.5, 0.6, 0.7, 0.8], [0.8, 0.7, 0.6, 0.5], [2.0, 5.0, 10.0, 40.0], [6.0, 40.0, 300.0, 1312.0]
    )
    assert set(bad.values()) == {Outcome.CONTRADICTED}, bad
    # PE never converges a tone at every N: its claims cannot be measured
    t = SeedTable()
    _put(t, PE_B, "n_converged", [[0, 1, 0, 2]] * 3)
    found = evaluate(density_claims([SWEEPS[PE_B]], t), t)
    assert [v.outcome for v in found] == [Outcome.NOT_MEASURABLE] * 2
    assert found[0].reason == "no target frequency reached rel. error 0.1 at every N in every seed"


# --------------------------------------------------------------------------- X7 claims

LIFTS = ("raw01", "lin8", "curve8", "pe3", "rff10x8")


def _lifts(values: dict[str, tuple[float, float, float, float]]) -> dict[str, Outcome]:
    """``values[label] = (converged, mean rel. error, local Hamming, regions)``, three seeds around each."""
    table = SeedTable()
    for label, numbers in values.items():
        for q, v in zip(("n_converged", "rel_err_mean", "hamming_local", "regions"), numbers):
            table.put(label, q, {s: v + (0 if q == "n_converged" else 0.01 * v * (s - 1)) for s in range(3)})
    put_lift_distances(table, list(values))
    return {v.claim: v.outcome for v in evaluate(lift_claims(table, list(values)), table)}


def test_x7_claims_follow_the_numbers():
    good = {"raw01": (1, 0.9, 1.0, 100), "lin8": (1, 0.92, 1.1, 110), "curve8": (2, 0.8, 3.0, 300),
            "pe3": (14, 0.05, 40.0, 500), "rff10x8": (12, 0.1, 30.0, 500)}  # fmt: skip
    found = _lifts(good)
    assert len(found) == 4 + 2 + 1 and set(found.values()) == {Outcome.HOLDS}, found
    bad = _lifts({**good, "lin8": (14, 0.01, 60.0, 900)})
    same = {k: v for k, v in bad.items() if "linear lift changes nothing" in k}
    assert len(same) == 4 and set(same.values()) == {Outcome.CONTRADICTED}, bad
    # nothing converges for raw or the line at any d: the count cannot tell them apart
    never = _lifts({**good, "raw01": (0, 0.9, 1.0, 100), "lin8": (0, 0.92, 1.1, 110)})
    count = next(k for k in never if "converges as many frequencies" in k)
    assert never[count] is Outcome.NOT_MEASURABLE
