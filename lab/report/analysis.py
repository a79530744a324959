"""From records to rows: each run's measurement beside its prediction, and the conclusions."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass

from contract.knobs import WORKLOADS, Knobs
from contract.modes import MODES
from lab.experiments import run_names
from lab.model.bounds import CONCURRENCY, CPU, Prediction
from lab.model.runs import inputs, saturation
from lab.quick_check import QuickCheck, Reply
from lab.record import CapacityStep, Configuration, KindStats, LocustStats, Measured, OpenArrivals, RunRecord, knob_values
from lab.records import CONFIG_COLUMNS
from lab.report.notes import explain
from lab.timeline import DELAYED_ACK_CAUSE, TimelineSummary, delayed_ack

# The post's published quick-check totals (two concurrent requests), seconds.
POST_QUICK_CHECK = {
    ("nothreading", "io"): 10.0472,
    ("threaded", "io"): 5.0370,
    ("async", "io"): 5.0860,
    ("nothreading", "cpu"): 8.8519,
    ("threaded", "cpu"): 9.2367,
    ("gunicorn", "cpu"): 4.9310,
}
STALL = 0.10  # a step that adds less than 10% throughput has stopped helping
SERIES_KNOBS = tuple(c for c in CONFIG_COLUMNS if c not in ("mode", "workload"))  # what sets one series apart
LEVEL = 0.05  # throughputs within 5% are level: closer than runs on shared cores can tell apart


@dataclass(frozen=True)
class Row:
    record: RunRecord
    label: str
    prediction: Prediction | None
    ratio: float | None
    note: str

    @property
    def ok(self) -> bool:
        return self.record.ok

    @property
    def config(self) -> Configuration:
        return self.record.config

    @property
    def knobs(self) -> Knobs:
        return self.record.config.knobs

    @property
    def measured(self) -> Measured:
        """What the run measured: every ok run has it (the record's reading makes sure)."""
        if self.record.measured is None:
            raise ValueError(f"{self.config.id} measured nothing")
        return self.record.measured

    @property
    def locust(self) -> LocustStats:
        return self.measured.locust

    @property
    def rps(self) -> float:
        return self.locust.rps if self.ok else 0.0

    @property
    def p95_ms(self) -> float:
        return self.locust.p95_ms or 0.0

    @property
    def mode(self) -> str:
        return self.knobs.mode

    @property
    def variant(self) -> bool:
        """A variant of its mode: prime counts offloaded, no connection pool, or a backend named."""
        return self.knobs.cpu_offload != "none" or self.knobs.db_pool == "0" or bool(self.config.backend)

    @property
    def bounded_by(self) -> str | None:
        """What bounded the run instead of the server; its throughput is not the server's."""
        if self.record.bounded_by_machine:
            return "the machine"
        return "the load generator" if self.record.bounded_by_load_generator else None

    @property
    def timeline(self) -> TimelineSummary | None:
        return self.record.measured.timeline if self.record.measured else None

    @property
    def kinds(self) -> dict[str, KindStats]:
        """io and cpu requests apart."""
        return self.record.measured.locust.by_workload if self.record.measured else {}


def label(config: Configuration) -> str:
    return config.label or run_names(config.knobs).label


def delayed_ack_floor(record: RunRecord) -> float | None:
    return delayed_ack(record.measured.timeline if record.measured else None)


def analyse(record: RunRecord) -> Row:
    m, model = record.measured, record.model
    if not record.ok or m is None:
        return Row(record, label(record.config), None, None, f"failed: {record.reason}")
    given = inputs(record)
    if given is None or model is None:
        return Row(record, label(record.config), None, None, "no CPU accounting for this run: no prediction")
    prediction = given.predict(record.config.knobs.users)
    measured = m.locust.rps
    note = explain(prediction, measured, load_generator_bound=record.bounded_by_load_generator,
                   throttled_seconds=m.server.throttled_seconds, failures=m.locust.failures,
                   median_ms=m.locust.p50_ms, work_ms=(given.d_io + given.d_cpu) * 1000,
                   delayed_ack_ms=delayed_ack_floor(record), capacity=model.in_flight, processes=model.processes,
                   processes_seen=m.timeline.processes_seen if m.timeline else None)  # fmt: skip
    return Row(record, label(record.config), prediction, measured / prediction.throughput, note)


def baseline(rows: list[Row]) -> tuple[float, int]:
    """The (CPUS, users) most runs share: the setting at which modes are compared side by side."""
    counts = Counter((r.knobs.cpus, r.knobs.users) for r in rows)
    return counts.most_common(1)[0][0]


def compared(rows: list[Row]) -> list[Row]:
    cpus, users = baseline(rows)
    return [r for r in rows if r.knobs.cpus == cpus and r.knobs.users == users]


def _fmt(x: float) -> str:
    """Throughput with the digits that matter: 0.42, 9.6, 95, 1234."""
    return f"{x:.2f}" if x < 1 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def conclusions(rows: list[Row]) -> list[str]:
    """Plain sentences computed from the data; a different result gives different sentences."""
    sentences: list[str] = []
    ok = [r for r in rows if r.ok]
    failed = [r for r in rows if not r.ok]
    if not ok:
        return [f"No run succeeded, so there is nothing to compare: {_reasons(failed)}."]
    cpus, users = baseline(ok)
    for workload in WORKLOADS:
        group = sorted((r for r in compared(ok) if r.knobs.workload == workload and not r.bounded_by), key=lambda r: -r.rps)
        if len(group) < 2:
            continue
        best, worst = group[0], group[-1]
        level = [r for r in group[1:] if r.rps >= best.rps / (1 + LEVEL)]  # within measurement noise of the best
        runner_up = group[len(level) + 1] if len(group) > len(level) + 1 else None
        head = f"For the {workload} workload ({users} users, CPUS={cpus:g}), "
        if level:
            names = ", ".join(r.label for r in level)
            text = head + f"{best.label} served the most ({_fmt(best.rps)} req/s), level with {names} (within {LEVEL:.0%})"
        else:
            text = head + f"{best.label} served the most: {_fmt(best.rps)} req/s"
        if runner_up is not None and runner_up.rps:
            text += f", {best.rps / runner_up.rps:.2f}× the next ({runner_up.label}, {_fmt(runner_up.rps)} req/s)"
        if worst is not best and worst is not runner_up and worst.rps and worst not in level:
            text += f" and {best.rps / worst.rps:.1f}× the slowest ({worst.label}, {_fmt(worst.rps)} req/s)"
        sentences.append(text + ".")
    sentences += _saturation(ok, "users", "users")
    sentences += _saturation(ok, "cpus", "CPUs")
    sentences += _saturation(ok, "workers", "workers")
    for what in ("the load generator", "the machine"):
        bounded = [r for r in ok if r.bounded_by == what]
        if bounded:
            sentences.append(
                f"{len(bounded)} run(s) were bounded by {what}, not the server, and are left out of every comparison "
                "and pick: " + ", ".join(r.config.id for r in bounded) + "."
            )
        else:
            sentences.append(f"No run was bounded by {what}.")
    sentences += _mix_stalls(ok)
    held: dict[str, list[float]] = defaultdict(list)
    for row in ok:
        if floor := delayed_ack_floor(row.record):
            held[f"{row.label} · {row.knobs.workload}"].append(floor)
    if held:
        floors = [round(f) for fs in held.values() for f in fs]
        span = f"{min(floors)}" if min(floors) == max(floors) else f"{min(floors)}–{max(floors)}"
        sentences.append(
            f"Replies from {', '.join(held)} reached their clients a steady {span} ms after the handler ended: the "
            f"signature of {DELAYED_ACK_CAUSE}, a cost every request on a kept-alive connection pays."
        )
    explained = [r for r in ok if r.ratio is not None and 0.8 <= r.ratio <= 1.2]
    if any(r.ratio is not None for r in ok):
        sentences.append(f"The model explains {len(explained)} of {len(ok)} runs within 20%.")
    if failed:
        sentences.append(f"{len(failed)} run(s) failed: {_reasons(failed)}.")
    return sentences


def advice(rows: list[Row]) -> list[str]:
    """Which configuration to pick for each workload and for a mix, and why, at the setting the runs
    share. Development servers are measured but never advised."""
    ok = [r for r in rows if r.ok]
    if not ok:
        return []
    cpus, users = baseline(ok)
    here = [r for r in compared(ok) if not r.bounded_by]  # a bounded run's throughput is not the server's
    served = [r for r in here if not _development(r)]
    others = sorted({r.knobs.cpus for r in _served_at(ok, users)} - {cpus})
    picks: dict[str, Row] = {}
    sentences = []
    for workload in ("io", "cpu"):
        group = [r for r in served if r.knobs.workload == workload]
        bounded = [r for r in compared(ok) if r.knobs.workload == workload and r.bounded_by]
        if not group and bounded:
            sentences.append(
                f"No {workload} pick: every {workload} run at this setting was bounded by {bounded[0].bounded_by}, "
                "so none measured a server's throughput."
            )
        if not group:
            continue
        pick = picks[workload] = _pick(group)
        text = (
            f"For {workload}-bound load ({users} users, {_limit(cpus)}), pick {pick.label}: {_fmt(pick.rps)} req/s, "
            f"p95 {pick.p95_ms:.0f} ms{_tie(pick, group)}{_why(pick, group)}"
        )
        dev = max((r for r in here if r.knobs.workload == workload and _development(r)), key=lambda r: r.rps, default=None)
        if cpus and not others and pick.prediction is not None and pick.prediction.binding == CPU:
            text += (
                f" (only CPUS={cpus:g} was measured: with more CPUs, modes with more processes can pull ahead; "
                "the scaling experiment measures it)"
            )
        text += "."
        if dev is not None and dev.rps > pick.rps * (1 + LEVEL):
            text += f" {dev.label} served more ({_fmt(dev.rps)} req/s), but it is Django's development server."
        sentences.append(text)
    for other in others:
        for workload, usual in picks.items():
            group = [r for r in _served_at(ok, users) if r.knobs.cpus == other and r.knobs.workload == workload]
            group = [r for r in group if not r.bounded_by]
            if group and usual.label not in {r.label for r in _level(group)}:  # a pick level with the usual one is noise
                pick = _pick(group)
                sentences.append(
                    f"With CPUS={other:g}, the {workload} pick changes to {pick.label}: {_fmt(pick.rps)} req/s, "
                    f"p95 {pick.p95_ms:.0f} ms{_tie(pick, group)}{_why(pick, group)}."
                )
    sentences += _mix([r for r in _served_at(ok, users) if not r.bounded_by], users)
    return sentences


def _served_at(rows: list[Row], users: int) -> list[Row]:
    return [r for r in rows if r.knobs.users == users and not _development(r)]


def _limit(cpus: float) -> str:
    return f"CPUS={cpus:g}" if cpus else "no CPU limit"


def _io_p95(row: Row) -> float:
    io = row.kinds.get("io")
    return (io.p95_ms if io else None) or row.p95_ms


def _mix(served: list[Row], users: int) -> list[str]:
    """For a mix of io and cpu, only from measured mix runs: the most throughput, and among runs level
    with it the lowest io p95 (the many io requests are the ones a prime count holds up)."""
    mixes = [r for r in served if r.knobs.workload == "mix"]
    if not mixes:
        return ["A mix of io and cpu requests was not measured, so there is no pick for one: run WORKLOAD=mix "
                "(the quick experiment has mix runs)."]  # fmt: skip
    sentences = []
    for (cpus, share), group in sorted(_mix_groups(mixes).items()):
        level = _level(group)
        pick = min(level, key=_io_p95)
        worst = max(group, key=_io_p95)
        text = (
            f"For a mix ({share:.0%} cpu requests, {users} users, {_limit(cpus)}), pick {pick.label}: {_fmt(pick.rps)} req/s, "
            f"io p95 {_kind_p95(pick, 'io'):.0f} ms, cpu p95 {_kind_p95(pick, 'cpu'):.0f} ms"
        )
        others = [r.label for r in level if r is not pick]
        if others:
            text += f" (level in throughput with {', '.join(others)}: the lowest io p95 of them)"
        if worst is not pick and _io_p95(worst) > 1.5 * _io_p95(pick):
            text += f"; in {worst.label} io requests reached p95 {_io_p95(worst):.0f} ms, {_held_by(worst)}"
        sentences.append(text + ".")
    return sentences


def _kind_p95(row: Row, kind: str) -> float:
    stats = row.kinds.get(kind)
    return (stats.p95_ms if stats else None) or 0.0


def _mix_groups(rows: list[Row]) -> dict[tuple[float, float], list[Row]]:
    """Mix runs by CPU limit and share of cpu requests."""
    grouped: dict[tuple[float, float], list[Row]] = defaultdict(list)
    for row in rows:
        grouped[(row.knobs.cpus, row.knobs.mix_cpu_share)].append(row)
    return grouped


def _held_by(row: Row) -> str:
    """Why io requests took longer than their wait: no free worker (the model's C), or, where every
    request had one, the CPU the prime counts held (one event loop, or one GIL)."""
    x = row.prediction
    if x is not None and x.in_flight < row.knobs.users:
        return f"waiting for one of its {x.in_flight} workers"
    return "held up behind the prime counts"


def _mix_stalls(rows: list[Row]) -> list[str]:
    """Where every request of a mix had a worker, how far its io requests waited behind the prime counts."""
    sentences = []
    for row in rows:
        io = row.kinds.get("io")
        if row.knobs.workload != "mix" or not io or not io.p50_ms or _held_by(row).startswith("waiting"):
            continue
        wait_ms = row.knobs.io_seconds * 1000
        if io.p95_ms is not None and io.p95_ms > 2 * wait_ms + 50:
            sentences.append(
                f"In the mix, {row.label}'s io requests took p95 {io.p95_ms:.0f} ms for a {wait_ms:.0f} ms database "
                f"wait: they waited behind cpu requests (p95 {_kind_p95(row, 'cpu'):.0f} ms)."
            )
    return sentences


def _development(row: Row) -> bool:
    return row.knobs.server.development


def _pick(group: list[Row]) -> Row:
    """The most throughput; among runs level with it, the lowest p95 latency."""
    return min(_level(group), key=lambda r: r.p95_ms)


def _level(group: list[Row]) -> list[Row]:
    top = max(r.rps for r in group)
    return [r for r in group if r.rps >= top / (1 + LEVEL)]


def _tie(pick: Row, group: list[Row]) -> str:
    """Says so when the pick won on latency among throughputs too close to tell apart."""
    level = [r.label for r in _level(group) if r is not pick]
    return f" (level in throughput with {', '.join(level)}: the lowest p95 of them)" if level else ""


def _why(pick: Row, group: list[Row]) -> str:
    """The model's reason a pick leads: its requests in flight, or its CPU per request when the CPU binds."""
    x = pick.prediction
    if x is None:
        return ""
    users = pick.knobs.users
    if x.binding == CONCURRENCY:
        waiting = "none waits for a free worker" if x.in_flight >= users else f"{users - x.in_flight} wait for a free one"
        return f", because it holds {x.in_flight} of the {users} users' requests in flight at once ({waiting})"
    per_request = pick.measured.server.cpu_seconds_per_request or 0.0
    lowest = min(r.measured.server.cpu_seconds_per_request or per_request for r in group)
    least = ", the least of the modes here" if per_request <= lowest * (1 + LEVEL) else ""
    return f": {cpu_cap(pick)} binds, so what counts is CPU per request, {per_request * 1000:.1f} ms{least}"


def cpu_cap(row: Row) -> str:
    """What sets P, the CPUs of Python at once, in words: never a CPU limit that was not set."""
    x, cpus, model = row.prediction, row.knobs.cpus, row.record.model
    cores = row.record.machine.cores_available or 1
    assert x is not None and model is not None
    processes = model.processes
    if cpus and cpus <= min(processes, cores):
        return f"the CPU limit (CPUS={cpus:g}, {x.parallelism:g} CPU of Python at once)"
    if processes <= cores:
        return f"its process count ({processes}: {x.parallelism:g} CPU of Python at once, one per process under the GIL)"
    return f"the machine's {cores} cores ({x.parallelism:g} CPU of Python at once)"


def _reasons(failed: list[Row]) -> str:
    return "; ".join(f"{r.config.id} ({r.record.reason})" for r in failed)


def _saturation(rows: list[Row], key: str, noun: str) -> list[str]:
    """Where adding `key` stopped helping, one sentence per workload, when an experiment varied it.
    A series is one configuration with only `key` changing; it needs three points to tell."""
    others = [k for k in SERIES_KNOBS if k != key]
    series: dict[tuple[str, str, tuple[object, ...]], list[Row]] = defaultdict(list)
    for row in rows:
        values = knob_values(row.knobs)
        series[(row.label, row.knobs.workload, tuple(values[k] for k in others))].append(row)
    outcomes: dict[str, dict[tuple[str, float], list[str]]] = defaultdict(lambda: defaultdict(list))
    for (name, workload, _), group in series.items():
        group.sort(key=lambda r: knob(r, key))
        if len(group) < 3:
            continue
        stalled = [a for a, b in itertools.pairwise(group) if a.rps and b.rps < a.rps * (1 + STALL)]
        outcome = ("stopped helping at", knob(stalled[0], key)) if stalled else ("still helped up to", knob(group[-1], key))
        if name not in outcomes[workload][outcome]:
            outcomes[workload][outcome].append(name)
    sentences = []
    for workload, found in outcomes.items():
        parts = [
            f"{verb} {at:g} for {', '.join(names)}"
            for (verb, at), names in sorted(found.items(), key=lambda o: (o[0][1], o[0][0]))
        ]
        sentences.append(f"More {noun} ({workload}): " + "; ".join(parts) + ".")
    return sentences


def knob(row: Row, key: str) -> float:
    """A numeric knob of a row, by its name in a record (users, cpus, workers)."""
    value = getattr(row.knobs, key)
    assert isinstance(value, int | float)
    return float(value)


def _check_order(item: tuple[tuple[str, str], QuickCheck]) -> tuple[str, int]:
    (mode, workload), _ = item
    return workload, list(MODES).index(mode) if mode in MODES else len(MODES)


@dataclass(frozen=True)
class QuickCheckRow:
    """The quick check of one (mode, workload), beside the post's; totals in seconds."""

    mode: str
    workload: str
    replies: list[Reply]
    total: float
    ratio: float | None  # to nothreading's
    post_total: float | None
    post_ratio: float | None


def quick_checks(records: list[RunRecord], demos: list[QuickCheck]) -> list[QuickCheckRow]:
    """The quick check per (mode, workload): the lab's two-request total beside the post's, as ratios
    to nothreading (absolute times depend on IO_SECONDS and the machine)."""
    latest: dict[tuple[str, str], QuickCheck] = {}
    for check in [r.quick_check for r in records if r.quick_check] + demos:
        latest[(check.mode, check.workload)] = check
    rows: list[QuickCheckRow] = []
    for (mode, workload), check in sorted(latest.items(), key=_check_order):
        base = latest.get(("nothreading", workload))
        post = POST_QUICK_CHECK.get((mode, workload))
        post_base = POST_QUICK_CHECK.get(("nothreading", workload))
        ratio = check.total_seconds / base.total_seconds if base else None
        rows.append(QuickCheckRow(mode, workload, check.replies, check.total_seconds, ratio, post,
                                  post / post_base if post and post_base else None))  # fmt: skip
    return rows


PARITY_GAP = 0.15  # a compose/native ratio further than this from 1 is named, with its cause


@dataclass(frozen=True)
class ParityPair:
    """One configuration on both backends: compose/native of throughput and p95, and the cause of a gap."""

    run: str
    native: Row
    compose: Row
    rps_ratio: float | None
    p95_ratio: float | None
    cause: str  # empty within PARITY_GAP


def parity(rows: list[Row]) -> list[ParityPair]:
    """The same configuration measured on both backends, side by side: compose/native of throughput
    and p95, and where they differ by more than PARITY_GAP, what the records say differed."""
    pairs: dict[str, dict[str, Row]] = defaultdict(dict)
    for row in rows:
        if row.ok and row.config.backend:
            k = row.knobs
            name = f"{run_names(k).label} · {k.workload} · {k.users} users, {_limit(k.cpus)}"
            pairs[name][row.config.backend] = row
    found: list[ParityPair] = []
    for name, both in pairs.items():
        if set(both) != {"native", "compose"}:
            continue
        native, compose = both["native"], both["compose"]
        rps = compose.rps / native.rps if native.rps else None
        p95 = compose.p95_ms / native.p95_ms if native.p95_ms else None
        gap = any(r is not None and abs(r - 1) > PARITY_GAP for r in (rps, p95))
        found.append(ParityPair(name, native, compose, rps, p95, _parity_cause(native, compose) if gap else ""))
    return found


def _parity_cause(native: Row, compose: Row) -> str:
    """What the two records say differed: the server's CPU per request, the engine's own CPU (its port
    proxy and runtime, counted as 'other'), a bound, or throttling."""
    causes = []
    for row in (native, compose):
        if row.bounded_by:
            causes.append(f"the {row.config.backend} run was bounded by {row.bounded_by}")
    per = [r.measured.server.cpu_seconds_per_request or 0 for r in (native, compose)]
    if per[0] and abs(per[1] / per[0] - 1) > PARITY_GAP:
        causes.append(f"the server's CPU per request was {per[0] * 1000:.1f} ms native, {per[1] * 1000:.1f} ms in its container")
    other = [_other_cpu(r) for r in (native, compose)]
    seconds = compose.locust.measured_seconds or 1
    if other[1] - other[0] > 0.1 * seconds:
        causes.append(
            f"the engine itself (port proxy, runtime) used {(other[1] - other[0]) / seconds:.2f} CPU more, on shared cores"
        )
    throttled = [r.measured.server.throttled_seconds or 0 for r in (native, compose)]
    if abs(throttled[1] - throttled[0]) > 0.1 * seconds:
        causes.append(f"the CPU quota throttled the server {throttled[0]:.1f} s native, {throttled[1]:.1f} s in its container")
    delayed = [delayed_ack_floor(r.record) for r in (native, compose)]
    if bool(delayed[0]) != bool(delayed[1]):
        causes.append("only one backend's replies waited for delayed ACKs")
    return "; ".join(causes) or "nothing the records show: noise of shared cores, or overhead outside the parts the lab measures"


def _other_cpu(row: Row) -> float:
    """The machine's CPU beside the lab's parts over the run's window (an engine's own, in compose)."""
    whole = row.measured.machine_cpu
    return (whole.parts_cpu_seconds.get("other") if whole else None) or 0.0


@dataclass(frozen=True)
class Step:
    """One step of a capacity search, from its record: the rate asked for, its verdict and open arrivals."""

    rate: float
    step: CapacityStep
    arrivals: OpenArrivals | None

    @property
    def held(self) -> bool:
        return self.step.held

    @property
    def broke(self) -> bool:
        return self.step.broke


@dataclass(frozen=True)
class Capacity:
    """One configuration's capacity search, from its step records alone."""

    label: str
    mode: str
    workload: str
    cpus: float
    slo_ms: float
    steps: list[Step]  # by rate
    capacity: float | None
    model: float | None

    @property
    def ratio(self) -> float | None:
        return self.capacity / self.model if self.capacity and self.model else None


def capacities(records: list[RunRecord]) -> list[Capacity]:
    groups: dict[tuple[str, str, float, float], list[tuple[RunRecord, CapacityStep]]] = defaultdict(list)
    for record in records:
        if record.capacity_step:
            k = record.config.knobs
            step = record.capacity_step
            groups[(label(record.config), k.workload, k.cpus, step.slo_p95_ms)].append((record, step))
    found = []
    for (name, workload, cpus, slo), steps in groups.items():
        rows = sorted((Step(r.config.arrival_rate, step, r.measured.locust.open if r.measured else None) for r, step in steps),
                      key=lambda step: step.rate)  # fmt: skip
        held = [step.rate for step in rows if step.held]
        model = next((m for m in (saturation(r) for r, _ in steps) if m), None)
        # nothing broke: the highest rate held is a lower bound, never a capacity to rank
        capacity = max(held) if held and any(step.broke for step in rows) else None
        found.append(Capacity(name, steps[0][0].config.knobs.mode, workload, cpus, slo, rows, capacity, model))
    return found


def capacity_advice(found: list[Capacity]) -> list[str]:
    """Which configuration holds the most load at the target, per workload and CPU limit; development
    servers measured, never advised."""
    sentences = []
    groups: dict[tuple[str, float, float], list[Capacity]] = defaultdict(list)
    for c in found:
        groups[(c.workload, c.cpus, c.slo_ms)].append(c)
    for (workload, cpus, slo), group in sorted(groups.items()):
        ranked = sorted((c for c in group if c.capacity), key=lambda c: -(c.capacity or 0))
        served = [c for c in ranked if not MODES[c.mode].development]
        if not served:
            sentences.append(f"For {workload} at p95 ≤ {slo:g} ms ({_limit(cpus)}), no production configuration has a capacity: "
                             "none held the target below a rate that broke it.")  # fmt: skip
            continue
        best = served[0]
        text = (f"For {workload} at p95 ≤ {slo:g} ms ({_limit(cpus)}), by capacity pick {best.label}: it holds "
                f"{_fmt(best.capacity or 0)} req/s{_of_model(best)}")  # fmt: skip
        others = [f"{c.label} {_fmt(c.capacity or 0)} req/s{_of_model(c)}" for c in ranked if c is not best]
        if others:
            text += "; then " + ", ".join(others)
        sentences.append(text + ".")
    return sentences


def _of_model(c: Capacity) -> str:
    return f" ({c.ratio:.2f} of its model's {_fmt(c.model or 0)})" if c.ratio else ""


def overload(found: list[Capacity]) -> list[str]:
    """Past capacity, with arrivals that do not wait for replies, the queue grows: latency rises over the run."""
    sentences = []
    for c in found:
        broke = [s for s in c.steps if s.broke and s.arrivals and s.arrivals.p50_first_half_ms and s.arrivals.p50_second_half_ms]
        if c.capacity and broke:
            s = min(broke, key=lambda step: step.rate)
            assert s.arrivals and s.arrivals.p50_first_half_ms and s.arrivals.p50_second_half_ms
            sentences.append(
                f"{c.label} · {c.workload}: at {s.rate:g} arrivals/s, past its capacity of {_fmt(c.capacity)}, the median "
                f"request took {s.arrivals.p50_first_half_ms:.0f} ms in the first half of the run and "
                f"{s.arrivals.p50_second_half_ms:.0f} ms in the second: the queue grew."
            )
    return sentences
