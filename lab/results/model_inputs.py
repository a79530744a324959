"""The throughput model applied to one run, from its record alone: C and P from the record's model
counts, D_io from its database wait and its share of io requests, D_cpu from the server's own
accounting, the cores the machine had. The report holds each run against it; the capacity search
starts below the saturation it gives."""

from __future__ import annotations

from dataclasses import dataclass

from lab.analysis.model.bounds import Prediction, predict
from lab.results.record import RunRecord

OPEN = 10**9  # open arrivals: no user limit, only the server's


@dataclass(frozen=True)
class Inputs:
    """What the model takes from one run."""

    in_flight: int  # C
    processes: int
    cpus: float
    cores: int
    d_io: float  # seconds in the database per request, on average
    d_cpu: float  # CPU seconds per request

    def predict(self, users: int) -> Prediction:
        return predict(users=users, in_flight=self.in_flight, processes=self.processes, cpus=self.cpus, cores=self.cores,
                       d_io=self.d_io, d_cpu=self.d_cpu)  # fmt: skip


def io_share(record: RunRecord) -> float:
    """The share of a run's requests that waited in the database: measured for a mix, else 1 or 0."""
    knobs = record.config.knobs
    by_kind = record.measured.locust.by_workload if record.measured else {}
    if knobs.workload != "mix" or not by_kind:
        return 1.0 if knobs.workload == "io" else 0.0 if knobs.workload == "cpu" else 1 - knobs.mix_cpu_share
    total = sum(k.requests for k in by_kind.values())
    return by_kind["io"].requests / total if total and "io" in by_kind else 0.0


def inputs(record: RunRecord, d_cpu: float | None = None) -> Inputs | None:
    """The model's inputs for an ok run (D_cpu its own, unless given), or None without CPU accounting."""
    m, model, knobs = record.measured, record.model, record.config.knobs
    d_cpu = d_cpu if d_cpu is not None else m.server.cpu_seconds_per_request if m else None
    if not record.ok or not d_cpu or d_cpu <= 0 or model is None:
        return None
    return Inputs(model.in_flight, model.processes, knobs.cpus, record.machine.cores_available or 1,
                  knobs.io_seconds * io_share(record), d_cpu)  # fmt: skip


def saturation(record: RunRecord, d_cpu: float | None = None) -> float | None:
    """The model's saturation rate for open arrivals (no user limit): min(C / (D_io + D_cpu), P / D_cpu),
    with D_cpu from the server's own accounting unless given."""
    found = inputs(record, d_cpu)
    return found.predict(OPEN).throughput if found else None
