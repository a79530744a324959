"""The post's quick check: N concurrent requests, each printed as it completes, then the total."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from itertools import cycle, islice

from contract.endpoint import seeded_rates


@dataclass(frozen=True)
class Reply:
    pair: str
    rate: float | None
    status: int
    seconds: float


@dataclass(frozen=True)
class QuickCheck:
    mode: str
    workload: str
    replies: list[Reply]  # in the order they completed
    total_seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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


def render(check: QuickCheck) -> str:
    n = len(check.replies)
    lines = [f"Sending {n} concurrent requests... (MODE={check.mode}, WORKLOAD={check.workload})"]
    for i, reply in enumerate(check.replies, 1):
        lines.append(f"[{i}/{n}] {reply.pair} | resp={reply.rate} | status={reply.status} | {reply.seconds:.4f}s")
    lines.append(f"Total time: {check.total_seconds:.4f}s")
    return "\n".join(lines)
