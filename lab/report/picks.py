"""Which configuration to pick, decided from the rows: for each workload and for a mix, at the setting
the runs share, and where another CPU limit changes it; with the model's reason. Development servers
are measured but never picked. lab.report.words says each."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from lab.analysis.model.bounds import CONCURRENCY, CPU
from lab.report.rows import Row, baseline, compared, level, served_at

PURE = ("io", "cpu")  # the workloads picked apart; a mix is picked from its own runs


@dataclass(frozen=True)
class InFlight:
    """Concurrency binds: the pick holds this many of the users' requests in flight at once."""

    in_flight: int
    users: int


@dataclass(frozen=True)
class CpuBinds:
    """The CPU binds: what caps the CPU of Python at once, and the pick's CPU per request."""

    cap: str  # limit, processes or cores
    cpus: float
    processes: int
    cores: int
    parallelism: float
    per_request_s: float
    least: bool  # no run of the group used clearly less CPU per request (intervals apart)


Why = InFlight | CpuBinds


@dataclass(frozen=True)
class NoPick:
    """Every run of a workload at the compared setting was bounded by something else."""

    workload: str
    bounded_by: str


@dataclass(frozen=True)
class Pick:
    workload: str
    users: int
    cpus: float  # the CPU limit it was picked at
    row: Row
    tied: list[str]  # labels level with it in throughput, that it beat on p95
    why: Why | None
    changed: bool = False  # at another CPU limit than the compared one, where the pick differs
    one_limit: bool = False  # only this CPU limit was measured, and the CPU binds: more could change it
    faster_development: Row | None = None  # a development server that served more


@dataclass(frozen=True)
class NoMix:
    """No mix run was measured."""


@dataclass(frozen=True)
class MixPick:
    share: float  # of cpu requests
    users: int
    cpus: float
    row: Row
    tied: list[str]
    worst: Row | None  # a run whose io requests took far longer (1.5x the pick's p95)


Advice = NoPick | Pick | NoMix | MixPick


def picks(rows: list[Row]) -> list[Advice]:
    ok = [r for r in rows if r.ok]
    if not ok:
        return []
    cpus, users = baseline(ok)
    here = [r for r in compared(ok) if not r.bounded_by]  # a bounded run's throughput is not the server's
    others = sorted({r.knobs.cpus for r in served_at(ok, users)} - {cpus})
    usual: dict[str, Pick] = {}
    found: list[Advice] = []
    for workload in PURE:
        group = [r for r in here if r.knobs.workload == workload and not r.development]
        bounded = [r for r in compared(ok) if r.knobs.workload == workload and r.bounded_by]
        if not group:
            found += [NoPick(workload, bounded[0].bounded_by or "")] if bounded else []
            continue
        pick = usual[workload] = _pick(group, workload, users, cpus)
        dev = max((r for r in here if r.knobs.workload == workload and r.development), key=lambda r: r.rps, default=None)
        one_limit = bool(cpus and not others and pick.row.prediction is not None and pick.row.prediction.binding == CPU)
        faster = dev if dev is not None and dev.rps_interval.above(pick.row.rps_interval.high) else None
        found.append(replace(pick, one_limit=one_limit, faster_development=faster))
    for other in others:
        for workload, was in usual.items():
            group = [
                r for r in served_at(ok, users) if r.knobs.cpus == other and r.knobs.workload == workload and not r.bounded_by
            ]
            if group and was.row.label not in {r.label for r in level(group)}:  # a pick level with the usual one is noise
                found.append(replace(_pick(group, workload, users, other), changed=True))
    return found + mix_picks([r for r in served_at(ok, users) if not r.bounded_by], users)


def _pick(group: list[Row], workload: str, users: int, cpus: float) -> Pick:
    """The most throughput; among runs level with it, the lowest p95 latency."""
    tied = level(group)
    best = min(tied, key=lambda r: r.p95_ms)
    return Pick(workload, users, cpus, best, [r.label for r in tied if r is not best], why(best, group))


def why(pick: Row, group: list[Row]) -> Why | None:
    """The model's reason a pick leads: its requests in flight, or its CPU per request when the CPU binds."""
    x, model = pick.prediction, pick.record.model
    if x is None or model is None:
        return None
    if x.binding == CONCURRENCY:
        return InFlight(x.in_flight, pick.knobs.users)
    per_request = pick.cpu_interval.estimate
    clearly_less = [r for r in group if r.cpu_interval.below(pick.cpu_interval.low)]
    cpus, processes, cores = pick.knobs.cpus, model.processes, pick.record.machine.cores_available or 1
    # what sets P, the CPUs of Python at once: never a CPU limit that was not set
    cap = "limit" if cpus and cpus <= min(processes, cores) else "processes" if processes <= cores else "cores"
    return CpuBinds(cap, cpus, processes, cores, x.parallelism, per_request, not clearly_less)


def mix_picks(served: list[Row], users: int) -> list[Advice]:
    """For a mix of io and cpu, only from measured mix runs: the most throughput, and among runs level
    with it the lowest io p95 (the many io requests are the ones a prime count holds up)."""
    mixes = [r for r in served if r.knobs.workload == "mix"]
    if not mixes:
        return [NoMix()]
    groups: dict[tuple[float, float], list[Row]] = defaultdict(list)
    for row in mixes:
        groups[(row.knobs.cpus, row.knobs.mix_cpu_share)].append(row)
    found: list[Advice] = []
    for (cpus, share), group in sorted(groups.items()):
        tied = level(group)
        pick = min(tied, key=lambda r: r.io_p95)
        worst = max(group, key=lambda r: r.io_p95)
        slow = worst if worst is not pick and worst.io_p95 > 1.5 * pick.io_p95 else None
        found.append(MixPick(share, users, cpus, pick, [r.label for r in tied if r is not pick], slow))
    return found
