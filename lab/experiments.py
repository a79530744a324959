"""Experiments as data: experiments/<name>.toml, expanded into one configuration per run.

A file holds defaults at the top level and one or more [[matrix]] tables; each matrix is the
product of its lists (modes x workloads x cpus x users x workers x threads). WORKERS and
THREADS only multiply the modes that have them.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

from lab import ROOT
from lab.knobs import KnobError, Knobs, parse

EXPERIMENTS = ROOT / "experiments"
LIST_KEYS = ("modes", "workloads", "cpus", "users", "workers", "threads", "db_pool", "cpu_offload")
SCALAR_KEYS = ("io_seconds", "primes_limit", "spawn_rate", "warmup", "run_time", "locust_processes")
DEFAULTS: dict[str, Any] = {
    "workloads": ["io", "cpu"],
    "cpus": [1],
    "users": [10],
    "workers": [None],
    "threads": [None],
    "db_pool": ["1"],
    "cpu_offload": ["none"],
    "io_seconds": 0.1,
    "primes_limit": 20_000,
    "spawn_rate": 100,
    "warmup": 2.0,
    "run_time": 10.0,
    "locust_processes": 1,
}


class ExperimentError(ValueError):
    """An experiment file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class RunConfig:
    mode: str
    workload: str
    cpus: float
    users: int
    workers: int
    threads: int
    io_seconds: float
    primes_limit: int
    spawn_rate: float
    warmup: float
    run_time: float
    locust_processes: int
    db_pool: str = "1"
    cpu_offload: str = "none"

    @property
    def id(self) -> str:
        parts = [self.mode, self.workload, f"cpus{self.cpus:g}", f"u{self.users}"]
        server = self.knobs().server
        if server.default_workers is not None:
            parts.append(f"w{self.workers}")
        if server.default_threads is not None:
            parts.append(f"t{self.threads}")
        if self.db_pool == "0":
            parts.append("nopool")
        if self.cpu_offload != "none":
            parts.append(f"offload-{self.cpu_offload}")
        return "-".join(parts)

    def knobs(self) -> Knobs:
        return parse(
            {
                "MODE": self.mode,
                "WORKLOAD": self.workload,
                "CPUS": f"{self.cpus:g}",
                "WORKERS": str(self.workers),
                "THREADS": str(self.threads),
                "IO_SECONDS": f"{self.io_seconds:g}",
                "PRIMES_LIMIT": str(self.primes_limit),
                "USERS": str(self.users),
                "SPAWN_RATE": f"{self.spawn_rate:g}",
                "RUN_TIME": f"{round(self.run_time)}s",
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    runs: list[RunConfig]
    source: dict[str, Any]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def expand(name: str, data: dict[str, Any]) -> Experiment:
    matrices = data.get("matrix")
    if not matrices:
        raise ExperimentError(f"experiment {name}: needs at least one [[matrix]] table")
    unknown = set(data) - {"description", "matrix", *LIST_KEYS, *SCALAR_KEYS}
    if unknown:
        raise ExperimentError(f"experiment {name}: unknown keys {sorted(unknown)}")
    runs: dict[str, RunConfig] = {}
    for i, matrix in enumerate(matrices, 1):
        unknown = set(matrix) - {*LIST_KEYS, *SCALAR_KEYS}
        if unknown:
            raise ExperimentError(f"experiment {name}, matrix {i}: unknown keys {sorted(unknown)}")
        values = {**DEFAULTS, **{k: v for k, v in data.items() if k not in ("description", "matrix")}, **matrix}
        if "modes" not in values:
            raise ExperimentError(f"experiment {name}, matrix {i}: 'modes' is required")
        lists = {k: _as_list(values[k]) for k in LIST_KEYS}
        for combination in product(*lists.values()):
            try:
                config = _config(dict(zip(lists, combination, strict=True)), values)
            except (KnobError, TypeError, ValueError) as error:
                raise ExperimentError(f"experiment {name}, matrix {i}: {error}") from None
            runs.setdefault(config.id, config)  # a mode without workers/threads appears once
    return Experiment(name, str(data.get("description", "")), list(runs.values()), data)


def _config(choice: dict[str, Any], values: dict[str, Any]) -> RunConfig:
    """One run: `choice` holds one value of each list; knobs a mode does not have are left out."""
    from lab.modes import MODES

    server = MODES.get(choice["modes"])
    env = {"MODE": str(choice["modes"]), "WORKLOAD": str(choice["workloads"]), "CPUS": str(choice["cpus"]),
           "USERS": str(choice["users"]), "IO_SECONDS": str(values["io_seconds"]),
           "PRIMES_LIMIT": str(values["primes_limit"]), "SPAWN_RATE": str(values["spawn_rate"])}  # fmt: skip
    if server is not None and server.default_workers is not None and choice["workers"] is not None:
        env["WORKERS"] = str(choice["workers"])
    if server is not None and server.default_threads is not None and choice["threads"] is not None:
        env["THREADS"] = str(choice["threads"])
    if server is not None and server.django_db:
        env["DB_POOL"] = str(choice["db_pool"])
    if server is not None and server.offloads_cpu and choice["workloads"] == "cpu":
        env["CPU_OFFLOAD"] = str(choice["cpu_offload"])  # it only moves the prime count
    knobs = parse(env)
    warmup, run_time, processes = float(values["warmup"]), float(values["run_time"]), int(values["locust_processes"])
    if warmup < 0 or run_time <= 0 or processes < 1:
        raise ValueError("warmup must be >= 0, run_time > 0 and locust_processes >= 1")
    return RunConfig(knobs.mode, knobs.workload, knobs.cpus, knobs.users, knobs.workers, knobs.threads,
                     knobs.io_seconds, knobs.primes_limit, knobs.spawn_rate, warmup, run_time, processes,
                     knobs.db_pool, knobs.cpu_offload)  # fmt: skip


def load(name: str) -> Experiment:
    path = Path(name) if name.endswith(".toml") else EXPERIMENTS / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.toml")))
        raise ExperimentError(f"no experiment {name!r}: EXPERIMENT takes one of {known}, or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"{path}: not valid TOML: {error}") from None
    return expand(path.stem, data)
