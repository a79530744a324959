"""Each run beside its prediction: the rows every part of the report reads, and the setting they are
compared at."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

from contract.knobs import Knobs, Offload
from contract.modes import MODES
from lab.analysis import intervals
from lab.analysis.model.bounds import Prediction
from lab.analysis.stats import Interval, unknown
from lab.results.experiments import run_names
from lab.results.model_inputs import Inputs, inputs
from lab.results.record import Configuration, KindStats, LocustStats, Measured, RunRecord
from lab.results.request_timeline import TimelineSummary, delayed_ack


@dataclass(frozen=True)
class Row:
    """One run beside the model's prediction for it (none for a failed run, or one without CPU accounting)."""

    record: RunRecord
    label: str
    inputs: Inputs | None = None
    prediction: Prediction | None = None
    ratio: float | None = None  # measured / predicted
    repeats: tuple[RunRecord, ...] = ()  # every measured repeat of its configuration, itself included
    spread: float | None = None  # the machine's run-to-run spread, where only one run was made

    @property
    def rps_interval(self) -> Interval:
        """Its throughput with a 95% interval: over its repeats; else from its own seconds, never narrower
        than the machine's run-to-run spread (a run repeated on this machine moves at least that much)."""
        if not self.ok:
            return Interval(0.0, 0.0, 0.0)
        if len(self.repeats) > 1:
            return intervals.across(r.measured.locust.rps for r in self.repeats if r.measured)
        own = self.record.intervals.rps if self.record.intervals else None
        within = own.interval() if own else Interval(self.rps, -math.inf, math.inf)
        if self.spread is None:
            return within
        half = max(self.spread * self.rps, (within.high - within.low) / 2 if within.known else 0.0)
        return Interval(self.rps, self.rps - half, self.rps + half, n=within.n)

    @property
    def cpu_interval(self) -> Interval:
        """CPU seconds per request, with its interval over repeats or the machine's spread (unknown without either)."""
        values = [r.measured.server.cpu_seconds_per_request for r in self.repeats or (self.record,) if r.measured]
        found = [v for v in values if v is not None]
        if len(found) > 1:
            return intervals.across(found)
        x = found[0] if found else 0.0
        return Interval(x, x * (1 - self.spread), x * (1 + self.spread)) if self.spread is not None else unknown(x)

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
        """Its throughput: the mean over its repeats where it has several."""
        if not self.ok:
            return 0.0
        if len(self.repeats) > 1:
            return intervals.across(r.measured.locust.rps for r in self.repeats if r.measured).estimate
        return self.locust.rps

    @property
    def p95_ms(self) -> float:
        return self.locust.p95_ms or 0.0

    @property
    def mode(self) -> str:
        return self.knobs.mode

    @property
    def waiting_for_workers(self) -> int | None:
        """Where requests wait for a free worker (the model's C below the users): the workers they wait for."""
        x = self.prediction
        return x.in_flight if x is not None and x.in_flight < self.knobs.users else None

    @property
    def development(self) -> bool:
        """A development server (Django's runserver): measured, never advised."""
        return self.knobs.server.development

    @property
    def variant(self) -> bool:
        """A variant of its mode: prime counts offloaded, no connection pool, or a backend named."""
        return self.knobs.cpu_offload is not Offload.NONE or self.knobs.db_pool == "0" or bool(self.config.backend)

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

    def kind_p95(self, kind: str) -> float:
        stats = self.kinds.get(kind)
        return (stats.p95_ms if stats else None) or 0.0

    @property
    def io_p95(self) -> float:
        """io requests' p95; the run's own where it had no kinds apart."""
        return self.kind_p95("io") or self.p95_ms


def label(config: Configuration) -> str:
    return config.label or run_names(config.knobs).label


def delayed_ack_floor(record: RunRecord) -> float | None:
    return delayed_ack(record.measured.timeline if record.measured else None)


def analyse(record: RunRecord) -> Row:
    given = inputs(record)
    if record.measured is None or given is None:
        return Row(record, label(record.config))
    prediction = given.predict(record.config.knobs.users)
    return Row(record, label(record.config), given, prediction, record.measured.locust.rps / prediction.throughput)


def rows_of(records: list[RunRecord], spread: float | None = None) -> list[Row]:
    """One row per configuration: the repeats of one taken together (its figures their mean), in the
    order the configurations first ran; `spread` widens the intervals of configurations run once."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        shared = record.config.group if record.config.repeat else None  # only repeats share a configuration
        groups.setdefault(shared or record.config.id, []).append(record)
    found = []
    for repeats in groups.values():
        measured = tuple(r for r in repeats if r.ok)
        row = analyse(measured[0] if measured else repeats[0])
        found.append(replace(row, repeats=measured, spread=spread if len(repeats) == 1 else None))
    return found


def knob(row: Row, key: str) -> float:
    """A numeric knob of a row, by its name in a record (users, cpus, workers)."""
    value = getattr(row.knobs, key)
    assert isinstance(value, int | float)
    return float(value)


def baseline(rows: list[Row]) -> tuple[float, int]:
    """The (CPUS, users) most runs share: the setting at which modes are compared side by side."""
    counts = Counter((r.knobs.cpus, r.knobs.users) for r in rows)
    return counts.most_common(1)[0][0]


def compared(rows: list[Row]) -> list[Row]:
    cpus, users = baseline(rows)
    return [r for r in rows if r.knobs.cpus == cpus and r.knobs.users == users]


def level(group: list[Row]) -> list[Row]:
    """The rows whose throughput cannot be told apart from the highest: their 95% intervals overlap its own."""
    top = max(group, key=lambda r: r.rps)
    return [r for r in group if r.rps_interval.overlaps(top.rps_interval)]


def served_at(rows: list[Row], users: int) -> list[Row]:
    """The runs of production servers at this many users: the ones a pick can name."""
    return [r for r in rows if r.knobs.users == users and not r.development]


def mode_rank(mode: str) -> int:
    """A mode's place in the mode table (contract.modes): the order every table and chart of the report
    keeps; a mode the table no longer has comes last."""
    order = list(MODES)
    return order.index(mode) if mode in order else len(order)
