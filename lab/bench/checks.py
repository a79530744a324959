"""Judging a measured run: was the load generator or the machine, not the server, the bottleneck;
did replies wait for delayed ACKs; did too many requests fail. Each finding is worded here once,
for the terminal, the record and the report."""

from __future__ import annotations

import os
from typing import Any

from lab import timeline as requests_timeline
from lab.bench.measure import Measurement
from lab.experiments import RunConfig
from lab.report.model import parallelism

SATURATED = 0.85  # a load-generating process above this share of a core bounds the measurement
MAX_FAILURE_RATIO = 0.05
MACHINE_SHARE = 0.9  # on a saturated machine, a server below this share of its CPU ceiling was starved


Finding = dict[str, Any]  # {"kind": ..., and its figures}: what a record keeps; `word` says it


def findings(config: RunConfig, result: Measurement, processes: int) -> list[Finding]:
    """What bounded a run if not the server (the load generator, or the machine the server shares), and
    whether its replies waited for delayed ACKs: each with its figures."""
    found: list[Finding] = []
    loadgen, server, cpus = result["load_generator"], result["server"], config.knobs.cpus
    if loadgen["utilisation"] is not None and loadgen["utilisation"] >= SATURATED:
        found.append({"kind": "load_generator_busy", "utilisation": loadgen["utilisation"]})
    if loadgen.get("locust_warned_cpu"):
        found.append({"kind": "locust_warned_cpu"})
    if (
        config.knobs.workload == "cpu"
        and cpus
        and server["utilisation"] < 0.5 * min(cpus, os.cpu_count() or 1)
        and loadgen["utilisation"]
        and loadgen["utilisation"] > 0.7
    ):
        found.append({"kind": "server_waited_on_load_generator", "idle": round(1 - server["utilisation"] / cpus, 3)})
    # The machine was full, and the server got less CPU than it could have used: the other parts had it.
    cores = os.cpu_count() or 1
    ceiling = parallelism(processes, cpus, cores)
    whole = result["machine_cpu"]
    if whole["saturated"] and server["utilisation"] < MACHINE_SHARE * ceiling:
        shares = {name: round(v / whole["cpu_seconds"], 3) for name, v in whole["parts_cpu_seconds"].items() if v is not None}
        found.append({"kind": "machine_saturated", "idle_share": whole["idle_share"], "cores": cores, "shares": shares,
                      "server_cpu": server["utilisation"], "ceiling": ceiling})  # fmt: skip
    held = requests_timeline.delayed_ack(result["timeline"])
    if held is not None:
        found.append({"kind": "delayed_ack", "ms": held})
    return found


LOAD_GENERATOR = {"load_generator_busy", "locust_warned_cpu", "server_waited_on_load_generator"}


def word(finding: Finding) -> str:
    """A finding in the words the terminal, the record's warnings and the report share."""
    kind = finding["kind"]
    if kind == "load_generator_busy":
        return (f"the load generator used {finding['utilisation']:.0%} of a core per process: throughput is bounded by "
                "Locust, not the server (add locust_processes, or fewer users)")  # fmt: skip
    if kind == "locust_warned_cpu":
        return "Locust itself warned that its CPU usage was above 90%"
    if kind == "server_waited_on_load_generator":
        return (f"the server was idle {finding['idle']:.0%} of its CPU limit while Locust was busy: the users waited on "
                "the load generator")  # fmt: skip
    if kind == "machine_saturated":
        shares = ", ".join(f"{name.replace('_', ' ')} {share:.0%}" for name, share in finding["shares"].items())
        return (f"the machine had {finding['idle_share']:.0%} of its {finding['cores']} cores idle ({shares}), and the server "
                f"used {finding['server_cpu']:.2f} of the {finding['ceiling']:g} CPU it could: throughput is bounded by the "
                "machine, not the server")  # fmt: skip
    if kind == "workers_replaced":
        gone = ", ".join(
            f"{w['pid']}" + (f" (last answer {w['last_answer_s']:g} s into the run)" if w["last_answer_s"] is not None else "")
            for w in finding["gone"]
        )
        return (f"worker process(es) {gone} died during the run and the server replaced them with {finding['new']}: "
                "the figures include the time it ran with fewer workers")  # fmt: skip
    if kind == "delayed_ack":
        cause = requests_timeline.DELAYED_ACK_CAUSE
        return f"every reply reached the client a steady {finding['ms']:.0f} ms after its handler ended: {cause}"
    raise ValueError(f"no words for a finding of kind {kind!r}")


def failure(result: Measurement) -> str | None:
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
