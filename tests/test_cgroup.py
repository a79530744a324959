"""The one reader of CPU use and limits that the lab and the servers share (contract/cgroup.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from contract import cgroup

BUSY = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\ntime.sleep(30)"


def test_a_process_trees_cpu_counts_its_children_as_the_kernel_does():
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY!r}])"])
    try:
        assert psutil.Process(parent.pid)  # started
        deadline = time.monotonic() + 20
        while cgroup.tree_cpu_seconds(parent.pid) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = psutil.Process(parent.pid).children(recursive=True)
        by_psutil = sum(sum(p.cpu_times()[:2]) for p in [psutil.Process(parent.pid), *children])
        assert cgroup.tree_cpu_seconds(parent.pid) == pytest.approx(by_psutil, abs=0.05)
        assert cgroup.tree_cpu_seconds(parent.pid) >= 0.6
    finally:
        parent.kill()
        for child in psutil.Process().children(recursive=True):
            child.kill()


def test_our_own_cgroup_is_read_here_and_a_gone_process_has_none():
    group = cgroup.of("self")
    if group is None:
        pytest.skip("no cgroup with a cpu controller is mounted here")
    usage = group.usage()
    assert usage is not None and usage.cpu_seconds > 0
    assert cgroup.of(2**22 + 1) is None  # no such process
