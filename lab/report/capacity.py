"""Capacity searches, from their step records alone: each configuration's capacity at its latency target
beside the model's saturation, which holds the most load, and how the queue grew past capacity.
lab.report.words says each."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from contract.modes import MODES
from lab.model.runs import saturation
from lab.record import CapacityStep, OpenArrivals, RunRecord
from lab.report.rows import label


@dataclass(frozen=True)
class Step:
    """One step of a capacity search, from its record: the rate asked for, its verdict and open arrivals."""

    rate: float
    step: CapacityStep
    arrivals: OpenArrivals | None

    @property
    def held(self) -> bool:
        return self.step.held

    @property
    def broke(self) -> bool:
        return self.step.broke


@dataclass(frozen=True)
class Capacity:
    """One configuration's capacity search."""

    label: str
    mode: str
    workload: str
    cpus: float
    slo_ms: float
    steps: list[Step]  # by rate
    capacity: float | None  # the highest rate held below one that broke
    model: float | None  # the throughput model's saturation

    @property
    def ratio(self) -> float | None:
        return self.capacity / self.model if self.capacity and self.model else None

    @property
    def development(self) -> bool:
        return MODES[self.mode].development


def capacities(records: list[RunRecord]) -> list[Capacity]:
    groups: dict[tuple[str, str, float, float], list[tuple[RunRecord, CapacityStep]]] = defaultdict(list)
    for record in records:
        if record.capacity_step:
            k, step = record.config.knobs, record.capacity_step
            groups[(label(record.config), k.workload, k.cpus, step.slo_p95_ms)].append((record, step))
    found = []
    for (name, workload, cpus, slo), steps in groups.items():
        rows = sorted((Step(r.config.arrival_rate, step, r.measured.locust.open if r.measured else None) for r, step in steps),
                      key=lambda step: step.rate)  # fmt: skip
        held = [step.rate for step in rows if step.held]
        model = next((m for m in (saturation(r) for r, _ in steps) if m), None)
        # nothing broke: the highest rate held is a lower bound, never a capacity to rank
        capacity = max(held) if held and any(step.broke for step in rows) else None
        found.append(Capacity(name, steps[0][0].config.knobs.mode, workload, cpus, slo, rows, capacity, model))
    return found


@dataclass(frozen=True)
class CapacityPick:
    """At one workload, CPU limit and target: the production configuration that holds the most, and the
    others by capacity (none: no production configuration has a capacity)."""

    workload: str
    cpus: float
    slo_ms: float
    best: Capacity | None
    others: list[Capacity]


def capacity_picks(found: list[Capacity]) -> list[CapacityPick]:
    """Which configuration holds the most load at the target, per workload and CPU limit; development
    servers measured, never picked."""
    groups: dict[tuple[str, float, float], list[Capacity]] = defaultdict(list)
    for c in found:
        groups[(c.workload, c.cpus, c.slo_ms)].append(c)
    picked = []
    for (workload, cpus, slo), group in sorted(groups.items()):
        ranked = sorted((c for c in group if c.capacity), key=lambda c: -(c.capacity or 0))
        best = next((c for c in ranked if not c.development), None)
        picked.append(CapacityPick(workload, cpus, slo, best, [c for c in ranked if c is not best] if best else []))
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
        halves = [
            (s.rate, s.arrivals.p50_first_half_ms, s.arrivals.p50_second_half_ms) for s in c.steps if s.broke and s.arrivals
        ]
        broke = [(rate, first, second) for rate, first, second in halves if first and second]
        if c.capacity and broke:
            rate, first, second = min(broke)
            seen.append(Overload(c, rate, first, second))
    return seen
