"""What a long experiment survives, on the native backend, each fault made for real: the lab killed
hard, SIGTERM and SIGHUP, a detached run whose terminal goes away, the server or PostgreSQL dying
mid-run, a full or read-only disk, a corrupt record, a port taken, a second lab.

For each: nothing already measured is lost, nothing the lab started keeps running (stopped by the
lab at the time or by the next lab command), one clear line says what happened and what to do, and
`RESUME=1` continues."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from lab.results.run_files import load_records
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.procs import wait_until

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench

pytestmark = pytest.mark.slow

TINY = """
description = "a few short runs, to be interrupted"
io_seconds = 0.05
primes_limit = 10_000
warmup = 0.5
run_time = {run_time}
users = 3
[[matrix]]
modes = {modes}
workloads = "io"
"""


def experiment(tmp_path: Path, modes: str, run_time: float = 1.5) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(modes=modes, run_time=run_time))
    return path


def case(tmp_path: Path, modes: str, offset: int, run_time: float = 1.5) -> tuple[Path, Path, Place]:
    """An experiment of `modes`, its results folder, and a place of its own (ports apart by `offset`)."""
    return experiment(tmp_path, modes, run_time), tmp_path / "results", make_place(tmp_path / "state", offset)


def start_bench(place: Place, results: Path, path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, "-m", "lab", "bench", str(path), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=lab_env(place, LAB_RESULTS=str(results)))  # fmt: skip


def recorded(results: Path) -> list[Path]:
    return sorted((results / "latest" / "runs").glob("*.json")) if (results / "latest").exists() else []


def wait_for_records(results: Path, count: int, proc: subprocess.Popen[str] | None = None, timeout: float = 180) -> None:
    ok = wait_until(lambda: len(recorded(results)) >= count or (proc is not None and proc.poll() is not None), timeout)
    if not (ok and len(recorded(results)) >= count):
        said = ""
        if proc is not None:  # what the bench said, to know why
            proc.kill()
            out, err = proc.communicate(timeout=30)
            said = f"\nthe bench said:\n{out}\n{err}"
        pytest.fail(f"{len(recorded(results))} records after {timeout} s{said}")


def stack(place: Place) -> dict[str, object]:
    try:
        return json.loads(place.stack_file.read_text())
    except (OSError, ValueError):
        return {}


def measuring(place: Place) -> bool:
    """Locust runs: a run is in its measured part (or its warm-up)."""
    return bool(stack(place).get("locust"))


def lab(place: Place, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "lab", *args], cwd=ROOT, env=lab_env(place, **env), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def lab_up(place: Place, mode: str) -> subprocess.Popen[bytes]:
    """`make up MODE=mode` in the background, once it has started Locust (the last thing it starts)."""
    up = subprocess.Popen([PYTHON, "-m", "lab", "up"], cwd=ROOT, env=lab_env(place, MODE=mode),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    if not wait_until(lambda: bool(stack(place).get("locust")) or up.poll() is not None, 90):
        up.kill()
    assert up.poll() is None, f"lab up MODE={mode} did not come up"
    return up


def assert_nothing_left(place: Place) -> None:
    assert wait_until(lambda: not processes_of(place.state), 15), [p.cmdline() for p in processes_of(place.state)]


def test_a_bench_killed_hard_is_cleaned_up_and_resumed_by_the_next_command(tmp_path):
    path, results, place = case(tmp_path, '["nothreading", "async", "gunicorn"]', 30)
    proc = start_bench(place, results, path)
    wait_for_records(results, 1, proc)
    wait_until(lambda: measuring(place), 60)
    proc.kill()  # what an out-of-memory kill or a lost SSH session leaves: no handler runs
    proc.communicate(timeout=30)
    kept = {p.name: p.read_bytes() for p in recorded(results)}
    assert processes_of(place.state), "a hard kill should leave the stack running (the next command stops it)"

    result = run_bench(place, results, str(path), "--resume")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopping what a lab that ended without stopping left running: make bench EXPERIMENT=tiny" in result.stdout
    assert f"{len(kept)} already recorded" in result.stdout
    after = {p.name: p.read_bytes() for p in recorded(results)}
    assert len(after) == 3 and all(after[name] == content for name, content in kept.items())
    reasons = [r["reason"] for r in load_records(results / "latest")]
    assert reasons == [None, None, None]
    assert not place.stack_file.exists()
    assert_nothing_left(place)


def test_make_down_stops_what_a_lab_killed_hard_left(tmp_path):
    place = make_place(tmp_path / "state", 31)
    up = lab_up(place, "gunicorn")
    try:
        up.kill()
        up.wait(timeout=10)
        assert processes_of(place.state)
        down = lab(place, "down")
        assert down.returncode == 0, down.stderr
    finally:
        up.kill()
    assert_nothing_left(place)
    assert not place.stack_file.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_bench_as_ctrl_c_does(tmp_path, sig):
    path, results, place = case(tmp_path, '["nothreading", "async"]', 32)
    proc = start_bench(place, results, path)
    wait_for_records(results, 1, proc)
    wait_until(lambda: measuring(place), 60)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted; finished runs are kept. Continue with: make bench EXPERIMENT=" in err
    assert "Traceback" not in err
    assert load_records(results / "latest")  # the finished run is whole
    assert_nothing_left(place)
    assert not place.stack_file.exists()


def test_a_detached_bench_outlives_its_terminal_and_logs_its_progress(tmp_path):
    path, results, place = case(tmp_path, '["nothreading", "async"]', 33)
    # the detaching command runs in a session of its own, as a terminal's shell would; then the terminal goes
    shell = subprocess.Popen([PYTHON, "-m", "lab", "bench", str(path), "--detach"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=lab_env(place, LAB_RESULTS=str(results)),
                             start_new_session=True)  # fmt: skip
    said, _ = shell.communicate(timeout=120)
    assert shell.returncode == 0, said
    assert "running detached as pid" in said and "`make down` stops it" in said
    log = Path(said.split("progress in ", 1)[1].split(" ", 1)[0])
    with pytest.raises(ProcessLookupError):
        os.killpg(shell.pid, signal.SIGHUP)  # the terminal's session is gone; the bench is not in it
    assert wait_until(lambda: "bench: done" in log.read_text(), 180), log.read_text()
    assert "[1/2]" in log.read_text() and "[2/2]" in log.read_text()
    assert len(load_records(results / "latest")) == 2
    assert_nothing_left(place)


def _pids_of(place: Place, program: str) -> list[int]:
    """The app's processes running `program` (the server's master first)."""
    app = stack(place).get("app")
    if not isinstance(app, int):
        return []
    try:
        master = psutil.Process(app)
        family = [master, *master.children(recursive=True)]
        return [p.pid for p in family if program in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _in_run(place: Place, program: str, timeout: float = 90) -> list[int]:
    """Wait until `program` serves and Locust is measuring it; its pids."""
    assert wait_until(lambda: measuring(place) and bool(_pids_of(place, program)), timeout), f"no {program} run came"
    time.sleep(1.0)  # into the measured window
    return _pids_of(place, program)


def _worker_pids(place: Place) -> list[int]:
    """The worker processes the server reports itself running (its /healthz)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{place.app_port}/healthz", timeout=10) as response:
        return list(json.loads(response.read())["server"]["worker_pids"])


def test_a_server_or_database_dying_mid_run_fails_that_run_with_its_reason_and_the_experiment_goes_on(tmp_path):
    # 1 gunicorn: a worker killed (the master replaces it); 2 granian: its master killed; 3 granian-asgi: a worker
    # killed (its master replaces it); 4 gthread: told to drop a worker (SIGTTOU),
    # so that the server no longer runs the run's WORKERS=2; 5 threaded: PostgreSQL killed; 6 async: must get a
    # working database again
    modes = '["gunicorn", "granian", "granian-asgi", "gthread", "threaded", "async"]'
    path, results, place = case(tmp_path, modes, 34, run_time=4)
    proc = start_bench(place, results, path)
    try:
        _, *workers = _in_run(place, "gunicorn")
        os.kill(workers[0], signal.SIGKILL)
        wait_for_records(results, 1, proc)
        master_granian = _in_run(place, "granian")[0]
        os.kill(master_granian, signal.SIGKILL)
        wait_for_records(results, 2, proc)
        _in_run(place, "granian")
        granian_worker = _worker_pids(place)[0]
        os.kill(granian_worker, signal.SIGKILL)
        wait_for_records(results, 3, proc)
        os.kill(_in_run(place, "gunicorn")[0], signal.SIGTTOU)  # Gunicorn's master: one worker fewer
        wait_for_records(results, 4, proc)
        _in_run(place, "manage.py")
        postmaster = int((place.state / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    gunicorn, granian, granian_asgi, gthread, threaded, fastapi = load_records(results / "latest")
    assert gunicorn["status"] == "ok", gunicorn["reason"]
    replaced = [f for f in gunicorn["findings"] if f["kind"] == "workers_replaced"]
    assert replaced and replaced[0]["gone"][0]["pid"] == workers[0], gunicorn["findings"]
    assert any(f"worker process(es) {workers[0]}" in w for w in gunicorn["warnings"])
    assert granian["status"] == "failed"
    assert granian["reason"].startswith("the server died during the run: its process was killed by SIGKILL"), granian["reason"]
    # Granian, told to, replaces its worker as Gunicorn does: the run goes on and says which worker died
    replaced = [f for f in granian_asgi["findings"] if f["kind"] == "workers_replaced"]
    assert replaced and replaced[0]["gone"][0]["pid"] == granian_worker, (granian_asgi["reason"], granian_asgi["findings"])
    assert gthread["status"] == "failed"
    assert gthread["reason"] == (
        "after the run, the server no longer ran the run's configuration: workers is 1 in the server, 2 in the run"
    ), gthread["reason"]
    assert gthread["server_after"]["differences"] and gthread["verification"]["server"]["workers"] == 2
    assert threaded["status"] == "failed" and "PostgreSQL had stopped" in threaded["reason"], threaded["reason"]
    assert fastapi["status"] == "ok", fastapi["reason"]
    assert "FAILED: the server died during the run" in out
    assert_nothing_left(place)


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="making a small disk needs root (a tmpfs)")
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_disk_stops_the_bench_with_every_earlier_record_intact(tmp_path, fault):
    path, results, place = case(tmp_path, '["nothreading", "async"]', 35)  # the fault comes in the second run
    _tmpfs(results, "32m")
    try:
        proc = start_bench(place, results, path)
        wait_for_records(results, 1, proc)
        kept = {p.name: p.read_bytes() for p in recorded(results)}
        if fault == "full":
            filler = results / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)  # until the disk is full
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(results)], check=True)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 2, out + err
        assert "Traceback" not in err
        reason = "No space left on device" if fault == "full" else "Read-only file system"
        (line,) = [line for line in err.splitlines() if line.startswith("error:")]
        assert reason in line and "The runs recorded before it are intact" in line and "RESUME=1" in line, err
        assert_nothing_left(place)
        if fault == "full":
            filler.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(results)], check=True)
        for name, content in kept.items():
            assert (results / "latest" / "runs" / name).read_bytes() == content
        result = run_bench(place, results, str(path), "--resume")
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(load_records(results / "latest")) == 2
    finally:
        subprocess.run(["umount", "-l", str(results)], check=False)
    assert_nothing_left(place)


def test_a_corrupt_record_is_named_with_what_to_do_and_nothing_starts(tmp_path, smoke_results):
    results = tmp_path / "results"
    folder = results / "smoke-20260101T000000"
    shutil.copytree(smoke_results, folder)
    (results / "latest").symlink_to(folder.name)
    broken = sorted((folder / "runs").glob("*.json"))[1]
    broken.write_text(broken.read_text()[:200])  # a record cut short
    place = make_place(tmp_path / "state", 36)
    for args in (["bench", "smoke", "--resume"], ["report", str(folder)]):
        result = lab(place, *args, LAB_RESULTS=str(results))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"{broken}: not a readable run record" in result.stderr
        assert "move it out of the runs/ folder (RESUME=1 measures that run again)" in result.stderr
    assert not processes_of(place.state)
    broken.rename(tmp_path / broken.name)  # as the message says
    report = lab(place, "report", str(folder))
    assert report.returncode == 0, report.stderr


def test_a_port_another_program_holds_stops_the_bench_before_anything_starts(tmp_path):
    path, place = experiment(tmp_path, '["async"]'), make_place(tmp_path / "state", 37)
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", place.app_port))
        blocker.listen()
        result = run_bench(place, tmp_path / "results", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {place.app_port} on 127.0.0.1 is already taken" in result.stderr
    assert "Traceback" not in result.stderr
    assert not processes_of(place.state)


def assert_refused(place: Place, running: subprocess.Popen[bytes] | subprocess.Popen[str], what: str, backend: str,
                   commands: list[list[str]], **env: str) -> None:  # fmt: skip
    """Each of `commands`, started while `running` (the lab that runs `what`) holds the stack, is refused in the
    same words on every backend: what runs, its pid and backend, and how to stop it; the running lab goes on."""
    for args in commands:
        result = lab(place, *args, **env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"the lab is already running: {what} (pid {running.pid}, {backend} backend" in result.stderr
        assert "stop it with `make down` first" in result.stderr
        assert "Traceback" not in result.stderr
        assert running.poll() is None  # the running lab is left alone


def test_a_second_lab_is_refused_while_one_runs_whatever_it_is(tmp_path):
    place = make_place(tmp_path / "state", 38)
    up = lab_up(place, "async")
    try:
        commands = [["up"], ["bench", str(experiment(tmp_path, '["async"]'))], ["demo"], ["capacity"]]
        assert_refused(place, up, "make up MODE=async", "native", commands, LAB_RESULTS=str(tmp_path / "results"))
        assert lab(place, "down").returncode == 0
        up.wait(timeout=30)
    finally:
        up.kill()
    assert_nothing_left(place)


def test_a_recorded_pid_that_a_stranger_has_since_is_left_alone(tmp_path):
    """After a crash and a reboot the pids a lab recorded may be other processes': `make down` (and the next
    lab, which stops what a killed one left) signals only a process that started when its record says."""
    place = make_place(tmp_path / "state", 13)
    stranger = subprocess.Popen(["sleep", "120"], start_new_session=True)  # its own group, as the lab's are
    try:
        began = psutil.Process(stranger.pid).create_time()
        earlier = began - 3600  # the lab's own process of that pid started an hour before this one
        place.state.mkdir(parents=True)
        place.stack_file.write_text(json.dumps({
            "supervisor": stranger.pid, "supervisor_started": earlier, "command": "make up MODE=async",
            "backends": ["native"], "app": stranger.pid, "app_started": earlier, "locust": stranger.pid,
            "locust_started": earlier,
        }))  # fmt: skip
        data = place.postgres().data
        data.mkdir(parents=True)
        (data / "postmaster.pid").write_text(f"{stranger.pid}\n{data}\n{int(earlier)}\n{place.pg_port}\n")
        down = subprocess.run([PYTHON, "-m", "lab", "down"], cwd=ROOT, env=lab_env(place), capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert down.returncode == 0, down.stdout + down.stderr
        assert stranger.poll() is None, "the stranger was signalled"
        assert f"pid {stranger.pid} is no longer the lab's supervisor" in down.stdout
        assert f"pid {stranger.pid} is no longer the lab's app" in down.stdout
    finally:
        stranger.kill()
        stranger.wait()
