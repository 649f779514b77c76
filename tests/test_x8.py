"""X8: run planning at matched parameters, the per-seed quantities against direct computations, the
claims reaching their outcomes on synthetic tables, and the whole analysis on a tiny study."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from specbias.claims import Outcome, SeedTable, evaluate
from specbias.experiments import get_experiment
from specbias.experiments.families import (
    X8_PAPER,
    X8_QUICK,
    FamilyStudy,
    HashGridMLP,
    Target,
    Variant,
    analyse,
    entries,
    family_claims,
    high_band_auc,
    high_band_epochs,
    local_confusion,
)
from specbias.runs import (
    HammingSpec,
    KernelSpec,
    PairSpec,
    PatchPairSpec,
    RegionSpec,
    RunConfig,
    RunData,
    execute_run,
)
from specbias.signals import NaturalImage, ToneMixture
from specbias.training import TrainConfig

GRID = HashGridMLP(
    width=1, depth=2, levels=3, log2_table_size=5, features=2, base_resolution=2, finest_resolution=8
)
TINY = FamilyStudy(
    tones=Target(ToneMixture(n=64, freqs=(2, 4, 6, 8, 10, 12)), entries(2, "rff3x8", "pe3", GRID), epochs=10,
                 pairs=PairSpec(3, 6, 20), every=2),
    image=Target(NaturalImage("camera", size=8, channels=1), entries(2, "rff2x8", "pe2", GRID), epochs=10,
                 pairs=PatchPairSpec(patches=4, patch=1 / 4, global_pairs=20), every=2),
    budget=300,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_runs():
    configs = TINY.runs(1)  # one seed: the structure, not the verdicts (those are tested above)
    return [(cfg, execute_run(cfg)) for cfg in configs]


def test_runs_are_matched_in_parameters_and_use_each_papers_learning_rate():
    configs = X8_QUICK.runs(3)
    assert len(configs) == 2 * 8 * 3
    for cfg in configs:
        network = cfg.network()
        params = network.n_params(cfg.encoding().out_dim, 1)
        assert abs(params - X8_QUICK.budget) / X8_QUICK.budget < 0.02, (cfg.input, network)
        assert cfg.train.lr == network.LR
        has_patterns = any(isinstance(p, (RegionSpec, HammingSpec)) for p in cfg.probes)
        assert has_patterns == network.piecewise_linear
        kernel = next(p for p in cfg.probes if isinstance(p, KernelSpec))
        assert kernel.top == 64
    assert {X8_QUICK.variant(c) for c in configs} == set(X8_QUICK.variants)
    assert [row["params"] for row in X8_PAPER.table()][:1] == [49921]  # MLP-4×128, the paper's network


def test_the_relu_raw_runs_share_the_cache_with_a_plain_mlp_run():
    cfg = next(c for c in X8_QUICK.runs(1) if X8_QUICK.variant(c) == Variant("ReLU raw", 1))
    plain = RunConfig(cfg.signal, cfg.input, cfg.width, cfg.depth, cfg.train, cfg.probes, cfg.seed)
    assert cfg.family is None and cfg.key() == plain.key()


def test_override_changes_both_targets_epochs():
    changed = X8_QUICK.override(epochs=40)
    assert changed.tones.epochs == changed.image.epochs == 40 and changed.tones.early == 4
    assert X8_QUICK.override(epochs=None) is X8_QUICK


def fake_run(epochs, rel, conf_epochs, local):
    arrays = {
        "convergence/epochs": np.asarray(epochs),
        "convergence/rel_error": np.asarray(rel, dtype=float),
        "confusion/epochs": np.asarray(conf_epochs),
        "confusion/local_cos": np.asarray(local, dtype=float),
    }
    return RunData(arrays, {"seed": 0})


def test_high_band_speed_and_confusion_against_direct_numbers():
    # 6 tones: the top third is the last two columns
    rel = [[1, 1, 1, 1, 0.9, 0.8], [1, 1, 1, 1, 0.3, 0.05], [0, 0, 0, 0, 0.05, 0.01]]
    d = fake_run([0, 4, 9], rel, [0, 5], [[0.5, -1.0, np.nan], [0.1, 0.2, 0.3]])
    assert high_band_auc(d) == pytest.approx(np.mean([0.9, 0.8, 0.3, 0.05, 0.05, 0.01]))
    assert high_band_epochs(d) == 10  # the slower high tone reaches 0.1 at label 9: 10 epochs trained
    never = fake_run([0, 4], [[1] * 6, [1, 1, 1, 1, 0.05, 0.5]], [0], [[0.0]])
    assert np.isnan(high_band_epochs(never))
    assert local_confusion(d, "local", 0) == pytest.approx(0.75)
    assert local_confusion(d, "local", 5) == pytest.approx(0.2)


def put(table, variants, quantity, per_variant):
    for v, values in zip(variants, per_variant):
        table.put(v, quantity, dict(enumerate(values)))


def synthetic(conf, speed, align, noise=0.01):
    target = X8_QUICK.tones
    variants = [Variant(e.name, 1) for e in target.entries]
    table = SeedTable()
    rng = np.random.default_rng(0)
    for quantity, base in (("conf_local_early", conf), ("conf_local_init", conf), ("hf_auc", speed),
                           ("ntk_align_high", align)):  # fmt: skip
        put(table, variants, quantity, [b + noise * rng.standard_normal(3) for b in base])
    return {v.claim: v for v in evaluate(family_claims(target), table)}


def outcomes(verdicts, start):
    return [v.outcome for text, v in verdicts.items() if text.startswith(start)]


def test_claims_hold_when_confusion_and_alignment_order_the_speed():
    ranks = 7 - np.arange(8.0)  # ReLU raw (entry 0) the most confused and the slowest
    verdicts = synthetic(conf=ranks, speed=ranks, align=-ranks)
    assert set(outcome for v in verdicts.values() for outcome in [v.outcome]) == {Outcome.HOLDS}
    assert len(verdicts) == 4 + 3  # (a) early and at init, (c) two, (b) for PE, RFF and the hash grid


def test_claims_are_contradicted_when_the_ordering_is_reversed():
    ranks = np.arange(8.0)
    verdicts = synthetic(conf=ranks, speed=-ranks, align=ranks)
    assert outcomes(verdicts, "1D: across families, lower local") == [Outcome.CONTRADICTED] * 2
    assert outcomes(verdicts, "1D: Θ₀") == [Outcome.CONTRADICTED]
    # ReLU raw is entry 0 (rank 0: least confused, slowest): every encoded entry is more confused
    assert outcomes(verdicts, "1D: ReLU PE against") == [Outcome.CONTRADICTED]


def test_claims_are_not_measurable_for_a_constant_measure_or_a_diverged_family():
    ranks = np.arange(8.0)
    verdicts = synthetic(conf=np.zeros(8), speed=ranks, align=ranks, noise=0.0)
    assert outcomes(verdicts, "1D: across families, lower local") == [Outcome.NOT_MEASURABLE] * 2
    table = SeedTable()
    target = X8_QUICK.tones
    variants = [Variant(e.name, 1) for e in target.entries]
    for quantity in ("conf_local_early", "conf_local_init", "hf_auc", "ntk_align_high"):
        put(table, variants, quantity, [np.arange(3.0) + i for i in range(8)])
    table.mark(Variant("SIREN", 1), "every run diverged (3 seeds)")
    verdicts = evaluate(family_claims(target), table)
    assert all(v.outcome is Outcome.NOT_MEASURABLE for v in verdicts if "across families" in v.claim)


def test_the_tiny_study_analyses_end_to_end(tiny_runs):
    result = analyse(TINY, tiny_runs)
    assert len(result.findings) == 2 * 7
    assert {f.outcome for f in result.findings} <= set(Outcome)
    for name in ("convergence", "confusion", "ntk", "ordering"):
        assert f"{name}_1d" in result.figures and f"{name}_2d" in result.figures
    assert len(result.summary["networks"]) == 16
    assert "SIREN (2D)" in result.summary["inputs"]
    for v in TINY.variants:
        values = result.table.get(v, "hf_auc")
        assert len(values) == 1 and all(np.isfinite(x) and x >= 0 for x in values.values())
        assert 0 <= np.mean(list(result.table.get(v, "ntk_align_high").values())) <= 1
    assert result.table.get(Variant("ReLU raw", 1), "regions_last")
    assert not result.table.get(Variant("SIREN", 1), "regions_last")
    assert result.arrays["high_band/SIREN (1D)"].shape == (1, 6)
    assert all(f.outcome is Outcome.INCONCLUSIVE for f in result.findings if f.n)  # one seed: no interval


def test_x8_is_registered_with_both_profiles():
    exp = get_experiment("x8")
    assert exp.params("quick") is X8_QUICK and exp.params("paper") is X8_PAPER
    assert exp.default_seeds == 3 and X8_PAPER.seeds == 5
    assert dataclasses.replace(X8_QUICK, seeds=4).seeds == 4
    assert TrainConfig(epochs=X8_PAPER.tones.epochs).epochs == 2000
