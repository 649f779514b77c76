"""Execute many runs: skip cached ones, run the rest serially, in a process pool, or on Dask.

Each run computes with one torch thread, in the main process or in a worker, so its numbers are
bit-identical whatever the number of workers (multi-threaded BLAS may sum in another order).
On 2 cores, two one-thread workers run a sweep ≈1.9× faster than one two-thread process for
small batches and as fast for full batches (measured in ``shared/research/ecosystem.md`` §3.b).
Finished runs are saved as they complete, so an interrupted sweep loses only the runs in flight.

``executor="dask"`` submits the same runs to a Dask distributed cluster (the optional ``dask``
extra): an existing scheduler (``scheduler="tcp://host:8786"``, e.g. one started by dask-jobqueue
on a Slurm cluster) or, without an address, a ``LocalCluster`` of ``workers`` one-thread
processes. Results travel back to this process, which alone writes the store. A scheduler that
does not answer within :data:`SCHEDULER_TIMEOUT` seconds is a :class:`ConfigError` naming its
address (one nobody listens at is refused at once); a worker lost mid-sweep (killed, out of
memory) costs only the runs it was computing: Dask retries them elsewhere, and those it gives up
on are reported by :class:`RunsLost` once every other run has finished and been saved.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

import torch
from tqdm.auto import tqdm

from specbias.cost import run_cost
from specbias.errors import ConfigError
from specbias.results import RunStore, remove_stale_staging
from specbias.runs import RunConfig, RunData, execute_run


def _init_worker() -> None:
    """One torch thread; Ctrl-C is the parent's to handle (it stops the workers itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _one_thread_run(cfg: RunConfig, device: str, progress: bool = False) -> RunData:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute_run(cfg, device, progress=progress)
    finally:
        torch.set_num_threads(previous)


class _QueueReport:
    """Picklable progress callback: puts ``(key, epochs_done, epochs, loss)`` on a queue."""

    def __init__(self, queue: Any, key: str) -> None:
        self.queue, self.key = queue, key

    def __call__(self, done: int, total: int, loss: float) -> None:
        self.queue.put((self.key, done, total, loss))


def _run_pool(
    todo: Sequence[RunConfig], store: RunStore, device: str, workers: int, bar: tqdm, progress: bool
) -> None:
    """A spawn-based process pool; with ``progress``, one bar per running job (epochs, loss, ETA)."""
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager() if progress else None
    queue = manager.Queue() if manager else None
    job_bars: dict[str, tqdm] = {}
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        futures = {
            pool.submit(
                execute_run, cfg, device, False, _QueueReport(queue, cfg.key()) if queue else None
            ): cfg
            for cfg in todo
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            if queue is not None:
                _drain(queue, futures, job_bars)
            for future in done:
                cfg = futures[future]
                store.save(cfg, future.result())
                if cfg.key() in job_bars:
                    job_bars.pop(cfg.key()).close()
                bar.update(1)
        pool.shutdown(wait=True)
    except BaseException:
        _stop(pool)
        raise
    finally:
        for job in job_bars.values():
            job.close()
        if manager is not None:
            manager.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Interrupted: drop queued runs and end the running ones now (finished ones are saved)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _drain(queue: Any, futures: dict, job_bars: dict[str, tqdm]) -> None:
    names = {cfg.key(): f"{cfg.input} seed {cfg.seed}" for cfg in futures.values()}
    while not queue.empty():
        key, done, total, loss = queue.get_nowait()
        if key not in job_bars:
            job_bars[key] = tqdm(total=total, desc=names.get(key, key), unit="ep", leave=False)
        job = job_bars[key]
        job.update(done - job.n)
        job.set_postfix(loss=f"{loss:.4g}", refresh=False)


def check_executor(executor: str, scheduler: str | None) -> None:
    """ConfigError for an unknown executor, a scheduler without Dask, or Dask not installed."""
    if executor not in ("local", "dask"):
        raise ConfigError(f"unknown executor {executor!r}; allowed: local, dask")
    if scheduler and executor != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        raise ConfigError("--executor dask needs Dask: pip install 'specbias[dask]'")


SCHEDULER_TIMEOUT = 10.0
"""Seconds a Dask scheduler has to answer (connect and handshake) before the sweep gives up."""


class RunsLost(RuntimeError):
    """Runs that Dask gave up on because the workers computing them died (every other run of the
    sweep finished and is saved, so running the same command again computes only these)."""

    def __init__(self, lost: Sequence[RunConfig]) -> None:
        self.lost = list(lost)
        names = ", ".join(f"{c.input} seed {c.seed}" for c in self.lost[:5])
        more = f" and {len(self.lost) - 5} more" if len(self.lost) > 5 else ""
        super().__init__(
            f"{len(self.lost)} run(s) were lost with their Dask worker ({names}{more}); every other run "
            "finished and is saved: run the same command again to compute the lost ones"
        )


def _scheduler_identity(address: str, timeout: float) -> dict[str, Any]:
    """The scheduler's answer to Dask's ``identity`` call, or an exception after ``timeout`` s.

    ``distributed.Client`` waits forever on a peer that accepts the connection but never answers
    the handshake, so the call runs on its own event loop (in a thread, whatever loop the caller
    has) under ``asyncio.wait_for``."""
    from distributed.core import rpc

    async def ask() -> dict[str, Any]:
        remote = rpc(address)
        try:
            return await remote.identity()
        finally:
            await remote.close_rpc()

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(ask(), timeout)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """ConfigError unless a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    A TCP address nobody listens at is refused at once; a host that drops the connection, or a
    server that is not a Dask scheduler, after ``timeout`` seconds."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--scheduler {address!r} is not a Dask address: {exc}") from None
    try:
        if host is not None:  # the common failure first, without Dask's retries
            socket.create_connection((host, port), timeout=timeout).close()
        identity = _scheduler_identity(address, timeout)
    except Exception as exc:  # refused, unreachable, unresolvable, timed out, not Dask
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            why = f"no answer within {timeout:g} s"
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {why}") from None
    kind = identity.get("type", "?") if isinstance(identity, dict) else "?"
    if kind != "Scheduler":
        raise ConfigError(f"{address} is a Dask {kind}, not a scheduler; give the scheduler's address")


def _lost_with_worker(future: Any) -> bool:
    """Whether a finished Dask future failed because its workers died (not because the run did)."""
    from distributed import KilledWorker

    return future.status == "error" and isinstance(future.exception(), KilledWorker)


def _run_dask(
    todo: Sequence[RunConfig], store: RunStore, device: str, workers: int, scheduler: str | None, bar: tqdm
) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    else:
        check_scheduler(scheduler)
    client = Client(scheduler or cluster, timeout=SCHEDULER_TIMEOUT)
    lost = []
    try:
        futures = {client.submit(_one_thread_run, cfg, device, pure=False): cfg for cfg in todo}
        for future in as_completed(futures):
            if _lost_with_worker(future):
                lost.append(futures[future])
                continue
            store.save(futures[future], future.result())
            bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if lost:
        raise RunsLost(lost)


def default_workers(device: str) -> int:
    """One worker per core on CPU (at most 8); one process for a single GPU."""
    return 1 if device == "cuda" else max(1, min(8, os.cpu_count() or 1))


def longest_first(configs: Sequence[RunConfig], device: str) -> list[RunConfig]:
    """The runs by estimated training time, longest first: a long run started last would leave the
    other workers idle at the end of the sweep (each run is seeded on its own, so the order changes
    no result)."""
    return sorted(configs, key=lambda c: run_cost(c, device).seconds, reverse=True)


def run_all(
    configs: Sequence[RunConfig],
    store: RunStore,
    device: str = "cpu",
    workers: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    executor: str = "local",
    scheduler: str | None = None,
) -> list[RunData]:
    """Make sure every config has a finished run in ``store``; return them in order."""
    check_executor(executor, scheduler)
    if progress is None:
        progress = sys.stderr.isatty()
    if store.root.is_dir():
        remove_stale_staging(store.root)
    unique = list(dict.fromkeys(configs))
    todo = longest_first([c for c in unique if force or not store.has(c)], device)
    workers = default_workers(device) if workers is None else max(1, workers)
    workers = min(workers, len(todo)) if todo else 1
    bar = tqdm(total=len(todo), desc="runs", disable=not progress or not todo, unit="run")
    if executor == "dask" and todo:
        _run_dask(todo, store, device, workers, scheduler, bar)
    elif workers == 1:
        for cfg in todo:
            bar.set_postfix_str(f"{cfg.input} seed {cfg.seed}")
            store.save(cfg, _one_thread_run(cfg, device, progress=progress))
            bar.update(1)
    else:
        _run_pool(todo, store, device, workers, bar, progress)
    bar.close()
    runs = [store.load(c) for c in configs]
    _warn_aliasing(runs)
    return runs


def _warn_aliasing(runs: Sequence[RunData]) -> None:
    """One line per input whose encoding has features above the grid's Nyquist limit."""
    seen = set()
    for run in runs:
        meta = run.meta
        key = (meta["input"], tuple(meta.get("shape", ())))
        if meta.get("aliased_features") and key not in seen:
            seen.add(key)
            print(
                f"warning: {meta['input']}: {meta['aliased_features']} of {meta['in_dim']} encoding features "
                f"exceed the Nyquist limit of the {'x'.join(map(str, key[1]))} grid and alias",
                file=sys.stderr,
            )
