"""`make bench`: run an experiment's configurations one by one, headless, and record each.

For each configuration: start the app in its mode under its CPU limit, verify it (right answers
for every pair, and the work really happens), let Locust warm up and measure, stop the app, and
write the run's record before the next run starts. A run that fails is recorded with its reason
and the experiment goes on; Ctrl-C keeps every finished run, and RESUME=1 continues.
"""

from __future__ import annotations

import csv
import json
import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import ROOT, backends, calibration, machine, machine_cpu, stack_state
from lab import timeline as requests_timeline
from lab.backends import Backend
from lab.backends.native import Place
from lab.demo import quick_check
from lab.endpoint import request_name
from lab.experiments import Experiment, RunConfig
from lab.knobs import REQUEST_WORKLOADS, int_setting
from lab.procs import LabError, reap, signals_deferred, spawn, stop_on_signals
from lab.records import KIND_PERCENTILES, SCHEMA, load_records, recorded_ids, write_record, write_summary
from lab.report.analysis import advice, analyse
from lab.report.model import parallelism
from lab.verification import VerificationError, verify

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


def percentile(histogram: dict[float, int], fraction: float) -> float | None:
    """The response time below which `fraction` of requests fell, from Locust's histogram
    (response time, rounded as Locust rounds it -> count), computed as Locust computes it."""
    total = sum(histogram.values())
    if not total:
        return None
    wanted = int(total * fraction)
    seen = 0
    for value in sorted(histogram, reverse=True):
        seen += histogram[value]
        if total - seen <= wanted:
            return float(value)
    return float(min(histogram))


def _entry_stats(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, failures and latency percentiles of Locust's entries taken together."""
    histogram: dict[float, int] = {}
    requests = failures = 0
    total_ms, max_ms = 0.0, 0.0
    for entry in entries:
        requests += entry["num_requests"]
        failures += entry["num_failures"]
        total_ms += entry["total_response_time"]
        max_ms = max(max_ms, entry["max_response_time"] or 0.0)
        for value, count in entry["response_times"].items():
            histogram[float(value)] = histogram.get(float(value), 0) + count
    return {
        "requests": requests, "failures": failures, "failure_ratio": round(failures / requests, 4) if requests else None,
        "avg_ms": round(total_ms / requests, 2) if requests else None,
        **{f"p{p}_ms": percentile(histogram, p / 100) for p in (50, 90, 95, 99)}, "max_ms": round(max_ms, 2),
    }  # fmt: skip


def _locust_stats(json_file: Path, seconds: float) -> dict[str, Any]:
    """Statistics of the measured window from Locust's final JSON (its CSV may lag the end): for all
    requests, and for io and cpu requests apart (Locust names them by kind)."""
    entries = json.loads(json_file.read_text())
    stats = {**_entry_stats(entries), "by_workload": {}}
    for kind in REQUEST_WORKLOADS:
        mine = [e for e in entries if e["name"] == request_name(kind)]
        if mine:
            kept = _entry_stats(mine)
            stats["by_workload"][kind] = {k: kept[k] for k in ("requests", "failures", *KIND_PERCENTILES)}
            stats["by_workload"][kind]["rps"] = round(kept["requests"] / seconds, 3)
    stats["rps"] = round(stats["requests"] / seconds, 3)
    stats["measured_seconds"] = round(seconds, 3)
    return stats


def _paths(folder: Path, config: RunConfig) -> tuple[Path, Path, Path]:
    """Where a run's Locust output, timeline and measured window go."""
    work, timelines = folder / "locust", folder / "timeline"
    return work, timelines / f"{config.id}.csv", work / f"{config.id}.window.json"


def locust_options(config: RunConfig, url: str, folder: Path) -> dict[str, Any]:
    """A headless run's options, whichever backend runs Locust."""
    work, timeline, window_file = _paths(folder, config)
    options = {
        "--host": url, "--users": config.users, "--spawn-rate": f"{config.spawn_rate:g}",
        "--run-time": f"{math.ceil(config.warmup + config.run_time)}s", "--stop-timeout": 0,
        "--json-file": work / config.id, "--loglevel": "WARNING", "--exit-code-on-error": 0,
        "--lab-warmup": f"{config.warmup:g}", "--lab-timeline": timeline, "--lab-window": window_file,
        "--lab-workload": config.workload, "--lab-cpu-share": f"{config.mix_cpu_share:g}",
    }  # fmt: skip
    if config.locust_processes > 1:
        options["--processes"] = config.locust_processes
    return options


def measure(app: Any, config: RunConfig, folder: Path, state_hook: Any, backend: Backend) -> dict[str, Any]:
    """One headless Locust run: warm-up, statistics reset, measurement; the server's and the
    load generator's CPU are read from the kernel around it."""
    work, timeline, window_file = _paths(folder, config)
    work.mkdir(parents=True, exist_ok=True)
    timeline.parent.mkdir(exist_ok=True)
    prefix = work / config.id
    window_file.unlink(missing_ok=True)
    total = config.warmup + config.run_time
    options = locust_options(config, app.url, folder)
    argv = backend.locust_argv(options, RESULTS)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    log = work / f"{config.id}.log"
    with signals_deferred():
        locust = spawn(argv, cwd=ROOT, env=backend.locust_env(config.knobs), log=log)
    try:
        state_hook(locust=locust.pid)
        usage_from = None
        deadline = started + total + 60
        polled = time.monotonic()
        while locust.poll() is None:
            if usage_from is None and window_file.exists():  # Locust has just reset its statistics
                usage_from, machine_from = app.usage(), machine_cpu.machine()
                pg_from, loadgen_from = backend.postgres_cpu(), backend.locust_cpu(locust)
                loadgen_last = loadgen_from
            if time.monotonic() > deadline:
                raise LabError(f"Locust did not finish within {total + 60:g} s; see {log}")
            if usage_from is not None and time.monotonic() - polled > 0.5:  # its last reading before it exits
                polled, loadgen_last = time.monotonic(), backend.locust_cpu(locust) or loadgen_last
            time.sleep(0.05)
        usage_to, machine_to, pg_to = app.usage(), machine_cpu.machine(), backend.postgres_cpu()
    finally:
        reap(locust)
        state_hook(locust=None)
    if locust.returncode != 0:
        said = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise LabError(
            f"Locust exited with code {locust.returncode} ({said[0].strip()[:300] if said else 'no output'}); see {log}"
        )
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        window = json.loads(window_file.read_text())
        seconds = window["end"] - window["start"]
    except (OSError, ValueError, KeyError):
        raise LabError(f"Locust recorded no measured window (warm-up longer than the run?); see {log}") from None
    if usage_from is None or seconds <= 0:
        raise LabError(f"the measured window was empty; see {log}")
    stats = _locust_stats(prefix.with_name(prefix.name + ".json"), seconds)
    stats["errors"] = window.get("errors", [])
    cpu = usage_to.cpu_seconds - usage_from.cpu_seconds
    server = {
        "cpu_seconds": round(cpu, 4),
        "cpu_seconds_per_request": round(cpu / stats["requests"], 6) if stats["requests"] else None,
        "utilisation": round(cpu / seconds, 4),
        "nr_throttled": None if usage_to.nr_throttled is None else usage_to.nr_throttled - (usage_from.nr_throttled or 0),
        "throttled_seconds": None
        if usage_to.throttled_seconds is None
        else round(usage_to.throttled_seconds - (usage_from.throttled_seconds or 0), 4),
    }
    if backend.load_generator_is_child:  # exact: the kernel's account of our exited children
        loadgen_cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    else:
        loadgen_cpu = loadgen_last  # its container's cgroup, last read just before it exited
    in_window = None if loadgen_cpu is None or loadgen_from is None else loadgen_cpu - loadgen_from
    processes = config.locust_processes
    loadgen = {
        "cpu_seconds": None if loadgen_cpu is None else round(loadgen_cpu, 3),
        "window_cpu_seconds": None if in_window is None else round(in_window, 3),
        "processes": processes,
        "utilisation": None if in_window is None else round(in_window / seconds / processes, 3),
        "locust_warned_cpu": "CPU usage" in log.read_text(errors="replace"),
    }
    pg_cpu = None if pg_to is None or pg_from is None else pg_to - pg_from
    parts = {"server": cpu, "postgres": pg_cpu, "load_generator": in_window}
    _merge_timeline(timeline)
    kept = requests_timeline.summary(timeline) if timeline.exists() else None
    return {
        "locust": stats,
        "server": server,
        "load_generator": loadgen,
        "machine_cpu": machine_cpu.window(machine_from, machine_to, parts),
        "timeline": {"file": str(timeline.relative_to(folder)), **kept} if kept and kept["rows"] else None,
    }


def _merge_timeline(path: Path) -> None:
    """--processes writes one file per load-generating process: merge them into one."""
    parts = sorted(path.parent.glob(path.name + ".*"))
    if parts:
        rows = []
        for part in parts:
            with part.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                rows.extend(reader)
            part.unlink()
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])


@dataclass(frozen=True)
class Judgement:
    """What bounded a run, if not the server: the load generator or the whole machine."""

    load_generator: bool
    machine: bool
    warnings: list[str]


def judge(config: RunConfig, result: dict[str, Any], processes: int) -> Judgement:
    """Was the load generator, or the machine the server shares, the bottleneck? Say so, with the figures."""
    warnings, loadgen, server = [], result["load_generator"], result["server"]
    bounded = False
    if loadgen["utilisation"] is not None and loadgen["utilisation"] >= SATURATED:
        bounded = True
        warnings.append(
            f"the load generator used {loadgen['utilisation']:.0%} of a core per process: "
            "throughput is bounded by Locust, not the server (add locust_processes, or fewer users)"
        )
    if loadgen.get("locust_warned_cpu"):
        bounded = True
        warnings.append("Locust itself warned that its CPU usage was above 90%")
    if (
        config.workload == "cpu"
        and config.cpus
        and server["utilisation"] < 0.5 * min(config.cpus, os.cpu_count() or 1)
        and loadgen["utilisation"]
        and loadgen["utilisation"] > 0.7
    ):
        bounded = True
        warnings.append(
            f"the server was idle {1 - server['utilisation'] / config.cpus:.0%} of its CPU limit "
            "while Locust was busy: the users waited on the load generator"
        )
    # The machine was full, and the server got less CPU than it could have used: the other parts had it.
    cores = os.cpu_count() or 1
    ceiling = parallelism(processes, config.cpus, cores)
    whole = result["machine_cpu"]
    machine = bool(whole["saturated"]) and server["utilisation"] < MACHINE_SHARE * ceiling
    if machine:
        parts = whole["parts_cpu_seconds"]
        shares = ", ".join(
            f"{name.replace('_', ' ')} {v / whole['cpu_seconds']:.0%}" for name, v in parts.items() if v is not None
        )
        warnings.append(
            f"the machine had {whole['idle_share']:.0%} of its {cores} cores idle ({shares}), and the server used "
            f"{server['utilisation']:.2f} of the {ceiling:g} CPU it could: throughput is bounded by the machine, not the server"
        )
    return Judgement(bounded, machine, warnings)


def run_one(config: RunConfig, backend: Backend, folder: Path, state_hook: Any, calibrate: bool = False) -> dict[str, Any]:
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
    app = backend.app(knobs)
    try:
        try:
            app.start()
        except LabError as error:
            record["reason"] = f"the app did not start: {str(error).splitlines()[0]}"
            return record
        finally:
            record["cpu_limit"] = {
                "cpus": config.cpus,
                "method": app.limit.describe() if app.limit else None,
                "enforced": bool(app.limit and app.limit.enforced),
            }
        state_hook(app=backend.app_pid(app))
        record["where"] = backend.run_facts(app)
        try:
            record["verification"] = verify(app, knobs)
        except (VerificationError, LabError) as error:  # a failed run is recorded, and the bench goes on
            record["verification"] = {"ok": False, "detail": str(error)}
            record["reason"] = f"verification failed: {error}"
            return record
        # the post's quick check, on the same server: two concurrent requests, timed
        record["quick_check"] = quick_check(app.url, config.mode, config.workload, 2).as_dict()
        try:
            result = measure(app, config, folder, state_hook, backend)
        except LabError as error:
            record["reason"] = str(error)
            return record
        record.update(result)
        if calibrate:  # the same server, the same connections, driven by wrk
            record["calibration"] = calibration.calibrate(app.url, config, result["locust"]["rps"])
        judged = judge(config, result, record["model"]["processes"])
        record["bounded_by_load_generator"], record["bounded_by_machine"] = judged.load_generator, judged.machine
        record["warnings"] = judged.warnings
        if held := requests_timeline.delayed_ack(result["timeline"] or {}):
            record["warnings"].append(
                f"every reply reached the client a steady {held:.0f} ms after its handler ended: "
                + requests_timeline.DELAYED_ACK_CAUSE
            )
        ratio = result["locust"]["failure_ratio"]
        if not result["locust"]["requests"]:
            record["reason"] = "no request completed in the measured window"
        elif ratio is not None and ratio > MAX_FAILURE_RATIO:
            top = result["locust"]["errors"][:1]
            why = f": {top[0]['occurrences']} x {top[0]['error']}" if top else ""
            record["reason"] = f"too many errors: {ratio:.1%} of requests failed{why}"
        else:
            record["status"] = "ok"
        return record
    finally:
        app.stop()
        state_hook(app=None)
        record["finished_at"] = now()


def _duration(seconds: float) -> str:
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
) -> Path:
    place = place or Place()
    folder = folder or results_folder(experiment.name, resume)
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(folder.name)
    done = recorded_ids(folder)
    todo = [(i, c) for i, c in enumerate(experiment.runs, 1) if c.id not in done]
    print(
        f"bench: {experiment.name}: {len(experiment.runs)} runs, {len(done)} already recorded, results in "
        f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}",
        flush=True,
    )
    stop_on_signals()
    # an experiment that compares backends names each run's own; the others run where the bench was told
    names = sorted({c.backend or backend_name for c in experiment.runs}, key=backends.BACKENDS.index)
    opened: dict[str, tuple[Backend, dict[str, Any]]] = {}
    with stack_state.claimed(place, names) as state_hook:
        try:
            for name in names:
                backend = backends.get(name, place)
                opened[name] = backend, {}
                cpus = [c.cpus for c in experiment.runs if (c.backend or backend_name) == name]
                opened[name] = backend, machine.describe(backend.open(folder, cpus)["postgres"])
            _run_all(experiment, todo, folder, lambda c: opened[c.backend or backend_name], state_hook, calibrate)
        finally:
            for backend, _ in opened.values():
                backend.close()
    return folder


def _run_all(experiment: Experiment, todo: list[tuple[int, RunConfig]], folder: Path,
             where: Callable[[RunConfig], tuple[Backend, dict[str, Any]]], state_hook: Callable[..., None],
             calibrate: bool) -> None:  # fmt: skip
    """Each configuration in turn, each record on disk before the next starts; then which to pick."""
    manifest = folder / "experiment.json"
    if not manifest.exists():
        manifest.write_text(
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
            )
        )
    started = time.monotonic()
    for n, (index, config) in enumerate(todo):
        planned = sum(c.warmup + c.run_time for _, c in todo[n:])
        # scale the plan by how long runs have really taken (start, verification, stop)
        spent_per_planned = (time.monotonic() - started) / sum(c.warmup + c.run_time for _, c in todo[:n]) if n else 1.3
        remaining = planned * spent_per_planned
        print(f"[{index}/{len(experiment.runs)}] {config.id}  (about {_duration(remaining)} left)", flush=True)
        backend, info = where(config)
        record = run_one(config, backend, folder, state_hook, calibrate)
        record.update(
            schema=SCHEMA,
            experiment=experiment.name,
            index=index,
            total=len(experiment.runs),
            config=config.as_dict(),
            backend=backend.name,
            machine=info,
        )
        write_record(folder, record)
        write_summary(folder)
        print("    " + _outcome(record), flush=True)
    print(f"bench: done in {_duration(time.monotonic() - started)}; summary: {folder / 'summary.csv'}")
    picks = advice([analyse(r) for r in load_records(folder)])
    if picks:
        print("bench: which to pick (`make report` draws the charts and gives the reasons):")
        print("\n".join(f"  - {sentence}" for sentence in picks), flush=True)


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
