"""The one table of server modes. Both backends, the tests, `make modes` and the report read it.

A mode is one row: which service it serves, the command that starts it, what it means, and
what the throughput model needs to know about it (requests in flight C, Python processes P).
Commands are templates over {host}, {port}, {workers} and {threads}; they run from the
service's own folder (services/<service>/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Service = Literal["django", "fastapi"]
SERVICES: tuple[Service, ...] = ("django", "fastapi")

# A count that depends on the knobs of one run: (workers, threads, pool size) -> count.
Count = Callable[[int, int, int], int]


@dataclass(frozen=True)
class Mode:
    name: str
    service: Service
    argv: tuple[str, ...]
    summary: str
    in_flight: Count  # C: requests one instance can hold at once
    processes: Count  # processes that run Python at once (before the CPU limit)
    default_workers: int | None = None  # None: the mode has no WORKERS knob
    default_threads: int | None = None  # None: the mode has no THREADS knob
    env: dict[str, str] = field(default_factory=dict)  # what the mode sets for its server
    offloads_cpu: bool = False  # takes CPU_OFFLOAD=process (its app counts primes in a process pool); said here only
    django_db: bool = False  # reads the database through Django's own layer: takes DB_POOL=0
    development: bool = False  # a development server (Django's runserver): measured, never advised

    @property
    def program(self) -> str:
        """The server program, as the server reports itself: runserver, gunicorn, uvicorn or granian."""
        return self.argv[2] if self.argv[0] == "python" else self.argv[0]

    def command(self, *, host: str, port: int, workers: int, threads: int) -> list[str]:
        values = {"host": host, "port": port, "workers": workers, "threads": threads}
        return [part.format(**values) for part in self.argv]


RUNSERVER = ("python", "manage.py", "runserver", "--noreload", "--skip-checks")
GUNICORN = ("gunicorn", "--config", "gunicorn.conf.py", "--bind", "{host}:{port}")
UVICORN = ("uvicorn", "--host", "{host}", "--port", "{port}", "--no-access-log")
# Granian replaces a worker that dies only when told to (as Gunicorn always does), half a second after it died
GRANIAN = ("granian", "--host", "{host}", "--port", "{port}", "--workers", "{workers}", "--no-ws",
           "--respawn-failed-workers", "--respawn-interval", "0.5")  # fmt: skip

MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            "nothreading",
            "django",
            (*RUNSERVER, "--nothreading", "{host}:{port}"),
            "Django runserver, one process, one thread: requests wait in line",
            in_flight=lambda w, t, pool: 1,
            processes=lambda w, t, pool: 1,
            django_db=True,
            development=True,
        ),
        Mode(
            "threaded",
            "django",
            (*RUNSERVER, "{host}:{port}"),
            "Django runserver, a new thread per request, one process (one GIL)",
            in_flight=lambda w, t, pool: pool,
            processes=lambda w, t, pool: 1,
            django_db=True,
            development=True,
        ),
        Mode(
            "async",
            "fastapi",
            (*UVICORN, "api.main:app"),
            "FastAPI on Uvicorn, one process, one event loop, async pool to PostgreSQL",
            in_flight=lambda w, t, pool: pool,
            processes=lambda w, t, pool: 1,
            offloads_cpu=True,
        ),
        Mode(
            "gunicorn",
            "django",
            (*GUNICORN, "banksite.wsgi:application"),
            "Django on Gunicorn, WORKERS processes x THREADS threads (sync worker at THREADS=1)",
            in_flight=lambda w, t, pool: w * min(t, pool),
            processes=lambda w, t, pool: w,
            django_db=True,
            default_workers=2,
            default_threads=1,
        ),
        # Beyond the post: what production deployments run.
        Mode(
            "gthread",
            "django",
            (*GUNICORN, "banksite.wsgi:application"),
            "Django on Gunicorn's threaded worker: WORKERS processes x THREADS threads (production `threaded`)",
            in_flight=lambda w, t, pool: w * min(t, pool),
            processes=lambda w, t, pool: w,
            django_db=True,
            default_workers=2,
            default_threads=4,
            env={"GUNICORN_WORKER_CLASS": "gthread"},
        ),
        Mode(
            "async-workers",
            "fastapi",
            (*UVICORN, "--workers", "{workers}", "api.main:app"),
            "FastAPI on Uvicorn with WORKERS processes, each an event loop: async and multi-process together",
            in_flight=lambda w, t, pool: w * pool,
            processes=lambda w, t, pool: w,
            default_workers=2,
            offloads_cpu=True,
        ),
        Mode(
            "fastapi-sync",
            "fastapi",
            (*UVICORN, "api.sync_main:app"),
            "FastAPI with a plain `def` handler, run in its thread pool (THREADS), over psycopg's sync pool",
            in_flight=lambda w, t, pool: min(t, pool),
            processes=lambda w, t, pool: 1,
            default_threads=40,
        ),
        Mode(
            "django-asgi",
            "django",
            (*UVICORN, "--lifespan", "off", "banksite.asgi:application"),
            "Django's async view on Uvicorn (ASGI), with psycopg's async pool: one event loop",
            in_flight=lambda w, t, pool: pool,
            processes=lambda w, t, pool: 1,
            env={"DJANGO_URLCONF": "banksite.urls_async"},
        ),
        Mode(
            "granian",
            "django",
            (*GRANIAN, "--interface", "wsgi", "--blocking-threads", "{threads}", "banksite.wsgi:application"),
            "Django over WSGI on Granian (Rust HTTP server): WORKERS processes x THREADS blocking threads",
            in_flight=lambda w, t, pool: w * min(t, pool),
            processes=lambda w, t, pool: w,
            django_db=True,
            default_workers=2,
            default_threads=1,
        ),
        Mode(
            "granian-asgi",
            "fastapi",
            (*GRANIAN, "--interface", "asgi", "api.main:app"),
            "FastAPI over ASGI on Granian (Rust HTTP server): WORKERS processes, each an event loop",
            in_flight=lambda w, t, pool: w * pool,
            processes=lambda w, t, pool: w,
            default_workers=2,
            offloads_cpu=True,
        ),
    )
}
