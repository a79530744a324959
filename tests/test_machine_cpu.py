"""The whole machine over a window, and an open-arrival run's summary (pure logic)."""

from __future__ import annotations

import json

from lab.bench.measure import open_arrivals
from lab.stack.machine_cpu import MachineCpu, window


def test_the_window_splits_the_machine_into_its_parts_and_flags_a_full_machine():
    whole = window(MachineCpu(100.0, 50.0), MachineCpu(111.8, 50.2), {"server": 6.0, "postgres": 1.0, "load_generator": 3.0})
    assert whole.cpu_seconds == 12.0 and whole.idle_share == round(0.2 / 12, 4)
    assert whole.saturated
    assert whole.parts_cpu_seconds == {"server": 6.0, "postgres": 1.0, "load_generator": 3.0, "other": 1.8}
    calm = window(MachineCpu(0.0, 0.0), MachineCpu(4.0, 8.0), {"server": 3.0, "postgres": None, "load_generator": 0.5})
    assert not calm.saturated and calm.parts_cpu_seconds["postgres"] is None and calm.parts_cpu_seconds["other"] == 0.5


def test_an_open_run_counts_latency_from_intended_starts_and_compares_the_halves(tmp_path):
    start = 1000.0
    # a queue that grows: each arrival waits longer than the one before
    latencies = [(start + i * 0.1, 50.0 + 20 * i, True) for i in range(100)]
    path = tmp_path / "open.json"
    path.write_text(json.dumps({"rate": 10, "poisson": False, "offered": 105, "sent": 100, "late": 40, "dropped": 5,
                                "unanswered": 0, "latencies": latencies}))  # fmt: skip
    summary = open_arrivals(path, start, 10.0)
    assert summary.offered_rps == 10.5 and summary.sent_rps == 10.0 and summary.dropped == 5
    assert summary.p50_ms == 50 + 20 * 49.5 and summary.failure_ratio == 0  # the median of 100, between the 50th and 51st
    assert summary.p95_second_half_ms and summary.p95_first_half_ms
    assert summary.p95_second_half_ms > 1.5 * summary.p95_first_half_ms
    assert summary.p50_second_half_ms and summary.p50_first_half_ms
    assert summary.p50_second_half_ms > 1.5 * summary.p50_first_half_ms
