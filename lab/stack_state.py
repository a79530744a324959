"""The stack file: what one lab instance runs right now, and on which backend, so that `make down`
from another shell stops exactly what `make up`, `make demo` or `make bench` started."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lab.procs import LabError, alive


def read(place: Any) -> dict[str, Any]:
    try:
        return json.loads(place.stack_file.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def stop_supervisor(state: dict[str, Any]) -> None:
    """Ask the lab process that started the stack to stop it (it stops what it started), and wait."""
    supervisor = state.get("supervisor")
    if supervisor and supervisor != os.getpid() and alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)


@contextmanager
def claimed(place: Any, backends: list[str], stop_leftovers: Callable[[dict[str, Any]], None]) -> Iterator[Callable[..., None]]:
    """Hold the stack file for the duration; yields a hook that records pids as they start.
    `stop_leftovers` stops what a stack file left by a killed lab says runs."""
    prior = read(place)
    if prior.get("supervisor") and alive(prior["supervisor"]):
        raise LabError("the lab is already running (make up, demo or bench): stop it with `make down` first")
    if place.stack_file.exists():
        stop_leftovers(place, prior)  # what a killed run left behind
    state: dict[str, Any] = {"supervisor": os.getpid(), "backends": backends, "pg_port": place.pg_port,
                             "cgroup": place.cgroup_name}  # fmt: skip

    def record(**values: Any) -> None:
        state.update(values)
        place.stack_file.write_text(json.dumps(state))

    place.state.mkdir(parents=True, exist_ok=True)
    record()
    try:
        yield record
    finally:
        place.stack_file.unlink(missing_ok=True)
