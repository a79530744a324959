"""Gunicorn settings from the lab's knobs; printed at start so each run records what it ran."""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # gunicorn ships no type information: these name what the hooks are given
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# The lab always sets WORKERS and THREADS (the mode table holds their defaults).
workers = int(os.environ["WORKERS"])
threads = int(os.environ["THREADS"])
# sync workers at one thread (the post's setup), gthread when threads are asked for, or when
# the mode says so (MODE=gthread)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or ("sync" if threads == 1 else "gthread")
# Longer than any request the lab allows (IO_SECONDS <= 30, plus the cpu workload under a
# small CPU limit), so that a slow request is measured, never killed.
timeout = 120
graceful_timeout = 10
accesslog = None
errorlog = "-"
loglevel = "info"


def on_starting(server: "Arbiter") -> None:
    server.log.info("lab gunicorn: workers=%s threads=%s worker_class=%s timeout=%s", workers, threads, worker_class, timeout)


def post_worker_init(worker: "Worker") -> None:
    # what this worker really runs, for the app's /healthz to report
    os.environ["LAB_GUNICORN_THREADS"] = str(worker.cfg.threads)
    os.environ["LAB_GUNICORN_WORKER_CLASS"] = type(worker).__name__
