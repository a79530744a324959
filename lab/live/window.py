"""A stretch of the live lab between two samples, measured as the bench measures a run: the server's CPU
(per request, against its limit, throttled), the load generator's and the whole machine's. The Lab tab
reads the last few seconds of it; a kept run reads the whole window since the statistics were reset."""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.cgroup import CpuUsage
from lab.results.record import LoadGenerator, LocustStats, Measured, ServerCpu
from lab.results.request_timeline import TimelineSummary
from lab.stack import machine_cpu


@dataclass(frozen=True)
class Sample:
    """One second's readings: cumulative counters, subtracted pairwise."""

    at: float  # wall clock, as Locust's window and the server's timeline
    server: CpuUsage
    machine: machine_cpu.MachineCpu
    postgres: float | None
    load_generator: dict[str, float] = field(default_factory=dict)  # CPU seconds by process (container)
    requests: int = 0  # Locust's, since its last reset
    failures: int = 0
    users: int = 0
    active_connections: int | None = None


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else max(0.0, after - before)


def server_cpu(first: Sample, last: Sample) -> ServerCpu:
    seconds = max(last.at - first.at, 1e-9)
    requests = last.requests - first.requests
    cpu = max(0.0, last.server.cpu_seconds - first.server.cpu_seconds)
    throttled = _delta(last.server.throttled_seconds, first.server.throttled_seconds)
    before, after = first.server.nr_throttled, last.server.nr_throttled
    return ServerCpu(
        cpu_seconds=round(cpu, 4),
        cpu_seconds_per_request=round(cpu / requests, 6) if requests > 0 else None,
        nr_throttled=None if before is None or after is None else after - before,
        throttled_seconds=None if throttled is None else round(throttled, 4),
        utilisation=round(cpu / seconds, 4),
    )


def load_generator(first: Sample, last: Sample, processes: int, warned: bool) -> LoadGenerator:
    """Its CPU over the stretch; utilisation is the busiest process's share of a core (one busy worker of
    several bounds the run as surely as one alone)."""
    seconds = max(last.at - first.at, 1e-9)
    common = first.load_generator.keys() & last.load_generator.keys()
    used = {name: max(0.0, last.load_generator[name] - first.load_generator[name]) for name in common}
    return LoadGenerator(
        cpu_seconds=round(sum(last.load_generator.values()), 3) if last.load_generator else None,
        processes=processes,
        utilisation=round(max(used.values()) / seconds, 3) if used else None,
        window_cpu_seconds=round(sum(used.values()), 3) if used else None,
        locust_warned_cpu=warned,
    )


def live_locust(first: Sample, last: Sample) -> LocustStats:
    """The little of Locust's statistics the live figures need: counts and rate over the stretch (a kept
    run has its percentiles from Locust's own histograms)."""
    seconds = max(last.at - first.at, 1e-9)
    requests, failures = last.requests - first.requests, last.failures - first.failures
    return LocustStats(requests=requests, failures=failures, failure_ratio=round(failures / requests, 4) if requests else None,
                       p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None, max_ms=0.0, rps=round(requests / seconds, 3),
                       measured_seconds=round(seconds, 3))  # fmt: skip


def measured(
    first: Sample, last: Sample, locust: LocustStats, *, processes: int, warned: bool = False,
    timeline: TimelineSummary | None = None,
) -> Measured:  # fmt: skip
    """What `measure` gives the bench, for the stretch between two samples."""
    server = server_cpu(first, last)
    loadgen = load_generator(first, last, processes, warned)
    parts = {"server": server.cpu_seconds, "postgres": _delta(last.postgres, first.postgres),
             "load_generator": loadgen.window_cpu_seconds}  # fmt: skip
    return Measured(locust, server, loadgen, timeline, machine_cpu.window(first.machine, last.machine, parts))
