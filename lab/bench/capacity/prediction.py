"""What the models expect of a capacity search: the queueing prediction from its first step, and the
server's CPU per request from all its windows.

A low first step measures the server's own time per request (its timeline), from which the lab's
queueing model (C requests in flight, each taking that time: M/D/C or D/D/C) predicts the capacity.
The server's CPU per request (D_cpu) is the slope of its CPU use against its throughput over every
window (the intercept is what it burns idle), and gives the throughput model's saturation rate: a
capacity above it is a contradiction, and the search says which figure is suspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from lab.analysis.model import Arrivals, ServedQueue, served_queue
from lab.analysis.model.bounds import parallelism
from lab.analysis.stats import Interval, slope_intercept
from lab.bench.capacity.rates import Range
from lab.results import request_timeline
from lab.results.folder import ResultsFolder
from lab.results.model_inputs import inputs, saturation
from lab.results.record import RunRecord


@dataclass(frozen=True)
class CapacityPrediction:
    """The lab's queueing prediction of the capacity at a latency target, from the first step: C servers
    each taking the measured handler time, or, where the CPU binds first, P CPUs each taking the CPU time
    and the rest of the handler's time beside the queue. (The throughput model's ceiling of a closed loop
    is lab.analysis.model.bounds.Prediction.)"""

    served: ServedQueue
    service_s: float  # the handler's mean time
    requests: int  # behind the service time
    arrivals: Arrivals
    capacity_rps: float

    @property
    def servers(self) -> int:
        return self.served.queue.servers

    @property
    def saturation_rps(self) -> float:
        return self.served.saturation

    @property
    def name(self) -> str:
        queue = f"{'M' if self.arrivals == 'poisson' else 'D'}/D/{self.servers}"
        return f"{queue} on the CPU" if self.served.binds == "CPU" else queue


def predict(
    record: RunRecord, folder: Path, slo_ms: float, arrivals: Arrivals, d_cpu: float | None = None
) -> CapacityPrediction | None:
    """The capacity at the target from the step's server-side times (each request's handler start to end)
    and, to know whether the CPU binds first, the Python it can run at once and the CPU per request:
    `d_cpu` where given, else the step's own, no more than its handler time (at low load the server's
    idle CPU, spread over few requests, inflates it)."""
    timeline = record.measured.timeline if record.measured else None
    if not record.ok or not timeline or not record.model:
        return None
    requests = request_timeline.read(ResultsFolder(folder).file(timeline.file))
    times = [(r["end_us"] - r["start_us"]) / 1e6 for r in requests if r["end_us"] > r["start_us"]]
    if not times:
        return None
    service = fmean(times)  # the mean: what sets the utilisation of a queue with deterministic service
    found = inputs(record)
    p = parallelism(found.processes, found.cpus, found.cores) if found else None
    cpu = d_cpu if d_cpu is not None else min(found.d_cpu, service) if found else None
    served = served_queue(service, record.model.in_flight, p, cpu)
    return CapacityPrediction(served, service, len(times), arrivals, served.capacity(slo_ms / 1000, 0.95, arrivals))


@dataclass(frozen=True)
class CpuModel:
    """The server's CPU against its throughput over the windows: CPU/s = D_cpu x req/s + idle."""

    d_cpu: Interval  # CPU seconds per request: the slope
    idle: Interval  # CPU seconds per second with no request: the intercept
    windows: int
    saturation_rps: float | None  # the throughput model's saturation with this D_cpu
    optimistic_rps: float | None  # the same at D_cpu's lower bound: the highest the data allow


def cpu_model(records: list[RunRecord]) -> CpuModel | None:
    """D_cpu from the slope across windows, not from one low window whose idle CPU would inflate it
    (per second on both axes: windows differ in length, and idle CPU accrues by the second)."""
    ok = [r for r in records if r.ok and r.measured and r.measured.server.utilisation is not None]
    measured = [r.measured for r in ok if r.measured]
    xs = [m.locust.rps for m in measured]
    if len(set(xs)) < 2:
        return None
    line = slope_intercept(xs, [m.server.utilisation or 0.0 for m in measured])
    d_cpu = line.slope
    return CpuModel(d_cpu, line.intercept, len(ok), saturation(ok[0], d_cpu.estimate),
                    saturation(ok[0], d_cpu.low) if d_cpu.known else None)  # fmt: skip


def contradiction(found: Range, cpu: CpuModel | None) -> tuple[str, str] | None:
    """A rate held above the model's saturation cannot be: (what is suspect, why), or None."""
    if found.low is None or cpu is None or cpu.saturation_rps is None or found.low <= cpu.saturation_rps:
        return None
    said = f"held {found.low:.3g} req/s above the model's saturation of {cpu.saturation_rps:.3g} req/s"
    if cpu.optimistic_rps is not None and found.low > cpu.optimistic_rps:
        return "held step", (f"{said}, and above {cpu.optimistic_rps:.3g} req/s even at D_cpu's lower bound "
                             f"({cpu.d_cpu.low * 1000:.2f} ms): the step that held is suspect (a queue growing too "
                             "slowly for its window to show)")  # fmt: skip
    return "model saturation", (f"{said}, but D_cpu ({cpu.d_cpu.estimate * 1000:.2f} ms from {cpu.windows} windows) is too "
                                "uncertain to rule it out: the model's saturation is suspect")  # fmt: skip
