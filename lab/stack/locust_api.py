"""What the supervisor asks of Locust's web app: its own routes (stop, reset, swarm) and the Lab plugin's
(locust/lab_ui.py: the pushed state, the workload, the kept window). Loopback only, and always towards
Locust: the compose master's published port works the same, so Locust never has to reach the host. Every
call carries the token this `make up` handed its Locust (in its environment, TOKEN_ENV): the plugin takes the
Lab's state from no one else (docs/ui-trust.md)."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypedDict, cast

from lab.stack.procs import LabError

TIMEOUT = 5.0
TOKEN_ENV = "LOCUST_LAB_UI_TOKEN"  # locust/lab_ui.py reads it, and compose.yaml passes it to the master
TOKEN_HEADER = "X-Lab-Token"


def new_token() -> str:
    """A token for the Locust a `make up` starts: a new one each time, so no other `make up` (nor anyone who
    saw an earlier one) pushes to it."""
    return secrets.token_urlsafe(32)


class LocustLive(TypedDict, total=False):
    """The plugin's answer to each push: Locust's own figures now."""

    state: str  # ready, spawning, running, stopped
    user_count: int
    target_users: int
    spawn_rate: float
    requests: int
    failures: int
    window_start: float | None  # when the statistics were last reset (after the ramp-up)
    workload: str
    cpu_share: float
    processes: int  # load-generating processes: 1, or the workers under a master
    cpu_warned: bool
    plugin_cpu_ms: float  # CPU the plugin's handlers took, in total (ms)
    throughput: tuple[float, float] | None  # requests per second over whole waves of requests, and over how long


class Window(TypedDict):
    """The plugin's window since the last reset: Locust's entries as its --json-file writes them, and the
    server's where-and-when of each request in it."""

    start: float | None
    now: float
    entries: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    rows: list[list[str]]
    user_count: int
    workload: str
    cpu_share: float
    processes: int
    ramp_seconds: float
    cpu_warned: bool


class Locust:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def _call(self, path: str, data: bytes | None = None, content_type: str = "application/json") -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET",
                                         headers={TOKEN_HEADER: self.token})  # fmt: skip
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            raise LabError(f"Locust answered HTTP {error.code} to {path}: {error.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as error:
            raise LabError(f"Locust's web UI at {self.url} did not answer {path}: {error}") from None

    def push(self, state: dict[str, Any]) -> LocustLive:
        return cast(LocustLive, json.loads(self._call("/lab/state", json.dumps(state).encode())))

    def stop(self) -> None:
        self._call("/stop", b"", "application/x-www-form-urlencoded")

    def reset(self) -> None:
        self._call("/stats/reset", b"", "application/x-www-form-urlencoded")

    def swarm(self, users: int, spawn_rate: float) -> None:
        form = urllib.parse.urlencode({"user_count": users, "spawn_rate": f"{spawn_rate:g}"}).encode()
        answer = json.loads(self._call("/swarm", form, "application/x-www-form-urlencoded"))
        if not answer.get("success"):
            raise LabError(f"Locust did not start the swarm: {answer.get('message')}")

    def workload(self, workload: str, cpu_share: float) -> None:
        self._call("/lab/workload", json.dumps({"workload": workload, "cpu_share": cpu_share}).encode())

    def window(self) -> Window:
        return cast(Window, json.loads(self._call("/lab/window")))
