"""The throughput model, for a closed loop of U users with no think time.

A request waits D_io in the database and needs D_cpu of CPU. A mode holds at most C requests
in flight and runs Python in P processes at once, P = min(processes, CPUS) under the GIL:

    X <= min(U, C) / (D_io + D_cpu)      (not enough requests in flight)
    X <= P / D_cpu                        (not enough CPU)

The smaller bound is the predicted ceiling; measured / predicted near 1 means the model
explains the run, far below 1 means something else was binding. With open arrivals there is no
user limit: the same bounds give the saturation rate (lab.results.model_inputs.saturation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Binding = Literal["concurrency", "cpu"]
CONCURRENCY: Binding = "concurrency"
CPU: Binding = "cpu"


@dataclass(frozen=True)
class Prediction:
    throughput: float  # requests per second
    binding: Binding
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
