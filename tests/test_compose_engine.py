"""The compose backend for real: a Docker engine, the local stand-in images, every mode up in
containers, the CPU limit seen from the container's cgroup, distributed Locust, a compose bench.

These tests need a Docker engine (`make engine` starts one as root; `.ci/run` does). Without one
they are skipped, loudly. They run with IMAGES=local: no registry is ever asked for an image.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from contract.endpoint import seeded_rates
from contract.knobs import parse
from contract.modes import MODES
from lab.bench.verification import differences
from lab.results.run_files import load_records
from lab.stack import images
from lab.stack.backends import compose
from lab.stack.checkout import ROOT
from lab.stack.procs import http_status, wait_until

from .conftest import PYTHON, lab_env, make_place, run_bench

OFFSET = 20  # ports apart from the native tests'
PROJECT = "label=com.docker.compose.project=concurrency-lab"
ENV = {"IMAGES": "local"}
CTRL_C_BOUND_S = 30  # what Ctrl-C of a compose `make up` may take at most (about 6 s measured)


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not engine_answers(), reason="NO DOCKER ENGINE ANSWERS: the compose tests did not run (`make engine`)"),
]


@pytest.fixture(scope="module", autouse=True)
def standins():
    images.build_standins(print)


@pytest.fixture
def place(tmp_path):
    return make_place(tmp_path / "lab", OFFSET)


def leftovers(kind: str) -> list[str]:
    listing = {"container": ["ps", "-a"], "volume": ["volume", "ls"], "network": ["network", "ls"]}[kind]
    result = subprocess.run(["docker", *listing, "--quiet", "--filter", PROJECT], capture_output=True, text=True)
    return result.stdout.split()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Up:
    """`python -m lab up --backend compose` in the background, until it says it is up."""

    def __init__(self, place, workers: int = 1, **env: str) -> None:
        argv = [PYTHON, "-m", "lab", "up", "--backend", "compose", "--locust-workers", str(workers)]
        started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=lab_env(place, **ENV, **env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        if not wait_until(lambda: "stops everything" in self.output or self.proc.poll() is not None, 300, 0.1):
            self.proc.kill()
            pytest.fail(f"compose up did not come up in 300 s:\n{self.output}")
        assert self.proc.poll() is None, self.output
        self.healthy_after = time.monotonic() - started
        print(f"compose up to healthy: {self.healthy_after:.1f} s")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="class")
def one_compose_lab(tmp_path_factory):
    """One `lab up --backend compose` for the tests of TestOneComposeLab: each switches the server to its mode and
    limit through the Lab page's control server, as a user does, instead of bringing the whole stack (PostgreSQL,
    Locust) up again. After the class's last test, Ctrl-C stops it all and leaves nothing behind: the compose
    project is one per engine, and the tests after the class bring up labs of their own."""
    place = make_place(tmp_path_factory.mktemp("one-compose-lab") / "lab", OFFSET + 1)
    up = Up(place, MODE="threaded", IO_SECONDS="0.05", PRIMES_LIMIT="5000")
    try:
        yield place, up
    finally:
        started = time.monotonic()
        assert up.interrupt() == 0, up.output
        took = time.monotonic() - started
    # docs/bench.md states the bound: `docker compose down` gives each container 5 s, the rest is the lab's own
    assert took < CTRL_C_BOUND_S, f"Ctrl-C took {took:.1f} s to stop the compose lab"
    assert not leftovers("container") and not leftovers("volume") and not leftovers("network")


def switch(place, **knobs: str) -> dict:
    """POST /apply to the Lab page's control server, as the page does (its own origin, JSON; WORKERS and THREADS
    left empty take the mode's own), again while the lab answers that it is busy with its first verification."""
    form = {"knobs": {"WORKERS": "", "THREADS": "", **knobs}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{place.control_port}/apply", data=json.dumps(form).encode(),
        headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{place.locust_port}"}, method="POST",
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(request, timeout=240) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code != 409 or time.monotonic() > deadline:
                raise
            time.sleep(1)


def stream(url: str, clients: int, seconds: float) -> None:
    """Requests back to back from a few clients, for a while."""

    def client() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            get(url)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class TestOneComposeLab:
    """Every mode, then each CPU limit, in one compose lab switched through its control server."""

    @pytest.mark.parametrize("mode", list(MODES))
    def test_every_mode_comes_up_in_containers_and_answers_right(self, mode, one_compose_lab):
        place, up = one_compose_lab
        applied = switch(place, MODE=mode, WORKLOAD="io", CPUS="1", PRIMES_LIMIT="5000")
        assert applied["ok"], applied
        app = f"http://127.0.0.1:{place.app_port}"
        for (source, target), rate in seeded_rates().items():
            assert get(f"{app}/currency/convert?from={source.upper()}&to={target}") == (
                200, {"from": source, "to": target, "rate": rate, "workload": "io"})  # fmt: skip
        # the same error contract as native
        assert get(f"{app}/currency/convert?from=usd")[0] == 400
        assert get(f"{app}/currency/convert?from=us1&to=gbp")[0] == 400
        assert get(f"{app}/currency/convert?from=usd&to=xxx") == (404, {"error": "no rate from usd to xxx"})
        status, health = get(f"{app}/healthz")
        knobs = parse({"MODE": mode, "IO_SECONDS": "0.05", "PRIMES_LIMIT": "5000"})
        assert status == 200 and differences(health["server"], knobs) == [], health
        assert "(a local stand-in)" in up.output
        assert http_status(f"http://127.0.0.1:{place.locust_port}/") == 200

    # On two cores the test's own clients take a share, so the CPUS=2 container cannot reach 2 (1.42 was seen):
    # using clearly more than one core is what shows that its quota is two CPUs and not one.
    @pytest.mark.parametrize(("cpus", "mode", "low", "high"), [("0.5", "nothreading", 0.4, 0.55), ("2", "gunicorn", 1.1, 2.05)])
    def test_the_cpu_limit_holds_in_the_container(self, cpus, mode, low, high, one_compose_lab):
        """Measured from the container's own cgroup, as the engine enforces it, in the shared lab switched to it."""
        place, _ = one_compose_lab
        applied = switch(place, MODE=mode, WORKLOAD="cpu", CPUS=cpus, PRIMES_LIMIT="200000")
        assert applied["ok"] and applied["restarted"], applied
        app = ["docker", "ps", "--quiet", "--filter", PROJECT, "--filter", "label=com.docker.compose.service=app"]
        container = subprocess.run(app, capture_output=True, text=True).stdout.strip()
        pid = compose.container_pid(container)
        assert compose.cgroup_quota(pid) == pytest.approx(float(cpus))
        before, started = compose.cgroup_usage(pid), time.monotonic()
        stream(f"http://127.0.0.1:{place.app_port}/currency/convert?from=usd&to=gbp&workload=cpu", 4, 6)
        used = (compose.cgroup_usage(pid).cpu_seconds - before.cpu_seconds) / (time.monotonic() - started)
        print(f"CPUS={cpus} ({mode}): the container used {used:.3f} CPU")
        assert low <= used <= high


def test_distributed_locust_swarms_from_its_web_ui_and_make_down_stops_it_from_another_shell(place):
    up = Up(place, workers=2, MODE="async", IO_SECONDS="0.05")
    locust = f"http://127.0.0.1:{place.locust_port}"
    body = b"user_count=6&spawn_rate=6"
    with urllib.request.urlopen(urllib.request.Request(f"{locust}/swarm", data=body), timeout=30) as response:
        assert json.loads(response.read())["success"]
    time.sleep(4)
    with urllib.request.urlopen(f"{locust}/stats/requests", timeout=30) as response:
        stats = json.loads(response.read())
    assert stats["worker_count"] == 2
    total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
    assert total["num_requests"] > 20 and total["num_failures"] == 0, total
    started = time.monotonic()
    down = subprocess.run([PYTHON, "-m", "lab", "down"], cwd=ROOT, env=lab_env(place, **ENV), capture_output=True, text=True)
    print(f"make down: {time.monotonic() - started:.1f} s")
    assert down.returncode == 0 and "compose backend" in down.stdout, down.stdout + down.stderr
    assert up.proc.wait(timeout=30) is not None
    assert not leftovers("container") and not leftovers("volume") and not leftovers("network")


def test_stand_ins_built_from_the_same_inputs_are_not_built_again():
    """The module's fixture built them: a second start builds none (each build reads tens of MB of context),
    and each image carries the hash of what it was made of."""
    assert images.build_standins(print) == {image.standin: None for image in images.IMAGES}
    for image in images.IMAGES:
        assert images.built_from(image.standin) == images.inputs_key(image)


def test_a_mode_the_image_cannot_serve_names_the_image_to_use():
    result = subprocess.run(["docker", "run", "--rm", "-e", "MODE=async", "concurrency-lab-django:local"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "MODE=async is served by the fastapi service" in result.stderr and "SERVICE=fastapi" in result.stderr


# The same two configurations on both backends, each native run just before its compose twin
BOTH = """
io_seconds = 0.05
primes_limit = 15_000
warmup = 0.5
run_time = 2
users = 4
backends = ["native", "compose"]
[[matrix]]
modes = "async"
workloads = "io"
[[matrix]]
modes = "gunicorn"
workloads = "cpu"
"""


def test_an_experiment_on_both_backends_stops_on_ctrl_c_resumes_and_sets_them_side_by_side(tmp_path):
    """Ctrl-C once a run is recorded stops both backends (exit 130, no container left), RESUME=1 measures only what
    was left; the compose records hold what native ones do, from the containers' cgroups; the report sets the two
    backends side by side."""
    experiment = tmp_path / "both.toml"
    experiment.write_text(BOTH)
    place = make_place(tmp_path / "state", OFFSET + 1)
    results = tmp_path / "results"
    proc = subprocess.Popen([PYTHON, "-m", "lab", "bench", str(experiment)], cwd=ROOT,
                            env=lab_env(place, LAB_RESULTS=str(results), **ENV), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    runs = results / "latest" / "runs"
    wait_until(lambda: len(list(runs.glob("*.json"))) >= 1 or proc.poll() is not None, 300, 0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "RESUME=1" in err and not leftovers("container")
    finished = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert 1 <= len(finished) < 4

    result = run_bench(place, results, str(experiment), "--resume", **ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    records = load_records(results / "latest")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records), [r["reason"] for r in records]
    assert sorted(r["backend"] for r in records) == ["compose", "compose", "native", "native"]
    after = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert all(after[name] == content for name, content in finished.items())  # nothing redone
    for record in (r for r in records if r["backend"] == "compose"):
        assert record["load_generator"]["utilisation"] is not None  # from the Locust container's cgroup
        assert record["machine_cpu"]["parts_cpu_seconds"]["postgres"] is not None
        assert {image["standin"] for image in record["where"]["images"]} == {True}
        assert record["cpu_limit"]["enforced"] and "in the container's cgroup" in record["cpu_limit"]["method"]
    summary = (results / "latest" / "summary.csv").read_text().splitlines()
    assert sorted(line.count(",compose,") for line in summary[1:]) == [0, 0, 1, 1]
    build = subprocess.run([PYTHON, "-m", "lab", "report", str(results / "latest")], cwd=ROOT, capture_output=True,
                           text=True, env=lab_env(place))  # fmt: skip
    assert build.returncode == 0, build.stderr
    report = (results / "latest" / "report.md").read_text()
    table = report.split("## The same runs on both backends")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "compose/native" not in line]
    assert len(rows) == 2, table
    assert all(float(row.split("|")[4]) > 0 for row in rows)  # compose/native of throughput, measured
    assert not leftovers("container") and not leftovers("volume")
