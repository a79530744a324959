"""A server the lab did not start (TARGET), served by `make serve`, on loopback: what is refused before anything
starts, and what a record says. tests/test_hosts.py
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
from lab import ROOT
from lab.backends.remote import cpu_of, limit_difference, measured_with, target_url
from lab.place import Place
from lab.procs import LabError

from .conftest import PYTHON, lab_env, make_place, processes_of

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
