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
from typing import Literal

from lab.stack.backends import compose_cli
from lab.stack.cpulimit import leftover_pids
from lab.stack.place import Place
from lab.stack.procs import own_group, started_at, stop_group
from lab.stack.stack_state import StackState


def started(state: StackState) -> list[str]:
    """The backends a stack file says were started (a lab that wrote none ran natively)."""
    return state.get("backends") or ["native"]


def stop_group_named(state: StackState, name: Literal["app", "locust"]) -> None:
    """The process group the stack file names, if it is still the one the lab started; never a stranger's."""
    pgid = state.get(name)
    if not pgid:
        return
    started = state.get("app_started") if name == "app" else state.get("locust_started")
    if own_group(pgid, started):
        stop_group(pgid)
    elif started_at(pgid) is not None:
        print(f"lab: pid {pgid} is no longer the lab's {name} (it started at another time): left alone", flush=True)


def stop_processes(place: Place, state: StackState) -> None:
    """What a native stack file names, whatever is left in the server's cgroup, and PostgreSQL."""
    for name in ("locust", "app"):
        stop_group_named(state, name)
    for pid in leftover_pids(place.cgroup_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    place.postgres().stop()


def stop_local_locust(place: Place, state: StackState) -> None:
    """Only the local Locust a bench of the remote backend left."""
    stop_group_named(state, "locust")


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
