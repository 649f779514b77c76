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
    order = runner.longest_first(configs, "cpu")  # the order the runner trains them in
    assert [store.has(c) for c in order] == [True, False, False, False]
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]
    count.clear()
    armed.clear()
    run_all(configs, store, workers=1, progress=False)
    assert len(count) == 3
    assert all(store.has(c) for c in configs)


def test_longest_runs_train_first_and_the_order_is_a_permutation():
    from specbias.cost import run_cost

    configs = tiny_configs()
    order = runner.longest_first(configs, "cpu")
    assert sorted(c.key() for c in order) == sorted(c.key() for c in configs)
    seconds = [run_cost(c, "cpu").seconds for c in order]
    assert seconds == sorted(seconds, reverse=True)


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
    assert not (out / "quick/E3").exists()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/arrays.npz")}
    assert len(after) == 3
    assert all(after[k] == v for k, v in finished.items()), "finished runs were not recomputed"
    assert (out / "quick/E3/summary.json").is_file()
    assert not list(out.rglob(".*.tmp-*")), "staging leftovers of the killed process remain"


# --------------------------------------------------------------------------- Dask: scheduler, lost workers


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_scheduler_is_a_config_error_at_once():
    pytest.importorskip("distributed")
    import time

    from specbias.errors import ConfigError

    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"cannot reach the Dask scheduler at {address}"):
        runner.check_scheduler(address, timeout=5)
    assert time.perf_counter() - start < 5  # refused: no waiting out the timeout


def test_silent_scheduler_is_a_config_error_after_the_timeout():
    """A peer that accepts the connection but never answers (not Dask, a stuck proxy): the
    handshake that ``distributed.Client`` would wait on forever ends after the timeout."""
    pytest.importorskip("distributed")
    import socket
    import time

    from specbias.errors import ConfigError

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(ConfigError, match="no answer within 1 s"):
            runner.check_scheduler(address, timeout=1)
        assert 0.9 < time.perf_counter() - start < 5


@pytest.mark.parametrize("address", ["foo://x:1", "tcp://127.0.0.1:notaport"])
def test_malformed_scheduler_address_is_a_config_error(address):
    pytest.importorskip("distributed")
    from specbias.errors import ConfigError

    with pytest.raises(ConfigError, match="Dask"):
        runner.check_scheduler(address, timeout=1)


def test_dask_worker_killed_mid_sweep_loses_only_its_runs(tmp_path, monkeypatch):
    """SIGKILL one of two workers while it computes: Dask (told to give up at once) loses the run(s)
    on it, every other run finishes and is saved, and the rerun computes only the lost ones."""
    pytest.importorskip("distributed")
    import os
    import signal

    import dask
    from distributed import Client, LocalCluster

    configs = tiny_configs(seeds=2)  # 4 runs
    store = RunStore(tmp_path)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        pids = client.run(os.getpid)
        save, killed = store.save, []

        def save_then_kill(cfg, data):
            save(cfg, data)
            if not killed:  # after the first run: kill the worker with the most in flight
                victim, running = max(client.processing().items(), key=lambda kv: len(kv[1]))
                killed.append(len(running))
                for nanny in cluster.workers.values():  # no restart: the test needs no new worker
                    if nanny.worker_address == victim:
                        nanny.close_gracefully()
                os.kill(pids[victim], signal.SIGKILL)

        monkeypatch.setattr(store, "save", save_then_kill)
        with pytest.raises(runner.RunsLost) as lost:
            run_all(
                configs,
                store,
                workers=2,
                progress=False,
                executor="dask",
                scheduler=cluster.scheduler_address,
            )
    assert 1 <= len(lost.value.lost) <= killed[0]
    assert "run the same command again" in str(lost.value)
    assert [store.has(c) for c in configs] == [c not in lost.value.lost for c in configs]
    calls = []
    real = runner.execute_run
    monkeypatch.setattr(runner, "execute_run", lambda cfg, *a, **k: calls.append(cfg) or real(cfg, *a, **k))
    run_all(configs, RunStore(tmp_path), workers=1, progress=False)
    assert sorted(c.key() for c in calls) == sorted(c.key() for c in lost.value.lost)
