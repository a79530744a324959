"""The compose backend of `make bench`: the same runs as native, with the app and Locust in
containers (compose.yaml). Needs a Docker engine; the commands are built here, in one place,
so that tests can check them without one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab import ROOT
from lab.cpulimit import CpuUsage
from lab.knobs import Knobs, setting
from lab.procs import LabError

CONTAINER_RESULTS = Path("/results")  # compose.yaml mounts ./results there for Locust
CONTAINER_APP = "http://app:8000"


def compose_env(knobs: Knobs) -> dict[str, str]:
    """What `docker compose` reads for one run: the knobs, and SERVICE from the mode table."""
    return {**os.environ, **knobs.as_env(), "SERVICE": knobs.server.service}


def compose(*args: str) -> list[str]:
    return ["docker", "compose", "--project-directory", str(ROOT), *args]


class ComposeLimit:
    enforced = True

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus

    def describe(self) -> str:
        return f"Docker --cpus={self.cpus:g} (a CFS quota set by the engine)" if self.cpus > 0 else "none (CPUS=0)"


class ComposeApp:
    """The app container for one configuration; PostgreSQL stays up between runs."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.env = compose_env(knobs)
        self.limit = ComposeLimit(knobs.cpus)
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{setting('APP_PORT')}"

    def _run(self, *args: str) -> str:
        result = subprocess.run(compose(*args), env=self.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise LabError(f"docker compose {' '.join(args)} failed: {result.stderr.strip()[-1500:]}")
        return result.stdout

    def start(self) -> None:
        self._run("up", "--detach", "--build", "--wait", "postgres", "app")

    def usage(self) -> CpuUsage:
        """The container's own cgroup (v2 inside the container: cpu.stat)."""
        stat = dict(line.split() for line in self._run("exec", "-T", "app", "cat", "/sys/fs/cgroup/cpu.stat").splitlines())
        return CpuUsage(int(stat["usage_usec"]) / 1e6, int(stat.get("nr_throttled", 0)), int(stat.get("throttled_usec", 0)) / 1e6)

    def stop(self) -> None:
        self._run("rm", "--stop", "--force", "app")


def locust_argv(options: dict[str, object], results: Path) -> list[str]:
    """Locust's headless run in the locust-master container, writing into the mounted results."""
    mapped = {k: CONTAINER_RESULTS / Path(v).relative_to(results) if isinstance(v, Path) else v for k, v in options.items()}
    mapped["--host"] = CONTAINER_APP
    argv = compose("run", "--rm", "--no-deps", "-T", "locust-master", "-f", "/lab/locust/locustfile.py", "--headless",
                   "--only-summary")  # fmt: skip
    return argv + [str(part) for pair in mapped.items() for part in pair]


def down() -> None:
    subprocess.run(compose("down", "--volumes", "--remove-orphans"), capture_output=True, timeout=300)


def locust_cpu(locust: object) -> float | None:
    return None


def postgres_cpu() -> float | None:
    return None
