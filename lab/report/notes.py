"""A run's note in the runs table: which bound the model expected to bind, and, where the run fell
short of it, what else its record says may have bound it."""

from __future__ import annotations

from lab.model.bounds import CONCURRENCY, Prediction
from lab.timeline import DELAYED_ACK_CAUSE


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
