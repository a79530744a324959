"""Reading the running stack each second, on either backend: the CPU of the server, PostgreSQL and each
load-generating process, and PostgreSQL's active connections. Everything is read from the kernel or
PostgreSQL on the host, never by asking the server (a busy server would answer late, and each request
asked of it would be one more in the load)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from typing import Protocol

import psycopg

from contract.cgroup import CpuUsage
from lab.stack import machine_cpu
from lab.stack.backends import compose
from lab.stack.backends.compose import ComposeStack
from lab.stack.backends.native import Stack
from lab.stack.procs import LabError

# Client connections running a query now; the asking one is left out.
ACTIVE_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()"
)
EXEC_EVERY = 2.0  # seconds between `docker exec psql` (compose): each costs a process start


class Probe(Protocol):
    def server(self) -> CpuUsage:
        """The server's CPU time and throttling, from its cgroup (or its processes, without a limit)."""

    def postgres_cpu(self) -> float | None: ...

    def load_generator(self) -> dict[str, float]:
        """CPU seconds of each load-generating process (its whole tree), by name."""

    def active_connections(self) -> int | None: ...

    def close(self) -> None: ...


class NativeProbe:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.conn: psycopg.Connection[tuple[int]] | None = None

    def server(self) -> CpuUsage:
        return self.stack.app.usage()

    def postgres_cpu(self) -> float | None:
        return machine_cpu.tree(self.stack.pg.pid())

    def load_generator(self) -> dict[str, float]:
        locust = self.stack.locust
        return {"locust": machine_cpu.tree(locust.pid)} if locust is not None else {}

    def active_connections(self) -> int | None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.stack.pg.url, autocommit=True, connect_timeout=2)
            row = self.conn.execute(ACTIVE_SQL).fetchone()
            return int(row[0]) if row else None
        except psycopg.Error:
            self.close()  # a PostgreSQL that restarted: connect again next time
            return None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None


class ComposeProbe:
    """The containers' cgroups as the host sees them; PostgreSQL, not published on the host, through
    `docker exec` every few seconds."""

    def __init__(self, stack: ComposeStack) -> None:
        self.stack = stack
        self.env = compose.compose_env(stack.app.knobs)
        self.pids: dict[str, int] = {}
        self.pg_container = ""
        self.active: int | None = None
        self.asked = 0.0

    def _find(self) -> None:
        """The containers of Locust and PostgreSQL, by name, and their init processes."""
        self.pids = {}
        with contextlib.suppress(LabError):
            listing = compose.run(["ps", "--format", "{{.Name}}\t{{.ID}}", "locust-master", "locust-worker"], self.env)
            for line in listing.splitlines():
                name, _, container = line.partition("\t")
                pid = compose.container_pid(container.strip())
                if pid:
                    self.pids[name.strip()] = pid
            self.pg_container = compose.run(["ps", "--quiet", "postgres"], self.env).strip()

    def server(self) -> CpuUsage:
        return self.stack.app.usage()

    def postgres_cpu(self) -> float | None:
        return compose.cpu_seconds(self.pg_container) if self.pg_container else None

    def load_generator(self) -> dict[str, float]:
        if not self.pids:
            self._find()
        used: dict[str, float] = {}
        for name, pid in self.pids.items():
            usage = compose.cgroup_usage(pid)
            if usage is None:  # a container that was replaced: look again next time
                self.pids = {}
                return used
            used[name] = usage.cpu_seconds
        return used

    def active_connections(self) -> int | None:
        if time.monotonic() - self.asked < EXEC_EVERY:
            return self.active
        self.asked = time.monotonic()
        if not self.pg_container:
            self._find()
        try:
            result = subprocess.run(["docker", "exec", self.pg_container, "psql", "-U", "lab", "-d", "lab", "-Atc", ACTIVE_SQL],
                                    capture_output=True, text=True, timeout=5)  # fmt: skip
            self.active = int(result.stdout.strip()) if result.returncode == 0 else None
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.active = None
        return self.active

    def close(self) -> None:
        pass
