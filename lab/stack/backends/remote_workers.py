"""Locust workers on other hosts: `make worker MASTER=host` joins the Locust of a bench there, and
LOCUST_REMOTE_WORKERS=N makes a bench's headless Locust their master, so that the load comes from more
machines than the lab's own.

The master's port for its workers (LOCUST_MASTER_PORT, 5557) listens on LOCUST_BIND, loopback unless
asked. Each worker reports its own CPU seconds with its statistics (remote_locust.py, loaded into Locust
beside the locustfile); the run's record says how many workers joined, on which hosts (Locust names a
worker after its host) and how busy each was over the measured window, and a run that any of them bounded
(over 85% of a core) is flagged as bounded by the load generator.

Each run of a bench starts its own master, which tells its workers to quit at the end: `make worker`
starts a Locust worker again for the next run, until Ctrl-C. It keeps its state in a folder of its own
(.lab/worker), so a worker is never taken for a second lab on the same host.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from functools import partial
from pathlib import Path

from contract.knobs import int_setting
from lab.stack import stack_state
from lab.stack.backends.leftovers import stop_leftovers
from lab.stack.backends.native import BIN, LOCUSTFILE
from lab.stack.backends.remote import address
from lab.stack.backends.seam import WorkerFacts, WorkersFacts
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.procs import LabError, check_port_free, reap, signals_deferred, spawn, tail, wait_until

PLUGIN = Path(__file__).with_name("remote_locust.py")
JOIN_WAIT = 30  # seconds a bench's master waits for its workers before its run fails
SATURATED = 0.85  # as for the local load generator: a worker above this share of a core bounds the run
POLL = 0.5  # seconds between a waiting worker's attempts to reach its master
GONE_WAIT = 10.0  # seconds for a master that ended its run to close its port (the next run's may open it sooner)


def expected() -> int:
    return int_setting("LOCUST_REMOTE_WORKERS")


def master_argv(argv: list[str], run_id: str, locust_processes: int, backend: str, work: Path) -> list[str]:
    """A headless Locust's command for run RUN_ID, as the master of LOCUST_REMOTE_WORKERS workers on other hosts
    (unchanged when there are none)."""
    workers = expected()
    if not workers:
        return argv
    if backend == "compose":
        raise LabError("LOCUST_REMOTE_WORKERS takes a Locust that runs as a process of this host: BACKEND=native or remote")
    if locust_processes > 1:
        raise LabError("LOCUST_REMOTE_WORKERS and locust_processes both make workers: use one or the other")
    bind, port = address("LOCUST_BIND"), int_setting("LOCUST_MASTER_PORT")
    check_port_free(port, "the Locust master's port for its workers (LOCUST_MASTER_PORT)", host=bind)
    report = work / f"{run_id}.workers.json"
    report.unlink(missing_ok=True)  # a run measured again must not read the last one's workers
    at = argv.index("-f") + 1
    return [*argv[:at], f"{argv[at]},{PLUGIN}", *argv[at + 1 :], "--master", "--expect-workers", str(workers),
            "--expect-workers-max-wait", str(JOIN_WAIT), "--master-bind-host", bind, "--master-bind-port", str(port),
            "--lab-workers-file", str(report)]  # fmt: skip


def _over_window(samples: list[tuple[float, float]], start: float, end: float) -> tuple[float, float] | None:
    """CPU seconds and wall seconds between the reports that enclose the window (each within a report interval,
    3 s, of its edge), or the nearest ones inside it."""
    if len(samples) < 2:
        return None
    before = [s for s in samples if s[0] <= start]
    after = [s for s in samples if s[0] >= end]
    first, last = (before[-1] if before else samples[0]), (after[0] if after else samples[-1])
    if last[0] <= first[0]:
        return None
    return last[1] - first[1], last[0] - first[0]


def workers_of_run(work: Path, run_id: str) -> WorkersFacts | None:
    """The workers of a run whose Locust was their master: how many, on which hosts, each one's CPU over the
    measured window; None for a run without remote workers."""
    try:
        data = json.loads((work / f"{run_id}.workers.json").read_text())
        window = json.loads((work / f"{run_id}.window.json").read_text())
        start, end = float(window["start"]), float(window["end"])
    except (OSError, ValueError, KeyError):
        return None
    workers: list[WorkerFacts] = []
    for worker, facts in data["workers"].items():
        samples = sorted((float(at), float(cpu)) for at, cpu in facts["reports"])
        used = _over_window(samples, start, end)
        workers.append(WorkerFacts(
            id=worker, host=worker.rsplit("_", 1)[0], index=facts.get("index"),
            cpu_seconds=None if used is None else round(used[0], 3),
            over_seconds=None if used is None else round(used[1], 3),
            utilisation=None if used is None else round(used[0] / used[1], 3),
            locust_cpu_percent=facts.get("locust_cpu_percent"), reports=len(samples),
        ))  # fmt: skip
    workers.sort(key=lambda w: (w["index"] is None, w["index"] or 0))
    hosts: dict[str, int] = {}
    for facts in workers:
        hosts[facts["host"]] = hosts.get(facts["host"], 0) + 1
    busiest = max((u for w in workers if (u := w["utilisation"]) is not None), default=None)
    return WorkersFacts(expected=data.get("expected"), connected=len(workers), hosts=hosts, workers=workers,
                        busiest=busiest, bounded=busiest is not None and busiest >= SATURATED)  # fmt: skip


def bounding(workers: WorkersFacts) -> float | None:
    """The busiest worker's share of a core, when it bounded the run (as a busy local load generator does)."""
    return workers["busiest"] if workers["bounded"] else None


# ---------------------------------------------------------------- make worker


def worker_place() -> Place:
    """A worker's own state folder: its stack file never refuses, nor is refused by, a lab on the same host."""
    return Place(state=Place().state / "worker")


def _reach(master: str, port: int) -> str | None:
    """None when the master's port takes a connection; else why not, in words."""
    try:
        with socket.create_connection((master, port), timeout=5):
            return None
    except socket.gaierror as error:
        return f"no such host ({error.strerror})"
    except OSError as error:
        return error.strerror or str(error) or "timed out"


def _wait_for_master(master: str, port: int, wait: float | None) -> None:
    """Until the master listens; before the first run (`wait` seconds), a master that cannot be reached is an
    error; between runs, a worker waits for the next one for as long as it takes."""
    deadline = None if wait is None else time.monotonic() + wait
    said = False
    while (why := _reach(master, port)) is not None:
        refused = why == os.strerror(errno.ECONNREFUSED)
        if deadline is not None and not refused:
            raise LabError(
                f"cannot reach the Locust master at {master}:{port}: {why}. Is MASTER right, and can this host reach "
                f"port {port} of it?"
            )
        if deadline is not None and time.monotonic() > deadline:
            raise LabError(
                f"no Locust master answered at {master}:{port} within {wait:g} s: on {master}, run the bench with "
                "LOCUST_REMOTE_WORKERS=N and LOCUST_BIND=0.0.0.0 (its port for workers listens on loopback unless asked)"
            )
        if not said:
            print(f"lab: waiting for a Locust master at {master}:{port} ({why})", flush=True)
            said = True
        time.sleep(POLL)


def join(master: str, port: int, processes: int = 1, wait: float = 120.0, place: Place | None = None) -> None:
    """`make worker`: a Locust worker (or `processes` of them) for each run the master at `master` starts, until
    Ctrl-C or SIGTERM, under a stack file of its own."""
    place = place or worker_place()
    log = place.logs / "locust-worker.log"
    argv = [str(BIN / "locust"), "-f", f"{LOCUSTFILE},{PLUGIN}", "--worker", "--master-host", master,
            "--master-port", str(port)] + (["--processes", str(processes)] if processes > 1 else [])  # fmt: skip
    command = f"make worker MASTER={master}"
    with stack_state.claimed(place, ["remote"], command, partial(stop_leftovers, place)) as record:
        runs = 0
        while True:
            _wait_for_master(master, port, None if runs else wait)
            with signals_deferred():
                worker = spawn(argv, cwd=ROOT, env=os.environ, log=log)
            try:
                record(locust=worker.pid)
                print(f"lab: {processes} Locust worker(s) for the master at {master}:{port} (log: {log})", flush=True)
                code = worker.wait()
            finally:
                reap(worker)
                record(locust=None)
            if code != 0:
                raise LabError(f"the Locust worker exited with code {code}; end of {log}:\n{tail(log)}")
            runs += 1
            print(f"lab: the master ended its run ({runs} so far); waiting for the next (Ctrl-C stops)", flush=True)
            # until the master that ended is gone, or a worker would join it as it quits and wait out Locust's retries
            wait_until(lambda: _reach(master, port) is not None, GONE_WAIT, interval=POLL)
