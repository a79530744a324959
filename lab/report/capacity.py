"""Capacity searches: each configuration's answer as its search gave it (`capacity.json`: a range of
offered rates, where p95 crosses the target, the queueing prediction, the model's saturation) beside
its steps as their records kept them; which configuration holds the most, judged on those ranges; and
how the queue grew past capacity. lab.report.words says each."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from contract.modes import MODES
from lab.analysis.latency_parts import LatencyParts
from lab.analysis.model import QueueModel, ServedQueue
from lab.report.rows import label
from lab.results.folder import RecordError, ResultsFolder
from lab.results.record import CapacityFound, CapacityStep, OpenArrivals, RunRecord
from lab.results.typedjson import read


@dataclass(frozen=True)
class Step:
    """One step of a search as its last window recorded it: the rate asked for, the rate its windows
    really offered, its p95 with an interval, and its verdict."""

    rate: float
    step: CapacityStep
    arrivals: OpenArrivals | None
    parts: LatencyParts | None = None  # where its requests' time went

    @property
    def offered(self) -> float:
        return self.step.offered_rps or (self.arrivals.offered_rps if self.arrivals else self.rate)

    @property
    def p95_ms(self) -> float | None:
        return self.step.p95_ms if self.step.p95_ms is not None else self.arrivals.p95_ms if self.arrivals else None

    @property
    def held(self) -> bool:
        return self.step.held

    @property
    def broke(self) -> bool:
        return self.step.broke


GREW = 1.2  # the median of a window's second half this much over its first: the queue grew, not chance
Key = tuple[str, str, float, str, float]  # label, workload, CPUS, arrivals, target


@dataclass(frozen=True)
class Capacity:
    """One configuration's search: its steps by offered rate, and its answer (None: it did not finish)."""

    label: str
    mode: str
    workload: str
    cpus: float
    arrivals: str
    slo_ms: float
    steps: list[Step]
    found: CapacityFound | None

    @property
    def development(self) -> bool:
        return MODES[self.mode].development

    @property
    def ranked(self) -> bool:
        """A capacity to rank: a rate that held and one that broke. A lower bound alone is never ranked."""
        f = self.found
        return f is not None and f.capacity_low_rps is not None and f.capacity_high_rps is not None

    @property
    def figure(self) -> float | None:
        """Where p95 crosses the target along the steps, else the middle of the range."""
        f = self.found
        return (f.capacity_estimate_rps or f.capacity_mid_rps) if f and self.ranked else None

    @property
    def prediction(self) -> ServedQueue | None:
        """The queue the search predicted from: its servers, their service time, and the time beside it."""
        f = self.found
        if f is None or not f.predicted_service_ms or not f.predicted_queue:
            return None
        servers = f.predicted_servers or int(f.predicted_queue.split()[0].rsplit("/", 1)[-1])  # files from before the field
        outside = (f.predicted_outside_ms or 0.0) / 1000
        binds = "CPU" if f.predicted_queue.endswith("on the CPU") else "in flight"
        return ServedQueue(QueueModel(servers, f.predicted_service_ms / 1000), outside, binds)

    @property
    def span(self) -> tuple[float, float] | None:
        """The range of offered rates the capacity lies in (its ends in order, even where they crossed)."""
        f = self.found
        if not self.ranked or f is None or f.capacity_low_rps is None or f.capacity_high_rps is None:
            return None
        return min(f.capacity_low_rps, f.capacity_high_rps), max(f.capacity_low_rps, f.capacity_high_rps)

    @property
    def band(self) -> tuple[float, float] | None:
        """Where the capacity lies at 95%: the crossing's band from every step near the target, where both its
        sides are closed; else the range of offered rates between a step that held and one that broke."""
        f = self.found
        if self.ranked and f and f.capacity_estimate_low_rps is not None and f.capacity_estimate_high_rps is not None:
            return f.capacity_estimate_low_rps, f.capacity_estimate_high_rps
        return self.span


def answers(folder: Path) -> list[CapacityFound]:
    """The searches' answers, as `make capacity` wrote them after each search."""
    path = ResultsFolder(folder).capacity
    if not path.exists():
        return []
    try:
        return [read(CapacityFound, entry) for entry in json.loads(path.read_text())]
    except (ValueError, TypeError) as error:  # JsonError too
        raise RecordError(f"{path}: not a readable capacity file ({error})") from None


def key(found: CapacityFound) -> Key:
    return found.label, found.workload, found.cpus, found.arrivals, found.slo_p95_ms


def capacities(records: list[RunRecord], folder: Path) -> list[Capacity]:
    groups: dict[Key, list[tuple[RunRecord, CapacityStep]]] = defaultdict(list)
    for record in records:
        step = record.capacity_step
        if step and not step.extended:  # a window followed by another of its step: the last one speaks for both
            k = record.config.knobs
            groups[(label(record.config), k.workload, k.cpus, record.config.arrivals, step.slo_p95_ms)].append((record, step))
    by_key = {key(f): f for f in answers(folder)}
    found = []
    for (name, workload, cpus, arrivals, slo), steps in groups.items():
        rows = [Step(r.config.arrival_rate, step, r.measured.locust.open if r.measured else None,
                     r.measured.timeline.parts if r.measured and r.measured.timeline else None) for r, step in steps]  # fmt: skip
        mode = steps[0][0].config.knobs.mode
        found.append(Capacity(name, mode, workload, cpus, arrivals, slo, sorted(rows, key=lambda s: s.offered),
                              by_key.get((name, workload, cpus, arrivals, slo))))  # fmt: skip
    return found


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


@dataclass(frozen=True)
class CapacityPick:
    """At one workload, CPU limit, arrivals and target: the production configuration whose capacity is
    highest, those whose bands overlap its (level with it), those clearly under it, and what is not
    ranked: lower bounds (nothing broke) and development servers."""

    workload: str
    cpus: float
    arrivals: str
    slo_ms: float
    best: Capacity | None
    level: list[Capacity]
    under: list[Capacity]
    lower_bounds: list[Capacity]
    development: list[Capacity]


def capacity_picks(found: list[Capacity]) -> list[CapacityPick]:
    groups: dict[tuple[str, float, str, float], list[Capacity]] = defaultdict(list)
    for c in found:
        groups[(c.workload, c.cpus, c.arrivals, c.slo_ms)].append(c)
    picked = []
    for (workload, cpus, arrivals, slo), group in sorted(groups.items()):
        production = [c for c in group if not c.development]
        ranked = sorted((c for c in production if c.ranked), key=lambda c: -(c.figure or 0))
        best = ranked[0] if ranked else None
        top = best.band if best else None
        level = [c for c in ranked[1:] if top and c.band and overlap(top, c.band)]
        under = [c for c in ranked[1:] if c not in level]
        bounds = [c for c in production if c.found and c.found.lower_bound_only]
        development = [c for c in group if c.development and c.found]
        picked.append(CapacityPick(workload, cpus, arrivals, slo, best, level, under, bounds, development))
    return picked


@dataclass(frozen=True)
class Overload:
    """Past capacity, with arrivals that do not wait for replies, the queue grew: latency rose over the run."""

    capacity: Capacity
    rate: float
    p50_first_half_ms: float
    p50_second_half_ms: float


def overloads(found: list[Capacity]) -> list[Overload]:
    """For each configuration with a capacity, its lowest step that broke, where both halves were measured."""
    seen = []
    for c in found:
        halves = [(s.offered, s.arrivals.p50_first_half_ms, s.arrivals.p50_second_half_ms)
                  for s in c.steps if s.broke and s.arrivals]  # fmt: skip
        broke = [(rate, first, second) for rate, first, second in halves if first and second and second > GREW * first]
        if c.ranked and broke:
            rate, first, second = min(broke)
            seen.append(Overload(c, rate, first, second))
    return seen
