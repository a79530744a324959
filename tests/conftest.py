"""Fixtures: a real PostgreSQL for the session, real servers per test, and an orphan detector.

Tests listen on their own ports and keep their state in their own folder, so they can run
beside a lab that is up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from contract.declared import Who, declared
from contract.knobs import Knobs, parse
from lab.stack.backends.native import AppServer
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.postgres import Postgres

PYTHON = sys.executable

# Each session's temporary folders in a root of their own. PostgreSQL runs as its own user and must
# traverse every folder above its data, but any pytest run makes the shared /tmp/pytest-of-<user>
# private again when it starts: a second session beside this one would cut its database off.
TEMP_ROOT = Path(os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.mkdtemp(prefix="lab-tests-")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A passing session leaves nothing behind; a failing one keeps its folders (logs, records) to read."""
    if exitstatus == 0 and TEMP_ROOT.name.startswith("lab-tests-") and not hasattr(session.config, "workerinput"):
        shutil.rmtree(TEMP_ROOT, ignore_errors=True)
    elif exitstatus != 0:
        print(f"\ntests: the session's folders (server and PostgreSQL logs, records) are kept in {TEMP_ROOT}")


# LAB_TEST_PORT_BASE shifts every test port, so that two test sessions can run side by side
_BASE = int(os.environ.get("LAB_TEST_PORT_BASE", "0"))
TEST_PORTS = {"APP_PORT": 18000 + _BASE, "PG_PORT": 15433 + _BASE, "LOCUST_PORT": 18089 + _BASE,
              "LAB_CONTROL_PORT": 18200 + _BASE}  # fmt: skip


def make_place(state: Path, offset: int = 0) -> Place:
    return Place(
        state=state,
        app_port=TEST_PORTS["APP_PORT"] + offset,
        pg_port=TEST_PORTS["PG_PORT"] + offset,
        locust_port=TEST_PORTS["LOCUST_PORT"] + offset,
        control_port=TEST_PORTS["LAB_CONTROL_PORT"] + offset,
    )


def knobs(**values: object) -> Knobs:
    return parse({k.upper(): str(v) for k, v in values.items()})


def lab_env(place: Place, **extra: str) -> dict[str, str]:
    """The environment for running `python -m lab` as a user would, at the test's place: on the native backend
    unless the test says otherwise, and none of a command's options (RESUME, DETACH, ...) but those it names."""
    env = {name: value for name, value in os.environ.items() if name not in declared(Who.COMMAND)}
    env.update(
        BACKEND="native",
        LAB_STATE_DIR=str(place.state),
        APP_PORT=str(place.app_port),
        PG_PORT=str(place.pg_port),
        LOCUST_PORT=str(place.locust_port),
        LAB_CONTROL_PORT=str(place.control_port),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def processes_of(state: Path) -> list[psutil.Process]:
    """Every process started for a lab whose state is in `state`: they all inherit LAB_STATE_DIR, and
    PostgreSQL, which writes its process titles over its environment, names its data folder there."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get("LAB_STATE_DIR") == str(state) or f"{state}/" in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-state")


@pytest.fixture(scope="session")
def place(state_dir: Path) -> Place:
    return make_place(state_dir)


@pytest.fixture(scope="session")
def database(place: Place) -> Iterator[Postgres]:
    os.environ["LAB_STATE_DIR"] = str(place.state)  # children inherit it: see processes_of
    pg = place.postgres()
    pg.start()
    yield pg
    pg.stop()


@contextmanager
def running(place: Place, database: Postgres, **values: object) -> Iterator[AppServer]:
    app = AppServer(knobs(**values), place, database.url)
    try:
        app.start()
        yield app
    finally:
        app.stop()


def run_bench(place: Place, results: Path, experiment: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "lab", "bench", experiment, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=lab_env(place, LAB_RESULTS=str(results), **env),
    )


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run of the `smoke` experiment (what CI runs), shared by the bench and report tests."""
    base = tmp_path_factory.mktemp("smoke")
    place = make_place(base / "state", 3)
    result = run_bench(place, base / "results", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    (base / "bench.out").write_text(result.stdout)  # what the terminal showed
    assert not processes_of(place.state)
    return (base / "results" / "latest").resolve()


# Fixtures that start real processes, directly or through the fixtures they ask for: a test that uses
# one (item.fixturenames holds the whole closure) needs a server. A test that starts one through a
# helper (running, run_bench, `python -m lab up`) is marked `server` (or `slow`) where it is written.
SERVER_FIXTURES = frozenset({"database", "place", "smoke_results"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `server` every test that starts real processes, so that `make test-fast` (-m "not server")
    runs only the ones that need none; a slow test runs servers by definition."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("slow") or fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)


LAB_PROGRAMS = ("postgres", "manage.py", "gunicorn", "uvicorn", "granian", "locust", "-m lab")


@pytest.fixture(scope="session", autouse=True)
def no_orphans_at_the_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After every test: no process of any lab the tests started may remain, whatever failed."""
    yield
    base = f"{tmp_path_factory.getbasetemp()}/"  # a folder of its own: pytest-3 is not pytest-38
    left = []
    for proc in psutil.process_iter():
        try:
            lab_program = any(name in " ".join(proc.cmdline()) for name in LAB_PROGRAMS)
            ours = proc.environ().get("LAB_STATE_DIR", "").startswith(base) or base in " ".join(proc.cmdline())
            if lab_program and ours and proc.pid != os.getpid():
                left.append(" ".join(proc.cmdline()))
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    assert not left, f"processes left behind by the tests: {left}"
