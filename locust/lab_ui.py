"""The Lab tab in Locust's web UI, and the Lab page beside it (/lab/timeline): what the server is, what it
is doing, what the model expects and who serves each request, live.

Through Locust's own extension points: the tab is an extended tab (`extended_tabs`, `extended_tables`)
whose rows ride on /stats/requests (`extended_stats`, added after the request), and the page and its data
are routes of a Flask blueprint on Locust's web app. The state in words comes from `make up`, which pushes
it here each second (POST /lab/state): Locust never reaches the host, on either backend.

Who serves each request comes from the server's where-and-when headers: each load-generating process
keeps its requests' rows; workers send theirs to the master each second (a custom message), so the page
works with distributed workers. The plugin stays idle in headless runs (`make bench`): without a web UI
nothing is kept and no worker sends anything.

Who may use the web app (docs/ui-trust.md): a page whose name resolves to 127.0.0.1 (DNS rebinding) reaches
it from the user's browser and reads its answers, and any page may post a form to it. So every request, to
Locust's routes and the Lab's alike, must name a host the lab serves (contract.knobs.ui_hosts), one that changes
anything and says where it comes from must come from the UI's own page, a swarm from the UI targets the lab's
own server (the host Locust was started with) unless LAB_UI_ANY_HOST=1, and the state is taken only from the
`make up` that started this Locust: with the token it handed it (TOKEN_ENV), whatever the network position.
"""

from __future__ import annotations

import hmac
import math
import os
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from flask import Blueprint, Response, jsonify, request
from jinja2 import ChoiceLoader, FunctionLoader
from locust.contrib.fasthttp import FastResponse
from locust.env import Environment
from locust.rpc.protocol import Message
from locust.runners import MasterRunner, Runner, WorkerRunner

from contract.endpoint import TIMELINE_COLUMNS, timeline_row
from contract.knobs import WORKLOADS, host_name, setting, ui_hosts
from contract.request_parts import NAMES, PARTS, request_parts
from locust import events

HERE = Path(__file__).resolve().parent
TAB = "lab"
KEPT_ROWS = 20_000  # rows of the window a kept run can hold, as the headless timeline's cap
RECENT_S = 60.0  # what the page's timeline may ask for
SEND_EVERY = 1.0  # seconds between a worker's messages of rows
INDEX_SCRIPT = '<script src="./lab/tab.js" defer></script>'
PAGE_NOTE = "/lab/timeline (the green link at the bottom right): who serves each request, switch the mode, keep a run"
TOKEN_ENV, TOKEN_HEADER = "LOCUST_LAB_UI_TOKEN", "X-Lab-Token"  # as lab/stack/locust_api.py hands and sends it
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Row = list[str]  # contract.endpoint.TIMELINE_COLUMNS: pid, thread, start_us, end_us, status, client_ms, workload, ...


class Store:
    """What the master (or a lone Locust with its UI) holds for the Lab: the state `make up` pushed, the
    rows of the requests served, and where Locust's window (since its last reset) begins."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.rows: deque[Row] = deque(maxlen=KEPT_ROWS)
        self.window_start: float | None = None
        self.swarm_start: float | None = None
        self.cpu_ms = 0.0  # CPU the plugin's handlers took: the tab's own cost
        self.active = False  # a worker: the master has a Lab, so send it rows
        self.outbox: list[Row] = []


store = Store()


def metered(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Count a handler's CPU as the Lab's own cost (Locust's greenlets share one thread: its CPU clock)."""

    @wraps(handler)
    def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return handler(*args, **kwargs)
        finally:
            store.cpu_ms += (time.thread_time() - started) * 1000

    return measured


def row_of(response: FastResponse | None, response_time: float, name: str, sent: object) -> Row | None:
    """A request as the Lab keeps it: the timeline's row (contract.endpoint.timeline_row), its intended start
    unknown here (the locustfile's own, for open arrivals)."""
    if response is None:
        return None
    row = timeline_row(getattr(response, "headers", None), response.status_code, response_time, name, intended=None,
                       sent=sent if isinstance(sent, float) else None, received=time.time())  # fmt: skip
    return list(row) if row is not None else None


# ---------------------------------------------------------------- the figures the plugin adds


def _span(row: Row) -> tuple[float, float]:
    return int(row[2]) / 1e6, int(row[3]) / 1e6


def in_flight(rows: list[Row], now: float) -> tuple[float, float] | None:
    """Requests in flight at the server, on average over 5 s: a request is known once it ends, so the
    stretch ends as long ago as the longest recent request took (then every request in it has ended).
    Returns (mean, seconds ago), or None without recent requests."""
    spans = [_span(r) for r in rows if int(r[3]) / 1e6 > now - 30]
    if not spans:
        return None
    lag = min(20.0, max(end - start for start, end in spans)) + 0.5
    end, start = now - lag, now - lag - 5.0
    busy = sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)
    return busy / 5.0, lag


def throughput(rows: list[Row], least: float = 10.0, most: float = 60.0) -> tuple[float, float] | None:
    """Requests per second, counted over a whole number of mean response times (at least `least` seconds)
    ending at the last completion: users started together complete in waves, and a stretch of whole waves
    counts them right where a fixed stretch would count one wave more or less. Returns (rate, seconds)."""
    if len(rows) < 2:
        return None
    latency = sum(float(r[5]) for r in rows) / len(rows) / 1000
    first, last = min(int(r[2]) for r in rows) / 1e6, max(int(r[3]) for r in rows) / 1e6
    if latency <= 0:
        return None
    waves = min(math.ceil(least / latency), math.floor(min(most, last - first) / latency))  # never before the first request
    if waves < 1:
        return None
    span = waves * latency
    done = sum(1 for r in rows if last - span < int(r[3]) / 1e6 <= last)
    return done / span, span


def lanes(rows: list[Row], now: float, seconds: float = 10.0) -> tuple[int, int]:
    """Threads and processes that served requests in the last `seconds`."""
    recent = [r for r in rows if int(r[3]) / 1e6 > now - seconds]
    return len({(r[0], r[1]) for r in recent}), len({r[0] for r in recent})


def recent_rows(now: float, seconds: float = 30.0) -> list[Row]:
    edge = (now - seconds) * 1e6
    return [r for r in reversed(store.rows) if int(r[3]) > edge][::-1]


def time_parts(rows: list[Row], now: float, seconds: float = 10.0) -> str:
    """Where the last seconds' requests spent their time: each part's mean (lab/analysis/latency_parts.py splits a
    run's the same way), the client's own measure beside it."""
    split = [found for row in rows if int(row[3]) / 1e6 > now - seconds
             and (found := request_parts(dict(zip(TIMELINE_COLUMNS, row, strict=False)), same_clock=True))]  # fmt: skip
    if not split:
        return "no request with the server's phases ended lately"
    means = {part: sum(parts[part] for parts, _ in split) / len(split) for part in PARTS if part != "generator"}
    latency = sum(measured for _, measured in split) / len(split)
    said = " · ".join(f"{NAMES[part]} {ms:.1f}" for part, ms in means.items())
    return f"{said} ms (means of {len(split)} requests in the last {seconds:g} s; the client measured {latency:.1f} ms)"


def plugin_rows(now: float) -> list[dict[str, str]]:
    rows = recent_rows(now)
    flight = in_flight(rows, now)
    threads, processes = lanes(rows, now)
    return [
        {"part": "live", "figure": "requests in flight at the server", "value": "no request ended lately" if flight is None
         else f"{flight[0]:.1f} on average over 5 s, ending {flight[1]:.1f} s ago (once every request in it has ended)"},
        {"part": "live", "figure": "who served", "value": f"{threads} thread(s) in {processes} process(es) in the last 10 s"},
        {"part": "live", "figure": "where the time went", "value": time_parts(rows, now)},
    ]  # fmt: skip


def tab_rows() -> list[dict[str, str]]:
    """The Lab tab's rows: the pushed state's, with the plugin's own live figures after the others."""
    now = time.time()
    state = store.state
    rows: list[dict[str, str]] = [
        {"part": "lab", "figure": "now", "value": state.get("message") or "waiting for `make up` to say what runs"},
        {"part": "lab", "figure": "the Lab page", "value": PAGE_NOTE},
    ]
    tables = list(state.get("tables") or [])
    last_live = max((i for i, r in enumerate(tables) if r.get("part") == "live"), default=len(tables) - 1)
    return rows + tables[: last_live + 1] + plugin_rows(now) + tables[last_live + 1 :]


def live_figures(environment: Environment) -> dict[str, Any]:
    """Locust's own figures now, for `make up`'s sampler (the answer to each push)."""
    runner = environment.runner
    assert runner is not None
    options = environment.parsed_options
    total = runner.stats.total
    workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
    return {
        "state": runner.state,
        "user_count": runner.user_count,
        "target_users": runner.target_user_count,
        "spawn_rate": getattr(options, "spawn_rate", None),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "window_start": store.window_start,
        "workload": getattr(options, "lab_workload", None),
        "cpu_share": getattr(options, "lab_cpu_share", None),
        "processes": max(1, workers),
        "cpu_warned": runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted,
        "plugin_cpu_ms": round(store.cpu_ms, 3),
        "throughput": throughput([r for r in recent_rows(time.time(), 70.0) if int(r[2]) >= (store.window_start or 0) * 1e6]),
    }


# ---------------------------------------------------------------- the master's (or a lone Locust's) side


def _page(name: str, kind: str) -> Response:
    return Response((HERE / name).read_text(), mimetype=kind, headers={"Cache-Control": "no-store"})


def _refused(why: str) -> Response:
    """A refusal in the shape Locust's page reads from its own routes (a swarm's answer: success, message)."""
    response = jsonify({"success": False, "message": why})
    response.status_code = 403
    return response


def _set_workload(environment: Environment, workload: str, share: float) -> None:
    """The users' WORKLOAD (and a mix's share), here and on every worker: what their next request sends."""
    options = environment.parsed_options
    if options is not None:
        options.lab_workload, options.lab_cpu_share = workload, share
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.send_message("lab_workload", {"workload": workload, "cpu_share": share})


def blueprint(environment: Environment) -> Blueprint:
    lab = Blueprint("lab", __name__)
    runner = environment.runner
    assert runner is not None
    token = os.environ.get(TOKEN_ENV, "").encode()  # none: a Locust that `make up` did not start takes no state

    @lab.route("/lab/state", methods=["POST"])
    @metered
    def take_state() -> Response:
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not (token and hmac.compare_digest(given, token)):
            return _refused(f"only the `make up` that started this Locust pushes the Lab's state (its {TOKEN_HEADER})")
        store.state = request.get_json(force=True, silent=True) or {}
        return jsonify(live_figures(environment))

    @lab.route("/lab/status")
    @metered
    def status() -> Response:
        now = time.time()
        return jsonify({**store.state, "plugin_rows": plugin_rows(now), "locust": live_figures(environment), "now": now})

    @lab.route("/lab/rows")
    @metered
    def rows() -> Response:
        now = time.time()
        since = max(float(request.args.get("since") or 0), (now - RECENT_S) * 1e6)
        return jsonify({"now": now, "rows": [r for r in store.rows if int(r[3]) > since]})

    @lab.route("/lab/window")
    @metered
    def window() -> Response:
        start = store.window_start
        edge = (start or 0) * 1e6
        return jsonify({
            "start": start, "now": time.time(), "state": runner.state,
            "entries": runner.stats.serialize_stats(), "errors": list(runner.stats.serialize_errors().values()),
            "rows": [r for r in store.rows if int(r[2]) >= edge], "user_count": runner.user_count,
            "workload": getattr(environment.parsed_options, "lab_workload", None),
            "cpu_share": getattr(environment.parsed_options, "lab_cpu_share", None),
            "processes": live_figures(environment)["processes"],
            "ramp_seconds": max(0.0, (start or 0) - (store.swarm_start or start or 0)),
            "cpu_warned": live_figures(environment)["cpu_warned"],
        })  # fmt: skip

    @lab.route("/lab/workload", methods=["POST"])
    @metered
    def workload() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        chosen, share = body.get("workload"), body.get("cpu_share")
        if chosen not in WORKLOADS or not isinstance(share, int | float) or not 0 <= share <= 1:
            return Response("workload must be one of " + ", ".join(WORKLOADS) + " and cpu_share from 0 to 1", status=400)
        _set_workload(environment, chosen, float(share))
        return jsonify({"workload": chosen, "cpu_share": share})

    @lab.route("/lab/timeline")
    @metered
    def page() -> Response:
        return _page("lab_page.html", "text/html")

    @lab.route("/lab/tab.js")
    @metered
    def tab_script() -> Response:
        return _page("lab_tab.js", "application/javascript")

    return lab


def _target(url: str) -> tuple[str, ...]:
    """A swarm's host as compared: the case of its scheme and name, and a trailing slash, aside."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, parts.fragment


def refusal(host: str | None, origin: str | None, method: str, names: frozenset[str]) -> str | None:
    """Why a request to Locust's web app is refused, or None: it names a host the lab does not serve, or it
    would change something from a page other than the one it names (no Origin: not a page's request)."""
    if host_name(host) not in names:
        return f"Locust's web UI answers requests for {', '.join(sorted(names))} alone, not for Host {host!r} " \
               "(LAB_UI_HOSTS opens it to a name on purpose)"  # fmt: skip
    if method in SAFE_METHODS or origin is None:
        return None
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc.lower() == str(host).lower():  # the page the request names
        return None
    return f"only the UI's own page may change anything here, not a page of {origin!r}"


def guard(environment: Environment) -> Callable[[], Response | None]:
    """What runs before every request to Locust's web app: a refusal, or None to let it through."""
    names = ui_hosts()
    own = environment.host or ""  # as Locust was started: a swarm's form changes environment.host
    any_host = setting("LAB_UI_ANY_HOST") == "1"

    def check() -> Response | None:
        why = refusal(request.headers.get("Host"), request.headers.get("Origin"), request.method, names)
        if why is None and request.path == "/swarm" and not any_host and "host" in request.form:
            asked = request.form["host"]
            if not own or _target(asked) != _target(own):
                why = f"a swarm from the UI targets the lab's own server, {own}, not {asked!r} (LAB_UI_ANY_HOST=1 opens it)"
        return None if why is None else _refused(why)

    return check


def attach(environment: Environment) -> None:
    """The Lab on the process that serves the web UI."""
    web_ui, runner = environment.web_ui, environment.runner
    assert web_ui is not None and runner is not None
    environment.reset_stats = True  # the window opens once every user runs: after the ramp-up, as --reset-stats
    web_ui.template_args.update(
        extended_tabs=[{"title": "Lab", "key": TAB}],
        extended_tables=[{"key": TAB, "structure": [{"key": "part", "title": "Part"}, {"key": "figure", "title": "Figure"},
                                                    {"key": "value", "title": "Value"}]}],
        extended_csv_files=[{"href": "./lab/timeline", "title": f"The Lab page: {PAGE_NOTE.split(': ', 1)[1]}"}],
    )  # fmt: skip
    app = web_ui.app
    assert app is not None
    app.before_request(guard(environment))  # before Locust's own routes and the Lab's alike
    template = Path(app.template_folder or "") / "index.html"

    def index(name: str) -> str | None:
        """Locust's own page, with the script that links the Lab page from it."""
        if name != "index.html" or not template.exists():
            return None
        return template.read_text().replace("</body>", f"{INDEX_SCRIPT}\n</body>", 1)

    assert app.jinja_env.loader is not None
    app.jinja_env.loader = ChoiceLoader([FunctionLoader(index), app.jinja_env.loader])
    app.register_blueprint(blueprint(environment))

    @app.after_request
    def extend_stats(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        started = time.thread_time()
        payload = response.get_json(silent=True) or {}
        payload["extended_stats"] = [{"key": TAB, "data": tab_rows()}]
        response.set_data(app.json.dumps(payload))
        store.cpu_ms += (time.thread_time() - started) * 1000
        return response

    if isinstance(runner, MasterRunner):
        runner.register_message("lab_rows", lambda environment, msg: store.rows.extend(msg.data))
    else:  # a lone Locust generates the load itself
        environment.events.request.add_listener(_keep_row)

    @environment.events.test_start.add_listener
    def started(**kwargs: object) -> None:
        store.window_start, store.swarm_start = None, time.time()
        options = environment.parsed_options
        if isinstance(runner, MasterRunner) and options is not None:  # tells the workers, and wakes their rows
            runner.send_message("lab_workload", {"workload": options.lab_workload, "cpu_share": options.lab_cpu_share})

    @environment.events.spawning_complete.add_listener
    def ramped(**kwargs: object) -> None:
        store.window_start = time.time()

    @environment.events.reset_stats.add_listener
    def reset(**kwargs: object) -> None:
        store.window_start = time.time()


def _keep_row(response: FastResponse | None = None, response_time: float = 0.0, name: str = "", **kwargs: object) -> None:
    if (row := row_of(response, response_time, name, kwargs.get("start_time"))) is not None:
        store.rows.append(row)


# ---------------------------------------------------------------- a worker's side


def _buffer_row(response: FastResponse | None = None, response_time: float = 0.0, name: str = "", **kwargs: object) -> None:
    if store.active and (row := row_of(response, response_time, name, kwargs.get("start_time"))) is not None:
        store.outbox.append(row)


def _forward(runner: Runner) -> None:
    while True:
        gevent.sleep(SEND_EVERY)
        if store.active and store.outbox:
            rows, store.outbox = store.outbox[:KEPT_ROWS], []
            runner.send_message("lab_rows", rows)


def _on_workload(environment: Environment, msg: Message, **kwargs: object) -> None:
    store.active = True
    options = environment.parsed_options
    if options is not None:
        options.lab_workload, options.lab_cpu_share = msg.data["workload"], float(msg.data["cpu_share"])


@events.init.add_listener
def _init(environment: Environment, **kwargs: object) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("lab_workload", _on_workload)
        environment.events.request.add_listener(_buffer_row)
        gevent.spawn(_forward, runner)
    elif environment.web_ui is not None:
        attach(environment)
