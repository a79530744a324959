"""`make bench`: run an experiment's configurations one by one, headless, and record each.

For each configuration: start the app in its mode under its CPU limit, verify it (right answers
for every pair, and the work really happens), let Locust warm up and measure, stop the app, and
write the run's record before the next run starts. A run that fails is recorded with its reason
and the experiment goes on; Ctrl-C keeps every finished run, and RESUME=1 continues.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from contract import interpreter
from contract.knobs import Knobs, int_setting
from lab import ROOT, backends, intervals, machine, stack_state
from lab.backends import App, Backend
from lab.bench import calibration, verification
from lab.bench.checks import LOAD_GENERATOR, failure, findings, word
from lab.bench.measure import measure
from lab.bench.verification import VerificationError, verify
from lab.experiments import Experiment, RunConfig
from lab.place import Place
from lab.procs import LabError
from lab.quick_check import quick_check
from lab.records import SCHEMA, RecordError, load_records, recorded_ids, write_atomic, write_record, write_summary
from lab.report.analysis import advice, analyse
from lab.stack_state import StateHook

RESULTS = Path(os.environ.get("LAB_RESULTS") or ROOT / "results")
SATURATED = 0.85  # a load-generating process above this share of a core bounds the measurement
MAX_FAILURE_RATIO = 0.05
MACHINE_SHARE = 0.9  # on a saturated machine, a server below this share of its CPU ceiling was starved


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def results_folder(experiment: str, resume: bool) -> Path:
    if resume:
        earlier = sorted(p for p in RESULTS.glob(f"{experiment}-*") if (p / "experiment.json").exists())
        if earlier:
            return earlier[-1]
        print(f"bench: nothing to resume for {experiment}; starting anew")
    return RESULTS / f"{experiment}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"


def link_latest(folder: Path) -> None:
    """Make the folder, and point results/latest (what `make report` reads by default) at it."""
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(folder.name)


class BackendGoneError(LabError):
    """The backend itself stopped answering during a run (the Docker engine): the run's record is
    kept, and the experiment cannot go on until it answers again."""

    def __init__(self, record: dict[str, Any], error: LabError) -> None:
        super().__init__(str(error))
        self.record = record


def run_one(config: RunConfig, backend: Backend, folder: Path, state_hook: StateHook, calibrate: bool = False) -> dict[str, Any]:
    """One configuration, measured and judged. A failure of the server or of PostgreSQL fails the run,
    with its reason, and the experiment goes on; a backend that stopped answering raises BackendGoneError."""
    knobs = config.knobs
    record: dict[str, Any] = {
        "status": "failed",
        "reason": None,
        "started_at": now(),
        "verification": None,
        "locust": None,
        "server": None,
        "load_generator": None,
        "bounded_by_load_generator": False,
        "bounded_by_machine": False,
        "warnings": [],
        "timeline": None,
        "model": dict(zip(("in_flight", "processes"), knobs.capacity(int_setting("DB_POOL_SIZE")), strict=True)),
    }
    app = backend.app(knobs, state_hook)
    try:
        _measure_one(record, app, config, backend, folder, state_hook, calibrate)
    finally:
        try:
            app.stop()
            database = backend.check_database()
        except LabError as error:
            record["reason"] = f"{error} (what the run saw: {record['reason']})" if record["reason"] else str(error)
            record["status"] = "failed"
            record["finished_at"] = now()
            raise BackendGoneError(record, error) from None
        if database is not None:  # the run it failed says why; the next run has a database again
            record["reason"] = f"{record['reason']}; {database}" if record["reason"] else f"during the run: {database}"
            record["status"] = "failed"
        record["finished_at"] = now()
    return record


def _measure_one(record: dict[str, Any], app: App, config: RunConfig, backend: Backend, folder: Path,
                 state_hook: StateHook, calibrate: bool) -> None:  # fmt: skip
    knobs = config.knobs
    try:
        app.start()
    except LabError as error:
        record["reason"] = f"the app did not start: {str(error).splitlines()[0]}"
        return
    finally:
        record["cpu_limit"] = {
            "cpus": knobs.cpus,
            "method": app.limit.describe() if app.limit else None,
            "enforced": bool(app.limit and app.limit.enforced),
        }
    record["where"] = app.facts()
    try:
        record["verification"] = verify(app, knobs)
    except (VerificationError, LabError) as error:  # a failed run is recorded, and the bench goes on
        record["verification"] = {"ok": False, "detail": str(error)}
        record["reason"] = f"verification failed: {error}"
        return
    # the post's quick check, on the same server: two concurrent requests, timed
    record["quick_check"] = quick_check(app.url, knobs.mode, knobs.workload, 2).as_dict()
    cgroup_from, own_from = app.usage().cpu_seconds, verification.own_cpu_seconds(app.url)
    try:
        result = measure(app, config, folder, state_hook, backend)
    except LabError as error:
        record["reason"] = str(error)
        return
    except OSError as error:  # a full or read-only disk: the record's own write says so to the user
        record["reason"] = f"could not write the run's files: {error.strerror or error} ({error.filename})"
        return
    record.update(result)
    if died := app.died():  # measured, but not the configuration it names to the end
        record["reason"] = f"the server died during the run: {died}"
        return
    timeline = folder / record["timeline"]["file"] if record["timeline"] else None
    if timeline is not None:  # how sure the run's own figures are, from its own samples
        record["intervals"] = intervals.of_run(timeline, result["locust"]["rps"])
    record["server_after"] = after = verification.after_run(app, knobs, record["verification"]["server"], timeline)
    own_to = (after["cpu"] or {}).get("process_tree_seconds")
    record["server_cpu_readings"] = verification.cpu_agreement(
        app.usage().cpu_seconds - cgroup_from, None if own_to is None or own_from is None else round(own_to - own_from, 4)
    )
    if after["differences"]:
        record["reason"] = "after the run, the server no longer ran the run's configuration: " + "; ".join(after["differences"])
        return
    if calibrate:  # the same server, the same connections, driven by wrk
        record["calibration"] = calibration.calibrate(app.url, config, result["locust"]["rps"])
    record["findings"] = findings(config, result, record["model"]["processes"])
    if after["workers_gone"]:
        record["findings"].append({"kind": "workers_replaced", "gone": after["workers_gone"], "new": after["workers_new"]})
    kinds = {finding["kind"] for finding in record["findings"]}
    record["bounded_by_load_generator"] = bool(kinds & LOAD_GENERATOR)
    record["bounded_by_machine"] = "machine_saturated" in kinds
    record["warnings"] = [word(finding) for finding in record["findings"]]
    record["reason"] = failure(result)
    record["status"] = "failed" if record["reason"] else "ok"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def run_experiment(
    experiment: Experiment,
    *,
    resume: bool = False,
    place: Place | None = None,
    folder: Path | None = None,
    backend_name: str = "native",
    calibrate: bool = False,
    command: str | None = None,
) -> Path:
    place = place or Place()
    folder = folder or results_folder(experiment.name, resume)
    link_latest(folder)
    done = recorded_ids(folder)
    todo = [(i, c) for i, c in enumerate(experiment.runs, 1) if c.id not in done]
    print(
        f"bench: {experiment.name}: {len(experiment.runs)} runs, {len(done)} already recorded, results in "
        f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}",
        flush=True,
    )
    repeats = max(c.repeat for c in experiment.runs)
    command = command or f"make bench EXPERIMENT={experiment.name}" + (f" REPEATS={repeats}" if repeats else "")
    with opened(place, experiment.runs, backend_name, folder, command) as (where, state_hook):
        _run_all(experiment, todo, folder, where, state_hook, calibrate, f"{command} RESUME=1")
    return folder


Where = Callable[[RunConfig], tuple[Backend, dict[str, Any]]]  # a run's backend, and the machine it runs on


@contextmanager
def opened(
    place: Place, runs: list[RunConfig], backend_name: str, folder: Path, command: str
) -> Iterator[tuple[Where, StateHook]]:
    """The backends the runs need, open for as long as they run, under the stack file; closed on the way out.
    An experiment that compares backends names each run's own; the others run where the bench was told."""
    names = sorted({c.backend or backend_name for c in runs}, key=backends.BACKENDS.index)
    opened_: dict[str, tuple[Backend, dict[str, Any]]] = {}
    speeds: dict[str, dict[str, dict[str, object]]] = {}
    with stack_state.claimed(place, names, command, partial(backends.stop_leftovers, place)) as state_hook:
        try:
            for name in names:
                backend = backends.get(name, place)
                opened_[name] = backend, {}
                cpus = [c.knobs.cpus for c in runs if (c.backend or backend_name) == name]
                opened_[name] = backend, machine.describe(backend.open(folder, cpus))
                first = next(c for c in runs if (c.backend or backend_name) == name)
                opened_[name][1]["interpreter"] = speeds[name] = {"start": _interpreter(backend, first.knobs)}
            yield (lambda c: opened_[c.backend or backend_name]), state_hook
            for name, (backend, _) in opened_.items():  # the same loop at the end: a machine that slowed shows
                first = next(c for c in runs if (c.backend or backend_name) == name)
                speeds[name]["end"] = _interpreter(backend, first.knobs)
            write_atomic(folder / "interpreter.json", json.dumps(speeds, indent=2))
        finally:
            for backend, _ in opened_.values():
                try:
                    backend.close()
                except LabError as error:  # say so, without hiding why the runs ended (an engine that went away)
                    print(f"lab: could not stop the {backend.name} backend's services: {error}", file=sys.stderr)


def _interpreter(backend: Backend, knobs: Knobs) -> dict[str, object]:
    facts = backend.interpreter(knobs)
    print(f"bench: the {backend.name} servers run on {interpreter.summary(facts)}", flush=True)
    return facts


def _run_all(experiment: Experiment, todo: list[tuple[int, RunConfig]], folder: Path, where: Where,
             state_hook: StateHook, calibrate: bool, resume: str) -> None:  # fmt: skip
    """Each configuration in turn, each record on disk before the next starts; then which to pick."""
    manifest = folder / "experiment.json"
    if not manifest.exists():
        write_atomic(
            manifest,
            json.dumps(
                {
                    "name": experiment.name,
                    "description": experiment.description,
                    "definition": experiment.source,
                    "runs": [r.as_dict() for r in experiment.runs],
                    "backends": sorted({where(c)[0].name for c in experiment.runs}),
                    "started_at": now(),
                    "machine": where(experiment.runs[0])[1],
                },
                indent=2,
            ),
        )
    started = time.monotonic()
    for n, (index, config) in enumerate(todo):
        planned = sum(c.warmup + c.run_time for _, c in todo[n:])
        # scale the plan by how long runs have really taken (start, verification, stop)
        spent_per_planned = (time.monotonic() - started) / sum(c.warmup + c.run_time for _, c in todo[:n]) if n else 1.3
        remaining = planned * spent_per_planned
        print(f"[{index}/{len(experiment.runs)}] {config.id}  (about {duration(remaining)} left)", flush=True)
        backend, info = where(config)
        try:
            record, gone = run_one(config, backend, folder, state_hook, calibrate), None
        except BackendGoneError as error:
            record, gone = error.record, error
            record["measure_again"] = True  # not the configuration's fault: RESUME=1 measures it again
        record.update(
            schema=SCHEMA,
            experiment=experiment.name,
            index=index,
            total=len(experiment.runs),
            config=config.as_dict(),
            backend=backend.name,
            machine=info,
        )
        keep(folder, record, resume)
        print("    " + _outcome(record), flush=True)
        if gone is not None:
            raise LabError(f"{gone}; every finished run is kept. Once it answers, continue with: {resume}")
    print(f"bench: done in {duration(time.monotonic() - started)}; summary: {folder / 'summary.csv'}")
    picks = advice([analyse(r) for r in load_records(folder)])
    if picks:
        print("bench: which to pick (`make report` draws the charts and gives the reasons):")
        print("\n".join(f"  - {sentence}" for sentence in picks), flush=True)


def keep(folder: Path, record: dict[str, Any], resume: str) -> None:
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


def _outcome(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['reason']}"
    locust, server, loadgen = record["locust"], record["server"], record["load_generator"]
    share = loadgen["utilisation"]
    idle = record["machine_cpu"]["idle_share"]
    text = (
        f"{locust['rps']:.1f} req/s, p50 {locust['p50_ms']:.0f} ms, p95 {locust['p95_ms']:.0f} ms, "
        f"{locust['failures']} failures; server {server['utilisation']:.2f} CPU, "
        f"load generator {'not measured' if share is None else f'{share:.0%} of a core'}, "
        f"machine {'?' if idle is None else f'{idle:.0%}'} idle"
    )
    if (wrk := record.get("calibration") or {}).get("rps"):
        text += f"; wrk at the same connections {wrk['rps']:.1f} req/s (Locust {wrk['locust_ratio']:.0%} of it)"
    if len(locust.get("by_workload", {})) > 1:  # a mix: each kind's latency apart
        text += "".join(f"; {k} p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms" for k, v in locust["by_workload"].items())
    for warning in record["warnings"]:
        text += f"\n    WARNING: {warning}"
    return text
