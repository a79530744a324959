"""A server the lab did not start (TARGET) and Locust workers joining a bench (`make worker`), on loopback:
what is refused before anything starts, what a record says, and how busy each worker was. tests/test_hosts.py
runs the same across three network hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contract.knobs import parse
from lab.results.experiments import RunConfig
from lab.stack.backends.remote import cpu_of, limit_difference, measured_with, target_url
from lab.stack.backends.remote_workers import PLUGIN, bounding, master_argv, workers_of_run
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.procs import LabError

from .conftest import PYTHON, TEST_PORTS, lab_env, make_place, processes_of

MASTER_PORT = TEST_PORTS["LOCUST_PORT"] + 60
SERVED = {"MODE": "async", "WORKLOAD": "io", "IO_SECONDS": "0.05", "PRIMES_LIMIT": "20000", "CPUS": "0", "USERS": "4"}
EXPERIMENT = """
description = "the served configuration, very short"
io_seconds = 0.05
primes_limit = 20_000
warmup = 0.5
run_time = 2
users = 4
cpus = {cpus}
[[matrix]]
modes = ["async"]
workloads = ["io"]
"""


# ---------------------------------------------------------------- fast: the parts


def test_target_takes_an_http_address_and_port_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert target_url("http://10.0.0.2:8000/") == "http://10.0.0.2:8000"
    for bad in ("10.0.0.2:8000", "https://host:8000", "http://host", "http://host:8000/currency", "http://:80"):
        with pytest.raises(LabError, match=r"TARGET=.* is not valid: TARGET takes http://host:port"):
            target_url(bad)
    monkeypatch.delenv("TARGET", raising=False)
    with pytest.raises(LabError, match="set TARGET=http://host:port"):
        target_url()


def test_cpus_is_checked_against_the_limit_the_server_reports() -> None:
    limited = {"cpu": {"cgroup_limit_cpus": 1.0, "cgroup_seconds": 12.5, "process_tree_seconds": 12.4, "nr_throttled": 3,
                       "throttled_seconds": 0.2}}  # fmt: skip
    assert limit_difference(limited, 1) is None
    assert "a CPU limit of 1 CPU" in (limit_difference(limited, 2) or "") and "CPUS=1" in (limit_difference(limited, 2) or "")
    unlimited = {"cpu": {"cgroup_limit_cpus": None, "cgroup_seconds": 900.0, "process_tree_seconds": 4.0}}
    assert limit_difference(unlimited, 0) is None and "no CPU limit" in (limit_difference(unlimited, 1) or "")
    # its cgroup when it is its own (under its limit); else its processes: an unlimited cgroup may hold the host
    assert cpu_of(limited) == (cpu_of(limited)[0], "cgroup") and cpu_of(limited)[0].cpu_seconds == 12.5
    assert cpu_of(limited)[0].nr_throttled == 3
    assert cpu_of(unlimited)[0].cpu_seconds == 4.0 and cpu_of(unlimited)[1] == "process_tree"


def test_serve_says_the_knobs_to_measure_it_with() -> None:
    said = measured_with(parse({"MODE": "gunicorn", "WORKERS": "4", "CPUS": "2", "USERS": "50"}))
    assert "MODE=gunicorn" in said and "WORKERS=4" in said and "CPUS=2" in said and "USERS" not in said


# ---------------------------------------------------------------- slow: real servers and Locust


def lab(place: Place, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=lab_env(place, **env))  # fmt: skip


@contextmanager
def started(place: Place, *args: str, ready: str, **env: str) -> Iterator[Path]:
    """`python -m lab ARGS` in a session of its own until `ready` shows in its output; stopped as `make down` does."""
    out = place.state.parent / f"{place.state.name}.out"
    place.state.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as log:
        proc = subprocess.Popen([PYTHON, "-m", "lab", *args], cwd=ROOT, env=lab_env(place, **env), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while ready not in out.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        yield out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        assert not processes_of(place.state), "a stopped `lab serve` or `lab worker` left processes"


@contextmanager
def answering(body: bytes, status: int = 200) -> Iterator[str]:
    """An HTTP server that is not a server of this lab: it answers everything with `body`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_target_that_does_not_answer_or_is_not_a_lab_server_stops_the_bench_before_anything_starts(tmp_path: Path) -> None:
    place = make_place(tmp_path / "state", 50)
    experiment = tmp_path / "served.toml"
    experiment.write_text(EXPERIMENT.format(cpus=0))
    nobody = f"http://127.0.0.1:{place.app_port}"
    refused = lab(place, "bench", str(experiment), "--backend", "remote", TARGET=nobody, LAB_RESULTS=str(tmp_path / "r"))
    assert refused.returncode == 2 and f"error: TARGET={nobody} did not answer" in refused.stderr, refused.stderr
    with answering(b"<html>hello</html>") as url:
        other = lab(place, "capacity", "--backend", "remote", TARGET=url, LAB_RESULTS=str(tmp_path / "r"), **SERVED)
    assert other.returncode == 2, other.stdout + other.stderr
    assert f"error: TARGET={url} answered without the server's report of itself at /healthz (HTTP 200)" in other.stderr
    assert not list((tmp_path / "r").glob("*/runs/*.json")) and not processes_of(place.state)
    unset = lab(place, "bench", str(experiment), "--backend", "remote", TARGET="", LAB_RESULTS=str(tmp_path / "r"))
    assert unset.returncode == 2 and "set TARGET=http://host:port" in unset.stderr, unset.stderr


@pytest.mark.slow
def test_make_serve_and_a_bench_of_its_target(tmp_path: Path) -> None:
    """`lab serve` on loopback and `lab bench --backend remote`: CPUS must match the limit the server reports, and the
    record says where the server ran and that the lab did not start it."""
    served, master = make_place(tmp_path / "served", 52), make_place(tmp_path / "master", 53)
    bad_bind = lab(served, "serve", BIND="everywhere", **SERVED)
    assert bad_bind.returncode == 2 and "BIND='everywhere' is not valid" in bad_bind.stderr, bad_bind.stderr
    target = f"http://127.0.0.1:{served.app_port}"
    results = tmp_path / "results"
    experiment = tmp_path / "served.toml"
    with started(served, "serve", ready="`make down` stops it", **SERVED) as serve_out:
        assert f"TARGET={target} MODE=async" in serve_out.read_text()
        experiment.write_text(EXPERIMENT.format(cpus=1))
        limited = lab(master, "bench", str(experiment), "--backend", "remote", TARGET=target, LAB_RESULTS=str(results))
        assert limited.returncode == 2 and "the target runs under no CPU limit" in limited.stderr, limited.stderr
        experiment.write_text(EXPERIMENT.format(cpus=0))
        bench = lab(master, "bench", str(experiment), "--backend", "remote", TARGET=target, LAB_RESULTS=str(results))
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert f"lab: measuring TARGET={target}, a server the lab did not start: MODE=async" in bench.stdout
    (record,) = (json.loads(p.read_text()) for p in results.glob("served-*/runs/*.json"))
    assert record["status"] == "ok", record["reason"]
    assert record["backend"] == "remote" and record["where"]["target"] == target and record["where"]["started_by_lab"] is False
    assert record["verification"]["ok"] and record["server"]["cpu_seconds"] > 0 and "locust_workers" not in record["where"]
    assert record["machine"]["postgres"].startswith("the target's own")
    assert not (served.state / "stack.json").exists()


# ---------------------------------------------------------------- Locust workers on other hosts


def test_a_bench_is_the_master_of_its_remote_workers_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    argv = ["locust", "-f", "locust/locustfile.py", "--headless", "--host", "http://x:1"]
    config = RunConfig(parse({}), 1, 2)
    monkeypatch.delenv("LOCUST_REMOTE_WORKERS", raising=False)
    assert master_argv(argv, config.id, config.locust_processes, "native", tmp_path) == argv
    monkeypatch.setenv("LOCUST_REMOTE_WORKERS", "2")
    monkeypatch.setenv("LOCUST_MASTER_PORT", str(MASTER_PORT))
    master = master_argv(argv, config.id, config.locust_processes, "remote", tmp_path)
    assert master[2] == f"locust/locustfile.py,{PLUGIN}"  # each worker's CPU, kept by the master
    assert master[master.index("--expect-workers") + 1] == "2" and master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    opened_config = RunConfig(parse({}), 1, 2, arrival_rate=5)
    opened = master_argv(
        argv, opened_config.id, opened_config.locust_processes, "native", tmp_path
    )  # each worker offers its share
    assert opened[opened.index("--expect-workers") + 1] == "2"
    with pytest.raises(LabError, match="BACKEND=native or remote"):
        master_argv(argv, config.id, config.locust_processes, "compose", tmp_path)
    monkeypatch.setenv("LOCUST_BIND", "everywhere")
    with pytest.raises(LabError, match="LOCUST_BIND='everywhere' is not valid"):
        master_argv(argv, config.id, config.locust_processes, "native", tmp_path)


def test_each_workers_cpu_is_taken_over_the_measured_window(tmp_path: Path) -> None:
    (tmp_path / "run.window.json").write_text(json.dumps({"start": 100.0, "end": 110.0}))
    reports = {
        # reports every 3 s; the window lies within the ones at 99 and 111: 10.8 CPU-s over 12 s
        "host-a_1f": {"index": 1, "locust_cpu_percent": 92.0, "reports": [[96, 0.2], [99, 2.6], [102, 5.3], [111, 13.4]]},
        "host-b_2e": {"index": 0, "locust_cpu_percent": 10.0, "reports": [[98, 1.0], [101, 1.3], [112, 2.4]]},
    }
    (tmp_path / "run.workers.json").write_text(json.dumps({"expected": 2, "workers": reports}))
    workers = workers_of_run(tmp_path, "run")
    assert workers is not None and workers["connected"] == 2 and workers["expected"] == 2
    assert workers["hosts"] == {"host-a": 1, "host-b": 1}
    assert [w["id"] for w in workers["workers"]] == ["host-b_2e", "host-a_1f"]  # in the order they joined
    idle, busy = workers["workers"]
    assert (busy["cpu_seconds"], busy["over_seconds"], busy["utilisation"]) == (10.8, 12, 0.9)
    assert idle["utilisation"] == 0.1 and idle["locust_cpu_percent"] == 10.0
    assert workers["bounded"] and bounding(workers) == 0.9  # one busy worker bounds the run
    reports["host-a_1f"]["reports"] = [[99, 2.6], [111, 4.0]]
    (tmp_path / "run.workers.json").write_text(json.dumps({"expected": 2, "workers": reports}))
    calm = workers_of_run(tmp_path, "run")
    assert calm is not None and not calm["bounded"] and bounding(calm) is None
    assert workers_of_run(tmp_path, "another run") is None  # a run without remote workers


@pytest.mark.slow
def test_a_worker_that_cannot_reach_its_master_says_so(tmp_path: Path) -> None:
    place = make_place(tmp_path / "state", 51)
    nobody = lab(place, "worker", "--master", "127.0.0.1", "--master-port", str(MASTER_PORT), "--wait", "1", timeout=60)
    assert nobody.returncode == 2, nobody.stdout + nobody.stderr
    assert f"no Locust master answered at 127.0.0.1:{MASTER_PORT} within 1 s" in nobody.stderr
    assert "LOCUST_BIND=0.0.0.0" in nobody.stderr
    unknown = lab(place, "worker", "--master", "no-such-host.invalid", "--wait", "1", timeout=60)
    assert unknown.returncode == 2 and "cannot reach the Locust master at no-such-host.invalid" in unknown.stderr
    assert not (place.state / "worker" / "stack.json").exists()


@pytest.mark.slow
def test_a_bench_of_a_target_is_the_master_of_a_worker_that_joins_it(tmp_path: Path) -> None:
    """`lab serve`, one `lab worker` and `lab bench --backend remote` as their master, on loopback: the record says
    which worker joined and how busy it was; the worker keeps its own state folder."""
    served, master, worker = (make_place(tmp_path / name, offset) for name, offset in (("served", 55), ("master", 56),
                                                                                        ("worker", 57)))  # fmt: skip
    target, port = f"http://127.0.0.1:{served.app_port}", str(MASTER_PORT)
    results = tmp_path / "results"
    experiment = tmp_path / "served.toml"
    experiment.write_text(EXPERIMENT.format(cpus=0))
    with (
        started(served, "serve", ready="`make down` stops it", **SERVED),
        started(worker, "worker", "--master", "127.0.0.1", "--master-port", port, ready="waiting for a Locust master"),
    ):
        bench = lab(master, "bench", str(experiment), "--backend", "remote", TARGET=target, LAB_RESULTS=str(results),
                    LOCUST_REMOTE_WORKERS="1", LOCUST_MASTER_PORT=port)  # fmt: skip
    assert bench.returncode == 0, bench.stdout + bench.stderr
    (record,) = (json.loads(p.read_text()) for p in results.glob("served-*/runs/*.json"))
    assert record["status"] == "ok", record["reason"]
    workers = record["where"]["locust_workers"]
    assert workers["expected"] == workers["connected"] == 1 and workers["workers"][0]["utilisation"] is not None
    assert (worker.state / "worker" / "logs" / "locust-worker.log").exists()  # its own state folder
