"""The lab's knobs: environment variables with defaults, the same for make, compose and native.

Each is declared once, in contract/declared.py; this module reads them. `python3 -m contract.knobs check`
validates the knobs in the environment (stdlib only, so the Makefile can run it before any virtual
environment exists) and prints nothing when they are good; `python3 -m contract.knobs env` prints the
resolved values as KEY=VALUE lines; `names machine` the names of a group (the Makefile exports them).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from contract.declared import DECLARED, OFFLOADING, REQUEST_WORKLOADS, WORKLOADS, Knob, Offload, Who, declared
from contract.hosts import UI_LOOPBACK, host_name, ui_host_names
from contract.modes import MODES, Mode
from contract.parsers import KnobError, KnobValue, paths

__all__ = ["REQUEST_WORKLOADS", "UI_LOOPBACK", "WORKLOADS", "KnobValue", "host_name", "paths"]  # read here by others too

# The lists the lab reads, each derived from the one table (contract/declared.py).
KNOBS = declared(Who.RUN)  # in the order `make help` shows them
SETTINGS = {name: knob.default for name, knob in declared(Who.MACHINE).items()}
COMPARE_KNOBS = declared(Who.COMPARE)
NOT_IN_COMPOSE = {name for name in SETTINGS if not DECLARED[name].compose}
DERIVED = {name for name, knob in declared(Who.LAB).items() if knob.compose}  # compose reads them; the lab derives them
# an app's environment cannot move a knob, or what the lab tells its server, behind its back
LAB_OWNED = {name for name, knob in declared(Who.LAB).items() if knob.server}


def setting(name: str) -> str:
    """A knob's or setting's value from the environment, else its one default."""
    return os.environ.get(name) or DECLARED[name].default


def choice_setting(name: str) -> str:
    return str(DECLARED[name].read(setting(name)))


def int_setting(name: str) -> int:
    return int(DECLARED[name].read(setting(name)))


def app_paths() -> list[tuple[str, int]]:
    """What Locust sends to an app of the user's: PATHS, or / alone when APP is set without it; [] without APP
    (the currency endpoint) or with LOCUSTFILE (the team's own users send what they send)."""
    found = paths(setting("PATHS"))
    return found or ([("/", 1)] if setting("APP") and not setting("LOCUSTFILE") else [])


def ui_hosts() -> frozenset[str]:
    """The names `make up`'s UI answers to (Locust's web UI and the control server, docs/ui-trust.md): loopback's,
    and those LAB_UI_HOSTS opens it to on purpose; KnobError names one that is not a host name or address."""
    return ui_host_names(setting("LAB_UI_HOSTS"))


ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_file(path: str) -> dict[str, str]:
    """APP_ENV: the file's KEY=VALUE lines, or KnobError naming file:line of the first bad one."""
    try:
        return env_lines(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError) as error:
        raise KnobError(f"APP_ENV={path!r} cannot be read: {getattr(error, 'strerror', None) or error}") from None


def env_lines(text: str, path: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments aside, a value in matching quotes unquoted); `path` names
    where they came from in a refusal. A container gets them as APP_ENV_TEXT, never as a file on the host."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, equals, value = text.removeprefix("export ").partition("=")
        key = key.strip()
        if not equals or not ENV_KEY_RE.match(key):
            raise KnobError(f"APP_ENV {path}:{number}: {text[:60]!r} is not KEY=VALUE (a KEY of letters, digits and _)")
        if key in KNOBS or key in SETTINGS or key in LAB_OWNED:
            raise KnobError(f"APP_ENV {path}:{number}: {key} is the lab's own setting: set it as a knob, not in APP_ENV")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key] = value
    return found


def check_app_files() -> None:
    """The files APP_REQUIREMENTS, APP_ENV and LOCUSTFILE name exist (APP_ENV's lines are read too), and
    LOCUSTFILE replaces PATHS rather than joining them."""
    for name in ("APP_REQUIREMENTS", "APP_ENV", "LOCUSTFILE"):
        if (path := setting(name)) and not os.path.isfile(path):
            raise KnobError(f"{name}={path!r} is not a file")
    if path := setting("APP_ENV"):
        env_file(path)
    if setting("LOCUSTFILE") and setting("PATHS"):
        raise KnobError("LOCUSTFILE and PATHS were both given: the team's locustfile sends its own requests "
                        "instead of PATHS; give one")  # fmt: skip


@dataclass(frozen=True)
class Knobs:
    mode: str
    workload: str
    cpus: float
    workers: int
    threads: int
    io_seconds: float
    primes_limit: int
    users: int
    spawn_rate: float
    run_time: str
    db_pool: str
    cpu_offload: Offload
    mix_cpu_share: float

    @property
    def server(self) -> Mode:
        return MODES[self.mode]

    def capacity(self, pool_size: int) -> tuple[int, int]:
        """The model's C (requests in flight) and processes running Python, for these knobs."""
        if self.db_pool == "0":
            pool_size = 10**6  # a connection per request: no pool caps the requests in flight
        c = self.server.in_flight(self.workers, self.threads, pool_size)
        if setting("APP") and os.environ.get("APP_INTERFACE") == "asgi":  # an app's event loop in each worker, under
            c = self.workers * pool_size  # Gunicorn too (Uvicorn's worker), not one request per sync worker
        p = self.server.processes(self.workers, self.threads, pool_size)
        if self.cpu_offload is Offload.PROCESS:  # prime counts run in a pool of one process per core
            p = max(p, os.cpu_count() or 1)
        return c, p

    def as_env(self) -> dict[str, str]:
        """The knobs as environment variables, the form every process of the lab reads."""
        return {name.upper(): _format(value) for name, value in asdict(self).items()}


def _format(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def applies(name: str, mode: Mode, workload: str) -> bool:
    """Does knob `name` change anything for this mode and workload? Where it does not, only its
    default is accepted (an experiment's matrix leaves it out)."""
    if name == "WORKERS":
        return mode.default_workers is not None
    if name == "THREADS":
        return mode.default_threads is not None
    if name == "DB_POOL":
        return mode.django_db
    if name == "CPU_OFFLOAD":
        return mode.offloads_cpu and workload != "io"  # it only moves the prime count
    if name == "MIX_CPU_SHARE":
        return workload == "mix"
    return True


def read_each(knobs: Mapping[str, Knob], env: Mapping[str, str]) -> dict[str, KnobValue | None]:
    """Each knob's value in `env`, else its default (None: neither); every bad one named at once, so one run of
    the command shows every mistake."""
    errors: list[str] = []
    values: dict[str, KnobValue | None] = {}
    for knob in knobs.values():
        text = str(env.get(knob.name, "") or knob.default).strip()
        try:
            values[knob.name] = knob.read(text) if text else None
        except KnobError as error:
            errors.append(str(error))
    if errors:
        raise KnobError("\n".join(errors))
    return values


def parse(env: Mapping[str, str]) -> Knobs:
    """The knobs of a run, each read, and checked against the mode."""
    values: dict[str, Any] = read_each(KNOBS, env)
    errors: list[str] = []
    mode = MODES[values["MODE"]]
    for name, default in (("WORKERS", mode.default_workers), ("THREADS", mode.default_threads)):
        if default is None:
            if values[name] not in (None, 1):
                errors.append(f"{name}={values[name]} does not apply to MODE={mode.name}: {name} takes only 1 there")
            values[name] = 1
        elif values[name] is None:
            values[name] = default
    if values["DB_POOL"] == "0" and not mode.django_db:
        django = ", ".join(m.name for m in MODES.values() if m.django_db)
        errors.append(f"DB_POOL=0 does not apply to MODE={mode.name}, which always uses a psycopg pool: only to {django}")
    if values["CPU_OFFLOAD"] is not Offload.NONE and not mode.offloads_cpu:
        errors.append(f"CPU_OFFLOAD={values['CPU_OFFLOAD']} does not apply to MODE={mode.name}: only to {', '.join(OFFLOADING)}")
    if errors:
        raise KnobError("\n".join(errors))
    return Knobs(**{name.lower(): value for name, value in values.items()})


def from_environ() -> Knobs:
    """The knobs of the environment; every setting of the machine checked too, and the files they name."""
    knobs = parse(os.environ)
    read_each(declared(Who.MACHINE), os.environ)
    check_app_files()
    return knobs


# ---------------------------------------------------------------- comparing two results folders


def compare_settings(env: Mapping[str, str]) -> dict[str, KnobValue]:
    """The comparison's knobs, each read (empty where unset and without a default), every bad one named at once."""
    return {name: "" if value is None else value for name, value in read_each(COMPARE_KNOBS, env).items()}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "names":  # of the groups named (run, machine, compare, ...), else the knobs of a run
        groups = [Who(name) for name in argv[2:]] or [Who.RUN]
        print(" ".join(name for name, knob in DECLARED.items() if knob.who in groups))
        return 0
    try:
        knobs = from_environ()
        if command == "check":  # and what make passes the lab's commands beside the knobs
            read_each(declared(Who.COMMAND), os.environ)
            compare_settings(os.environ)
    except KnobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "env":
        for key, value in knobs.as_env().items():
            print(f"{key}={value}")
    elif command != "check":
        print(f"usage: python3 -m contract.knobs [check|env|names [{'|'.join(Who)} ...]]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
