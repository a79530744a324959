"""Reading a process's CPU use and CPU limit from the kernel: its cgroup (v1 or v2) and /proc.

The one reader the lab and the servers share: the lab reads the cgroup of a server it started (a
folder it made, or a container's), and a server reads its own, so that it can report its CPU use,
its limit and its throttling from any host. Standard library only: the servers' images have no more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuUsage:
    cpu_seconds: float
    nr_throttled: int | None = None
    throttled_seconds: float | None = None


@dataclass(frozen=True)
class Cgroup:
    """The folders of one cgroup: `cpu` holds the quota and throttling, `cpuacct` the CPU time (v1);
    under v2 one folder holds both."""

    cpu: Path
    cpuacct: Path | None  # None: cgroup v2

    def usage(self) -> CpuUsage | None:
        try:
            stat = keyed(self.cpu / "cpu.stat")
            if self.cpuacct is None:
                return CpuUsage(stat["usage_usec"] / 1e6, stat.get("nr_throttled"), stat.get("throttled_usec", 0) / 1e6)
            used_ns = int((self.cpuacct / "cpuacct.usage").read_text())
            return CpuUsage(used_ns / 1e9, stat.get("nr_throttled"), stat.get("throttled_time", 0) / 1e9)
        except (OSError, KeyError, ValueError):
            return None

    def limit(self) -> float | None:
        """The CPU limit the kernel enforces, in CPUs (None: no limit, or unreadable)."""
        try:
            if self.cpuacct is None:
                quota, period = (self.cpu / "cpu.max").read_text().split()
                return None if quota == "max" else int(quota) / int(period)
            quota_us = int((self.cpu / "cpu.cfs_quota_us").read_text())
            return None if quota_us < 0 else quota_us / int((self.cpu / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            return None


def of(pid: int | str = "self") -> Cgroup | None:
    """The cgroup a process is in, from /proc/PID/cgroup. A process reading its own ("self") inside a
    container may find the host's paths there while it sees its own cgroup at the root of each
    hierarchy: the root is used then (never for another process: its root would be the host's)."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path.lstrip("/")

    def folder(hierarchy: Path, path: str, wanted: str) -> Path | None:
        for candidate in (hierarchy / path, hierarchy) if pid == "self" else (hierarchy / path,):
            if (candidate / wanted).exists():
                return candidate
        return None

    if "cpu" in paths:  # v1
        cpu = folder(CGROUP / "cpu", paths["cpu"], "cpu.stat")
        cpuacct = folder(CGROUP / "cpuacct", paths.get("cpuacct", paths["cpu"]), "cpuacct.usage")
        return Cgroup(cpu, cpuacct) if cpu and cpuacct else None
    if "" in paths:  # v2
        unified = folder(CGROUP, paths[""], "cpu.stat")
        return Cgroup(unified, None) if unified else None
    return None


def keyed(path: Path) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines() if line.strip())}


def _parents() -> dict[int, int]:
    """Every process's parent, from one pass over /proc."""
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _read(PROC / entry.name / "stat")):
            found[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split(" ")[1])
    return found


def children(pid: int) -> list[int]:
    """A process's children, from /proc."""
    return sorted(child for child, parent in _parents().items() if parent == pid)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants, alive or already reaped by their parents."""
    total = 0.0
    for member in [pid, *_descendants(pid)]:
        stat = _read(PROC / str(member) / "stat")
        if stat:
            # utime stime cutime cstime: fields 14-17, counted after the command name's closing parenthesis
            fields = stat[stat.rfind(")") + 2 :].split(" ")
            total += sum(int(value) for value in fields[11:15]) / TICKS
    return total


def _descendants(pid: int) -> list[int]:
    """One pass over /proc, not one per process of the tree: PostgreSQL's is a dozen processes and more."""
    kids: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        kids.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        below = sorted(kids.get(todo.pop(), []))
        found += below
        todo += below
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
