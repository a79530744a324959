"""CPU time of the whole machine and of the lab's parts, read around a measured window.

On two cores the server, PostgreSQL and the load generator share the machine: a run whose machine
had no idle CPU left measured the machine, not the server, whatever each process's own share says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from contract import cgroup

TICK = os.sysconf("SC_CLK_TCK")
SATURATED_IDLE = 0.10  # a machine with less idle CPU than this over a window was saturated


@dataclass(frozen=True)
class MachineCpu:
    busy: float  # CPU-seconds the machine's cores spent not idle, since boot
    idle: float


def machine() -> MachineCpu:
    """All cores together, from /proc/stat (idle and iowait count as idle)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return MachineCpu((sum(fields) - idle) / TICK, idle / TICK)


def tree(pid: int | None) -> float:
    """CPU-seconds of a process and its descendants, including children that have exited and been
    reaped (PostgreSQL's backends come and go)."""
    return 0.0 if pid is None else cgroup.tree_cpu_seconds(pid)


@dataclass(frozen=True)
class MachineWindow:
    """A record's `machine_cpu`: the whole machine over the window, and each part's CPU-seconds (with `other`)."""

    cores: int | None
    cpu_seconds: float
    busy_cpu_seconds: float
    idle_share: float | None
    saturated: bool
    parts_cpu_seconds: dict[str, float | None]


def window(before: MachineCpu, after: MachineCpu, parts: dict[str, float | None]) -> MachineWindow:
    """The machine over a window: its CPU-seconds, idle share, and each part's CPU-seconds (None where
    a part could not be read); `other` is what the machine did beside the lab's parts."""
    busy, idle = after.busy - before.busy, after.idle - before.idle
    total = busy + idle
    known = sum(v for v in parts.values() if v is not None)
    shares = {k: None if v is None else round(v, 3) for k, v in parts.items()}
    return MachineWindow(
        cores=os.cpu_count(),
        cpu_seconds=round(total, 3),
        busy_cpu_seconds=round(busy, 3),
        idle_share=round(idle / total, 4) if total > 0 else None,
        saturated=total > 0 and idle / total < SATURATED_IDLE,
        parts_cpu_seconds={**shares, "other": round(max(0.0, busy - known), 3)},
    )
