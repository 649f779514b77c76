"""X5 (theory vs observed): the GD step from Θ₀, the prediction against the real network at small η
(the loss-scaling convention), the kernel view of a finished run against slow references, the
helpers, the claims judged on per-seed tables (each outcome reached, both ways), and the experiment
end to end."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from specbias.claims import Outcome, SeedTable, evaluate
from specbias.cli import main
from specbias.encodings import Raw
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS
from specbias.experiments.kernel import (
    _OPT_TITLE,
    ADAM_DELAY,
    EQUIVALENT_CAP,
    OPTIMISERS,
    X5_PAPER,
    X5_QUICK,
    InputView,
    KernelGroup,
    KernelStudy,
    Trajectory,
    drift_figure,
    first_index_above,
    first_step_above,
    halves,
    init_kernel_figure,
    initial_network,
    kernel_claims,
    kernel_values,
    lineup_figure,
    overlay_figure,
    relative_to_first,
    trajectory,
)
from specbias.metrics.ntk import (
    adam_equivalent_lr,
    empirical_ntk,
    func_jacobian,
    linearised_residuals,
    predict_frequency_residuals,
    stable_lr,
)
from specbias.metrics.patterns import activation_patterns, region_counts
from specbias.models import MLP
from specbias.runs import RunConfig, execute_run, model_at
from specbias.signals import ToneMixture
from specbias.training import TrainConfig, train

TINY = KernelStudy(
    signal=ToneMixture(n=64, freqs=(3, 7, 12, 20)),
    inputs=("raw11", "pe3"),
    width=16,
    depth=2,
    gd_steps=12,
    adam=TrainConfig(epochs=12, lr=1e-2),
    checkpoints=5,
    seeds=1,
)


def ref_ntk(model: MLP, x: torch.Tensor) -> torch.Tensor:
    """``J Jᵀ`` from the explicit ``torch.func`` Jacobian (single output)."""
    jac = func_jacobian(model, x)[:, 0]
    return jac @ jac.T


def as_float64(cfg: RunConfig) -> RunConfig:
    return dataclasses.replace(cfg, dtype="float64")


# --------------------------------------------------------------------------- profiles and runs


def test_registered_with_the_issue_settings():
    assert "X5" in EXPERIMENTS
    p = X5_PAPER
    assert p.inputs == ("raw01", "raw11", "pe3", "pe6", "rff10")
    assert (p.signal.n, p.width, p.depth, p.seeds) == (2048, 128, 4, 5)
    assert (p.adam.optimizer, p.adam.lr, p.adam.epochs, p.adam.batch_size) == ("adam", 1e-3, 500, None)
    assert (
        X5_QUICK.seeds == 3
        and X5_QUICK.inputs == ("raw01", "pe3", "pe6")
        and X5_QUICK.gd_steps <= 2000
        and X5_QUICK.signal.n <= 2048
    )
    keys = [c.key() for c in TINY.runs(2)]
    assert len(keys) == len(set(keys)) == 8


def test_gd_runs_take_a_tenth_of_the_stability_limit_of_their_own_init():
    """Reference: the run's real initial network (snapshot), its kernel from the explicit Jacobian and
    ``numpy.linalg.eigvalsh``; η = 0.1·N/λ_max to 3 significant digits."""
    state = torch.get_rng_state()
    cfgs = TINY.runs(1)
    assert torch.equal(torch.get_rng_state(), state)  # planning leaves the global RNG alone
    for cfg in cfgs[:2]:
        train_cfg = cfg.train
        assert (train_cfg.optimizer, train_cfg.momentum, train_cfg.batch_size) == ("sgd", 0.0, None)
        run = execute_run(dataclasses.replace(cfg, train=dataclasses.replace(train_cfg, epochs=1)))
        model0 = model_at(cfg, run, 0, name="init")
        rebuilt, x, _ = initial_network(cfg)
        for a, b in zip(model0.parameters(), rebuilt.parameters()):
            assert torch.equal(a, b)
        lam = np.linalg.eigvalsh(ref_ntk(model0, x).numpy())[-1]
        assert train_cfg.lr == pytest.approx(0.1 * 64 / lam, rel=5e-3)
    assert all(c.train == TINY.adam for c in cfgs[2:])


@pytest.mark.parametrize("out_dim", [1, 2])
def test_prediction_matches_the_real_network_to_second_order_in_eta(out_dim):
    """One real full-batch SGD step on ``mse_loss`` (mean over N·C) against the linearised prediction:
    the gap is O(η²) while the step is O(η), so their ratio falls like η; a prediction with the
    sum-over-C or ½-loss convention (a factor 2 in η) misses by the size of the step itself. (Steps
    small enough that no pre-activation crosses zero: a crossing ReLU adds an O(η) kink error.)"""
    x = Raw(-1.0, 1.0)(torch.linspace(0, 1, 33, dtype=torch.float64)[:-1, None])
    y = torch.cat([torch.sin(3 * (c + 1) * x) for c in range(out_dim)], dim=1)
    torch.manual_seed(out_dim)
    model0 = MLP(1, 16, 2, out_dim).double()
    theta = empirical_ntk(model0, x, mode="blocks")
    r0 = (model0(x) - y).detach()
    ratios, wrong = [], []
    for fraction in (2.5e-3, 6.25e-4):
        eta = stable_lr(theta, fraction)
        model = MLP(1, 16, 2, out_dim).double()
        model.load_state_dict(model0.state_dict())
        train(model, x, y, TrainConfig(epochs=1, lr=eta, optimizer="sgd"))
        real = (model(x) - y).detach().numpy()
        step = np.linalg.norm(linearised_residuals(theta, r0, eta, [1]).residuals[0] - r0.numpy())
        gap = np.linalg.norm(linearised_residuals(theta, r0, eta, [1]).residuals[0] - real)
        off = np.linalg.norm(linearised_residuals(theta, r0, 2 * eta, [1]).residuals[0] - real)
        ratios.append(gap / step)
        wrong.append(off / step)
    assert ratios[0] < 2e-3 and 0.2 < ratios[1] / ratios[0] < 0.3  # ≈ 1/4: linear in η
    assert min(wrong) > 0.9


# --------------------------------------------------------------------------- one run


def test_trajectory_of_a_gd_run_against_references():
    cfg = as_float64(TINY.config("pe3", 0, TINY.gd_train("pe3", 0)))
    run = execute_run(cfg)
    traj = trajectory(cfg, run)
    _, x, y = initial_network(cfg)
    model0 = model_at(cfg, run, 0, name="init")
    theta0 = ref_ntk(model0, x)
    steps = run.get("convergence", "epochs") + 1
    np.testing.assert_array_equal(traj.steps, steps)
    assert traj.eta == cfg.train.lr == traj.eta_equivalent
    lam0 = np.linalg.eigvalsh(theta0.numpy())[-1]
    assert traj.eta_fraction == pytest.approx(0.1, rel=5e-3)  # η has 3 significant digits
    # prediction: the linearised model's residuals, spectrum-free reference by repeated matrix steps
    f = model0(x).detach().numpy()
    resid, by_step = f - y, {}
    for s in range(1, int(steps[-1]) + 1):
        resid = resid - cfg.train.lr * 2 / 64 * theta0.numpy() @ resid
        by_step[s] = resid.copy()
    for j, s in enumerate(steps):
        ref = predict_frequency_residuals(theta0, f, y, cfg.train.lr, [int(s)], run.arrays["signal/freqs"])
        np.testing.assert_allclose(traj.predicted[j], ref["rel_error"][0], atol=1e-9)
        spec = (
            np.abs(np.fft.rfft(by_step[int(s)][:, 0]))[[3, 7, 12, 20]]
            / np.abs(np.fft.rfft(y[:, 0]))[[3, 7, 12, 20]]
        )
        np.testing.assert_allclose(traj.predicted[j], spec, atol=1e-9)
    np.testing.assert_allclose(traj.measured, run.get("convergence", "rel_error"))
    np.testing.assert_allclose(traj.departure, np.abs(traj.measured - traj.predicted).mean(axis=1))
    # kernel change at every snapshot, from the explicit Jacobian
    for j in range(steps.size):
        theta = ref_ntk(model_at(cfg, run, j), x).numpy()
        drift = np.linalg.norm(theta - theta0.numpy()) / np.linalg.norm(theta0.numpy())
        assert traj.drift[j] == pytest.approx(drift, rel=1e-9)
        assert traj.eig_growth[j] == pytest.approx(np.linalg.eigvalsh(theta)[-1] / lam0, rel=1e-9)
        assert 0 <= traj.subspace[j] <= 1
    patterns = activation_patterns(model_at(cfg, run, -1), x)
    assert traj.regions[-1] == region_counts(patterns)["all"]
    np.testing.assert_array_equal(traj.hamming, run.get("hamming", "local_mean"))


def test_trajectory_of_an_adam_run_uses_the_capped_equivalent_rate():
    for label in TINY.inputs:
        cfg = as_float64(TINY.config(label, 0, TINY.adam))
        run = execute_run(cfg)
        traj = trajectory(cfg, run)
        _, x, y = initial_network(cfg)
        model0 = model_at(cfg, run, 0, name="init")
        eq = adam_equivalent_lr(model0, x, torch.as_tensor(y), TINY.adam.lr)
        theta0 = empirical_ntk(model0, x)
        assert traj.eta_equivalent == pytest.approx(eq, rel=1e-12)
        assert traj.eta == pytest.approx(min(eq, stable_lr(theta0, EQUIVALENT_CAP)), rel=1e-9)
        assert traj.eta_fraction <= EQUIVALENT_CAP + 1e-9


# --------------------------------------------------------------------------- helpers


def test_helpers_against_brute_force():
    rng = np.random.default_rng(0)
    steps = np.array([1, 2, 5, 9, 20])
    for _ in range(50):
        values = rng.random(5)
        tol = rng.random()
        loop = next((int(s) for s, v in zip(steps, values) if v > tol), None)
        assert first_step_above(steps, values, tol) == loop
        assert first_index_above(values, tol) == next((i for i, v in enumerate(values) if v > tol), None)
    assert first_step_above(steps, np.array([np.nan, 0.2, 0.9, 0.1, 0.0]), 0.5) == 5
    series = rng.random((3, 6)) + 0.1
    expected = [[abs(v / row[0] - 1) for v in row] for row in series]
    np.testing.assert_allclose(relative_to_first(series), expected)
    np.testing.assert_array_equal(relative_to_first(np.array([0.0, 2.0])), [0.0, 0.0])
    low, high = halves(np.arange(14.0))
    assert (low, high) == (3.0, 10.0)


H, C, INC, N = Outcome.HOLDS, Outcome.CONTRADICTED, Outcome.INCONCLUSIVE, Outcome.NOT_MEASURABLE
STEPS = np.array([1, 3, 10, 30, 100, 300, 600])
THREE = KernelStudy(inputs=("raw01", "pe6", "rff10"), seeds=3)


def _traj(
    gap: float,
    depart_at: int | None,
    pattern_at: int,
    seed: int,
    faster: bool = True,
    last: int = 600,
    kernel: float = 1.0,
) -> Trajectory:
    """A run whose prediction gap ``D`` is ``gap`` from checkpoint ``depart_at`` on (below the departure
    tolerance before; never when None), whose patterns change by 0.5 and kernel drifts by ``kernel``/2 from
    checkpoint ``pattern_at`` on, and whose measured error is ``D`` below the prediction on the high tones
    and ``D`` above on the low tones (``faster``; the other way round when False). ``seed`` jitters every
    value by a percent."""
    steps = np.unique(np.minimum(STEPS, last))
    j, jitter = steps.size, 1 + 0.01 * seed
    d = np.full(j, 0.01 * jitter)
    if depart_at is not None:
        d[depart_at:] = gap * jitter
    change = np.where(np.arange(j) >= pattern_at, 0.5 * jitter, 0.0)
    predicted = np.full((j, 4), 0.9)
    sign = np.array([1.0, 1.0, -1.0, -1.0]) * (1 if faster else -1)
    return Trajectory(
        steps=steps,
        measured=predicted + sign * d[:, None],
        predicted=predicted,
        eta=0.1,
        eta_fraction=0.1,
        eta_equivalent=0.1,
        drift=kernel * change + 0.01,
        subspace=change,
        eig_growth=1 + change,
        regions=100 * (1 + change),
        hamming=np.ones(j),
        eigvals0=np.linspace(2, 1, 8),
        modes0=np.zeros((8, 4)),
        alignment0=np.linspace(0, 1, 8),
    )


def _table(runs: dict[KernelGroup, object], seeds=(0, 1, 2)) -> SeedTable:
    return kernel_values({k: {s: make(s) for s in seeds} for k, make in runs.items()})


def _paper(opt: str = "gd") -> dict[KernelGroup, object]:
    """The paper's picture: raw input's prediction holds while its patterns change; the encoded inputs
    depart after their kernel drifted, and fit the high tones faster than predicted; Adam departs first."""
    last, at = (600, 3) if opt == "gd" else (500, 2)
    return {
        KernelGroup(opt, "raw01"): lambda s: _traj(0.3, None, 1, s, faster=False, last=last, kernel=4),
        KernelGroup(opt, "pe6"): lambda s: _traj(0.3, at, at - 1, s, last=last),
        KernelGroup(opt, "rff10"): lambda s: _traj(0.3, at, 1, s, last=last),
    }


def _found(table: SeedTable, params: KernelStudy = THREE) -> dict[str, Outcome]:
    return {v.claim.split(" (")[0].split(":")[0]: v.outcome for v in evaluate(kernel_claims(params), table)}


def test_claims_hold_on_the_papers_picture():
    found = _found(_table({**_paper("gd"), **_paper("adam")}))
    assert len(found) == 9 and set(found.values()) == {H}, found


def test_claims_are_contradicted_by_the_opposite_picture():
    """Every input departs (raw01 first, with no kernel drift or pattern change by then), the encoded
    inputs end above the prediction, raw01 ends below it, and Adam departs later than GD."""
    gd = {
        KernelGroup("gd", "raw01"): lambda s: _traj(0.3, 0, 5, s, faster=False),
        KernelGroup("gd", "pe6"): lambda s: _traj(0.3, 4, 5, s, faster=False),
        KernelGroup("gd", "rff10"): lambda s: _traj(0.3, 4, 5, s, faster=False),
    }
    adam = {KernelGroup("adam", k.input): lambda s: _traj(0.3, 5, 5, s, last=500) for k in gd}
    found = _found(_table({**gd, **adam}))
    assert found.pop("Θ₀ does not capture the real GD dynamics") == H  # every input departs
    assert set(found.values()) == {C}, found


def test_claims_without_a_departure_or_with_too_few_seeds():
    """No prediction departs: the claims about what happened by the departure are not measurable (never
    contradicted), 'most inputs depart' is contradicted, equal hold times do not separate the inputs;
    two seeds form no interval."""
    never = {
        KernelGroup(opt, lb): lambda s: _traj(0.3, None, 1, s) for opt in OPTIMISERS for lb in THREE.inputs
    }
    found = _found(_table(never))
    assert found["Θ₀ does not capture the real GD dynamics"] == C
    for claim in ("where the GD prediction departs, the NTK has drifted by more than 10% by then",
                  "where the GD prediction departs, the activation patterns"):  # fmt: skip
        assert found[claim] == N
    assert found["the kernel prediction holds longer for raw01 than for pe6"] == N
    verdicts = evaluate(kernel_claims(THREE), _table(never))
    assert "departs for no input" in verdicts[1].reason
    two = _found(_table({**_paper("gd"), **_paper("adam")}, seeds=(0, 1)))
    assert set(two.values()) == {INC}, two


def test_adam_delay_uses_the_shorter_budget():
    """GD departing at step 300 of 600 and Adam never within its 500 steps: Adam holds to 500, 67 %
    longer; neither departing: no delay."""
    gd, adam = _traj(0.3, 5, 1, 0), _traj(0.3, None, 1, 0, last=500)
    table = kernel_values({KernelGroup("gd", "pe6"): {0: gd}, KernelGroup("adam", "pe6"): {0: adam}})
    assert table.get(KernelGroup("adam", "pe6"), ADAM_DELAY) == {0: pytest.approx(200 / 300)}
    never = kernel_values(
        {KernelGroup("gd", "pe6"): {0: _traj(0.3, None, 1, 0)}, KernelGroup("adam", "pe6"): {0: adam}}
    )
    assert never.get(KernelGroup("adam", "pe6"), ADAM_DELAY) == {0: 0.0}


def _fake_trajectory(steps: np.ndarray, n: int = 32, tones: int = 4) -> Trajectory:
    rng = np.random.default_rng(0)
    j = steps.size
    return Trajectory(
        steps=steps,
        measured=rng.random((j, tones)),
        predicted=rng.random((j, tones)),
        eta=0.1,
        eta_fraction=0.1,
        eta_equivalent=0.1,
        drift=rng.random(j) + 0.01,
        subspace=rng.random(j),
        eig_growth=rng.random(j) + 1.0,
        regions=rng.integers(1, 50, j).astype(float),
        hamming=rng.random(j) + 1.0,
        eigvals0=np.sort(rng.random(n))[::-1] + 1e-3,
        modes0=rng.normal(size=(n, 4)),
        alignment0=np.linspace(0, 1, n),
    )


def _overlaps(boxes) -> bool:
    return any(a.overlaps(b) for q, a in enumerate(boxes) for b in boxes[q + 1 :])


@pytest.mark.parametrize("last", [8, 4000])
def test_figures_keep_titles_inside_and_step_labels_apart(last):
    """One input (the narrowest figure) and a short or a long run: the wrapped title stays inside the
    figure and the step-axis tick labels do not overlap (a run of 8 steps used to draw 2×10⁰, 3×10⁰,
    4×10⁰ on top of each other and the Adam title ran off both edges)."""
    steps = np.unique(np.geomspace(1, last, 14).astype(int))
    adam, gd = KernelGroup("adam", "pe6"), KernelGroup("gd", "pe6")
    views = {adam: InputView([_fake_trajectory(steps)]), gd: InputView([_fake_trajectory(steps)])}
    entries = {adam: {"departure_step": int(steps[2])}, gd: {"departure_step": None}}
    one = {adam: views[adam]}
    figs = [
        overlay_figure(one, entries, np.array([3, 7, 12, 20]), _OPT_TITLE["adam"]),
        lineup_figure(one, entries, _OPT_TITLE["adam"]),
        drift_figure(views),
        init_kernel_figure({gd: views[gd]}, np.linspace(0, 1, 32)),
    ]
    for fig in figs:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        title = fig.get_suptitle() and fig._suptitle.get_window_extent(renderer)
        assert title.x0 >= 0 and title.x1 <= fig.bbox.width, fig.get_suptitle()
        for ax in fig.axes:
            if ax.get_xscale() != "log" or ax.get_xlabel() != "gradient step":
                continue
            labels = [t for t in ax.get_xticklabels(which="both") if t.get_visible() and t.get_text()]
            lo, hi = ax.get_xlim()
            shown = [t.get_window_extent(renderer) for t in labels if lo <= t.get_position()[0] <= hi]
            assert len(shown) >= 2 and not _overlaps(shown), [t.get_text() for t in labels]
        plt.close(fig)


# --------------------------------------------------------------------------- parameters and CLI


def test_overrides_and_bad_values():
    p = TINY.override(epochs=7, lr=0.02, n=128, inputs=["pe6"], width=None)
    assert (p.gd_steps, p.adam.epochs, p.adam.lr, p.signal.n, p.inputs, p.width) == (
        7,
        7,
        0.02,
        128,
        ("pe6",),
        16,
    )
    for bad in (
        {"gd_fraction": 1.0},
        {"gd_fraction": 0.0},
        {"inputs": ("raw01", "raw01")},
        {"inputs": ("wavelet",)},
        {"gd_steps": 0},
        {"adam": TrainConfig(optimizer="sgd")},
        {"adam": TrainConfig(batch_size=16)},
    ):
        with pytest.raises(ConfigError):
            dataclasses.replace(TINY, **bad)


def test_x5_end_to_end(tmp_path):
    args = ["run", "X5", "--inputs", "raw01,pe6", "--epochs", "8", "--width", "8", "--n", "256"]
    assert main([*args, "--seeds", "1", "--workers", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "quick/X5/summary.json").read_text())
    assert set(summary["kernel"]) == {"gd", "adam"}
    for opt in ("gd", "adam"):
        assert list(summary["kernel"][opt]) == ["raw01", "pe6"]
        for entry in summary["kernel"][opt].values():
            assert entry["steps"] == 8 and entry["seeds"] == 1
            assert {"departure_step", "drift_step", "pattern_step", "ntk_drift_last"} <= set(entry)
    assert summary["kernel"]["gd"]["pe6"]["eta_fraction_of_limit"] == pytest.approx(0.1, rel=1e-2)
    assert summary["tolerances"] == {"departure": 0.05, "material": 0.1, "top_k": 10}
    assert len(summary["findings"]) == 9
    for finding in summary["findings"]:
        assert finding["verdict"] in {o.value for o in Outcome} and finding["holds"] == (
            finding["verdict"] == "holds"
        )
        assert finding["verdict"] == "not measurable" or finding["detail"]
    names = {p.name for p in (tmp_path / "quick/X5/figures").glob("*.png")}
    assert names == {
        "gd_prediction_vs_measured.png",
        "adam_prediction_vs_measured.png",
        "gd_departure_lineup.png",
        "adam_departure_lineup.png",
        "ntk_drift.png",
        "kernel_at_init.png",
    }
    arrays = np.load(tmp_path / "quick/X5/arrays.npz")
    # the saved Θ₀ view: full spectrum, alignment ending at the whole target, top modes as signals
    eigvals, align = arrays["init_eigvals/gd/pe6"][0], arrays["init_alignment/gd/pe6"][0]
    assert eigvals.shape == align.shape == (256,) and (np.diff(eigvals) <= 0).all()
    assert align[-1] == pytest.approx(1.0, rel=1e-9) and (np.diff(align) >= -1e-12).all()
    assert arrays["init_modes/gd/pe6"].shape == (1, 256, 4)
    entry = summary["kernel"]["gd"]["pe6"]
    assert entry["init_target_alignment_top10"] == pytest.approx(align[9])
    assert (
        arrays["measured/gd/pe6"].shape
        == arrays["predicted/gd/pe6"].shape
        == (1, arrays["steps/gd/pe6"].size, 14)
    )
    assert not math.isnan(float(arrays["drift/adam/raw01"][0, -1]))


def test_a_kernel_too_large_to_plan_is_refused_before_any_kernel_is_formed():
    import dataclasses

    from specbias.errors import ConfigError
    from specbias.experiments.kernel import MAX_KERNEL_POINTS, KernelStudy

    study = KernelStudy()
    with pytest.raises(ConfigError, match="too large for X5"):
        study.override(n=MAX_KERNEL_POINTS + 1)
    assert dataclasses.replace(study.signal, n=MAX_KERNEL_POINTS).n == MAX_KERNEL_POINTS
