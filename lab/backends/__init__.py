"""Where the lab runs: two backends behind one small interface, so that `up`, `demo`, `down` and
`bench` never ask which one they have.

- native (backends/native.py): PostgreSQL, the app and Locust as local processes, the CPU limit a
  cgroup quota the lab sets itself.
- compose (backends/compose.py): the same services as containers of compose.yaml, the CPU limit
  Docker's --cpus.
- remote (backends/remote.py): a server the lab did not start, at TARGET (`make serve` on another host),
  its CPU and CPU limit read from its own report; Locust runs here.
"""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

if TYPE_CHECKING:  # stdlib only at import: `make help` runs before any virtual environment exists
    from contract.cgroup import CpuUsage
    from contract.knobs import Knobs
    from lab.app_venv import AppFacts
    from lab.backends.remote_workers import WorkersFacts
    from lab.images import ImageFacts
    from lab.place import Place
    from lab.stack_state import StackState, StateHook

BACKENDS = ("native", "compose", "remote")


class Limit(Protocol):
    @property
    def enforced(self) -> bool: ...

    def describe(self) -> str: ...


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

    def locust_argv(self, options: dict[str, Any], results: Path) -> list[str]: ...

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

    def down(self, state: StackState) -> None:
        """Stop what a stack file of this backend says runs."""


def get(name: str, place: Place | None = None) -> Backend:
    if name == "compose":
        from lab.backends.compose import ComposeBackend

        return ComposeBackend(place)
    if name == "native":
        from lab.backends.native import NativeBackend

        return NativeBackend(place)
    if name == "remote":
        from lab.backends.remote import RemoteBackend

        return RemoteBackend(place)
    raise ValueError(f"BACKEND={name!r} is not valid: BACKEND takes auto, {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")


def started(state: StackState) -> list[str]:
    """The backends a stack file says were started (a lab that wrote none ran natively)."""
    return state.get("backends") or ["native"]


def stop_leftovers(place: Place, state: StackState) -> None:
    """Stop what a stack file says runs, on the backends that started it."""
    for name in started(state):
        get(name, place).down(state)


def down(place: Any = None) -> str:
    """`make down`: stop whatever `make up`, `demo` or `bench` started, on its own backends."""
    from lab import stack_state
    from lab.place import Place

    place = place or Place()
    state = stack_state.read(place)
    stack_state.stop_supervisor(state)
    stop_leftovers(place, state)
    place.stack_file.unlink(missing_ok=True)
    return " and ".join(started(state))
