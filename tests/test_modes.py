"""Every mode of the table starts, answers correctly for both workloads, and stops."""

from __future__ import annotations

import json
import os
import urllib.request
from email.message import Message

import psutil
import psycopg
import pytest

from contract.endpoint import seeded_rates
from contract.modes import MODES
from contract.pools import opened_at_start
from lab.bench.verification import VerificationError, differences, server_report, verify
from lab.stack.procs import http_status, wait_until

from .conftest import processes_of, running


def get(url: str) -> tuple[int, Message, dict[str, object]]:
    """Status, headers (case-insensitive, as HTTP's are) and JSON body of a GET."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers, json.loads(response.read())


@pytest.mark.parametrize("workload", ["io", "cpu"])
@pytest.mark.parametrize("mode", list(MODES))
def test_mode_serves_every_seeded_pair(mode, workload, place, database):
    with running(place, database, mode=mode, workload=workload, io_seconds=0.05, primes_limit=5000, cpus=1) as app:
        server_pids = {app.proc.pid, *app.limit.pids()}
        for (source, target), rate in seeded_rates().items():
            status, headers, body = get(f"{app.url}/currency/convert?from={source.upper()}&to={target}")
            assert status == 200
            assert body == {"from": source, "to": target, "rate": rate, "workload": workload}
            assert int(headers["X-Worker-Pid"]) in server_pids | set(app.limit.pids())
            assert int(headers["X-Request-End"]) >= int(headers["X-Request-Start"])
            phase = "db" if workload == "io" else "cpu"
            assert f"{phase};dur=" in headers["Server-Timing"]
        # the request's own override of the configured workload
        other = "cpu" if workload == "io" else "io"
        assert get(f"{app.url}/currency/convert?from=usd&to=gbp&workload={other}")[2]["workload"] == other
        # the server's own report of what it runs agrees with the knobs it was started with
        report = server_report(app.url, app.knobs)
        assert differences(report, app.knobs) == []
        assert report["program"] == MODES[mode].program and report["pid"] in server_pids
        assert set(report["worker_pids"]) <= server_pids and len(report["worker_pids"]) == app.knobs.workers
        # ready with its pool whole: what the process answering /healthz opened is open in PostgreSQL
        knobs = app.knobs
        opened = opened_at_start(mode, knobs.workers, knobs.threads, report["db_pool_size"])
        assert report["db_pool_open"] == opened
        with psycopg.connect(database.url, autocommit=True) as conn:
            (held,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                                   " AND pid <> pg_backend_pid()").fetchone()  # fmt: skip
        assert held >= opened
    assert http_status(f"{app.url}/healthz", timeout=1) is None
    assert not [p for p in processes_of(place.state) if p.pid in server_pids]


def test_the_modes_that_offload_are_those_serving_the_app_that_holds_a_process_pool():
    # api.main counts primes in a process pool under CPU_OFFLOAD=process, whichever server runs it
    assert {m.name for m in MODES.values() if m.offloads_cpu} == {m.name for m in MODES.values() if "api.main:app" in m.argv}


@pytest.mark.parametrize("mode", [m for m in MODES if MODES[m].offloads_cpu])
def test_an_offloading_mode_counts_primes_in_each_workers_process_pool(mode, place, database):
    """Each worker of the server holds a pool of one process per core, and the prime counts run there:
    the server passes verification, and the pools' processes, not the workers, spend the CPU it takes."""

    def cpu_seconds(processes: list[psutil.Process]) -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in processes)

    # prime counts of about a fifth of a second each: the pools' share is many of psutil's 10 ms ticks, not a few
    with running(place, database, mode=mode, workload="cpu", primes_limit=200_000, cpus=0, cpu_offload="process") as app:
        report = server_report(app.url, app.knobs)  # every worker up, its pool started
        workers = [psutil.Process(pid) for pid in report["worker_pids"]]
        pools = [child for worker in workers for child in worker.children()]
        before = cpu_seconds(workers), cpu_seconds(pools)
        verify(app, app.knobs)
        in_workers, in_pools = cpu_seconds(workers) - before[0], cpu_seconds(pools) - before[1]
    assert report["cpu_offload"] == "process" and report["offload_processes"] == os.cpu_count()
    assert len(pools) >= app.knobs.workers * os.cpu_count()
    assert in_pools > 2 * in_workers, (in_pools, in_workers)
    assert not [p for p in processes_of(place.state) if p in pools]  # the pools stop with their server


@pytest.mark.parametrize("mode", [m for m in MODES if MODES[m].django_db])
def test_django_without_a_pool_opens_a_connection_per_request(mode, place, database):
    import psycopg

    with running(place, database, mode=mode, workload="io", io_seconds=0.01, db_pool=0) as app:
        for _ in range(3):
            assert get(f"{app.url}/currency/convert?from=usd&to=eur")[2]["rate"] == 0.86
        with psycopg.connect(database.url) as conn:
            # no connection is kept open between requests (only ours remains): a closing one leaves
            # pg_stat_activity within moments, a kept one never does
            def others() -> int:
                query = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'lab' AND pid <> pg_backend_pid()"
                return conn.execute(query).fetchone()[0]

            wait_until(lambda: others() == 0, 2)
            left = others()
    assert left == 0


def test_io_wait_happens_in_the_database(place, database):
    """The io workload's wait is a real query: PostgreSQL shows it as a pg_sleep in flight."""
    import threading

    import psycopg

    with running(place, database, mode="threaded", workload="io", io_seconds=1.5) as app:
        thread = threading.Thread(target=get, args=(f"{app.url}/currency/convert?from=usd&to=eur",))
        thread.start()
        try:
            with psycopg.connect(database.url) as conn:
                seen = False
                for _ in range(20):
                    rows = conn.execute("SELECT query FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchall()
                    if any("pg_sleep" in row[0] for row in rows):
                        seen = True
                        break
                    threading.Event().wait(0.05)
            assert seen
        finally:
            thread.join()


@pytest.mark.parametrize(
    ("started", "claimed", "named"),
    [
        ({"mode": "async", "workload": "cpu"}, {"mode": "async", "workload": "cpu", "cpu_offload": "process"}, "cpu_offload"),
        ({"mode": "gunicorn", "workers": 1}, {"mode": "gunicorn", "workers": 2}, "workers is 1 in the server, 2 in the run"),
        ({"mode": "threaded", "db_pool": 0}, {"mode": "threaded"}, "db_pool is '0' in the server, '1' in the run"),
    ],
)
def test_a_server_unlike_its_run_fails_verification_naming_the_difference(started, claimed, named, place, database,
                                                                        monkeypatch):  # fmt: skip
    from dataclasses import dataclass

    from lab.bench import verification

    from .conftest import knobs

    monkeypatch.setattr(verification, "REPORT_WAIT", 2.0)  # a count of workers that differs is waited on: not long here

    with running(place, database, io_seconds=0.01, primes_limit=1000, **started) as app:

        @dataclass
        class Claimed:  # the same server, under a record that claims another configuration
            url = app.url
            usage = app.usage

        with pytest.raises(VerificationError) as error:
            verify(Claimed(), knobs(io_seconds=0.01, primes_limit=1000, **claimed))
    assert named in str(error.value) and "does not run the run's configuration" in str(error.value)
