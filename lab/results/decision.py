"""What deciding how to serve an app keeps, typed, with its one reading and writing of JSON: each path's
figures alone at one user (paths.json), and the decision (decision.json): the demand, the budget, the
candidates with what each held, and the time it took against the time it promised.

The bench writes them (lab.bench.decide); the report reads them (lab.report.deploy), from the results
folder alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from lab.analysis.model.deploy import Budget, Candidate, Demand, Interface, NotTried, PathDemand
from lab.results.folder import RecordError, ResultsFolder, write_json
from lab.results.typedjson import JsonError, read


@dataclass(frozen=True)
class PathFigures:
    """One path of PATHS alone at one user: its latency, its CPU and memory, and so its wait."""

    path: str
    weight: int
    served_by: str  # the configuration it was measured in
    requests: int
    p50_ms: float | None  # the client's latency, with its interval (None: a side the requests cannot bound)
    p50_low_ms: float | None
    p50_high_ms: float | None
    handler_ms: float  # mean time in the server, handler start to end
    cpu_ms: float  # the server's CPU per request (its cgroup, or its process tree)
    wait_ms: float  # handler time not spent on CPU
    rss_mb: float | None  # resident memory per worker process after serving it (the server's report)
    record: str  # the run's record, relative to the results folder

    @property
    def wait_share(self) -> float:
        return self.wait_ms / self.handler_ms if self.handler_ms > 0 else 0.0

    def demand(self) -> PathDemand:
        return PathDemand(self.path, self.weight, self.cpu_ms / 1000, self.wait_ms / 1000, self.rss_mb)


@dataclass(frozen=True)
class Tried:
    """One candidate: its closed loop, and its capacity at the target (a range of offered rates)."""

    candidate: Candidate
    users: int  # the closed loop's: enough to reach the model's saturation
    closed_rps: float | None  # None: the run failed (`failed` says why)
    closed_rps_low: float | None
    closed_rps_high: float | None
    closed_p95_ms: float | None
    failed: str | None
    capacity: str  # the range in words
    capacity_low_rps: float | None  # the highest offered rate that held
    capacity_high_rps: float | None  # the lowest that broke
    capacity_estimate_rps: float | None  # where p95 crosses the target along the steps
    lower_bound_only: bool
    steps: int
    seconds: float
    measured_mb: float | None = None  # its workers' resident memory together, after its closed loop (its server's report)

    def memory_mb(self, demand: Demand) -> float | None:
        """What it takes in memory: as measured in its own closed loop, else workers x the plainest server's worker."""
        return self.measured_mb if self.measured_mb is not None else self.candidate.memory_mb(demand)


@dataclass(frozen=True)
class Decision:
    app: str
    interface: Interface
    demand: Demand
    budget: Budget
    slo_p95_ms: float
    time_budget_s: float  # said before anything started
    steps: int  # the most steps each capacity search was given, to fit the time budget
    tried: list[Tried]
    not_tried: list[NotTried]
    took_s: float


def write_paths(folder: Path, found: list[PathFigures]) -> None:
    write_json(ResultsFolder(folder).path_figures, found)


def write_decision(folder: Path, decision: Decision) -> None:
    write_json(ResultsFolder(folder).decision, decision)


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: not readable ({error})") from None


def read_paths(folder: Path) -> list[PathFigures] | None:
    """paths.json of a results folder, or None where there is none."""
    path = ResultsFolder(folder).path_figures
    if not path.exists():
        return None
    data = _read(path)
    if not isinstance(data, list):
        raise RecordError(f"{path}: not a list of paths")
    try:
        return [read(PathFigures, item, f"paths[{i}]") for i, item in enumerate(data)]
    except JsonError as error:
        raise RecordError(f"{path}: {error}") from None


def read_decision(folder: Path) -> Decision | None:
    """decision.json of a results folder, or None where there is none."""
    path = ResultsFolder(folder).decision
    if not path.exists():
        return None
    try:
        decision = read(Decision, _read(path))
    except JsonError as error:
        raise RecordError(f"{path}: {error}") from None
    # a decision written before candidates carried their interface keeps it at the top only
    kind = decision.interface
    return replace(
        decision,
        tried=[replace(t, candidate=replace(t.candidate, interface=kind)) for t in decision.tried],
        not_tried=[replace(n, candidate=replace(n.candidate, interface=kind)) for n in decision.not_tried],
    )
