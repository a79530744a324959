"""The lab's knobs: environment variables with defaults, the same for make, compose and native.

`python3 -m contract.knobs check` validates the knobs in the environment (stdlib only, so the
Makefile can run it before any virtual environment exists) and prints nothing when they are
good; `python3 -m contract.knobs env` prints the resolved values as KEY=VALUE lines.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from contract.modes import MODES, Mode

# What a server does per request; `mix` is a load (Locust sends a share of cpu requests), not a server setting.
REQUEST_WORKLOADS = ("io", "cpu")
WORKLOADS = (*REQUEST_WORKLOADS, "mix")
RUN_TIME_RE = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")


class KnobError(ValueError):
    """A knob has a value it cannot take; the message names the knob and what it accepts."""


KnobValue = str | int | float  # what a knob's text parses to


@dataclass(frozen=True)
class Parser:
    """Reads a knob's text, raising ValueError for a value the knob does not take; `accepts` says,
    in words, what it takes."""

    read: Callable[[str], KnobValue]
    accepts: str

    def __call__(self, text: str) -> KnobValue:
        return self.read(text)


def _number(kind: type[int] | type[float], low: float, high: float) -> Parser:
    def parse(text: str) -> KnobValue:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError
        return value

    return Parser(parse, f"{'an integer' if kind is int else 'a number'} from {low:g} to {high:g}")


def _choice(*choices: str) -> Parser:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError
        return text

    return Parser(parse, "one of " + ", ".join(choices))


class Offload(StrEnum):
    """Where a cpu request's prime count runs: in the handler, or in a process pool of one process
    per core. A record keeps the value ("none", "process"), so records of any version read back."""

    NONE = "none"
    PROCESS = "process"


def _enum(kind: type[StrEnum]) -> Parser:
    return Parser(kind, "one of " + ", ".join(kind))  # an unknown value raises ValueError


def _run_time(text: str) -> str:
    run_time_seconds(text)
    return text


def run_time_seconds(text: str) -> int:
    """RUN_TIME's duration (30s, 2m, 1h30m) in seconds; ValueError for one it does not read."""
    match = RUN_TIME_RE.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError
    return sum(int(part[:-1]) * {"h": 3600, "m": 60, "s": 1}[part[-1]] for part in match.groups() if part)


@dataclass(frozen=True)
class Knob:
    name: str
    default: str
    parse: Parser
    help: str

    @property
    def accepts(self) -> str:
        return self.parse.accepts

    def read(self, text: str) -> KnobValue:
        """The knob's value of `text`, or KnobError naming the knob and what it takes."""
        try:
            return self.parse(text)
        except KnobError:  # it names the part that does not read
            raise
        except ValueError:
            raise KnobError(f"{self.name}={text!r} is not valid: {self.name} takes {self.accepts}") from None


OFFLOADING = tuple(m.name for m in MODES.values() if m.offloads_cpu)  # the modes that take CPU_OFFLOAD=process

# The lab's knobs, in the order `make help` shows them. WORKERS and THREADS default to
# the mode's own values (empty here); a mode without them accepts only 1.
KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob("MODE", "threaded", _choice(*MODES), "how the endpoint is served (see `make modes`)"),
        Knob("WORKLOAD", "io", _choice(*WORKLOADS), "io: wait in PostgreSQL; cpu: count primes; mix: Locust sends both"),
        Knob("CPUS", "1", _number(float, 0, 64), "CPU limit of the server, as Docker's --cpus (0: none)"),
        Knob("WORKERS", "", _number(int, 1, 64), "server processes (modes that have them)"),
        Knob("THREADS", "", _number(int, 1, 256), "threads per process (modes that have them)"),
        Knob("IO_SECONDS", "5", _number(float, 0, 30), "seconds each io request waits in the database"),
        Knob("PRIMES_LIMIT", "1000000", _number(int, 2, 50_000_000), "cpu workload: count primes below this"),
        Knob("USERS", "10", _number(int, 1, 5000), "concurrent Locust users"),
        Knob("SPAWN_RATE", "10", _number(float, 0.1, 1000), "Locust users started per second"),
        Knob("RUN_TIME", "1m", Parser(_run_time, "a duration such as 30s, 2m or 1h30m"), "length of a headless Locust run"),
        Knob("DB_POOL", "1", _choice("1", "0"), "1: a connection pool per process; 0: a new connection per request (Django)"),
        Knob("CPU_OFFLOAD", Offload.NONE, _enum(Offload), f"{', '.join(OFFLOADING)}: count primes in a process pool"),
        Knob("MIX_CPU_SHARE", "0.1", _number(float, 0, 1), "WORKLOAD=mix: the share of requests that count primes"),
    )
}

# Variables the lab reads beside the knobs: not part of an experiment's design, but settings of
# the machine it runs on. compose.yaml reads them too, but PG_PORT (compose's PostgreSQL is
# reached by name) and BUILD (the lab's own choice of `up --build`); it also reads what the lab
# derives: SERVICE from MODE, and the images and OFFLINE from IMAGES.
SETTINGS = {
    "APP_PORT": "8000",
    "LOCUST_PORT": "8089",
    "LAB_CONTROL_PORT": "8090",  # `make up`'s control server, on loopback: the Lab page's form and "Keep a run"
    # `make up`'s UI (docs/ui-trust.md): the names besides loopback it answers to, comma-separated, for a UI opened
    # to them on purpose; and 1 lets a swarm started from the UI target any host, not only the lab's own server.
    "LAB_UI_HOSTS": "",
    "LAB_UI_ANY_HOST": "0",
    "PG_PORT": "55432",
    "DB_POOL_SIZE": "100",
    "DB_PASSWORD": "lab-dev-password",
    "DJANGO_SECRET_KEY": "insecure-development-key-set-DJANGO_SECRET_KEY",
    "IMAGES": "official",
    "BUILD": "1",
    "SLO_P95_MS": "500",
    "ARRIVALS": "poisson",
    "MEMORY": "0",  # deciding how to serve an app (make bench APP=...): MB its workers may take together; 0: no budget
    # Past one machine (lab/stack/backends/remote.py): what `make serve` listens on, the server a bench measures
    # (TARGET), and Locust workers on other hosts joining the bench's Locust at LOCUST_BIND:LOCUST_MASTER_PORT.
    "BIND": "127.0.0.1",
    "TARGET": "",
    "LOCUST_REMOTE_WORKERS": "0",
    "LOCUST_BIND": "127.0.0.1",
    "LOCUST_MASTER_PORT": "5557",
    # Your own app (contract/app_entry.py): the callable to serve, the folder to import it from, a command run
    # once before measuring (migrations, seed data), and the paths Locust sends, with optional weights.
    "APP": "",
    "APP_DIR": "",
    "APP_SETUP": "",
    "PATHS": "",
    # Its requirements (a venv of its own with the lab's servers, lab/stack/app_venv.py), its own environment (a file of
    # KEY=VALUE lines for its server and APP_SETUP), and the team's own locustfile, sent instead of PATHS.
    "APP_REQUIREMENTS": "",
    "APP_ENV": "",
    "LOCUSTFILE": "",
}
REMOTE_SETTINGS = ("BIND", "TARGET", "LOCUST_REMOTE_WORKERS", "LOCUST_BIND", "LOCUST_MASTER_PORT")  # none of compose's
# compose reads APP and PATHS; the rest reach the app image through what the lab derives from them (lab/stack/app_image.py)
APP_SETTINGS = ("APP_DIR", "APP_SETUP", "APP_REQUIREMENTS", "APP_ENV", "LOCUSTFILE")
NOT_IN_COMPOSE = {"PG_PORT", "BUILD", "SLO_P95_MS", "ARRIVALS", "MEMORY", "LAB_CONTROL_PORT", *REMOTE_SETTINGS, *APP_SETTINGS}
DERIVED = {"SERVICE", "PYTHON_IMAGE", "POSTGRES_IMAGE", "LOCUST_IMAGE", "OFFLINE", "APP_CONTEXT", "APP_ENV_TEXT", "APP_INTERFACE"}


def setting(name: str) -> str:
    """A knob's or setting's value from the environment, else its one default."""
    default = KNOBS[name].default if name in KNOBS else SETTINGS[name]
    return os.environ.get(name) or default


# The numeric settings and the values they take; validated with the knobs.
SETTING_RANGES = {"APP_PORT": (1, 65535), "LOCUST_PORT": (1, 65535), "PG_PORT": (1, 65535), "DB_POOL_SIZE": (1, 250),
                  "SLO_P95_MS": (1, 600_000), "LAB_CONTROL_PORT": (1, 65535),
                  "LOCUST_REMOTE_WORKERS": (0, 256), "LOCUST_MASTER_PORT": (1, 65535), "MEMORY": (0, 10_000_000)}  # fmt: skip


# The settings that take one of a few words: compose's image source, and whether it builds images.
SETTING_CHOICES = {
    "IMAGES": ("official", "local"),  # the registry's images, or stand-ins built here from Debian
    "BUILD": ("1", "0"),  # 0: run the app images already built or pulled, without a build
    "ARRIVALS": ("poisson", "constant"),  # `make capacity`: open arrivals as a Poisson process, or evenly spaced
    "LAB_UI_ANY_HOST": ("0", "1"),  # 1: a swarm from `make up`'s UI may target any host
}


def choice_setting(name: str) -> str:
    value = setting(name)
    if value not in SETTING_CHOICES[name]:
        raise KnobError(f"{name}={value!r} is not valid: {name} takes one of {', '.join(SETTING_CHOICES[name])}")
    return value


def int_setting(name: str) -> int:
    low, high = SETTING_RANGES[name]
    text = setting(name)
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise KnobError(f"{name}={text!r} is not valid: {name} takes an integer from {low} to {high}")
    return value


def paths(text: str) -> list[tuple[str, int]]:
    """PATHS="/a /b?x=1:3": each path with its weight (1 unless `:N` ends it); KnobError naming a bad one."""
    found: list[tuple[str, int]] = []
    for part in text.split():
        path, _, weight = part.rpartition(":") if re.search(r":\d+$", part) else (part, "", "1")
        if not path.startswith("/") or not weight.isdigit() or int(weight) < 1:
            raise KnobError(
                f"PATHS has {part!r}: PATHS takes paths that start with /, each with an optional :weight "
                '(an integer >= 1), such as "/a:3 /b?x=1"'
            )
        found.append((path, int(weight)))
    return found


def app_paths() -> list[tuple[str, int]]:
    """What Locust sends to an app of the user's: PATHS, or / alone when APP is set without it; [] without APP
    (the currency endpoint) or with LOCUSTFILE (the team's own users send what they send)."""
    found = paths(setting("PATHS"))
    return found or ([("/", 1)] if setting("APP") and not setting("LOCUSTFILE") else [])


UI_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})  # the names `make up`'s UI always answers to
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def host_name(header: str | None) -> str | None:
    """The name a Host header gives (`name`, `name:port`, `[v6]:port`), lowercased, an IPv6 address without its
    brackets; None for anything else."""
    try:
        parts = urlsplit(f"//{header or ''}")
        parts.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        return None
    name = parts.hostname or ""
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name if HOST_NAME_RE.match(name) else None
    return name


def ui_hosts() -> frozenset[str]:
    """The names `make up`'s UI answers to (Locust's web UI and the control server, docs/ui-trust.md): loopback's,
    and those LAB_UI_HOSTS opens it to on purpose; KnobError names one that is not a host name or address."""
    names = set(UI_LOOPBACK)
    for part in filter(None, re.split(r"[,\s]+", setting("LAB_UI_HOSTS"))):
        bare = part.lower().removeprefix("[").removesuffix("]")
        if host_name(f"[{bare}]" if ":" in bare else bare) != bare:  # a port, a scheme, a path: not a name alone
            raise KnobError(f"LAB_UI_HOSTS has {part!r}: LAB_UI_HOSTS takes host names or addresses, separated by "
                            "commas, without a scheme or port (such as lab.example,192.0.2.7)")  # fmt: skip
        names.add(bare)
    return frozenset(names)


ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The lab's own names: an app's environment cannot move a knob or what the lab tells its server behind its back.
LAB_OWNED = {"APP_INTERFACE", "APP_PYTHON", "APP_ENV_TEXT", "HOST", "SERVICE"}


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


def parse(env: Mapping[str, str]) -> Knobs:
    """Validate every knob at once, so one run of the command shows every mistake."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    for knob in KNOBS.values():
        text = str(env.get(knob.name, "") or knob.default).strip()
        if not text:
            values[knob.name] = None
            continue
        try:
            values[knob.name] = knob.read(text)
        except KnobError as error:
            errors.append(str(error))
    if errors:
        raise KnobError("\n".join(errors))

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
    knobs = parse(os.environ)
    for name in SETTING_RANGES:
        int_setting(name)
    for name in SETTING_CHOICES:
        choice_setting(name)
    paths(setting("PATHS"))
    ui_hosts()
    check_app_files()
    return knobs


# ---------------------------------------------------------------- comparing two results folders

# `make compare` (lab/compare) reads these, and `make bench` and `make capacity` judge THRESHOLDS too. They
# say how to judge runs, not how to run them: no record keeps them. Stdlib only, like the rest of this file,
# so the Makefile stops a bad value before anything starts.

# The differences between two configurations that refuse a comparison unless COMPARE_ACROSS names them.
COMPARE_ASPECTS = ("mode", "workers", "threads", "cpus", "workload", "arrivals", "target", "db_pool", "cpu_offload",
                   "interpreter", "app", "backend")  # fmt: skip

# What THRESHOLDS can limit, each with the units it takes and what one of them is in the figure's own unit
# (ms, req/s, a share of requests, ms of CPU per request, MB per worker); no unit: the figure's own.
_LATENCY = {"": 1.0, "ms": 1.0, "s": 1000.0}
_RATE = {"": 1.0, "/s": 1.0, "rps": 1.0}
THRESHOLD_UNITS: dict[str, dict[str, float]] = {
    "rps": _RATE,
    "p50": _LATENCY,
    "p95": _LATENCY,
    "p99": _LATENCY,
    "failures": {"": 1.0, "%": 0.01},
    "cpu": {"": 1.0, "ms": 1.0, "us": 0.001, "s": 1000.0},
    "capacity": _RATE,
    "memory": {"": 1.0, "mb": 1.0, "gb": 1024.0},
}
# k6 writes a percentile p(95): p95 is the same
THRESHOLD_RE = re.compile(r"^(?P<figure>[a-z]+\d*|p\(\d+\))(?P<op><=|>=|<|>)(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[a-z/%]*)$")
THRESHOLDS_ACCEPT = ('limits such as "p95<300ms rps>50 failures<1%": each a figure (' + ", ".join(THRESHOLD_UNITS)
                     + "), <, <=, > or >=, and a number with its unit")  # fmt: skip


def thresholds(text: str) -> list[tuple[str, str, float]]:
    """THRESHOLDS="p95<300ms rps>50 failures<1%": each limit as (figure, operator, number in the figure's own
    unit); KnobError naming the first term that does not read."""
    found = []
    for term in text.lower().split():
        match = THRESHOLD_RE.match(term)
        figure = match["figure"].replace("(", "").replace(")", "") if match else ""
        units = THRESHOLD_UNITS.get(figure, {})
        if match is None or match["unit"] not in units:
            takes = f"{figure} takes {', '.join(repr(u) for u in units if u)} or no unit" if units else THRESHOLDS_ACCEPT
            raise KnobError(f"THRESHOLDS has {term!r}: {takes}")
        found.append((figure, match["op"], float(match["number"]) * units[match["unit"]]))
    return found


def _thresholds(text: str) -> str:
    thresholds(text)
    return text


def _min_change(text: str) -> float:
    """MIN_CHANGE=5% (or 5): the share it names, from 0.1% to 100%."""
    value = float(text.removesuffix("%")) / 100
    if not 0.001 <= value <= 1:
        raise ValueError
    return value


def _aspects(text: str) -> str:
    names = text.replace(",", " ").split()
    if not names or any(name not in COMPARE_ASPECTS for name in names):
        raise ValueError
    return " ".join(names)


def _folder(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text


FOLDER = "a results folder, such as results/latest"
COMPARE_KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob("BASE", "", Parser(_folder, FOLDER), "make compare: the folder compared against"),
        Knob("NEW", "", Parser(_folder, FOLDER), "make compare: the folder judged against BASE"),
        Knob("MIN_CHANGE", "5%", Parser(_min_change, "a percentage from 0.1% to 100%, such as 5%"),
             "make compare: the smallest change that matters (the failure share: a tenth of it, in points)"),
        Knob("COMPARE_ACROSS", "", Parser(_aspects, f"one or more of {', '.join(COMPARE_ASPECTS)}, separated by commas"),
             "make compare: the difference between the configurations that is the question"),
        Knob("GATE", "0", _choice("0", "1"), "make compare: 1 exits 1 when a figure is worse, 2 when it cannot compare"),
        Knob("GATE_UNSURE", "pass", _choice("pass", "fail"), "fail: exit 3 where a figure or threshold is unsure"),
        Knob("THRESHOLDS", "", Parser(_thresholds, THRESHOLDS_ACCEPT),
             'compare, bench, capacity: absolute limits judged on intervals, "p95<300ms rps>50 failures<1%"'),
    )
}  # fmt: skip


def compare_settings(env: Mapping[str, str]) -> dict[str, KnobValue]:
    """The comparison's knobs, each read (empty where unset and without a default), every bad one named at once."""
    errors: list[str] = []
    values: dict[str, KnobValue] = {}
    for knob in COMPARE_KNOBS.values():
        text = str(env.get(knob.name, "") or knob.default).strip()
        if not text:
            values[knob.name] = ""
            continue
        try:
            values[knob.name] = knob.read(text)
        except KnobError as error:
            errors.append(str(error))
    if errors:
        raise KnobError("\n".join(errors))
    return values


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "compare-names":
        print(" ".join(COMPARE_KNOBS))
        return 0
    if command == "check-compare":  # the comparison's knobs alone: they are not part of a run
        try:
            compare_settings(os.environ)
        except KnobError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    try:
        knobs = from_environ()
    except KnobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "env":
        for key, value in knobs.as_env().items():
            print(f"{key}={value}")
    elif command == "names":
        print(" ".join(KNOBS))
    elif command == "service":
        print(knobs.server.service)
    elif command != "check":
        print("usage: python3 -m contract.knobs [check|env|names|service|compare-names|check-compare]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
