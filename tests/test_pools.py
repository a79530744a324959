"""How many connections each server process opens before it says it is ready (contract.pools)."""

from __future__ import annotations

import pytest

from contract.modes import MODES
from contract.pools import SERVER_CONNECTIONS, opened_at_start


@pytest.mark.parametrize(
    ("mode", "workers", "threads", "pool", "opened"),
    [
        ("nothreading", 1, 1, 100, 1),  # one request at a time
        ("threaded", 1, 1, 100, 100),  # a thread per request: as many as the pool allows
        ("async", 1, 1, 100, 100),  # one event loop holds the whole pool in flight
        ("gunicorn", 4, 1, 100, 1),  # a sync worker holds one request
        ("gthread", 2, 4, 100, 4),  # a connection per thread
        ("gthread", 2, 8, 5, 5),  # no more than the pool
        ("fastapi-sync", 1, 40, 100, 40),
        ("async-workers", 4, 1, 100, SERVER_CONNECTIONS // 4),  # four loops share PostgreSQL's connections
    ],
)
def test_each_process_opens_what_it_can_hold_in_flight(mode, workers, threads, pool, opened):
    assert opened_at_start(mode, workers, threads, pool) == opened


def test_every_process_of_every_mode_fits_in_postgresql_together():
    for name, mode in MODES.items():
        for workers in (1, 2, 8, 64):
            processes = mode.processes(workers, 4, 250)
            assert processes * opened_at_start(name, workers, 4, 250) <= SERVER_CONNECTIONS, name
