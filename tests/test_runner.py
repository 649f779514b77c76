"""The runner: cache hits, --force, interruption, and pool == serial bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from specbias import runner
from specbias.experiments.study1d import PAPER_1D
from specbias.results import RunStore
from specbias.runner import run_all


def tiny_configs(seeds: int = 2, inputs: tuple[str, ...] = ("raw01", "pe3")):
    params = PAPER_1D.override(epochs=25, n=256, width=16, inputs=inputs)
    return params.runs(seeds)


def test_second_call_trains_nothing_and_force_retrains(tmp_path, monkeypatch):
    configs = tiny_configs()
    store = RunStore(tmp_path)
    first = run_all(configs, store, workers=1, progress=False)
    calls = []
    real = runner.execute_run
    monkeypatch.setattr(runner, "execute_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_all(configs, store, workers=1, progress=False)
    assert calls == []
    for a, b in zip(first, again):
        assert a.arrays.keys() == b.arrays.keys()
    run_all(configs[:1], store, workers=1, force=True, progress=False)
    assert calls == [1]


class Killed(BaseException):
    """Stands in for SIGINT: a BaseException that ``except Exception`` does not swallow."""


def test_interrupted_sweep_keeps_finished_runs_and_completes(tmp_path, monkeypatch):
    configs = tiny_configs()
    store = RunStore(tmp_path)
    real = runner.execute_run
    count = []
    armed = [True]

    def flaky(cfg, *args, **kwargs):
        count.append(1)
        if len(count) == 2 and armed:
            raise Killed
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(runner, "execute_run", flaky)
    with pytest.raises(Killed):
        run_all(configs, store, workers=1, progress=False)
    assert [store.has(c) for c in configs] == [True, False, False, False]
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]
    count.clear()
    armed.clear()
    run_all(configs, store, workers=1, progress=False)
    assert len(count) == 3
    assert all(store.has(c) for c in configs)


def test_pool_and_serial_give_identical_arrays(tmp_path):
    configs = tiny_configs(seeds=1)
    serial = run_all(configs, RunStore(tmp_path / "a"), workers=1, progress=False)
    pooled = run_all(configs, RunStore(tmp_path / "b"), workers=2, progress=False)
    for s, p in zip(serial, pooled):
        assert s.arrays.keys() == p.arrays.keys()
        for key in s.arrays:
            np.testing.assert_array_equal(s.arrays[key], p.arrays[key], err_msg=key)


def test_dask_local_cluster_equals_local_executor_bit_for_bit(tmp_path):
    pytest.importorskip("distributed")
    configs = tiny_configs(seeds=1)
    local = run_all(configs, RunStore(tmp_path / "local"), workers=1, progress=False)
    dask = run_all(configs, RunStore(tmp_path / "dask"), workers=2, progress=False, executor="dask")
    for a, b in zip(local, dask):
        assert a.arrays.keys() == b.arrays.keys()
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)


@pytest.mark.parametrize(
    ("executor", "scheduler", "needle"),
    [("ray", None, "unknown executor 'ray'"), ("local", "tcp://x:1", "--scheduler needs --executor dask")],
)
def test_bad_executor_settings_are_config_errors(executor, scheduler, needle, tmp_path):
    from specbias.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        run_all(tiny_configs(1), RunStore(tmp_path), executor=executor, scheduler=scheduler)


def test_sigkill_mid_sweep_loses_no_finished_run(tmp_path):
    """A real process killed with SIGKILL after its first run: the rerun keeps that run untouched
    and computes only the rest; nothing half-written is ever read."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "specbias",
        "run",
        "E3",
        "--epochs",
        "300",
        "--n",
        "512",
        "--width",
        "32",
        "--seeds",
        "3",
        "--inputs",
        "raw01",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/arrays.npz")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/arrays.npz")}
    assert 1 <= len(finished) < 3
    assert not (out / "E3").exists()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/arrays.npz")}
    assert len(after) == 3
    assert all(after[k] == v for k, v in finished.items()), "finished runs were not recomputed"
    assert (out / "E3/summary.json").is_file()
    assert not list(out.rglob(".*.tmp-*")), "staging leftovers of the killed process remain"
