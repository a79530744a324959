"""The native backend: PostgreSQL, the app under its CPU limit and Locust, as local processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from contract.cgroup import CpuUsage
from contract.knobs import Knobs, setting
from contract.serve import resolve, server_plan
from lab.stack import machine_cpu, stack_state
from lab.stack.app_venv import facts as app_facts
from lab.stack.backends.leftovers import stop_leftovers
from lab.stack.backends.seam import LocustOptions, RunFacts
from lab.stack.checkout import ROOT
from lab.stack.cpulimit import CpuLimit, make_limit
from lab.stack.locust_api import TOKEN_ENV, new_token
from lab.stack.machine import interpreter_facts
from lab.stack.place import Place
from lab.stack.procs import check_port_free, reap, signals_deferred, spawn, wait_http_ok
from lab.stack.stack_state import StateHook

BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "locust" / "locustfile.py"


def locustfiles() -> str:
    """Locust's -f: the lab's locustfile, and the team's own (LOCUSTFILE) beside it, whose users then send the traffic."""
    own = setting("LOCUSTFILE")
    return f"{LOCUSTFILE},{Path(own).resolve()}" if own else str(LOCUSTFILE)


def server_bin(env: dict[str, str]) -> Path:
    """Where the servers are: the app's own venv (APP_REQUIREMENTS), else the lab's."""
    return Path(env["APP_PYTHON"]).parent if env.get("APP_PYTHON") else BIN


def reachable(bind: str) -> str:
    """Where this host reaches a server listening on `bind` (every address: through loopback)."""
    return "127.0.0.1" if bind == "0.0.0.0" else bind


class AppServer:
    """The server under test, in MODE, under its CPU limit, listening on `bind` (loopback unless asked)."""

    def __init__(
        self, knobs: Knobs, place: Place, database_url: str, record: StateHook | None = None, *, bind: str = "127.0.0.1"
    ) -> None:
        self.knobs = knobs
        self.bind = bind
        self.record = record
        self.place = place
        self.database_url = database_url
        self.log = place.logs / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.limit: CpuLimit | None = None

    @property
    def url(self) -> str:
        return f"http://{reachable(self.bind)}:{self.place.app_port}"

    def start(self, timeout: float = 60.0) -> None:
        check_port_free(self.place.app_port, f"the {self.knobs.mode} server (APP_PORT)", host=self.bind)
        env = dict(os.environ)
        env.update(DATABASE_URL=self.database_url, DB_POOL_SIZE=setting("DB_POOL_SIZE"))
        plan = server_plan(self.knobs, host=self.bind, port=self.place.app_port, base_env=env, services=ROOT / "services")
        self.limit = make_limit(self.knobs.cpus, self.place.cgroup_name)
        argv = self.limit.wrap(resolve(plan.argv, server_bin(plan.env)))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%F %T')} MODE={self.knobs.mode}: {' '.join(plan.argv)}\n".encode())
        with signals_deferred():
            self.proc = spawn(argv, cwd=plan.cwd, env=plan.env, log=self.log, preexec=self.limit.preexec)
        if self.record is not None:  # before it is ready: a lab killed while it starts must not leave it running
            self.record(app=self.proc.pid)
        wait_http_ok(f"{self.url}/healthz", self.proc, f"the {self.knobs.mode} server", self.log, timeout)

    def facts(self) -> RunFacts:
        return {"app": found} if (found := app_facts()) else {}

    def died(self) -> str | None:
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        return f"its process exited with code {code}" if code >= 0 else f"its process was killed by {signal.Signals(-code).name}"

    def usage(self) -> CpuUsage:
        assert self.limit is not None
        return self.limit.usage(self.proc.pid if self.proc else None)

    def stop(self) -> None:
        reap(self.proc)
        if self.proc is not None and self.record is not None:
            self.record(app=None)
        if self.limit is not None:
            for pid in self.limit.pids():  # anything that left the process group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.limit.remove()
        self.proc = None


class Stack:
    """PostgreSQL, the app and (optionally) the Locust web UI, started in order and stopped in reverse.

    Each process is written to the stack file as soon as it starts (through `record`), so `make down`
    from another shell, or the next lab command, can stop it even if this process died.
    """

    def __init__(
        self, knobs: Knobs, place: Place, record: StateHook, *, locust_ui: bool = False, bind: str = "127.0.0.1"
    ) -> None:
        self.knobs = knobs
        self.place = place
        self.record = record
        self.locust_ui = locust_ui
        self.pg = self.place.postgres()
        self.app = AppServer(knobs, self.place, self.pg.url, record, bind=bind)  # PostgreSQL stays on loopback
        self.locust: subprocess.Popen[bytes] | None = None
        self.locust_token = new_token()  # its Locust takes the Lab's state from this stack's pushes alone

    def start(self) -> None:
        try:
            if self.locust_ui:
                check_port_free(self.place.locust_port, "the Locust web UI (LOCUST_PORT)")
            check_port_free(self.place.app_port, f"the {self.knobs.mode} server (APP_PORT)", host=self.app.bind)
            self.pg.start()
            self.app.start()
            if self.locust_ui:
                self.start_locust_ui()
        except BaseException:
            self.stop()
            raise

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
            locustfiles(),
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
            # the token in its environment alone: not on a command line every user of the machine can read
            self.locust = spawn(argv, cwd=ROOT, env={**os.environ, TOKEN_ENV: self.locust_token}, log=log)
        self.record(locust=self.locust.pid)
        wait_http_ok(f"http://127.0.0.1:{self.place.locust_port}/", self.locust, "the Locust web UI", log, 30)

    def restart(self, knobs: Knobs) -> None:
        """The app under new knobs, for the Lab page: the running one stopped first (never two servers), the
        new one's pid in the stack file as it starts; one that fails to start is stopped too (never an orphan)."""
        self.app.stop()
        self.knobs = knobs
        self.app = AppServer(knobs, self.place, self.pg.url, self.record)
        try:
            self.app.start()
        except BaseException:
            self.app.stop()
            raise

    def stop(self) -> None:
        if self.locust is not None:
            reap(self.locust)
            self.record(locust=None)
        self.locust = None
        self.app.stop()
        self.pg.stop()


class NativeBackend:
    """Runs as local processes: one PostgreSQL for the whole experiment, an app per run."""

    name = "native"
    load_generator_is_child = True

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or Place()
        self.pg = self.place.postgres()

    def open(self, folder: Path | None, cpus: list[float]) -> str:
        # a port another program holds would fail every run: say so once, before anything starts
        check_port_free(self.place.app_port, "the server under test (APP_PORT)")
        self.pg.start()
        return self.pg.version()

    def check_database(self) -> str | None:
        if self.pg.pid() is not None:
            return None
        self.pg.start()
        return f"PostgreSQL had stopped (its log: {self.pg.log}); the lab started it again"

    def app(self, knobs: Knobs, record: StateHook) -> AppServer:
        return AppServer(knobs, self.place, self.pg.url, record)

    def locust_argv(self, options: LocustOptions, results: Path) -> list[str]:
        argv = [str(BIN / "locust"), "-f", locustfiles(), "--headless", "--only-summary"]
        return argv + [str(part) for pair in options.items() for part in pair]

    def locust_env(self, knobs: Knobs) -> dict[str, str]:
        return dict(os.environ)

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None:
        return machine_cpu.tree(locust.pid)

    def interpreter(self, knobs: Knobs) -> dict[str, object]:
        return interpreter_facts([str(BIN / "python"), "-m", "contract.interpreter"])

    def postgres_cpu(self) -> float | None:
        return machine_cpu.tree(self.pg.pid())

    def close(self) -> None:
        self.pg.stop()

    @contextmanager
    def serving(
        self, knobs: Knobs, command: str, *, locust_ui: bool = False, locust_workers: int = 1, bind: str = "127.0.0.1"
    ) -> Iterator[Stack]:
        """PostgreSQL, the app and (for `make up`) one local Locust with its web UI, under the stack file; the app
        listens on `bind` (`make serve` for a lab on another host)."""
        with stack_state.claimed(self.place, [self.name], command, partial(stop_leftovers, self.place)) as record:
            stack = Stack(knobs, self.place, record, locust_ui=locust_ui, bind=bind)
            try:
                stack.start()
                yield stack
            finally:
                stack.stop()
