"""The lab's Locust user: converts random seeded pairs with no think time and checks each answer.

FastHttpUser, because on two cores it drives about four times the requests per second of
HttpUser, and the load generator shares those cores with the server and PostgreSQL.

Three options serve headless experiments (`make bench`): --lab-warmup resets the statistics
once the warm-up is over, --lab-window writes when the measured window began and ended, and
--lab-timeline keeps where and when the server served each measured request (from its
response headers), for the report's timeline.

With --lab-arrival-rate the users stop being a closed loop: requests arrive at that rate
(constant or Poisson) whatever the replies, each user taking the next arrival from one shared
schedule, and --lab-open-file keeps each measured arrival's latency counted from its intended
start, not its actual send (so a slow server is not sent less work and its queue is not hidden).

Run distributed (--processes, or workers on other hosts), each worker offers its share of the
arrivals (contract/open_arrivals.py), and at the end sends the master its arrivals and timeline rows
through Locust's messages: the master writes the files a lone Locust writes.
"""

import csv
import json
import os
import random
import time
from argparse import Namespace
from typing import Literal, TypedDict

import gevent
import lab_ui  # noqa: F401  (the Lab tab and page of `make up`; idle in headless runs)
from locust.argument_parser import LocustArgumentParser
from locust.contrib.fasthttp import FastResponse
from locust.env import Environment
from locust.rpc.protocol import Message
from locust.runners import STATE_MISSING, MasterRunner, Runner, WorkerRunner

from contract.endpoint import TIMELINE_COLUMNS, request_name, seeded_rates, timeline_row
from contract.knobs import WORKLOADS, app_paths, setting
from contract.open_arrivals import Arrivals, OpenReport, Share, merge, slots
from locust import FastHttpUser, events, task

RATES = seeded_rates()
PAIRS = list(RATES)
# An app of the user's (APP, PATHS): its paths, by weight, each request named by its path so statistics keep them apart.
PATHS = app_paths()
TIMELINE_CAP = 20_000  # rows per load-generating process: enough for a short window of any run

LATE_S = 0.01  # an arrival sent this long after its intended start was late: every user was busy
DROP_S = 2.0  # one this late is dropped unsent: the generator could not keep up with the rate
# Locust's custom messages of a distributed run: a worker's share of the arrivals, the start of the master's
# window, its request for what the worker measured, and the answer (its arrivals and timeline rows).
SHARE, WINDOW, ASK, REPORT = "lab_open_share", "lab_window_start", "lab_open_ask", "lab_open_report"
REPORT_WAIT = 15.0  # seconds the master waits for its workers' answers


class ErrorCount(TypedDict):
    error: str
    occurrences: int


class Window(TypedDict, total=False):
    """The measured window, as the bench reads it: wall-clock start and end, and the failures in it."""

    start: float
    end: float
    errors: list[ErrorCount]


measuring = {"on": True}
window: Window = {}
timeline: list[tuple[str, ...]] = []
intended_of: dict[object, float] = {}  # open arrivals: each user's request in flight, by its greenlet, and its intended start


def _parsed(environment: Environment) -> Namespace:
    """The command line's options: Locust parses them before any user or event handler runs."""
    assert environment.parsed_options is not None
    return environment.parsed_options


def _runner(environment: Environment) -> Runner:
    """Locust makes its runner before the test starts."""
    assert environment.runner is not None
    return environment.runner


class WorkerReport(TypedDict):
    """What a worker sends the master at the end of a run."""

    share: dict[str, int]  # Share's fields
    open: OpenReport | None
    rows: list[tuple[str, ...]]


arrivals = Arrivals()  # the open model's schedule, shared by every user of this process
shares: dict[str, Share] = {}  # master: the share it gave each worker
reports: dict[str, WorkerReport] = {}  # master: each worker's answer


class Converter(FastHttpUser):
    # No think time: a closed loop, so throughput = users / response time.
    # Requests can take IO_SECONDS or more; the default 60 s would cut long cpu runs.
    network_timeout = 300.0
    connection_timeout = 10.0
    # With LOCUSTFILE the team's own users send the traffic, loaded beside this file: its hooks (warm-up, window,
    # timeline, errors) still see every request, but this user stays out.
    abstract = bool(setting("LOCUSTFILE"))

    @task
    def convert(self) -> None:
        if arrivals.rate <= 0:
            self.send()
            return
        intended = arrivals.take()  # open model: wait for this arrival's time, whatever the replies
        if intended > time.time():
            gevent.sleep(intended - time.time())
        late = time.time() - intended
        counted = measuring["on"] and intended >= window.get("start", float("inf"))
        if counted:
            arrivals.counts["offered"] += 1
        if late > DROP_S:
            arrivals.counts["dropped"] += counted
            return
        if counted:
            arrivals.pending.add(intended)
        intended_of[gevent.getcurrent()] = intended  # the request's listener reads it: the generator's own lag
        ok = self.send()
        if counted:
            arrivals.pending.discard(intended)
            arrivals.counts["sent"] += 1
            arrivals.counts["late"] += late > LATE_S
            arrivals.latencies.append((intended, (time.time() - intended) * 1000, ok))

    def send(self) -> bool:
        if PATHS:
            return self.send_path()
        source, target = random.choice(PAIRS)
        options = _parsed(self.environment)
        url = f"/currency/convert?from={source}&to={target}"
        kind = options.lab_workload
        if kind == "mix":  # Locust, not the server, chooses each request's kind
            kind = "cpu" if random.random() < options.lab_cpu_share else "io"
            url += f"&workload={kind}"
        with self.client.get(url, name=request_name(kind), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200] if response.text else ''}")
                return False
            try:
                rate = response.json()["rate"]
            except (ValueError, KeyError, TypeError):
                response.failure("answer is not the endpoint's JSON")
                return False
            if abs(rate - RATES[(source, target)]) > 1e-9:
                response.failure(f"wrong rate {rate} for {source}->{target}")
                return False
            return True

    def send_path(self) -> bool:
        path = random.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
        with self.client.get(path, name=path, catch_response=True) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}: {response.text[:200] if response.text else ''}")
                return False
            return True


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
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
        include_in_web_ui=False,  # set from the Lab page, which says what runs
    )
    parser.add_argument(
        "--lab-cpu-share",
        type=float,
        default=float(setting("MIX_CPU_SHARE")),
        env_var="LOCUST_LAB_CPU_SHARE",
        help="WORKLOAD=mix: the share of requests that count primes",
        include_in_web_ui=False,  # set from the Lab page, which says what runs
    )
    parser.add_argument(
        "--lab-arrival-rate",
        type=float,
        default=0.0,
        env_var="LOCUST_LAB_ARRIVAL_RATE",
        help="open arrivals: requests per second whatever the replies (0: a closed loop of users)",
    )
    parser.add_argument(
        "--lab-arrivals",
        choices=("constant", "poisson"),
        default="poisson",
        env_var="LOCUST_LAB_ARRIVALS",
        help="open arrivals: evenly spaced, or a Poisson process",
    )
    parser.add_argument(
        "--lab-open-file",
        default="",
        env_var="LOCUST_LAB_OPEN_FILE",
        help="open arrivals: JSON file for the measured arrivals (offered, sent, late, dropped, latencies)",
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


def _window(environment: Environment, edge: Literal["start", "end"], at: float) -> None:
    """The measured window, in wall-clock seconds, for the bench to align its CPU readings with."""
    if edge == "start" and isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(WINDOW)  # its workers measure from now on (each its own warm-up would differ)
    path = _parsed(environment).lab_window
    if path and not isinstance(environment.runner, WorkerRunner):
        window[edge] = at
        with open(path + ".tmp", "w") as out:
            json.dump(window, out)
        os.replace(path + ".tmp", path)


@events.test_start.add_listener
def _start(environment: Environment, **kwargs: object) -> None:
    options = _parsed(environment)
    runner = _runner(environment)
    if isinstance(runner, MasterRunner):  # before its spawn messages, so each worker knows its share when it starts
        shares.clear()
        shares.update(slots(sorted((worker.id for worker in runner.clients.ready), key=runner.get_worker_index)))
        for worker, share in shares.items():
            runner.send_message(SHARE, {"workers": share.workers, "slot": share.slot}, client_id=worker)
    arrivals.start(options.lab_arrival_rate, options.lab_arrivals == "poisson", time.time())
    if isinstance(runner, WorkerRunner):
        return  # it measures from its master's window start to its master's request (_window_started, _answer)
    warmup = options.lab_warmup
    if warmup <= 0:
        _window(environment, "start", time.time())
        return
    measuring["on"] = False

    def end_warmup() -> None:
        measuring["on"] = True
        if not isinstance(environment.runner, WorkerRunner):  # workers' stats flow to the master
            _runner(environment).stats.reset_all()
            _window(environment, "start", time.time())

    gevent.spawn_later(warmup, end_warmup)


@events.request.add_listener
def _record(
    response: FastResponse | None = None,
    exception: BaseException | None = None,
    response_time: float = 0.0,
    name: str = "",
    **kwargs: object,
) -> None:
    received = time.time()
    intended = intended_of.pop(gevent.getcurrent(), None)
    if not measuring["on"] or response is None or len(timeline) >= TIMELINE_CAP:
        return
    sent = kwargs.get("start_time")
    row = timeline_row(getattr(response, "headers", None), response.status_code, response_time, name, intended=intended,
                       sent=sent if isinstance(sent, float) else None, received=received)  # fmt: skip
    if row is not None:
        timeline.append(row)


@events.test_stop.add_listener
def _write_timeline(environment: Environment, **kwargs: object) -> None:
    runner = _runner(environment)
    if isinstance(runner, WorkerRunner):
        return  # it sent its arrivals and rows when the master asked (_answer)
    options = _parsed(environment)
    if "start" in window:
        # the measured window's failures, most frequent first: the record says why a run failed
        errors = sorted(runner.stats.errors.values(), key=lambda e: -e.occurrences)
        window["errors"] = [{"error": str(e.error), "occurrences": e.occurrences} for e in errors[:5]]
        _window(environment, "end", time.time())
    open_file = options.lab_open_file if options.lab_arrival_rate > 0 else ""
    if isinstance(runner, MasterRunner):
        if not (open_file or options.lab_timeline):
            return
        asked = _ask(runner)
        opened: OpenReport | None = merge({w: (Share(**r["share"]), r["open"]) for w, r in reports.items() if r["open"]}, asked)
        rows = [row for report in reports.values() for row in report["rows"]]
    else:
        opened = arrivals.report(window.get("start"), window.get("end", time.time())) if open_file else None
        rows = timeline
    if opened is not None and open_file:
        with open(open_file, "w") as out:
            json.dump(opened, out)
    if options.lab_timeline and rows:
        with open(options.lab_timeline, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(TIMELINE_COLUMNS)
            writer.writerows(rows)


def _ask(runner: MasterRunner) -> list[str]:
    """Asks each worker given a share for what it measured, and waits for the answers of those still connected
    (REPORT_WAIT at most). Returns the workers asked: the merge names those that did not answer."""
    asked = list(shares)
    reports.clear()
    for worker in asked:
        runner.send_message(ASK, None, client_id=worker)
    deadline = time.monotonic() + REPORT_WAIT

    def connected(worker: str) -> bool:
        return worker in runner.clients and runner.clients[worker].state != STATE_MISSING

    while any(w not in reports and connected(w) for w in asked) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return asked


def _answer(environment: Environment, msg: Message, **kwargs: object) -> None:
    """A worker, when its master's run ends: its arrivals, counted to now by its own clock (the hosts' clocks
    may differ), and its timeline rows."""
    measuring["on"] = False
    options = _parsed(environment)
    report = arrivals.report(window.get("start"), time.time()) if options.lab_arrival_rate > 0 else None
    share = {"workers": arrivals.share.workers, "slot": arrivals.share.slot}
    _runner(environment).send_message(REPORT, WorkerReport(share=share, open=report, rows=timeline))


def _take_share(environment: Environment, msg: Message, **kwargs: object) -> None:
    arrivals.share, arrivals.origin = Share(**msg.data), time.time()


def _window_started(environment: Environment, msg: Message, **kwargs: object) -> None:
    """A worker: its master's window has started; its arrivals are counted from now, by its own clock."""
    window["start"] = time.time()
    measuring["on"] = True


@events.init.add_listener
def _messages(environment: Environment, **kwargs: object) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(REPORT, lambda environment, msg: reports.__setitem__(msg.node_id, msg.data))
    elif isinstance(runner, WorkerRunner):
        measuring["on"] = False  # until its master's window starts
        runner.register_message(SHARE, _take_share)
        runner.register_message(WINDOW, _window_started)
        runner.register_message(ASK, _answer)
