"""Loaded into Locust beside the locustfile (`-f locust/locustfile.py,this file`) when its workers run on
other hosts, by the bench's master and by `make worker` alike.

Each worker adds its own CPU seconds to the statistics it reports to the master (every 3 s, and once
more as it quits); the master writes, per worker, each report's CPU seconds with when it arrived, by the
master's clock (the hosts' clocks may differ), and Locust's own CPU figure for it, to --lab-workers-file,
so that the lab can say how busy each worker was over the measured window. Locust and the standard
library only: it runs inside Locust's processes, never in the lab's.
"""

from __future__ import annotations

import json
import os
import resource
import time

from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import MasterRunner

from locust import events

CPU_KEY = "lab_cpu_seconds"

reports: dict[str, list[tuple[float, float]]] = {}  # worker id -> (arrived at, its CPU seconds)
locust_cpu: dict[str, float] = {}  # worker id -> Locust's own figure, the last while the worker was connected
masters: list[MasterRunner] = []


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument("--lab-workers-file", default="", help="master: JSON file for each worker's CPU, as it reports it")


@events.init.add_listener
def _init(environment: Environment, **kwargs: object) -> None:
    if isinstance(environment.runner, MasterRunner):
        masters.append(environment.runner)


@events.report_to_master.add_listener
def _add_cpu(client_id: str, data: dict[str, object], **kwargs: object) -> None:
    own = resource.getrusage(resource.RUSAGE_SELF)  # this worker process alone
    data[CPU_KEY] = round(own.ru_utime + own.ru_stime, 4)


@events.worker_report.add_listener
def _keep_cpu(client_id: str, data: dict[str, object], **kwargs: object) -> None:
    seconds = data.get(CPU_KEY)
    if not masters or not isinstance(seconds, int | float):
        return
    reports.setdefault(client_id, []).append((time.time(), float(seconds)))
    master = masters[0]
    if client_id in master.clients:
        locust_cpu[client_id] = master.clients[client_id].cpu_usage
    options = master.environment.parsed_options
    path = getattr(options, "lab_workers_file", "") if options else ""
    if not path:
        return
    workers = {
        worker: {
            "index": master.worker_indexes.get(worker),
            "locust_cpu_percent": locust_cpu.get(worker),
            "reports": samples,
        }
        for worker, samples in reports.items()
    }
    with open(path + ".tmp", "w") as out:  # whole or not at all: the lab reads it once Locust has exited
        json.dump({"expected": getattr(options, "expect_workers", None), "workers": workers}, out)
    os.replace(path + ".tmp", path)
