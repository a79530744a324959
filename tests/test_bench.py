"""`make bench` for real: the smoke experiment, a failing configuration, Ctrl-C and resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lab.report.rows import delayed_ack_floor
from lab.results.experiments import load
from lab.results.record import read_record, record_json
from lab.results.run_files import load_records, read_records, summary_row
from lab.stack.checkout import ROOT

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench
from .records import merged, run_record

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
        written = record_json(read_record(record))
        assert merged(written, record) == written  # the typed record holds every key and value on disk
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
    floors = {r.config.knobs.mode: delayed_ack_floor(r) for r in read_records(smoke_results) if r.config.knobs.workload == "io"}
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
    records = read_records(smoke_results)
    assert len(rows) == len(records)
    for row, run in zip(rows, records, strict=True):
        expected = summary_row(run)
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


def test_a_mix_keeps_io_and_cpu_requests_apart_in_records_summary_and_timeline(smoke_results):
    records = [r for r in load_records(smoke_results) if r["config"]["workload"] == "mix"]
    assert records
    rows = {row["id"]: row for row in csv.DictReader((smoke_results / "summary.csv").open())}
    for record in records:
        kinds = record["locust"]["by_workload"]
        assert set(kinds) == {"io", "cpu"}
        assert kinds["io"]["requests"] + kinds["cpu"]["requests"] == record["locust"]["requests"]
        share = kinds["cpu"]["requests"] / record["locust"]["requests"]
        assert 0.02 < share < 0.3, share  # MIX_CPU_SHARE is 0.1: Locust chose each request's kind
        row = rows[record["config"]["id"]]
        for kind in ("io", "cpu"):
            assert float(row[f"{kind}_p95_ms"]) == kinds[kind]["p95_ms"] and int(row[f"{kind}_requests"]) > 0
        timeline = list(csv.DictReader((smoke_results / record["timeline"]["file"]).open()))
        assert {r["workload"] for r in timeline} == {"io", "cpu"}
    pure = [r for r in load_records(smoke_results) if r["config"]["workload"] != "mix"]
    assert all(set(r["locust"]["by_workload"]) == {r["config"]["workload"]} for r in pure)


def test_every_record_keeps_the_machine_and_its_parts(smoke_results):
    postgres = 0.0
    for record in load_records(smoke_results):
        whole = record["machine_cpu"]
        parts = whole["parts_cpu_seconds"]
        assert whole["cpu_seconds"] > 0 and 0 <= whole["idle_share"] <= 1
        assert parts["server"] > 0 and parts["load_generator"] > 0 and parts["postgres"] >= 0 and parts["other"] >= 0
        assert record["verification"]["server"]["mode"] == record["config"]["mode"]
        postgres += parts["postgres"]
    # a few seconds of short queries over connections opened before the window can take PostgreSQL under one
    # clock tick of CPU (10 ms) in a run: counted over the whole experiment, it is there
    assert postgres > 0


def test_an_offload_run_at_two_cpus_uses_more_than_one_core_or_says_the_machine_bound_it(tmp_path):
    experiment = tmp_path / "offload.toml"
    experiment.write_text(
        "primes_limit = 60_000\nwarmup = 1\nrun_time = 4\nusers = 4\ncpus = 2\n"
        '[[matrix]]\nmodes = "async"\nworkloads = "cpu"\ncpu_offload = "process"\n'
    )
    place = make_place(tmp_path / "state", 6)
    result = run_bench(place, tmp_path / "results", str(experiment))
    assert result.returncode == 0, result.stderr
    (record,) = load_records(tmp_path / "results" / "latest")
    assert record["status"] == "ok", record["reason"]
    assert record["verification"]["server"]["cpu_offload"] == "process"
    assert record["verification"]["server"]["offload_processes"] >= 2
    # One event loop alone uses at most one core: offloaded, the server uses more than one, or, where other work
    # on the machine left it no room (CI's neighbours, a developer's build), the record says the machine bound it.
    used, kinds = record["server"]["utilisation"], [f["kind"] for f in record["findings"]]
    assert used > 1.0 or "machine_saturated" in kinds, (record["server"], record["machine_cpu"])
    assert not processes_of(place.state)


@contextmanager
def neighbours_on_every_core() -> Iterator[None]:
    """A busy loop per core, at the priority of the lab's own processes: the machine has no idle time left whatever
    its speed, and the server gets clearly less CPU than it could use, as beside a noisy neighbour."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def test_a_fast_server_on_a_full_machine_is_flagged_as_bounded_by_the_machine(tmp_path):
    experiment = tmp_path / "fast.toml"
    experiment.write_text(  # two workers could use both cores: beside the neighbours they get about one
        "io_seconds = 0\nwarmup = 1\nrun_time = 4\nusers = 40\ncpus = 0\nworkers = 2\n"
        '[[matrix]]\nmodes = "granian-asgi"\nworkloads = "io"\n'
    )
    place = make_place(tmp_path / "state", 7)
    with neighbours_on_every_core():  # the machine full whatever its speed, not by the run's own load alone
        result = run_bench(place, tmp_path / "results", str(experiment), "--calibrate")
    assert result.returncode == 0, result.stderr
    (record,) = load_records(tmp_path / "results" / "latest")
    assert record["machine_cpu"]["saturated"], record["machine_cpu"]
    assert record["bounded_by_machine"] and "bounded by the machine, not the server" in result.stdout
    calibration = record["calibration"]
    if shutil.which("wrk"):  # the same endpoint and connections, driven by wrk: Locust's share of it is recorded
        assert calibration["rps"] > 0 and calibration["locust_ratio"] == pytest.approx(
            record["locust"]["rps"] / calibration["rps"], rel=0.01
        )
    else:
        assert "wrk is not installed" in calibration["skipped"]
    assert not processes_of(place.state)


@pytest.mark.parametrize(("server_cpu", "bounded"), [(1.95, False), (1.2, True)])
def test_a_full_machine_bounds_a_run_only_where_the_server_got_less_than_it_could_use(server_cpu, bounded):
    """At CPUS=2 on two cores a cpu-bound server fills the machine itself: that is its own limit."""
    from lab.bench.checks import findings, word
    from lab.results.experiments import expand

    (config,) = expand("t", {"matrix": [{"modes": "gunicorn", "workloads": "cpu", "cpus": 2}]}).runs
    parts = {"server": server_cpu * 10, "postgres": 0.1, "load_generator": 2 - server_cpu * 10 + 17.8, "other": 0.0}
    result = run_record(
        timeline=None,
        load_generator={"utilisation": 0.2, "locust_warned_cpu": False},
        server={"utilisation": server_cpu},
        machine_cpu={
            "cores": 2,
            "busy_cpu_seconds": 19.8,
            "saturated": True,
            "idle_share": 0.01,
            "cpu_seconds": 20.0,
            "parts_cpu_seconds": parts,
        },
    ).measured
    assert result is not None
    found = findings(config, result, processes=2)
    assert [f.kind for f in found] == (["machine_saturated"] if bounded else [])
    assert any("bounded by the machine" in word(f) for f in found) is bounded


def test_the_servers_own_report_of_its_cpu_agrees_with_the_cgroup(smoke_results):
    """The same stretch read two ways: the cgroup the lab reads here, and the server's process tree as the
    server itself reports it (what the lab has where it cannot read the server's cgroup). /proc counts
    each process's user and system time in ticks of 10 ms, each reading truncated: over two readings
    the tree's figure is short by up to 2 x 2 ticks per process. Beyond that the two agree within 5%."""
    for record in load_records(smoke_results):
        readings = record["server_cpu_readings"]
        processes = record["verification"]["server"]["workers"] + 1  # the workers and their master
        gap = abs(readings["server_seconds"] - readings["cgroup_seconds"])
        assert gap <= 0.05 * readings["cgroup_seconds"] + 0.04 * processes, (record["config"]["id"], readings)


def test_the_interpreter_is_part_of_every_run_and_its_speed_is_taken_at_both_ends(smoke_results):
    for record in load_records(smoke_results):
        built = record["verification"]["server"]["interpreter"]  # from the server itself
        assert built["implementation"] and built["version"] and built["compiler"]
        assert record["machine"]["interpreter"]["start"]["speed"]["cpu_seconds"] > 0
    speeds = json.loads((smoke_results / "interpreter.json").read_text())["native"]
    assert speeds["start"]["build"] == speeds["end"]["build"]
    assert 0 < speeds["start"]["speed"]["cpu_seconds"] < 10 and 0 < speeds["end"]["speed"]["cpu_seconds"] < 10
    shown = (smoke_results.parent.parent / "bench.out").read_text()
    assert f"bench: the native servers run on CPython {speeds['start']['build']['version']}" in shown
