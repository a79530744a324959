"""The seam every backend meets: the server under test, what `make up` shows, the backend itself, and the
shapes they hand over (what a run's record keeps of where it ran, Locust's options).

Stdlib only at import, as `lab.stack.backends` is: `make help` runs before any virtual environment exists."""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

if TYPE_CHECKING:
    from contract.cgroup import CpuUsage
    from contract.knobs import Knobs
    from lab.stack.app_venv import AppFacts
    from lab.stack.images import ImageFacts
    from lab.stack.stack_state import StateHook

# A headless Locust run's options, whichever backend runs it: each flag and its value (a path on this host,
# which the compose backend maps into Locust's container).
LocustOptions = dict[str, str | int | Path]


class Limit(Protocol):
    @property
    def enforced(self) -> bool: ...

    def describe(self) -> str: ...


class WorkerFacts(TypedDict):
    """One worker of a run: its Locust id (its host's name, then a random part), and its CPU over the window."""

    id: str
    host: str
    index: int | None  # Locust's number for it, in the order workers joined
    cpu_seconds: float | None  # between the reports that enclose the measured window
    over_seconds: float | None
    utilisation: float | None  # of a core
    locust_cpu_percent: float | None  # Locust's own figure: its last 5 s before the master's last report
    reports: int


class WorkersFacts(TypedDict):
    """A run's `where.locust_workers`: how many joined its master, on which hosts, and whether any bounded it."""

    expected: int | None
    connected: int
    hosts: dict[str, int]
    workers: list[WorkerFacts]
    busiest: float | None
    bounded: bool


class RunFacts(TypedDict, total=False):
    """What a run's record keeps of where it ran: the compose backend's images, by id; the remote backend's
    target, which the lab did not start, and where its CPU was read; Locust's workers on other hosts."""

    images: list[ImageFacts]
    target: str
    started_by_lab: bool
    server_cpu_from: str
    locust_workers: WorkersFacts
    app: AppFacts  # an app of the user's: where its traffic came from, its requirements, its environment's names


class App(Protocol):
    """The server under test for one configuration."""

    @property
    def limit(self) -> Limit | None: ...

    @property
    def url(self) -> str: ...

    def facts(self) -> RunFacts:
        """What the run's record keeps of where it ran."""

    def start(self) -> None: ...

    def usage(self) -> CpuUsage: ...

    def died(self) -> str | None:
        """None while the server runs; else how it ended (its exit code, or its container's state)."""

    def stop(self) -> None: ...


class Serving(Protocol):
    """What `make up` and `make demo` show of a running stack, whichever backend runs it."""

    @property
    def url(self) -> str: ...

    @property
    def limit(self) -> Limit | None: ...

    @property
    def locust_url(self) -> str: ...

    @property
    def logs(self) -> str: ...


class Backend(Protocol):
    name: str
    load_generator_is_child: bool  # its exited processes are counted in our own rusage

    def open(self, folder: Path | None, cpus: list[float]) -> str:
        """Start what runs stay on (PostgreSQL), check the CPU limits fit and the ports are free; the
        PostgreSQL it runs, for the records."""

    def check_database(self) -> str | None:
        """None while PostgreSQL answers; else what happened to it, after starting it again, so that
        the run it failed says why and the next run gets a working database."""

    def app(self, knobs: Knobs, record: StateHook) -> App:
        """The server for one configuration; it records its processes through `record` as they start."""

    def locust_argv(self, options: LocustOptions, results: Path) -> list[str]: ...

    def locust_env(self, knobs: Knobs) -> dict[str, str]: ...

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None: ...

    def postgres_cpu(self) -> float | None: ...

    def interpreter(self, knobs: Knobs) -> dict[str, object]:
        """The build of the Python the servers of `knobs` run on, and its speed on a fixed loop, measured
        with that very interpreter (`python -m contract.interpreter`)."""

    def close(self) -> None: ...

    def serving(
        self, knobs: Knobs, command: str, *, locust_ui: bool = False, locust_workers: int = 1
    ) -> AbstractContextManager[Serving]:
        """`make up` and `make demo` (named by `command` in the stack file): PostgreSQL and the app (and
        Locust's web UI) under the stack file, stopped on exit."""
