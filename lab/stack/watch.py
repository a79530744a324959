"""`make logs` and `make ps` (`lab logs`, `lab ps`): the running lab's logs followed and its processes listed, on
the backend it runs on (compose: its containers; otherwise the lab's processes on this host)."""

from __future__ import annotations

import os
import subprocess

from contract.knobs import from_environ
from lab.stack.backends.compose_cli import compose
from lab.stack.checkout import ROOT
from lab.stack.place import Place


def _compose_env() -> dict[str, str]:
    return {**os.environ, "SERVICE": from_environ().server.service}  # the image that serves MODE


def follow_logs(backend: str) -> int:
    if backend == "compose":
        return subprocess.call(compose("logs", "--follow"), env=_compose_env())
    place = Place()
    logs = [*sorted(place.logs.glob("*.log")), place.postgres().log]  # tail -F waits for one not written yet
    return subprocess.call(["tail", "-n", "50", "-F", *map(str, logs)])


def processes(backend: str) -> int:
    if backend == "compose":
        return subprocess.call(compose("ps"), env=_compose_env())
    found = subprocess.run(["pgrep", "-d,", "-f", f"{ROOT}/(\\.venv|\\.lab)"], capture_output=True, text=True).stdout
    pids = [pid for pid in found.strip().split(",") if pid and int(pid) != os.getpid()]  # not this command's own
    if not pids or subprocess.call(["ps", "-o", "pid,pgid,pcpu,rss,args", "-p", ",".join(pids)]) != 0:
        print("lab: nothing runs")
    return 0
