"""Every variable the lab reads, each declared once, as Gunicorn declares a `Setting`: its name, how its text is read
(range or choices), its default, what it does, and who may set it. What the rest of the lab lists is derived from
this table in code: the knobs of a run and the machine's settings (contract/knobs.py), what compose reads, the
Makefile's exports (`python3 -m contract.knobs names`), the experiments' keys, the flags of `python -m lab` and
`make knobs`; `python -m lab knobs --write` writes the tables of the README and docs/knobs.md and compose.yaml's
x-knobs block (contract/knob_tables.py). A new knob is one new row, then `--write` (and, for a knob of a run, its
typed field of Knobs, which the records keep).

Stdlib only, as all of contract/: the servers' images install it, and `make` reads it before any venv exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from contract.comparing import COMPARE_ASPECTS, THRESHOLDS_ACCEPT, aspects, folder, min_change, thresholds
from contract.hosts import UI_HOSTS_ACCEPT, ui_host_names
from contract.modes import MODES
from contract.parsers import SWITCH, TEXT, KnobError, KnobValue, Parser, checked, choice, enum, number, paths, run_time_seconds

# What a server does per request; `mix` is a load (Locust sends a share of cpu requests), not a server setting.
REQUEST_WORKLOADS = ("io", "cpu")
WORKLOADS = (*REQUEST_WORKLOADS, "mix")


class Offload(StrEnum):
    """Where a cpu request's prime count runs: in the handler, or in a process pool of one process
    per core. A record keeps the value ("none", "process"), so records of any version read back."""

    NONE = "none"
    PROCESS = "process"


OFFLOADING = tuple(m.name for m in MODES.values() if m.offloads_cpu)  # the modes that take CPU_OFFLOAD=process


class Who(StrEnum):
    """Who may set a variable, and so where the lab reads it from."""

    RUN = "run"  # a knob of a run: the command line or the environment, and an experiment by its key; records keep it
    MACHINE = "machine"  # a setting of the machine the lab runs on: the command line or the environment
    COMPARE = "compare"  # how runs are judged (make compare; THRESHOLDS on bench and capacity too): no record keeps it
    COMMAND = "command"  # an option of one command (BACKEND, RESUME, ...): a make variable, or a flag of `python -m lab`
    LAB = "lab"  # the lab's own: it derives it or tells its servers; nobody else sets it, an app's APP_ENV neither


@dataclass(frozen=True)
class Knob:
    name: str
    default: str  # "": none (WORKERS and THREADS: the mode's own)
    parse: Parser
    help: str
    who: Who = Who.RUN
    compose: bool = False  # compose.yaml reads it, ${NAME:-default}
    server: bool = False  # the app's server reads it; the lab passes it, so a server never falls back on a default of its own
    key: str = ""  # the experiment's key for it: a knob's own name in lower case unless set
    flag: str = ""  # COMMAND: its flag on `python -m lab`, --name-in-lower-case unless set

    @property
    def accepts(self) -> str:
        return self.parse.accepts

    @property
    def experiment_key(self) -> str | None:
        """The key an experiment sets it by, or None where an experiment cannot."""
        return self.key or (self.name.lower() if self.who is Who.RUN else None)

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.lower().replace("_", "-")

    def read(self, text: str) -> KnobValue:
        """The knob's value of `text`, or KnobError naming the knob and what it takes."""
        try:
            return self.parse(text)
        except KnobError:  # it names the part that does not read
            raise
        except ValueError:
            raise KnobError(f"{self.name}={text!r} is not valid: {self.name} takes {self.accepts}") from None


PORT = number(int, 1, 65535)
_run = partial(Knob, who=Who.RUN, compose=True)
_machine = partial(Knob, who=Who.MACHINE)
_compare = partial(Knob, who=Who.COMPARE)
_option = partial(Knob, who=Who.COMMAND)
_lab = partial(Knob, who=Who.LAB, default="", parse=TEXT)
FOLDER = "a results folder, such as results/latest"
BACKENDS = ("native", "compose", "remote")  # what an experiment's `backends` key may list too


def minutes(text: str) -> float:
    """MINUTES: the decision's time budget, above 0 and up to 600."""
    value = float(text)
    if not 0 < value <= 600:
        raise ValueError
    return value


# In the order `make knobs` and the docs show them.
DECLARED: dict[str, Knob] = {
    k.name: k
    for k in (
        # ---- the knobs of a run
        _run("MODE", "threaded", choice(*MODES), "how the endpoint is served (see `make modes`)", server=True, key="modes"),
        _run("WORKLOAD", "io", choice(*WORKLOADS), "`io`: wait in PostgreSQL; `cpu`: count primes; `mix`: Locust sends both",
             server=True, key="workloads"),
        _run("CPUS", "1", number(float, 0, 64), "the server's CPU limit, fractional as Docker's `--cpus`; `0` for none",
             server=True),
        _run("WORKERS", "", number(int, 1, 64), "server processes, for modes that have them (others take only 1)", server=True),
        _run("THREADS", "", number(int, 1, 256), "threads per process, for modes that have them (others take only 1)",
             server=True),
        _run("IO_SECONDS", "5", number(float, 0, 30), "the database wait of an io request (the post's value)", server=True),
        _run("PRIMES_LIMIT", "1000000", number(int, 2, 50_000_000), "a cpu request counts the primes below it (the post's "
             "value)", server=True),
        _run("USERS", "10", number(int, 1, 5000), "concurrent Locust users"),
        _run("SPAWN_RATE", "10", number(float, 0.1, 1000), "Locust users started per second"),
        _run("RUN_TIME", "1m", checked(run_time_seconds, "a duration such as 30s, 2m or 1h30m"),
             "the length of a headless Locust run (an experiment's runs measure what their warm-up leaves of it)"),
        _run("DB_POOL", "1", choice("1", "0"), "`1`: a connection pool per process (Django 5.2's own pool, psycopg's "
             "pools); `0`: Django opens a connection per request", server=True),
        _run("CPU_OFFLOAD", Offload.NONE, enum(Offload), "`process`: count primes in a process pool, one process per core "
             f"in each worker; the modes of FastAPI's async app take it ({', '.join(f'`{m}`' for m in OFFLOADING)})",
             server=True),
        _run("MIX_CPU_SHARE", "0.1", number(float, 0, 1), "with `WORKLOAD=mix`, the share of requests that count primes"),
        # ---- settings of the machine the lab runs on, not of an experiment's design
        _machine("APP_PORT", "8000", PORT, "the app's port on 127.0.0.1", compose=True),
        _machine("LOCUST_PORT", "8089", PORT, "Locust's web UI's port on 127.0.0.1", compose=True),
        _machine("LAB_CONTROL_PORT", "8090", PORT, "`make up`'s control server, on loopback: the Lab page's form and "
                 '"Keep a run"'),
        _machine("LAB_UI_HOSTS", "", checked(ui_host_names, UI_HOSTS_ACCEPT), "`make up`'s UI: the names besides loopback it "
                 "answers to, for a UI opened to them on purpose", compose=True),
        _machine("LAB_UI_ANY_HOST", "0", choice("0", "1"), "`1`: a swarm started from `make up`'s UI may target any host, "
                 "not only the lab's own server", compose=True),
        _machine("LAB_UI_PASSWORD", "", TEXT, "`make up`'s UI: its control server listens on every interface, every change "
                 "carrying this password"),
        _machine("PG_PORT", "55432", PORT, "the native PostgreSQL's port on 127.0.0.1 (compose's is reached by name)"),
        _machine("DB_POOL_SIZE", "100", number(int, 1, 250), "each server process's connection pool (PostgreSQL takes 300)",
                 compose=True, server=True),
        _machine("DB_PASSWORD", "lab-dev-password", TEXT, "PostgreSQL's password", compose=True),
        _machine("DJANGO_SECRET_KEY", "insecure-development-key-set-DJANGO_SECRET_KEY", TEXT, "Django's secret key",
                 compose=True, server=True),
        _machine("IMAGES", "official", choice("official", "local"), "compose: the registry's images, or stand-ins built "
                 "here from Debian (`make images`)", compose=True),
        _machine("BUILD", "1", choice("1", "0"), "compose: `1` builds the app image before starting; `0` runs the images "
                 "already built or pulled"),
        _machine("SLO_P95_MS", "500", number(int, 1, 600_000), "`make capacity`: the p95 target, in ms", key="slo_p95_ms"),
        _machine("ARRIVALS", "poisson", choice("poisson", "constant"), "open arrivals as a Poisson process, or evenly "
                 "spaced", key="arrivals"),
        _machine("MEMORY", "0", number(int, 0, 10_000_000), "`make bench APP=...`: MB its workers may take together; `0`: "
                 "no budget"),
        _machine("BIND", "127.0.0.1", TEXT, "what `make serve` listens on (`0.0.0.0` beyond loopback)"),
        _machine("TARGET", "", TEXT, "`http://host:port`: a server the lab did not start (`make serve` on its host), "
                 "measured from here"),
        _machine("LOCUST_REMOTE_WORKERS", "0", number(int, 0, 256), "Locust workers on other hosts (`make worker`) that "
                 "join each run's Locust"),
        _machine("LOCUST_BIND", "127.0.0.1", TEXT, "where the bench's Locust waits for workers of other hosts"),
        _machine("LOCUST_MASTER_PORT", "5557", PORT, "the port the bench's Locust waits for workers on"),
        _machine("APP", "", TEXT, "your own app: the WSGI or ASGI callable to serve (`package.module:app`)", compose=True),
        _machine("APP_DIR", "", TEXT, "the folder to import APP from"),
        _machine("APP_SETUP", "", TEXT, "a command run once before measuring APP (migrations, seed data)"),
        _machine("PATHS", "", checked(paths, 'paths that start with /, each with an optional :weight, such as "/a:3 /b?x=1"'),
                 "what Locust sends to APP, each path with an optional weight", compose=True),
        _machine("APP_REQUIREMENTS", "", TEXT, "APP's requirements file: a venv of its own with the lab's pinned servers"),
        _machine("APP_ENV", "", TEXT, "a file of `KEY=VALUE` lines: APP's own environment, for its server and APP_SETUP"),
        _machine("LOCUSTFILE", "", TEXT, "the team's own locustfile, run by the lab's Locust instead of PATHS"),
        # ---- how two results folders are compared
        _compare("BASE", "", Parser(folder, FOLDER), "make compare: the folder compared against"),
        _compare("NEW", "", Parser(folder, FOLDER), "make compare: the folder judged against BASE"),
        _compare("MIN_CHANGE", "5%", Parser(min_change, "a percentage from 0.1% to 100%, such as 5%"),
                 "make compare: the smallest change that matters (the failure share: a tenth of it, in points)"),
        _compare("COMPARE_ACROSS", "", Parser(aspects, f"one or more of {', '.join(COMPARE_ASPECTS)}, separated by commas"),
                 "make compare: the difference between the configurations that is the question"),
        _compare("GATE", "0", choice("0", "1"), "make compare: 1 exits 1 when a figure is worse, 2 when it cannot compare"),
        _compare("GATE_UNSURE", "pass", choice("pass", "fail"), "fail: exit 3 where a figure or threshold is unsure"),
        _compare("THRESHOLDS", "", checked(thresholds, THRESHOLDS_ACCEPT),
                 'compare, bench, capacity: absolute limits judged on intervals, `"p95<300ms rps>50 failures<1%"`'),
        # ---- an option of one command: a make variable, or the flag of `python -m lab <command>`
        _option("BACKEND", "auto", choice("auto", *BACKENDS), "where the lab runs: `auto` is compose where a Docker engine "
                "answers, native otherwise; TARGET takes remote"),
        _option("EXPERIMENT", "quick", TEXT, "a name in experiments/ or a path to a .toml file (make capacity: many "
                "configurations instead of the knobs)"),
        _option("REPEATS", "", number(int, 1, 20), "make bench: run each configuration N times, interleaved (none: the "
                "experiment's `repeats`)"),
        _option("RESUME", "0", SWITCH, "make bench: continue the newest results folder of this experiment"),
        _option("CALIBRATE", "0", SWITCH, "make bench: after each run, measure the same endpoint with wrk"),
        _option("DETACH", "0", SWITCH, "make bench, capacity: run in the background, its progress in a log"),
        _option("MINUTES", "20", Parser(minutes, "the decision's time budget in minutes, above 0 and up to 600"),
                "make bench APP=...: the time budget of the whole decision, stated before it starts"),
        _option("LOCUST_WORKERS", "1", number(int, 1, 1000), "Locust worker processes: compose's containers under the "
                "master (make up), make worker's on this host, make k8s's replicas"),
        _option("N", "2", number(int, 1, 10_000), "make demo: the concurrent requests, each timed", flag="--requests"),
        _option("MASTER", "", TEXT, "make worker: the host whose bench runs with LOCUST_REMOTE_WORKERS=N"),
        _option("RESULTS", "results/latest", TEXT, "make report: the results folder to draw"),
        _option("K8S_OUT", "k8s/out", TEXT, "make k8s: the folder to write", flag="--out"),
        _option("K8S_SECRET", "", TEXT, "make k8s: an existing Secret with DB_PASSWORD and DJANGO_SECRET_KEY",
                flag="--secret"),
        _option("K8S_REGISTRY", "", TEXT, "make k8s: where the images built here are pushed, e.g. "
                "registry.example.com/lab", flag="--registry"),
        # ---- the lab's own: what it derives (compose reads these too) or tells its servers
        _lab("SERVICE", help="the compose service that serves MODE, from the mode table", compose=True, server=True),
        _lab("PYTHON_IMAGE", help="the servers' base image (IMAGES)", compose=True),
        _lab("POSTGRES_IMAGE", help="PostgreSQL's image (IMAGES)", compose=True),
        _lab("LOCUST_IMAGE", help="Locust's image (IMAGES)", compose=True),
        _lab("OFFLINE", help="`1`: the images build from the stand-ins, with no registry (IMAGES=local)", compose=True),
        _lab("APP_CONTEXT", help="the build context of APP's image", compose=True),
        _lab("APP_ENV_TEXT", help="APP_ENV's lines, for a container (never a file on the host)", compose=True, server=True),
        _lab("APP_INTERFACE", help="`wsgi` or `asgi`: what APP is, found once by the lab", compose=True, server=True),
        _lab("APP_PYTHON", help="the interpreter of APP's own venv", server=True),
        _lab("HOST", help="the address a server listens on", server=True),
    )
}  # fmt: skip


def declared(who: Who) -> dict[str, Knob]:
    return {name: knob for name, knob in DECLARED.items() if knob.who is who}
