"""CPU limits enforced by the kernel, as Docker's --cpus does: a CFS quota on a cgroup.

Tried in order: cgroup v2 `cpu.max`, cgroup v1 `cpu.cfs_quota_us` (with `cpuacct` for the
accounting), then pinning to whole cores with CPU affinity, then nothing (said loudly).
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
from pathlib import Path

import psutil

from contract.cgroup import CGROUP, Cgroup, CpuUsage

PERIOD_US = 100_000  # Docker's period


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class CpuLimit:
    """A CPU limit for one server; `wrap(argv)` starts a command inside it."""

    method: str = "none"
    enforced: bool = False

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def preexec(self) -> None:
        """Runs in the child before exec (affinity pinning)."""

    def usage(self, root_pid: int | None) -> CpuUsage:
        """CPU time of the server's processes; the cgroup counts exited children too."""
        if root_pid is None:
            return CpuUsage(0.0)
        try:
            root = psutil.Process(root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return CpuUsage(0.0)
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return CpuUsage(total)

    def pids(self) -> list[int]:
        return []

    def remove(self) -> None:
        """Release the limit; kills nothing."""

    def describe(self) -> str:
        return self.method


class _CgroupLimit(CpuLimit):
    enforced = True

    def __init__(self, cpus: float, name: str, dirs: list[Path]) -> None:
        super().__init__(cpus)
        self.dirs = dirs
        for folder in dirs:
            folder.mkdir(exist_ok=True)
        self.quota_us = round(cpus * PERIOD_US)

    def wrap(self, argv: list[str]) -> list[str]:
        # The shell joins the group before it execs the server, so no child can escape it.
        # && throughout: a server that could not join its group must not run unlimited
        joins = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["sh", "-c", f'{joins} && exec "$@"', "sh", *argv]

    def pids(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.dirs:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return sorted(pids)

    def remove(self) -> None:
        for folder in self.dirs:
            with contextlib.suppress(OSError):  # still has processes, or already gone
                folder.rmdir()


class CgroupV1(_CgroupLimit):
    def __init__(self, cpus: float, name: str) -> None:
        super().__init__(cpus, name, [CGROUP / "cpu" / name, CGROUP / "cpuacct" / name])
        _write(self.dirs[0] / "cpu.cfs_period_us", str(PERIOD_US))
        _write(self.dirs[0] / "cpu.cfs_quota_us", str(self.quota_us))
        self.method = f"cgroup v1 CFS quota {self.quota_us}/{PERIOD_US} us ({cpus:g} CPU)"

    def usage(self, root_pid: int | None) -> CpuUsage:
        return Cgroup(self.dirs[0], self.dirs[1]).usage() or CpuUsage(0.0)


class CgroupV2(_CgroupLimit):
    def __init__(self, cpus: float, name: str) -> None:
        super().__init__(cpus, name, [CGROUP / name])
        _write(self.dirs[0] / "cpu.max", f"{self.quota_us} {PERIOD_US}")
        self.method = f"cgroup v2 cpu.max {self.quota_us} {PERIOD_US} ({cpus:g} CPU)"

    def usage(self, root_pid: int | None) -> CpuUsage:
        return Cgroup(self.dirs[0], None).usage() or CpuUsage(0.0)


class Affinity(CpuLimit):
    def __init__(self, cpus: float, cores: list[int]) -> None:
        super().__init__(cpus)
        self.cores = cores
        self.enforced = True
        self.method = (
            f"CPU affinity to cores {','.join(map(str, cores))} (no cgroup available: "
            f"{cpus:g} CPU rounded up to {len(cores)} whole core(s))"
        )

    def preexec(self) -> None:
        os.sched_setaffinity(0, self.cores)


def _v2_cpu_available() -> bool:
    controllers = CGROUP / "cgroup.subtree_control"
    if not (CGROUP / "cgroup.controllers").exists():
        return False
    if "cpu" in controllers.read_text().split():
        return True
    try:
        _write(controllers, "+cpu")
    except OSError:
        return False
    return "cpu" in controllers.read_text().split()


def leftover_pids(name: str) -> list[int]:
    """Processes still inside a cgroup of this name, from an earlier run (creates nothing)."""
    pids: set[int] = set()
    for folder in (CGROUP / "cpu" / name, CGROUP / "cpuacct" / name, CGROUP / name):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
    return sorted(pids)


def make_limit(cpus: float, name: str) -> CpuLimit:
    """The strongest limit this machine allows; `.method` says which, for the record."""
    if cpus <= 0:
        limit = CpuLimit(cpus)
        limit.method = "none (CPUS=0: the server may use every core)"
        return limit
    attempts: list[str] = []
    for kind in (CgroupV2, CgroupV1):
        try:
            if kind is CgroupV2 and not _v2_cpu_available():
                attempts.append("cgroup v2: cpu controller not available")
                continue
            if kind is CgroupV1 and not (CGROUP / "cpu" / "cpu.cfs_quota_us").exists():
                attempts.append("cgroup v1: no cpu controller mounted")
                continue
            return kind(cpus, name)
        except OSError as error:
            attempts.append(f"{kind.__name__}: {error.strerror or error}")
    try:
        available = sorted(os.sched_getaffinity(0))
        cores = available[: max(1, math.ceil(cpus))]
        if len(cores) < len(available):
            return Affinity(cpus, cores)
        attempts.append(f"affinity: {cpus:g} CPU covers every core")
    except (AttributeError, OSError) as error:
        attempts.append(f"affinity: {error}")
    limit = CpuLimit(cpus)
    limit.method = "NONE: the server runs UNLIMITED (" + "; ".join(attempts) + ")"
    return limit
