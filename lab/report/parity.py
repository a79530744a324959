"""The same configuration on both backends, decided from the rows: compose/native of throughput and p95,
and where they differ by more than PARITY_GAP, what the two records say differed. lab.report.words
says the causes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lab.report.rows import Row, delayed_ack_floor
from lab.results.experiments import run_names

PARITY_GAP = 0.15  # a compose/native ratio further than this from 1 is named, with its cause
SHARED = 0.1  # of the window's seconds: CPU or throttling that differs by more is a cause


@dataclass(frozen=True)
class BoundedOn:
    backend: str
    by: str


@dataclass(frozen=True)
class CpuPerRequest:
    native_s: float
    compose_s: float


@dataclass(frozen=True)
class EngineCpu:
    """The engine itself (its port proxy and runtime, counted as the machine's 'other') used more CPU."""

    cpus: float  # more CPU, on average over the window


@dataclass(frozen=True)
class DelayedAcksOnOne:
    """Only one backend's replies waited for delayed ACKs."""


@dataclass(frozen=True)
class InterpreterApart:
    """The two servers ran on different builds of Python: a cause of a CPU-bound gap before any other
    (more CPU per request, and so more throttling under the same quota, follow from it)."""

    native: str  # the build, in words
    compose: str
    native_loop_s: float | None  # each build's CPU time for the same fixed loop, where it was taken
    compose_loop_s: float | None


Cause = InterpreterApart | BoundedOn | CpuPerRequest | EngineCpu | DelayedAcksOnOne


@dataclass(frozen=True)
class ParityPair:
    """One configuration on both backends."""

    native: Row
    compose: Row
    rps_ratio: float | None  # compose / native
    p95_ratio: float | None
    gap: bool  # a ratio further than PARITY_GAP from 1
    causes: list[Cause]  # what the records say differed, where there is a gap (none: nothing they show)


def parity(rows: list[Row]) -> list[ParityPair]:
    pairs: dict[tuple[object, ...], dict[str, Row]] = defaultdict(dict)
    for row in rows:
        if row.ok and row.config.backend:
            k = row.knobs
            pairs[(run_names(k).label, k.workload, k.users, k.cpus)][row.config.backend] = row
    found: list[ParityPair] = []
    for both in pairs.values():
        if set(both) != {"native", "compose"}:
            continue
        native, compose = both["native"], both["compose"]
        rps = compose.rps / native.rps if native.rps else None
        p95 = compose.p95_ms / native.p95_ms if native.p95_ms else None
        gap = any(r is not None and abs(r - 1) > PARITY_GAP for r in (rps, p95))
        found.append(ParityPair(native, compose, rps, p95, gap, causes(native, compose) if gap else []))
    return found


def causes(native: Row, compose: Row) -> list[Cause]:
    """What the two records say differed: a bound, the server's CPU per request, the engine's own CPU,
    throttling, delayed ACKs."""
    found: list[Cause] = [apart] if (apart := interpreter_apart(native, compose)) else []
    found += [BoundedOn(r.config.backend or "", r.bounded_by) for r in (native, compose) if r.bounded_by]
    per = [r.measured.server.cpu_seconds_per_request or 0 for r in (native, compose)]
    if per[0] and abs(per[1] / per[0] - 1) > PARITY_GAP:
        found.append(CpuPerRequest(per[0], per[1]))
    other = [_other_cpu(r) for r in (native, compose)]
    seconds = compose.locust.measured_seconds or 1
    if other[1] - other[0] > SHARED * seconds:
        found.append(EngineCpu((other[1] - other[0]) / seconds))
    # throttling is left out: under one quota, the backend that throttles less is the one that did less work
    if bool(delayed_ack_floor(native.record)) != bool(delayed_ack_floor(compose.record)):
        found.append(DelayedAcksOnOne())
    return found


def interpreter_apart(native: Row, compose: Row) -> InterpreterApart | None:
    """Where the servers' own reports name different interpreter builds (version, compiler or prefix)."""
    builds = [_build(r) for r in (native, compose)]
    if None in builds or builds[0] == builds[1]:
        return None
    words = [" ".join(str(part) for part in build) for build in builds if build]
    return InterpreterApart(words[0], words[1], _loop(native), _loop(compose))


def _build(row: Row) -> tuple[object, ...] | None:
    report = row.record.verification.server if row.record.verification else None
    built = report.interpreter if report else None
    return None if not built else tuple(built.get(k) for k in ("implementation", "version", "compiler", "prefix"))


def _loop(row: Row) -> float | None:
    """The run's interpreter's CPU time for the fixed loop, taken when its backend opened."""
    start = (row.record.machine.interpreter or {}).get("start")
    speed = start.get("speed") if isinstance(start, dict) else None
    seconds = speed.get("cpu_seconds") if isinstance(speed, dict) else None
    return float(seconds) if isinstance(seconds, int | float) else None


def _other_cpu(row: Row) -> float:
    """The machine's CPU beside the lab's parts over the run's window (an engine's own, in compose)."""
    whole = row.measured.machine_cpu
    return (whole.parts_cpu_seconds.get("other") if whole else None) or 0.0
