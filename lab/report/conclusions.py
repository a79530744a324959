"""What the runs show, decided from the rows: which mode served the most per workload, where more users,
CPUs or workers stopped helping, what bounded runs other than the server, io requests held up in a mix,
replies waiting for delayed ACKs, how many runs the model explains. lab.report.words says each."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from contract.knobs import WORKLOADS
from lab.analysis import intervals
from lab.report.rows import Row, baseline, compared, delayed_ack_floor, knob, level
from lab.results.record import RECORDED_KNOBS, knob_values

STALL = 0.10  # a step that adds less than 10% throughput has stopped helping
SERIES_KNOBS = tuple(name.lower() for name in RECORDED_KNOBS if name not in ("MODE", "WORKLOAD"))  # a series' own
SWEPT = ("users", "cpus", "workers")  # the knobs whose sweeps are judged
BOUNDS = ("the load generator", "the machine")
EXPLAINED = (0.8, 1.2)  # measured / predicted within this: the model explains the run


@dataclass(frozen=True)
class NothingSucceeded:
    failed: list[Row]


@dataclass(frozen=True)
class Leader:
    """The mode that served the most of one workload at the compared setting, and what it is said beside."""

    workload: str
    users: int
    cpus: float
    best: Row
    level: list[Row]  # those whose 95% interval overlaps the best's: not told apart from it
    runner_up: Row | None  # the next below the level ones, when it served anything
    slowest: Row | None  # when it is none of the above


@dataclass(frozen=True)
class Sweep:
    """Along one knob, per workload: where more of it stopped helping (or still helped at the last value)."""

    key: str  # users, cpus or workers
    workload: str
    outcomes: list[tuple[bool, float, list[str]]]  # (stopped helping, at this value, for these labels)


@dataclass(frozen=True)
class Bounded:
    what: str  # the load generator, the machine
    rows: list[Row]  # none: no run was


@dataclass(frozen=True)
class MixStall:
    """A mix run whose io requests waited behind its cpu requests, every request having a worker."""

    row: Row
    io_p95_ms: float
    wait_ms: float


@dataclass(frozen=True)
class DelayedAcks:
    names: list[str]  # label · workload
    floors: list[int]  # ms


@dataclass(frozen=True)
class ModelFit:
    explained: int
    runs: int


@dataclass(frozen=True)
class Failed:
    rows: list[Row]


@dataclass(frozen=True)
class Certainty:
    """How sure the comparisons are: each configuration's repeats, or one run each beside the machine's
    own run-to-run spread (its speed on a fixed loop at the start and at the end of the experiment)."""

    repeats: int  # the fewest measured runs of one configuration
    spread: float | None  # the machine's run-to-run spread, for configurations run once
    spreads: list[tuple[str, float]]  # with repeats: each configuration's run-to-run spread of throughput


Conclusion = Certainty | NothingSucceeded | Leader | Sweep | Bounded | MixStall | DelayedAcks | ModelFit | Failed


def conclusions(rows: list[Row]) -> list[Conclusion]:
    """What the data shows, in the order the report says it; different data, different conclusions."""
    ok = [r for r in rows if r.ok]
    failed = [r for r in rows if not r.ok]
    if not ok:
        return [NothingSucceeded(failed)]
    found: list[Conclusion] = [certainty(ok), *leaders(ok)]
    for key in SWEPT:
        found += sweeps(ok, key)
    found += [Bounded(what, [r for r in ok if r.bounded_by == what]) for what in BOUNDS]
    found += mix_stalls(ok)
    found += delayed_acks(ok)
    if any(r.ratio is not None for r in ok):
        found.append(ModelFit(sum(r.ratio is not None and EXPLAINED[0] <= r.ratio <= EXPLAINED[1] for r in ok), len(ok)))
    if failed:
        found.append(Failed(failed))
    return found


def certainty(ok: list[Row]) -> Certainty:
    repeats = min(max(1, len(r.repeats)) for r in ok)
    spreads = [(f"{r.label} · {r.knobs.workload}", cv) for r in ok if len(r.repeats) > 1
               and (cv := intervals.spread(x.measured.locust.rps for x in r.repeats if x.measured)) is not None]  # fmt: skip
    return Certainty(repeats, next((r.spread for r in ok if r.spread is not None), None), spreads)


def leaders(ok: list[Row]) -> list[Leader]:
    cpus, users = baseline(ok)
    found = []
    for workload in WORKLOADS:
        group = sorted((r for r in compared(ok) if r.knobs.workload == workload and not r.bounded_by), key=lambda r: -r.rps)
        if len(group) < 2:
            continue
        best, worst = group[0], group[-1]
        tied = [r for r in level(group) if r is not best]  # not told apart from the best
        runner_up = next((r for r in group[1:] if r not in tied), None)
        slowest = worst if worst is not best and worst is not runner_up and worst.rps and worst not in tied else None
        found.append(Leader(workload, users, cpus, best, tied, runner_up if runner_up and runner_up.rps else None, slowest))
    return found


def sweeps(rows: list[Row], key: str) -> list[Sweep]:
    """Where adding `key` stopped helping, one per workload, when an experiment varied it. A series is
    one configuration with only `key` changing; it needs three points to tell."""
    others = [k for k in SERIES_KNOBS if k != key]
    series: dict[tuple[str, str, tuple[object, ...]], list[Row]] = defaultdict(list)
    for row in rows:
        values = knob_values(row.knobs)
        series[(row.label, row.knobs.workload, tuple(values[k] for k in others))].append(row)
    outcomes: dict[str, dict[tuple[bool, float], list[str]]] = defaultdict(lambda: defaultdict(list))
    for (name, workload, _), group in series.items():
        group.sort(key=lambda r: knob(r, key))
        if len(group) < 3:
            continue
        stalled = [a for a, b in itertools.pairwise(group) if a.rps and b.rps < a.rps * (1 + STALL)]
        outcome = (True, knob(stalled[0], key)) if stalled else (False, knob(group[-1], key))
        if name not in outcomes[workload][outcome]:
            outcomes[workload][outcome].append(name)
    return [
        Sweep(key, workload, [(stopped, at, names) for (stopped, at), names in sorted(found.items(), key=_by_value)])
        for workload, found in outcomes.items()
    ]


def _by_value(outcome: tuple[tuple[bool, float], list[str]]) -> tuple[float, bool]:
    """Outcomes by the value they happened at; at one value, where more still helped first."""
    (stopped, at), _ = outcome
    return at, stopped


def mix_stalls(rows: list[Row]) -> list[MixStall]:
    """Where every request of a mix had a worker, how far its io requests waited behind the prime counts."""
    found = []
    for row in rows:
        io = row.kinds.get("io")
        if row.knobs.workload != "mix" or not io or not io.p50_ms or row.waiting_for_workers is not None:
            continue
        wait_ms = row.knobs.io_seconds * 1000
        if io.p95_ms is not None and io.p95_ms > 2 * wait_ms + 50:
            found.append(MixStall(row, io.p95_ms, wait_ms))
    return found


def delayed_acks(rows: list[Row]) -> list[DelayedAcks]:
    held: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if floor := delayed_ack_floor(row.record):
            held[f"{row.label} · {row.knobs.workload}"].append(floor)
    if not held:
        return []
    return [DelayedAcks(list(held), [round(f) for fs in held.values() for f in fs])]
