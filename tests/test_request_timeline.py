"""The timeline's statistics, and the delayed-ACK signature read from them (pure logic)."""

from __future__ import annotations

import csv

import pytest

from contract.endpoint import TIMELINE_COLUMNS
from lab.report.rows import delayed_ack_floor
from lab.results import request_timeline

from .records import run_record


def write(path, rows):
    """rows: (server ms, client ms) per request."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TIMELINE_COLUMNS)
        for i, (server_ms, client_ms) in enumerate(rows):
            start = 1_000_000 + i * 1000
            writer.writerow((7, 7, start, start + round(server_ms * 1000), 200, client_ms))
    return path


def test_outside_handler_is_client_latency_minus_server_time(tmp_path):
    path = write(tmp_path / "t.csv", [(100, 101 + i) for i in range(11)])  # 1..11 ms outside
    outside = {"p10": 2.0, "p50": 6.0, "p90": 10.0}
    assert request_timeline.summary(path, "t.csv") == request_timeline.TimelineSummary(
        "t.csv", 11, request_timeline.OutsideHandler(**outside), 1
    )
    assert request_timeline.read(path)[0] == {"pid": 7, "thread": 7, "start_us": 1_000_000, "end_us": 1_100_000, "workload": ""}


def test_no_rows_means_no_statistics(tmp_path):
    assert request_timeline.summary(write(tmp_path / "t.csv", []), "t.csv") == request_timeline.TimelineSummary(
        "t.csv", 0, None, 0
    )


@pytest.mark.parametrize(
    ("outside", "expected"),
    [
        ({"p10": 42.0, "p50": 44.0, "p90": 46.0}, 42.0),  # a steady floor at the 40 ms timer: held
        ({"p10": 1.0, "p50": 1.4, "p90": 2.5}, None),  # TCP_NODELAY on: delivery is immediate
        ({"p10": 40.0, "p50": 300.0, "p90": 900.0}, None),  # requests queueing: no steady floor
        ({"p10": 900.0, "p50": 905.0, "p90": 910.0}, None),  # a steady queue far above the timer
        ({"p10": 59.0, "p50": 60.1, "p90": 62.2}, None),  # a steady queue near it: nothreading, 4 users x 20 ms
        (None, None),  # records from before the statistic existed
    ],
)
def test_delayed_ack_signature(outside, expected):
    run = run_record(timeline={"file": "t.csv", "rows": 10, "outside_handler_ms": outside})
    assert delayed_ack_floor(run) == expected
