"""The control server of `make up`: what the Lab page's form and its "Keep a run" button post to, from the
browser on this machine.

It listens on loopback and answers loopback alone, unless LAB_UI_PASSWORD is set: then it listens on every
interface and every change must carry the password (header X-Lab-Password). A browser may post to it only
from Locust's own page (CORS for that origin, and JSON bodies, which a page elsewhere cannot send without
asking first), so that no other web page can restart the lab's servers. And it answers only requests for a
name the lab serves (their Host header): loopback's, or one LAB_UI_HOSTS opens the UI to on purpose, so
that a page whose own name resolves to 127.0.0.1 (DNS rebinding) cannot use it either (docs/ui-trust.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from contract.knobs import UI_LOOPBACK, KnobError, host_name
from lab.live.keep import Kept
from lab.live.session import BusyError
from lab.stack.procs import LabError

PASSWORD_HEADER = "X-Lab-Password"
MAX_BODY = 64 * 1024


class Controlled(Protocol):
    """What the control server asks of the live lab."""

    state: dict[str, Any]

    def apply(self, form: dict[str, object], start_users: bool = True) -> dict[str, Any]: ...

    def keep(self) -> Kept: ...


def loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Control(ThreadingHTTPServer):
    daemon_threads = True  # a request under way never holds the process: `finish` waits for the change itself

    def __init__(
        self, lab: Controlled, port: int, locust_port: int, password: str | None, names: frozenset[str] = UI_LOOPBACK
    ) -> None:
        self.lab, self.locust_port, self.password = lab, locust_port, password
        self.names = names  # what it answers to: contract.knobs.ui_hosts()
        super().__init__(("0.0.0.0" if password else "127.0.0.1", port), ControlHandler)

    def origin_allowed(self, origin: str | None) -> bool:
        """No Origin (curl, the tests) or Locust's page, by a name the lab serves: loopback's, or one the user
        opened the UI to (LAB_UI_HOSTS), with or without a password."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        if parts.port != self.locust_port or parts.scheme not in ("http", "https"):
            return False
        return parts.hostname in self.names

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="lab-control", daemon=True)
        thread.start()
        return thread


class ControlHandler(BaseHTTPRequestHandler):
    server: Control

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal of `make up` stays quiet; the page says what happened

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin is not None and self.server.origin_allowed(origin):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _foreign(self) -> str | None:
        """Why a request is refused whatever it asks: a name the lab does not serve, or another page."""
        host = self.headers.get("Host")
        if host_name(host) not in self.server.names:
            return f"the control server answers requests for {', '.join(sorted(self.server.names))} alone, not for " \
                   f"Host {host!r} (LAB_UI_HOSTS opens the UI to a name on purpose)"  # fmt: skip
        if not self.server.origin_allowed(self.headers.get("Origin")):
            return "only Locust's own page may use the lab's control server"
        return None

    def _refused(self, change: bool) -> str | None:
        """Why this request may not be answered, or None."""
        if why := self._foreign():
            return why
        password = self.server.password
        if not password:
            on_loopback = loopback(self.client_address[0])
            return None if on_loopback else "the control server answers only on loopback, unless LAB_UI_PASSWORD is set"
        given = self.headers.get(PASSWORD_HEADER, "")
        if change and not hmac.compare_digest(given.encode(), password.encode()):
            return "a wrong or missing password (LAB_UI_PASSWORD)"
        return None

    def do_OPTIONS(self) -> None:
        if why := self._foreign():
            self._answer(403, {"error": why})
            return
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", f"Content-Type, {PASSWORD_HEADER}")
        self.send_header("Access-Control-Max-Age", "600")
        self.end_headers()

    def do_GET(self) -> None:
        if why := self._refused(change=False):
            self._answer(403, {"error": why})
        elif self.path == "/state":
            self._answer(200, self.server.lab.state)
        else:
            self._answer(404, {"error": "the control server answers GET /state, POST /apply and POST /keep"})

    def _body(self) -> dict[str, Any] | None:
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return None  # a plain form post from another page: never acted on
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def do_POST(self) -> None:
        if why := self._refused(change=True):
            self._answer(403, {"error": why})
            return
        body = self._body()
        if body is None:
            self._answer(415, {"error": "the control server takes a JSON object (Content-Type: application/json)"})
            return
        try:
            if self.path == "/apply":
                form = body.get("knobs") or {}
                if not isinstance(form, dict):
                    raise KnobError("knobs must be an object of knob names and values")
                self._answer(200, self.server.lab.apply(form, bool(body.get("start_users", True))))
            elif self.path == "/keep":
                kept = self.server.lab.keep()
                self._answer(200, {"ok": True, "path": str(kept.path), "kept": kept.summary()})
            else:
                self._answer(404, {"error": "the control server answers POST /apply and POST /keep"})
        except KnobError as error:
            self._answer(400, {"error": str(error)})
        except BusyError as error:
            self._answer(409, {"error": str(error)})
        except LabError as error:
            self._answer(500, {"error": str(error)})
