"""The lab's instruments around any WSGI or ASGI app: the timing headers and the server's report of itself.

Stdlib only. `wrap(app)` detects the app's interface and returns a thin wrapper that adds to every
response the headers the currency endpoint sends (X-Worker-Pid, X-Thread-Id, X-Request-Start/End,
Server-Timing total), and answers the lab's own paths with the server's report of itself, so that
verification, the timeline and the CPU accounting work for any app as they do for the endpoint.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any, Literal

from contract.endpoint import Settings, Timer, server_report
from contract.knobs import Offload

Interface = Literal["wsgi", "asgi"]
REPORT_PATH = "/__lab__/healthz"  # the lab's own path: the server's report of itself
# The backends wait for /healthz to answer 200 before anything is measured, so the lab answers it too:
# under the lab, the app's own /healthz is not reached.
LAB_PATHS = (REPORT_PATH, "/healthz")

# The report's fields that belong to the currency endpoint's workloads: an app of the user's has none.
ENDPOINT_ONLY = ("workload", "io_seconds", "primes_limit", "db_pool", "db_pool_size", "cpu_offload", "offload_processes")
_NO_SETTINGS = Settings("", 0.0, 0, "", False, 0, 0, Offload.NONE)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class NotAnAppError(TypeError):
    """The callable is neither a WSGI app nor an ASGI app."""


def interface(app: object) -> Interface:
    """WSGI or ASGI, from the callable's shape: an ASGI app is a coroutine function (or has an async
    __call__) of (scope, receive, send); a WSGI app is a callable of (environ, start_response)."""
    if not callable(app):
        raise NotAnAppError(f"{app!r} is not callable")
    # an instance's own __call__ is looked up on its class, as Python calls it
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else type(app).__call__
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        params = [p for p in inspect.signature(app).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # a builtin without a signature: take it at its word as WSGI
        return "wsgi"
    if len(params) == 3:  # an ASGI app that is a plain function returning an awaitable (some frameworks' classes)
        return "asgi"
    if len(params) == 2:
        return "wsgi"
    raise NotAnAppError(f"{getattr(app, '__name__', type(app).__name__)} takes {len(params)} arguments: "
                   "a WSGI app takes (environ, start_response), an ASGI app (scope, receive, send)")  # fmt: skip


def rss_bytes(pid: int) -> int | None:
    """A process's resident memory, from /proc (the server's own host, so it holds under compose too)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return int(kb) * 1024 if kb else None


def report(program_app: str) -> dict[str, object]:
    """The server's report of itself, with the app's facts: the endpoint's workload fields are None, and
    each worker's resident memory is there (what deciding how many workers fit a memory budget needs)."""
    facts = server_report(_NO_SETTINGS, pool=None)
    pids = facts["worker_pids"]
    rss = [rss_bytes(pid) for pid in pids] if isinstance(pids, list) else []
    facts.update(dict.fromkeys(ENDPOINT_ONLY), app=program_app, worker_rss_bytes=[b for b in rss if b is not None])
    return facts


def _report_body() -> bytes:
    return json.dumps({"status": "ok", "server": report(os.environ.get("APP", ""))}).encode()


class LabWSGI:
    """The lab's WSGI middleware: the timing headers on every response, the report on the lab's paths."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        timer = Timer()
        if environ.get("PATH_INFO") in LAB_PATHS:
            body = _report_body()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                      *timer.headers().items()])  # fmt: skip
            return [body]

        def timed(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            own = timer.headers()  # an app's own timing headers (the lab's currency app sends them) give way to these
            names = {name.lower() for name in own}
            kept = [(name, value) for name, value in headers if name.lower() not in names]
            return start_response(status, [*kept, *own.items()], exc_info)

        return self.app(environ, timed)


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class LabASGI:
    """The lab's ASGI middleware: the timing headers on every HTTP response, the report on the lab's
    paths; lifespan and websocket messages pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timer = Timer(one_thread=False)  # the app's own CPU is not known: its thread serves others between awaits
        if scope.get("path") in LAB_PATHS:
            body = _report_body()
            headers = {"content-type": "application/json", "content-length": str(len(body)), **timer.headers()}
            await send({"type": "http.response.start", "status": 200, "headers": _encoded(headers)})
            await send({"type": "http.response.body", "body": body})
            return

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = _encoded(timer.headers())
                names = {name for name, _ in own}
                kept = [(name, value) for name, value in message.get("headers", ()) if name.lower() not in names]
                message = {**message, "headers": [*kept, *own]}
            await send(message)

        await self.app(scope, receive, timed)


def wrap(app: object) -> LabWSGI | LabASGI:
    """The app inside the lab's middleware of its interface; NotAnAppError for anything else."""
    kind = interface(app)
    return LabASGI(app) if kind == "asgi" else LabWSGI(app)  # type: ignore[arg-type]
