"""Where the lab runs: two backends behind one small interface, so that `up`, `demo`, `down` and
`bench` never ask which one they have.

- native (backends/native.py): PostgreSQL, the app and Locust as local processes, the CPU limit a
  cgroup quota the lab sets itself.
- compose (backends/compose.py): the same services as containers of compose.yaml, the CPU limit
  Docker's --cpus.
"""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # stdlib only at import: `make help` runs before any virtual environment exists
    from contract.knobs import Knobs
    from lab.cpulimit import CpuUsage

BACKENDS = ("native", "compose")


class Limit(Protocol):
    enforced: bool

    def describe(self) -> str: ...


class App(Protocol):
    """The server under test for one configuration."""

    limit: Limit | None

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def usage(self) -> CpuUsage: ...

    def stop(self) -> None: ...


class Backend(Protocol):
    name: str
    load_generator_is_child: bool  # its exited processes are counted in our own rusage

    def open(self, folder: Path | None, cpus: list[float]) -> dict[str, Any]:
        """Start what runs stay on (PostgreSQL), check the CPU limits fit; facts for the records."""

    def app(self, knobs: Knobs) -> App: ...

    def app_pid(self, app: App) -> int | None:
        """The app's process for the stack file, so that `make down` from another shell finds it."""

    def locust_argv(self, options: dict[str, Any], results: Path) -> list[str]: ...

    def locust_env(self, knobs: Knobs) -> dict[str, str]: ...

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None: ...

    def postgres_cpu(self) -> float | None: ...

    def run_facts(self, app: App) -> dict[str, Any]:
        """What one run's record keeps of where it ran (the compose images, by id)."""

    def close(self) -> None: ...

    def serving(self, knobs: Knobs, *, locust_ui: bool = False, locust_workers: int = 1) -> AbstractContextManager[Any]:
        """`make up` and `make demo`: PostgreSQL and the app (and Locust's web UI), stopped on exit."""

    def down(self, state: dict[str, Any]) -> None:
        """Stop what a stack file of this backend says runs."""


def get(name: str, place: Any = None) -> Backend:
    if name == "compose":
        from lab.backends.compose import ComposeBackend

        return ComposeBackend(place)
    if name == "native":
        from lab.backends.native import NativeBackend

        return NativeBackend(place)
    raise ValueError(f"BACKEND={name!r} is not valid: BACKEND takes auto, {' or '.join(BACKENDS)}")


def started(state: dict[str, Any]) -> list[str]:
    """The backends a stack file says were started (a lab that wrote none ran natively)."""
    return state.get("backends") or ["native"]


def stop_leftovers(place: Any, state: dict[str, Any]) -> None:
    """Stop what a stack file says runs, on the backends that started it."""
    for name in started(state):
        get(name, place).down(state)


def down(place: Any = None) -> str:
    """`make down`: stop whatever `make up`, `demo` or `bench` started, on its own backends."""
    from lab import stack_state
    from lab.backends.native import Place

    place = place or Place()
    state = stack_state.read(place)
    stack_state.stop_supervisor(state)
    stop_leftovers(place, state)
    place.stack_file.unlink(missing_ok=True)
    return " and ".join(started(state))
