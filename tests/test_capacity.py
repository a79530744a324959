"""Capacity: the search's pure logic, and a real search with open arrivals over a real server."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from lab import ROOT
from lab.bench.capacity import judge_step, next_rate
from lab.experiments import load
from lab.records import load_records

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench


def test_the_search_grows_from_the_model_then_halves_the_gap_and_stops_when_close():
    assert next_rate([(2.0, True)], model_rate=20.0) == 10.0  # half the model's saturation
    assert next_rate([(2.0, True), (10.0, True)], 20.0) == 13.0  # grow by 30% while the target holds
    assert next_rate([(2.0, True), (10.0, True), (13.0, False)], 20.0) == 11.5  # then bisect
    assert next_rate([(2.0, True), (10.0, True), (10.4, False)], 20.0) is None  # within 5%: done
    assert next_rate([(2.0, False)], None) == 1.0  # even the first rate broke: lower


def step(p95: float, sent: int = 100, offered: int = 100, failures: float = 0.0, **extra: object) -> dict:
    arrivals = {"p95_ms": p95, "sent": sent, "offered": offered, "failure_ratio": failures}
    return {"status": "ok", "reason": None, "locust": {"open": arrivals}, **extra}


def test_a_step_holds_only_within_the_target_with_what_was_offered_sent_and_few_failures():
    assert judge_step(step(250), 300)[0]
    assert judge_step(step(350), 300) == (False, "p95 350 ms over the target of 300 ms")
    assert "sent 80 of 100 arrivals offered" in judge_step(step(100, sent=80), 300)[1]
    assert "failed" in judge_step(step(100, failures=0.02), 300)[1]
    assert "bounded" in judge_step(step(100, bounded_by_machine=True), 300)[1]


def test_the_shipped_capacity_experiment_covers_every_mode_io_cpu_and_mix_at_one_and_two_cpus():
    experiment = load("capacity")
    assert {(r.workload, r.cpus) for r in experiment.runs} == {(w, c) for w in ("io", "cpu", "mix") for c in (1, 2)}
    assert experiment.source["slo_p95_ms"] == 300


@pytest.mark.slow
def test_a_capacity_search_finds_the_rate_held_at_the_target_and_records_every_step(tmp_path):
    place = make_place(tmp_path / "state", 9)
    env = lab_env(place, LAB_RESULTS=str(tmp_path / "results"), MODE="nothreading", WORKLOAD="io", IO_SECONDS="0.05",
                  SLO_P95_MS="250")  # fmt: skip
    result = subprocess.run([PYTHON, "-m", "lab", "capacity", "--steps", "5"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "at most" in result.stdout.splitlines()[0]  # the budget, stated before it starts
    folder = next((tmp_path / "results").glob("capacity-*"))
    (found,) = json.loads((folder / "capacity.json").read_text())
    # one request at a time, 50 ms each: the model saturates near 20/s, and the search lands near it
    assert found["model_saturation_rps"] == pytest.approx(20, rel=0.2)
    assert found["capacity_rps"] and 0.4 < found["ratio"] <= 1.1, found
    records = load_records(folder)
    assert len(records) == found["steps"] <= 5
    for record in records:
        arrivals = record["locust"]["open"]
        assert {"offered_rps", "sent_rps", "late", "dropped", "p95_ms"} <= set(arrivals)
        assert record["capacity_step"]["slo_p95_ms"] == 250
    report = subprocess.run([PYTHON, "-m", "lab", "report", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    md = (folder / "report.md").read_text()
    assert "## Capacity at a latency target" in md and "by capacity pick" not in md  # nothreading is never advised
    assert (folder / "chart-capacity.png").stat().st_size > 10_000
    assert not processes_of(place.state)


OVERLOAD = """
io_seconds = 0.05
warmup = {warmup}
run_time = 6
{arrivals}
[[matrix]]
modes = "gunicorn"
workers = 1
workloads = "io"
users = {users}
"""


@pytest.mark.slow
def test_past_capacity_open_arrivals_show_the_queue_growing_where_a_closed_loop_does_not(tmp_path):
    """One sync Gunicorn worker serves under 20 requests/s (each waits 50 ms in the database); 30
    arrivals/s pile up, so latency grows over the run, while the same number of users in a closed
    loop (measured after one full turn of its users) only wait their turn, as steadily at the end as
    at the start."""
    place = make_place(tmp_path / "state", 10)
    results = {}
    users = 70  # what an open run at 30/s brings (RunConfig.open_users)
    for kind, arrivals, warmup in (("open", "arrival_rate = 30", 0.5), ("closed", "", 4)):
        experiment = tmp_path / f"{kind}.toml"
        experiment.write_text(OVERLOAD.format(arrivals=arrivals, users=users, warmup=warmup))
        result = run_bench(place, tmp_path / kind, str(experiment))
        assert result.returncode == 0, result.stdout + result.stderr
        (results[kind],) = load_records(tmp_path / kind / "latest")
    arrivals = results["open"]["locust"]["open"]
    assert arrivals["p50_second_half_ms"] > 1.5 * arrivals["p50_first_half_ms"], arrivals
    closed = results["closed"]
    with (tmp_path / "closed" / "latest" / closed["timeline"]["file"]).open() as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["start_us"]))
    half = len(rows) // 2
    first, second = ([float(r["client_ms"]) for r in part] for part in (rows[:half], rows[half:]))
    assert max(second) < 1.5 * max(first)  # a closed loop's latency stays level: the users wait, not the queue
