"""The native backend: PostgreSQL, the app under its CPU limit and Locust, as local processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from contract.knobs import Knobs, int_setting, setting
from contract.serve import resolve, server_plan
from lab import ROOT, machine_cpu
from lab.cpulimit import CpuLimit, CpuUsage, leftover_pids, make_limit
from lab.postgres import Postgres
from lab.procs import check_port_free, reap, signals_deferred, spawn, stop_group, stop_on_signals, wait_http_ok

BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "locust" / "locustfile.py"


@dataclass(frozen=True)
class Place:
    """Where one lab instance keeps its state and listens; tests use their own."""

    state: Path = field(default_factory=lambda: Path(os.environ.get("LAB_STATE_DIR", ROOT / ".lab")))
    app_port: int = field(default_factory=lambda: int_setting("APP_PORT"))
    pg_port: int = field(default_factory=lambda: int_setting("PG_PORT"))
    locust_port: int = field(default_factory=lambda: int_setting("LOCUST_PORT"))

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def stack_file(self) -> Path:
        return self.state / "stack.json"

    @property
    def cgroup_name(self) -> str:
        digest = hashlib.sha1(str(self.state.resolve()).encode()).hexdigest()[:8]
        return f"concurrency-lab-{digest}"

    def postgres(self) -> Postgres:
        return Postgres(self.state / "postgres", self.pg_port)


class AppServer:
    """The server under test, in MODE, under its CPU limit."""

    def __init__(self, knobs: Knobs, place: Place, database_url: str) -> None:
        self.knobs = knobs
        self.place = place
        self.database_url = database_url
        self.log = place.logs / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.limit: CpuLimit | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.place.app_port}"

    def start(self, timeout: float = 60.0) -> None:
        check_port_free(self.place.app_port, f"the {self.knobs.mode} server (APP_PORT)")
        env = dict(os.environ)
        env.update(DATABASE_URL=self.database_url, DB_POOL_SIZE=setting("DB_POOL_SIZE"))
        plan = server_plan(self.knobs, host="127.0.0.1", port=self.place.app_port, base_env=env, services=ROOT / "services")
        self.limit = make_limit(self.knobs.cpus, self.place.cgroup_name)
        argv = self.limit.wrap(resolve(plan.argv, BIN))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%F %T')} MODE={self.knobs.mode}: {' '.join(plan.argv)}\n".encode())
        with signals_deferred():
            self.proc = spawn(argv, cwd=plan.cwd, env=plan.env, log=self.log, preexec=self.limit.preexec)
        wait_http_ok(f"{self.url}/healthz", self.proc, f"the {self.knobs.mode} server", self.log, timeout)

    def usage(self) -> CpuUsage:
        assert self.limit is not None
        return self.limit.usage(self.proc.pid if self.proc else None)

    def stop(self) -> None:
        reap(self.proc)
        if self.limit is not None:
            for pid in self.limit.pids():  # anything that left the process group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.limit.remove()
        self.proc = None


class Stack:
    """PostgreSQL, the app and (optionally) the Locust web UI, started in order and stopped in reverse.

    What runs is written to the stack file as soon as it starts, so `make down` from another
    shell can stop it even if this process died.
    """

    def __init__(self, knobs: Knobs, place: Place | None = None, *, locust_ui: bool = False) -> None:
        self.knobs = knobs
        self.place = place or Place()
        self.locust_ui = locust_ui
        self.pg = self.place.postgres()
        self.app = AppServer(knobs, self.place, self.pg.url)
        self.locust: subprocess.Popen[bytes] | None = None
        self.ready = False  # everything asked for is up and answering

    def _record(self) -> None:
        state = {
            "supervisor": os.getpid(),
            "backends": ["native"],
            "app": self.app.proc.pid if self.app.proc else None,
            "locust": self.locust.pid if self.locust else None,
            "pg_port": self.place.pg_port,
            "cgroup": self.place.cgroup_name,
            "mode": self.knobs.mode,
            "cpu_limit": self.app.limit.describe() if self.app.limit else None,
        }
        self.place.state.mkdir(parents=True, exist_ok=True)
        self.place.stack_file.write_text(json.dumps(state))

    def __enter__(self) -> Stack:
        stop_on_signals()
        if self.place.stack_file.exists():
            from lab.backends import down

            down(self.place)  # what runs already, or what a killed run left behind
        try:
            self._record()
            if self.locust_ui:
                check_port_free(self.place.locust_port, "the Locust web UI (LOCUST_PORT)")
            check_port_free(self.place.app_port, f"the {self.knobs.mode} server (APP_PORT)")
            self.pg.start()
            self._record()
            self.app.start()
            self._record()
            if self.locust_ui:
                self.start_locust_ui()
                self._record()
            self.ready = True
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return self.app.url

    @property
    def limit(self) -> CpuLimit | None:
        return self.app.limit

    @property
    def locust_url(self) -> str:
        return f"http://127.0.0.1:{self.place.locust_port}"

    @property
    def logs(self) -> str:
        return str(self.place.logs)

    def start_locust_ui(self) -> None:
        log = self.place.logs / "locust.log"
        argv = [
            str(BIN / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--host",
            self.app.url,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(self.place.locust_port),
            "--users",
            str(self.knobs.users),
            "--spawn-rate",
            f"{self.knobs.spawn_rate:g}",
        ]
        with signals_deferred():
            self.locust = spawn(argv, cwd=ROOT, env=os.environ, log=log)
        wait_http_ok(f"http://127.0.0.1:{self.place.locust_port}/", self.locust, "the Locust web UI", log, 30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        reap(self.locust)
        self.locust = None
        self.app.stop()
        self.pg.stop()
        self.place.stack_file.unlink(missing_ok=True)


def stop_processes(place: Place, state: dict[str, object]) -> None:
    """What a native stack file names, whatever is left in the server's cgroup, and PostgreSQL."""
    for key in ("locust", "app"):
        if state.get(key):
            stop_group(int(state[key]))  # type: ignore[arg-type]
    for pid in leftover_pids(place.cgroup_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    place.postgres().stop()


class NativeBackend:
    """Runs as local processes: one PostgreSQL for the whole experiment, an app per run."""

    name = "native"
    load_generator_is_child = True

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or Place()
        self.pg = self.place.postgres()

    def open(self, folder: Path | None, cpus: list[float]) -> dict[str, object]:
        self.pg.start()
        return {"postgres": self.pg.version()}

    def app(self, knobs: Knobs) -> AppServer:
        return AppServer(knobs, self.place, self.pg.url)

    def app_pid(self, app: AppServer) -> int | None:
        return app.proc.pid if app.proc else None

    def locust_argv(self, options: dict[str, object], results: Path) -> list[str]:
        argv = [str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
        return argv + [str(part) for pair in options.items() for part in pair]

    def locust_env(self, knobs: Knobs) -> dict[str, str]:
        return dict(os.environ)

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None:
        return machine_cpu.tree(locust.pid)

    def postgres_cpu(self) -> float | None:
        return machine_cpu.tree(self.pg.pid())

    def run_facts(self, app: AppServer) -> dict[str, object]:
        return {}

    def close(self) -> None:
        self.pg.stop()

    def serving(self, knobs: Knobs, *, locust_ui: bool = False, locust_workers: int = 1) -> Stack:
        """PostgreSQL, the app and (for `make up`) one local Locust with its web UI; a context manager."""
        return Stack(knobs, self.place, locust_ui=locust_ui)

    def down(self, state: dict[str, object]) -> None:
        stop_processes(self.place, state)
