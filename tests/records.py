"""Run records made by hand for tests of pure logic: a whole record's JSON, with the parts a test sets,
read as the lab reads a record from disk."""

from __future__ import annotations

import copy

from lab.results.record import RunRecord, read_record

MACHINE = {"hostname": "test", "cores": 2, "cores_available": 2, "cpu_model": "test", "memory_gib": 1.0, "os": "test",
           "python": "3.11", "packages": {}}  # fmt: skip
LOCUST = {"requests": 100, "failures": 0, "failure_ratio": 0.0, "p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 100.0,
          "p99_ms": 120.0, "max_ms": 150.0, "rps": 10.0, "measured_seconds": 10.0, "by_workload": {}}  # fmt: skip


def whole() -> dict:
    """The JSON of an ok run: every part a record of the current schema has."""
    return copy.deepcopy({
        "schema": 2, "experiment": "test", "index": 1, "total": 1,
        "config": {"id": "async-io-cpus1-u10", "label": "async", "mode": "async", "workload": "io", "warmup": 1.0,
                   "run_time": 10.0},
        "backend": "native", "machine": MACHINE, "status": "ok", "reason": None, "started_at": "t", "finished_at": "t",
        "cpu_limit": {"cpus": 1.0, "method": "test", "enforced": True}, "model": {"in_flight": 1, "processes": 1},
        "verification": {"ok": True}, "locust": LOCUST,
        "server": {"cpu_seconds": 0.1, "cpu_seconds_per_request": 0.001, "utilisation": 0.1, "nr_throttled": 0,
                   "throttled_seconds": 0.0},
        "load_generator": {"cpu_seconds": 0.1, "processes": 1, "utilisation": 0.1},
        "timeline": None, "bounded_by_load_generator": False, "warnings": [],
        "intervals": {"rps": {"estimate": 10.0, "low": 9.0, "high": None, "n": 5}},
    })  # fmt: skip


def merged(base: dict, changes: dict) -> dict:
    """`base` with `changes` laid over it, object by object (None replaces a whole part)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_record(**changes: object) -> RunRecord:
    """An ok run's record with these parts changed (nested objects are merged, not replaced)."""
    return read_record(merged(whole(), changes))
