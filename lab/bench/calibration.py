"""An opt-in second opinion on the load generator: the same endpoint, the same connection count,
driven by wrk (a C load generator that needs a fraction of Locust's CPU). Locust's throughput as a
share of wrk's says how much of a run's figure the load generator itself cost."""

from __future__ import annotations

import re
import shutil
import subprocess

from lab.results.experiments import RunConfig
from lab.results.record import Calibration

RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)


def calibrate(url: str, config: RunConfig, locust_rps: float) -> Calibration:
    wrk = shutil.which("wrk")
    if wrk is None:
        return Calibration("wrk", skipped="wrk is not installed (Debian: apt-get install wrk)")
    if config.knobs.workload == "mix":
        return Calibration("wrk", skipped="wrk sends one URL: a mix is not calibrated")
    target = f"{url}/currency/convert?from=usd&to=gbp&workload={config.knobs.workload}"
    seconds = max(2, round(config.run_time))
    argv = [wrk, "-t1", f"-c{config.knobs.users}", f"-d{seconds}s", "--timeout", "60s", target]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    found = RATE.search(done.stdout)
    if done.returncode != 0 or not found:
        return Calibration("wrk", skipped=f"wrk failed: {(done.stderr or done.stdout).strip()[-300:]}")
    rps = float(found.group(1))
    return Calibration("wrk", connections=config.knobs.users, seconds=seconds, rps=rps,
                       locust_ratio=round(locust_rps / rps, 3) if rps else None)  # fmt: skip
