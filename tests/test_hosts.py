"""Past one machine, for real: three hosts made of network namespaces on this machine, the server and its
PostgreSQL on one (`make serve`, under a CPU limit), the bench's Locust master on another (TARGET=...), and
two Locust workers on a third (`make worker`); a bench and a capacity search run across them, the search's open
arrivals offered by the two workers, each its share.

The hosts are `ip netns` namespaces, each with a veth pair to a bridge in a fourth namespace of its own (a
bridge in the root namespace would send their traffic through this machine's firewall, whose FORWARD
policy Docker sets to drop), and addresses of their own, 10.203.0.0/24, which nothing outside them has a
route to: all traffic stays on these hosts. Commands run in a host through `nsenter --net` with a UTS
namespace for a hostname of its own: `ip netns exec` would also mount a fresh /sys, hiding the cgroups
that the CPU limit and the server's report of its own CPU read.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from contract.cgroup import CGROUP, Cgroup
from lab.stack.checkout import ROOT
from lab.stack.place import Place

from .conftest import PYTHON, lab_env, make_place

pytestmark = pytest.mark.slow

SUBNET = "10.203.0"
ADDRESSES = {"server": f"{SUBNET}.2", "master": f"{SUBNET}.3", "workers": f"{SUBNET}.4"}
HOSTNAMES = {role: f"lab-{role}" for role in ADDRESSES}
# What the server serves, and what a run measuring it must name: the server's report is checked against it.
SERVED = {"MODE": "gthread", "WORKERS": "2", "THREADS": "4", "WORKLOAD": "io", "IO_SECONDS": "0.05",
          "PRIMES_LIMIT": "20000", "CPUS": "1", "USERS": "10"}  # fmt: skip
EXPERIMENT = """
description = "one configuration, as `make serve` serves it on the server's host"
io_seconds = 0.05
primes_limit = 20_000
warmup = 1
run_time = 3
users = 10
[[matrix]]
modes = ["gthread"]
workloads = ["io"]
workers = [2]
threads = [4]
cpus = [1]
"""
REPORT = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + '/healthz', timeout=30).read().decode())"


def why_not() -> str | None:
    """Why this machine cannot make test hosts, or None."""
    if os.geteuid() != 0:
        return "making network namespaces (ip netns) needs root"
    for tool in ("ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"lab20-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None if made.returncode == 0 else f"`ip netns add` failed: {made.stderr.strip()}"


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


class Hosts:
    """Three network namespaces on a bridge of their own; `argv` runs a command in one of them."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.switch = f"lab20-{tag}-sw"
        self.namespaces = {role: f"lab20-{tag}-{role}" for role in ADDRESSES}

    def make(self) -> None:
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "dev", "br0", "up")
        for role, namespace in self.namespaces.items():
            port = f"p-{role}"
            ip("netns", "add", namespace)
            ip("link", "add", "eth0", "netns", namespace, "type", "veth", "peer", "name", port, "netns", self.switch)
            ip("-n", namespace, "addr", "add", f"{ADDRESSES[role]}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "dev", "eth0", "up")
            ip("-n", namespace, "link", "set", "dev", "lo", "up")
            ip("-n", self.switch, "link", "set", "dev", port, "master", "br0")
            ip("-n", self.switch, "link", "set", "dev", port, "up")

    def remove(self) -> None:
        for namespace in [*self.namespaces.values(), self.switch]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)

    def argv(self, role: str, argv: list[str]) -> list[str]:
        enter = ["nsenter", f"--net=/run/netns/{self.namespaces[role]}", "unshare", "--uts"]
        return [*enter, "sh", "-c", 'hostname "$0" && exec "$@"', HOSTNAMES[role], *argv]


class Started:
    """Every process the test starts, each in a session of its own, stopped as a lab is (SIGTERM) at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], env: dict[str, str], log: Path, timeout: float) -> str:
        proc = self.spawn(argv, env, log)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        said = log.read_text(errors="replace")
        assert code == 0, f"{' '.join(argv[-6:])} ended with {code}:\n{said[-4000:]}"
        return said

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def three_hosts() -> Iterator[tuple[Hosts, Started]]:
    reason = why_not()
    if reason:
        pytest.skip(f"NOT TESTED ACROSS HOSTS: {reason}; tests/test_remote.py covers TARGET and workers on loopback")
    hosts, started = Hosts(), Started()
    try:
        hosts.make()
        yield hosts, started
    finally:
        started.stop()
        hosts.remove()


def wait_for(log: Path, proc: subprocess.Popen[bytes], text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, f"no {text!r} in {log}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def server_cgroup(place: Place) -> Cgroup:
    """The cgroup the server's host put it in, read from this (the root) namespace: the lab's own reading."""
    name = place.cgroup_name
    unified = CGROUP / name
    return Cgroup(unified, None) if (unified / "cpu.stat").exists() else Cgroup(CGROUP / "cpu" / name, CGROUP / "cpuacct" / name)


def records(results: Path, kind: str) -> list[dict[str, Any]]:
    (folder,) = results.glob(f"{kind}-*")
    return [json.loads(path.read_text()) for path in sorted((folder / "runs").glob("*.json"))]


def answered(step: dict[str, Any]) -> list[int]:
    return [w["answered"] for w in step["locust"]["open"]["workers"]]


def near_poisson(count: int, expected: float) -> bool:
    """A Poisson count within four standard deviations of its mean (and two arrivals, for the window's edges)."""
    return abs(count - expected) <= 4 * math.sqrt(expected) + 2


def test_a_bench_and_a_capacity_search_run_across_three_hosts(tmp_path: Path) -> None:
    experiment = tmp_path / "across.toml"
    experiment.write_text(EXPERIMENT)
    results = tmp_path / "results"
    server_place, master_place = make_place(tmp_path / "server", 40), make_place(tmp_path / "master", 41)
    target = f"http://{ADDRESSES['server']}:{server_place.app_port}"
    with three_hosts() as (hosts, started):
        serve_log = tmp_path / "serve.out"
        server = started.spawn(hosts.argv("server", [PYTHON, "-m", "lab", "serve"]),
                               lab_env(server_place, BIND=ADDRESSES["server"], **SERVED), serve_log)  # fmt: skip
        wait_for(serve_log, server, "`make down` stops it", 120)
        workers_log = tmp_path / "workers.out"
        worker_argv = [PYTHON, "-m", "lab", "worker", "--master", ADDRESSES["master"], "--processes", "2"]
        workers = started.spawn(hosts.argv("workers", worker_argv), lab_env(make_place(tmp_path / "workers", 42)), workers_log)
        wait_for(workers_log, workers, "waiting for a Locust master", 60)

        def readings() -> tuple[float, dict[str, Any]]:
            """The server's CPU read both ways: its report, asked from the master's host, and its cgroup, read on its
            own host (this machine's root namespace) just before and after; the report's own cgroup time lies between."""
            before = server_cgroup(server_place).usage()
            report = subprocess.run(hosts.argv("master", [PYTHON, "-c", REPORT, target]), capture_output=True, text=True)
            after = server_cgroup(server_place).usage()
            assert report.returncode == 0 and before is not None and after is not None, report.stderr
            cpu = json.loads(report.stdout)["server"]["cpu"]
            assert before.cpu_seconds - 1e-3 <= cpu["cgroup_seconds"] <= after.cpu_seconds + 1e-3, (before, cpu, after)
            return (before.cpu_seconds + after.cpu_seconds) / 2, cpu

        cgroup_from, own_from = readings()
        master_env = lab_env(master_place, LAB_RESULTS=str(results), TARGET=target, **SERVED)
        master_env.update(LOCUST_REMOTE_WORKERS="2", LOCUST_BIND=ADDRESSES["master"])
        bench = started.run(hosts.argv("master", [PYTHON, "-m", "lab", "bench", str(experiment), "--backend", "remote"]),
                            master_env, tmp_path / "bench.out", 300)  # fmt: skip
        capacity = started.run(hosts.argv("master", [PYTHON, "-m", "lab", "capacity", "--backend", "remote", "--steps", "2"]),
                               {**master_env, "SLO_P95_MS": "300"}, tmp_path / "capacity.out", 300)  # fmt: skip
        cgroup_to, own_to = readings()
        joined = workers_log.read_text()
    assert f"lab: measuring TARGET={target}, a server the lab did not start" in bench, bench[-2000:]
    (across,) = records(results, "across")
    assert across["status"] == "ok", across["reason"]
    assert across["backend"] == "remote" and across["machine"]["hostname"] == HOSTNAMES["master"]
    where = across["where"]
    assert where["target"] == target and where["started_by_lab"] is False, where
    assert "not applied by the lab" in across["cpu_limit"]["method"] and across["cpu_limit"]["cpus"] == 1
    assert across["verification"]["server"]["cpu"]["cgroup_limit_cpus"] == 1.0  # CPUS checked against the server's own
    workers_of_run = where["locust_workers"]
    assert workers_of_run["expected"] == 2 and workers_of_run["connected"] == 2, workers_of_run
    assert workers_of_run["hosts"] == {HOSTNAMES["workers"]: 2}
    assert all(w["utilisation"] and 0 < w["utilisation"] < 1.5 for w in workers_of_run["workers"]), workers_of_run
    assert "lab: 2 Locust worker(s) for the master" in joined and "the master ended its run" in joined
    assert across["server"]["cpu_seconds"] > 0 and across["locust"]["failures"] == 0
    # both from the server's report, its processes' and its cgroup's, but read by different requests (the cgroup's
    # around the others), each of which costs the server some CPU: a few percent of a run of a few seconds
    readings_of_run = across["server_cpu_readings"]
    assert 0.85 <= readings_of_run["server_to_cgroup"] <= 1.05, readings_of_run
    # where the time went, across hosts: the server's parts as it timed them; the client's and the server's clocks
    # are not one, so before and after the handler are one part between them, and the parts still add up
    parts = across["timeline"]["parts"]
    assert parts and parts["same_clock"] is False and parts["requests"] > 0, parts
    assert "between" in parts["parts"] and not {"before", "after"} & set(parts["parts"]), parts["parts"]
    assert 45 < parts["parts"]["db"]["mean_ms"] < 80, parts["parts"]  # IO_SECONDS=0.05, as the server waited
    assert parts["parts"]["between"]["mean_ms"] >= 0 and abs(parts["unaccounted_ms"]) < 0.02 * parts["latency_mean_ms"]

    steps = records(results, "capacity")
    assert steps and all(s["where"]["target"] == target and s["machine"]["hostname"] == HOSTNAMES["master"] for s in steps)
    assert "capacity: the range of offered rates" in capacity and "no prediction" not in capacity, capacity[-2000:]
    for step in steps:  # held or not (a shared machine), each window's arrivals came from both workers, each its share
        assert step["status"] == "ok", step["reason"]
        assert step["where"]["locust_workers"]["connected"] == 2, step["where"]["locust_workers"]
        assert step["where"]["locust_workers"]["hosts"] == {HOSTNAMES["workers"]: 2}
        arrivals, nominal = step["locust"]["open"], step["capacity_step"]["nominal_rps"]
        seconds = step["locust"]["measured_seconds"]
        shares = arrivals["workers"]
        assert sorted(w["slot"] for w in shares) == [0, 1] and all(math.isclose(w["rate"], nominal / 2) for w in shares), shares
        assert all(n > 0 for n in answered(step)), shares
        assert step["timeline"]["rows"] > 0  # the workers' rows, written by the master: the first step's prediction reads them
        assert arrivals["sent"] == sum(w["answered"] + w["waiting"] for w in shares), (arrivals["sent"], shares)
        for offered, rate in [(arrivals["offered"], nominal), *((w["offered"], nominal / 2) for w in shares)]:
            assert near_poisson(offered, rate * seconds), (offered, rate, seconds)

    # the server's own report against the cgroup read on its host, over the bench and the search
    cgroup_used = cgroup_to - cgroup_from
    own_tree = own_to["process_tree_seconds"] - own_from["process_tree_seconds"]
    own_cgroup = own_to["cgroup_seconds"] - own_from["cgroup_seconds"]
    assert abs(own_tree / cgroup_used - 1) < 0.05, (own_tree, cgroup_used)

    print(
        f"\nacross three hosts: {across['locust']['rps']:.1f} req/s, p50 {across['locust']['p50_ms']:.0f} ms; server CPU over "
        f"the bench and the search: cgroup {cgroup_used:.3f} s, its report {own_tree:.3f} s (process tree), "
        f"{own_cgroup:.3f} s (its cgroup); within the run {readings_of_run['server_to_cgroup']}; workers "
        f"{[w['utilisation'] for w in workers_of_run['workers']]}; capacity windows (nominal, offered req/s, answered per "
        f"worker): {[(s['capacity_step']['nominal_rps'], s['locust']['open']['offered_rps'], answered(s)) for s in steps]}"
    )
