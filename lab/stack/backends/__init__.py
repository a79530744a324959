"""Where the lab runs: three backends behind one small interface (seam.py), so that `up`, `demo`, `down` and
`bench` never ask which one they have.

- native (backends/native.py): PostgreSQL, the app and Locust as local processes, the CPU limit a
  cgroup quota the lab sets itself.
- compose (backends/compose.py): the same services as containers of compose.yaml, the CPU limit
  Docker's --cpus.
- remote (backends/remote.py): a server the lab did not start, at TARGET (`make serve` on another host),
  its CPU and CPU limit read from its own report; Locust runs here.

What a stack file left is stopped below them all (backends/leftovers.py), since each stops what another left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.stack.backend_names import BACKENDS
from lab.stack.backends.seam import App, Backend, Limit, LocustOptions, RunFacts, Serving

if TYPE_CHECKING:  # stdlib only at import: `make help` runs before any virtual environment exists
    from lab.stack.place import Place
    from lab.stack.stack_state import StackState

__all__ = ["BACKENDS", "App", "Backend", "Limit", "LocustOptions", "RunFacts", "Serving", "down", "get", "resolve",
           "stop_leftovers"]  # fmt: skip


def resolve(name: str) -> str:
    """BACKEND as the lab runs it: TARGET (a server the lab did not start) takes remote; auto is compose where a
    Docker engine answers within 5 s, native otherwise."""
    from contract.knobs import KnobError, setting
    from lab.stack.backends.compose_cli import engine_answers

    if target := setting("TARGET"):
        if name not in ("auto", "remote"):
            raise KnobError(f"TARGET={target} is a server the lab did not start: it takes BACKEND=remote (or none), "
                            f"not BACKEND={name}")  # fmt: skip
        return "remote"
    if name == "auto":
        return "compose" if engine_answers(timeout=5) else "native"
    return name


def get(name: str, place: Place | None = None) -> Backend:
    if name == "compose":
        from lab.stack.backends.compose import ComposeBackend

        return ComposeBackend(place)
    if name == "native":
        from lab.stack.backends.native import NativeBackend

        return NativeBackend(place)
    if name == "remote":
        from lab.stack.backends.remote import RemoteBackend

        return RemoteBackend(place)
    raise ValueError(f"BACKEND={name!r} is not valid: BACKEND takes auto, {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")


def stop_leftovers(place: Place, state: StackState) -> None:
    """Stop what a stack file says runs, on the backends that started it."""
    from lab.stack.backends import leftovers

    leftovers.stop_leftovers(place, state)


def down(place: Place | None = None) -> str:
    """`make down`: stop whatever `make up`, `demo` or `bench` started, on its own backends."""
    from lab.stack import stack_state
    from lab.stack.backends import leftovers
    from lab.stack.place import Place

    place = place or Place()
    state = stack_state.read(place)
    stack_state.stop_supervisor(state)
    leftovers.stop_leftovers(place, state)
    place.stack_file.unlink(missing_ok=True)
    return " and ".join(leftovers.started(state))
