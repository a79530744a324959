"""Where each request's time went: its latency split into parts that add up, from the client's stamps
(intended start, sent, received) and the server's (the handler's start and end, and its phases in
Server-Timing: pool, db, cpu, own), as the timeline file keeps them one row per request.

The parts, in the order a request meets them:
- generator: intended start to sent (the load generator's own lag; with open arrivals, an arrival
  waiting for a free user);
- before the handler: sent to the handler's start (the kernel's accept queue, the server's own queue,
  an event loop busy with other requests, a thread waiting for a worker or the GIL);
- pool: waiting for a database connection (connecting, where there is no pool);
- database: the query as PostgreSQL ran it, its wait included (where the server does not say, as long as
  the handler waited for it);
- CPU in the handler: the handler's own CPU time (its thread's, for a sync handler; for an async one,
  the prime count it runs in the loop, or its wall time in a process pool);
- waiting inside the handler: the handler's time in none of the above (waiting for the GIL between
  threads, an event loop running other requests between this one's awaits, the driver's round trip);
- after the handler: the handler's end to the client holding the whole response (delivery, Nagle and
  delayed ACKs, the client's own scheduling).

Before and after compare a client's clock with a server's: where they are not one host's clock, the two
are one part, between the client and the server, which needs no common clock (the client's latency less
the server's handler time).

Their sum is the latency from the intended start to the moment the client recorded the answer; the
latency the client measured (Locust's, plus the generator's lag) may differ by a little: the
difference is kept as unaccounted.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from contract.request_parts import BETWEEN, NAMES, PARTS, request_parts
from lab.analysis.stats import quantile


@dataclass(frozen=True)
class Part:
    """One part over a run's requests, in ms, and its share of their mean latency."""

    mean_ms: float
    p95_ms: float
    share: float


@dataclass(frozen=True)
class LatencyParts:
    """A run's requests, each split into parts (PARTS, or BETWEEN for before and after across hosts)."""

    requests: int
    latency_mean_ms: float  # as the client measured it, from the intended start
    latency_p95_ms: float
    parts: dict[str, Part]
    unaccounted_ms: float  # mean latency less the mean of the parts' sum
    same_clock: bool  # the client's and the server's stamps on one clock: before and after apart

    @property
    def unaccounted_share(self) -> float:
        return self.unaccounted_ms / self.latency_mean_ms if self.latency_mean_ms else 0.0

    def mean(self, part: str) -> float:
        found = self.parts.get(part)
        return found.mean_ms if found else 0.0


def summarise(rows: Iterable[Mapping[str, str | None]], same_clock: bool = True) -> LatencyParts | None:
    """The parts over a run's requests; None where no row has the stamps."""
    split = [found for row in rows if (found := request_parts(row, same_clock)) is not None]
    if not split:
        return None
    latencies = [latency for _, latency in split]
    mean = fmean(latencies)
    names = [p for p in PARTS if same_clock or p not in ("before", "after")] + ([] if same_clock else [BETWEEN])
    parts = {}
    for name in names:
        values = [found[name] for found, _ in split]
        part_mean = fmean(values)
        parts[name] = Part(
            round(part_mean, 3), round(quantile(values, 0.95) or 0.0, 3), round(part_mean / mean, 4) if mean else 0.0
        )
    summed = fmean(sum(found.values()) for found, _ in split)
    return LatencyParts(len(split), round(mean, 3), round(quantile(latencies, 0.95) or 0.0, 3), parts,
                        round(mean - summed, 3), same_clock)  # fmt: skip


def read(path: Path, same_clock: bool = True) -> LatencyParts | None:
    with path.open(newline="") as f:
        return summarise(csv.DictReader(f), same_clock)


@dataclass(frozen=True)
class Growth:
    """The part that grew most between a low load and a high one, in mean ms."""

    part: str
    low_ms: float
    high_ms: float

    @property
    def name(self) -> str:
        return NAMES[self.part]


def grew(low: LatencyParts, high: LatencyParts) -> Growth | None:
    """Which part grew the most (mean ms) from `low` to `high`; None where none grew."""
    common = [part for part in high.parts if part in low.parts]
    if not common:
        return None
    part = max(common, key=lambda p: high.mean(p) - low.mean(p))
    return Growth(part, low.mean(part), high.mean(part)) if high.mean(part) > low.mean(part) else None


def describe(parts: LatencyParts) -> str:
    """The parts in words, largest first: 'the database 101.2 ms (97%), before the handler 1.3 ms (1%), ...'."""
    ordered = sorted(parts.parts.items(), key=lambda item: -item[1].mean_ms)
    said = ", ".join(f"{NAMES[name]} {part.mean_ms:.1f} ms ({part.share:.0%})" for name, part in ordered if part.mean_ms >= 0.05)
    return f"{said}; unaccounted {parts.unaccounted_ms:+.2f} ms ({parts.unaccounted_share:+.1%})"
