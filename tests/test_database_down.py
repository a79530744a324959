"""PostgreSQL stopped under a running app: 503 within seconds, and 200 again once it is back."""

from __future__ import annotations

import time

from lab.stack.procs import http_status, wait_until

from .conftest import running
from .test_bad_input import fetch


def test_database_down_gives_quick_503_then_recovers(place, database):
    """PostgreSQL stopped under a running app: 503 within seconds, and 200 again once it is back."""
    for mode in ("threaded", "async"):
        with running(place, database, mode=mode, workload="io", io_seconds=0.01) as app:
            assert fetch(f"{app.url}/currency/convert?from=usd&to=gbp")[0] == 200
            database.stop()
            try:
                started = time.monotonic()
                status, body, text = fetch(f"{app.url}/currency/convert?from=usd&to=gbp")
                took = time.monotonic() - started
                assert status == 503, text
                assert "database unavailable" in body["error"]
                assert took < 5, f"{mode}: 503 took {took:.1f}s"
                assert http_status(f"{app.url}/healthz", timeout=10) == 503
            finally:
                database.start()
            assert wait_until(lambda: fetch(f"{app.url}/currency/convert?from=usd&to=gbp")[0] == 200, 20, 0.5)
