"""The Lab tab's tables, in words: the server as it reports itself, the live figures, and the throughput
model for the users running now. Each row is {part, figure, value}: Locust's extended tab draws rows of
plain values, and the Lab page draws the same rows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from contract.knobs import Knobs, int_setting
from contract.modes import MODES
from lab.analysis.model.bounds import CONCURRENCY, Prediction, predict
from lab.results.record import Measured

Row = dict[str, str]


def row(part: str, figure: str, value: object) -> Row:
    return {"part": part, "figure": figure, "value": str(value)}


def io_share(workload: str, cpu_share: float) -> float:
    """The share of requests that wait in the database, as Locust sends them."""
    return {"io": 1.0, "cpu": 0.0}.get(workload, 1.0 - cpu_share)


def server_rows(report: dict[str, Any], knobs: Knobs, limit: str) -> list[Row]:
    """What runs, from the server's own report of itself (read from the running server, not the knobs)."""
    mode = report.get("mode") or knobs.mode
    threads = report.get("threads")
    per_process = f"{threads} thread(s)" if threads else "a thread per request" if mode == "threaded" else "one event loop"
    pool = report.get("db_pool_size")
    offload = report.get("offload_processes") or 0
    program = f"{report.get('program', '?')} {report.get('version', '')} on Python {report.get('python', '?')}"
    if report.get("worker_class"):
        program += f" ({report['worker_class']})"
    return [
        row("server", "what runs", f"MODE={mode}: {MODES[mode].summary}" if mode in MODES else mode),
        row("server", "program", program),
        row("server", "workers × threads", f"{report.get('workers', '?')} process(es) × {per_process}"),
        row("server", "database", f"a pool of {pool} connections per process" if pool else "a new connection per request"),
        row("server", "prime counts", f"offloaded to {offload} process(es)" if offload else "in the handler"),
        row("server", "CPU limit", f"CPUS={knobs.cpus:g}: {limit}"),
        row(
            "server",
            "serves",
            f"WORKLOAD={report.get('workload')} IO_SECONDS={report.get('io_seconds')} PRIMES_LIMIT={report.get('primes_limit')}",
        ),
    ]


def live_rows(result: Measured, cpus: float, active_connections: int | None, rate: tuple[float, float] | None) -> list[Row]:
    """The last stretch's figures; the throughput over whole waves of requests (`rate`: per second, over how
    long) where Locust's plugin counted it, else over the stretch."""
    seconds = result.locust.measured_seconds
    server, loadgen, machine = result.server, result.load_generator, result.machine_cpu
    used = server.utilisation or 0.0
    limit = f" of its {cpus:g} CPU limit ({used / cpus:.0%})" if cpus > 0 else " (no CPU limit)"
    throttled = server.throttled_seconds
    generator = loadgen.utilisation
    rows = [
        row(
            "live",
            "throughput",
            f"{result.locust.rps:.2f} req/s over the last {seconds:.0f} s"
            if rate is None
            else f"{rate[0]:.2f} req/s over the last {rate[1]:.1f} s (whole mean response times up to the last answer)",
        ),
        row("live", "server CPU", f"{used:.2f} CPU{limit}"),
        row(
            "live",
            "throttled",
            "not measured here"
            if throttled is None
            else f"{throttled:.2f} s in {server.nr_throttled or 0} periods over the last {seconds:.0f} s",
        ),
        row("live", "PostgreSQL active connections", "not measured" if active_connections is None else active_connections),
        row(
            "live",
            "load generator CPU",
            "not measured"
            if generator is None
            else f"{generator:.0%} of a core (the busiest of {loadgen.processes} load-generating process(es))",
        ),
    ]
    if machine is not None and machine.idle_share is not None:
        shares = ", ".join(f"{name.replace('_', ' ')} {value / seconds:.2f}"
                           for name, value in machine.parts_cpu_seconds.items() if value is not None)  # fmt: skip
        rows.append(row("live", "machine CPU", f"{1 - machine.idle_share:.0%} busy of {machine.cores} cores; "
                                               f"CPU-seconds per second: {shares}"))  # fmt: skip
    return rows


@dataclass(frozen=True)
class ModelNow:
    prediction: Prediction
    users: int
    d_io: float
    d_cpu: float
    measured: float
    sentence: str

    @property
    def ratio(self) -> float:
        return self.measured / self.prediction.throughput if self.prediction.throughput else 0.0

    def as_dict(self) -> dict[str, object]:
        p = self.prediction
        return {"users": self.users, "in_flight": p.in_flight, "parallelism": p.parallelism, "d_io": self.d_io,
                "d_cpu": self.d_cpu, "predicted_rps": round(p.throughput, 3), "binding": p.binding,
                "measured_rps": self.measured, "ratio": round(self.ratio, 3), "sentence": self.sentence}  # fmt: skip


NEAR = (0.8, 1.2)  # measured / predicted within this: the model explains the stretch


def in_words(prediction: Prediction, measured: float) -> str:
    """Whether the model explains the last seconds, and by which bound."""
    bound = (f"{prediction.in_flight} request(s) in flight" if prediction.binding == CONCURRENCY
             else f"{prediction.parallelism:g} CPU(s) of Python")  # fmt: skip
    ratio = measured / prediction.throughput if prediction.throughput else 0.0
    if NEAR[0] <= ratio <= NEAR[1]:
        return f"as the model says: {bound} bind it"
    if ratio < NEAR[0]:
        return f"below the model ({bound} would bind it): something else binds too; see the warnings below, if any"
    return f"above the model ({bound} would bind it): the stretch is short, or D_cpu counts work the requests overlap"


def model_now(knobs: Knobs, users: int, result: Measured, measured: float | None = None) -> ModelNow | None:
    """The model for the users running now: D_io from IO_SECONDS and the share of io requests, D_cpu from
    the server's CPU over the requests it served in the stretch. None before there is a D_cpu."""
    d_cpu = result.server.cpu_seconds_per_request
    if not d_cpu or users <= 0:
        return None
    c, p = knobs.capacity(int_setting("DB_POOL_SIZE"))
    d_io = knobs.io_seconds * io_share(knobs.workload, knobs.mix_cpu_share)
    cores = len(os.sched_getaffinity(0))
    prediction = predict(users=users, in_flight=c, processes=p, cpus=knobs.cpus, cores=cores, d_io=d_io, d_cpu=d_cpu)
    rate = result.locust.rps if measured is None else measured
    return ModelNow(prediction, users, d_io, d_cpu, round(rate, 3), in_words(prediction, rate))


def model_rows(model: ModelNow | None, knobs: Knobs) -> list[Row]:
    c, p = knobs.capacity(int_setting("DB_POOL_SIZE"))
    capacity = row("model", "the mode holds", f"C = {c} request(s) in flight, P = {p} process(es) running Python")
    if model is None:
        return [capacity, row("model", "predicted", "waiting for requests: D_cpu is the server's CPU per request")]
    x = model.prediction
    if x.binding == CONCURRENCY:
        binds = (f"requests in flight: min(U={model.users}, C={c}) = {x.in_flight} over D_io + D_cpu "
                 f"= {model.d_io + model.d_cpu:.3f} s")  # fmt: skip
    else:
        binds = f"CPU: P = {x.parallelism:g} CPU(s) of Python over D_cpu = {model.d_cpu * 1000:.1f} ms"
    return [
        row("model", "users now", model.users),
        capacity,
        row("model", "D_io, D_cpu", f"{model.d_io:.3f} s in the database, {model.d_cpu * 1000:.1f} ms of server CPU per request"),
        row("model", "predicted", f"{x.throughput:.2f} req/s, latency {model.users / x.throughput:.2f} s (users / throughput)"),
        row("model", "which bound binds", binds),
        row("model", "measured / predicted", f"{model.measured:.2f} / {x.throughput:.2f} req/s = {model.ratio:.2f}"),
        row("model", "in words", model.sentence),
    ]
