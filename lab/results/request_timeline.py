"""The per-request timeline a run records: one CSV row per measured request, with the server's own
start and end (from the where-and-when headers) and the latency the client saw.

The difference between the two is the time a request spent outside its handler: queueing before
it, and delivery after it. Its steady floor says things the totals cannot (see `summary` and `delayed_ack`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from lab.analysis import latency_parts
from lab.analysis.latency_parts import LatencyParts
from lab.analysis.stats import quantile

# Linux delays an ACK by at least 40 ms (TCP_DELACK_MIN). A reply held back by Nagle's algorithm until
# that ACK arrives pays it every time: a steady floor of time outside the handler, seen here at 41-47 ms.
# The window is narrow on purpose: a steady queue (one worker, a few users) can also sit near 60 ms.
DELAYED_ACK_MS = (38.0, 50.0)
STEADY_MS = 10.0
# What the signature means, in the words the bench, the run notes and the conclusions share.
DELAYED_ACK_CAUSE = "Nagle's algorithm meeting delayed ACKs (the server leaves TCP_NODELAY off)"


class Request(TypedDict):
    """The server side of one request."""

    pid: int
    thread: int
    start_us: int
    end_us: int
    workload: str  # io or cpu; empty where the timeline does not say


@dataclass(frozen=True)
class OutsideHandler:
    """Percentiles of client latency minus server handler time, in ms."""

    p10: float
    p50: float
    p90: float


@dataclass(frozen=True)
class TimelineSummary:
    """A record's `timeline`: the run's per-request timeline file (relative to the results folder), summed up."""

    file: str
    rows: int
    outside_handler_ms: OutsideHandler | None = None
    processes_seen: int | None = None
    parts: LatencyParts | None = None  # where the requests' time went (None for a timeline without the stamps)


def read(path: Path) -> list[Request]:
    """The server side of each request: pid, thread, start and end in microseconds, and its kind (io, cpu)."""

    def us(value: str) -> int:
        return int(float(value))

    with path.open(newline="") as f:
        return [
            Request(pid=us(row["pid"]), thread=us(row["thread"]), start_us=us(row["start_us"]), end_us=us(row["end_us"]),
                    workload=row.get("workload") or "")
            for row in csv.DictReader(f)
        ]  # fmt: skip


def summary(path: Path, file: str, same_clock: bool = True) -> TimelineSummary:
    """What a record keeps of its timeline (`file`, relative to the results folder): how many requests
    it holds, percentiles (p10, p50, p90) of client latency minus server handler time, in ms (None
    without data), how many server processes served requests, and where their time went (`same_clock`:
    the client's and the server's stamps are one host's clock)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    gaps = [float(row["client_ms"]) - (int(row["end_us"]) - int(row["start_us"])) / 1000 for row in rows if row.get("client_ms")]

    def at(p: int) -> float:
        return round(quantile(gaps, p / 100) or 0.0, 2)

    outside = OutsideHandler(p10=at(10), p50=at(50), p90=at(90)) if gaps else None
    return TimelineSummary(file, len(rows), outside, len({row["pid"] for row in rows}), latency_parts.summarise(rows, same_clock))


def delayed_ack(summary: TimelineSummary | None) -> float | None:
    """From a record's timeline summary (None for a run without one): the floor of time outside the
    handler when it has the delayed-ACK signature (the server leaves Nagle's algorithm on), else None."""
    outside = summary.outside_handler_ms if summary else None
    if not outside:
        return None
    low, high = DELAYED_ACK_MS
    floor = outside.p10
    return floor if low <= floor <= high and outside.p50 - floor <= STEADY_MS else None
