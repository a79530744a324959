"""`make bench`: run an experiment's configurations one by one, headless, and record each.

For each configuration: start the app in its mode under its CPU limit, verify it (right answers
for every pair, and the work really happens), let Locust warm up and measure, stop the app, and
write the run's record before the next run starts. A run that fails is recorded with its reason
and the experiment goes on; Ctrl-C keeps every finished run, and RESUME=1 continues.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from contract import interpreter
from contract.knobs import Knobs, int_setting, setting
from lab.analysis import intervals
from lab.analysis.timespan import duration
from lab.bench import calibration, verification
from lab.bench.checks import failure, findings, judged
from lab.bench.measure import measure
from lab.bench.quick_check import quick_check
from lab.bench.verification import VerificationError, verify
from lab.results.experiments import Experiment, RunConfig
from lab.results.folder import RecordError, ResultsFolder, link_latest, new_folder, shown, write_json
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.record import (
    Configuration,
    LimitApplied,
    LoadGeneratorBusy,
    ModelCounts,
    RunRecord,
    Verification,
    WorkersReplaced,
    now,
)
from lab.results.run_files import recorded_ids, write_record, write_summary
from lab.stack import backends, stack_state
from lab.stack.backends import App, Backend
from lab.stack.backends.remote_workers import bounding, workers_of_run
from lab.stack.machine import Machine
from lab.stack.machine import describe as describe_machine
from lab.stack.place import Place
from lab.stack.procs import LabError
from lab.stack.stack_state import StateHook


class BackendGoneError(LabError):
    """The backend itself stopped answering during a run (the Docker engine): the run's record is
    kept, and the experiment cannot go on until it answers again."""

    def __init__(self, record: RunRecord, error: LabError) -> None:
        super().__init__(str(error))
        self.record = record


@dataclass(frozen=True)
class Entry:
    """Where a run's record stands: its experiment, its number, and of how many."""

    experiment: str
    index: int
    total: int | None  # None: a capacity search, which does not know its count ahead


def run_one(config: RunConfig, entry: Entry, backend: Backend, machine: Machine, folder: Path, state_hook: StateHook,
            calibrate: bool = False) -> RunRecord:  # fmt: skip
    """One configuration, measured and judged. A failure of the server or of PostgreSQL fails the run,
    with its reason, and the experiment goes on; a backend that stopped answering raises BackendGoneError."""
    record = RunRecord.begun(experiment=entry.experiment, index=entry.index, total=entry.total,
                             config=Configuration.of(config), backend=backend.name, machine=machine, started_at=now(),
                             model=ModelCounts(*config.knobs.capacity(int_setting("DB_POOL_SIZE"))))  # fmt: skip
    app = backend.app(config.knobs, state_hook)
    try:
        record = _measure_one(record, app, config, backend, folder, state_hook, calibrate)
    finally:
        try:
            app.stop()
            database = backend.check_database()
        except LabError as error:  # not the configuration's fault: RESUME=1 measures it again
            reason = f"{error} (what the run saw: {record.reason})" if record.reason else str(error)
            gone = replace(record, status="failed", reason=reason, finished_at=now(), measure_again=True)
            raise BackendGoneError(gone, error) from None
        if database is not None:  # the run it failed says why; the next run has a database again
            reason = f"{record.reason}; {database}" if record.reason else f"during the run: {database}"
            record = replace(record, status="failed", reason=reason)
    return replace(record, finished_at=now())


def _measure_one(record: RunRecord, app: App, config: RunConfig, backend: Backend, folder: Path, state_hook: StateHook,
                 calibrate: bool) -> RunRecord:  # fmt: skip
    """The record of a run, as far as it got: each return says why it stopped where it did."""
    knobs = config.knobs
    try:
        app.start()
    except LabError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ["(no message)"]
        if len(lines) > 1:  # the whole of it on the terminal; the record keeps its first and last lines
            print(f"bench: the app did not start: {error}", file=sys.stderr, flush=True)
        said = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # a tool's last line says why it stopped
        return replace(record, cpu_limit=_limit(app, knobs), reason=f"the app did not start: {said}")
    record = replace(record, cpu_limit=_limit(app, knobs), where=dict(app.facts()))
    try:
        verified = verify(app, knobs)
    except (VerificationError, LabError) as error:  # a failed run is recorded, and the bench goes on
        return replace(record, verification=Verification(ok=False, detail=str(error)), reason=f"verification failed: {error}")
    # the post's quick check, on the same server: two concurrent requests, timed
    record = replace(record, verification=verified, quick_check=quick_check(app.url, knobs.mode, knobs.workload, 2))
    cgroup_from, own_from = app.usage().cpu_seconds, verification.own_cpu_seconds(app.url)
    try:
        measured = measure(app, config, folder, state_hook, backend)
    except LabError as error:
        return replace(record, reason=str(error))
    except OSError as error:  # a full or read-only disk: the record's own write says so to the user
        return replace(record, reason=f"could not write the run's files: {error.strerror or error} ({error.filename})")
    record = replace(record, measured=measured)
    if died := app.died():  # measured, but not the configuration it names to the end
        return replace(record, reason=f"the server died during the run: {died}")
    timeline = ResultsFolder(folder).file(measured.timeline.file) if measured.timeline else None
    if timeline is not None:  # how sure the run's own figures are, from its own samples
        record = replace(record, intervals=intervals.of_run(timeline, measured.locust.rps))
    after = verification.after_run(app, knobs, verified.server, timeline)
    own_to = after.cpu.process_tree_seconds if after.cpu else None
    readings = verification.cpu_agreement(
        app.usage().cpu_seconds - cgroup_from, None if own_to is None or own_from is None else round(own_to - own_from, 4)
    )
    record = replace(record, server_after=after, server_cpu_readings=readings)
    if after.differences:
        return replace(
            record, reason="after the run, the server no longer ran the run's configuration: " + "; ".join(after.differences)
        )
    if calibrate:  # the same server, the same connections, driven by wrk
        record = replace(record, calibration=calibration.calibrate(app.url, config, measured.locust.rps))
    found = findings(config, measured, record.model.processes if record.model else 1)
    if workers := workers_of_run(ResultsFolder(folder).locust(config.id).work, config.id):  # Locust workers on other hosts
        record = replace(record, where={**(record.where or {}), "locust_workers": workers})
        if (busiest := bounding(workers)) is not None:
            found.append(LoadGeneratorBusy(busiest))
    if after.workers_gone:
        found.append(WorkersReplaced(after.workers_gone, after.workers_new))
    return judged(record, found, failure(measured))


def _limit(app: App, knobs: Knobs) -> LimitApplied:
    return LimitApplied(knobs.cpus, app.limit.describe() if app.limit else None, bool(app.limit and app.limit.enforced))


def run_experiment(
    experiment: Experiment,
    *,
    resume: bool = False,
    place: Place | None = None,
    folder: Path | None = None,
    backend_name: str = "native",
    calibrate: bool = False,
    command: str | None = None,
    settled: Callable[[Path], str | None] | None = None,
) -> Path:
    """Every run of the experiment, each record on disk before the next starts; with `settled`, the repeats
    stop after the first full round of two or more that it says has decided (lab.compare.settle)."""
    place = place or Place()
    folder = folder or new_folder(experiment.name, resume)
    link_latest(folder)
    done = recorded_ids(folder)
    todo = [(i, c) for i, c in enumerate(experiment.runs, 1) if c.id not in done]
    print(
        f"bench: {experiment.name}: {len(experiment.runs)} runs, {len(done)} already recorded, results in {shown(folder)}",
        flush=True,
    )
    repeats = max(c.repeat for c in experiment.runs)
    again = f"make bench EXPERIMENT={experiment.name}{experiment.given_args}"  # with what was given, so RESUME=1 runs it
    command = command or again + (f" REPEATS={repeats}" if repeats else "")
    with opened(place, experiment.runs, backend_name, folder, command) as (where, state_hook):
        _run_all(experiment, todo, folder, where, state_hook, calibrate, f"{command} RESUME=1", settled)
    return folder


Where = Callable[[RunConfig], tuple[Backend, Machine]]  # a run's backend, and the machine it runs on


@contextmanager
def opened(
    place: Place, runs: list[RunConfig], backend_name: str, folder: Path, command: str
) -> Iterator[tuple[Where, StateHook]]:
    """The backends the runs need, open for as long as they run, under the stack file; closed on the way out.
    An experiment that compares backends names each run's own; the others run where the bench was told."""
    names = sorted({c.backend or backend_name for c in runs}, key=backends.BACKENDS.index)
    started: dict[str, Backend] = {}  # closed on the way out, even one that could not open
    machines: dict[str, Machine] = {}
    speeds: dict[str, dict[str, object]] = {}
    with stack_state.claimed(place, names, command, partial(backends.stop_leftovers, place)) as state_hook:
        try:
            for name in names:
                backend = started[name] = backends.get(name, place)
                cpus = [c.knobs.cpus for c in runs if (c.backend or backend_name) == name]
                described = describe_machine(backend.open(folder, cpus))
                first = next(c for c in runs if (c.backend or backend_name) == name)
                speeds[name] = {"start": _interpreter(backend, first.knobs)}
                machines[name] = replace(described, interpreter=speeds[name])
            yield (lambda c: (started[c.backend or backend_name], machines[c.backend or backend_name])), state_hook
            for name, backend in started.items():  # the same loop at the end: a machine that slowed shows
                first = next(c for c in runs if (c.backend or backend_name) == name)
                speeds[name]["end"] = _interpreter(backend, first.knobs)
            write_json(ResultsFolder(folder).interpreter, speeds)
        finally:
            for backend in started.values():
                try:
                    backend.close()
                except LabError as error:  # say so, without hiding why the runs ended (an engine that went away)
                    print(f"lab: could not stop the {backend.name} backend's services: {error}", file=sys.stderr)


def _interpreter(backend: Backend, knobs: Knobs) -> dict[str, object]:
    facts = backend.interpreter(knobs)
    print(f"bench: the {backend.name} servers run on {interpreter.summary(facts)}", flush=True)
    return facts


def _run_all(experiment: Experiment, todo: list[tuple[int, RunConfig]], folder: Path, where: Where,
             state_hook: StateHook, calibrate: bool, resume: str,
             settled: Callable[[Path], str | None] | None = None) -> None:  # fmt: skip
    """Each configuration in turn, each record on disk before the next starts."""
    if not ResultsFolder(folder).manifest.exists():  # a resumed experiment keeps its first
        app = setting("APP") or None
        write_manifest(folder, Manifest(
            experiment.name, FolderKind.EXPERIMENT, now(), experiment.description, definition=experiment.source,
            runs=tuple(Configuration.of(r) for r in experiment.runs),
            backends=tuple(sorted({where(c)[0].name for c in experiment.runs})), machine=where(experiment.runs[0])[1],
            app=app, interface=os.environ.get("APP_INTERFACE") if app else None,
        ))  # fmt: skip
    started = time.monotonic()
    for n, (index, config) in enumerate(todo):
        planned = sum(c.warmup + c.run_time for _, c in todo[n:])
        # scale the plan by how long runs have really taken (start, verification, stop)
        spent_per_planned = (time.monotonic() - started) / sum(c.warmup + c.run_time for _, c in todo[:n]) if n else 1.3
        remaining = planned * spent_per_planned
        print(f"[{index}/{len(experiment.runs)}] {config.id}  (about {duration(remaining)} left)", flush=True)
        backend, machine = where(config)
        entry = Entry(experiment.name, index, len(experiment.runs))
        try:
            record, gone = run_one(config, entry, backend, machine, folder, state_hook, calibrate), None
        except BackendGoneError as error:
            record, gone = error.record, error
        keep(folder, record, resume)
        print("    " + _outcome(record), flush=True)
        if gone is not None:
            raise LabError(f"{gone}; every finished run is kept. Once it answers, continue with: {resume}")
        if settled is not None and _round_ends(todo, n) and (why := settled(folder)):
            print(f"bench: stopped after {config.repeat} of {max(c.repeat for c in experiment.runs)} repeats: {why}",
                  flush=True)  # fmt: skip
            break
    print(f"bench: done in {duration(time.monotonic() - started)}; summary: {ResultsFolder(folder).summary}")


def _round_ends(todo: list[tuple[int, RunConfig]], n: int) -> bool:
    """The n-th run to do ends a round of repeats, the second or a later one: every configuration has
    as many runs now (repeats are interleaved: every configuration once, then again)."""
    repeat = todo[n][1].repeat
    return repeat >= 2 and (n + 1 == len(todo) or todo[n + 1][1].repeat != repeat)


def keep(folder: Path, record: RunRecord, resume: str) -> None:
    """The run's record, and the summary from every record, on disk before anything else happens; a
    record that cannot be written stops the experiment, with the earlier ones intact."""
    try:
        write_record(folder, record)
        write_summary(folder)
    except RecordError as error:
        raise LabError(
            f"{error}. The runs recorded before it are intact. Free some space or make the folder writable, "
            f"then continue with: {resume}"
        ) from None


def _outcome(record: RunRecord) -> str:
    m = record.measured
    if not record.ok or m is None:
        return f"FAILED: {record.reason}"
    locust, server, share = m.locust, m.server, m.load_generator.utilisation
    idle = m.machine_cpu.idle_share if m.machine_cpu else None
    text = (
        f"{locust.rps:.1f} req/s, p50 {locust.p50_ms or 0:.0f} ms, p95 {locust.p95_ms or 0:.0f} ms, "
        f"{locust.failures} failures; server {server.utilisation or 0:.2f} CPU, "
        f"load generator {'not measured' if share is None else f'{share:.0%} of a core'}, "
        f"machine {'?' if idle is None else f'{idle:.0%}'} idle"
    )
    wrk = record.calibration
    if wrk and wrk.rps:
        text += f"; wrk at the same connections {wrk.rps:.1f} req/s (Locust {wrk.locust_ratio or 0:.0%} of it)"
    if len(locust.by_workload) > 1:  # a mix: each kind's latency apart
        text += "".join(f"; {k} p50 {v.p50_ms or 0:.0f} ms, p95 {v.p95_ms or 0:.0f} ms" for k, v in locust.by_workload.items())
    for warning in record.warnings:
        text += f"\n    WARNING: {warning}"
    return text
