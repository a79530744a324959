"""Gunicorn settings from the lab's knobs; printed at start so each run records what it ran."""

import os

workers = int(os.environ.get("WORKERS", "2"))
threads = int(os.environ.get("THREADS", "1"))
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


def on_starting(server):
    server.log.info("lab gunicorn: workers=%s threads=%s worker_class=%s timeout=%s", workers, threads, worker_class, timeout)
