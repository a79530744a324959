"""An example WSGI app for `APP=wsgi_shop:app APP_DIR=examples/apps`: one path waits in PostgreSQL, one counts primes.

Plain WSGI, no framework: /wait?ms=50 runs `pg_sleep` in the database DATABASE_URL names (the lab's own
PostgreSQL under the lab), a connection per request; /primes?n=20000 counts primes in pure Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import psycopg


def primes_below(n: int) -> int:
    sieve = bytearray([1]) * max(n, 2)
    sieve[0:2] = b"\0\0"
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            for multiple in range(i * i, n, i):  # a loop in Python, not a slice: the CPU is the point
                sieve[multiple] = 0
    return sum(sieve)


def _number(environ: dict[str, Any], name: str, default: int) -> int:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return int(values[0]) if values and values[0].isdigit() else default


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/wait":
        ms = _number(environ, "ms", 50)
        with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
            connection.execute("SELECT pg_sleep(%s)", (ms / 1000,))
        status, body = "200 OK", {"waited_ms": ms}
    elif path == "/primes":
        n = _number(environ, "n", 20_000)
        status, body = "200 OK", {"below": n, "primes": primes_below(n)}
    elif path == "/":
        status, body = "200 OK", {"paths": ["/wait?ms=50", "/primes?n=20000"]}
    else:
        status, body = "404 Not Found", {"error": f"no path {path}"}
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
