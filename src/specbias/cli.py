"""Command line: ``specbias list | run | reproduce | report``.

Every bad value ends the command with one line ``error: ...`` on stderr and exit code 2, before
anything is printed or written: the settings, then the plan (counts bounded before any run is
listed), then the memory each run needs against what the machine has and the estimated time
(over an hour needs ``--yes``). ``--dry-run`` stops after those and prints the plan. A sweep that
lost runs with a Dask worker ends with one ``error:`` line and exit code 1 after saving the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from specbias import __version__
from specbias.backend import DEVICES, resolve_device
from specbias.cost import (
    USABLE_FRACTION,
    Cost,
    WorkerFit,
    available_memory,
    describe_run,
    fit_workers,
    fmt_bytes,
    run_memory,
    sweep_cost,
    sweep_memory,
)
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, Experiment, get_experiment
from specbias.experiments.base import PROFILES
from specbias.experiments.params import OPTIONS
from specbias.pipeline import Planned, check_count, execute, plan
from specbias.report import build_report, save_invocation
from specbias.results import RunStore, ensure_writable_dir
from specbias.runner import SCHEDULER_TIMEOUT, RunsLost, check_executor, check_scheduler, default_workers

LONG_RUN_HOURS = 1.0
"""Estimated training time above which ``run`` and ``reproduce`` need ``--yes`` to start."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default="quick",
        choices=PROFILES,
        help="quick: sized for a 2-core CPU; paper: the reference scale (default: %(default)s)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds per input (default: the experiment's, 5 for the 1D study)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="output directory; finished runs are cached in OUT/runs (default: %(default)s)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=DEVICES,
        help="where to train (default: %(default)s); CUDA runs use deterministic algorithms where "
        "PyTorch has them and TF32 off",
    )
    p.add_argument(
        "--tf32",
        action="store_true",
        help="on CUDA, let float32 matmuls and convolutions use TF32 (faster, not repeatable against "
        "float32); recorded in every run's config and cache key",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel worker processes, one torch thread each (default: one per core on cpu, 1 on cuda)",
    )
    p.add_argument("--force", action="store_true", help="recompute runs even if they are cached")
    p.add_argument(
        "--executor",
        default="local",
        choices=("local", "dask"),
        help="local: a process pool here; dask: a Dask distributed cluster (default: %(default)s)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address, e.g. tcp://host:8786 (default: start a LocalCluster of --workers); "
        f"one that does not answer within {SCHEDULER_TIMEOUT:g} s is an error (refused: at once)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (default: shown on a terminal)"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help=f"start even when the estimated training time is over {LONG_RUN_HOURS:g} hour (any profile)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (runs cached and to train), the estimated time and peak memory per worker "
        "for --device and --workers, and exit without training or writing anything",
    )


def _data_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--data",
        metavar="FILE.npz",
        help="real-data experiments (E17-E19): an .npz with X (n, H, W[, C]) images and y (n,) integer "
        "labels, optionally X_test and y_test (default: scikit-learn's bundled 8x8 digits)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="specbias",
        description="See spectral bias in coordinate-based MLPs through their training dynamics.",
    )
    parser.add_argument("--version", action="version", version=f"specbias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser(
        "list",
        help="list the registered experiments, one line each",
        description="List the registered experiments, one line each.",
    )

    run = sub.add_parser(
        "run",
        help="run one experiment and write OUT/EXP/",
        description="Run one experiment: train its runs (or load them from the cache) "
        "and write OUT/EXP/{config.json,metrics.csv,arrays.npz,figures/,summary.json}.",
    )
    run.add_argument("experiment", help=f"experiment id: {', '.join(EXPERIMENTS)}")
    _common(run)
    over = run.add_argument_group("overrides (default: the profile's value)")
    for name, option in OPTIONS.items():
        over.add_argument(f"--{name}", type=option.parse, choices=option.choices, help=option.help)
    _data_option(over)

    rep = sub.add_parser(
        "reproduce",
        help="run every registered experiment (the main job)",
        description="Run every registered experiment (or --only some) at a profile into OUT/.",
    )
    rep.add_argument(
        "--only",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help="comma-separated experiment ids (default: all)",
    )
    _common(rep)
    _data_option(rep)

    rpt = sub.add_parser(
        "report",
        help="rebuild OUT/report.html from finished experiments, without re-running",
        description="Rebuild the self-contained HTML report from every result set under OUT: "
        "OUT/<profile>/<EXP>/ (and older flat OUT/<EXP>/), one scorecard column per profile, claims whose "
        "verdict changes with scale marked scale-sensitive, and each profile's OUT/<profile>/invocation.json "
        "in the environment table.",
    )
    rpt.add_argument(
        "out", type=Path, nargs="?", default=Path("results"), help="results directory (default: %(default)s)"
    )
    return parser


def _print_results(done: Sequence) -> None:
    for planned, result, path in done:
        print(f"{planned.experiment.id}: {planned.experiment.title} -> {path}")
        for f in result.findings:
            print(f"  [{f.outcome.value}] {f.claim}: {f.reason}")


@dataclass(frozen=True)
class _Budget:
    """What a sweep will do and cost, known before anything runs: the distinct runs (each with
    the experiment that names it), those still to train, the worker count that fits the memory,
    and the time on those workers."""

    runs: list[tuple[str, Any]]
    todo: list[tuple[str, Any]]
    timed: list[Any]  # the runs to train whose time is estimated (a dry run leaves out misfits)
    fit: WorkerFit
    cost: Cost
    memory_error: str = ""


def _distinct_runs(plans: Sequence[Planned]) -> list[tuple[str, Any]]:
    """Each distinct run once, with the first experiment that lists it."""
    seen: dict[Any, str] = {}
    for p in plans:
        for cfg in p.configs:
            seen.setdefault(cfg, p.experiment.id)
    return [(exp, cfg) for cfg, exp in seen.items()]


def _check_settings(args: argparse.Namespace) -> None:
    """The checks that need no plan: worker count, device, executor and scheduler. A dry run plans
    for a device or scheduler this machine need not reach, so it skips those two."""
    if args.workers is not None:
        check_count("workers", args.workers)
    if args.tf32 and args.device != "cuda":
        raise ConfigError(f"--tf32 applies to --device cuda, not --device {args.device}")
    check_executor(args.executor, args.scheduler)
    if not args.dry_run:
        resolve_device(args.device)
        if args.scheduler:
            check_scheduler(args.scheduler)


def _budget(plans: Sequence[Planned], args: argparse.Namespace) -> _Budget:
    """Cache status, memory fit and time of the plans (ConfigError when a run cannot fit, or when
    the time is over :data:`LONG_RUN_HOURS` without ``--yes``; a dry run reports both instead)."""
    store = RunStore(args.out)
    runs = _distinct_runs(plans)
    todo = [(e, c) for e, c in runs if args.force or not store.has(c)]
    requested = args.workers or default_workers(args.device)
    # a remote scheduler's workers run elsewhere: their memory is not this machine's
    available = None if args.scheduler else available_memory(args.device)
    overrides = {p.experiment.id: getattr(p.params, "OVERRIDES", ()) for p in plans}
    error, timed = "", [c for _, c in todo]
    try:
        fit = fit_workers(todo, args.device, requested, available, lambda exp: overrides.get(exp, ()))
    except ConfigError as exc:
        if not args.dry_run:
            raise
        error = str(exc)
        memory = sweep_memory(timed, args.device, requested)
        fit = WorkerFit(memory.workers, requested, memory, available)
        # the runs that cannot fit stay out of the time: a real-data run's FLOPs come from its model
        budget = USABLE_FRACTION * (available or 0.0)
        timed = [c for c in timed if run_memory(c, args.device).limiting <= budget]
    cost = sweep_cost(timed, args.device, fit.workers)
    if cost.hours > LONG_RUN_HOURS and not (args.yes or args.dry_run):
        raise ConfigError(
            f"the {len(todo)} runs to train are estimated at {cost.hours:.1f} h of training "
            f"({cost.flops:.3g} FLOP) on {fit.workers} {args.device} worker(s), over {LONG_RUN_HOURS:g} h; "
            "re-run with --yes to start (--dry-run shows the plan)"
        )
    return _Budget(runs, todo, timed, fit, cost, error)


def _duration(cost: Cost) -> str:
    """``about 3.5 min`` or ``about 2.1 h``."""
    return f"about {cost.hours:.1f} h" if cost.hours >= 1 else f"about {cost.seconds / 60:.1f} min"


def _time_text(cost: Cost, workers: int, device: str) -> str:
    return (
        f"{_duration(cost)} on {workers} {device} worker(s) ({cost.flops:.3g} FLOP, {cost.steps} "
        "optimiser steps; probes not counted)"
    )


def _memory_text(fit: WorkerFit, device: str) -> str:
    memory = fit.memory
    if memory.largest is None:
        return "nothing to train"
    per = memory.per_worker
    each = (
        f"{fmt_bytes(per.device)} GPU memory + {fmt_bytes(per.host)} host"
        if device == "cuda"
        else fmt_bytes(per.host)
    )
    text = f"{each} per worker (largest run: {describe_run(memory.largest)})"
    if memory.workers > 1:
        text += f", {fmt_bytes(memory.peak)} for {memory.workers} workers at once"
    if fit.available is not None:
        text += f"; {fmt_bytes(fit.available)} available"
    return text


def _estimate_line(budget: _Budget, args: argparse.Namespace) -> str:
    """The one line printed (on stderr) before a sweep starts."""
    return (
        f"estimated training: {_time_text(budget.cost, budget.fit.workers, args.device)}; "
        f"peak memory {_memory_text(budget.fit, args.device)}"
    )


def _print_dry_run(plans: Sequence[Planned], budget: _Budget, args: argparse.Namespace) -> None:
    """The plan, on stdout: experiments and their runs, cached or to train, then the time and
    peak memory for the chosen device and workers (and the time on the other device)."""
    todo, timed = {c for _, c in budget.todo}, set(budget.timed)
    print(
        f"plan: profile {args.profile}, {len(plans)} experiment(s), {len(budget.runs)} distinct run(s): "
        f"{len(budget.runs) - len(todo)} cached, {len(todo)} to train (cache: {Path(args.out) / 'runs'})"
    )
    for p in plans:
        distinct = list(dict.fromkeys(p.configs))
        mine = [c for c in distinct if c in todo]
        peak = max((run_memory(c, args.device).limiting for c in mine), default=0.0)
        when = _duration(sweep_cost([c for c in mine if c in timed], args.device, 1))
        print(
            f"  {p.experiment.id:<5} {len(distinct):>4} runs, {p.seeds} seed(s): "
            f"{len(distinct) - len(mine)} cached, {len(mine)} to train"
            + (f" ({when} on one worker, peak {fmt_bytes(peak)} per run)" if mine else "")
        )
    print(f"time: {_time_text(budget.cost, budget.fit.workers, args.device)}")
    other = "cuda" if args.device == "cpu" else "cpu"
    other_workers = default_workers(other) if args.workers is None or other == "cuda" else args.workers
    other_cost = sweep_cost(budget.timed, other, other_workers)
    print(f"      on {other} instead: {_time_text(other_cost, other_workers, other)}")
    print(f"peak memory: {_memory_text(budget.fit, args.device)}")
    if budget.fit.note:
        print(f"workers: {budget.fit.note}")
    if budget.memory_error:
        print(f"would stop: {budget.memory_error}")
        print(f"   (the {len(todo) - len(timed)} run(s) that cannot fit are left out of the times above)")
    if budget.cost.hours > LONG_RUN_HOURS and not args.yes:
        print(f"would stop: over {LONG_RUN_HOURS:g} h of estimated training; starting it needs --yes")
    print("dry run: nothing was trained or written")


def _execute(plans: list[Planned], args: argparse.Namespace, report: bool = False) -> int:
    budget = _budget(plans, args)
    if args.dry_run:
        _print_dry_run(plans, budget, args)
        return 0
    out = ensure_writable_dir(args.out)  # the last check: it creates the directory
    print(_estimate_line(budget, args), file=sys.stderr)
    if budget.fit.note:
        print(f"note: {budget.fit.note}", file=sys.stderr)
    workers = budget.fit.workers if budget.todo else args.workers
    progress = False if args.no_progress else None
    start = time.perf_counter()
    done = execute(
        plans,
        out,
        device=args.device,
        workers=workers,
        force=args.force,
        progress=progress,
        executor=args.executor,
        scheduler=args.scheduler,
    )
    _print_results(done)
    if report:
        extra = {
            "profile": args.profile,
            "device": args.device + (", TF32 on" if args.tf32 else ""),
            "workers": workers or default_workers(args.device),
            "executor": args.executor + (f" ({args.scheduler})" if args.scheduler else ""),
            "torch threads per run": 1,
            "seeds": ", ".join(f"{p.experiment.id} {p.seeds}" for p in plans),
            "wall time of the last reproduce": f"{time.perf_counter() - start:.0f} s",
        }
        save_invocation(out, extra)
        print(f"report: {build_report(out)}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        for exp in EXPERIMENTS.values():
            print(f"{exp.id:<5} {exp.title} -- {exp.claim}")
        return 0
    if args.command == "report":
        print(f"report: {build_report(args.out)}")
        return 0
    _check_settings(args)
    if args.command == "run":
        overrides = {k: getattr(args, k) for k in (*OPTIONS, "data")}
        planned = plan(get_experiment(args.experiment), args.profile, args.seeds, overrides, args.tf32)
        return _execute([planned], args)
    exps = [get_experiment(i) for i in args.only or list(EXPERIMENTS)]
    readers = [e.id for e in exps if _reads_data(e, args.profile)]
    if args.data and not readers:
        names = ", ".join(e.id for e in EXPERIMENTS.values() if _reads_data(e, args.profile))
        raise ConfigError(f"--data applies to {names}; none of them is selected")
    over = {"data": args.data}
    plans = [plan(e, args.profile, args.seeds, over if e.id in readers else {}, args.tf32) for e in exps]
    return _execute(plans, args, report=True)


def _reads_data(exp: Experiment, profile: str) -> bool:
    """Whether ``exp`` takes ``--data`` (the real-data experiments)."""
    return "data" in getattr(exp.params(profile), "OVERRIDES", ())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunsLost as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        where = getattr(args, "out", None)
        kept = f"; finished runs are kept in {where}/runs" if where else ""
        print(f"error: interrupted{kept}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
