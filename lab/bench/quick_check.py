"""The post's quick check, run: N concurrent requests, each kept as it completes, then the total."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from itertools import cycle, islice

from contract.endpoint import seeded_rates
from lab.results.quick_check import QuickCheck, Reply


def _request(base_url: str, source: str, target: str, workload: str, started: float, timeout: float) -> Reply:
    url = f"{base_url}/currency/convert?from={source}&to={target}&workload={workload}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except OSError:
        status, body = 0, b"{}"
    try:
        rate = json.loads(body).get("rate")
    except ValueError:
        rate = None
    return Reply(f"{source.upper()}->{target.upper()}", rate, status, time.perf_counter() - started)


def quick_check(base_url: str, mode: str, workload: str, n: int = 2, timeout: float = 300) -> QuickCheck:
    pairs = list(islice(cycle(seeded_rates()), n))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_request, base_url, a, b, workload, started, timeout) for a, b in pairs]
        replies = [f.result() for f in as_completed(futures)]
    return QuickCheck(mode, workload, replies, time.perf_counter() - started)
