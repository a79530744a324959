"""`make bench` for real: the smoke experiment, a failing configuration, Ctrl-C and resume."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time

import pytest

from lab import ROOT
from lab.experiments import load
from lab.records import REQUIRED, load_records, summary_row
from lab.report.analysis import delayed_ack_floor

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench

pytestmark = pytest.mark.slow

TINY = """
description = "two modes, io and cpu, very short"
io_seconds = 0.05
primes_limit = 10_000
warmup = 0.5
run_time = 1.5
users = 3
[[matrix]]
modes = {modes}
workloads = ["io", "cpu"]
"""


def test_smoke_records_have_every_field(smoke_results):
    records = load_records(smoke_results)  # validates each record
    assert [r["config"]["id"] for r in records] == [r.id for r in load("smoke").runs]
    for record in records:
        assert record["status"] == "ok", record["reason"]
        for section, fields in REQUIRED.items():
            assert all(f in (record[section] if section else record) for f in fields)
        assert record["locust"]["requests"] > 0
        assert record["locust"]["failures"] == 0
        assert record["server"]["cpu_seconds"] > 0
        assert record["verification"]["ok"]
        assert record["machine"]["cores"] and record["machine"]["packages"]["django"]
        assert record["cpu_limit"]["method"]
        timeline = smoke_results / record["timeline"]["file"]
        rows = list(csv.DictReader(timeline.open()))
        assert len(rows) == record["timeline"]["rows"] > 0
        assert all(int(r["end_us"]) >= int(r["start_us"]) for r in rows)
    cpu = [r for r in records if r["config"]["workload"] == "cpu"]
    io = [r for r in records if r["config"]["workload"] == "io"]
    # the work really happens: cpu requests cost the server CPU time, io requests hardly any
    assert min(r["server"]["cpu_seconds_per_request"] for r in cpu) > max(r["server"]["cpu_seconds_per_request"] for r in io)


def test_the_timeline_sees_how_each_server_delivers_its_replies(smoke_results):
    """Django's runserver writes a response in several sends without TCP_NODELAY, so each reply's end
    waits for the client's delayed ACK (>= 40 ms on Linux); Uvicorn's own listener sets TCP_NODELAY."""
    floors = {r["config"]["mode"]: delayed_ack_floor(r) for r in load_records(smoke_results) if r["config"]["workload"] == "io"}
    assert floors["threaded"] is not None, floors
    assert floors["async"] is None, floors
    said = {r["config"]["mode"]: " ".join(r["warnings"]) for r in load_records(smoke_results) if r["config"]["workload"] == "io"}
    assert "TCP_NODELAY" in said["threaded"] and "TCP_NODELAY" not in said["async"]


def test_the_terminal_shows_progress_and_ends_with_which_to_pick(smoke_results):
    shown = (smoke_results.parent.parent / "bench.out").read_text()
    runs = load("smoke").runs
    assert f"[1/{len(runs)}] {runs[0].id}" in shown and "left)" in shown
    assert "bench: which to pick" in shown
    assert "For io-bound load" in shown and "For cpu-bound load" in shown


def test_summary_matches_the_records(smoke_results):
    rows = list(csv.DictReader((smoke_results / "summary.csv").open()))
    records = load_records(smoke_results)
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        expected = summary_row(record)
        assert row["id"] == expected["id"]
        assert float(row["rps"]) == pytest.approx(expected["rps"])
        assert float(row["p95_ms"]) == pytest.approx(expected["p95_ms"])
        assert float(row["outside_handler_p50_ms"]) == pytest.approx(expected["outside_handler_p50_ms"])
        assert row["status"] == expected["status"]


def test_experiment_manifest_and_latest_link(smoke_results):
    manifest = json.loads((smoke_results / "experiment.json").read_text())
    assert manifest["name"] == "smoke"
    assert len(manifest["runs"]) == len(load("smoke").runs)
    assert manifest["machine"]["git"]["revision"]


def test_a_configuration_that_cannot_start_is_recorded_and_the_experiment_goes_on(tmp_path):
    experiment = tmp_path / "broken.toml"
    experiment.write_text(TINY.format(modes='["threaded", "async"]'))
    place = make_place(tmp_path / "state", 4)
    # Django cannot start with these settings; FastAPI does not read them
    result = run_bench(place, tmp_path / "results", str(experiment), DJANGO_SETTINGS_MODULE="no.such.settings")
    assert result.returncode == 0, result.stderr
    records = {r["config"]["id"]: r for r in load_records(tmp_path / "results" / "latest")}
    assert len(records) == 4
    for run_id, record in records.items():
        if run_id.startswith("threaded"):
            assert record["status"] == "failed"
            assert "did not start" in record["reason"]
        else:
            assert record["status"] == "ok", record["reason"]
    assert "FAILED" in result.stdout
    assert not processes_of(place.state)


def test_interrupted_experiment_resumes_without_redoing_finished_runs(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY.format(modes='["nothreading", "async"]'))
    place = make_place(tmp_path / "state", 5)
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [PYTHON, "-m", "lab", "bench", str(experiment)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=lab_env(place, LAB_RESULTS=str(results)),
    )
    runs = results / "latest" / "runs"
    deadline = time.monotonic() + 120
    while len(list(runs.glob("*.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "RESUME=1" in err
    assert not processes_of(place.state)
    finished = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert 2 <= len(finished) < 4

    result = run_bench(place, results, str(experiment), "--resume")
    assert result.returncode == 0, result.stderr
    assert f"{len(finished)} already recorded" in result.stdout
    after = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert len(after) == 4
    assert all(after[name] == content for name, content in finished.items())  # nothing redone
    assert not processes_of(place.state)
