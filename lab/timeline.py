"""The per-request timeline a run records: one CSV row per measured request, with the server's own
start and end (from the where-and-when headers) and the latency the client saw.

The difference between the two is the time a request spent outside its handler: queueing before
it, and delivery after it. Its steady floor says things the totals cannot (see `summary` and `delayed_ack`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

# Linux delays an ACK by at least 40 ms (TCP_DELACK_MIN). A reply held back by Nagle's algorithm until
# that ACK arrives pays it every time: a steady floor of time outside the handler, seen here at 41-47 ms.
# The window is narrow on purpose: a steady queue (one worker, a few users) can also sit near 60 ms.
DELAYED_ACK_MS = (38.0, 50.0)
STEADY_MS = 10.0
# What the signature means, in the words the bench, the run notes and the conclusions share.
DELAYED_ACK_CAUSE = "Nagle's algorithm meeting delayed ACKs (the server leaves TCP_NODELAY off)"
SERVER_FIELDS = ("pid", "thread", "start_us", "end_us")


def read(path: Path) -> list[dict[str, Any]]:
    """The server side of each request: pid, thread, start and end in microseconds, and its kind (io, cpu)."""
    with path.open(newline="") as f:
        return [
            {**{k: int(float(row[k])) for k in SERVER_FIELDS}, "workload": row.get("workload") or ""} for row in csv.DictReader(f)
        ]


def summary(path: Path) -> dict[str, Any]:
    """What a record keeps of its timeline: how many requests it holds, percentiles (p10, p50, p90) of
    client latency minus server handler time, in ms (None without data), and how many server
    processes served requests."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    gaps = sorted(
        float(row["client_ms"]) - (int(row["end_us"]) - int(row["start_us"])) / 1000 for row in rows if row.get("client_ms")
    )
    return {
        "rows": len(rows),
        "outside_handler_ms": {f"p{p}": round(gaps[round(p / 100 * (len(gaps) - 1))], 2) for p in (10, 50, 90)} if gaps else None,
        "processes_seen": len({row["pid"] for row in rows}),
    }


def delayed_ack(summary: dict[str, Any]) -> float | None:
    """From a record's timeline summary: the floor of time outside the handler when it has the
    delayed-ACK signature (the server leaves Nagle's algorithm on), else None."""
    outside = summary.get("outside_handler_ms")
    if not outside:
        return None
    low, high = DELAYED_ACK_MS
    floor = outside["p10"]
    return floor if low <= floor <= high and outside["p50"] - floor <= STEADY_MS else None
