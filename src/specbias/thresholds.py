"""Every decision threshold of every claim, named once, with its value and the reason for it.

A claim names its threshold (``Compare(..., threshold="material")``); the verdict records the name
and value. Changing a value here changes verdicts everywhere it is used, never a copy somewhere else.
Per-experiment protocols and how each threshold was chosen are in ``docs/experiments/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from specbias.errors import ConfigError


@dataclass(frozen=True)
class Threshold:
    """A named decision threshold: ``value`` and a one-line ``reason``."""

    name: str
    value: float
    reason: str


_TABLE = (
    # ---- statistics of every claim
    Threshold("min_seeds", 3, "fewer seeds give no usable 95 % interval (a 2-seed t-interval is ±12.7 s)"),
    Threshold("confidence", 0.95, "the interval's coverage over seeds"),
    # ---- generic effect sizes
    Threshold("material", 0.05, "a relative difference or change under 5 % is not an effect a figure shows"),
    Threshold("weak", 0.25, "a dependence is weak when the relative range (max - min)/mean is at most this"),
    Threshold(
        "rank_corr", 0.5, "a rank correlation at least this strong (claimed sign) counts as a relation"
    ),
    Threshold("drift", 0.1, "an NTK drift ‖Θ_t - Θ₀‖/‖Θ₀‖ or a region/Hamming change above 10 % is material"),
    Threshold("most", 0.5, "'for most inputs': the share of the inputs for which it happens is above a half"),
    # ---- convergence
    Threshold("rel_err", 0.1, "a tone or band has converged when its relative residual is below 0.1"),
    Threshold("unlearned", 0.9, "a tone or band with relative error above 0.9 is not learned at all"),
    Threshold(
        "departure", 0.05, "the linearised prediction departs when it misses the measured error by 0.05"
    ),
    # ---- distributions of cosines (gradient confusion, output-Jacobian alignment)
    Threshold("near_one", 0.9, "|cos| above 0.9 counts as (anti)parallel: 'at ±1' in the paper's KDEs"),
    Threshold("concentrated", 0.5, "the paper's 'sits at ±1': at least half of the pairs have |cos| > 0.9"),
    Threshold("piled_share", 0.1, "nothing piles up at ±1 when at most 10 % of pairs have |cos| > 0.9"),
    Threshold("centred", 0.1, "a cosine distribution is centred at 0 when |median| is at most 0.1"),
    Threshold("orthogonal", 0.2, "distant pairs are nearly orthogonal when their mean |cos| is at most 0.2"),
    # ---- activation regions and patterns
    Threshold("few_regions", 0.5, "raw inputs use far fewer regions than points: under half of the points"),
    Threshold("saturated_regions", 0.9, "an encoding approaches one region per point at 90 % of the points"),
    Threshold("one_per_point", 0.99, "a count reaches one region per point at 99 % of the points (E16)"),
    Threshold(
        "substantial", 0.05, "neighbours differ in a substantial share of units when H/n is at least 5 %"
    ),
    Threshold("same_radius", 0.1, "a median insphere radius that moves by at most 10 % barely changes"),
    Threshold("fine_share", 0.01, "a fine tessellation: no exact region covers more than 1 % of the slice"),
    Threshold("large_share", 0.1, "a large uniform region covers at least 10 % of the slice"),
    # ---- generalisation
    Threshold("overfit", 0.05, "the test loss rises when its last value exceeds its minimum by 5 %"),
    Threshold("chance_multiple", 2.0, "a classifier has learned when its best test accuracy is twice chance"),
    Threshold("same_err", 0.1, "a linear lift changes nothing: mean final relative error within 0.1 of raw"),
    Threshold("same_factor", 1.5, "a linear lift changes nothing: Hamming and regions within a factor 1.5"),
    Threshold("same_count", 1.5, "a linear lift changes nothing: converged tones as raw's ±1 (|Δ| < 1.5)"),
)

THRESHOLDS: dict[str, Threshold] = {t.name: t for t in _TABLE}


def threshold(name: str) -> Threshold:
    """The threshold ``name``, or a ConfigError listing the names."""
    if name not in THRESHOLDS:
        raise ConfigError(f"unknown threshold {name!r}; allowed: {', '.join(THRESHOLDS)}")
    return THRESHOLDS[name]
