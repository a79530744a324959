"""The CPU limit holds: a cpu-bound stream against a server limited to 0.5 CPU uses about 0.5 CPU."""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .conftest import running


def test_half_a_cpu_is_half_a_cpu(place, database):
    with running(place, database, mode="gunicorn", workers=2, workload="cpu", primes_limit=60_000, cpus=0.5) as app:
        if not app.limit.enforced or "cgroup" not in app.limit.method:
            import pytest

            pytest.skip(f"no cgroup CPU quota on this machine: {app.limit.method}")
        deadline = time.monotonic() + 4.0

        def stream() -> int:
            done = 0
            while time.monotonic() < deadline:
                with urllib.request.urlopen(f"{app.url}/currency/convert?from=usd&to=gbp", timeout=30) as r:
                    assert r.status == 200
                done += 1
            return done

        before, started = app.usage(), time.monotonic()
        with ThreadPoolExecutor(4) as pool:  # more demand than two workers at 0.5 CPU can serve
            requests = sum(pool.map(lambda _: stream(), range(4)))
        after, elapsed = app.usage(), time.monotonic() - started
    used = (after.cpu_seconds - before.cpu_seconds) / elapsed
    print(
        f"{requests} requests in {elapsed:.2f}s used {used:.3f} CPU under a 0.5 limit "
        f"({after.nr_throttled - before.nr_throttled} throttled periods)"
    )
    assert requests > 0
    assert used <= 0.5 * 1.15  # the kernel's accounting, with room for one period's slack
    assert used >= 0.3  # and the server was really busy, so the bound was what held it
    assert after.nr_throttled > before.nr_throttled
