"""The figures a comparison reads, which way each is better, and one configuration's reading of each."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from enum import StrEnum

from lab.analysis.stats import Interval, mean_interval


class Figure(StrEnum):
    """A figure by the name THRESHOLDS gives it (contract.comparing.THRESHOLD_UNITS), in its own unit: req/s, ms,
    a share of requests, ms of CPU per request, req/s held at the target, MB per worker."""

    RPS = "rps"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    FAILURES = "failures"
    CPU = "cpu"
    CAPACITY = "capacity"
    MEMORY = "memory"

    @property
    def higher_is_better(self) -> bool:
        return self in (Figure.RPS, Figure.CAPACITY)

    @property
    def timed(self) -> bool:
        """It moves with the machine's speed: a slower machine serves fewer requests, later, with more CPU each."""
        return self not in (Figure.FAILURES, Figure.MEMORY)

    @property
    def in_points(self) -> bool:
        """Its change is in percentage points, not relative to its base: a share near 0 has no relative change."""
        return self is Figure.FAILURES


QUANTILES = {Figure.P50: 0.5, Figure.P95: 0.95, Figure.P99: 0.99}


@dataclass(frozen=True)
class Reading:
    """One figure of one configuration of a folder: each run's value, and the interval that already covers
    them where there is one (one run's own samples, a binomial count pooled over its runs, a capacity search's
    bracket). Without it, the spread of the runs themselves says how sure the figure is."""

    runs: tuple[float, ...]
    own: Interval | None = None

    @property
    def estimate(self) -> float:
        return self.own.estimate if self.own is not None else statistics.fmean(self.runs)

    def interval(self) -> Interval:
        return self.own if self.own is not None else mean_interval(self.runs)

    def run_spread(self, z: float) -> float | None:
        """One run's standard deviation, in the figure's unit: over the runs, or from the interval that covers
        them (`z` its half-width in standard errors); None where nothing says (one run, no interval)."""
        if self.own is None:
            return statistics.stdev(self.runs) if len(self.runs) > 1 else None
        if not self.own.known:
            return None
        half = (self.own.high - self.own.low) / 2
        return half / z * math.sqrt(len(self.runs))

    def scaled(self, factor: float) -> Reading:
        """The same reading in another unit, or on another machine's pace."""
        own = self.own
        if own is not None:
            own = Interval(own.estimate * factor, own.low * factor, own.high * factor, own.confidence, own.n)
        return Reading(tuple(x * factor for x in self.runs), own)


def at_least(interval: Interval, spread: float | None) -> Interval:
    """A run's own interval never narrower than the machine's run-to-run spread (lab.analysis.intervals.machine_spread):
    a run repeated on the same machine moves at least that much, whatever its own samples say (as the
    report's rows do). An unbounded side stays unbounded: the loop's spread is no interval for a figure
    that one run cannot bound (its CPU per request moved by a fifth between two runs of one configuration)."""
    if spread is None:
        return interval
    reach = spread * abs(interval.estimate)
    low, high = min(interval.low, interval.estimate - reach), max(interval.high, interval.estimate + reach)
    return Interval(interval.estimate, low, high, interval.confidence, interval.n)
