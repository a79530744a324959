"""The endpoint's contract, shared by every service: parameters, workloads, SQL and headers.

Stdlib only (with contract.knobs): it is imported by Django, FastAPI and the Locust user alike.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from contract import cgroup, interpreter, pools
from contract.knobs import REQUEST_WORKLOADS, Offload, setting
from contract.modes import MODES
from contract.primes import count_primes as count_primes  # the services count primes through the endpoint

CODE_PATTERN = r"^[A-Za-z]{3}$"
CODE_RE = re.compile(CODE_PATTERN)
PROC = Path("/proc")
SEED_SQL = Path(__file__).resolve().parent.parent / "db" / "init.sql"
_SEED_ROW = re.compile(r"\('([a-z]{3})',\s*'([a-z]{3})',\s*([0-9.]+)\)")

# pg_sleep sits in the FROM list so that the wait and the read are one real query.
# The rate, and how long PostgreSQL itself took over the statement (ms, read as the row is made, after any
# pg_sleep): the query's part of a request as the database saw it, apart from the driver's round trip and,
# in an event loop, the other requests the loop ran before this one resumed.
_PG_MS = "1000 * extract(epoch FROM clock_timestamp() - statement_timestamp())"
RATE_SQL = f"SELECT rate, {_PG_MS} FROM rates WHERE from_code = %s AND to_code = %s"
RATE_WAIT_SQL = f"SELECT rate, {_PG_MS} FROM rates, pg_sleep(%s) WHERE from_code = %s AND to_code = %s"


# The per-request timeline Locust writes and the lab reads: where (pid, thread) and when (the server's
# own start and end, from the headers below) each request was served, its status, the client's
# latency, and its kind.
# The handler's phases (Server-Timing), and those that wait on something else: their CPU is not the handler's own.
TIMED_PHASES = ("pool", "db", "pg", "cpu", "own")
WAITING_PHASES = ("pool", "db")
TIMELINE_COLUMNS = ("pid", "thread", "start_us", "end_us", "status", "client_ms", "workload",
                    # where the time went (lab/analysis/latency_parts.py): the client's own stamps, then the handler's phases
                    "intended_us", "sent_us", "received_us", *(f"{phase}_ms" for phase in TIMED_PHASES))  # fmt: skip


TIMELINE_HEADERS = ("X-Worker-Pid", "X-Thread-Id", "X-Request-Start", "X-Request-End")  # where and when it was served


def timeline_row(
    headers: Mapping[str, str] | None,
    status: int,
    client_ms: float,
    name: str,
    *,
    intended: float | None,
    sent: float | None,
    received: float,
) -> tuple[str, ...] | None:
    """One answered request as a timeline row (TIMELINE_COLUMNS), from its response's headers and the client's
    stamps (seconds since the epoch); None without the server's where-and-when headers. The Locust user and
    the Lab tab's plugin both keep their rows in this one form."""
    values = tuple((headers or {}).get(header) or "" for header in TIMELINE_HEADERS)
    if not all(values):
        return None
    phases = server_timing((headers or {}).get("Server-Timing") or "")
    return (
        *values, str(status), f"{client_ms:.3f}", WORKLOAD_OF.get(name, ""), _us(intended), _us(sent), _us(received),
        *(f"{phases[phase]:.3f}" if phase in phases else "" for phase in TIMED_PHASES),
    )  # fmt: skip


def _us(seconds: float | None) -> str:
    return str(round(seconds * 1e6)) if seconds is not None else ""


def server_timing(header: str) -> dict[str, float]:
    """The phases of a Server-Timing header, in ms (`db;dur=101.2, total;dur=103.0`)."""
    phases = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name and duration:
            try:
                phases[name] = float(duration)
            except ValueError:
                continue
    return phases


def request_name(workload: str) -> str:
    """How Locust names a request of each kind, so that statistics keep io and cpu apart."""
    return f"/currency/convert [{workload}]"


WORKLOAD_OF = {request_name(kind): kind for kind in REQUEST_WORKLOADS}  # a request's name back to its workload


# Seconds to wait for a pooled connection (or a new one): an exhausted pool or a database that
# is down answers 503 within this, never hangs.
POOL_TIMEOUT = 3.0
NOT_FOUND_PAGE = "not found: the endpoint is /currency/convert?from=usd&to=gbp"


# The endpoint (and /healthz) only reads: GET, and HEAD, which is GET without the body. Every other
# method, OPTIONS included (the lab serves no browser, so no CORS preflight), is answered 405 with
# this Allow header (RFC 9110, 15.5.6) and a JSON error in these words, the same in every mode.
ALLOWED_METHODS = ("GET", "HEAD")
ALLOW = ", ".join(ALLOWED_METHODS)


def method_not_allowed(method: str) -> str:
    return f"method {method} is not allowed here; allowed: {ALLOW}"


class BadRequest(ValueError):
    """A parameter is missing or malformed (HTTP 400)."""


class MissingSetting(LookupError):
    """A setting the lab always passes to a server is absent: the server was started by hand."""


# Where the lab's database is, for the message of a server started by hand without it.
DATABASE_URL_HELP = (
    "DATABASE_URL is not set. It is the PostgreSQL URL the server reads its rates from; the lab sets it "
    "for every server it starts (make up, make bench, python -m lab). To start a server or run manage.py "
    "by hand, set it yourself: the lab's native PostgreSQL (started by make up) is "
    "DATABASE_URL=postgresql://lab:<DB_PASSWORD>@127.0.0.1:<PG_PORT, 55432 by default>/lab."
)


@dataclass(frozen=True)
class Settings:
    """What a service reads from its environment at start."""

    workload: str
    io_seconds: float
    primes_limit: int
    database_url: str
    db_pool: bool
    db_pool_size: int
    db_pool_open: int  # connections each process opens before it is ready (contract.pools)
    cpu_offload: Offload

    @classmethod
    def from_environ(cls) -> Settings:
        """The settings, or MissingSetting saying what to set: a KeyError would name the variable only."""
        if not os.environ.get("DATABASE_URL"):
            raise MissingSetting(DATABASE_URL_HELP)
        mode = MODES[setting("MODE")]
        workers = int(setting("WORKERS") or mode.default_workers or 1)
        threads = int(setting("THREADS") or mode.default_threads or 1)
        pool_size = int(setting("DB_POOL_SIZE"))
        return cls(
            workload=setting("WORKLOAD"),
            io_seconds=float(setting("IO_SECONDS")),
            primes_limit=int(setting("PRIMES_LIMIT")),
            database_url=os.environ["DATABASE_URL"],
            db_pool=setting("DB_POOL") != "0",
            db_pool_size=pool_size,
            db_pool_open=pools.opened_at_start(mode.name, workers, threads, pool_size),
            cpu_offload=Offload(setting("CPU_OFFLOAD")),
        )


@dataclass(frozen=True)
class Conversion:
    source: str
    target: str
    workload: str


def parse_query(params: Mapping[str, str], default_workload: str) -> Conversion:
    """Read from/to/workload, or raise BadRequest naming the parameter."""
    codes = []
    for name in ("from", "to"):
        value = params.get(name)
        if value is None or value == "":
            raise BadRequest(f"missing parameter '{name}': a three-letter currency code such as usd")
        if not CODE_RE.match(value):
            raise BadRequest(f"parameter '{name}' must be a three-letter currency code, such as usd")
        codes.append(value.lower())
    # a server under WORKLOAD=mix serves io by default: Locust chooses each request's kind
    workload = params.get("workload") or (default_workload if default_workload in REQUEST_WORKLOADS else "io")
    if workload not in REQUEST_WORKLOADS:
        raise BadRequest(f"parameter 'workload' must be one of {', '.join(REQUEST_WORKLOADS)}")
    return Conversion(codes[0], codes[1], workload)


def query_for(conversion: Conversion, settings: Settings) -> tuple[str, tuple[float | str, ...]]:
    if conversion.workload == "io":
        return RATE_WAIT_SQL, (settings.io_seconds, conversion.source, conversion.target)
    return RATE_SQL, (conversion.source, conversion.target)


def answer(conversion: Conversion, rate: Decimal | float) -> dict[str, object]:
    """The body of a 200: the rate as PostgreSQL's numeric column gives it (a Decimal), as a JSON number."""
    return {"from": conversion.source, "to": conversion.target, "rate": float(rate), "workload": conversion.workload}


def not_found(conversion: Conversion) -> str:
    return f"no rate from {conversion.source} to {conversion.target}"


class Timer:
    """Where and when a request was served, for the response headers the timeline is drawn from, with its
    handler's time in phases that the lab splits each request's latency into (Server-Timing):

    - pool: waiting for a database connection (connecting, where there is no pool);
    - db: the query, its wait in PostgreSQL included, as the handler waited for it;
    - pg: the same statement as PostgreSQL ran it (from the answer's second column: `queried`);
    - cpu: the prime count, as long as it took (its CPU, and any wait for the GIL or a process pool);
    - own: the handler's own CPU time outside pool and db. A handler that holds its thread from start to
      end (`one_thread`, a sync view) owns its thread's CPU time over it; an async handler's thread runs
      other requests between its awaits, so only the laps it marks as its own count (the prime count,
      by its thread's CPU in the loop, or by its wall time when a process pool counts it).

    Phases are laps: `mark()` starts one, `lap(name)` ends it and starts the next."""

    def __init__(self, *, one_thread: bool = True) -> None:
        self.start_us = time.time_ns() // 1000
        self.phases: dict[str, float] = {}
        self.one_thread = one_thread
        self._cpu_start = time.thread_time()
        self._waiting_cpu = 0.0  # seconds of the thread's CPU inside the waiting phases
        self._own_laps: float | None = None  # seconds of laps an async handler marked as its own, if any
        self.mark()

    def mark(self) -> None:
        self._lap_wall, self._lap_cpu = time.perf_counter(), time.thread_time()

    def lap(self, name: str, *, own: Literal["cpu", "wall"] | None = None) -> None:
        wall, cpu = time.perf_counter() - self._lap_wall, time.thread_time() - self._lap_cpu
        self.phases[name] = self.phases.get(name, 0.0) + wall * 1000
        if name in WAITING_PHASES:
            self._waiting_cpu += cpu
        if own is not None:
            self._own_laps = (self._own_laps or 0.0) + (cpu if own == "cpu" else wall)
        self.mark()

    def queried(self, row: Sequence[object] | None) -> None:
        """The statement's own time in PostgreSQL, from the row it answered (none for a pair it does not know)."""
        if row is not None and len(row) > 1 and isinstance(row[1], int | float | Decimal):
            self.phases["pg"] = float(row[1])

    def own_cpu_ms(self) -> float | None:
        """None where it is not known: an async handler that marked no lap as its own (its few steps between
        awaits are then part of its time waiting inside the handler)."""
        if self.one_thread:
            return max(0.0, time.thread_time() - self._cpu_start - self._waiting_cpu) * 1000
        return None if self._own_laps is None else self._own_laps * 1000

    def headers(self) -> dict[str, str]:
        own = self.own_cpu_ms()
        end_us = time.time_ns() // 1000
        timing = [f"{name};dur={ms:.3f}" for name, ms in self.phases.items()]
        timing += [f"own;dur={own:.3f}"] if own is not None else []
        timing += [f"total;dur={(end_us - self.start_us) / 1000:.3f}"]
        return {
            "X-Worker-Pid": str(os.getpid()),
            "X-Thread-Id": str(threading.get_native_id()),
            "X-Request-Start": str(self.start_us),
            "X-Request-End": str(end_us),
            "Server-Timing": ", ".join(timing),
        }


def seeded_rates(path: Path = SEED_SQL) -> dict[tuple[str, str], float]:
    """The pairs the database is seeded with, read from the seed SQL itself."""
    return {(a, b): float(rate) for a, b, rate in _SEED_ROW.findall(path.read_text())}


# What a server reports of itself at /healthz. Each value is read from the running server (loaded
# modules, its own process tree and argv, the pool objects the app holds), not echoed from the knobs,
# so that the lab can check that what runs is what a run's record says.
SERVER_PROGRAMS = ("gunicorn", "granian", "uvicorn")  # the first one loaded is the one serving


def _program() -> tuple[str, str]:
    for program in SERVER_PROGRAMS:
        if program in sys.modules:
            return program, version(program)
    if "django.core.management.commands.runserver" in sys.modules:
        return "runserver", version("django")
    return "unknown", ""


def _proc(pid: int, name: str) -> str:
    try:
        return (PROC / str(pid) / name).read_text()
    except OSError:
        return ""


def _argv(pid: int) -> list[str]:
    return _proc(pid, "cmdline").split("\0")[:-1]


def _children(pid: int) -> list[int]:
    """Child processes; multiprocessing's resource tracker is a helper, not a worker."""
    return [child for child in cgroup.children(pid) if "resource_tracker" not in " ".join(_argv(child))]


def cpu_report(master: int) -> dict[str, object]:
    """The server's own account of its CPU: the seconds its whole process tree has used, and its
    cgroup's as the server itself sees it (its CPU time, its limit, how often it was throttled), so
    that the lab can compute CPU per request and utilisation from any host."""
    group = cgroup.of("self")
    usage = group.usage() if group else None
    return {
        "process_tree_seconds": round(cgroup.tree_cpu_seconds(master), 3),
        "cgroup_seconds": None if usage is None else round(usage.cpu_seconds, 4),
        "cgroup_limit_cpus": group.limit() if group else None,
        "nr_throttled": None if usage is None else usage.nr_throttled,
        "throttled_seconds": None if usage is None or usage.throttled_seconds is None else round(usage.throttled_seconds, 4),
    }


def _option(argv: list[str], name: str) -> int | None:
    for i, part in enumerate(argv[:-1]):
        if part == name and argv[i + 1].isdigit():
            return int(argv[i + 1])
    return None


def server_report(
    settings: Settings,
    *,
    pool: pools.Pool | None,
    threads: int | None = None,
    offload: Offload = Offload.NONE,
) -> dict[str, object]:
    """The server's effective configuration. `pool` is the pool the app really holds (None: a connection
    per request); `threads` is the app's own thread pool, where it has one;
    `offload`, where the app counts primes (its processes are counted here)."""
    program, program_version = _program()
    me, parent = os.getpid(), os.getppid()
    # A worker of a multi-process server is a child of its master, which runs the same program.
    master = parent if any(Path(part).name == program for part in _argv(parent)[:2]) else me
    workers = _children(master) if master != me else [me]
    if threads is None and program == "gunicorn":
        threads = int(os.environ.get("LAB_GUNICORN_THREADS", "0")) or None  # set by the worker itself (gunicorn.conf.py)
    elif threads is None and program == "granian":
        threads = _option(_argv(master), "--blocking-threads")
    elif threads is None and program == "runserver" and "--nothreading" in sys.argv:
        threads = 1
    return {
        "mode": os.environ.get("MODE", ""),
        "program": program,
        "version": program_version,
        "python": platform.python_version(),
        "interpreter": interpreter.build(),
        "worker_class": os.environ.get("LAB_GUNICORN_WORKER_CLASS") if program == "gunicorn" else None,
        "workload": settings.workload,
        "io_seconds": settings.io_seconds,
        "primes_limit": settings.primes_limit,
        "workers": len(workers),
        "threads": threads,
        "db_pool": "1" if pool is not None else "0",
        "db_pool_size": pool.max_size if pool is not None else None,
        "db_pool_open": pool.min_size if pool is not None else None,  # opened at start (contract.pools)
        "cpu_offload": offload,
        "offload_processes": len(_children(me)) if offload is Offload.PROCESS else 0,
        "pid": me,
        "master_pid": master,
        "worker_pids": workers,
        "cpu": cpu_report(master),
    }
