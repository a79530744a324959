"""The report's tables, cell by cell, from the rows: the runs as a reader compares them (each note
under the table, keyed by its number), where each run's CPU went, io and cpu requests apart in a mix,
the quick check beside the post's, the runs on both backends, and the capacity searches."""

from __future__ import annotations

from lab.analysis.crossing import band
from lab.analysis.timespan import duration
from lab.report import words
from lab.report.capacity import Capacity, Step
from lab.report.document import Table
from lab.report.parity import ParityPair
from lab.report.published import QuickCheckRow
from lab.report.rows import Row
from lab.results.record import CapacityFound, KindStats

RUNS = ("run", "users", "CPUS", "req/s", "p50 ms", "p95 ms", "p99 ms", "failures", "CPU ms/req", "predicted req/s",
        "binds", "measured/ predicted", "note")  # fmt: skip
CPU = ("run", "server CPU", "throttled s", "Locust CPU", "machine idle", "bounded by")
KINDS = ("run", "io p50/p95/p99 ms", "io req/s", "cpu p50/p95/p99 ms", "cpu req/s")
QUICK = ("mode", "workload", "each reply", "total", "÷ nothreading", "post's total", "post's ÷ nothreading")
PARITY = ("run", "native req/s", "compose req/s", "compose/native", "native p95 ms", "compose p95 ms",
          "compose/native p95", "gap over 15%: cause")  # fmt: skip
CAPACITY = (
    "configuration",
    "capacity: offered req/s",
    "p95 crosses near [95% band]",
    "predicted req/s",
    "crossing/predicted",
    "model saturation req/s (D_cpu ms)",
    "steps: offered req/s → p95 ms [95% interval]",
    "search took",
)


def n(value: object, digits: int = 1) -> str:
    """A figure as a cell: '–' where there is none."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def run_name(r: Row) -> str:
    return f"{r.label} · {r.knobs.workload}" + ("" if r.ok else " (failed)")


def runs(rows: list[Row]) -> Table:
    """What a reader compares across runs, the model's prediction beside it; each run's note under the table."""
    cells = []
    for i, r in enumerate(rows, 1):
        m, p = r.record.measured, r.prediction
        locust = m.locust if m else None
        per_request = m.server.cpu_seconds_per_request if m else None
        cells.append([
            run_name(r), str(r.knobs.users), f"{r.knobs.cpus:g}",
            n(locust.rps if locust else None), n(locust.p50_ms if locust else None, 0),
            n(locust.p95_ms if locust else None, 0), n(locust.p99_ms if locust else None, 0),
            n(locust.failures if locust else None), n(None if per_request is None else per_request * 1000, 2),
            n(p.throughput if p else None), p.binding if p else "–", n(r.ratio, 2), str(i),
        ])  # fmt: skip
    return Table(RUNS, cells, notes=[f"{run_name(r)}: {words.row_note(r)}" for r in rows])


def cpu(rows: list[Row]) -> Table:
    """Where each run's CPU went: the server's (and its throttling), the load generator's, the machine's idle share."""
    cells = []
    for r in rows:
        m = r.record.measured
        idle = m.machine_cpu.idle_share if m and m.machine_cpu else None
        cells.append([
            run_name(r), n(m.server.utilisation if m else None, 2), n(m.server.throttled_seconds if m else None, 2),
            n(m.load_generator.utilisation if m else None, 2), "–" if idle is None else f"{idle:.0%}", r.bounded_by or "–",
        ])  # fmt: skip
    return Table(CPU, cells, title="Where the CPU went (server and Locust in CPUs, of their limit and of a core)")


def kinds(rows: list[Row]) -> Table | None:
    """io and cpu requests apart, for the runs that sent both (a mix); None where none did."""
    mixed = [r for r in rows if len(r.kinds) > 1]
    if not mixed:
        return None
    cells = [[run_name(r), *(cell for kind in ("io", "cpu") for cell in _kind(r.kinds.get(kind)))] for r in mixed]
    return Table(KINDS, cells, title="io and cpu requests apart, in a mix")


def _kind(stats: KindStats | None) -> tuple[str, str]:
    if not stats:
        return "–", "–"
    return "/".join(n(p, 0) for p in (stats.p50_ms, stats.p95_ms, stats.p99_ms)), n(stats.rps)


def quick(checks: list[QuickCheckRow]) -> Table:
    cells = [
        [c.mode, c.workload, " / ".join(f"{q.seconds:.3f}s" for q in c.replies), f"{c.total:.3f}s", n(c.ratio, 2),
         n(c.post_total, 2) + ("s" if c.post_total else ""), n(c.post_ratio, 2)]
        for c in checks
    ]  # fmt: skip
    return Table(QUICK, cells)


def parity(pairs: list[ParityPair]) -> Table:
    cells = [
        [words.parity_run(p), n(p.native.rps), n(p.compose.rps), n(p.rps_ratio, 2), n(p.native.locust.p95_ms, 0),
         n(p.compose.locust.p95_ms, 0), n(p.p95_ratio, 2), words.parity_causes(p) or "–"]
        for p in pairs
    ]  # fmt: skip
    return Table(PARITY, cells)


def capacity(found: list[Capacity]) -> Table:
    cells = []
    for c in found:
        f = c.found
        queue = f"{f.predicted_queue}, {n(f.predicted_service_ms)} ms" if f else ""
        predicted = f"{n(f.predicted_rps)} ({queue})" if f and f.predicted_rps else "–"
        d_cpu = f.d_cpu_ms.estimate if f and f.d_cpu_ms else None
        model = f"{n(f.model_saturation_rps)} ({n(d_cpu, 2)})" if f and f.model_saturation_rps else "–"
        cells.append([
            f"{c.label} · {c.workload} · CPUS={c.cpus:g} · {c.arrivals} · p95 ≤ {c.slo_ms:g} ms",
            f.capacity if f else "search unfinished", crossing(f), predicted,
            n(f.capacity_over_predicted if f else None, 2), model, ", ".join(step(s) for s in c.steps),
            duration(f.seconds) if f else "–",
        ])  # fmt: skip
    return Table(CAPACITY, cells)


def crossing(f: CapacityFound | None) -> str:
    if f is None or f.capacity_estimate_rps is None:
        return "–"
    return f"{n(f.capacity_estimate_rps)} {band(f.capacity_estimate_low_rps, f.capacity_estimate_high_rps)}"


def step(s: Step) -> str:
    sign = "✓" if s.held else "✗" if s.broke else "?"
    low, high = s.step.p95_low_ms, s.step.p95_high_ms
    interval = f" [{n(low, 0) if low is not None else '…'}–{n(high, 0) if high is not None else '…'}]" if low or high else ""
    return f"{s.offered:.3g}→{n(s.p95_ms, 0)}{interval} {sign}"
