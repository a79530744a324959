"""Starting and stopping the lab's processes: own process groups, logs on disk, no orphans."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType


class LabError(RuntimeError):
    """A failure the user can act on; shown as one clear message, never a traceback."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: stop everything, as on Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def stop_on_signals() -> None:
    # Ctrl-C explicitly too: a background job of a non-interactive shell (and some CI runners) starts with
    # SIGINT ignored, and Python leaves an ignored SIGINT ignored, so such a lab could not be interrupted.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)


def check_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as servers do: connections of a previous run in TIME_WAIT do not make a port taken
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LabError(
                    f"port {port} on {host} is already taken, so {what} cannot listen there; "
                    f"stop whatever uses it (`make down`, or `ss -ltnp 'sport = :{port}'` to see it) or choose another port"
                ) from None
            raise


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while a process is started and its handle kept, so that an
    interrupt can never leave a child we do not know about; they arrive right after."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, preexec: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own, so that it and all its children stop together.
    Call it inside `signals_deferred()` and keep the handle before the block ends."""

    def child_setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # the mask is inherited: give them back
        if preexec is not None:
            preexec()

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=child_setup,
        )  # fmt: skip


def _exists(send: Callable[[int, int], None], target: int) -> bool:
    """Signal 0 checks without touching: gone, or there (ours or not)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive(pid: int) -> bool:
    """Running: a process that has exited but is not yet reaped by its parent (a zombie) is not."""
    if not _exists(os.kill, pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0] != "Z"


def group_alive(pgid: int) -> bool:
    return _exists(os.killpg, pgid)


# A pid is a number the kernel hands out again once its process is gone: after a crash and a reboot, or a
# long uptime, a pid the lab recorded may be a stranger's. A process is the one recorded only if it also
# started when it was recorded to (psutil's create_time is boot time plus the start in clock ticks: the
# same figure for the same process on every reading).
SAME_START_S = 0.05


def started_at(pid: int) -> float | None:
    """When this process started (seconds since the epoch), or None when there is none by that pid."""
    import psutil  # here, not at the top: `make help` runs before `make setup`, on the standard library alone

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process(pid: int, started: float | None) -> bool:
    """The process recorded as `pid`, started at `started`, runs still; an unknown start is no proof."""
    now = started_at(pid)
    return now is not None and started is not None and abs(now - started) < SAME_START_S and alive(pid)


def own_group(pgid: int, started: float | None) -> bool:
    """A process group the lab started, whose leader started at `started`: its leader runs still and is that
    process; or the leader is gone and members remain (the kernel gives no new process a pid that still
    names a group, so the group is the one recorded)."""
    if started_at(pgid) is not None:
        return same_process(pgid, started)
    return group_alive(pgid)


def stop_group(pgid: int, timeout: float = 10.0, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is still there after `timeout`.

    `leader` is the group's leader when it is our child: it must be reaped, or its zombie
    keeps the group looking alive.
    """

    def gone() -> bool:
        if leader is not None:
            leader.poll()
        return not group_alive(pgid)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if wait_until(gone, wait, interval=0.05):
            return


def reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        stop_group(proc.pid, leader=proc)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early, with the log's tail, if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"{what} exited with code {proc.returncode} before it was ready; end of {log}:\n{tail(log)}")
        if http_status(url) == 200:
            return
        time.sleep(0.1)
    raise LabError(f"{what} did not answer 200 at {url} within {timeout:g} s; end of {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
