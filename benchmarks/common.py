"""Shared helpers: timing and the one-line result format of ``make bench``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """A same-process comparison; ``ratio = baseline / ours`` (> 1 means we are faster)."""

    name: str
    baseline: float
    ours: float
    note: str = ""

    def line(self) -> str:
        note = f"  # {self.note}" if self.note else ""
        return (
            f"{self.name}: ratio={self.baseline / self.ours:.1f}x "
            f"baseline={self.baseline:.2f}s ours={self.ours:.2f}s{note}"
        )


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Minimum wall time of ``repeats`` calls (the least noisy estimate on a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(
    baseline: Callable[[], object], ours: Callable[[], object], repeats: int = 3, inner: int = 1
) -> tuple[float, float]:
    """Best-of times of two functions measured alternately (after one warm-up call each), so
    drifts hit both alike; ``inner`` extra calls per round for very short functions."""
    baseline(), ours()
    b, o = [], []
    for _ in range(repeats):
        b.append(best_of(baseline, 1))
        o.append(best_of(ours, inner))
    return min(b), min(o)
