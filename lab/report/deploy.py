"""Which configuration to deploy an app in, decided from its decision.json alone: the one holding the most
load at the latency target, judged on the capacity ranges (ranges that overlap are level, and then the
fewer processes and the less memory win), never a development server, never one over MEMORY; the
runner-up; and what change of the app's waits or CPU would make the model rank another above it.
lab.report.words says each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from contract.modes import MODES
from lab.analysis.model.bounds import Prediction
from lab.analysis.model.deploy import OVERTAKES, Change, bound, changes
from lab.analysis.stats import Interval, level
from lab.results.decision import Decision, PathFigures, Tried, read_decision, read_paths

SAID_CHANGES = 3  # the nearest changes worth saying
Basis = Literal["capacity", "closed_loop"]


@dataclass(frozen=True)
class Held:
    """A candidate as the pick judges it: what it held at the target, as an interval of rates."""

    tried: Tried
    capacity: Interval  # the load it held at the target; its closed loop's throughput where no search found one
    model: Prediction
    memory_mb: float | None

    @property
    def label(self) -> str:
        return self.tried.candidate.label

    @property
    def processes(self) -> int:
        return self.tried.candidate.processes()


@dataclass(frozen=True)
class Left:
    """A candidate the pick leaves out, and why."""

    label: str
    why: Literal["development", "memory", "no_capacity", "failed"]


@dataclass(frozen=True)
class Prefers:
    """A candidate the model alone ranks clearly above the pick, today: the measured capacity decided otherwise."""

    label: str
    model_rps: float
    pick_model_rps: float


@dataclass(frozen=True)
class Deploy:
    decision: Decision
    pick: Held | None
    runner_up: Held | None
    level_with: list[str]  # candidates level with the pick, which it beat on processes or memory
    left_out: list[Left]
    changes: list[Change]
    model_prefers: list[Prefers]  # candidates the model alone ranks above the pick, which held less
    basis: Basis = "capacity"  # what the pick was judged on: capacity ranges, or (none found) closed loops


def held(tried: Tried) -> Interval | None:
    """What a candidate held as an interval of offered rates: between the highest that held and the lowest
    that broke; from the highest that held up when nothing broke; below the lowest that broke when nothing
    held. The estimate is where p95 crossed the target when that lies inside, else the middle."""
    low, high = tried.capacity_low_rps, tried.capacity_high_rps
    if low is not None and high is not None:
        a, b = sorted((low, high))
        crossed = tried.capacity_estimate_rps
        return Interval(crossed if crossed is not None and a <= crossed <= b else (a + b) / 2, a, b)
    if low is not None:
        return Interval(low, low, math.inf)
    if high is not None:
        return Interval(high / 2, 0.0, high)
    return None


def order(candidates: list[Held]) -> list[Held]:
    """Most load held first; among those level with the best, fewer processes, then less memory, then more load."""
    if not candidates:
        return []
    best = max(candidates, key=lambda h: h.capacity.estimate)
    tied = [h for h in candidates if level(h.capacity, best.capacity)]
    rest = sorted((h for h in candidates if h not in tied), key=lambda h: -h.capacity.estimate)
    return sorted(tied, key=lambda h: (h.processes, h.memory_mb or 0.0, -h.capacity.estimate)) + rest


def served(tried: Tried) -> Interval | None:
    """What a candidate's closed loop served, with its interval (a side the run could not bound left open)."""
    if tried.closed_rps is None:
        return None
    low, high = tried.closed_rps_low, tried.closed_rps_high
    return Interval(tried.closed_rps, -math.inf if low is None else low, math.inf if high is None else high)


def deploy(decision: Decision) -> Deploy:
    """The pick on the capacity ranges; where no search found a range within the time budget, on the closed
    loops' throughput instead (said so: it is not the load held at the target)."""
    kept: list[tuple[Tried, float | None]] = []
    left: list[Left] = []
    memory = decision.budget.memory_mb
    for tried in decision.tried:
        c = tried.candidate
        mb = tried.memory_mb(decision.demand)
        if MODES[c.mode].development:
            left.append(Left(c.label, "development"))
        elif memory is not None and mb is not None and mb > memory:
            left.append(Left(c.label, "memory"))
        else:
            kept.append((tried, mb))
    basis: Basis = "capacity" if any(held(t) for t, _ in kept) else "closed_loop"
    judged = held if basis == "capacity" else served
    measured: list[Held] = []
    for tried, mb in kept:
        if (interval := judged(tried)) is None:
            left.append(Left(tried.candidate.label, "no_capacity" if basis == "capacity" else "failed"))
        else:
            model = bound(tried.candidate, decision.interface, decision.demand, decision.budget)
            measured.append(Held(tried, interval, model, mb))
    ranked = order(measured)
    if not ranked:
        return Deploy(decision, None, None, [], left, [], [], basis)
    pick, runner = ranked[0], ranked[1] if len(ranked) > 1 else None
    tied = [h.label for h in ranked[1:] if level(h.capacity, pick.capacity)]
    others = [h.tried.candidate for h in ranked[1:]]
    found = changes(pick.tried.candidate, others, decision.interface, decision.demand, decision.budget)[:SAID_CHANGES]
    prefers = [Prefers(h.label, h.model.throughput, pick.model.throughput) for h in ranked[1:]
               if h.model.throughput > OVERTAKES * pick.model.throughput]  # fmt: skip
    return Deploy(decision, pick, runner, tied, left, found, prefers, basis)


def read(folder: Path) -> tuple[Deploy, list[PathFigures]] | None:
    """The decision of a results folder, with its paths' figures; None where the folder decided nothing."""
    decision = read_decision(folder)
    if decision is None:
        return None
    return deploy(decision), read_paths(folder) or []
