"""What an experiment is: named parameter profiles, the runs they need, and an analysis.

An experiment never trains by itself: it lists :class:`~specbias.runs.RunConfig` objects (the
runner trains or loads them) and turns the finished runs into tidy metric rows, arrays, figures
and a summary with computed findings. Experiments that need the same runs share them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from specbias._checks import check_int
from specbias.claims import Claim, SeedTable, Verdict, evaluate
from specbias.encodings import parse_input
from specbias.errors import ConfigError
from specbias.runs import RunConfig, RunData

PROFILES = ("quick", "standard", "paper")
"""Scales, smallest first: ``quick`` (minutes, the default), ``standard`` (under 2 h on 2 cores: the
reference scale where it fits, see docs/profiles.md) and ``paper`` (the paper's sizes; a GPU job)."""


def check_study(
    inputs: Sequence[str], *, in_dim: int = 1, convention: str = "1d", mode: str = "clean", **sizes: int
) -> None:
    """ConfigError unless the inputs are distinct valid labels, ``mode`` is clean/faithful and every
    named size (width, depth, seeds, …) is an integer of at least 1: the checks every study's
    parameters share."""
    if not inputs:
        raise ConfigError("at least one input is needed")
    if len(set(inputs)) != len(inputs):
        raise ConfigError(f"inputs must be distinct, got {list(inputs)}")
    for label in inputs:
        parse_input(label, in_dim=in_dim, convention=convention)
    if mode not in ("clean", "faithful"):
        raise ConfigError(f"mode must be 'clean' or 'faithful', got {mode!r}")
    for name, value in sizes.items():
        check_int(name, value)


@dataclass
class ExperimentResult:
    """Everything an experiment writes: rows, arrays, figures and the summary."""

    rows: list[tuple]
    arrays: dict[str, np.ndarray]
    figures: dict[str, Figure]
    summary: dict[str, Any]
    findings: list[Verdict] = field(default_factory=list)
    table: SeedTable = field(default_factory=SeedTable)
    """The per-seed values the claims were judged on."""

    def judge(self, claims: Sequence[Claim | None]) -> None:
        """Add the verdicts of ``claims`` on this result's per-seed table to its findings."""
        self.findings.extend(evaluate(claims, self.table))


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: ``runs(params, seeds)`` and ``analyse(params, runs)``."""

    id: str
    title: str
    claim: str
    profiles: dict[str, Any]
    runs: Callable[[Any, int], list[RunConfig]]
    analyse: Callable[[Any, Sequence[tuple[RunConfig, RunData]]], ExperimentResult]
    default_seeds: int = 5

    @classmethod
    def of(
        cls,
        id: str,
        title: str,
        claim: str,
        quick: Any,
        standard: Any,
        paper: Any,
        analyse: Callable[[Any, Sequence[tuple[RunConfig, RunData]]], ExperimentResult],
    ) -> Experiment:
        """An experiment whose parameter objects list their own runs (``params.runs(seeds)``) and
        whose default seed count is the quick profile's."""
        return cls(
            id=id,
            title=title,
            claim=claim,
            profiles={"quick": quick, "standard": standard, "paper": paper},
            runs=lambda params, seeds: params.runs(seeds),
            analyse=analyse,
            default_seeds=quick.seeds,
        )

    def params(self, profile: str) -> Any:
        if profile not in self.profiles:
            raise ConfigError(f"unknown profile {profile!r}; allowed: {', '.join(self.profiles)}")
        return self.profiles[profile]
