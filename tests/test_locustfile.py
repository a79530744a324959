"""The Locust user, for real: it loads a server, checks every answer, and counts wrong ones."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contract.endpoint import request_name
from lab.stack.checkout import ROOT

from .conftest import running

BIN = ROOT / ".venv" / "bin"


def headless(host: str, seconds: int = 3, users: int = 4) -> dict[str, object]:
    result = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "locust" / "locustfile.py"),
            "--headless",
            "--host",
            host,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--json",
            "--skip-log",
            "--exit-code-on-error",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [stats] = [s for s in json.loads(result.stdout) if s["name"] == request_name("io")]  # named by the request's kind
    return stats


def test_locust_drives_a_real_server_without_failures(place, database):
    with running(place, database, mode="async", workload="io", io_seconds=0.02) as app:
        stats = headless(app.url)
    assert stats["num_requests"] > 20
    assert stats["num_failures"] == 0


class WrongRates(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"from": "usd", "to": "gbp", "rate": 42.0, "workload": "io"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.server  # a real Locust process, against a stand-in server
def test_a_wrong_rate_is_a_failure():
    server = ThreadingHTTPServer(("127.0.0.1", 0), WrongRates)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stats = headless(f"http://127.0.0.1:{server.server_address[1]}", seconds=2, users=2)
    finally:
        server.shutdown()
    assert stats["num_requests"] > 0
    assert stats["num_failures"] == stats["num_requests"]
