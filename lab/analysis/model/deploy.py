"""Which ways of serving an app are worth measuring, from what its requests cost, and what would change the answer.

An app's demand is what one request costs on average over its paths (weighted as PATHS weights them):
D_cpu, the CPU seconds it runs Python, and W, the seconds its handler waits (its server-side time less
its CPU). Within a CPU budget the throughput model (lab.analysis.model.bounds) gives each configuration's
saturation, min(C / (W + D_cpu), P / D_cpu). Keeping the budget's CPUs busy takes about
P x (W + D_cpu) / D_cpu requests in flight (Little's law at the CPU bound): the concurrency the
candidates are sized to. The candidates are a handful of shapes, each for a reason, never every
combination: one process per CPU (enough when the CPU binds), threads or processes to hold the
requests in flight that the waits need, an event loop for an ASGI app, and the same shapes on
Granian's Rust server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from contract.modes import MODES
from lab.analysis.model.bounds import Prediction, parallelism, predict

OPEN = 10**9  # requests in flight no server limits: an event loop's
MAX_THREADS = 64  # threads per process worth trying: past this a GIL holds them up more than waits do
MAX_WORKERS = 16  # processes worth trying, before memory says otherwise
MAX_CANDIDATES = 4  # what a decision's time budget holds on two cores

# Why a candidate is worth trying: one process per CPU (the CPU binds), threads or processes for the
# requests in flight the waits need, an event loop per CPU (ASGI), or Granian's shape of the same.
Reason = Literal["cpu", "threads", "processes", "event_loop", "rust"]
Interface = Literal["wsgi", "asgi"]


@dataclass(frozen=True)
class PathDemand:
    """One path of PATHS, measured alone at one user."""

    path: str
    weight: int
    d_cpu_s: float
    wait_s: float
    rss_mb: float | None  # per worker process, after serving it


@dataclass(frozen=True)
class Demand:
    """The mean cost of one request of the app, over its paths by weight."""

    d_cpu_s: float
    wait_s: float
    rss_mb: float | None

    @property
    def service_s(self) -> float:
        return self.d_cpu_s + self.wait_s

    @property
    def wait_share(self) -> float:
        return self.wait_s / self.service_s if self.service_s > 0 else 0.0


def mean_demand(paths: Sequence[PathDemand]) -> Demand:
    """The weighted mean over the paths; memory is the largest any path left a worker with."""
    total = sum(p.weight for p in paths)
    if not paths or total <= 0:
        raise ValueError("at least one path with a weight")
    rss = [p.rss_mb for p in paths if p.rss_mb is not None]
    return Demand(sum(p.weight * p.d_cpu_s for p in paths) / total, sum(p.weight * p.wait_s for p in paths) / total,
                  max(rss) if rss else None)  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """What the app may use: CPUS (0: no limit), the machine's cores, and memory in MB (None: no budget)."""

    cpus: float
    cores: int
    memory_mb: float | None = None

    @property
    def processes(self) -> int:
        """Processes that keep the budget's CPUs busy: one per CPU it allows, a fraction rounded up."""
        return max(1, math.ceil(min(self.cpus or self.cores, self.cores)))


@dataclass(frozen=True)
class Candidate:
    mode: str
    workers: int
    threads: int
    reason: Reason
    needed: float  # requests in flight the budget's CPUs need at this demand
    interface: Interface = "wsgi"

    @property
    def label(self) -> str:
        server = MODES[self.mode]
        if self.mode == "gunicorn" and self.interface == "asgi":  # Uvicorn's worker: an event loop, no threads
            return f"gunicorn+uvicorn ×{self.workers}"
        if server.default_threads is not None:
            return f"{self.mode} {self.workers}×{self.threads}"
        return f"{self.mode} ×{self.workers}" if server.default_workers is not None else self.mode

    def in_flight(self, interface: Interface) -> int:
        """C: an event loop holds any number of waiting requests; a thread or sync worker one each."""
        return OPEN if interface == "asgi" else MODES[self.mode].in_flight(self.workers, self.threads, OPEN)

    def processes(self) -> int:
        return MODES[self.mode].processes(self.workers, self.threads, OPEN)

    def memory_mb(self, demand: Demand) -> float | None:
        return None if demand.rss_mb is None else self.workers * demand.rss_mb


@dataclass(frozen=True)
class NotTried:
    """A shape the figures rule out, and why: over the memory budget, or no better than one tried."""

    candidate: Candidate
    why: Literal["memory", "same_as_tried", "no_more_cpu", "over_count"]


@dataclass(frozen=True)
class Choice:
    tried: list[Candidate]
    not_tried: list[NotTried]


def bound(candidate: Candidate, interface: Interface, demand: Demand, budget: Budget) -> Prediction:
    """The throughput model's saturation for this candidate at this demand (open arrivals: no user limit)."""
    return predict(users=OPEN, in_flight=candidate.in_flight(interface), processes=candidate.processes(),
                   cpus=budget.cpus, cores=budget.cores, d_io=demand.wait_s, d_cpu=demand.d_cpu_s)  # fmt: skip


def needed_in_flight(demand: Demand, budget: Budget) -> float:
    """Requests in flight that keep the budget's CPUs busy: P x (W + D_cpu) / D_cpu (Little's law)."""
    p = parallelism(budget.processes, budget.cpus, budget.cores)
    return p * demand.service_s / demand.d_cpu_s


def _shapes(interface: Interface, demand: Demand, budget: Budget) -> list[Candidate]:
    """Every shape worth a thought, most promising first by reason; the model and memory then choose."""
    procs = budget.processes
    needed = needed_in_flight(demand, budget)
    per_process = min(MAX_THREADS, max(1, math.ceil(needed / procs)))
    if interface == "asgi":
        return [
            Candidate("async", 1, 1, "event_loop", needed, interface),
            Candidate("async-workers", procs, 1, "event_loop", needed, interface),
            Candidate("granian-asgi", procs, 1, "rust", needed, interface),
            Candidate("gunicorn", procs, 1, "event_loop", needed, interface),  # Uvicorn's worker under Gunicorn
        ]
    return [
        Candidate("gunicorn", procs, 1, "cpu", needed),
        Candidate("gthread", procs, max(2, per_process), "threads", needed),
        Candidate("gunicorn", min(MAX_WORKERS, max(procs, math.ceil(needed))), 1, "processes", needed),
        Candidate("granian", procs, per_process, "rust", needed),
    ]


def candidates(interface: Interface, demand: Demand, budget: Budget, most: int = MAX_CANDIDATES) -> Choice:
    """The configurations worth measuring within the budget, at most `most`, best model saturation first
    (fewer processes first among equals), and the others with why not."""
    tried: list[Candidate] = []
    not_tried: list[NotTried] = []
    limit = budget.memory_mb
    for shape in _shapes(interface, demand, budget):
        memory = shape.memory_mb(demand)
        if shape.mode == "async-workers" and budget.processes == 1:  # one CPU: a second loop adds none
            not_tried.append(NotTried(shape, "no_more_cpu"))
        elif shape.reason == "processes" and shape.workers <= budget.processes:  # the waits need no more than the CPUs
            not_tried.append(NotTried(shape, "same_as_tried"))
        elif limit is not None and memory is not None and memory > limit:
            fits = math.floor(limit / demand.rss_mb) if demand.rss_mb else 0
            if shape.reason == "processes" and fits > budget.processes:  # as many as the memory holds
                tried.append(replace(shape, workers=fits))
            else:
                not_tried.append(NotTried(shape, "memory"))
        else:
            tried.append(shape)
    ranked = sorted(tried, key=lambda c: (-bound(c, interface, demand, budget).throughput, c.processes()))
    kept = ranked[:most]
    return Choice(kept, not_tried + [NotTried(c, "over_count") for c in ranked[most:]])


# ---------------------------------------------------------------- what would change the answer

Along = Literal["wait", "cpu"]  # what grows or shrinks: the wait per request, or its CPU
OVERTAKES = 1.01  # the model must give the other this much more to call it ahead, not level
SCAN = 400  # points of the log-spaced scan between a thousandth and a thousand times today's value


@dataclass(frozen=True)
class Change:
    """Past `at_s` of `along` (the wait or the CPU per request), the model ranks `other` above the pick."""

    along: Along
    other: str  # the candidate's label
    now_s: float
    at_s: float
    pick_rps: float  # the model's saturation of each at past_s, just past the crossing
    other_rps: float
    past_s: float


def _demand_at(demand: Demand, along: Along, value: float) -> Demand:
    return replace(demand, wait_s=value) if along == "wait" else replace(demand, d_cpu_s=value)


def crossing(pick: Candidate, other: Candidate, interface: Interface, demand: Demand, budget: Budget,
             along: Along) -> Change | None:  # fmt: skip
    """The nearest value of the wait (or the CPU) per request, up or down from today's, at which the model
    gives `other` clearly more than `pick`; None when it never does within a thousandfold."""
    now = demand.wait_s if along == "wait" else demand.d_cpu_s
    start = max(now, 1e-4 * demand.service_s)  # a wait of zero still grows

    def ahead(value: float) -> bool:
        at = _demand_at(demand, along, value)
        return bound(other, interface, at, budget).throughput > OVERTAKES * bound(pick, interface, at, budget).throughput

    if ahead(now):
        return None  # the model already ranks it higher: the measured capacity decided, not the model
    found: list[tuple[float, float]] = []  # (how far from today, in log, the crossing)
    for direction in (1, -1):
        last = start
        for value in (start * 1000 ** (direction * i / SCAN) for i in range(1, SCAN + 1)):
            if ahead(value):
                found.append((abs(math.log(value / start)), _bisect(ahead, last, value)))
                break
            last = value
    if not found:
        return None
    at = min(found)[1]
    past = at * 1.5 if at > now else at / 1.5
    there = _demand_at(demand, along, past)
    return Change(along, other.label, now, at, bound(pick, interface, there, budget).throughput,
                  bound(other, interface, there, budget).throughput, past)  # fmt: skip


def _bisect(ahead: Callable[[float], bool], behind: float, front: float) -> float:
    """The boundary between a value where the other is not ahead and one where it is."""
    for _ in range(60):
        middle = math.sqrt(behind * front)
        behind, front = (behind, middle) if ahead(middle) else (middle, front)
    return front


def changes(pick: Candidate, others: Sequence[Candidate], interface: Interface, demand: Demand,
            budget: Budget) -> list[Change]:  # fmt: skip
    """For each other candidate, the nearest change of the wait and of the CPU per request that would make
    the model rank it above the pick, nearest first (by how many times today's value it takes)."""
    found = [c for other in others for along in ("wait", "cpu")
             if (c := crossing(pick, other, interface, demand, budget, along)) is not None]  # fmt: skip
    return sorted(found, key=lambda c: abs(math.log(c.at_s / max(c.now_s, 1e-9 * demand.service_s))))
