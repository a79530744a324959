"""A run's note in the runs table, decided: which bound the model expected to bind, and, where the run
fell short of it, what else its record says may have bound it. lab.report.words says it."""

from __future__ import annotations

from dataclasses import dataclass

from lab.analysis.model.bounds import CONCURRENCY, Prediction
from lab.report.rows import Row, delayed_ack_floor

NEAR = (0.8, 1.2)  # measured / predicted within this: as predicted


MIN_THROTTLED_S = 0.05  # less throttling than this reads as 0.0 s: never named as what bound a run


@dataclass(frozen=True)
class LoadGeneratorSaturated:
    pass


@dataclass(frozen=True)
class RequestsFailed:
    count: int


@dataclass(frozen=True)
class Throttled:
    seconds: float


@dataclass(frozen=True)
class DelayedAcks:
    ms: float


@dataclass(frozen=True)
class IdleWorkers:
    """Kept-alive connections landed on fewer workers than there are."""

    seen: int
    processes: int


@dataclass(frozen=True)
class TimeOutside:
    """A median request took much longer than its work: time outside the handler."""

    median_ms: float
    work_ms: float


@dataclass(frozen=True)
class Overhead:
    """Nothing the record shows: per-request overhead outside D_io and D_cpu."""


Suspect = LoadGeneratorSaturated | RequestsFailed | Throttled | DelayedAcks | IdleWorkers | TimeOutside | Overhead


@dataclass(frozen=True)
class Note:
    prediction: Prediction
    ratio: float  # measured / predicted
    suspects: tuple[Suspect, ...]  # what else likely bound a run below the model

    @property
    def as_predicted(self) -> bool:
        return NEAR[0] <= self.ratio <= NEAR[1]

    @property
    def below(self) -> bool:
        return self.ratio < NEAR[0]


def judge(
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
) -> Note:
    """The note of a run measured at `measured` req/s against its prediction."""
    ratio = measured / prediction.throughput if prediction.throughput else 0.0
    if ratio >= NEAR[0]:
        return Note(prediction, ratio, ())
    suspects: list[Suspect] = []
    if load_generator_bound:
        suspects.append(LoadGeneratorSaturated())
    if failures:
        suspects.append(RequestsFailed(failures))
    if throttled_seconds and throttled_seconds >= MIN_THROTTLED_S and prediction.binding == CONCURRENCY:
        suspects.append(Throttled(throttled_seconds))
    found: list[Suspect] = []
    if delayed_ack_ms:
        found.append(DelayedAcks(delayed_ack_ms))
    if processes_seen and processes and _idle_workers_bind(prediction, capacity, processes, processes_seen):
        found.append(IdleWorkers(processes_seen, processes))
    if not found and median_ms and work_ms and median_ms > 1.2 * work_ms:
        found.append(TimeOutside(median_ms, work_ms))
    return Note(prediction, ratio, (*suspects, *(found or [Overhead()])))


def _idle_workers_bind(prediction: Prediction, capacity: int | None, processes: int, seen: int) -> bool:
    """Did workers that served nothing lower the binding bound? Only if the busy ones alone held fewer
    requests in flight (C x seen / processes) or ran fewer CPUs of Python than the bound assumed."""
    if seen >= processes:
        return False
    if prediction.binding == CONCURRENCY:
        return capacity is not None and capacity * seen / processes < prediction.in_flight
    return seen < prediction.parallelism


def of_row(row: Row) -> Note | None:
    """A row's note, from its record; None for a failed run or one without a prediction."""
    m, model, given, x = row.record.measured, row.record.model, row.inputs, row.prediction
    if not row.ok or m is None or model is None or given is None or x is None:
        return None
    return judge(x, m.locust.rps, load_generator_bound=row.record.bounded_by_load_generator,
                 throttled_seconds=m.server.throttled_seconds, failures=m.locust.failures, median_ms=m.locust.p50_ms,
                 work_ms=(given.d_io + given.d_cpu) * 1000, delayed_ack_ms=delayed_ack_floor(row.record),
                 capacity=model.in_flight, processes=model.processes,
                 processes_seen=m.timeline.processes_seen if m.timeline else None)  # fmt: skip
