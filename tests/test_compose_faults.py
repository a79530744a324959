"""What a long experiment survives on the compose backend, with a real Docker engine: the lab killed
hard (its containers stopped by the next command), and the engine itself stopping mid-run (that run
kept with its reason, the bench stopped naming `make engine`, RESUME continuing once one answers).

Skipped, loudly, where no engine answers, like every compose test."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from lab.results.run_files import load_records
from lab.stack.checkout import ROOT
from lab.stack.procs import wait_until

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench
from .test_compose_engine import ENV, engine_answers, leftovers, standins  # noqa: F401 (a fixture)
from .test_faults import assert_refused, experiment, measuring, recorded, stack

OFFSET = 25  # ports apart from the other compose tests'
ENGINE_PIDFILE = ROOT / ".lab" / "engine" / "dockerd.pid"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not engine_answers(), reason="NO DOCKER ENGINE ANSWERS: the compose tests did not run (`make engine`)"),
]


def start_bench(tmp_path: Path, offset: int, modes: str, run_time: float = 2) -> tuple[subprocess.Popen[str], Path, object]:
    experiment(tmp_path, modes, run_time)
    place, results = make_place(tmp_path / "state", offset), tmp_path / "results"
    proc = subprocess.Popen([PYTHON, "-m", "lab", "bench", str(tmp_path / "tiny.toml"), "--backend", "compose"], cwd=ROOT,
                            env=lab_env(place, LAB_RESULTS=str(results), **ENV), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    return proc, results, place


def test_a_compose_bench_killed_hard_is_cleaned_up_by_the_next_command_and_resumed(tmp_path):
    # three runs: the lab is killed in the second, after a second lab's refusal, with a third still to come
    proc, results, place = start_bench(tmp_path, OFFSET, '["threaded", "async", "gunicorn"]')
    assert wait_until(lambda: len(recorded(results)) >= 1 or proc.poll() is not None, 300), proc.communicate()
    assert wait_until(lambda: measuring(place), 120)
    # a second lab, while this one runs: refused as on native (tests/test_faults.py), nothing of this one touched
    second = [["up", "--backend", "compose"], ["bench", str(tmp_path / "tiny.toml"), "--backend", "compose"]]
    assert_refused(place, proc, "make bench EXPERIMENT=tiny", "compose", second, LAB_RESULTS=str(results), **ENV)
    proc.kill()
    proc.communicate(timeout=30)
    kept = {p.name: p.read_bytes() for p in recorded(results)}
    assert leftovers("container"), "a hard kill leaves the stack's containers (the next command stops them)"

    result = run_bench(place, results, str(tmp_path / "tiny.toml"), "--resume", "--backend", "compose", **ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopping what a lab that ended without stopping left running: make bench EXPERIMENT=tiny" in result.stdout
    records = load_records(results / "latest")
    assert len(records) == 3 and all(r["status"] == "ok" for r in records), [r["reason"] for r in records]
    assert all((results / "latest" / "runs" / name).read_bytes() == content for name, content in kept.items())
    down = subprocess.run([PYTHON, "-m", "lab", "down"], cwd=ROOT, env=lab_env(place, **ENV), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not leftovers("container") and not leftovers("volume")
    assert not processes_of(place.state)


def _engine(action: str) -> None:
    subprocess.run(["scripts/engine.sh", action], cwd=ROOT, check=True, capture_output=True, timeout=180)


@pytest.mark.skipif(
    not ENGINE_PIDFILE.exists(), reason="the engine was not started by the lab (scripts/engine.sh): not ours to stop"
)
def test_the_engine_stopping_mid_run_keeps_that_run_and_stops_the_bench_naming_make_engine(tmp_path):
    proc, results, place = start_bench(tmp_path, OFFSET + 1, '["threaded", "async"]', run_time=4)  # stopped in the second
    try:
        assert wait_until(lambda: len(recorded(results)) >= 1 or proc.poll() is not None, 300)
        assert wait_until(lambda: measuring(place), 120)
        _engine("stop")
        out, err = proc.communicate(timeout=180)
    finally:
        _engine("start")  # the other tests need it; and RESUME below
        proc.kill()
    assert proc.returncode == 2, out + err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "the Docker engine stopped answering: start one with `make engine`" in line, err
    assert "every finished run is kept" in line and "RESUME=1" in line, err
    first, second = load_records(results / "latest")
    assert first["status"] == "ok" and second["status"] == "failed", [first["reason"], second["reason"]]
    assert not stack(place)  # nothing claims the lab any more

    assert second["measure_again"] and "stopped answering" in second["reason"]

    result = run_bench(place, results, str(tmp_path / "tiny.toml"), "--resume", "--backend", "compose", **ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    records = load_records(results / "latest")
    assert [r["status"] for r in records] == ["ok", "ok"], [r["reason"] for r in records]  # the lost run measured again
    assert not leftovers("container")
    assert not processes_of(place.state)


def test_ctrl_c_while_compose_builds_and_starts_the_stack_leaves_nothing(tmp_path):
    place = make_place(tmp_path / "state", OFFSET + 2)
    # a session of its own, so that Ctrl-C can reach the whole group as a terminal's would
    up = subprocess.Popen([PYTHON, "-m", "lab", "up", "--backend", "compose"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=lab_env(place, BUILD="1", **ENV),
                          start_new_session=True)  # fmt: skip

    def building() -> bool:
        for child in psutil.Process(up.pid).children(recursive=True):
            try:
                if "--build" in child.cmdline():
                    return True
            except psutil.Error:  # a child that has just ended (a zombie not yet reaped): not the build
                continue
        return False

    try:
        assert wait_until(lambda: building() or up.poll() is not None, 120, 0.05), "compose never started building"
        os.killpg(up.pid, signal.SIGINT)
        out, _ = up.communicate(timeout=120)
    finally:
        up.kill()
    assert up.returncode == 130, out
    assert "interrupted; everything it started is stopped" in out and "Traceback" not in out
    assert not leftovers("container") and not leftovers("network")
    assert not processes_of(place.state) and not stack(place)
