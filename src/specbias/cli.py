"""Command line: ``specbias list | run | reproduce | report``.

Every bad value ends the command with one line ``error: ...`` on stderr and exit code 2, before
anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from specbias import __version__
from specbias.cost import sweep_cost
from specbias.encodings import INPUT_GRAMMAR
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, Experiment, get_experiment
from specbias.experiments.base import PROFILES
from specbias.pipeline import Planned, execute, plan
from specbias.report import build_report
from specbias.results import ensure_writable_dir
from specbias.runner import check_executor, default_workers
from specbias.runs import resolve_device


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
        choices=("cpu", "cuda"),
        help="where to train (default: %(default)s)",
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
        help="Dask scheduler address, e.g. tcp://host:8786 (default: start a LocalCluster of --workers)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (default: shown on a terminal)"
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
    over.add_argument("--epochs", type=int, help="training epochs")
    over.add_argument("--lr", type=float, help="learning rate")
    over.add_argument("--width", type=int, help="hidden units per layer")
    over.add_argument("--depth", type=int, help="number of hidden layers")
    over.add_argument("--n", type=int, help="number of 1D samples on [0,1) (1D experiments)")
    over.add_argument("--size", type=int, help="image side in pixels (2D experiments)")
    over.add_argument(
        "--images",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help="comma-separated scikit-image names or PNG/JPEG paths (natural-image experiments); "
        "seed s uses image s mod count",
    )
    over.add_argument(
        "--inputs",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help=f"comma-separated inputs from: {INPUT_GRAMMAR} (1D 'pe<L>': L = largest exponent; "
        "2D: L = number of octaves)",
    )
    over.add_argument(
        "--mode",
        choices=("clean", "faithful"),
        help="clean fixes the reference's quirks; faithful mirrors its samplers and shared phases",
    )
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
    rep.add_argument(
        "--yes",
        action="store_true",
        help="start even when the estimated cost is over an hour (paper profile)",
    )

    rpt = sub.add_parser(
        "report",
        help="rebuild OUT/report.html from finished experiments, without re-running",
        description="Rebuild the self-contained HTML report from the experiment directories under OUT.",
    )
    rpt.add_argument(
        "out", type=Path, nargs="?", default=Path("results"), help="results directory (default: %(default)s)"
    )
    return parser


def _print_results(done: Sequence) -> None:
    for planned, result, path in done:
        print(f"{planned.experiment.id}: {planned.experiment.title} -> {path}")
        for f in result.findings:
            print(f"  [{'holds' if f.holds else 'does not hold'}] {f.claim}: {f.detail}")


def _check_cost(plans: list[Planned], args: argparse.Namespace) -> str:
    """The estimated cost as one line; a paper-profile sweep over an hour needs ``--yes``."""
    workers = args.workers or default_workers(args.device)
    cost = sweep_cost([c for p in plans for c in p.configs], args.device, workers)
    if args.profile == "paper" and cost.hours > 1 and not getattr(args, "yes", False):
        raise ConfigError(
            f"the paper profile is estimated at {cost.hours:.1f} h of training ({cost.flops:.3g} FLOP) on "
            f"{workers} {args.device} worker(s); re-run with --yes to start"
        )
    return (
        f"estimated training cost: {cost.flops:.3g} FLOP, {cost.steps} optimiser steps, "
        f"about {cost.seconds / 60:.1f} min on {workers} {args.device} worker(s) (probes not counted)"
    )


def _execute(plans: list[Planned], args: argparse.Namespace, report: bool = False) -> int:
    resolve_device(args.device)
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    check_executor(args.executor, args.scheduler)
    estimate = _check_cost(plans, args)
    out = ensure_writable_dir(args.out)
    print(estimate, file=sys.stderr)
    progress = False if args.no_progress else None
    start = time.perf_counter()
    done = execute(
        plans,
        out,
        device=args.device,
        workers=args.workers,
        force=args.force,
        progress=progress,
        executor=args.executor,
        scheduler=args.scheduler,
    )
    _print_results(done)
    if report:
        extra = {
            "profile": args.profile,
            "device": args.device,
            "workers": args.workers or default_workers(args.device),
            "executor": args.executor + (f" ({args.scheduler})" if args.scheduler else ""),
            "torch threads per run": 1,
            "seeds": ", ".join(f"{p.experiment.id} {p.seeds}" for p in plans),
            "wall time of this invocation": f"{time.perf_counter() - start:.0f} s",
        }
        print(f"report: {build_report(out, extra)}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        for exp in EXPERIMENTS.values():
            print(f"{exp.id:<5} {exp.title} -- {exp.claim}")
        return 0
    if args.command == "run":
        overrides = {
            k: getattr(args, k)
            for k in ("epochs", "lr", "width", "depth", "n", "size", "images", "inputs", "mode", "data")
        }
        return _execute([plan(get_experiment(args.experiment), args.profile, args.seeds, overrides)], args)
    if args.command == "report":
        print(f"report: {build_report(args.out)}")
        return 0
    exps = [get_experiment(i) for i in args.only or list(EXPERIMENTS)]
    readers = [e.id for e in exps if _reads_data(e, args.profile)]
    if args.data and not readers:
        names = ", ".join(e.id for e in EXPERIMENTS.values() if _reads_data(e, args.profile))
        raise ConfigError(f"--data applies to {names}; none of them is selected")
    over = {"data": args.data}
    plans = [plan(e, args.profile, args.seeds, over if e.id in readers else {}) for e in exps]
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
    except KeyboardInterrupt:
        where = getattr(args, "out", None)
        kept = f"; finished runs are kept in {where}/runs" if where else ""
        print(f"error: interrupted{kept}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
