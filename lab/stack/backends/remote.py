"""The remote backend: a server the lab did not start, at TARGET=http://host:port (`make serve` on its own
host, a container, a pod), measured from this host by a local Locust.

Nothing is started or stopped on the target. Before anything starts, the target must answer with the
server's report of itself at /healthz; each run is verified from that report exactly as a local run is
(MODE, WORKERS, THREADS, ... must be what the server reports), and CPUS is checked against the CPU limit
the server reports of its own cgroup, since the lab cannot apply one. The server's CPU is read from the
same report: its cgroup's CPU time where it runs under a limit of its own, else its process tree's.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from contract.cgroup import CpuUsage
from contract.knobs import KNOBS, Knobs, setting
from lab.stack import machine_cpu, stack_state
from lab.stack.backends.leftovers import stop_leftovers
from lab.stack.backends.native import NativeBackend
from lab.stack.backends.seam import LocustOptions, RunFacts
from lab.stack.place import Place
from lab.stack.procs import LabError
from lab.stack.stack_state import StateHook

# What a server reports of itself and a run must match (lab/bench/verification.py), with CPUS, checked against
# its limit: the knobs a lab on another host measures it with.
SERVER_KNOBS = tuple(name for name, knob in KNOBS.items() if knob.server)
TIMEOUT = 10.0  # seconds for the target's report of itself: a busy one-thread server answers it in turn
LIMIT_TOLERANCE = 0.005  # CPUs: a CFS quota is whole microseconds of its period


def address(name: str) -> str:
    """An IPv4 address setting (BIND, LOCUST_BIND): 127.0.0.1 unless asked, 0.0.0.0 for every address."""
    text = setting(name)
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise LabError(f"{name}={text!r} is not valid: {name} takes an IPv4 address of this host (0.0.0.0: every one)") from None
    return text


def measured_with(knobs: Knobs) -> str:
    """The knobs a lab on another host gives to measure this server: those its report is checked against."""
    return " ".join(f"{name}={value}" for name, value in knobs.as_env().items() if name in SERVER_KNOBS)


def target_url(text: str | None = None) -> str:
    """TARGET, checked: http://host:port, without a path."""
    text = setting("TARGET") if text is None else text
    if not text:
        raise LabError("BACKEND=remote measures a server the lab did not start: set TARGET=http://host:port (make serve)")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/") or parts.query:
        raise LabError(f"TARGET={text!r} is not valid: TARGET takes http://host:port, where a server of this lab listens")
    return text.rstrip("/")


def server_report(url: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The server's report of itself at /healthz, or a LabError saying, in the user's words, what answered."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise LabError(
            f"TARGET={url} did not answer ({reason}): start the server on its host with "
            "`make serve MODE=... BIND=0.0.0.0`, and check that this host reaches it"
        ) from None
    try:
        answer = json.loads(body)
        report, said = answer.get("server"), str(answer.get("error") or "its database is unavailable")
    except (ValueError, AttributeError):
        report, said = None, "its database is unavailable"
    if status == 503:  # the database down, or the server still opening its pool: its own words
        raise LabError(f"TARGET={url} answered that it is not ready: {said} (/healthz: HTTP 503)")
    if status != 200 or not isinstance(report, dict) or not report.get("mode"):
        raise LabError(
            f"TARGET={url} answered without the server's report of itself at /healthz (HTTP {status}): "
            "is it a server of this lab (make serve)?"
        )
    return report


def cpu_of(report: dict[str, Any]) -> tuple[CpuUsage, str]:
    """The server's CPU from its report, and where it was read: its cgroup when it runs under a limit of its
    own (which counts every process it ever had), else its process tree (its cgroup may hold others)."""
    cpu = report.get("cpu") or {}
    if cpu.get("cgroup_limit_cpus") is not None and cpu.get("cgroup_seconds") is not None:
        return CpuUsage(float(cpu["cgroup_seconds"]), cpu.get("nr_throttled"), cpu.get("throttled_seconds")), "cgroup"
    if cpu.get("process_tree_seconds") is None:
        raise LabError("the target's report of itself gives no CPU time: its lab is older than this one")
    return CpuUsage(float(cpu["process_tree_seconds"])), "process_tree"


def limit_difference(report: dict[str, Any], cpus: float) -> str | None:
    """How the CPU limit the server reports differs from CPUS, in words; None when they agree."""
    limit = (report.get("cpu") or {}).get("cgroup_limit_cpus")
    if (limit is None and cpus <= 0) or (limit is not None and abs(limit - cpus) <= LIMIT_TOLERANCE):
        return None
    has = "no CPU limit" if limit is None else f"a CPU limit of {limit:g} CPU"
    return (
        f"the target runs under {has} (its own cgroup, as it reports), and the run asks CPUS={cpus:g}: the lab cannot "
        f"change a server it did not start, so run with CPUS={0 if limit is None else f'{limit:g}'} or serve it with "
        f"CPUS={cpus:g}"
    )


@dataclass(frozen=True)
class TargetLimit:
    """The CPU limit the server reports of its own cgroup: checked against CPUS, never applied by the lab."""

    cpus: float | None

    @property
    def enforced(self) -> bool:
        return self.cpus is not None

    def describe(self) -> str:
        if self.cpus is None:
            return "none: the server reports no CPU limit of its cgroup (not applied by the lab: a server it did not start)"
        return f"the server's own cgroup, {self.cpus:g} CPU, as it reports it (not applied by the lab: a server it did not start)"


class RemoteApp:
    """The server at TARGET for one configuration: checked, measured, never started or stopped."""

    def __init__(self, url: str, knobs: Knobs) -> None:
        self.knobs = knobs
        self._url = url
        self._limit: TargetLimit | None = None
        self.master_pid: int | None = None
        self.cpu_source: str | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def limit(self) -> TargetLimit | None:
        return self._limit

    def start(self) -> None:
        """Nothing starts: the target must answer with its report, under the limit CPUS names."""
        report = server_report(self.url)
        self._limit = TargetLimit((report.get("cpu") or {}).get("cgroup_limit_cpus"))
        if difference := limit_difference(report, self.knobs.cpus):
            raise LabError(difference)
        self.master_pid = report.get("master_pid")
        self.cpu_source = cpu_of(report)[1]

    def facts(self) -> RunFacts:
        return {"target": self.url, "started_by_lab": False, "server_cpu_from": f"its report of itself ({self.cpu_source})"}

    def usage(self) -> CpuUsage:
        return cpu_of(server_report(self.url))[0]

    def died(self) -> str | None:
        try:
            report = server_report(self.url)
        except LabError as error:
            return str(error)
        if self.master_pid is not None and report.get("master_pid") != self.master_pid:
            return f"it was restarted: its master process was {self.master_pid}, now {report.get('master_pid')}"
        return None

    def stop(self) -> None:
        """Nothing to stop: the lab did not start it."""


@dataclass(frozen=True)
class RemoteServing:
    """`make demo` against the target: the server's address and limit; no Locust UI here."""

    url: str
    limit: TargetLimit | None
    locust_url: str = "(none: make up starts the lab's own server)"
    logs: str = "(on the target's host)"


class RemoteBackend:
    """Measures TARGET from here: Locust runs as a local process, as on the native backend."""

    name = "remote"
    load_generator_is_child = True

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or Place()
        self.local = NativeBackend(self.place)  # how Locust runs here: the native backend's way

    @property
    def url(self) -> str:
        return target_url()

    def open(self, folder: Path | None, cpus: list[float]) -> str:
        report = server_report(self.url)
        if difference := next(filter(None, (limit_difference(report, c) for c in cpus)), None):
            raise LabError(difference)  # before anything starts: no run of this experiment could be measured
        print(
            f"lab: measuring TARGET={self.url}, a server the lab did not start: MODE={report.get('mode')} "
            f"({report.get('program')}, {report.get('workers')} worker process(es)); "
            f"CPU limit: {TargetLimit((report.get('cpu') or {}).get('cgroup_limit_cpus')).describe()}",
            flush=True,
        )
        return f"the target's own (TARGET={self.url}; not started by the lab)"

    def check_database(self) -> str | None:
        """None while the target answers; a target that stopped answering stops the bench (its record kept)."""
        try:
            server_report(self.url)
        except LabError as error:
            if "database" in str(error):
                return str(error)  # that run failed on it; the lab cannot restart another host's database
            raise
        return None

    def app(self, knobs: Knobs, record: StateHook) -> RemoteApp:
        return RemoteApp(self.url, knobs)

    def locust_argv(self, options: LocustOptions, results: Path) -> list[str]:
        return self.local.locust_argv(options, results)

    def locust_env(self, knobs: Knobs) -> dict[str, str]:
        return dict(os.environ)

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None:
        return machine_cpu.tree(locust.pid)

    def postgres_cpu(self) -> float | None:
        return None  # on the target's host, out of the lab's sight

    def interpreter(self, knobs: Knobs) -> dict[str, object]:
        """The server's build as it reports it; its speed cannot be measured from here."""
        try:
            built = server_report(self.url).get("interpreter")
        except LabError as error:
            return {"error": str(error)}
        return {"build": built} if isinstance(built, dict) else {"error": "the target's report names no interpreter"}

    def close(self) -> None:
        """Nothing to stop on the target."""

    @contextmanager
    def serving(self, knobs: Knobs, command: str, *, locust_ui: bool = False, locust_workers: int = 1) -> Iterator[RemoteServing]:
        """`make demo TARGET=...`: the target as it is, checked against the knobs' CPUS; `make up` starts its own."""
        if locust_ui:
            raise LabError("make up starts the lab's own server; a TARGET is measured with make bench, capacity or demo")
        with stack_state.claimed(self.place, [self.name], command, partial(stop_leftovers, self.place)):
            app = RemoteApp(self.url, knobs)
            app.start()
            yield RemoteServing(app.url, app.limit)
