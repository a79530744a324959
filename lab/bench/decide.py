"""`make bench APP=...`: measure an app, then decide how to serve it within CPUS (and MEMORY), in a time
budget said before anything starts.

1. Each path of PATHS alone at one user, in the plainest server of the app's interface (Gunicorn's sync
   worker for WSGI, Uvicorn for ASGI): its latency, its CPU per request (the server's cgroup), its memory
   per worker (the server's report) and so its wait. Kept in paths.json.
2. The candidates, chosen from the mean demand and the throughput model (lab.analysis.model.deploy): a few, each
   for a reason.
3. For each, a closed loop at the users that reach its saturation, then a capacity search at
   SLO_P95_MS (lab.bench.capacity.steps), its steps sized to fit what is left of the budget.

decision.json keeps it all; the report (lab.report.deploy) picks from it, from the folder alone.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from contract.knobs import Knobs, app_paths, choice_setting, from_environ, int_setting, parse, setting
from contract.modes import MODES
from lab.analysis.model.deploy import Budget, Candidate, Demand, Interface, NotTried, bound, candidates, mean_demand
from lab.analysis.timespan import duration
from lab.bench.capacity.rates import MIN_WINDOW_S, first_rate, window_seconds
from lab.bench.capacity.steps import FIRST_REQUESTS, STEP_OVERHEAD, longest_step, search
from lab.bench.run import Entry, Where, keep, opened, run_one
from lab.results import request_timeline
from lab.results.decision import Decision, PathFigures, Tried, write_decision, write_paths
from lab.results.experiments import Experiment, RunConfig, for_app
from lab.results.folder import ResultsFolder, link_latest, new_folder, shown, write_json
from lab.results.manifest import FolderKind, Manifest, write_manifest
from lab.results.record import RunRecord, now
from lab.stack.place import Place
from lab.stack.procs import LabError
from lab.stack.stack_state import StateHook

DEFAULT_MINUTES = 20.0
PATH_WARMUP, PATH_SECONDS = 1.0, 4.0  # one user: a hundred requests or more of a path of tens of ms
CLOSED_WARMUP, CLOSED_SECONDS = 1.0, 6.0
SEARCH_WARMUP = 1.0
START_S = 15.0  # PostgreSQL, and the interpreter's speed taken at the start
END_S = 10.0  # the interpreter's speed taken again at the end, and everything stopped
MAX_USERS = 32  # a closed loop's users: Locust shares the two cores with the server
MAX_STEPS = 8
MB = 2**20
# The plainest server of each interface: one request at a time, so a path's figures are its own.
ALONE: dict[Interface, str] = {"wsgi": "gunicorn", "asgi": "async"}


def run_seconds(warmup: float, seconds: float) -> float:
    """What one run takes: its warm-up and window, and starting, verifying and stopping its server."""
    return warmup + seconds + STEP_OVERHEAD


def knobs_of(mode: str, workers: int, threads: int, cpus: float, users: int, wait_s: float, seconds: float) -> Knobs:
    """A run's knobs, from nothing but these: the user's own MODE or WORKERS do not leak in. An app's run
    carries its measured mean wait as IO_SECONDS, the model's D_io (its servers read no IO_SECONDS)."""
    server = MODES[mode]
    env = {"MODE": mode, "CPUS": f"{cpus:g}", "USERS": str(users), "SPAWN_RATE": "100", "WORKLOAD": "io",
           "IO_SECONDS": f"{min(30.0, wait_s):.4f}", "RUN_TIME": f"{math.ceil(seconds)}s"}  # fmt: skip
    if server.default_workers is not None:
        env["WORKERS"] = str(workers)
    if server.default_threads is not None:
        env["THREADS"] = str(threads)
    return parse(env)


@contextmanager
def only_path(path: str) -> Iterator[None]:
    """PATHS is this one path while it is measured alone (Locust and verification read PATHS)."""
    before = os.environ.get("PATHS")
    os.environ["PATHS"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATHS", None)
        else:
            os.environ["PATHS"] = before


def figures(record: RunRecord, folder: Path, path: str, weight: int, root: Path) -> PathFigures:
    """A path's figures from its run alone: the server's time per request from the timeline (the
    middleware's headers), its CPU per request from its cgroup, its memory from its report after the run."""
    m = record.measured
    if not record.ok or m is None:
        raise LabError(f"PATHS {path} alone at one user: the run failed: {record.reason}")
    handled = request_timeline.read(ResultsFolder(folder).file(m.timeline.file)) if m.timeline else []
    times = [(r["end_us"] - r["start_us"]) / 1000 for r in handled if r["end_us"] >= r["start_us"]]
    cpu_s = m.server.cpu_seconds_per_request
    if not times or not cpu_s or cpu_s <= 0:
        raise LabError(f"PATHS {path} alone at one user: the run recorded no server-side times or no CPU per request")
    handler_ms, cpu_ms = sum(times) / len(times), cpu_s * 1000
    p50 = record.intervals.p50_ms.interval() if record.intervals and record.intervals.p50_ms else None
    rss = worker_rss(record)
    return PathFigures(
        path=path, weight=weight, served_by=record.config.label, requests=m.locust.requests,
        p50_ms=p50.estimate if p50 else m.locust.p50_ms,
        p50_low_ms=p50.low if p50 and math.isfinite(p50.low) else None,
        p50_high_ms=p50.high if p50 and math.isfinite(p50.high) else None,
        handler_ms=round(handler_ms, 3), cpu_ms=round(cpu_ms, 3), wait_ms=round(max(0.0, handler_ms - cpu_ms), 3),
        rss_mb=round(sum(rss) / len(rss) / MB, 1) if rss else None,
        record=ResultsFolder(root).relative(ResultsFolder(folder).record(record.index, record.config.id)),
    )  # fmt: skip


def worker_rss(record: RunRecord) -> tuple[int, ...]:
    """Each worker process's resident memory after the run, as its server reported it (none without a report)."""
    return record.server_after.worker_rss_bytes if record.server_after else ()


def workers_mb(record: RunRecord) -> float | None:
    """Its worker processes' resident memory together after the run; None without a report."""
    rss = worker_rss(record)
    return round(sum(rss) / MB, 1) if rss else None


@dataclass
class Deciding:
    """A decision as it goes: where it runs, what it has recorded, and its clock."""

    folder: Path
    where: Where
    state_hook: StateHook
    name: str
    command: str
    started: float
    budget_s: float
    index: int = 1  # the next record's number in the results folder

    @property
    def left_s(self) -> float:
        """What is left of the budget for runs, once the end's own work is set aside."""
        return self.budget_s - (time.monotonic() - self.started) - END_S

    def run(self, config: RunConfig, folder: Path, index: int) -> RunRecord:
        backend, machine = self.where(config)
        record = run_one(config, Entry(self.name, index, None), backend, machine, folder, self.state_hook)
        keep(folder, record, self.command)
        return record


def measure_paths(state: Deciding, interface: Interface, cpus: float) -> list[PathFigures]:
    """Each path alone at one user, each in a folder of its own (paths/N/), so its files are its own."""
    found = []
    for n, (path, weight) in enumerate(app_paths(), 1):
        folder = ResultsFolder(state.folder).path_alone(n)
        config = RunConfig(knobs_of(ALONE[interface], 1, 1, cpus, 1, 0.0, PATH_WARMUP + PATH_SECONDS), PATH_WARMUP,
                           PATH_SECONDS)  # fmt: skip
        print(f"[path {n}] {path} alone at one user ({config.names.label}, CPUS={cpus:g})", flush=True)
        with only_path(path):
            record = state.run(config, folder, 1)
        found.append(figures(record, folder, path, weight, state.folder))
        f = found[-1]
        print(f"    p50 {f.p50_ms or 0:.1f} ms; in the server {f.handler_ms:.1f} ms, {f.cpu_ms:.1f} ms of it CPU, "
              f"wait share {f.wait_share:.0%}; {f.rss_mb or 0:.0f} MB per worker", flush=True)  # fmt: skip
    return found


def step_seconds(
    config: RunConfig, demand: Demand, candidate: Candidate, interface: Interface, budget: Budget
) -> tuple[float, float]:
    """The longest the first step and each later step of a candidate's search can take. Later steps run near
    its capacity, at no less than half the model's saturation; each may need a second, longer window."""
    first = run_seconds(config.warmup, window_seconds(first_rate(config), FIRST_REQUESTS))
    return first, longest_step(config, max(first_rate(config), 0.5 * bound(candidate, interface, demand, budget).throughput))


def steps_within(share_s: float, first: float, later: float) -> int:
    """The most steps a search fits in its share of the budget: the first, and as many later ones as fit."""
    return max(1, min(MAX_STEPS, 1 + math.floor((share_s - first) / later)))


def closed_users(candidate: Candidate, interface: Interface, demand: Demand, budget: Budget) -> int:
    """Users enough to reach the model's saturation (Little's law: its rate x a request's time), and one more."""
    x = bound(candidate, interface, demand, budget).throughput
    return min(MAX_USERS, max(1, math.ceil(x * demand.service_s) + 1))


def try_candidate(state: Deciding, candidate: Candidate, interface: Interface, demand: Demand, budget: Budget,
                  slo_ms: float, share_s: float) -> tuple[Tried, int]:  # fmt: skip
    """A closed loop, then a capacity search within what is left of this candidate's share (none for a server
    that did not start or verify). Returns what it held, and the most steps its search was given."""
    started = time.monotonic()
    users = closed_users(candidate, interface, demand, budget)
    knobs = knobs_of(candidate.mode, candidate.workers, candidate.threads, budget.cpus, users, demand.wait_s,
                     CLOSED_WARMUP + CLOSED_SECONDS)  # fmt: skip
    print(f"[{state.index}] {candidate.label}: a closed loop of {users} users", flush=True)
    record = state.run(RunConfig(knobs, CLOSED_WARMUP, CLOSED_SECONDS), state.folder, state.index)
    state.index += 1
    m = record.measured if record.ok else None
    rps = record.intervals.rps.interval() if m and record.intervals and record.intervals.rps else None
    print(f"    {f'{m.locust.rps:.1f} req/s, p95 {m.locust.p95_ms or 0:.0f} ms' if m else f'FAILED: {record.reason}'}",
          flush=True)  # fmt: skip
    tried = Tried(candidate=candidate, users=users, closed_rps=m.locust.rps if m else None,
                  closed_rps_low=rps.low if rps and math.isfinite(rps.low) else None,
                  closed_rps_high=rps.high if rps and math.isfinite(rps.high) else None,
                  closed_p95_ms=m.locust.p95_ms if m else None, failed=None if m else record.reason,
                  capacity="not searched: its server did not start or verify", capacity_low_rps=None,
                  capacity_high_rps=None, capacity_estimate_rps=None, lower_bound_only=False, steps=0,
                  seconds=round(time.monotonic() - started, 1), measured_mb=workers_mb(record))  # fmt: skip
    if record.verification is None or not record.verification.ok:  # its server never served: a search would not either
        return tried, 0
    config = RunConfig(knobs, SEARCH_WARMUP, MIN_WINDOW_S, arrivals=choice_setting("ARRIVALS"))
    first, later = step_seconds(config, demand, candidate, interface, budget)
    left = share_s - (time.monotonic() - started)
    steps = steps_within(left, first, later)
    print(f"    capacity at p95 ≤ {slo_ms:g} ms: at most {steps} steps in {duration(left)}", flush=True)
    # the search also stops before a step that could overrun its share: the estimate above assumed rates near capacity
    found = search(config, slo_ms, steps, state.folder, state.where, state.state_hook, state.index, left)
    state.index += found.runs
    write_json(ResultsFolder(state.folder).capacity_of(found.id), found)
    print(f"    {found.capacity} ({found.steps} steps, {duration(found.seconds)})", flush=True)
    return replace(tried, capacity=found.capacity, capacity_low_rps=found.capacity_low_rps,
                   capacity_high_rps=found.capacity_high_rps, capacity_estimate_rps=found.capacity_estimate_rps,
                   lower_bound_only=found.lower_bound_only, steps=found.steps,
                   seconds=round(time.monotonic() - started, 1)), steps  # fmt: skip


def how_many(left_s: float, costs: list[tuple[float, float, float]]) -> int:
    """How many candidates (best first) fit what is left with at least two steps each, and at least one."""
    for count in range(len(costs), 1, -1):
        share = left_s / count
        if all(closed + first + later <= share for closed, first, later in costs[:count]):
            return count
    return 1


def decide(*, backend_name: str = "native", minutes: float = DEFAULT_MINUTES, place: Place | None = None) -> Path:
    """Measure the app APP names, then try the configurations worth trying; returns the results folder."""
    app = setting("APP")
    if not app:
        raise LabError("deciding how to serve an app needs APP=package.module:callable")
    if backend_name == "remote":
        raise LabError("deciding starts servers of its own in each configuration: it cannot with TARGET (BACKEND=remote)")
    if not app_paths():
        raise LabError("deciding measures each path of PATHS alone: give PATHS (a LOCUSTFILE's requests cannot be split)")
    cpus = from_environ().cpus  # every knob and setting, MEMORY among them, checked before anything starts
    memory = int_setting("MEMORY") or None
    slo_ms = float(int_setting("SLO_P95_MS"))
    probe = RunConfig(knobs_of("gunicorn", 1, 1, 1.0, 1, 0.0, 1.0), 0.0, 1.0)  # gunicorn serves both interfaces
    for_app(Experiment("decide", "", [probe], {}))  # the app checked, and its servers told its interface, as a bench does
    interface: Interface = "asgi" if os.environ.get("APP_INTERFACE") == "asgi" else "wsgi"
    budget_s = minutes * 60
    name = "decide-" + app.partition(":")[0].replace(".", "-")
    folder = new_folder(name)
    link_latest(folder)
    paths = app_paths()
    least = START_S + len(paths) * run_seconds(PATH_WARMUP, PATH_SECONDS)
    started = time.monotonic()  # the budget runs from the moment it is said
    print(f"decide: APP={app} ({interface.upper()}), PATHS={' '.join(p for p, _ in paths)}, CPUS={cpus:g}"
          + (f", MEMORY={memory} MB" if memory else "") + f", p95 target {slo_ms:g} ms. Time budget: {duration(budget_s)} "
          f"(MINUTES=...): each path alone at one user (about {duration(least)}), then a few candidates, each a closed loop "
          f"and a capacity search sized to what is left. Results in "
          f"{shown(folder)}", flush=True)  # fmt: skip
    if budget_s < least + 2 * run_seconds(CLOSED_WARMUP, CLOSED_SECONDS):
        raise LabError(f"a time budget of {duration(budget_s)} cannot hold even the paths' runs and a closed loop: "
                       f"give MINUTES={math.ceil((least + 120) / 60)} or more")  # fmt: skip
    said = (f"How to serve APP={app} at CPUS={cpus:g}: each path alone, then the candidates the model chose, each a closed "
            "loop and a capacity search.")  # fmt: skip
    write_manifest(folder, Manifest(name, FolderKind.DECISION, now(), said, app=app, interface=interface, paths=setting("PATHS")))
    command = f"make bench APP={app}"
    alone = RunConfig(knobs_of(ALONE[interface], 1, 1, cpus, 1, 0.0, 1.0), PATH_WARMUP, PATH_SECONDS)
    with opened(place or Place(), [alone], backend_name, folder, command) as (where, state_hook):
        state = Deciding(folder, where, state_hook, name, command, started, budget_s)
        found = measure_paths(state, interface, cpus)
        write_paths(folder, found)
        demand = mean_demand([f.demand() for f in found])
        budget = Budget(cpus, where(alone)[1].cores_available or os.cpu_count() or 1, float(memory) if memory else None)
        choice = candidates(interface, demand, budget)
        if not choice.tried:
            raise LabError(f"no configuration fits MEMORY={memory} MB at {demand.rss_mb or 0:.0f} MB per worker")
        costs = []
        for c in choice.tried:
            config = RunConfig(knobs_of(c.mode, c.workers, c.threads, cpus, 1, demand.wait_s, 1.0), SEARCH_WARMUP,
                               MIN_WINDOW_S)  # fmt: skip
            costs.append((run_seconds(CLOSED_WARMUP, CLOSED_SECONDS), *step_seconds(config, demand, c, interface, budget)))
        count = how_many(state.left_s, costs)
        print(f"decide: per request on average D_cpu {demand.d_cpu_s * 1000:.1f} ms and W {demand.wait_s * 1000:.1f} ms "
              f"(wait share {demand.wait_share:.0%}): {count} candidate(s) in the {duration(state.left_s)} left: "
              + ", ".join(f"{c.label} ({c.reason})" for c in choice.tried[:count]), flush=True)  # fmt: skip
        tried: list[Tried] = []
        most = 0
        for i, candidate in enumerate(choice.tried[:count]):
            share = state.left_s / (count - i)
            result, steps = try_candidate(state, candidate, interface, demand, budget, slo_ms, share)
            tried.append(result)
            most = max(most, steps)
        dropped = [*choice.not_tried, *(NotTried(c, "over_count") for c in choice.tried[count:])]
    took = time.monotonic() - started
    decision = Decision(app, interface, demand, budget, slo_ms, budget_s, most, tried, dropped, round(took, 1))
    write_decision(folder, decision)
    print(f"decide: took {duration(took)}, {'within' if took <= budget_s else 'OVER'} its budget of {duration(budget_s)}",
          flush=True)  # fmt: skip
    return folder
