"""Results folders as a comparison reads them: an experiment's runs (`make bench`), a capacity search's
(`make capacity`), a decision's (`make bench APP=...`) or runs kept from the Lab tab, each into its
configurations, each configuration as its server reported running it, with what its runs read for each
figure. The files are read here; what they say is judged elsewhere."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from lab.analysis.intervals import machine_spread
from lab.analysis.stats import Interval, correlated_quantile_interval, mean_interval, unknown
from lab.compare.difference import proportion
from lab.compare.figures import QUANTILES, Figure, Reading, at_least
from lab.compare.setups import Arrivals, Build, Group, Kind, Limit, Machine, Setup, Side, Work
from lab.results.decision import read_paths
from lab.results.folder import RecordError, ResultsFolder
from lab.results.manifest import FolderKind, default_kind, read_manifest
from lab.results.record import CapacityFound, RunRecord, ServerReport
from lab.results.run_files import read_records
from lab.results.typedjson import JsonError, read
from lab.stack.procs import LabError

MB = 2**20  # as the decision counts a worker's memory (lab.bench.decide)


class CompareError(LabError):
    """A folder that a comparison cannot read: the message names it and what was expected."""


def read_side(path: Path, role: str) -> Side:
    """A results folder of any kind; `role` (BASE, NEW) names it in a refusal."""
    if not path.is_dir():
        raise CompareError(f"{role}={path} is not a folder: {role} takes a results folder, such as results/latest")
    manifest = read_manifest(path)
    folder_kind = manifest.kind if manifest else default_kind(path)
    if folder_kind is FolderKind.COMPARE:
        raise CompareError(f"{role}={path} holds a comparison, not runs: {role} takes the results of make bench or capacity")
    records = read_records(path)
    if not records:
        raise CompareError(f"{role}={path} holds no run records yet")
    kind = Kind[folder_kind.name]  # the same kinds, in a comparison's words
    app = manifest.app if manifest else None
    files = ResultsFolder(path)
    spread = machine_spread(files.interpreter)
    alone = {Path(p.record).name for p in read_paths(path) or []}  # a decision's paths, each alone: not a configuration
    closed = [r for r in records if r.capacity_step is None and files.record(r.index, r.config.id).name not in alone]
    steps = [r for r in records if r.capacity_step is not None]
    groups = [*_closed(path, closed, app, spread), *_searched(_searches(files, kind), steps, app)]
    name = (manifest.name if manifest else "") or path.resolve().name
    return Side(str(path), name, kind, tuple(groups), _machine(files, records, spread))


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CompareError(f"{path}: not readable ({error})") from None


# ---------------------------------------------------------------- what ran


def setup_of(record: RunRecord, app: str | None, *, target: float | None = None) -> Setup:
    """A run's configuration as its server reported it at the start (its verification), else as it was asked.
    A run of a capacity search (`target`) is named by its arrivals' process alone: the search chose the rates."""
    knobs, config = record.config.knobs, record.config
    said = record.verification.server if record.verification and record.verification.server else ServerReport()
    kind = knobs.workload
    work = Work(
        kind,
        (said.io_seconds if said.io_seconds is not None else knobs.io_seconds) if kind in ("io", "mix") else None,
        (said.primes_limit if said.primes_limit is not None else knobs.primes_limit) if kind in ("cpu", "mix") else None,
        knobs.mix_cpu_share if kind == "mix" else None,
    )
    if target is not None:
        arrivals = Arrivals(process=config.arrivals)
    elif config.arrival_rate > 0:
        arrivals = Arrivals(rate=config.arrival_rate, process=config.arrivals)
    else:
        arrivals = Arrivals(users=knobs.users)
    limit = record.cpu_limit
    return Setup(
        mode=said.mode or knobs.mode,
        workers=said.workers if said.workers is not None else knobs.workers,
        threads=said.threads if said.threads is not None else knobs.threads,
        cpus=Limit(limit.cpus, limit.enforced) if limit else Limit(knobs.cpus, False),
        workload=work,
        arrivals=arrivals,
        target=target,
        db_pool=said.db_pool or knobs.db_pool,
        cpu_offload=str(said.cpu_offload or knobs.cpu_offload),
        interpreter=build_of(said.interpreter),
        app=app,
        backend=record.backend,
    )


def build_of(facts: dict[str, object] | None) -> Build | None:
    """The interpreter's build from what it said of itself (contract.interpreter.build); None where it did not."""
    if not facts or not isinstance(facts.get("implementation"), str) or not isinstance(facts.get("version"), str):
        return None
    return Build(str(facts["implementation"]), str(facts["version"]), facts.get("optimizations") is True,
                 facts.get("lto") is True, facts.get("gil") is not False)  # fmt: skip


def _closed(folder: Path, records: list[RunRecord], app: str | None, spread: float | None) -> list[Group]:
    """Closed loops (and open arrivals at a set rate): the repeats of a configuration together."""
    configurations: dict[str, list[RunRecord]] = {}
    for record in records:
        configurations.setdefault(record.config.group or record.config.id, []).append(record)
    groups = []
    for runs in configurations.values():
        ok = [r for r in runs if r.ok and r.measured is not None]
        setup = setup_of((ok or runs)[0], app)
        if ok:
            groups.append(Group(setup, runs[0].config.label, len(ok), readings(folder, ok, spread)))
        else:
            groups.append(Group(setup, runs[0].config.label, len(runs), failed=runs[-1].reason or "failed"))
    return groups


# ---------------------------------------------------------------- what the runs read


def readings(folder: Path, runs: list[RunRecord], spread: float | None) -> dict[Figure, Reading]:
    """Each figure of a configuration's measured runs. One run brings its own intervals (never narrower than the
    machine's spread); repeats bring their spread instead. Failures are counted over every run together."""
    measured = [r.measured for r in runs if r.measured is not None]
    one = runs[0] if len(runs) == 1 else None
    found: dict[Figure, Reading] = {}
    own_rps = one.intervals.rps if one and one.intervals else None
    rps = tuple(m.locust.rps for m in measured)
    found[Figure.RPS] = Reading(rps, at_least(own_rps.interval() if own_rps else unknown(rps[0]), spread) if one else None)
    samples = _latencies(folder, one) if one else None
    for figure, q in QUANTILES.items():
        values = [_percentile(r, figure) for r in runs]
        if any(v is None for v in values):
            continue
        runs_of = tuple(v for v in values if v is not None)
        own = correlated_quantile_interval([samples], q) if samples else _stored(one, figure) if one else None
        found[figure] = Reading(runs_of, at_least(own or unknown(runs_of[0]), spread) if one else None)
    requests, failures = sum(m.locust.requests for m in measured), sum(m.locust.failures for m in measured)
    if requests:
        found[Figure.FAILURES] = Reading(tuple(m.locust.failures / max(1, m.locust.requests) for m in measured),
                                         proportion(failures, requests))  # fmt: skip
    cpu = [m.server.cpu_seconds_per_request for m in measured]
    if cpu and all(c is not None for c in cpu):
        ms = tuple(c * 1000 for c in cpu if c is not None)
        found[Figure.CPU] = Reading(ms, at_least(unknown(ms[0]), spread) if one else None)
    workers = [_workers_mb(r) for r in runs]
    if workers and all(workers):
        means = tuple(statistics.fmean(w) for w in workers)
        found[Figure.MEMORY] = Reading(means, mean_interval(workers[0]) if one else None)
    return found


def _percentile(record: RunRecord, figure: Figure) -> float | None:
    """A run's percentile: from its own requests where the record worked it out, else Locust's."""
    stored = _stored(record, figure)
    if stored is not None:
        return stored.estimate
    locust = record.measured.locust if record.measured else None
    return getattr(locust, f"{figure}_ms", None) if locust else None


def _stored(record: RunRecord | None, figure: Figure) -> Interval | None:
    kept = getattr(record.intervals, f"{figure}_ms", None) if record and record.intervals else None
    return kept.interval() if kept is not None and kept.estimate is not None else None


def _latencies(folder: Path, record: RunRecord) -> list[float] | None:
    """A run's client latencies in the order the requests started, from its timeline; None without one."""
    timeline = record.measured.timeline if record.measured else None
    if timeline is None:
        return None
    try:
        with ResultsFolder(folder).file(timeline.file).open(newline="") as f:
            rows = [(int(row["start_us"]), float(row["client_ms"])) for row in csv.DictReader(f) if row.get("client_ms")]
    except (OSError, KeyError, ValueError):
        return None
    return [ms for _, ms in sorted(rows)] or None


def _workers_mb(record: RunRecord) -> list[float]:
    """Each worker's resident memory once it had served the run, as its server reported it (an app's does)."""
    return [b / MB for b in record.server_after.worker_rss_bytes] if record.server_after else []


# ---------------------------------------------------------------- capacity searches


def _searches(folder: ResultsFolder, kind: Kind) -> list[CapacityFound]:
    """A capacity search's capacity.json; a decision's capacity/ folder, one file a candidate."""
    if kind is Kind.CAPACITY:
        files = [folder.capacity]
    elif kind is Kind.DECISION:
        files = folder.capacities()
    else:
        return []
    found = []
    for path in files:
        if not path.exists():
            continue
        data = _json(path)
        for i, item in enumerate(data if isinstance(data, list) else [data]):
            try:
                found.append(read(CapacityFound, item, f"[{i}]"))
            except JsonError as error:
                raise RecordError(f"{path}: {error}") from None
    return found


def _searched(found: list[CapacityFound], steps: list[RunRecord], app: str | None) -> list[Group]:
    """Each search: its capacity (the bracket of its steps), its CPU per request (the slope over its steps),
    and its workers' memory at its last step; set up as its steps ran."""
    groups = []
    for f in found:
        mine = [r for r in steps if _search_key(r) == (f.label, f.workload, f.cpus, f.arrivals, f.slo_p95_ms)]
        if not mine:
            continue
        verified = [r for r in mine if r.verification and r.verification.ok]
        setup = setup_of((verified or mine)[0], app, target=f.slo_p95_ms)
        found_readings: dict[Figure, Reading] = {}
        point = f.capacity_estimate_rps or f.capacity_mid_rps or f.capacity_low_rps  # the middle: none for a lower bound
        if point:
            low = f.capacity_low_rps or 0.0
            high = math.inf if f.capacity_high_rps is None else f.capacity_high_rps
            found_readings[Figure.CAPACITY] = Reading((point,), Interval(min(max(point, low), high), low, high))
        d = f.d_cpu_ms
        if d is not None and d.estimate is not None:
            low, high = (-math.inf if d.low is None else d.low), (math.inf if d.high is None else d.high)
            found_readings[Figure.CPU] = Reading((d.estimate,), Interval(d.estimate, low, high))
        if workers := next((w for w in map(_workers_mb, reversed(mine)) if w), None):
            found_readings[Figure.MEMORY] = Reading((statistics.fmean(workers),), mean_interval(workers))
        groups.append(Group(setup, f.label, f.steps, found_readings, None if found_readings else "no step held or broke"))
    return groups


def _search_key(r: RunRecord) -> tuple[str, str, float, str, float | None]:
    """Which search a step belongs to, as lab.bench.capacity.summary.recompute_from_records tells them apart."""
    c, step = r.config, r.capacity_step
    return c.label, c.knobs.workload, c.knobs.cpus, c.arrivals, step.slo_p95_ms if step else None


# ---------------------------------------------------------------- the machine


def _machine(folder: ResultsFolder, records: list[RunRecord], spread: float | None) -> Machine:
    first = records[0].machine
    return Machine(first.hostname, first.cpu_model, _loop_seconds(folder, records), spread)


def _loop_seconds(folder: ResultsFolder, records: list[RunRecord]) -> float | None:
    """The servers' interpreter's CPU seconds for the fixed loop: the median of its takings at the start and
    the end (interpreter.json), else of those the records kept; None where none was taken (kept runs)."""
    try:
        speeds = json.loads(folder.interpreter.read_text())
    except (OSError, ValueError):
        speeds = {}
    takings = [ends.get(at) for ends in speeds.values() if isinstance(ends, dict) for at in ("start", "end")] if isinstance(
        speeds, dict) else []  # fmt: skip
    if not any(map(_cpu_seconds, takings)):
        takings = [r.machine.interpreter.get("start") for r in records if r.machine.interpreter]
    found = [s for s in map(_cpu_seconds, takings) if s]
    return statistics.median(found) if found else None


def _cpu_seconds(facts: object) -> float | None:
    speed = facts.get("speed") if isinstance(facts, dict) else None
    seconds = speed.get("cpu_seconds") if isinstance(speed, dict) else None
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None
