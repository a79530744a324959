"""Where a request's time went: the parts of its latency from the client's and the server's stamps (pure logic),
and on real runs, that they add up to the latency the client measured."""

from __future__ import annotations

import json

import pytest

from contract.request_parts import BETWEEN, PARTS, request_parts
from lab.analysis import latency_parts
from lab.analysis.latency_parts import LatencyParts, Part, grew, summarise

SENT = 1_000_000_000  # µs


def row(*, intended: float | None = None, before: float = 1.0, pool: float = 0.0, db: float = 0.0,
        pg: float | None = None, own: float | None = None, handler: float = 10.0, after: float = 1.0,
        client: float | None = None) -> dict[str, str]:  # fmt: skip
    """A timeline row (ms figures), sent at SENT: the server starts `before` later, ends `handler` after that, and the
    client holds the answer `after` later; Locust measured `client` (by default exactly that)."""
    start = SENT + before * 1000
    end = start + handler * 1000
    received = end + after * 1000
    measured = (received - SENT) / 1000 if client is None else client
    return {
        "start_us": str(int(start)), "end_us": str(int(end)), "client_ms": f"{measured:.3f}", "sent_us": str(SENT),
        "received_us": str(int(received)), "intended_us": "" if intended is None else str(int(SENT - intended * 1000)),
        "pool_ms": f"{pool}", "db_ms": f"{db}", "pg_ms": "" if pg is None else f"{pg}", "own_ms": "" if own is None else f"{own}",
    }  # fmt: skip


def test_one_requests_parts_add_up_to_its_latency_from_the_intended_start():
    parts, latency = request_parts(row(intended=2.0, before=3.0, pool=0.5, db=52.0, pg=50.0, own=1.5, handler=60.0,
                                       after=0.8), same_clock=True)  # fmt: skip
    assert latency == pytest.approx(2.0 + 3.0 + 60.0 + 0.8)
    # the database as PostgreSQL ran it; the rest of the handler's wait for it is waiting inside the handler
    assert parts == pytest.approx({"generator": 2.0, "before": 3.0, "pool": 0.5, "db": 50.0, "cpu": 1.5,
                                   "inside": 60.0 - 0.5 - 50.0 - 1.5, "after": 0.8})  # fmt: skip
    assert sum(parts.values()) == pytest.approx(latency)


def test_without_a_common_clock_before_and_after_are_one_part_measured_on_the_clients_clock():
    parts, latency = request_parts(row(before=3.0, handler=10.0, after=2.0), same_clock=False)
    assert set(parts) == {"generator", "pool", "db", "cpu", "inside", BETWEEN}
    assert parts[BETWEEN] == pytest.approx(5.0) and sum(parts.values()) == pytest.approx(latency)


def test_a_row_without_the_clients_stamps_has_no_parts():
    old = row()
    del old["sent_us"]
    assert request_parts(old, True) is None and summarise([old]) is None


def test_a_runs_parts_give_each_ones_mean_p95_share_and_what_the_client_measured_beyond_them():
    rows = [row(db=float(d), pg=float(d), handler=float(d) + 1, client=float(d) + 3.1) for d in range(50, 150)]
    parts = summarise(rows)
    assert parts is not None and parts.requests == 100 and list(parts.parts) == list(PARTS)
    assert parts.parts["db"].mean_ms == pytest.approx(99.5) and parts.parts["db"].p95_ms == pytest.approx(144.05)
    assert parts.parts["before"].share == pytest.approx(1 / 102.5, abs=1e-4)
    assert parts.unaccounted_ms == pytest.approx(0.1) and parts.unaccounted_share == pytest.approx(0.1 / 102.6, abs=1e-4)


def test_the_part_that_grew_is_the_one_whose_mean_rose_most():
    def of(**means: float) -> LatencyParts:
        parts = {name: Part(means.get(name, 0.0), means.get(name, 0.0), 0.0) for name in PARTS}
        return LatencyParts(100, sum(means.values()), 0.0, parts, 0.0, True)

    growth = grew(of(before=0.4, db=100.0), of(before=160.0, db=101.0))
    assert growth and (growth.part, growth.low_ms, growth.high_ms) == ("before", 0.4, 160.0)
    assert growth.name == "before the handler"
    assert grew(of(db=100.0), of(db=99.0)) is None


@pytest.mark.slow
def test_every_smoke_run_splits_its_requests_into_parts_that_add_up_to_the_clients_latency(smoke_results):
    """Real servers in every mode of the post, io, cpu and a mix: the parts' sum is within 2% of the latency
    Locust measured, the io requests' database part is their wait in PostgreSQL, and the cpu requests spend CPU."""
    for path in sorted((smoke_results / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        parts = record["timeline"]["parts"]
        assert parts and parts["requests"] >= 10, path.name
        assert abs(parts["unaccounted_ms"]) <= 0.02 * parts["latency_mean_ms"], (path.name, parts)
        means = {name: part["mean_ms"] for name, part in parts["parts"].items()}
        assert sum(means.values()) + parts["unaccounted_ms"] == pytest.approx(parts["latency_mean_ms"], abs=0.01)
        workload, io_ms = record["config"]["workload"], record["config"]["io_seconds"] * 1000
        if workload == "io":
            assert io_ms <= means["db"] < io_ms + 20, (path.name, means)
        if workload == "cpu":
            assert means["cpu"] > 0.5 and means["db"] < 5, (path.name, means)
        assert latency_parts.describe(latency_parts.read(smoke_results / record["timeline"]["file"]) or parts)
