"""The lab's Locust user: converts random seeded pairs with no think time and checks each answer.

FastHttpUser, because on two cores it drives about four times the requests per second of
HttpUser, and the load generator shares those cores with the server and PostgreSQL.

Three options serve headless experiments (`make bench`): --lab-warmup resets the statistics
once the warm-up is over, --lab-window writes when the measured window began and ended, and
--lab-timeline keeps where and when the server served each measured request (from its
response headers), for the report's timeline.
"""

import csv
import json
import os
import random
import time

import gevent
from locust.runners import WorkerRunner

from contract.endpoint import TIMELINE_COLUMNS, request_name, seeded_rates
from contract.knobs import REQUEST_WORKLOADS, WORKLOADS, setting
from locust import FastHttpUser, events, task

RATES = seeded_rates()
PAIRS = list(RATES)
KIND_OF = {request_name(kind): kind for kind in REQUEST_WORKLOADS}
TIMELINE_CAP = 20_000  # rows per load-generating process: enough for a short window of any run
TIMELINE_HEADERS = ("X-Worker-Pid", "X-Thread-Id", "X-Request-Start", "X-Request-End")

measuring = {"on": True}
window: dict[str, float] = {}
timeline: list[tuple[str, ...]] = []


class Converter(FastHttpUser):
    # No think time: a closed loop, so throughput = users / response time.
    # Requests can take IO_SECONDS or more; the default 60 s would cut long cpu runs.
    network_timeout = 300.0
    connection_timeout = 10.0

    @task
    def convert(self) -> None:
        source, target = random.choice(PAIRS)
        options = self.environment.parsed_options
        url = f"/currency/convert?from={source}&to={target}"
        kind = options.lab_workload
        if kind == "mix":  # Locust, not the server, chooses each request's kind
            kind = "cpu" if random.random() < options.lab_cpu_share else "io"
            url += f"&workload={kind}"
        with self.client.get(url, name=request_name(kind), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200] if response.text else ''}")
                return
            try:
                rate = response.json()["rate"]
            except (ValueError, KeyError, TypeError):
                response.failure("answer is not the endpoint's JSON")
                return
            if abs(rate - RATES[(source, target)]) > 1e-9:
                response.failure(f"wrong rate {rate} for {source}->{target}")


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument(
        "--lab-warmup",
        type=float,
        default=0.0,
        env_var="LOCUST_LAB_WARMUP",
        help="seconds of warm-up, after which the statistics are reset",
    )
    parser.add_argument(
        "--lab-workload",
        choices=WORKLOADS,
        default=setting("WORKLOAD"),
        env_var="LOCUST_LAB_WORKLOAD",
        help="the run's WORKLOAD: io and cpu name the requests by the server's workload; mix chooses per request",
    )
    parser.add_argument(
        "--lab-cpu-share",
        type=float,
        default=float(setting("MIX_CPU_SHARE")),
        env_var="LOCUST_LAB_CPU_SHARE",
        help="WORKLOAD=mix: the share of requests that count primes",
    )
    parser.add_argument(
        "--lab-timeline",
        default="",
        env_var="LOCUST_LAB_TIMELINE",
        help="CSV file for the server-side timeline of measured requests",
    )
    parser.add_argument(
        "--lab-window",
        default="",
        env_var="LOCUST_LAB_WINDOW",
        help="JSON file for the measured window: written when it starts and when it ends",
    )


def _window(environment, **times: float) -> None:
    """The measured window, in wall-clock seconds, for the bench to align its CPU readings with."""
    path = environment.parsed_options.lab_window
    if path and not isinstance(environment.runner, WorkerRunner):
        window.update(times)
        with open(path + ".tmp", "w") as out:
            json.dump(window, out)
        os.replace(path + ".tmp", path)


@events.test_start.add_listener
def _start(environment, **kwargs) -> None:
    warmup = environment.parsed_options.lab_warmup
    if warmup <= 0:
        _window(environment, start=time.time())
        return
    measuring["on"] = False

    def end_warmup() -> None:
        measuring["on"] = True
        if not isinstance(environment.runner, WorkerRunner):  # workers' stats flow to the master
            environment.runner.stats.reset_all()
            _window(environment, start=time.time())

    gevent.spawn_later(warmup, end_warmup)


@events.request.add_listener
def _record(response=None, exception=None, response_time=0.0, name="", **kwargs) -> None:
    if not measuring["on"] or response is None or len(timeline) >= TIMELINE_CAP:
        return
    headers = getattr(response, "headers", None) or {}
    values = tuple(headers.get(name) or "" for name in TIMELINE_HEADERS)
    if all(values):
        timeline.append((*values, str(response.status_code), f"{response_time:.3f}", KIND_OF.get(name, "")))


@events.test_stop.add_listener
def _write_timeline(environment, **kwargs) -> None:
    if "start" in window:
        # the measured window's failures, most frequent first: the record says why a run failed
        errors = sorted(environment.runner.stats.errors.values(), key=lambda e: -e.occurrences)
        window["errors"] = [{"error": str(e.error), "occurrences": e.occurrences} for e in errors[:5]]
        _window(environment, end=time.time())
    path = environment.parsed_options.lab_timeline
    if not path or not timeline:
        return
    if isinstance(environment.runner, WorkerRunner):  # one file per load-generating process
        path = f"{path}.{os.getpid()}"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TIMELINE_COLUMNS)
        writer.writerows(timeline)
