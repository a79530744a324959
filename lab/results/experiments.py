"""Experiments as data: experiments/<name>.toml, expanded into one configuration per run.

A file holds defaults at the top level and one or more [[matrix]] tables; each matrix is the
product of its lists (modes x workloads x cpus x users x workers x threads). WORKERS and
THREADS only multiply the modes that have them.

A run's value for a key comes from the first of: the experiment's own (its [[matrix]] table, then
the file's top level); the command line or the environment (PRIMES_LIMIT=100000, ...); DEFAULTS.
Where the experiment overrides a value given on the command line, one line on stderr says so.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.declared import DECLARED
from contract.knobs import KNOBS, KnobError, Knobs, Offload, applies, parse, setting
from contract.modes import MODES
from contract.parsers import run_time_seconds
from contract.serve import app_skip
from lab.stack.backend_names import BACKENDS
from lab.stack.checkout import ROOT

EXPERIMENTS = ROOT / "experiments"
# The variables an experiment sets by a key of its own (the knobs, by their names in lower case but for the plurals
# modes and workloads; ARRIVALS and SLO_P95_MS), each by the key it stands for: what the command line or the
# environment may give it too. RUN_TIME is the whole Locust run: the measured run_time is what the warm-up leaves.
GIVEN_KEYS = {knob.experiment_key: name for name, knob in DECLARED.items() if knob.experiment_key}
RUN_KEYS = ("warmup", "run_time", "locust_processes", "backends", "arrival_rate", "arrivals")  # how and where a run is measured
LIST_KEYS = ("modes", "workloads", "cpus", "users", "workers", "threads", "db_pool", "cpu_offload", "mix_cpu_share",
             "backends")  # fmt: skip
OWN_KEYS = ("description", "matrix", "slo_p95_ms", "repeats", "budget_minutes")  # the experiment's, not a run's
SCALAR_KEYS = ("io_seconds", "primes_limit", "spawn_rate", *(k for k in RUN_KEYS if k != "backends"))
DEFAULTS: dict[str, Any] = {
    "workloads": ["io", "cpu"],
    "cpus": [1],
    "users": [10],
    "workers": [None],
    "threads": [None],
    "db_pool": [None],
    "cpu_offload": [None],
    "mix_cpu_share": [None],
    "io_seconds": 0.1,
    "primes_limit": 20_000,
    "spawn_rate": 100,
    "warmup": 2.0,
    "run_time": 10.0,
    "locust_processes": 1,
    "backends": [None],  # None: the backend the bench was given; a list runs each configuration on each
    "arrival_rate": 0.0,  # > 0: open arrivals at that rate instead of a closed loop of users
    "arrivals": "poisson",
}


OPEN_USERS_MAX = 1000


class ExperimentError(ValueError):
    """An experiment file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class RunNames:
    id: str  # file names and resume: mode-workload-cpus1-u10-w2-t1
    label: str  # what the report shows: gunicorn 2×1


def run_names(knobs: Knobs) -> RunNames:
    """A run's two names, both from its knobs: every knob that sets it apart from another run
    of the same mode appears in both."""
    server = knobs.server
    workload = f"mix{knobs.mix_cpu_share:g}" if knobs.workload == "mix" else knobs.workload
    parts = [knobs.mode, workload, f"cpus{knobs.cpus:g}", f"u{knobs.users}"]
    label = knobs.mode
    if server.default_workers is not None:
        parts.append(f"w{knobs.workers}")
    if server.default_threads is not None:
        parts.append(f"t{knobs.threads}")
    if server.default_workers is not None and server.default_threads is not None:
        label += f" {knobs.workers}×{knobs.threads}"
    elif server.default_workers is not None:
        label += f" ×{knobs.workers}"
    elif server.default_threads is not None:
        label += f" {knobs.threads} threads"
    if knobs.db_pool == "0":
        parts.append("nopool")
        label += " (no pool)"
    if knobs.cpu_offload is not Offload.NONE:
        parts.append(f"offload-{knobs.cpu_offload}")
        label += f" +{knobs.cpu_offload} offload"
    return RunNames("-".join(parts), label)


@dataclass(frozen=True)
class RunConfig:
    """One run: the knobs the server and Locust get, and how long Locust measures."""

    knobs: Knobs
    warmup: float
    run_time: float  # measured seconds, after the warm-up
    locust_processes: int = 1
    backend: str | None = None  # set where an experiment compares backends: the run's own
    arrival_rate: float = 0.0  # open arrivals per second whatever the replies; 0: a closed loop of users
    arrivals: str = "poisson"  # open arrivals: poisson or constant
    repeat: int = 0  # which repeat of its configuration (1, 2, ...); 0: an experiment without repeats

    if not TYPE_CHECKING:  # config.mode, config.users, ...: the knobs themselves, by name; typed code reads config.knobs

        def __getattr__(self, name: str) -> object:
            return getattr(self.knobs, name)

    @property
    def names(self) -> RunNames:
        names = run_names(self.knobs)
        if self.backend is not None:
            names = RunNames(f"{names.id}-{self.backend}", f"{names.label} [{self.backend}]")
        if self.arrival_rate:
            names = RunNames(f"{names.id}-r{self.arrival_rate:g}", names.label)
        if self.repeat:
            names = RunNames(f"{names.id}-rep{self.repeat}", names.label)
        return names

    @property
    def group(self) -> str:
        """The configuration a repeat belongs to: its id without the repeat."""
        return replace(self, repeat=0).id

    @property
    def open_users(self) -> int:
        """Users enough to keep arrivals on time while replies take up to two seconds (the drop limit)."""
        return min(OPEN_USERS_MAX, max(self.knobs.users, math.ceil(self.arrival_rate * 2) + 10))

    @property
    def id(self) -> str:
        return self.names.id

    def as_dict(self) -> dict[str, Any]:
        """The record's `config`: every knob, and the run's own keys (run_time in seconds)."""
        knobs = {k: v for k, v in asdict(self.knobs).items() if k != "run_time"}
        return {**asdict(self.names), **knobs, "warmup": self.warmup, "run_time": self.run_time,
                "locust_processes": self.locust_processes, "backend": self.backend, "arrival_rate": self.arrival_rate,
                "arrivals": self.arrivals, "repeat": self.repeat, "group": self.group}  # fmt: skip


def knobs_of(config: dict[str, Any]) -> Knobs:
    """A record's `config` back to the knobs it ran with (records of older versions lack some)."""
    named = (name for name in KNOBS if name != "RUN_TIME")  # a record keeps the measured seconds instead
    return parse({name: str(config[name.lower()]) for name in named if config.get(name.lower()) is not None})


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    runs: list[RunConfig]
    source: dict[str, Any]
    budget_s: float | None = None  # `budget_minutes`: the time a capacity experiment promises to fit in
    given: dict[str, str] = field(default_factory=dict)  # what the command line or environment gave (GIVEN_KEYS' names)
    overridden: list[str] = field(default_factory=list)  # a line for each given value the experiment's own overrides

    @property
    def given_args(self) -> str:
        """What was given, as typed on a command line again (" PRIMES_LIMIT=100000"): RESUME=1 runs what ran."""
        return "".join(f" {name}={shlex.quote(text)}" for name, text in self.given.items())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def given_values(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of GIVEN_KEYS that `env` sets (an empty one, as make exports an unset variable, gives nothing);
    KnobError names a knob's value that does not read."""
    given = {name: text for name in GIVEN_KEYS.values() if (text := env.get(name, "").strip())}
    for name in given.keys() & KNOBS.keys():
        KNOBS[name].read(given[name])
    return given


def expand(name: str, data: dict[str, Any], repeats: int | None = None, given: Mapping[str, str] | None = None) -> Experiment:
    """The experiment's runs; with repeats (REPEATS, or its `repeats` key), each configuration N times,
    interleaved (every configuration once, then again), so that a machine drifting over the
    experiment moves every configuration alike. `given`: what the command line gave (given_values),
    taken where the experiment has no value of its own."""
    matrices = data.get("matrix")
    if not matrices:
        raise ExperimentError(f"experiment {name}: needs at least one [[matrix]] table")
    count = repeats if repeats is not None else data.get("repeats", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 20:
        raise ExperimentError(f"experiment {name}: repeats={count!r} is not valid: repeats takes an integer from 1 to 20")
    unknown = set(data) - {*OWN_KEYS, *LIST_KEYS, *SCALAR_KEYS}
    if unknown:
        raise ExperimentError(f"experiment {name}: unknown keys {sorted(unknown)}")
    budget = data.get("budget_minutes")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0):
        raise ExperimentError(f"experiment {name}: budget_minutes={budget!r} is not valid: it takes a number of minutes above 0")
    given = dict(given or {})
    by_key = {key: given[env] for key, env in GIVEN_KEYS.items() if env in given and key not in OWN_KEYS}
    runs: dict[str, RunConfig] = {}
    for i, matrix in enumerate(matrices, 1):
        unknown = set(matrix) - {*LIST_KEYS, *SCALAR_KEYS}
        if unknown:
            raise ExperimentError(f"experiment {name}, matrix {i}: unknown keys {sorted(unknown)}")
        own = {**{k: v for k, v in data.items() if k not in OWN_KEYS}, **matrix}
        if "modes" not in own and "modes" not in by_key:
            raise ExperimentError(f"experiment {name}, matrix {i}: 'modes' is required (or MODE on the command line)")
        try:
            for config in _runs_of(own, by_key):
                runs.setdefault(config.id, config)  # a knob that does not apply leaves one run, not several
        except (KnobError, TypeError, ValueError) as error:
            raise ExperimentError(f"experiment {name}, matrix {i}: {error}") from None
    configs = list(runs.values())
    if count > 1:
        configs = [replace(config, repeat=r) for r in range(1, count + 1) for config in configs]
    return Experiment(name, str(data.get("description", "")), configs, data, budget * 60.0 if budget else None, given,
                      overridden(name, data, given))  # fmt: skip


def _runs_of(own: dict[str, Any], by_key: dict[str, str]) -> Iterator[RunConfig]:
    """A matrix's runs, the product of its lists; each value the experiment's own, else the given one, else DEFAULTS."""
    values = {**DEFAULTS, **by_key, **own}
    if "run_time" in by_key and "run_time" not in own:  # RUN_TIME is the whole Locust run: measured is what warm-up leaves
        values["run_time"] = run_time_seconds(by_key["run_time"]) - float(values["warmup"])
        if values["run_time"] <= 0:
            raise ValueError(f"RUN_TIME={by_key['run_time']} is the whole Locust run: it takes more than the warmup of "
                             f"{values['warmup']} s")  # fmt: skip
    lists = {k: _as_list(values[k]) for k in LIST_KEYS}
    for combination in product(*lists.values()):
        yield _config({**values, **dict(zip(lists, combination, strict=True))})


def overridden(name: str, data: dict[str, Any], given: Mapping[str, str]) -> list[str]:
    """A line for each value given on the command line (or in the environment) that the experiment's own overrides:
    the variable, both values and which won; and the matrices, if any, that take the given value still."""
    lines = []
    matrices = data.get("matrix") or []
    for key, env in GIVEN_KEYS.items():
        if env not in given:
            continue
        tables = [data] if key in OWN_KEYS else [data, *matrices]
        own = [table[key] for table in tables if key in table]
        if all(_same(env, value, given[env]) for found in own for value in _as_list(found)):
            continue  # nothing of its own, or the same value
        shown = " or ".join(dict.fromkeys(json.dumps(value) for value in own))
        taking = [str(i) for i, matrix in enumerate(matrices, 1) if key not in matrix] if key not in data else []
        rest = f"; matrix {', '.join(taking)}, without one, takes {given[env]}" if taking else ""
        lines.append(f"experiment {name}: {key} = {shown} in the experiment wins over {env}={given[env]} from the command "
                     f"line or environment{rest}")  # fmt: skip
    return lines


def _same(env: str, value: Any, text: str) -> bool:
    """Does the experiment's value say what the given text says (30_000 and 30000, 1 and 1.0)?"""
    if env in KNOBS:
        try:
            return KNOBS[env].parse(str(value)) == KNOBS[env].parse(text)
        except ValueError:
            pass
    return str(value) == text


def _config(values: dict[str, Any]) -> RunConfig:
    """One run from one value of each key. Every knob goes through the knob table; a knob that does
    not apply to the mode or workload (see knobs.applies) keeps its default."""
    warmup, run_time, processes = float(values["warmup"]), float(values["run_time"]), int(values["locust_processes"])
    if warmup < 0 or run_time <= 0 or processes < 1:
        raise ValueError("warmup must be >= 0, run_time > 0 and locust_processes >= 1")
    env = {GIVEN_KEYS.get(key, key.upper()): value for key, value in values.items() if key not in RUN_KEYS}
    env = {name: str(value) for name, value in env.items() if name in KNOBS and value is not None}
    mode = MODES.get(env["MODE"])
    if mode is not None:
        env = {name: value for name, value in env.items() if applies(name, mode, env.get("WORKLOAD", ""))}
    env["RUN_TIME"] = f"{math.ceil(warmup + run_time)}s"  # the whole Locust run, as `make up` would be told
    backend = values["backends"]
    if backend not in (None, *BACKENDS):
        raise ValueError(f"backends takes {' and '.join(BACKENDS)}, not {backend!r}")
    rate, arrivals = float(values["arrival_rate"]), str(values["arrivals"])
    if rate < 0 or arrivals not in ("poisson", "constant"):
        raise ValueError("arrival_rate must be >= 0 and arrivals poisson or constant")
    return RunConfig(parse(env), warmup, run_time, processes, backend, rate, arrivals)


def load(name: str, repeats: int | None = None) -> Experiment:
    path = Path(name) if name.endswith(".toml") else EXPERIMENTS / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.toml")))
        raise ExperimentError(f"no experiment {name!r}: EXPERIMENT takes one of {known}, or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"{path}: not valid TOML: {error}") from None
    experiment = expand(path.stem, data, repeats, given_values(os.environ))
    for line in experiment.overridden:
        print(line, file=sys.stderr)
    return for_app(experiment)


def for_app(experiment: Experiment) -> Experiment:
    """With APP set: the runs of the modes that can serve the app; each other mode skipped with its reason.
    The app is checked here, before anything starts (it imports, it is WSGI or ASGI)."""
    if not setting("APP"):
        return experiment
    from lab.stack.app_venv import prepare  # here, not at the top: `make help` imports this module before any venv exists

    try:
        kind = prepare() or ""  # every server of the bench is told the interface, rather than import the app again
    except KnobError as error:
        raise ExperimentError(str(error)) from None
    skipped = {c.knobs.mode: reason for c in experiment.runs if (reason := app_skip(c.knobs.server, kind))}
    for mode, reason in skipped.items():
        print(f"bench: skipped MODE={mode}: {reason}", file=sys.stderr)
    runs = [c for c in experiment.runs if c.knobs.mode not in skipped]
    if not runs:
        raise ExperimentError(f"no mode of experiment {experiment.name} can serve APP={setting('APP')} ({kind.upper()})")
    return replace(experiment, runs=runs)
