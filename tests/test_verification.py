"""The server's own report against a run's knobs, and parity pairs across backends (pure logic)."""

from __future__ import annotations

from contract.knobs import parse
from lab.bench.verification import differences
from lab.report.analysis import analyse, parity

from .test_advice import record


def report_of(**changes: object) -> dict:
    """What a gunicorn 2x1 server with the default pool reports of itself, with `changes`."""
    report = {"mode": "gunicorn", "program": "gunicorn", "workload": "io", "io_seconds": 5.0, "primes_limit": 1000000,
              "workers": 2, "threads": 1, "db_pool": "1", "db_pool_size": 100, "cpu_offload": "none",
              "offload_processes": 0}  # fmt: skip
    return {**report, **changes}


def test_a_server_that_runs_its_knobs_shows_no_difference():
    assert differences(report_of(), parse({"MODE": "gunicorn"})) == []


def test_each_difference_is_named_with_both_values():
    found = differences(report_of(workers=1, program="uvicorn", db_pool="0"), parse({"MODE": "gunicorn"}))
    assert "workers is 1 in the server, 2 in the run" in found
    assert "program is 'uvicorn' in the server, 'gunicorn' in the run" in found
    assert "db_pool is '0' in the server, '1' in the run" in found


def test_an_offload_without_processes_is_a_difference():
    report = report_of(mode="async", program="uvicorn", workers=1, threads=None, cpu_offload="process")
    knobs = parse({"MODE": "async", "WORKLOAD": "cpu", "CPU_OFFLOAD": "process"})
    assert differences({**report, "workload": "cpu"}, knobs) == ["the server has no process to offload the prime count to"]


def test_parity_pairs_the_same_configuration_and_names_a_gap_with_its_cause():
    def on(backend: str, rps: float, cpu_ms: float) -> dict:
        rec = record("gunicorn", "cpu", rps, cpu_ms=cpu_ms)
        rec["config"]["backend"] = backend
        rec["locust"]["measured_seconds"] = 6.0
        return rec

    (pair,) = parity([analyse(on("native", 80, 20)), analyse(on("compose", 60, 27))])
    assert pair["rps_ratio"] == 0.75 and pair["p95_ratio"] == 1.0
    assert "CPU per request was 20.0 ms native, 27.0 ms in its container" in pair["cause"]
    (level,) = parity([analyse(on("native", 80, 20)), analyse(on("compose", 78, 20))])
    assert level["cause"] == ""
