"""Each server process's connection pool: how many connections it opens at start, and waiting for them.

psycopg's pool grows by one connection at a time, each a new PostgreSQL backend and a password exchange. A
server started with one connection and then offered hundreds of requests a second makes them wait for that
growth for seconds: a measure of a cold start, not of the server. So each process opens, before it says it is
ready, as many connections as it can use at once (one per thread, a pool's worth for an event loop or a thread
per request), within an even share of PostgreSQL's connections among the server's processes.

Stdlib only: the lab reads the count, the services wait on their own pools (any psycopg pool, sync or async).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from typing import Any, Protocol

from contract.modes import MODES

PG_MAX_CONNECTIONS = 300  # the lab's PostgreSQL, native and compose (compose.yaml passes the same)
SERVER_CONNECTIONS = PG_MAX_CONNECTIONS - 20  # the rest: the lab's own probes, checks and a psql by hand
WAIT_S = 1.0  # the longest one /healthz waits for its pool to be whole before it answers that it is not


def opened_at_start(mode: str, workers: int, threads: int, pool_size: int) -> int:
    """Connections each process of MODE opens at start: what one process can hold in flight at once."""
    server = MODES[mode]
    processes = max(1, server.processes(workers, threads, pool_size))
    per_process = math.ceil(server.in_flight(workers, threads, pool_size) / processes)
    return max(1, min(pool_size, per_process, SERVER_CONNECTIONS // processes))


class Pool(Protocol):
    """What is read of psycopg_pool's ConnectionPool and AsyncConnectionPool alike."""

    @property
    def min_size(self) -> int: ...

    @property
    def max_size(self) -> int: ...

    def get_stats(self) -> dict[str, int]: ...

    def check(self) -> Any: ...  # ConnectionPool's returns None, AsyncConnectionPool's a coroutine


def _made(pool: Pool) -> int:
    """The connections psycopg made for it so far: its attempts less those that failed (a count that only
    grows, whatever their use since: the idle count falls under load, and psycopg counts those it is still
    opening in its size)."""
    stats = pool.get_stats()
    return stats.get("connections_num", 0) - stats.get("connections_errors", 0)


def whole(pool: Pool) -> bool:
    """All the connections it opens at start were made."""
    return _made(pool) >= pool.min_size


def _opening(pool: Pool) -> str | None:
    return None if whole(pool) else f"opening its connection pool: {_made(pool)} of {pool.min_size} connections made"


def still_opening(pool: Pool) -> str | None:
    """In a sync /healthz: why the server is not ready yet (its pool still opening, after a short wait), or None.
    Not ready answers 503, so a caller waiting for a 200 (the lab, a readiness probe) waits for the whole pool;
    each call returns within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not whole(pool) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _opening(pool)


async def still_opening_async(pool: Pool) -> str | None:
    """As still_opening, in an async /healthz, without holding the event loop."""
    deadline = time.monotonic() + WAIT_S
    while not whole(pool) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return _opening(pool)


# A pool opened whole holds many idle connections: after PostgreSQL restarts every one of them is dead, and
# psycopg finds that out one request at a time. A database error checks them all at once instead, in the
# background, one check per pool at a time (psycopg then replaces the dead ones).
_checking: set[int] = set()
_tasks: set[asyncio.Task[None]] = set()  # the running checks, held so that none is collected half-way


def recheck(pool: Pool) -> None:
    """After a database error in a sync server: check the pool's idle connections in a thread."""
    if id(pool) in _checking:
        return
    _checking.add(id(pool))

    def check() -> None:
        try:
            with contextlib.suppress(Exception):  # the database still down: the next error checks again
                pool.check()
        finally:
            _checking.discard(id(pool))

    threading.Thread(target=check, name="pool-check", daemon=True).start()


def recheck_async(pool: Pool) -> None:
    """After a database error in an async server: check the pool's idle connections in a task."""
    if id(pool) in _checking:
        return
    _checking.add(id(pool))

    async def check() -> None:
        try:
            with contextlib.suppress(Exception):  # as recheck
                await pool.check()
        finally:
            _checking.discard(id(pool))

    task = asyncio.get_running_loop().create_task(check())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
