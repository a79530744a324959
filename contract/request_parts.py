"""One request's latency in the parts it met, from its timeline row (contract.endpoint.TIMELINE_COLUMNS).

Stdlib only: the lab's records and report (lab/analysis/latency_parts.py, over a run's requests) and the Lab tab's
plugin in Locust (over its last seconds) split a request the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

PARTS = ("generator", "before", "pool", "db", "cpu", "inside", "after")
BETWEEN = "between"  # before and after as one part, where the client's and the server's clocks differ
NAMES = {
    "generator": "the load generator", "before": "before the handler", "pool": "waiting for a database connection",
    "db": "the database", "cpu": "CPU in the handler", "inside": "waiting inside the handler",
    "after": "after the handler", BETWEEN: "between client and server",
}  # fmt: skip


def _ms(row: Mapping[str, str | None], column: str) -> float | None:
    value = row.get(column)
    return float(value) if value else None


def request_parts(row: Mapping[str, str | None], same_clock: bool) -> tuple[dict[str, float], float] | None:
    """One timeline row's parts (ms) and the latency the client measured (ms, from the intended start), or
    None for a row without the client's stamps (an older timeline)."""
    sent, received = _ms(row, "sent_us"), _ms(row, "received_us")
    start, end, client = _ms(row, "start_us"), _ms(row, "end_us"), _ms(row, "client_ms")
    if sent is None or received is None or start is None or end is None or client is None:
        return None
    intended = _ms(row, "intended_us")
    generator = (sent - intended) / 1000 if intended is not None else 0.0
    pool, waited = _ms(row, "pool_ms") or 0.0, _ms(row, "db_ms") or 0.0
    pg = _ms(row, "pg_ms")
    db = min(pg, waited) if pg is not None else waited
    cpu = _ms(row, "own_ms") or 0.0
    handler = (end - start) / 1000
    parts = {"generator": generator, "pool": pool, "db": db, "cpu": cpu, "inside": handler - pool - db - cpu}
    if same_clock:
        parts |= {"before": (start - sent) / 1000, "after": (received - end) / 1000}
    else:  # no common clock: what the client waited beyond the handler, on its own clock
        parts[BETWEEN] = (received - sent) / 1000 - handler
    return parts, client + generator
