"""The stack file: what one lab instance runs right now, and on which backend, so that `make down`
from another shell stops exactly what `make up`, `make demo`, `make bench` or `make capacity`
started, and so that the next lab command stops what a killed one left behind.

Every command that starts something holds the file through `claimed`: a second lab refuses to
start, the same way on both backends, naming what runs and how to stop it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol, TypedDict, cast

from lab.stack.place import Place
from lab.stack.procs import LabError, alive, same_process, started_at, stop_on_signals


class StackState(TypedDict, total=False):
    supervisor: int  # the lab process that holds the stack
    supervisor_started: float  # when it started: a pid alone may name a stranger's process by now
    command: str  # what the user ran, in their words (`make bench EXPERIMENT=smoke`)
    started_at: str
    backends: list[str]
    pg_port: int
    cgroup: str
    app: int | None  # process groups the native backend started, for `make down` from another shell
    locust: int | None
    app_started: float | None  # when each group's leader started
    locust_started: float | None


PIDS = {"app", "locust"}


class StateHook(Protocol):
    """Records the pids of what starts and stops while the stack is held (`app=`, `locust=`)."""

    def __call__(self, **pids: int | None) -> None: ...


def read(place: Place) -> StackState:
    try:
        state = json.loads(place.stack_file.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return cast(StackState, state) if isinstance(state, dict) else {}  # our own file: written by `claimed`


def running(state: StackState) -> bool:
    """A lab process holds this stack now (not one that was killed and left it behind, nor a stranger's
    process that has its pid since)."""
    supervisor = state.get("supervisor")
    return supervisor is not None and supervisor != os.getpid() and same_process(supervisor, state.get("supervisor_started"))


def describe(state: StackState) -> str:
    """What runs, in the words the user needs to recognise it."""
    what = state.get("command") or "a lab command"
    since = f", since {state['started_at']}" if state.get("started_at") else ""
    return f"{what} (pid {state.get('supervisor')}, {' and '.join(state.get('backends') or ['native'])} backend{since})"


def stop_supervisor(state: StackState) -> None:
    """Ask the lab process that started the stack to stop it (it stops what it started), and wait."""
    supervisor = state.get("supervisor")
    if supervisor and not running(state) and supervisor != os.getpid() and alive(supervisor):
        print(f"lab: pid {supervisor} is no longer the lab's supervisor (it started at another time): left alone")
    if supervisor and running(state):
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)


def _write(place: Place, state: Mapping[str, object]) -> None:
    """Whole or not at all: a reader never sees half a stack file."""
    tmp = place.stack_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, place.stack_file)


@contextmanager
def claimed(place: Place, backends: list[str], command: str, stop_leftovers: Callable[[StackState], None]) -> Iterator[StateHook]:
    """Hold the stack file for the duration; yields a hook that records pids as they start.

    A lab that runs already makes this refuse: an exclusive lock on the place's lock file, held until the
    block ends (the kernel lets it go however the holder ends), decides between two commands started
    together, where reading the stack file and then writing it would let both pass. `stop_leftovers`
    stops what a stack file left by a killed lab says runs. SIGTERM and SIGHUP stop the holder as Ctrl-C does."""
    place.state.mkdir(parents=True, exist_ok=True)
    with _locked(place):
        yield from _claim(place, backends, command, stop_leftovers)


@contextmanager
def _locked(place: Place) -> Iterator[None]:
    fd = os.open(place.state / "stack.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read(place)
            what = describe(holder) if holder else f"a lab command starting at {place.state}"
            raise LabError(f"the lab is already running: {what}; stop it with `make down` first, or wait for it") from None
        yield
    finally:
        os.close(fd)


def _claim(place: Place, backends: list[str], command: str, stop_leftovers: Callable[[StackState], None]) -> Iterator[StateHook]:
    prior = read(place)
    if running(prior):
        raise LabError(f"the lab is already running: {describe(prior)}; stop it with `make down` first, or wait for it")
    if place.stack_file.exists():
        print(f"lab: stopping what a lab that ended without stopping left running: {describe(prior)}", flush=True)
        stop_leftovers(prior)
        place.stack_file.unlink(missing_ok=True)
    stop_on_signals()
    state: dict[str, object] = {
        "supervisor": os.getpid(), "supervisor_started": started_at(os.getpid()), "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backends": backends, "pg_port": place.pg_port, "cgroup": place.cgroup_name,
    }  # fmt: skip

    def record(**pids: int | None) -> None:
        unknown = set(pids) - PIDS
        if unknown:
            raise ValueError(f"the stack file keeps no {sorted(unknown)}")
        state.update(pids)
        state.update({f"{name}_started": started_at(pid) if pid else None for name, pid in pids.items()})
        _write(place, state)

    _write(place, state)
    try:
        yield record
    finally:
        place.stack_file.unlink(missing_ok=True)
