"""The server's own report against a run's knobs, and parity pairs across backends (pure logic)."""

from __future__ import annotations

import json
from dataclasses import asdict

from contract.endpoint import Settings, server_report
from contract.knobs import Offload, parse
from contract.serve import server_plan
from lab.bench.verification import differences as found_differences
from lab.report.parity import parity
from lab.report.rows import analyse
from lab.report.words import parity_causes
from lab.results.experiments import knobs_of
from lab.results.record import read_record

from .test_advice import record


def differences(report: dict, knobs) -> list[str]:
    """The differences in the words a record and an error keep."""
    return [str(d) for d in found_differences(report, knobs)]


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


def test_only_the_count_of_workers_is_a_difference_a_starting_server_shows():
    found = found_differences(report_of(workers=1, program="uvicorn"), parse({"MODE": "gunicorn"}))
    assert [d.key for d in found if d.starting] == ["workers"] and [d.key for d in found if not d.starting] == ["program"]


def test_an_offload_unlike_the_runs_is_named_as_json_has_it():
    knobs = parse({"MODE": "granian-asgi", "WORKLOAD": "cpu", "CPU_OFFLOAD": "process"})
    report = report_of(mode="granian-asgi", program="granian", threads=None, workload="cpu")
    assert differences(report, knobs) == [
        "cpu_offload is 'none' in the server, 'process' in the run",
        "the server has no process to offload the prime count to",
    ]
    unknown = differences({**report, "cpu_offload": "Process", "offload_processes": 2}, knobs)
    assert unknown == ["cpu_offload is 'Process' in the server, 'process' in the run"]


def test_cpu_offload_is_one_enum_from_the_knobs_to_the_servers_report_and_its_string_in_json(monkeypatch):
    """Resolved once by the knobs; a server reads it back from its environment as the same enum; the
    report and the record hold its value, and a record's config reads back as the enum."""
    knobs = parse({"MODE": "granian-asgi", "WORKLOAD": "cpu", "CPU_OFFLOAD": "process"})
    assert knobs.cpu_offload is Offload.PROCESS
    for name, value in server_plan(knobs, host="127.0.0.1", port=8000, base_env={}).env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgresql://lab@127.0.0.1/lab")
    settings = Settings.from_environ()
    assert settings.cpu_offload is Offload.PROCESS
    report = json.loads(json.dumps(server_report(settings, pool=None, offload=settings.cpu_offload)))
    assert report["cpu_offload"] == "process"
    config = json.loads(json.dumps(asdict(knobs)))
    assert config["cpu_offload"] == "process" and knobs_of(config).cpu_offload is Offload.PROCESS
    assert knobs_of({"mode": "async"}).cpu_offload is Offload.NONE  # a record older than the knob


def test_parity_pairs_the_same_configuration_and_names_a_gap_with_its_cause():
    def on(backend: str, rps: float, cpu_ms: float) -> dict:
        rec = record("gunicorn", "cpu", rps, cpu_ms=cpu_ms)
        rec["config"]["backend"] = backend
        rec["locust"]["measured_seconds"] = 6.0
        return rec

    (pair,) = parity([analyse(read_record(on("native", 80, 20))), analyse(read_record(on("compose", 60, 27)))])
    assert pair.rps_ratio == 0.75 and pair.p95_ratio == 1.0
    assert "CPU per request was 20.0 ms native, 27.0 ms in its container" in parity_causes(pair)
    (level,) = parity([analyse(read_record(on("native", 80, 20))), analyse(read_record(on("compose", 78, 20)))])
    assert parity_causes(level) == ""


def test_a_parity_gap_names_different_interpreter_builds_first_and_only_where_the_servers_report_them():
    def on(backend: str, rps: float, cpu_ms: float, prefix: str, loop_s: float) -> dict:
        rec = record("gunicorn", "cpu", rps, cpu_ms=cpu_ms)
        rec["config"]["backend"] = backend
        rec["locust"]["measured_seconds"] = 6.0
        built = {"implementation": "CPython", "version": "3.11.2", "compiler": "GCC 12.2.0", "prefix": prefix}
        rec["verification"] = {"ok": True, "server": {"interpreter": built}}
        rec["machine"]["interpreter"] = {"start": {"build": built, "speed": {"cpu_seconds": loop_s}}}
        return rec

    native, compose = on("native", 61, 19, "/root/.pyenv/versions/3.11.7", 0.23), on("compose", 72, 16, "/usr", 0.19)
    (pair,) = parity([analyse(read_record(native)), analyse(read_record(compose))])
    said = parity_causes(pair)
    assert said.startswith("the servers ran on different Pythons: CPython 3.11.2 GCC 12.2.0 /root/.pyenv/versions/3.11.7 "
                           "natively, CPython 3.11.2 GCC 12.2.0 /usr in its container (the same fixed loop took 0.230 s "
                           "and 0.190 s of CPU)"), said  # fmt: skip
    same = on("compose", 72, 16, "/root/.pyenv/versions/3.11.7", 0.23)
    (pair,) = parity([analyse(read_record(native)), analyse(read_record(same))])
    assert "different Pythons" not in parity_causes(pair)  # the same build: not a cause
