"""How sure a run's figures are, from its own samples, and how sure repeats of a configuration are.

Within one run: throughput from batch means over its per-second completions (seconds next to each
other are correlated; batches of seconds much less), and latency percentiles from the order
statistics of its requests' client latencies (the timeline). Across repeats of one configuration:
the mean of each figure with its Student-t interval. Comparisons then ask whether intervals
overlap (`lab.analysis.stats.level`), never whether two figures are within a fixed percentage.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.analysis.stats import Interval, batch_means_interval, mean_interval, quantile_interval

PERCENTILES = (50, 95, 99)
BATCHES = 5  # few seconds per batch in a short run, and still a t-interval with 4 degrees of freedom


@dataclass(frozen=True)
class Figure:
    """One figure's 95% interval as a record keeps it: an unbounded side is None (JSON has no infinity)."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int = 0

    @classmethod
    def of(cls, interval: Interval) -> Figure:
        def finite(x: float) -> float | None:
            return round(x, 4) if math.isfinite(x) else None

        return cls(finite(interval.estimate), finite(interval.low), finite(interval.high), interval.n)

    def interval(self) -> Interval:
        low, high = -math.inf if self.low is None else self.low, math.inf if self.high is None else self.high
        return Interval(self.estimate or 0.0, low, high, n=self.n)


@dataclass(frozen=True)
class RunIntervals:
    """`intervals` of a run's record: how sure its throughput and latency percentiles are."""

    rps: Figure | None = None
    p50_ms: Figure | None = None
    p95_ms: Figure | None = None
    p99_ms: Figure | None = None


def of_run(timeline: Path, rps: float) -> RunIntervals:
    """Intervals for a run's throughput and latency percentiles, from its timeline. The timeline keeps
    up to a cap of requests: the throughput interval is the per-second series' relative spread applied
    to the run's own throughput, so a capped timeline still says how steady the run was."""
    latencies: list[float] = []
    ends: list[float] = []
    with timeline.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("client_ms"):
                latencies.append(float(row["client_ms"]))
                ends.append(int(row["end_us"]) / 1e6)
    p50, p95, p99 = (Figure.of(quantile_interval(latencies, p / 100)) for p in PERCENTILES)
    return RunIntervals(Figure.of(_throughput(ends, rps)), p50, p95, p99)


def _throughput(ends: list[float], rps: float) -> Interval:
    if len(ends) < 2 or max(ends) - min(ends) < 2:  # under two whole seconds: no series to speak of
        return Interval(rps, -math.inf, math.inf, n=len(ends))
    first = min(ends)
    seconds = math.floor(max(ends) - first)
    per_second = [0] * max(1, seconds)
    for end in ends:
        second = int(end - first)
        if second < len(per_second):  # the last, partial second is left out
            per_second[second] += 1
    series = batch_means_interval(per_second, batches=min(BATCHES, len(per_second)))
    if not series.known or series.estimate <= 0:
        return Interval(rps, -math.inf, math.inf, n=len(per_second))
    scale = rps / series.estimate
    return Interval(rps, series.low * scale, series.high * scale, n=len(per_second))


def across(values: Iterable[float]) -> Interval:
    """A configuration's figure over its repeats: the mean, with a t-interval (unknown for one run)."""
    return mean_interval(list(values))


def spread(values: Iterable[float]) -> float | None:
    """Run-to-run spread of a figure over repeats: the coefficient of variation (None under two runs)."""
    samples = list(values)
    if len(samples) < 2:
        return None
    mean = sum(samples) / len(samples)
    sd = math.sqrt(sum((x - mean) ** 2 for x in samples) / (len(samples) - 1))
    return sd / mean if mean else None


def machine_spread(interpreter: Path) -> float | None:
    """The machine's own run-to-run spread over an experiment: how much its interpreters' time for the
    same fixed loop moved between the start and the end (a results folder's interpreter.json; None where
    it was not taken)."""
    try:
        speeds = json.loads(interpreter.read_text())
    except (OSError, ValueError):
        return None
    moved = []
    for ends in speeds.values():
        try:
            start, end = (float(ends[at]["speed"]["cpu_seconds"]) for at in ("start", "end"))
        except (KeyError, TypeError, ValueError):
            continue
        if min(start, end) > 0:
            moved.append(abs(end - start) / min(start, end))
    return max(moved) if moved else None
