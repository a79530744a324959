"""Before a run is measured: is the server the one its record names, and does it do the work?

The server reports its effective configuration at /healthz (read from the running server: its
program, processes, pools); `differences` compares that report with the run's knobs, and `verify`
fails the run, naming each difference, when they disagree. Then every seeded pair must be answered
right, and the work must really happen (the database shows the wait, or the CPU time grows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contract.cgroup import CpuUsage
from contract.endpoint import seeded_rates, server_timing
from contract.knobs import Knobs, Offload, app_paths, int_setting, setting
from contract.middleware import REPORT_PATH
from lab.results import request_timeline
from lab.results.record import CpuReadings, ServerAfter, ServerReport, Verification, WorkerGone
from lab.results.typedjson import JsonError, read

REPORT_WAIT = 15.0  # seconds for every worker of a multi-process server to be up and counted
AFTER_WAIT = 5.0  # after a run: a worker its master replaced starts in a second or two, not a whole server


@dataclass(frozen=True)
class Difference:
    """One way the server's report disagrees with the run: a setting with both its values, or a fact in words."""

    key: str
    server: object = None
    run: object = None
    words: str = ""

    def __str__(self) -> str:
        return self.words or f"{self.key} is {self.server!r} in the server, {_plain(self.run)!r} in the run"

    @property
    def starting(self) -> bool:
        """The one difference a server still starting can show: it counts its workers as they come."""
        return self.key == "workers"


class VerificationError(RuntimeError):
    """The app answered, but not as the configuration says it should."""


class Verifiable(Protocol):
    @property
    def url(self) -> str: ...

    def usage(self) -> CpuUsage: ...


def get(url: str, timeout: float = 120) -> tuple[int, dict[str, str], dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}, {}


def timing(headers: dict[str, str], phase: str) -> float:
    """Seconds of one phase (db, cpu) from the Server-Timing header."""
    return server_timing(headers.get("server-timing", "")).get(phase, 0.0) / 1000


def report_path() -> str:
    """Where the server reports itself: the lab's own path in the middleware around an app of the user's."""
    return REPORT_PATH if setting("APP") else "/healthz"


def differences(report: dict[str, Any], knobs: Knobs) -> list[Difference]:
    """Each way the server's own report disagrees with the knobs of the run."""
    mode = knobs.server
    if setting("APP"):  # an app of the user's: the server's facts only, no workload of the lab's
        return _app_differences(report, knobs)
    expected: dict[str, Any] = {
        "mode": knobs.mode,
        "program": mode.program,
        "workload": knobs.workload,
        "io_seconds": knobs.io_seconds,
        "primes_limit": knobs.primes_limit,
        "workers": knobs.workers,
        "db_pool": knobs.db_pool,
        "cpu_offload": knobs.cpu_offload,
    }
    if mode.default_threads is not None:
        expected["threads"] = knobs.threads
    if knobs.db_pool == "1":
        expected["db_pool_size"] = int_setting("DB_POOL_SIZE")
    served = {**report, "cpu_offload": _offload(report.get("cpu_offload"))}
    found = [Difference(key, report.get(key), value) for key, value in expected.items() if served.get(key) != value]
    if knobs.cpu_offload is Offload.PROCESS and not report.get("offload_processes"):
        found.append(Difference("offload_processes", words="the server has no process to offload the prime count to"))
    return found


def _app_differences(report: dict[str, Any], knobs: Knobs) -> list[Difference]:
    expected: dict[str, Any] = {"mode": knobs.mode, "program": knobs.server.program, "workers": knobs.workers,
                                "app": setting("APP")}  # fmt: skip
    if knobs.server.default_threads is not None and report.get("worker_class") != "UvicornWorker":
        expected["threads"] = knobs.threads
    return [Difference(key, report.get(key), value) for key, value in expected.items() if report.get(key) != value]


def _offload(value: Any) -> Offload | None:
    """The report's cpu_offload (JSON's string) as the enum; None for what no version of the lab wrote."""
    try:
        return Offload(value)
    except ValueError:
        return None


def _plain(value: object) -> object:
    """A value as JSON holds it, for a difference's words: 'process', not <Offload.PROCESS: 'process'>."""
    return value.value if isinstance(value, Offload) else value


def server_report(url: str, knobs: Knobs, wait: float | None = None) -> dict[str, Any]:
    """The server's report once it agrees with the knobs, or the last one after `wait` seconds while only its count
    of workers differs (a multi-process server may still be starting them); any other difference is the server's
    own configuration, which waiting does not change: it is returned at once."""
    deadline = time.monotonic() + (REPORT_WAIT if wait is None else wait)
    while True:
        status, _, body = get(f"{url}{report_path()}", timeout=10)
        report = body.get("server") or {}
        found = differences(report, knobs)
        lasting = [d for d in found if not d.starting]
        if (status == 200 and (not found or lasting)) or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def read_report(report: dict[str, Any]) -> ServerReport:
    """The server's report as a record keeps it; VerificationError for one the lab cannot read."""
    try:
        return read(ServerReport, report, "its report of itself")
    except JsonError as error:
        raise VerificationError(f"the server's report cannot be read: {error}") from None


def verify(app: Verifiable, knobs: Knobs) -> Verification:
    report = server_report(app.url, knobs)
    if found := differences(report, knobs):
        raise VerificationError("the server does not run the run's configuration: " + "; ".join(map(str, found)))
    if setting("APP"):
        return verify_app(app, report)
    before = app.usage().cpu_seconds
    waited: list[float] = []  # seconds in the database (io), or counting primes (cpu), per request
    computed: list[float] = []
    kinds = ("io", "cpu") if knobs.workload == "mix" else (knobs.workload,)
    for i, ((source, target), rate) in enumerate(seeded_rates().items()):
        kind = kinds[i % len(kinds)]
        status, headers, body = get(f"{app.url}/currency/convert?from={source}&to={target}&workload={kind}")
        if status != 200 or body.get("rate") != rate:
            raise VerificationError(f"{source}->{target}: HTTP {status}, answer {body or 'none'} (expected rate {rate})")
        (waited if kind == "io" else computed).append(timing(headers, "db" if kind == "io" else "cpu"))
    cpu_used = app.usage().cpu_seconds - before
    if waited and min(waited) < 0.9 * knobs.io_seconds:
        raise VerificationError(f"the database answered in {min(waited):.3f}s, below IO_SECONDS={knobs.io_seconds:g}")
    if computed and cpu_used < 0.2 * min(1.0, knobs.cpus or 1.0) * sum(computed):
        raise VerificationError(f"the server used {cpu_used:.3f} CPU-s for {sum(computed):.3f}s of prime counting")
    return Verification(ok=True, pairs=len(waited) + len(computed), db_seconds=round(min(waited), 4) if waited else None,
                        cpu_seconds_used=round(cpu_used, 4), server=read_report(report))  # fmt: skip


_set_up: list[str] = []  # APP_SETUP runs once per bench, before the first run is measured


def app_setup(app: Verifiable) -> None:
    """APP_SETUP (migrations, seed data), once, in APP_DIR, with the app's database (the lab's PostgreSQL)."""
    command = setting("APP_SETUP")
    if not command or command in _set_up:
        return
    env = dict(os.environ)
    if database_url := getattr(app, "database_url", None):  # the native backend's, as the server has it
        env["DATABASE_URL"] = database_url
    if python := env.get("APP_PYTHON"):  # its own venv first: `python manage.py migrate` runs the app's Django
        env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
    # in the app's container under compose (its database is the containers'); here otherwise, as its server would be
    argv = getattr(app, "setup_argv", None) or [sys.executable, "-m", "contract.serve", "setup"]
    done = subprocess.run(argv, env={**env, "APP_SETUP": command}, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise VerificationError(f"APP_SETUP={command!r} exited with code {done.returncode}: {last[0]}")
    _set_up.append(command)


def path_status(url: str, timeout: float = 120) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def verify_app(app: Verifiable, report: dict[str, Any]) -> Verification:
    """An app of the user's: its server is the run's (above), APP_SETUP has run, and each path answers 2xx
    at one user, one request at a time."""
    app_setup(app)
    before = app.usage().cpu_seconds
    for path, _ in app_paths():
        status = path_status(f"{app.url}{path}")
        if not 200 <= status < 300:
            raise VerificationError(f"{path} answered HTTP {status} at one user: PATHS must answer 2xx")
    return Verification(ok=True, pairs=len(app_paths()), cpu_seconds_used=round(app.usage().cpu_seconds - before, 4),
                        server=read_report(report))  # fmt: skip


def after_run(app: Verifiable, knobs: Knobs, before: ServerReport | None, timeline: Path | None) -> ServerAfter:
    """The server's report once more, after the run: does it still run the run's configuration, and
    did worker processes die meanwhile (a multi-process server replaces them)? For each worker that
    is gone, the timeline says when it last answered, in seconds from the first measured request."""
    status, _, _ = get(f"{app.url}{report_path()}", timeout=10)
    if status != 200:
        return ServerAfter((f"its report of itself answered HTTP {status}",), (), ())
    raw = server_report(app.url, knobs, AFTER_WAIT)  # a replaced worker may still be starting
    try:
        report = read_report(raw)
    except VerificationError as error:
        return ServerAfter((str(error),), (), ())
    had, has = set(before.worker_pids if before else ()), set(report.worker_pids)
    last = _last_answers(timeline, had - has) if timeline is not None and had - has else {}
    gone = tuple(WorkerGone(pid, last.get(pid)) for pid in sorted(had - has))
    found = tuple(map(str, differences(raw, knobs)))
    return ServerAfter(found, gone, tuple(sorted(has - had)), report.cpu, report.worker_rss_bytes)


def own_cpu_seconds(url: str) -> float | None:
    """The CPU seconds the server says its process tree has used (its report of itself)."""
    status, _, body = get(f"{url}{report_path()}", timeout=30)
    cpu = (body.get("server") or {}).get("cpu") or {}
    seconds = cpu.get("process_tree_seconds")
    return float(seconds) if status == 200 and seconds is not None else None


def cpu_agreement(cgroup_seconds: float, own_seconds: float | None) -> CpuReadings:
    """The server's CPU over the same stretch, read two ways: the cgroup the lab reads on this host, and
    the server's report of itself (its process tree, from any host). They must agree; by how much."""
    ratio = None if own_seconds is None or cgroup_seconds <= 0 else round(own_seconds / cgroup_seconds, 4)
    return CpuReadings(round(cgroup_seconds, 4), own_seconds, ratio)


def _last_answers(timeline: Path, pids: set[int]) -> dict[int, float]:
    rows = request_timeline.read(timeline)
    if not rows:
        return {}
    first = min(row["start_us"] for row in rows)
    last: dict[int, float] = {}
    for row in rows:
        if row["pid"] in pids:
            last[row["pid"]] = max(last.get(row["pid"], 0.0), round((row["end_us"] - first) / 1e6, 2))
    return last
