"""Judging a measured run: was the load generator or the machine, not the server, the bottleneck;
did replies wait for delayed ACKs; did too many requests fail. Each finding is worded here once,
for the terminal, the record and the report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lab import timeline as requests_timeline
from lab.experiments import RunConfig
from lab.report.model import parallelism

SATURATED = 0.85  # a load-generating process above this share of a core bounds the measurement
MAX_FAILURE_RATIO = 0.05
MACHINE_SHARE = 0.9  # on a saturated machine, a server below this share of its CPU ceiling was starved


@dataclass(frozen=True)
class Judgement:
    """What bounded a run, if not the server: the load generator or the whole machine."""

    load_generator: bool
    machine: bool
    warnings: list[str]


def judge(config: RunConfig, result: dict[str, Any], processes: int) -> Judgement:
    """Was the load generator, or the machine the server shares, the bottleneck? Say so, with the figures."""
    warnings, loadgen, server = [], result["load_generator"], result["server"]
    bounded = False
    if loadgen["utilisation"] is not None and loadgen["utilisation"] >= SATURATED:
        bounded = True
        warnings.append(
            f"the load generator used {loadgen['utilisation']:.0%} of a core per process: "
            "throughput is bounded by Locust, not the server (add locust_processes, or fewer users)"
        )
    if loadgen.get("locust_warned_cpu"):
        bounded = True
        warnings.append("Locust itself warned that its CPU usage was above 90%")
    if (
        config.workload == "cpu"
        and config.cpus
        and server["utilisation"] < 0.5 * min(config.cpus, os.cpu_count() or 1)
        and loadgen["utilisation"]
        and loadgen["utilisation"] > 0.7
    ):
        bounded = True
        warnings.append(
            f"the server was idle {1 - server['utilisation'] / config.cpus:.0%} of its CPU limit "
            "while Locust was busy: the users waited on the load generator"
        )
    # The machine was full, and the server got less CPU than it could have used: the other parts had it.
    cores = os.cpu_count() or 1
    ceiling = parallelism(processes, config.cpus, cores)
    whole = result["machine_cpu"]
    machine = bool(whole["saturated"]) and server["utilisation"] < MACHINE_SHARE * ceiling
    if machine:
        parts = whole["parts_cpu_seconds"]
        shares = ", ".join(
            f"{name.replace('_', ' ')} {v / whole['cpu_seconds']:.0%}" for name, v in parts.items() if v is not None
        )
        warnings.append(
            f"the machine had {whole['idle_share']:.0%} of its {cores} cores idle ({shares}), and the server used "
            f"{server['utilisation']:.2f} of the {ceiling:g} CPU it could: throughput is bounded by the machine, not the server"
        )
    return Judgement(bounded, machine, warnings)


def delayed_ack_warning(result: dict[str, Any]) -> str | None:
    held = requests_timeline.delayed_ack(result["timeline"] or {})
    if held is None:
        return None
    cause = requests_timeline.DELAYED_ACK_CAUSE
    return f"every reply reached the client a steady {held:.0f} ms after its handler ended: {cause}"


def failure(result: dict[str, Any]) -> str | None:
    """Why a measured run does not count, or None when it does."""
    locust = result["locust"]
    ratio = locust["failure_ratio"]
    if not locust["requests"]:
        return "no request completed in the measured window"
    if ratio is not None and ratio > MAX_FAILURE_RATIO:
        top = locust["errors"][:1]
        why = f": {top[0]['occurrences']} x {top[0]['error']}" if top else ""
        return f"too many errors: {ratio:.1%} of requests failed{why}"
    return None
