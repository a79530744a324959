"""A run's record: what one run keeps, in one type, and its one reading and writing of JSON.

Reports are built from records alone, so a record carries everything needed to trust and redraw
a run: its configuration, what Locust measured, the CPU of every part, the machine, what the
server said of itself, and the findings the bench judged. Each part is a frozen dataclass named
after its key in the JSON (`locust` is LocustStats, `server` ServerCpu, ...).

`read_record` takes the JSON of this SCHEMA or of an earlier one and refuses, naming the field,
what it cannot read; `record_json` writes it. Fields added after a schema was written read as None
(or empty) from the records that lack them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal

from contract.knobs import KNOBS, KnobError, Knobs, Offload
from lab.analysis.intervals import RunIntervals
from lab.analysis.latency_parts import LatencyParts
from lab.results import experiments
from lab.results.experiments import RunConfig, run_names
from lab.results.quick_check import QuickCheck
from lab.results.request_timeline import TimelineSummary
from lab.results.typedjson import JsonError, flat, read, write
from lab.stack.machine import Machine
from lab.stack.machine_cpu import MachineWindow

# 1: the first records; 2: knobs in full, the server's own report, io and cpu apart, the machine's CPU
SCHEMA = 2

Status = Literal["ok", "failed"]
Verdict = Literal["held", "broke", "unsure"]


# ---------------------------------------------------------------- what ran


@dataclass(frozen=True)
class Configuration:
    """`config`: the run's names, every knob but RUN_TIME (flat beside them), and how it was measured."""

    id: str  # file names and resume: mode-workload-cpus1-u10-w2-t1
    label: str  # what the report shows: gunicorn 2×1
    knobs: Knobs = field(metadata=flat(lambda data, where: knobs_of(data, where), lambda knobs: knob_values(knobs)))
    warmup: float
    run_time: float  # measured seconds, after the warm-up (the knob RUN_TIME is the whole Locust run)
    locust_processes: int = 1
    backend: str | None = None  # set where an experiment compares backends: the run's own
    arrival_rate: float = 0.0  # open arrivals per second; 0: a closed loop of users
    arrivals: str = "poisson"  # open arrivals: poisson or constant
    repeat: int = 0  # which repeat of its configuration (1, 2, ...); 0: an experiment without repeats
    group: str | None = None  # the configuration a repeat belongs to: its id without the repeat

    @classmethod
    def of(cls, run: RunConfig) -> Configuration:
        """A run's configuration as its record keeps it (RunConfig.as_dict, read as a record reads it)."""
        return read(cls, run.as_dict(), "config")


RECORDED_KNOBS = tuple(name for name in KNOBS if name != "RUN_TIME")  # a record keeps the measured seconds instead


def knobs_of(config: Mapping[str, object], where: str = "config") -> Knobs:
    """A record's `config` back to the knobs it ran with (experiments.knobs_of), or JsonError naming it."""
    try:
        return experiments.knobs_of(dict(config))
    except KnobError as error:
        raise JsonError(f"{where}: {error}") from None


def knob_values(knobs: Knobs) -> dict[str, object]:
    """The knobs as a record keeps them: each by its name in lower case, as JSON."""
    return {name.lower(): write(getattr(knobs, name.lower())) for name in RECORDED_KNOBS}


@dataclass(frozen=True)
class LimitApplied:
    """`cpu_limit`: the limit the run asked for, and how (and whether) the kernel enforced it."""

    cpus: float
    method: str | None
    enforced: bool


@dataclass(frozen=True)
class ModelCounts:
    """`model`: the throughput model's C (requests in flight) and processes running Python."""

    in_flight: int
    processes: int


# ---------------------------------------------------------------- what the server said of itself


@dataclass(frozen=True)
class ServerCpuReport:
    """The server's own account of its CPU: its process tree, and its cgroup as it sees it."""

    process_tree_seconds: float | None = None
    cgroup_seconds: float | None = None
    cgroup_limit_cpus: float | None = None
    nr_throttled: int | None = None
    throttled_seconds: float | None = None


@dataclass(frozen=True)
class ServerReport:
    """The server's report of itself at /healthz (contract.endpoint.server_report), as far as the lab reads it."""

    mode: str | None = None
    program: str | None = None
    version: str | None = None
    python: str | None = None
    worker_class: str | None = None
    workload: str | None = None
    io_seconds: float | None = None
    primes_limit: int | None = None
    workers: int | None = None
    threads: int | None = None
    db_pool: str | None = None
    db_pool_size: int | None = None
    db_pool_open: int | None = None  # connections each process opened at start (contract.pools)
    cpu_offload: Offload | None = None
    offload_processes: int | None = None
    pid: int | None = None
    master_pid: int | None = None
    worker_pids: tuple[int, ...] = ()
    cpu: ServerCpuReport | None = None
    interpreter: dict[str, object] | None = None  # its build (contract.interpreter)
    worker_rss_bytes: tuple[int, ...] = ()  # each worker's resident memory (an app's server reports it)


@dataclass(frozen=True)
class Verification:
    """`verification`: the server runs the run's configuration and does the work; or why not (`detail`)."""

    ok: bool
    pairs: int | None = None
    db_seconds: float | None = None
    cpu_seconds_used: float | None = None
    server: ServerReport | None = None
    detail: str | None = None


@dataclass(frozen=True)
class WorkerGone:
    pid: int
    last_answer_s: float | None  # from the first measured request; None where the timeline does not say


@dataclass(frozen=True)
class ServerAfter:
    """`server_after`: the server's report once more after the run, against the run's knobs."""

    differences: tuple[str, ...]
    workers_gone: tuple[WorkerGone, ...]
    workers_new: tuple[int, ...]
    cpu: ServerCpuReport | None = None
    worker_rss_bytes: tuple[int, ...] = ()  # each worker's resident memory once it has served the run


@dataclass(frozen=True)
class CpuReadings:
    """`server_cpu_readings`: the server's CPU over one stretch, from its cgroup and from its own report."""

    cgroup_seconds: float
    server_seconds: float | None
    server_to_cgroup: float | None


# ---------------------------------------------------------------- what was measured


@dataclass(frozen=True)
class KindStats:
    """One kind of request (io, cpu) of a run."""

    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float


@dataclass(frozen=True)
class OpenShare:
    """One Locust worker's part of an open-arrival window: its slot, its rate (the run's over the workers), what it
    offered, and its arrivals answered and still waiting at the end."""

    worker: str  # Locust's id for it: its host's name, then a random part
    slot: int
    rate: float
    offered: int
    answered: int
    waiting: int


@dataclass(frozen=True)
class OpenArrivals:
    """`locust.open`: what an open-arrival run offered and sent, and latency from each arrival's intended start."""

    rate: float
    offered: int
    sent: int  # answered, and still unanswered at the end
    late: int
    dropped: int
    offered_rps: float
    sent_rps: float
    p95_ms: float | None
    poisson: bool = True
    unanswered: int = 0
    failure_ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p50_first_half_ms: float | None = None
    p50_second_half_ms: float | None = None
    p95_first_half_ms: float | None = None
    p95_second_half_ms: float | None = None
    workers: tuple[OpenShare, ...] = ()  # Locust's workers, each offering its share; none for one Locust process


@dataclass(frozen=True)
class LocustError:
    error: str
    occurrences: int


@dataclass(frozen=True)
class LocustStats:
    """`locust`: requests, failures and latency (ms) of the measured window; io and cpu requests apart."""

    requests: int
    failures: int
    failure_ratio: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float
    rps: float
    measured_seconds: float
    avg_ms: float | None = None
    by_workload: dict[str, KindStats] = field(default_factory=dict)
    open: OpenArrivals | None = None  # open arrivals only
    errors: tuple[LocustError, ...] = ()  # the window's most frequent


@dataclass(frozen=True)
class ServerCpu:
    """`server`: the server's CPU over the window, from its cgroup (or its process tree)."""

    cpu_seconds: float
    cpu_seconds_per_request: float | None
    nr_throttled: int | None
    throttled_seconds: float | None
    utilisation: float | None = None  # CPUs used on average


@dataclass(frozen=True)
class LoadGenerator:
    """`load_generator`: Locust's CPU; utilisation is of a core, per load-generating process."""

    cpu_seconds: float | None
    processes: int
    utilisation: float | None
    window_cpu_seconds: float | None = None
    locust_warned_cpu: bool = False


@dataclass(frozen=True)
class Measured:
    """What a measured window gives a record: its keys stand in the record itself."""

    locust: LocustStats
    server: ServerCpu
    load_generator: LoadGenerator
    timeline: TimelineSummary | None
    machine_cpu: MachineWindow | None = None


# ---------------------------------------------------------------- what the bench judged


@dataclass(frozen=True)
class LoadGeneratorBusy:
    kind: ClassVar[str] = "load_generator_busy"
    utilisation: float


@dataclass(frozen=True)
class LocustWarnedCpu:
    kind: ClassVar[str] = "locust_warned_cpu"


@dataclass(frozen=True)
class ServerWaitedOnLoadGenerator:
    kind: ClassVar[str] = "server_waited_on_load_generator"
    idle: float


@dataclass(frozen=True)
class MachineSaturated:
    kind: ClassVar[str] = "machine_saturated"
    idle_share: float | None
    cores: int
    shares: dict[str, float]
    server_cpu: float
    ceiling: float


@dataclass(frozen=True)
class WorkersReplaced:
    kind: ClassVar[str] = "workers_replaced"
    gone: tuple[WorkerGone, ...]
    new: tuple[int, ...]


@dataclass(frozen=True)
class DelayedAck:
    kind: ClassVar[str] = "delayed_ack"
    ms: float


Finding = LoadGeneratorBusy | LocustWarnedCpu | ServerWaitedOnLoadGenerator | MachineSaturated | WorkersReplaced | DelayedAck


@dataclass(frozen=True)
class Calibration:
    """`calibration`: wrk's figures at the same connections, or why there are none."""

    tool: str
    skipped: str | None = None
    connections: int | None = None
    seconds: int | None = None
    rps: float | None = None
    locust_ratio: float | None = None


@dataclass(frozen=True)
class CapacityStep:
    """`capacity_step`: a capacity search's step so far, over its windows up to this run's."""

    slo_p95_ms: float
    held: bool
    why: str
    verdict: Verdict | None = None  # None in records from before verdicts: held, or broke
    nominal_rps: float | None = None
    offered_rps: float | None = None
    answered: int | None = None
    waiting: int | None = None
    windows: int | None = None
    seconds: float | None = None
    p95_ms: float | None = None
    p95_low_ms: float | None = None
    p95_high_ms: float | None = None
    extended: bool = False

    @property
    def broke(self) -> bool:
        return self.verdict == "broke" if self.verdict is not None else not self.held


@dataclass(frozen=True)
class DcpuMs:
    """D_cpu in ms with its interval; None for a side the data cannot bound."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class PartsAt:
    """Where the requests' time went in one window of a capacity search, at the rate it offered."""

    offered_rps: float
    parts: LatencyParts


@dataclass(frozen=True)
class CapacityFound:
    """capacity.json's entry for one configuration: its capacity range, beside the prediction and the model."""

    id: str
    label: str
    workload: str
    cpus: float
    arrivals: str
    slo_p95_ms: float
    capacity: str  # the range in words
    capacity_low_rps: float | None
    capacity_high_rps: float | None
    capacity_mid_rps: float | None
    capacity_estimate_rps: float | None  # where p95 crosses the target along the steps
    lower_bound_only: bool
    crossed: bool
    capacity_rps: float | None  # the highest rate held below one that broke; none for a lower bound
    predicted_rps: float | None
    predicted_queue: str | None
    predicted_service_ms: float | None
    predicted_saturation_rps: float | None
    capacity_over_predicted: float | None
    differs_from_prediction: bool
    model_saturation_rps: float | None
    d_cpu_ms: DcpuMs | None
    idle_cpu: float | None
    ratio: float | None
    contradiction: str | None
    suspect: str | None
    steps: int
    runs: int
    seconds: float
    stopped: str | None = None  # why the search ended before it closed in, when a budget ended it
    mode: str = ""
    predicted_servers: int | None = None
    predicted_outside_ms: float | None = None  # each request's time beside the predicted queue (its wait, where the CPU binds)
    cause: str | None = None  # why the capacity lies more than 10% from the prediction, as the records show it
    parts_low: PartsAt | None = None  # where the time went at the lowest step
    parts_near: PartsAt | None = None  # and at the first step past the capacity (the lowest that broke)
    # the crossing's 95% band from every step near the target together (lab.analysis.crossing); None: open
    capacity_estimate_low_rps: float | None = None
    capacity_estimate_high_rps: float | None = None


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class RunRecord:
    schema: int
    experiment: str
    index: int
    total: int | None  # None: a capacity search, which does not know its count ahead
    config: Configuration
    backend: str
    machine: Machine
    status: Status
    reason: str | None  # why a failed run failed
    started_at: str
    finished_at: str | None
    cpu_limit: LimitApplied | None
    model: ModelCounts | None
    verification: Verification | None
    measured: Measured | None = field(metadata=flat())  # None where the run failed before measuring
    bounded_by_load_generator: bool
    warnings: tuple[str, ...]  # the findings in words
    bounded_by_machine: bool = False
    findings: tuple[Finding, ...] = ()
    where: dict[str, object] | None = None  # the backend's facts of where it ran (compose: its images), as it gave them
    quick_check: QuickCheck | None = None
    server_after: ServerAfter | None = None
    server_cpu_readings: CpuReadings | None = None
    calibration: Calibration | None = None
    capacity_step: CapacityStep | None = None
    measure_again: bool = False  # its backend went away: RESUME=1 measures it again
    intervals: RunIntervals | None = None  # how sure its figures are (lab.analysis.intervals)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def begun(cls, *, experiment: str, index: int, total: int | None, config: Configuration, backend: str,
              machine: Machine, started_at: str, model: ModelCounts | None) -> RunRecord:  # fmt: skip
        """A run's record as it begins, for the bench and a kept run alike: failed, with nothing measured,
        until what it measured is judged (lab.bench.checks.judged)."""
        return cls(schema=SCHEMA, experiment=experiment, index=index, total=total, config=config, backend=backend,
                   machine=machine, status="failed", reason=None, started_at=started_at, finished_at=None,
                   cpu_limit=None, model=model, verification=None, measured=None, bounded_by_load_generator=False,
                   warnings=())  # fmt: skip


def now() -> str:
    """The time as records and manifests keep it: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_record(data: object) -> RunRecord:
    """A record from its JSON, of this SCHEMA or an earlier one; JsonError names what does not fit."""
    if not isinstance(data, dict):
        raise JsonError("not a JSON object")
    schema = data.get("schema")
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA:
        raise JsonError(f"schema is {schema!r}: this lab reads records of schema 1 to {SCHEMA}")
    if schema == 1:
        data = _from_schema_1(data)
    record = read(RunRecord, data)
    if record.ok and (record.measured is None or record.model is None):
        raise JsonError("a run with status 'ok' lacks its measurement (locust, server, load_generator) or model")
    return record


def record_json(record: RunRecord) -> dict[str, object]:
    written = write(record)
    assert isinstance(written, dict)
    return written


def _from_schema_1(data: dict[str, object]) -> dict[str, object]:
    config = data.get("config")
    return {**data, "config": labelled(config)} if isinstance(config, dict) else data


def labelled(config: dict[str, object]) -> dict[str, object]:
    """A `config` of schema 1 named a run by its id alone: its label comes from its knobs."""
    return config if "label" in config else {**config, "label": run_names(knobs_of(config)).label}
