"""Judging a measured run: was the load generator or the machine, not the server, the bottleneck;
did replies wait for delayed ACKs; did too many requests fail. Each finding is worded here once,
for the terminal, the record and the report."""

from __future__ import annotations

import os
from dataclasses import replace

from lab.analysis.model.bounds import parallelism
from lab.results import request_timeline
from lab.results.experiments import RunConfig
from lab.results.record import (
    DelayedAck,
    Finding,
    LoadGeneratorBusy,
    LocustWarnedCpu,
    MachineSaturated,
    Measured,
    RunRecord,
    ServerWaitedOnLoadGenerator,
    WorkersReplaced,
)

SATURATED = 0.85  # a load-generating process above this share of a core bounds the measurement
MAX_FAILURE_RATIO = 0.05
MACHINE_SHARE = 0.9  # on a saturated machine, a server below this share of its CPU ceiling was starved


def findings(config: RunConfig, result: Measured, processes: int) -> list[Finding]:
    """What bounded a run if not the server (the load generator, or the machine the server shares), and
    whether its replies waited for delayed ACKs: each with its figures."""
    found: list[Finding] = []
    loadgen, server, cpus = result.load_generator, result.server, config.knobs.cpus
    used = server.utilisation or 0.0
    if loadgen.utilisation is not None and loadgen.utilisation >= SATURATED:
        found.append(LoadGeneratorBusy(loadgen.utilisation))
    if loadgen.locust_warned_cpu:
        found.append(LocustWarnedCpu())
    if (
        config.knobs.workload == "cpu"
        and cpus
        and used < 0.5 * min(cpus, os.cpu_count() or 1)
        and loadgen.utilisation
        and loadgen.utilisation > 0.7
    ):
        found.append(ServerWaitedOnLoadGenerator(round(1 - used / cpus, 3)))
    # The machine was full, and the server got less CPU than it could have used: the other parts had it.
    cores = os.cpu_count() or 1
    ceiling = parallelism(processes, cpus, cores)
    whole = result.machine_cpu
    if whole is not None and whole.saturated and used < MACHINE_SHARE * ceiling:
        shares = {name: round(v / whole.cpu_seconds, 3) for name, v in whole.parts_cpu_seconds.items() if v is not None}
        found.append(MachineSaturated(whole.idle_share, cores, shares, used, ceiling))
    held = request_timeline.delayed_ack(result.timeline)
    if held is not None:
        found.append(DelayedAck(held))
    return found


def judged(record: RunRecord, found: list[Finding], reason: str | None) -> RunRecord:
    """A measured run's record with its findings, what bounded it and its warnings in words, and its status: failed
    for `reason`, else ok. The bench's runs and the runs kept from the Lab page are judged here alike."""
    return replace(record, findings=tuple(found), bounded_by_load_generator=bounded_by_load_generator(found),
                   bounded_by_machine=any(isinstance(f, MachineSaturated) for f in found),
                   warnings=tuple(word(f) for f in found), reason=reason, status="failed" if reason else "ok")  # fmt: skip


def bounded_by_load_generator(found: list[Finding]) -> bool:
    return any(isinstance(finding, LoadGeneratorBusy | LocustWarnedCpu | ServerWaitedOnLoadGenerator) for finding in found)


def word(finding: Finding) -> str:
    """A finding in the words the terminal, the record's warnings and the report share."""
    match finding:
        case LoadGeneratorBusy(utilisation=share):
            return (f"the load generator used {share:.0%} of a core per process: throughput is bounded by "
                    "Locust, not the server (add locust_processes, or fewer users)")  # fmt: skip
        case LocustWarnedCpu():
            return "Locust itself warned that its CPU usage was above 90%"
        case ServerWaitedOnLoadGenerator(idle=idle):
            return (f"the server was idle {idle:.0%} of its CPU limit while Locust was busy: the users waited on "
                    "the load generator")  # fmt: skip
        case MachineSaturated():
            shares = ", ".join(f"{name.replace('_', ' ')} {share:.0%}" for name, share in finding.shares.items())
            idle_share = "?" if finding.idle_share is None else f"{finding.idle_share:.0%}"
            return (f"the machine had {idle_share} of its {finding.cores} cores idle ({shares}), and the server "
                    f"used {finding.server_cpu:.2f} of the {finding.ceiling:g} CPU it could: throughput is bounded by the "
                    "machine, not the server")  # fmt: skip
        case WorkersReplaced(gone=gone, new=new):
            pids = ", ".join(
                f"{w.pid}" + (f" (last answer {w.last_answer_s:g} s into the run)" if w.last_answer_s is not None else "")
                for w in gone
            )
            return (f"worker process(es) {pids} died during the run and the server replaced them with {list(new)}: "
                    "the figures include the time it ran with fewer workers")  # fmt: skip
        case DelayedAck(ms=ms):
            cause = request_timeline.DELAYED_ACK_CAUSE
            return f"every reply reached the client a steady {ms:.0f} ms after its handler ended: {cause}"


def failure(result: Measured) -> str | None:
    """Why a measured run does not count, or None when it does."""
    locust = result.locust
    ratio = locust.failure_ratio
    if not locust.requests:
        return "no request completed in the measured window"
    if ratio is not None and ratio > MAX_FAILURE_RATIO:
        top = locust.errors[:1]
        why = f": {top[0].occurrences} x {top[0].error}" if top else ""
        return f"too many errors: {ratio:.1%} of requests failed{why}"
    return None
