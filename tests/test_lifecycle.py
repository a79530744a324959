"""`lab up` (what `make up` runs; `python -m lab up` alike) starts everything and leaves nothing behind.

Each test runs the real command line at a place of its own: its own state folder and ports.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

from lab.stack.checkout import ROOT
from lab.stack.procs import http_status, wait_until

from .conftest import PYTHON, lab_env, make_place, processes_of

OFFSET = 7  # ports apart from the session's database and servers


@pytest.fixture
def lab_place(tmp_path):
    return make_place(tmp_path / "lab", OFFSET)


def lab(place, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "lab", *args], cwd=ROOT, env=lab_env(place, **env), capture_output=True, text=True, timeout=120
    )


class Up:
    """`python -m lab up` in the background, its output collected as it comes."""

    def __init__(self, place, *, sigint_ignored: bool = False, **env: str) -> None:
        # a background job of a non-interactive shell starts with SIGINT ignored, as some CI runners do
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.proc = subprocess.Popen([PYTHON, "-m", "lab", "up"], cwd=ROOT, env=lab_env(place, **env),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=ignore)  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    @property
    def output(self) -> str:
        return "".join(self.lines)


def start_up(place, *, sigint_ignored: bool = False, **env: str) -> Up:
    """Start the lab and wait until it says it is up (as a user would before pressing Ctrl-C)."""
    up = Up(place, sigint_ignored=sigint_ignored, **env)
    if not wait_until(lambda: "stops everything" in up.output or up.proc.poll() is not None, 90, 0.1):
        up.proc.kill()
        pytest.fail(f"lab up did not come up in 90 s:\n{up.output}")
    assert up.proc.poll() is None, up.output
    assert http_status(f"http://127.0.0.1:{place.locust_port}/") == 200
    return up


def stop(up: Up) -> None:
    """Whatever a test found, the lab it started stops (SIGTERM, which the lab takes as Ctrl-C), so that one
    failure stays one failure and leaves no process for the next test to trip on."""
    if up.proc.poll() is None:
        up.proc.terminate()
        try:
            up.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.proc.kill()
            up.proc.wait()


def assert_nothing_left(place) -> None:
    assert wait_until(lambda: not processes_of(place.state), 10), [p.cmdline() for p in processes_of(place.state)]
    for port in (place.app_port, place.pg_port, place.locust_port):
        assert http_status(f"http://127.0.0.1:{port}/", timeout=1) is None


@pytest.mark.slow
def test_up_then_down_from_another_shell(lab_place):
    up = start_up(lab_place, MODE="gunicorn", WORKLOAD="io", IO_SECONDS="0.1")
    try:
        assert http_status(f"http://127.0.0.1:{lab_place.app_port}/currency/convert?from=usd&to=gbp") == 200
        assert len(processes_of(lab_place.state)) >= 5  # supervisor, postgres, gunicorn x3, locust
        down = lab(lab_place, "down")
        assert down.returncode == 0, down.stderr
        up.proc.wait(timeout=30)
    finally:
        up.proc.kill()
    assert "cgroup" in up.output or "affinity" in up.output or "UNLIMITED" in up.output  # the limit in force
    assert_nothing_left(lab_place)


@pytest.mark.slow
@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["terminal", "started-with-sigint-ignored"])
def test_ctrl_c_stops_everything(lab_place, sigint_ignored):
    up = start_up(lab_place, sigint_ignored=sigint_ignored, MODE="async")
    up.proc.send_signal(signal.SIGINT)
    try:
        assert up.proc.wait(timeout=30) == 0  # Ctrl-C is how a foreground `make up` ends
    finally:
        stop(up)
    assert wait_until(lambda: "stopped everything it started" in up.output, 5)
    assert_nothing_left(lab_place)


@pytest.mark.slow
def test_two_labs_started_together_one_runs_the_other_says_which_holds_it(lab_place):
    first, second = Up(lab_place, MODE="threaded"), Up(lab_place, MODE="threaded")
    try:
        assert wait_until(lambda: first.proc.poll() is not None or second.proc.poll() is not None, 90, 0.1)
        loser, winner = (first, second) if first.proc.poll() is not None else (second, first)
        assert loser.proc.wait(timeout=5) == 2, loser.output
        assert wait_until(lambda: "the lab is already running" in loser.output, 5), loser.output
        assert "stop it with `make down` first" in loser.output and "Traceback" not in loser.output
        assert wait_until(lambda: "stops everything" in winner.output, 90, 0.1) and winner.proc.poll() is None
        winner.proc.send_signal(signal.SIGINT)
        assert winner.proc.wait(timeout=30) == 0
    finally:
        for up in (first, second):
            stop(up)
    assert_nothing_left(lab_place)


@pytest.mark.server  # PostgreSQL starts before the app fails
def test_failed_start_leaves_nothing(lab_place):
    # PostgreSQL starts, then the app cannot: everything started so far must be stopped
    result = lab(lab_place, "demo", MODE="threaded", DJANGO_SETTINGS_MODULE="no.such.settings")
    assert result.returncode == 2
    assert "the threaded server exited" in result.stderr
    assert "Traceback (most recent call last)" not in result.stderr.split("end of")[0]
    assert_nothing_left(lab_place)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODE": "fastest"}, "MODE='fastest' is not valid: MODE takes one of"),
        ({"CPUS": "lots"}, "CPUS='lots' is not valid: CPUS takes a number"),
        ({"CPUS": "-1"}, "CPUS='-1' is not valid"),
        ({"MODE": "async", "WORKERS": "4"}, "WORKERS=4 does not apply to MODE=async"),
        ({"IO_SECONDS": "60"}, "IO_SECONDS='60' is not valid"),
        ({"RUN_TIME": "soon"}, "RUN_TIME='soon' is not valid"),
        ({"MODE": "async", "THREADS": "8"}, "THREADS=8 does not apply to MODE=async"),
        ({"MODE": "gunicorn", "CPU_OFFLOAD": "process"}, "CPU_OFFLOAD=process does not apply to MODE=gunicorn"),
        ({"DB_POOL": "maybe"}, "DB_POOL='maybe' is not valid: DB_POOL takes one of 1, 0"),
        ({"MODE": "async", "DB_POOL": "0"}, "DB_POOL=0 does not apply to MODE=async"),
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE='many' is not valid: DB_POOL_SIZE takes an integer from 1 to 250"),
    ],
)
def test_bad_knob_stops_before_anything_starts(lab_place, env, message):
    result = lab(lab_place, "up", **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not lab_place.state.exists()  # nothing was started, not even a folder made


def test_bad_knob_in_make_stops_before_anything_starts():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "up", "MODE=fastest"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "MODE='fastest' is not valid" in result.stderr


def test_taken_port_is_named(lab_place):
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a previous test's TIME_WAIT is no obstacle
        blocker.bind(("127.0.0.1", lab_place.app_port))
        blocker.listen()
        result = lab(lab_place, "demo", MODE="async")
    assert result.returncode == 2
    assert f"port {lab_place.app_port} on 127.0.0.1 is already taken" in result.stderr
    assert_nothing_left(lab_place)


def test_make_help_needs_no_virtual_environment():
    """`make help` is the first thing a new user runs, before `make setup`: the standard library must do."""
    result = subprocess.run(["make", "help", f"PYTHON={sys.executable} -S"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Modes (MODE=...):" in result.stdout and "MIX_CPU_SHARE" in result.stdout


# make's own targets: it sets the lab up, locks, tests and lints it, and starts a Docker engine; `lab decide` is
# what `make bench APP=...` and `make capacity APP=...` become (tests/test_command_line.py)
MAKE_ONLY = {"help", "setup", "lock", "engine", "engine-stop", "test", "test-fast", "lint", "clean"}
LAB_ONLY = {"decide"}


def test_make_help_and_lab_help_list_the_same_commands():
    made = subprocess.run(["make", "help", f"PYTHON={sys.executable} -S"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    targets = set(re.findall(r"^  ([a-z0-9-]+) ", made.stdout.split("\n\n")[1], re.M))  # its block: after the usage
    said = subprocess.run([PYTHON, "-m", "lab", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    commands = set(re.search(r"^usage: lab \[-h\]\s+\{([^}]+)\}", said.stdout, re.M)[1].split(","))  # type: ignore[index]
    assert made.returncode == said.returncode == 0, made.stderr + said.stderr
    assert targets - MAKE_ONLY == commands - LAB_ONLY
    assert targets >= MAKE_ONLY and commands >= LAB_ONLY
