"""Claims as data: the paper's qualitative statements, judged on per-seed values with four outcomes.

A claim reads per-seed values from a :class:`SeedTable` (group → quantity → seed → value), forms one
*effect* per seed, and judges the effect's 95 % interval over seeds against a named threshold
(:mod:`specbias.thresholds`):

* ``holds`` — the interval lies on the claimed side of the threshold;
* ``contradicted`` — it lies on the other side;
* ``inconclusive`` — it straddles the threshold, or too few seeds form an interval;
* ``not measurable`` — the quantity is degenerate for this claim (no finished run, identical values
  everywhere, or a reason the experiment gives, e.g. an input that aliases on this grid only).

The interval is Student's t over seeds (``scipy.stats.t``): with 3-5 seeds a bootstrap's percentile
interval under-covers badly, while the t-interval is exact for normal per-seed effects
(docs/claims.md). Seeds are the unit of replication; two groups measured on the same seeds are
compared seed by seed (a paired interval).

Example::

    table = SeedTable()
    table.put("raw01", "hamming_local", {0: 1.0, 1: 1.2, 2: 0.9})
    table.put("pe6", "hamming_local", {0: 9.0, 1: 8.7, 2: 9.4})
    Compare(text="local Hamming: raw01 < pe6", reads="hamming_local", a="raw01", b="pe6",
            relation="<").evaluate(table).outcome  # Outcome.HOLDS
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from specbias.errors import ConfigError
from specbias.thresholds import Threshold, threshold


class Outcome(str, enum.Enum):
    """The four verdicts a claim can get."""

    HOLDS = "holds"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"
    NOT_MEASURABLE = "not measurable"


@dataclass(frozen=True)
class Verdict:
    """A claim judged on data: outcome, effect, its interval over seeds, n, the threshold, the reason."""

    claim: str
    outcome: Outcome
    reads: str
    effect: float | None
    interval: tuple[float, float] | None
    n: int
    threshold: Threshold | None
    reason: str
    detail: str

    @property
    def holds(self) -> bool:
        return self.outcome is Outcome.HOLDS

    def as_dict(self) -> dict[str, Any]:
        """The finding as written to ``summary.json`` (``holds`` kept for old readers)."""
        return {
            "claim": self.claim,
            "verdict": self.outcome.value,
            "holds": self.holds,
            "effect": _finite_or_none(self.effect),
            "interval": None if self.interval is None else [float(v) for v in self.interval],
            "n": self.n,
            "threshold": None if self.threshold is None else self.threshold.value,
            "threshold_name": None if self.threshold is None else self.threshold.name,
            "reads": self.reads,
            "reason": self.reason,
            "detail": self.detail,
        }


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


class SeedTable:
    """Per-seed values of named quantities per group, and the groups that cannot be measured.

    Groups are any hashable key (an input label, a typed key); ``str(group)`` names it in verdicts.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[Hashable, str], dict[int, float]] = {}
        self._unmeasurable: dict[Hashable, str] = {}

    def put(self, group: Hashable, quantity: str, values: Mapping[int, float]) -> None:
        """Set ``quantity`` of ``group`` to ``{seed: value}``."""
        self._values[group, quantity] = {int(s): float(v) for s, v in values.items()}

    def add(self, group: Hashable, quantity: str, seed: int, value: float) -> None:
        """Set one seed's value."""
        self._values.setdefault((group, quantity), {})[int(seed)] = float(value)

    def get(self, group: Hashable, quantity: str) -> dict[int, float]:
        """``{seed: value}`` (empty when the group never measured it)."""
        return self._values.get((group, quantity), {})

    def mark(self, group: Hashable, reason: str) -> None:
        """Every claim reading ``group`` is *not measurable*, for ``reason``."""
        self._unmeasurable[group] = reason

    def why_not(self, group: Hashable) -> str | None:
        """The reason ``group`` cannot be measured, or None."""
        return self._unmeasurable.get(group)

    def update(self, other: SeedTable) -> None:
        """Add ``other``'s values and marks (``other`` wins where both have a value)."""
        self._values.update(other._values)
        self._unmeasurable.update(other._unmeasurable)

    @property
    def groups(self) -> list[Hashable]:
        return list(dict.fromkeys(g for g, _ in self._values))

    @classmethod
    def of(
        cls,
        groups: Mapping[Hashable, Sequence[Any]],
        measures: Mapping[str, Callable[[Any], float]],
        seed: Callable[[Any], int] = lambda run: run.meta["seed"],
    ) -> SeedTable:
        """A table of ``measures[q](run)`` for every run of every group, keyed by ``seed(run)``."""
        table = cls()
        for group, runs in groups.items():
            for quantity, measure in measures.items():
                table.put(group, quantity, {seed(r): measure(r) for r in runs})
        return table


def rank_corr(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ (average ranks for ties; ``scipy.stats.spearmanr``); NaN when a series is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


def t_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student's t interval of the mean; a point when every sample is equal."""
    mean = float(np.mean(samples))
    sem = float(scipy.stats.sem(samples))
    if sem == 0 or not np.isfinite(sem):
        return mean, mean
    lo, hi = scipy.stats.t.interval(confidence, samples.size - 1, loc=mean, scale=sem)
    return float(lo), float(hi)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


@dataclass(frozen=True)
class _Judgement:
    outcome: Outcome
    effect: float | None
    interval: tuple[float, float] | None
    n: int
    reason: str


def judge(samples: Iterable[float], thr: Threshold, above: bool = True) -> _Judgement:
    """Judge per-seed effects against ``thr``: holds when their 95 % t-interval lies above it (below
    when ``above`` is False), contradicted when it lies on the other side, else inconclusive."""
    x = np.asarray(list(samples), dtype=np.float64)
    dropped = int(np.sum(~np.isfinite(x)))
    x = x[np.isfinite(x)]
    if x.size == 0:
        return _Judgement(Outcome.NOT_MEASURABLE, None, None, 0, "no finite per-seed effect")
    effect, n = float(x.mean()), int(x.size)
    interval = t_interval(x, threshold("confidence").value) if n >= threshold("min_seeds").value else None
    j = decide(effect, interval, n, thr, above)
    if dropped:  # say so: the verdict stands on fewer seeds than were run
        note = f" ({dropped} seed(s) left out: their effect is not finite)"
        j = _Judgement(j.outcome, j.effect, j.interval, j.n, j.reason + note)
    return j


def decide(
    effect: float, interval: tuple[float, float] | None, n: int, thr: Threshold, above: bool = True
) -> _Judgement:
    """The outcome of an effect with its interval (None: too few seeds) against ``thr``."""
    need = int(threshold("min_seeds").value)
    if interval is None or n < need:
        return _Judgement(
            Outcome.INCONCLUSIVE, effect, None, n, f"{n} seed(s): at least {need} are needed for an interval"
        )
    lo, hi = interval
    side, other = ("above", "below") if above else ("below", "above")
    where = f"the {threshold('confidence').value:.0%} interval [{_fmt(lo)}, {_fmt(hi)}]"
    rule = f"{thr.name} = {thr.value:g}"
    if (lo > thr.value) if above else (hi < thr.value):
        return _Judgement(Outcome.HOLDS, effect, interval, n, f"{where} lies {side} {rule}")
    if (hi < thr.value) if above else (lo > thr.value):
        return _Judgement(Outcome.CONTRADICTED, effect, interval, n, f"{where} lies {other} {rule}")
    return _Judgement(Outcome.INCONCLUSIVE, effect, interval, n, f"{where} straddles {rule}")


def _spread(values: Mapping[int, float]) -> str:
    v = np.asarray(list(values.values()), dtype=np.float64)
    return f"{_fmt(float(np.mean(v)))} ± {_fmt(float(np.std(v)))}" if v.size else "—"


def _constant(*series: Mapping[int, float]) -> float | None:
    """The single value every seed of every series reads, or None when they vary."""
    v = np.concatenate([np.asarray(list(s.values()), dtype=np.float64) for s in series])
    return float(v[0]) if v.size and np.all(v == v[0]) else None


@dataclass(frozen=True, kw_only=True)
class Claim(ABC):
    """A statement of the paper, what it reads, and its named decision threshold.

    ``unless``: a reason known before looking at the values that makes the claim not measurable at
    this scale (e.g. an input aliases on this grid where it did not in the paper's).
    """

    text: str
    reads: str
    threshold: str = "material"
    unless: str | None = None

    @abstractmethod
    def groups(self) -> tuple[Hashable, ...]:
        """The groups the claim reads."""

    @abstractmethod
    def _judge(self, table: SeedTable) -> Verdict:
        """The verdict, once every group is known to be measurable."""

    def evaluate(self, table: SeedTable) -> Verdict:
        """The verdict of this claim on ``table``."""
        if self.unless:
            return self._verdict(_Judgement(Outcome.NOT_MEASURABLE, None, None, 0, self.unless), "")
        for group in self.groups():
            if (why := table.why_not(group)) is not None:
                return self._verdict(_Judgement(Outcome.NOT_MEASURABLE, None, None, 0, f"{group}: {why}"), "")
        return self._judge(table)

    def _verdict(self, j: _Judgement, detail: str) -> Verdict:
        thr = None if j.outcome is Outcome.NOT_MEASURABLE and j.effect is None else threshold(self.threshold)
        return Verdict(self.text, j.outcome, self.reads, j.effect, j.interval, j.n, thr, j.reason, detail)

    def _missing(self, table: SeedTable, pairs: Sequence[tuple[Hashable, str]]) -> Verdict | None:
        """Not measurable when a group has no value of what it reads."""
        for group, quantity in pairs:
            if not table.get(group, quantity):
                return self._verdict(
                    _Judgement(
                        Outcome.NOT_MEASURABLE, None, None, 0, f"no finished run of {group} reads {quantity}"
                    ),
                    "",
                )
        return None

    def _degenerate(self, *series: Mapping[int, float]) -> Verdict | None:
        """Not measurable when every seed of every group reads one value: nothing to compare."""
        value = _constant(*series)
        if value is None:
            return None
        reason = (
            f"{self.reads} is {value:g} for every seed of every group: the measure does not separate them"
        )
        return self._verdict(_Judgement(Outcome.NOT_MEASURABLE, None, None, 0, reason), "")


@dataclass(frozen=True, kw_only=True)
class Compare(Claim):
    """``a <relation> b``: the per-seed difference, relative to the larger group mean, exceeds the
    threshold in the claimed direction. ``reads_b`` reads another quantity for ``b`` (first vs last)."""

    a: Hashable
    b: Hashable
    relation: str
    reads_b: str | None = None

    def __post_init__(self) -> None:
        if self.relation not in ("<", ">"):
            raise ConfigError(f"relation must be '<' or '>', got {self.relation!r}")

    def groups(self) -> tuple[Hashable, ...]:
        return (self.a, self.b)

    def _judge(self, table: SeedTable) -> Verdict:
        qb = self.reads_b or self.reads
        if (missing := self._missing(table, [(self.a, self.reads), (self.b, qb)])) is not None:
            return missing
        va, vb = table.get(self.a, self.reads), table.get(self.b, qb)
        if (degenerate := self._degenerate(va, vb)) is not None:
            return degenerate
        sign = 1.0 if self.relation == ">" else -1.0
        scale = max(abs(np.mean(list(va.values()))), abs(np.mean(list(vb.values()))))
        paired = sorted(set(va) & set(vb))
        n_need = int(threshold("min_seeds").value)
        if len(paired) >= min(n_need, len(va), len(vb)):
            effects = [sign * (va[s] - vb[s]) / scale for s in paired]
            j = judge(effects, threshold(self.threshold))
        else:  # different seeds: Welch's interval of the difference of means
            j = self._welch(va, vb, sign, scale)
        names = f"{self.a} {self.reads}" if self.reads_b else str(self.a)
        names_b = f"{self.b} {qb}" if self.reads_b else str(self.b)
        detail = f"{names} {_spread(va)} vs {names_b} {_spread(vb)} (relative difference, paired by seed)"
        return self._verdict(j, detail)

    def _welch(
        self, va: Mapping[int, float], vb: Mapping[int, float], sign: float, scale: float
    ) -> _Judgement:
        """Seeds that do not pair: Welch's t-interval of the difference of the group means."""
        a, b = np.array(list(va.values())), np.array(list(vb.values()))
        effect = float(sign * (a.mean() - b.mean()) / scale)
        n = int(min(a.size, b.size))
        interval = None
        if n >= threshold("min_seeds").value:
            ci = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(
                threshold("confidence").value
            )
            lo, hi = sorted((float(sign * ci.low / scale), float(sign * ci.high / scale)))
            interval = (lo, hi)
        return decide(effect, interval, n, threshold(self.threshold))


@dataclass(frozen=True, kw_only=True)
class _SweepClaim(Claim):
    """A claim over the groups of a sweep, ``over`` in sweep order."""

    over: Sequence[Hashable]

    def groups(self) -> tuple[Hashable, ...]:
        return tuple(self.over)

    def _sweep(self, table: SeedTable) -> tuple[Any, np.ndarray | None]:
        """The per-group series and the seeds × points matrix (the seeds every point has);
        ``(verdict, None)`` when a group is missing or every value is equal."""
        if (missing := self._missing(table, [(g, self.reads) for g in self.over])) is not None:
            return missing, None
        series = [table.get(g, self.reads) for g in self.over]
        if (degenerate := self._degenerate(*series)) is not None:
            return degenerate, None
        seeds = sorted(set.intersection(*(set(s) for s in series)))
        matrix = np.array([[s[seed] for s in series] for seed in seeds], dtype=np.float64)
        return series, matrix.reshape(len(seeds), len(series))


@dataclass(frozen=True, kw_only=True)
class Trend(_SweepClaim):
    """A monotone trend over a sweep (``groups`` in sweep order, labelled by ``xs``): each seed's
    least-squares change from the first to the last sweep point, relative to that seed's mean |value|,
    exceeds the threshold in the claimed direction (``rises``). Spearman's ρ per seed is reported."""

    xs: Sequence[Any]
    rises: bool

    def _judge(self, table: SeedTable) -> Verdict:
        series, matrix = self._sweep(table)
        if matrix is None:
            return series
        sign = 1.0 if self.rises else -1.0
        effects = [sign * relative_change(row) for row in matrix]
        rhos = [rank_corr(np.arange(row.size), row) for row in matrix]
        means = ", ".join(f"{x}: {_fmt(float(np.mean(list(s.values()))))}" for x, s in zip(self.xs, series))
        rho = _fmt(float(np.nanmean(rhos))) if np.isfinite(rhos).any() else "—"
        detail = f"{self.reads} over the sweep (seed means) {means}; per-seed ρ mean {rho}"
        return self._verdict(judge(effects, threshold(self.threshold)), detail)


def relative_change(values: np.ndarray) -> float:
    """The least-squares change from the first to the last of equally spaced ``values``, relative to
    their mean magnitude (0 for an all-zero series)."""
    scale = float(np.mean(np.abs(values)))
    if values.size < 2 or scale == 0:
        return 0.0
    slope = np.polyfit(np.arange(values.size, dtype=np.float64), values, 1)[0]
    return float(slope * (values.size - 1) / scale)


@dataclass(frozen=True, kw_only=True)
class Flat(_SweepClaim):
    """Flat over a sweep: each seed's relative range ``(max − min)/mean|v|`` stays below the threshold."""

    threshold: str = "weak"

    def _judge(self, table: SeedTable) -> Verdict:
        series, matrix = self._sweep(table)
        if matrix is None:
            return series
        scale = np.mean(np.abs(matrix), axis=1)
        effects = [float(np.ptp(row) / s) if s else 0.0 for row, s in zip(matrix, scale)]
        detail = f"{self.reads}: " + ", ".join(f"{g} {_spread(s)}" for g, s in zip(self.over, series))
        return self._verdict(judge(effects, threshold(self.threshold), above=False), detail)


@dataclass(frozen=True, kw_only=True)
class Level(Claim):
    """One group's per-seed value lies above (``above=True``) or below the threshold."""

    group: Hashable
    above: bool = True

    def groups(self) -> tuple[Hashable, ...]:
        return (self.group,)

    def _judge(self, table: SeedTable) -> Verdict:
        if (missing := self._missing(table, [(self.group, self.reads)])) is not None:
            return missing
        values = table.get(self.group, self.reads)
        j = judge(values.values(), threshold(self.threshold), above=self.above)
        return self._verdict(j, f"{self.group} {self.reads} {_spread(values)} (per seed)")


@dataclass(frozen=True, kw_only=True)
class RankCorrelation(Claim):
    """Across ``over``, quantity ``reads`` rank-correlates with ``against`` (per seed, Spearman's ρ),
    with the claimed sign (``negative``) and at least the threshold's strength."""

    against: str
    over: Sequence[Hashable]
    negative: bool = False
    threshold: str = "rank_corr"

    def groups(self) -> tuple[Hashable, ...]:
        return tuple(self.over)

    def _judge(self, table: SeedTable) -> Verdict:
        pairs = [(g, q) for g in self.over for q in (self.reads, self.against)]
        if (missing := self._missing(table, pairs)) is not None:
            return missing
        xs = [table.get(g, self.reads) for g in self.over]
        ys = [table.get(g, self.against) for g in self.over]
        seeds = sorted(set.intersection(*(set(s) for s in xs + ys)))
        sign = -1.0 if self.negative else 1.0
        rhos = [sign * rank_corr([x[s] for x in xs], [y[s] for y in ys]) for s in seeds]
        if not np.isfinite(rhos).any():
            reason = (
                f"{self.reads} or {self.against} is constant across {len(self.over)} groups in every seed"
            )
            return self._verdict(_Judgement(Outcome.NOT_MEASURABLE, None, None, 0, reason), "")
        detail = f"ρ({self.reads}, {self.against}) over {len(self.over)} groups, per seed"
        return self._verdict(judge(rhos, threshold(self.threshold)), detail)


_PRECEDENCE = (Outcome.CONTRADICTED, Outcome.NOT_MEASURABLE, Outcome.INCONCLUSIVE, Outcome.HOLDS)


@dataclass(frozen=True, kw_only=True)
class AllOf(Claim):
    """Every part holds. Contradicted if any part is, else not measurable, else inconclusive if any
    part is; the effect and interval are the deciding part's."""

    parts: Sequence[Claim]
    reads: str = ""

    def groups(self) -> tuple[Hashable, ...]:
        return tuple(dict.fromkeys(g for p in self.parts for g in p.groups()))

    def evaluate(self, table: SeedTable) -> Verdict:
        if self.unless:
            return super().evaluate(table)
        verdicts = [p.evaluate(table) for p in self.parts]
        if not verdicts:
            raise ConfigError(f"all-of claim {self.text!r} has no parts")
        outcome = next(o for o in _PRECEDENCE if any(v.outcome is o for v in verdicts))
        decider = next(v for v in verdicts if v.outcome is outcome)
        failing = [f"{v.claim}: {v.outcome.value} ({v.reason})" for v in verdicts if not v.holds]
        reason = "; ".join(failing) if failing else f"all {len(verdicts)} parts hold"
        detail = "; ".join(v.detail for v in verdicts if v.detail)
        reads = self.reads or ", ".join(dict.fromkeys(v.reads for v in verdicts))
        return Verdict(
            self.text,
            outcome,
            reads,
            decider.effect,
            decider.interval,
            decider.n,
            decider.threshold,
            reason,
            detail,
        )

    def _judge(self, table: SeedTable) -> Verdict:  # pragma: no cover - evaluate is overridden
        raise NotImplementedError


def for_each(groups: Iterable[Hashable], make: Callable[[Hashable], Claim | None]) -> list[Claim]:
    """One claim per group (``make`` may return None where the claim does not apply)."""
    return [c for g in groups if (c := make(g)) is not None]


def evaluate(claims: Iterable[Claim | None], table: SeedTable) -> list[Verdict]:
    """The verdicts of ``claims`` (None entries, claims that do not apply, are skipped)."""
    return [c.evaluate(table) for c in claims if c is not None]
