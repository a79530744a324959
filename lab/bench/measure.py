"""Measuring one run: a headless Locust run with a warm-up, its statistics (io and cpu requests
apart), and the CPU of the server, PostgreSQL, the load generator and the whole machine, read
from the kernel around the measured window."""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.endpoint import request_name
from contract.knobs import REQUEST_WORKLOADS
from lab.analysis.stats import quantile
from lab.results import request_timeline
from lab.results.experiments import RunConfig
from lab.results.folder import ResultsFolder
from lab.results.record import KindStats, LoadGenerator, LocustError, LocustStats, Measured, OpenArrivals, OpenShare, ServerCpu
from lab.stack import machine_cpu
from lab.stack.backends import App, Backend, LocustOptions, remote_workers
from lab.stack.backends.remote_workers import master_argv
from lab.stack.checkout import ROOT
from lab.stack.procs import LabError, reap, signals_deferred, spawn

if TYPE_CHECKING:
    from lab.stack.stack_state import StateHook


def percentile(histogram: dict[float, int], fraction: float) -> float | None:
    """The response time below which `fraction` of requests fell, from Locust's histogram
    (response time, rounded as Locust rounds it -> count), computed as Locust computes it.

    The lab's one percentile of a histogram: Locust keeps only these rounded buckets, and its own
    algorithm gives the figures its web UI and CSV show. Latencies the lab holds one by one go
    through lab.analysis.stats.quantile."""
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


def _entry_stats(entries: list[dict[str, Any]], seconds: float) -> LocustStats:
    """Requests, failures and latency percentiles of Locust's entries taken together, over `seconds`."""
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
    return LocustStats(
        requests=requests, failures=failures, failure_ratio=round(failures / requests, 4) if requests else None,
        avg_ms=round(total_ms / requests, 2) if requests else None,
        p50_ms=percentile(histogram, 0.50), p90_ms=percentile(histogram, 0.90),
        p95_ms=percentile(histogram, 0.95), p99_ms=percentile(histogram, 0.99), max_ms=round(max_ms, 2),
        rps=round(requests / seconds, 3), measured_seconds=round(seconds, 3),
    )  # fmt: skip


def locust_stats(json_file: Path, seconds: float) -> LocustStats:
    """Statistics of the measured window from Locust's final JSON (its CSV may lag the end): for all
    requests, and for io and cpu requests apart (Locust names them by kind)."""
    entries = json.loads(json_file.read_text())
    by_workload: dict[str, KindStats] = {}
    for kind in REQUEST_WORKLOADS:
        mine = [e for e in entries if e["name"] == request_name(kind)]
        if mine:
            kept = _entry_stats(mine, seconds)
            by_workload[kind] = KindStats(kept.requests, kept.failures, kept.p50_ms, kept.p95_ms, kept.p99_ms, kept.rps)
    return replace(_entry_stats(entries, seconds), by_workload=by_workload)


def locust_options(config: RunConfig, url: str, folder: Path) -> LocustOptions:
    """A headless run's options, whichever backend runs Locust."""
    files = ResultsFolder(folder).locust(config.id)
    # open arrivals: every user at once, so that arrivals do not wait for users still being spawned
    knobs = config.knobs
    users, spawn_rate = (config.open_users, 10 * config.open_users) if config.arrival_rate else (knobs.users, knobs.spawn_rate)
    options: LocustOptions = {
        "--host": url, "--users": users, "--spawn-rate": f"{spawn_rate:g}",
        "--run-time": f"{math.ceil(config.warmup + config.run_time)}s", "--stop-timeout": 0,
        "--json-file": files.prefix, "--loglevel": "WARNING", "--exit-code-on-error": 0,
        "--lab-warmup": f"{config.warmup:g}", "--lab-timeline": files.timeline, "--lab-window": files.window,
        "--lab-workload": knobs.workload, "--lab-cpu-share": f"{knobs.mix_cpu_share:g}",
    }  # fmt: skip
    if config.locust_processes > 1:
        options["--processes"] = config.locust_processes
    if config.arrival_rate:
        options.update({"--lab-arrival-rate": f"{config.arrival_rate:g}", "--lab-arrivals": config.arrivals,
                        "--lab-open-file": files.open_arrivals})  # fmt: skip
    return options


def measure(app: App, config: RunConfig, folder: Path, state_hook: StateHook, backend: Backend) -> Measured:
    """One headless Locust run: warm-up, statistics reset, measurement; the server's and the
    load generator's CPU are read from the kernel around it."""
    files = ResultsFolder(folder).locust(config.id)
    work, timeline, window_file, log = files.work, files.timeline, files.window, files.log
    work.mkdir(parents=True, exist_ok=True)
    timeline.parent.mkdir(exist_ok=True)
    window_file.unlink(missing_ok=True)
    total = config.warmup + config.run_time
    options = locust_options(config, app.url, folder)
    argv = backend.locust_argv(options, folder)
    # LOCUST_REMOTE_WORKERS: the master of workers on other hosts
    argv = master_argv(argv, config.id, config.locust_processes, backend.name, work)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
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
    stats = replace(
        locust_stats(files.stats, seconds),
        open=open_arrivals(files.open_arrivals, window["start"], seconds) if config.arrival_rate else None,
        errors=tuple(LocustError(e["error"], e["occurrences"]) for e in window.get("errors", [])),
    )
    cpu = usage_to.cpu_seconds - usage_from.cpu_seconds
    server = ServerCpu(
        cpu_seconds=round(cpu, 4),
        cpu_seconds_per_request=round(cpu / stats.requests, 6) if stats.requests else None,
        utilisation=round(cpu / seconds, 4),
        nr_throttled=None if usage_to.nr_throttled is None else usage_to.nr_throttled - (usage_from.nr_throttled or 0),
        throttled_seconds=None
        if usage_to.throttled_seconds is None
        else round(usage_to.throttled_seconds - (usage_from.throttled_seconds or 0), 4),
    )
    if backend.load_generator_is_child:  # exact: the kernel's account of our exited children
        loadgen_cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    else:
        loadgen_cpu = loadgen_last  # its container's cgroup, last read just before it exited
    in_window = None if loadgen_cpu is None or loadgen_from is None else loadgen_cpu - loadgen_from
    processes = config.locust_processes
    loadgen = LoadGenerator(
        cpu_seconds=None if loadgen_cpu is None else round(loadgen_cpu, 3),
        window_cpu_seconds=None if in_window is None else round(in_window, 3),
        processes=processes,
        utilisation=None if in_window is None else round(in_window / seconds / processes, 3),
        locust_warned_cpu="CPU usage" in log.read_text(errors="replace"),
    )
    pg_cpu = None if pg_to is None or pg_from is None else pg_to - pg_from
    parts = {"server": cpu, "postgres": pg_cpu, "load_generator": in_window}
    # the client's and the server's stamps share a clock unless one of them is on another host
    same_clock = backend.name != "remote" and not remote_workers.expected()
    kept = request_timeline.summary(timeline, ResultsFolder(folder).relative(timeline), same_clock) if timeline.exists() else None
    whole = machine_cpu.window(machine_from, machine_to, parts)
    return Measured(stats, server, loadgen, kept if kept and kept.rows else None, whole)


def open_arrivals(path: Path, start: float, seconds: float) -> OpenArrivals:
    """What an open-arrival run offered and sent, and its latency counted from each arrival's intended
    start (unanswered arrivals at the end count as waiting until then); p50 and p95 of each half of
    the window say whether latency grew over the run."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise LabError(f"Locust wrote no open-arrival record ({path.name})") from None
    if missing := data.get("missing"):  # the window would lack their arrivals: its rate and latencies would be wrong
        raise LabError(f"Locust worker(s) {', '.join(missing)} sent the master no account of their open arrivals")
    latencies = sorted(data["latencies"], key=lambda a: a[0])
    ms = [latency for _, latency, _ in latencies]
    failed = sum(1 for *_, ok in latencies if ok is False)
    # how latency moved over the run, from the answered arrivals (an unanswered one has only a lower bound)
    answered = [a for a in latencies if a[2] is not None]
    half = start + seconds / 2
    first, second = ([m for at, m, _ in answered if (at < half) == early] for early in (True, False))
    return OpenArrivals(
        rate=data["rate"], poisson=data["poisson"],
        # sent: answered, and those still unanswered at the end (sent all the same)
        offered=data["offered"], sent=data["sent"] + data["unanswered"], late=data["late"],
        dropped=data["dropped"], unanswered=data["unanswered"],
        offered_rps=round(data["offered"] / seconds, 3),
        sent_rps=round((data["sent"] + data["unanswered"]) / seconds, 3),
        failure_ratio=round(failed / len(ms), 4) if ms else None,
        p50_ms=_ms(ms, 0.50), p95_ms=_ms(ms, 0.95), p99_ms=_ms(ms, 0.99),
        p50_first_half_ms=_ms(first, 0.50), p50_second_half_ms=_ms(second, 0.50),
        p95_first_half_ms=_ms(first, 0.95), p95_second_half_ms=_ms(second, 0.95),
        workers=tuple(OpenShare(**worker) for worker in data.get("workers", [])),
    )  # fmt: skip


def _ms(values: list[float], q: float) -> float | None:
    """The q-quantile of latencies in ms, to a tenth (lab.analysis.stats.quantile); None without any."""
    found = quantile(values, q)
    return None if found is None else round(found, 1)
