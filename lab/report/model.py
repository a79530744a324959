"""The throughput model, for a closed loop of U users with no think time.

A request waits D_io in the database and needs D_cpu of CPU. A mode holds at most C requests
in flight and runs Python in P processes at once, P = min(processes, CPUS) under the GIL:

    X <= min(U, C) / (D_io + D_cpu)      (not enough requests in flight)
    X <= P / D_cpu                        (not enough CPU)

The smaller bound is the predicted ceiling; measured / predicted near 1 means the model
explains the run, far below 1 means something else was binding.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.timeline import DELAYED_ACK_CAUSE

CONCURRENCY = "concurrency"
CPU = "cpu"


@dataclass(frozen=True)
class Prediction:
    throughput: float  # requests per second
    binding: str  # CONCURRENCY or CPU
    concurrency_bound: float
    cpu_bound: float
    in_flight: int  # min(U, C)
    parallelism: float  # P


def parallelism(processes: int, cpus: float, cores: int) -> float:
    """Python runs in at most this many processes at once: one per process, capped by the CPU limit."""
    limit = cpus if cpus > 0 else float(cores)
    return min(float(processes), limit, float(cores))


def predict(*, users: int, in_flight: int, processes: int, cpus: float, cores: int, d_io: float, d_cpu: float) -> Prediction:
    if d_io < 0 or d_cpu <= 0:
        raise ValueError("D_io must be >= 0 and D_cpu > 0")
    concurrent = min(users, in_flight)
    p = parallelism(processes, cpus, cores)
    concurrency_bound = concurrent / (d_io + d_cpu)
    cpu_bound = p / d_cpu
    binding = CPU if cpu_bound <= concurrency_bound else CONCURRENCY  # on a tie, the CPU is what is busy
    return Prediction(min(concurrency_bound, cpu_bound), binding, concurrency_bound, cpu_bound, concurrent, p)


def explain(
    prediction: Prediction,
    measured: float,
    *,
    load_generator_bound: bool,
    throttled_seconds: float | None,
    failures: int,
    median_ms: float | None = None,
    work_ms: float | None = None,
    delayed_ack_ms: float | None = None,
    capacity: int | None = None,
    processes: int | None = None,
    processes_seen: int | None = None,
) -> str:
    """One sentence: which bound was expected to bind, and what else may have bound if far off."""
    ratio = measured / prediction.throughput if prediction.throughput else 0.0
    if prediction.binding == CONCURRENCY:
        expected = f"{prediction.in_flight} request(s) in flight bound it"
    else:
        expected = f"{prediction.parallelism:g} CPU(s) of Python bound it"
    if 0.8 <= ratio <= 1.2:
        return f"as predicted: {expected}"
    others = []
    if load_generator_bound:
        others.append("the load generator was saturated")
    if failures:
        others.append(f"{failures} requests failed (database connections?)")
    if throttled_seconds and prediction.binding == CONCURRENCY:
        others.append(f"the CPU quota throttled the server for {throttled_seconds:.1f}s")
    if ratio < 0.8:
        found = []
        if delayed_ack_ms:
            found.append(f"every reply reached the client a steady {delayed_ack_ms:.0f} ms or more after its handler ended: "
                         f"{DELAYED_ACK_CAUSE}")  # fmt: skip
        if processes_seen and processes and _idle_workers_bind(prediction, capacity, processes, processes_seen):
            found.append(
                f"only {processes_seen} of {processes} worker processes served requests: the kept-alive connections "
                "landed on fewer workers than there are (each stays with the worker that accepted it)"
            )
        if not found and median_ms and work_ms and median_ms > 1.2 * work_ms:
            found.append(
                f"a median request took {median_ms:.0f} ms for {work_ms:.0f} ms of work: time spent outside "
                "the handler (connection handling, response writes, scheduling on shared cores)"
            )
        others += found or ["per-request overhead outside D_io and D_cpu (connection handling, scheduling on shared cores)"]
        return f"below the model ({expected} in theory); likely also binding: " + "; ".join(others)
    return f"above the model ({expected} in theory): D_cpu from the cgroup includes work the requests overlap"


def _idle_workers_bind(prediction: Prediction, capacity: int | None, processes: int, seen: int) -> bool:
    """Did workers that served nothing lower the binding bound? Only if the busy ones alone held fewer
    requests in flight (C x seen / processes) or ran fewer CPUs of Python than the bound assumed."""
    if seen >= processes:
        return False
    if prediction.binding == CONCURRENCY:
        return capacity is not None and capacity * seen / processes < prediction.in_flight
    return seen < prediction.parallelism
