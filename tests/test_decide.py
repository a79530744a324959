"""Deciding how to serve an app: the candidates the model chooses, the pick on capacity ranges, what would
change it, the report's words; and one real decision of an example app, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from contract.endpoint import TIMELINE_COLUMNS
from contract.knobs import parse
from contract.modes import MODES
from contract.serve import app_summary
from lab.analysis.model.deploy import (
    OVERTAKES,
    Budget,
    Candidate,
    Demand,
    PathDemand,
    bound,
    candidates,
    crossing,
    mean_demand,
    needed_in_flight,
)
from lab.analysis.timespan import duration
from lab.bench import decide as decide_module
from lab.bench.capacity.rates import Range
from lab.bench.decide import figures, how_many, steps_within
from lab.bench.run import Entry
from lab.report import deploy_words
from lab.report.build import build
from lab.report.deploy import deploy
from lab.results import folder as results_folder
from lab.results.decision import Decision, PathFigures, Tried, read_decision, read_paths, write_decision, write_paths
from lab.results.experiments import RunConfig
from lab.results.record import CapacityFound, Configuration, RunRecord, read_record
from lab.results.run_files import write_record
from lab.results.typedjson import read, write
from lab.stack.checkout import ROOT
from lab.stack.machine import Machine
from lab.stack.procs import LabError

from .conftest import PYTHON, lab_env, make_place, processes_of
from .records import merged, run_record, whole
from .test_compose_engine import engine_answers, leftovers

NO_ENGINE = "NO DOCKER ENGINE ANSWERS: the compose decision did not run (`make engine`)"
APPS = ROOT / "examples" / "apps"
WAITS = Demand(d_cpu_s=0.002, wait_s=0.050, rss_mb=40.0)  # a JSON API waiting on a slow call
COMPUTES = Demand(d_cpu_s=0.020, wait_s=0.001, rss_mb=40.0)  # server-side rendering


def test_the_demand_is_the_mean_of_the_paths_by_weight():
    found = mean_demand([PathDemand("/a", 3, 0.002, 0.020, 30.0), PathDemand("/b", 1, 0.010, 0.0, 45.0)])
    assert found.d_cpu_s == pytest.approx((3 * 0.002 + 0.010) / 4) and found.wait_s == pytest.approx(3 * 0.020 / 4)
    assert found.rss_mb == 45.0 and 0 < found.wait_share < 1


def test_a_wait_heavy_wsgi_app_gets_threads_enough_for_the_requests_in_flight_its_cpus_need():
    budget = Budget(cpus=1, cores=2)
    choice = candidates("wsgi", WAITS, budget)
    needed = needed_in_flight(WAITS, budget)
    assert 1 <= len(choice.tried) <= 4 and not any(MODES[c.mode].development for c in choice.tried)
    best = choice.tried[0]
    assert best.threads * best.workers >= needed and best.reason in ("threads", "rust")
    assert any(c.mode == "gunicorn" and c.workers == 1 and c.reason == "cpu" for c in choice.tried)
    # best model saturation first
    rates = [bound(c, "wsgi", WAITS, budget).throughput for c in choice.tried]
    assert rates == sorted(rates, reverse=True)


def test_a_cpu_heavy_wsgi_app_gets_a_process_per_cpu():
    budget = Budget(cpus=2, cores=2)
    choice = candidates("wsgi", COMPUTES, budget)
    assert any(c.mode == "gunicorn" and c.workers == 2 and c.threads == 1 for c in choice.tried)
    assert all(c.processes() >= 2 for c in choice.tried)  # none leaves a CPU of the budget idle
    assert all(bound(c, "wsgi", COMPUTES, budget).binding == "cpu" or c.reason == "cpu" for c in choice.tried)


def test_an_asgi_app_gets_event_loops_and_a_second_loop_only_with_a_second_cpu():
    one = candidates("asgi", COMPUTES, Budget(cpus=1, cores=2))
    assert {c.mode for c in one.tried} == {"async", "granian-asgi", "gunicorn"}
    assert [n.why for n in one.not_tried if n.candidate.mode == "async-workers"] == ["no_more_cpu"]
    two = candidates("asgi", COMPUTES, Budget(cpus=2, cores=2))
    assert any(c.mode == "async-workers" and c.workers == 2 for c in two.tried)


def test_a_memory_budget_caps_the_processes_and_rules_out_what_does_not_fit():
    roomy = candidates("wsgi", WAITS, Budget(cpus=1, cores=2))
    processes = [c for c in roomy.tried if c.reason == "processes"]
    assert processes and processes[0].workers * (WAITS.rss_mb or 0) > 100
    capped = candidates("wsgi", WAITS, Budget(cpus=1, cores=2, memory_mb=100))
    assert all((c.memory_mb(WAITS) or 0) <= 100 for c in capped.tried)
    assert any(c.reason == "processes" and c.workers == 2 for c in capped.tried)
    none = candidates("wsgi", WAITS, Budget(cpus=1, cores=2, memory_mb=10))
    assert not none.tried and {n.why for n in none.not_tried} >= {"memory"}


def tried(c: Candidate, low: float | None, high: float | None, estimate: float | None = None) -> Tried:
    return Tried(candidate=c, users=4, closed_rps=None, closed_rps_low=None, closed_rps_high=None, closed_p95_ms=None,
                 failed="not run", capacity=str(Range(low, high)), capacity_low_rps=low, capacity_high_rps=high,
                 capacity_estimate_rps=estimate, lower_bound_only=high is None, steps=3, seconds=60.0)  # fmt: skip


def decision(*found: Tried, memory_mb: float | None = None, took_s: float = 300.0) -> Decision:
    return Decision(app="shop:app", interface="wsgi", demand=WAITS, budget=Budget(1, 2, memory_mb), slo_p95_ms=500,
                    time_budget_s=1200, steps=4, tried=list(found), not_tried=[], took_s=took_s)  # fmt: skip


GTHREAD = Candidate("gthread", 1, 26, "threads", 26.0)
PROCESSES = Candidate("gunicorn", 4, 1, "processes", 26.0)
ONE = Candidate("gunicorn", 1, 1, "cpu", 26.0)


def test_ranges_that_overlap_are_level_and_then_fewer_processes_win():
    d = deploy(decision(tried(PROCESSES, 45, 55), tried(GTHREAD, 40, 50), tried(ONE, 10, 12)))
    assert d.pick and d.pick.label == GTHREAD.label  # less load by its middle, level by its range
    assert d.runner_up and d.runner_up.label == PROCESSES.label and d.level_with == [PROCESSES.label]


def test_ranges_apart_pick_the_one_that_holds_more_whatever_its_processes():
    d = deploy(decision(tried(PROCESSES, 60, 70), tried(GTHREAD, 40, 45)))
    assert d.pick and d.pick.label == PROCESSES.label and d.level_with == []


def test_development_servers_and_configurations_over_memory_are_never_picked():
    runserver = Candidate("threaded", 1, 1, "threads", 26.0)
    d = deploy(decision(tried(runserver, 100, 120), tried(PROCESSES, 60, 70), tried(GTHREAD, 40, 45), memory_mb=100))
    assert d.pick and d.pick.label == GTHREAD.label  # 4 workers x 40 MB is over 100 MB
    assert {(x.label, x.why) for x in d.left_out} == {(runserver.label, "development"), (PROCESSES.label, "memory")}


def test_an_asgi_app_under_gunicorn_holds_an_event_loop_of_requests_per_worker_not_one(monkeypatch: pytest.MonkeyPatch):
    gunicorn = parse({"MODE": "gunicorn", "WORKERS": "2"})
    assert gunicorn.capacity(100) == (2, 2)  # the currency app's sync workers: one request each
    monkeypatch.setenv("APP", "catalog:app")
    monkeypatch.setenv("APP_INTERFACE", "asgi")
    assert gunicorn.capacity(100) == (200, 2)  # as many as async-workers holds with two processes
    assert gunicorn.capacity(100)[0] == parse({"MODE": "async-workers", "WORKERS": "2"}).capacity(100)[0]


def test_an_asgi_app_under_gunicorn_is_named_by_uvicorn_s_worker_and_the_report_by_its_servers():
    asgi = [c for c in candidates("asgi", COMPUTES, Budget(1, 2)).tried if c.mode == "gunicorn"]
    assert [c.label for c in asgi] == ["gunicorn+uvicorn ×1"] and ONE.label == "gunicorn 1×1"
    assert "Uvicorn's worker" in app_summary("gunicorn", "asgi") and "Django" not in app_summary("gunicorn", "wsgi")
    assert app_summary("threaded", "wsgi") == MODES["threaded"].summary  # a mode that cannot serve an app keeps its own


def test_every_candidate_level_with_the_pick_is_named_not_the_runner_up_alone():
    d = deploy(decision(tried(PROCESSES, 45, 55), tried(GTHREAD, 40, 50), tried(ONE, 48, 52)))
    said = deploy_words.runner_up(d)
    assert d.pick and len(d.level_with) == 2 and "level with the pick" in said
    assert all(f"`{label}`" in said for label in d.level_with)


def test_where_no_search_found_a_range_the_pick_judges_the_closed_loops_and_says_so():
    loop = [replace(tried(c, None, None), closed_rps=rps, closed_rps_low=rps * 0.9, closed_rps_high=rps * 1.1, failed=None)
            for c, rps in ((ONE, 20.0), (GTHREAD, 60.0))]  # fmt: skip
    d = deploy(decision(*loop))
    assert d.basis == "closed_loop" and d.pick and d.pick.label == GTHREAD.label
    assert "No capacity search found a range within the time budget" in deploy_words.pick(d)
    ranged = deploy(decision(loop[0], replace(loop[1], capacity_low_rps=40.0, capacity_high_rps=50.0)))
    assert ranged.basis == "capacity" and [x.why for x in ranged.left_out] == ["no_capacity"]


def test_past_the_wait_that_makes_the_pick_concurrency_bound_more_threads_overtake_it():
    demand, budget = Demand(0.005, 0.010, None), Budget(1, 2)
    few, many = Candidate("gthread", 1, 4, "threads", 3.0), Candidate("gthread", 1, 16, "threads", 3.0)
    found = crossing(few, many, "wsgi", demand, budget, "wait")
    # the pick turns concurrency-bound where C / (W + D_cpu) falls under P / D_cpu, and is overtaken just past it
    expected = OVERTAKES * few.threads * demand.d_cpu_s - demand.d_cpu_s
    assert found and found.other == many.label and found.at_s == pytest.approx(expected, rel=1e-3)
    assert found.other_rps > found.pick_rps and found.past_s > found.at_s
    assert crossing(many, few, "wsgi", demand, budget, "wait") is None  # fewer threads never win on waits


def test_the_model_cannot_tell_apart_two_event_loops_of_one_process():
    async_, rust = Candidate("async", 1, 1, "event_loop", 1.0), Candidate("granian-asgi", 1, 1, "rust", 1.0)
    assert crossing(async_, rust, "asgi", COMPUTES, Budget(1, 2), "wait") is None
    assert crossing(async_, rust, "asgi", COMPUTES, Budget(1, 2), "cpu") is None


def test_the_report_names_the_pick_its_reason_the_runner_up_what_would_change_it_and_the_time(tmp_path: Path):
    few, many = Candidate("gthread", 1, 30, "threads", 26.0), Candidate("gthread", 1, 60, "threads", 26.0)
    d = deploy(decision(tried(few, 50, 60, 55), tried(many, 20, 30), tried(ONE, 10, 12)))
    text = "\n".join(b for s in deploy_words.sections(d, []) for b in s.bullets)
    assert "Deploy `gthread 1×30` at CPUS=1" in text and "it held between 50 and 60 req/s at p95 ≤ 500 ms" in text
    assert "The model's reason" in text and "the CPU binds" in text and "Runner-up: `gthread 1×60`" in text
    # 30 threads hold 30 requests: past a wait of 30 x D_cpu - D_cpu, they no longer keep the CPU busy
    turn = OVERTAKES * few.threads * WAITS.d_cpu_s - WAITS.d_cpu_s
    assert f"the wait per request grew past {turn * 1000:.3g} ms (it is 50 ms), the model would rank `gthread 1×60`" in text
    # the model alone ranks more processes above the pick where they held less: said, and the measurement decides
    spread = deploy(decision(tried(ONE, 50, 60), tried(PROCESSES, 20, 30)))
    assert "The model alone would rank `gunicorn 4×1` above it" in "\n".join(deploy_words.decision_sentences(spread))
    assert "stated a time budget of 20m00s before it started and took 5m00s, within it" in text


def test_a_decision_reads_back_as_it_was_written(tmp_path: Path):
    written = decision(tried(GTHREAD, 40, 50, 45), tried(PROCESSES, 60, None))
    write_decision(tmp_path, written)
    assert read_decision(tmp_path) == written


def test_the_budget_gives_each_search_the_steps_that_fit_and_drops_candidates_that_do_not():
    assert steps_within(100, 20, 40) == 3 and steps_within(10, 20, 40) == 1 and steps_within(10_000, 20, 40) == 8
    assert how_many(400, [(20, 20, 40)] * 4) == 4
    assert how_many(200, [(20, 20, 40)] * 4) == 2  # two steps each for two, not one each for four
    assert how_many(50, [(20, 20, 40)] * 4) == 1


def test_bad_minutes_or_memory_or_no_app_are_refused_in_one_line(tmp_path: Path):
    place = make_place(tmp_path / "state", 11)
    for args, env, said in (
        (["--minutes", "soon"], {"APP": "wsgi_shop:app"}, "MINUTES='soon' is not valid"),
        ([], {"APP": "wsgi_shop:app", "MEMORY": "lots"}, "MEMORY='lots' is not valid"),
        ([], {"APP": ""}, "needs APP=package.module:callable"),
    ):
        done = subprocess.run([PYTHON, "-m", "lab", "decide", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env=lab_env(place, LAB_RESULTS=str(tmp_path / "results"), **env))  # fmt: skip
        assert done.returncode == 2 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "results").exists()


# The native decision serves the WSGI example, the compose one the ASGI example (standard library only: its
# image needs no requirements); each has a path that waits and one that computes.
DECISIONS = [
    pytest.param("native", "wsgi_shop:app", "/wait?ms=20:2 /primes?n=60000", {}, id="native-wsgi"),
    pytest.param("compose", "asgi_catalog:app", "/upstream?ms=20:2 /render?rows=300", {"IMAGES": "local"},
                 id="compose-asgi", marks=pytest.mark.skipif(not engine_answers(), reason=NO_ENGINE)),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "app", "paths_", "extra"), DECISIONS)
def test_a_decision_for_an_example_app_names_what_to_deploy_within_its_stated_budget(
    tmp_path: Path, backend: str, app: str, paths_: str, extra: dict[str, str]
):
    """The whole decision, for real and short: an example app, two paths, CPUS=1, a small time budget."""
    place = make_place(tmp_path / "state", 12)
    minutes = 1.25
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "lab", "decide", "--minutes", str(minutes), "--backend", backend], cwd=ROOT, capture_output=True,
        text=True, timeout=420,
        env=lab_env(place, LAB_RESULTS=str(tmp_path / "results"), APP=app, APP_DIR=str(APPS), CPUS="1", PATHS=paths_,
                    **extra),
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Time budget: {duration(minutes * 60)}" in done.stdout  # stated before it starts
    assert done.stdout.index("Time budget") < done.stdout.index("[path 1]")
    folder = (tmp_path / "results" / "latest").resolve()
    paths = json.loads((folder / "paths.json").read_text())
    assert [p["path"] for p in paths] == [part.rpartition(":")[0] if ":" in part else part for part in paths_.split()]
    assert all(p["cpu_ms"] > 0 and p["handler_ms"] > 0 and p["rss_mb"] for p in paths)
    wait, computes = paths
    assert wait["wait_ms"] / wait["handler_ms"] > computes["wait_ms"] / computes["handler_ms"]  # the wait shows
    decided = read_decision(folder)
    assert decided and decided.tried and decided.took_s <= decided.time_budget_s and took < decided.time_budget_s + 60
    assert all(t.measured_mb for t in decided.tried if t.closed_rps)  # each candidate's own workers' memory
    records = [json.loads(p.read_text()) for p in folder.glob("**/runs/*.json")]
    assert records and {r["backend"] for r in records} == {backend}
    report = subprocess.run([PYTHON, "-m", "lab", "report", str(folder)], cwd=ROOT, capture_output=True, text=True,
                            env=lab_env(place), timeout=120)  # fmt: skip
    assert report.returncode == 0, report.stdout + report.stderr
    text = (folder / "report.md").read_text()
    assert f"## Which to deploy: {app} at CPUS=1" in text and "- Deploy `" in text and "Django" not in text
    assert "within it" in text and "The model's reason" in text
    assert "Deploy `" in done.stdout  # the bench says it too
    assert not processes_of(place.state) and not (backend == "compose" and leftovers("container"))


def test_a_paths_figures_come_from_its_timeline_its_cgroup_and_its_servers_report(tmp_path: Path):
    (tmp_path / "timeline").mkdir()
    rows = [(1, 1, start, start + 30_000, 200, 31.0, "") for start in range(0, 3_000_000, 100_000)]
    with (tmp_path / "timeline" / "run.csv").open("w") as f:
        f.write(",".join(TIMELINE_COLUMNS) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    record = run_record(timeline={"file": "timeline/run.csv", "rows": len(rows)},
                        server={"cpu_seconds_per_request": 0.012},
                        server_after={"differences": [], "workers_gone": [], "workers_new": [],
                                      "worker_rss_bytes": [40 * 2**20, 60 * 2**20]},
                        intervals={"p50_ms": {"estimate": 31.0, "low": 30.5, "high": None, "n": 30}})  # fmt: skip
    f = figures(record, tmp_path, "/x", 2, tmp_path)
    assert (f.handler_ms, f.cpu_ms, f.wait_ms, f.rss_mb) == (30.0, 12.0, 18.0, 50.0)
    assert f.wait_share == pytest.approx(0.6) and (f.p50_ms, f.p50_low_ms, f.p50_high_ms) == (31.0, 30.5, None)
    assert f.demand() == PathDemand("/x", 2, 0.012, 0.018, 50.0)
    with pytest.raises(LabError, match="PATHS /x alone at one user: the run failed: boom"):
        figures(replace(record, status="failed", reason="boom"), tmp_path, "/x", 2, tmp_path)


def test_the_report_of_a_decision_opens_with_what_to_deploy_in_place_of_the_single_workload_picks(tmp_path: Path):
    write_record(tmp_path, run_record(config={"id": "gthread-io-cpus1-u10-w1-t30", "label": "gthread 1×30", "mode": "gthread",
                                              "workers": 1, "threads": 30}))  # fmt: skip
    few = Candidate("gthread", 1, 30, "threads", 26.0)
    write_decision(tmp_path, decision(tried(few, 50, 60, 55), tried(ONE, 10, 12)))
    path = PathFigures("/wait", 1, "gunicorn 1×1", 100, 52.0, 51.0, 53.0, 52.0, 2.0, 50.0, 40.0, "paths/1/runs/001-x.json")
    write_paths(tmp_path, [path])
    text = build(tmp_path).with_name("report.md").read_text()
    assert text.index("## Which to deploy: shop:app at CPUS=1") < text.index("## Conclusions")
    assert "## Which to pick\n" not in text and "| `/wait` | 1 | gunicorn 1×1 | 100 | 52 [51, 53] |" in text
    assert "`gthread 1×30` (pick)" in text and "## How the candidates were chosen" in text


# ---------------------------------------------------------------- the whole decision, its runs faked


FAKE_CPU_S = {"/wait": 0.002, "/render": 0.015}  # each path's CPU per request in the fake server
FAKE_HANDLER_S = {"/wait": 0.040, "/render": 0.016}


def fake_run(config: RunConfig, entry: Entry, backend: object, machine: object, folder: Path, state_hook: object,
             calibrate: bool = False) -> RunRecord:  # fmt: skip
    """A run as run_one records it, from the figures above: its timeline, its CPU, its server's report."""
    path = os.environ["PATHS"].split()[0].rpartition(":")[0] if ":" in os.environ["PATHS"] else os.environ["PATHS"]
    cpu = sum(FAKE_CPU_S[p] for p in FAKE_CPU_S if path.startswith(p)) or 0.005
    handler = sum(FAKE_HANDLER_S[p] for p in FAKE_HANDLER_S if path.startswith(p)) or 0.025
    (folder / "timeline").mkdir(parents=True, exist_ok=True)
    with (folder / "timeline" / f"{config.id}.csv").open("w") as f:
        f.write(",".join(TIMELINE_COLUMNS) + "\n")
        f.writelines(f"1,1,{i * 100_000},{i * 100_000 + int(handler * 1e6)},200,{handler * 1000 + 1},\n" for i in range(50))
    return read_record(merged(whole(), {
        "experiment": entry.experiment, "index": entry.index, "config": write(Configuration.of(config)),
        "timeline": {"file": f"timeline/{config.id}.csv", "rows": 50}, "server": {"cpu_seconds_per_request": cpu},
        "server_after": {"differences": [], "workers_gone": [], "workers_new": [], "worker_rss_bytes": [30 * 2**20]},
    }))  # fmt: skip


def fake_search(config: RunConfig, slo_ms: float, max_steps: int, folder: Path, where: object, state_hook: object,
                first_index: int, share_s: float | None = None) -> CapacityFound:  # fmt: skip
    """A search that found its capacity at 40% of the model's saturation for the candidate's C."""
    in_flight, _ = config.knobs.capacity(100)
    low = round(0.4 * min(in_flight, 8) / 0.02, 1)
    said = str(Range(low, low * 1.1))
    return read(CapacityFound, {
        "id": config.id, "label": config.names.label, "workload": "io", "cpus": 1.0, "arrivals": "poisson",
        "slo_p95_ms": slo_ms, "capacity": said, "capacity_low_rps": low, "capacity_high_rps": round(low * 1.1, 1),
        "capacity_mid_rps": None, "capacity_estimate_rps": None, "lower_bound_only": False, "crossed": False,
        "capacity_rps": low, "predicted_rps": None, "predicted_queue": None, "predicted_service_ms": None,
        "predicted_saturation_rps": None, "capacity_over_predicted": None, "differs_from_prediction": False,
        "model_saturation_rps": None, "d_cpu_ms": None, "idle_cpu": None, "ratio": None, "contradiction": None,
        "suspect": None, "steps": min(max_steps, 3), "runs": min(max_steps, 3), "seconds": 1.0,
    })  # fmt: skip


@contextmanager
def fake_opened(place: object, runs: object, backend_name: str, folder: Path, command: str) -> Iterator[tuple[object, object]]:
    machine = read(Machine, whole()["machine"])
    yield (lambda config: (None, machine)), (lambda **state: None)


def test_a_whole_decision_with_its_runs_faked_states_its_budget_keeps_its_figures_and_names_a_pick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(results_folder, "RESULTS", tmp_path)
    for name, fake in (("run_one", fake_run), ("search", fake_search), ("opened", fake_opened),
                       ("for_app", lambda experiment: os.environ.__setitem__("APP_INTERFACE", "wsgi"))):  # fmt: skip
        monkeypatch.setattr(decide_module, name, fake)
    for name, value in (("APP", "shop:app"), ("PATHS", "/wait:3 /render"), ("CPUS", "1"), ("MEMORY", "0")):
        monkeypatch.setenv(name, value)
    folder = decide_module.decide(minutes=20)
    said = capsys.readouterr().out
    assert said.index("Time budget: 20m00s") < said.index("[path 1]") and "within its budget of 20m00s" in said
    paths = read_paths(folder)
    assert paths and [(p.path, p.weight, p.cpu_ms) for p in paths] == [("/wait", 3, 2.0), ("/render", 1, 15.0)]
    decided = read_decision(folder)
    assert decided and decided.demand.d_cpu_s == pytest.approx((3 * 0.002 + 0.015) / 4)
    assert 1 <= len(decided.tried) <= 4 and decided.took_s <= decided.time_budget_s
    assert [t.candidate for t in decided.tried] == candidates("wsgi", decided.demand, decided.budget).tried[: len(decided.tried)]
    d = deploy(decided)
    assert d.pick and d.pick.tried.candidate.in_flight("wsgi") > 1  # the waits need more than one request in flight
    assert "## Which to deploy: shop:app at CPUS=1" in build(folder).with_name("report.md").read_text()


def test_a_candidate_s_memory_is_what_its_own_workers_took_where_it_was_measured():
    estimated = tried(PROCESSES, 45, 55)  # 4 workers x the plainest server's 40 MB: 160, under a budget of 200
    assert estimated.memory_mb(WAITS) == 4 * (WAITS.rss_mb or 0) < 200
    measured = replace(estimated, measured_mb=300.0)  # its own workers, after its closed loop, took more
    d = deploy(decision(measured, tried(GTHREAD, 40, 50), memory_mb=200))
    assert d.pick and d.pick.label == GTHREAD.label and [(x.label, x.why) for x in d.left_out] == [(PROCESSES.label, "memory")]


def test_a_pick_held_past_the_model_s_saturation_is_said_so_not_explained_by_a_short_queue():
    d = deploy(decision(tried(ONE, 400, 600, 550)))  # one process at 2 ms of CPU saturates at 500 req/s
    assert d.pick and d.pick.capacity.estimate > d.pick.model.throughput
    said = deploy_words.reason(d)
    assert "is no ceiling for this server under load" in said and "queue stays short" not in said
