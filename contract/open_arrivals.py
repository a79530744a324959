"""Open arrivals in every load-generating Locust process: the schedule of intended starts, each
process's share of the rate when Locust runs distributed, what a process reports of the arrivals
it offered, and the master's merge of its workers' reports into the file a lone Locust writes.

N workers each offer rate/N. Poisson streams that are independent sum to a Poisson stream of the
whole rate (each process draws from its own generator: Python reseeds `random` in a forked child,
and workers on other hosts are other processes). Constant streams are staggered by their slot, 1/rate
apart, so that the merged stream is evenly spaced. Each worker counts its phase from when its
share arrived, by its own clock, so the hosts' clocks need not agree: the phases are as even as the
master's messages of shares, sent one after another, reach its workers together (closer than the
spawn messages that start their tests), and its first arrival is the first of its phase after its
test starts (none due at once in a burst).

Standard library only: it runs inside Locust's processes (locust/locustfile.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

Latency = tuple[float, float, bool | None]  # intended start, ms from it, ok (None: unanswered at the end)


@dataclass(frozen=True)
class Share:
    """A process's part of the arrivals: its slot among `workers` processes (one process: slot 0 of 1)."""

    workers: int = 1
    slot: int = 0


class OpenReport(TypedDict):
    """What one process offered over the measured window, as the open-arrival file holds it."""

    rate: float
    poisson: bool
    offered: int
    sent: int
    late: int
    dropped: int
    unanswered: int
    latencies: list[Latency]


class WorkerCounts(TypedDict):
    """One worker's part of a merged window."""

    worker: str
    slot: int
    rate: float
    offered: int
    answered: int
    waiting: int


class OpenFile(OpenReport):
    """The open-arrival file of a distributed run: the workers' reports summed, each one's counts beside,
    and the workers that were asked and sent none."""

    workers: list[WorkerCounts]
    missing: list[str]


COUNTS = ("offered", "sent", "late", "dropped")


def first_arrival(rate: float, poisson: bool, share: Share, now: float, origin: float | None = None) -> float:
    """When this process's first arrival is due, from `now`: a Poisson stream's first gap is drawn like its others
    (at its own rate, rate/N); a constant stream's phase is `slot` gaps of the whole rate after `origin` (now
    unless given), every N gaps, and its first arrival the first of that phase from now."""
    if poisson:
        return now + random.expovariate(rate / share.workers)
    first, every = (now if origin is None else origin) + share.slot / rate, share.workers / rate
    return first + max(0, math.ceil((now - first) / every)) * every


def slots(workers: list[str]) -> dict[str, Share]:
    """Each worker's share, in the order given (Locust's own numbering, so that a run's slots are stable)."""
    return {worker: Share(len(workers), slot) for slot, worker in enumerate(workers)}


class Arrivals:
    """One process's schedule of intended starts, and what became of the measured ones."""

    def __init__(self) -> None:
        self.rate, self.poisson, self.next_at = 0.0, False, 0.0
        self.share = Share()
        self.origin: float | None = None  # when this worker's share arrived, by its clock: its phase counts from it
        self.counts = dict.fromkeys(COUNTS, 0)
        self.latencies: list[Latency] = []
        self.pending: set[float] = set()  # measured arrivals not answered yet

    def start(self, rate: float, poisson: bool, now: float, share: Share | None = None) -> None:
        """Offer `rate` arrivals a second over all processes, this one's share of them (0: a closed loop)."""
        self.share = share or self.share
        self.rate, self.poisson = (rate / self.share.workers if rate > 0 else 0.0), poisson
        self.next_at = first_arrival(rate, poisson, self.share, now, self.origin) if rate > 0 else now

    def take(self) -> float:
        at = self.next_at
        self.next_at += random.expovariate(self.rate) if self.poisson else 1 / self.rate
        return at

    def report(self, start: float | None, ended: float) -> OpenReport:
        """The measured window [start, ended]: arrivals no user took before the end (every user was busy) were
        offered all the same, and never sent; one still unanswered at the end waited at least until then
        (left out, the slowest would vanish)."""
        while start is not None and self.next_at <= ended:
            if self.take() >= start:
                self.counts["offered"] += 1
                self.counts["dropped"] += 1
        unanswered: list[Latency] = [(at, (ended - at) * 1000, None) for at in self.pending if at <= ended]
        kept = [a for a in self.latencies if a[0] <= ended] + unanswered
        return OpenReport(rate=self.rate, poisson=self.poisson, offered=self.counts["offered"], sent=self.counts["sent"],
                          late=self.counts["late"], dropped=self.counts["dropped"], unanswered=len(unanswered),
                          latencies=kept)  # fmt: skip


def merge(reports: Mapping[str, tuple[Share, OpenReport]], asked: list[str]) -> OpenFile:
    """The workers' reports as one window: counts summed, the rate their shares' sum, latencies in arrival
    order, each worker's counts beside, and those of `asked` that sent no report."""
    parts = sorted(reports.items(), key=lambda item: item[1][0].slot)

    def total(key: Literal["offered", "sent", "late", "dropped", "unanswered"]) -> int:
        return sum(report[key] for _, (_, report) in parts)

    workers = [
        WorkerCounts(worker=worker, slot=share.slot, rate=report["rate"], offered=report["offered"],
                     answered=sum(ok is not None for *_, ok in report["latencies"]), waiting=report["unanswered"])
        for worker, (share, report) in parts
    ]  # fmt: skip
    return OpenFile(rate=sum(report["rate"] for _, (_, report) in parts),
                    poisson=all(report["poisson"] for _, (_, report) in parts),
                    offered=total("offered"), sent=total("sent"), late=total("late"), dropped=total("dropped"),
                    unanswered=total("unanswered"),
                    latencies=sorted((a for _, (_, report) in parts for a in report["latencies"]), key=lambda a: a[0]),
                    workers=workers, missing=[worker for worker in asked if worker not in reports])  # fmt: skip
