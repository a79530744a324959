"""Your own app in the lab: the middleware, APP and PATHS, and a real bench of the example apps."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from contract.app_entry import AppError, check
from contract.knobs import KnobError, paths
from contract.middleware import REPORT_PATH, LabASGI, LabWSGI, interface, wrap
from contract.modes import MODES
from contract.serve import app_skip
from lab.stack.checkout import ROOT

from .conftest import PYTHON, lab_env, make_place, processes_of, run_bench

APPS = ROOT / "examples" / "apps"
TIMING = ("x-worker-pid", "x-thread-id", "x-request-start", "x-request-end", "server-timing")


def hello_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def hello_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def call_wsgi(app: Any, path: str) -> tuple[str, dict[str, str], bytes]:
    said: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        said.update(status=status, headers={k.lower(): v for k, v in headers})

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return said["status"], said["headers"], body


async def call_asgi(app: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_interface_is_detected_from_the_callable():
    class AsyncCall:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    assert interface(hello_wsgi) == "wsgi" and interface(hello_asgi) == "asgi" and interface(AsyncCall()) == "asgi"
    assert isinstance(wrap(hello_wsgi), LabWSGI) and isinstance(wrap(hello_asgi), LabASGI)


def test_the_wsgi_middleware_adds_the_timing_headers_and_answers_the_report():
    status, headers, body = call_wsgi(wrap(hello_wsgi), "/anything")
    assert status == "200 OK" and body == b"hello" and all(h in headers for h in TIMING)
    assert int(headers["x-request-end"]) >= int(headers["x-request-start"]) and "total;dur=" in headers["server-timing"]
    status, headers, body = call_wsgi(wrap(hello_wsgi), REPORT_PATH)
    report = json.loads(body)["server"]
    assert status == "200 OK" and report["workload"] is None and report["pid"] and report["cpu"]["process_tree_seconds"] >= 0


def test_an_app_s_own_timing_headers_give_way_to_the_middleware_s():
    """The lab's currency app sends the timing headers itself: served as an app, each is sent once, the middleware's."""

    def timed_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Request-Start", "1"), ("Content-Type", "text/plain")])
        return [b"hello"]

    async def timed_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-start", b"1")]})
        await send({"type": "http.response.body", "body": b"hello"})

    sent: list[tuple[str, str]] = []
    list(wrap(timed_wsgi)({"PATH_INFO": "/x", "REQUEST_METHOD": "GET"}, lambda status, headers, exc=None: sent.extend(headers)))
    starts = [v for k, v in sent if k.lower() == "x-request-start"]
    assert len(starts) == 1 and starts[0] != "1" and ("Content-Type", "text/plain") in sent
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(wrap(timed_asgi)({"type": "http", "path": "/x", "method": "GET", "headers": []}, receive, send))
    starts = [v for k, v in messages[0]["headers"] if k == b"x-request-start"]
    assert len(starts) == 1 and starts[0] != b"1"


def test_the_asgi_middleware_adds_the_timing_headers_and_answers_the_report():
    status, headers, body = asyncio.run(call_asgi(wrap(hello_asgi), "/anything"))
    assert status == 200 and body == b"hello" and all(h in headers for h in TIMING)
    status, _, body = asyncio.run(call_asgi(wrap(hello_asgi), REPORT_PATH))
    assert status == 200 and json.loads(body)["server"]["io_seconds"] is None


def test_the_middleware_costs_little_per_request():
    """What the middleware adds to a request, printed (`pytest -s`) and stated in docs/your-app.md."""
    n = 20_000

    def wsgi_us(app: Any) -> float:
        started = time.perf_counter()
        for _ in range(n):
            call_wsgi(app, "/x")
        return (time.perf_counter() - started) / n * 1e6

    async def asgi_us(app: Any) -> float:  # one event loop for all the calls
        started = time.perf_counter()
        for _ in range(n):
            await call_asgi(app, "/x")
        return (time.perf_counter() - started) / n * 1e6

    added = {
        "wsgi": wsgi_us(wrap(hello_wsgi)) - wsgi_us(hello_wsgi),
        "asgi": asyncio.run(asgi_us(wrap(hello_asgi))) - asyncio.run(asgi_us(hello_asgi)),
    }
    print(f"\nthe lab's middleware adds per request: {', '.join(f'{k} {v:.1f} µs' for k, v in added.items())}")
    assert all(us < 100 for us in added.values()), added


def test_paths_take_weights_and_refuse_what_is_not_a_path():
    assert paths("/a:3 /b?x=1") == [("/a", 3), ("/b?x=1", 1)]
    for bad in ("a", "/a:0"):
        with pytest.raises(KnobError, match="PATHS"):
            paths(bad)


def test_a_bad_app_is_named_in_one_line():
    with pytest.raises(AppError, match="importing nope failed: ModuleNotFoundError"):
        check("nope:app", str(APPS))
    with pytest.raises(AppError, match="neither a WSGI nor an ASGI app"):
        check("wsgi_shop:primes_below", str(APPS))
    with pytest.raises(AppError, match=r"package\.module:callable"):
        check("wsgi_shop", str(APPS))


def test_a_mode_that_cannot_serve_the_app_says_why():
    assert app_skip(MODES["gunicorn"], "asgi") is None and app_skip(MODES["granian"], "wsgi") is None
    assert "serves WSGI apps, and APP is ASGI" in (app_skip(MODES["gthread"], "asgi") or "")
    assert "currency app only" in (app_skip(MODES["threaded"], "wsgi") or "")


def test_a_bench_refuses_an_app_that_does_not_import(tmp_path: Path):
    place = make_place(tmp_path / "state", 7)
    result = run_bench(place, tmp_path / "results", str(APPS / "experiment.toml"), APP="nope:app", APP_DIR=str(APPS))
    assert result.returncode != 0 and "importing nope failed" in result.stderr and not (tmp_path / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("app", "paths_", "modes"),
    [
        ("wsgi_shop:app", "/wait?ms=20:3 /primes?n=20000", {"gunicorn", "gthread", "granian"}),
        ("asgi_catalog:app", "/upstream?ms=20:3 /render?rows=300", {"gunicorn", "async", "async-workers", "granian-asgi"}),
    ],
)
def test_a_bench_of_an_example_app_records_each_mode_that_serves_it(tmp_path: Path, app: str, paths_: str, modes: set[str]):
    place = make_place(tmp_path / "state", 5)
    experiment = tmp_path / "experiment.toml"  # the shipped one, shorter: what is checked is what each run records
    experiment.write_text((APPS / "experiment.toml").read_text().replace("warmup = 1", "warmup = 0.5")
                          .replace("run_time = 4", "run_time = 2"))  # fmt: skip
    result = run_bench(place, tmp_path / "results", str(experiment), APP=app, APP_DIR="examples/apps", PATHS=paths_)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bench: skipped MODE=" in result.stderr
    results = (tmp_path / "results" / "latest").resolve()
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
    assert {r["config"]["mode"] for r in records} == modes
    names = {part.rpartition(":")[0] if part[-1].isdigit() and ":" in part else part for part in paths_.split()}
    for record in records:
        assert record["status"] == "ok", record["reason"]
        server = record["verification"]["server"]  # from the lab's path, in the middleware
        assert (
            record["verification"]["ok"]
            and server["workload"] is None
            and server["program"] == MODES[record["config"]["mode"]].program
        )
        rows = list(csv.DictReader((results / record["timeline"]["file"]).open()))  # the middleware's headers
        assert rows and {int(r["pid"]) for r in rows} <= set(server["worker_pids"])
        stats = json.loads((results / "locust" / f"{record['config']['id']}.json").read_text())
        assert {e["name"] for e in stats if e["num_requests"]} == names  # each path apart
        assert record["server"]["cpu_seconds"] > 0
    report = subprocess.run([PYTHON, "-m", "lab", "report", str(results)], cwd=ROOT, capture_output=True, text=True,
                            env=lab_env(place), timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stdout + report.stderr
    assert (results / "report.md").exists()
    assert not processes_of(place.state)


def one_mode(folder: Path, mode: str = "gunicorn", **keys: float) -> Path:
    """An experiment of one mode's io run, with these keys."""
    path = folder / "one.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items()) + f'[[matrix]]\nmodes = ["{mode}"]\nworkloads = "io"\n')
    return path


@pytest.mark.slow
def test_app_setup_runs_once_with_the_labs_database_and_a_failing_path_fails_the_run(tmp_path: Path):
    experiment = one_mode(tmp_path, warmup=0.5, run_time=1.5, users=2)
    said = tmp_path / "setup.txt"
    place = make_place(tmp_path / "state", 6)
    result = run_bench(place, tmp_path / "results", str(experiment), APP="wsgi_shop:app", APP_DIR=str(APPS),
                       APP_SETUP=f'echo "$DATABASE_URL" >> {said}', PATHS="/wait?ms=5 /nope")  # fmt: skip
    assert said.read_text().count("postgresql://") == 1, said.read_text()
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "latest" / "runs").glob("*.json")]
    assert len(records) == 1 and records[0]["status"] == "failed", result.stdout + result.stderr
    assert "/nope answered HTTP 404 at one user" in records[0]["reason"]
    assert not processes_of(place.state)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "app", "app_dir"),
    [("gunicorn", "banksite.wsgi:application", "services/django"), ("async", "api.main:app", "services/fastapi")],
)
def test_the_lab_s_own_currency_app_through_app_gives_the_built_in_mode_s_figures(
    tmp_path: Path, smoke_results: Path, mode: str, app: str, app_dir: str
):
    """The currency endpoint's Django (WSGI) and FastAPI (ASGI) apps served through APP=, the path any app takes,
    against the same mode's built-in run of the smoke experiment (same knobs): the same throughput within noise."""
    experiment = one_mode(tmp_path, mode, io_seconds=0.05, warmup=1, run_time=3, users=4, cpus=1)  # the smoke's knobs
    place = make_place(tmp_path / "state", 44)
    result = run_bench(place, tmp_path / "results", str(experiment), APP=app, APP_DIR=app_dir,
                       PATHS="/currency/convert?from=usd&to=gbp")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [through] = [json.loads(p.read_text()) for p in (tmp_path / "results" / "latest" / "runs").glob("*.json")]
    [built_in] = [json.loads(p.read_text()) for p in (smoke_results / "runs").glob(f"*-{mode}-io-*.json")]
    assert through["status"] == "ok" and built_in["status"] == "ok", through["reason"]
    assert through["verification"]["server"]["workload"] is None  # served by the middleware's report: the APP path
    assert {k: through["config"][k] for k in ("workers", "threads", "users", "cpus", "io_seconds")} == {
        k: built_in["config"][k] for k in ("workers", "threads", "users", "cpus", "io_seconds")
    }
    a, b = through["intervals"]["rps"], built_in["intervals"]["rps"]
    ratio = a["estimate"] / b["estimate"]
    # within noise: the two runs' throughput intervals overlap, or differ by less than this machine's run-to-run spread
    assert (a["low"] <= b["high"] and b["low"] <= a["high"]) or abs(ratio - 1) < 0.1, (a, b)
    assert not processes_of(place.state)
