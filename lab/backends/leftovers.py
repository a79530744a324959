"""What a stack file says runs, stopped on the backends that started it: `make down` from another shell, and
every lab command that finds the stack file of a lab killed before it could stop what it started.

Each backend's leftovers are stopped here, below the backends themselves, since each of them stops what
another left before it starts: the native backend's process groups, what is left in the server's cgroup and
PostgreSQL; the compose project's containers, networks and volumes; the remote backend's local Locust (the
target is not the lab's to stop)."""

from __future__ import annotations

import contextlib
import os
import signal

from lab.backends import compose_cli
from lab.cpulimit import leftover_pids
from lab.place import Place
from lab.procs import stop_group
from lab.stack_state import StackState


def started(state: StackState) -> list[str]:
    """The backends a stack file says were started (a lab that wrote none ran natively)."""
    return state.get("backends") or ["native"]


def stop_processes(place: Place, state: StackState) -> None:
    """What a native stack file names, whatever is left in the server's cgroup, and PostgreSQL."""
    for pgid in (state.get("locust"), state.get("app")):
        if pgid:
            stop_group(pgid)
    for pid in leftover_pids(place.cgroup_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    place.postgres().stop()


def stop_local_locust(place: Place, state: StackState) -> None:
    """Only the local Locust a bench of the remote backend left."""
    if locust := state.get("locust"):
        stop_group(locust)


def stop_compose(place: Place, state: StackState) -> None:
    compose_cli.down()


STOPS = {"native": stop_processes, "compose": stop_compose, "remote": stop_local_locust}


def stop_leftovers(place: Place, state: StackState) -> None:
    """Stop what a stack file says runs, on the backends that started it."""
    for name in started(state):
        stop = STOPS.get(name)
        if stop is None:
            raise ValueError(f"the stack file names a backend the lab does not have: {name!r}")
        stop(place, state)
