"""Your app with its own requirements, environment and locustfile, for real: its venv built from PyPI beside the
lab's servers, benched briefly on the native backend; and its image built and served by a plain `docker compose`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.stack import images
from lab.stack.app_image import flattened
from lab.stack.checkout import ROOT
from lab.stack.procs import LabError

from .conftest import PYTHON, make_place, processes_of, run_bench
from .test_compose_engine import engine_answers

# A WSGI app that needs a package the lab does not have (tabulate, from PyPI) and a variable only its APP_ENV gives.
APP_SOURCE = """
import os

from tabulate import tabulate


def app(environ, start_response):
    greeting = os.environ.get("GREETING")
    status = "200 OK" if greeting == "from-app-env" else "500 Internal Server Error"
    start_response(status, [("Content-Type", "text/plain")])
    return [tabulate([[environ["PATH_INFO"], greeting]]).encode()]
"""
TEAM_LOCUSTFILE = """
from locust import FastHttpUser, task


class Shopper(FastHttpUser):
    @task
    def hello(self):
        self.client.get("/hello", name="/hello")
"""
ONE_RUN = """
warmup = 0.5
run_time = 2
users = 2
[[matrix]]
modes = ["gunicorn"]
workloads = "io"
"""


def team_app(folder: Path) -> dict[str, str]:
    """The app's folder, requirements and environment, as a team would hand them to the lab."""
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "tabled.py").write_text(APP_SOURCE)
    (folder / "requirements.txt").write_text("tabulate==0.9.0\n")
    (folder / "app.env").write_text("# the app's own\nGREETING=from-app-env\n")
    return {"APP": "tabled:app", "APP_DIR": str(folder / "app"), "APP_REQUIREMENTS": str(folder / "requirements.txt"),
            "APP_ENV": str(folder / "app.env")}  # fmt: skip


@pytest.mark.slow
def test_an_app_with_its_own_requirements_environment_and_locustfile_is_benched(tmp_path: Path):
    app = team_app(tmp_path / "team")
    (tmp_path / "team" / "locustfile.py").write_text(TEAM_LOCUSTFILE)
    (tmp_path / "one.toml").write_text(ONE_RUN)
    place = make_place(tmp_path / "state", 8)
    result = run_bench(place, tmp_path / "results", str(tmp_path / "one.toml"), **app,
                       LOCUSTFILE=str(tmp_path / "team" / "locustfile.py"))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "app: the app's venv is ready" in result.stdout  # progress while it installed
    venvs = list((place.state / "apps").iterdir())
    assert len(venvs) == 1 and (venvs[0] / ".complete").exists() and not (ROOT / ".venv" / "bin" / "tabulate").exists()
    results = (tmp_path / "results" / "latest").resolve()
    [record] = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    assert record["status"] == "ok", record["reason"]  # GREETING reached the app: without it, every answer is a 500
    facts = record["where"]["app"]
    assert facts["traffic"].startswith("LOCUSTFILE=") and facts["env_names"] == ["GREETING"]
    stats = json.loads((results / "locust" / f"{record['config']['id']}.json").read_text())
    assert {e["name"] for e in stats if e["num_requests"]} == {"/hello"}  # the team's users alone sent the traffic
    assert record["timeline"]["rows"] > 0  # the lab's hooks saw the team's requests, with the middleware's headers
    assert not processes_of(place.state)


def compose_env(place_state: Path, app: dict[str, str], port: int) -> dict[str, str]:
    return {**os.environ, **app, "LAB_STATE_DIR": str(place_state), "IMAGES": "local", "APP_PORT": str(port),
            "MODE": "gunicorn", "PYTHONPATH": str(ROOT)}  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not engine_answers(), reason="NO DOCKER ENGINE ANSWERS: the compose app test did not run (`make engine`)")
def test_a_plain_docker_compose_builds_the_apps_image_and_serves_it(tmp_path: Path):
    images.build_standins(print)
    place = make_place(tmp_path / "state", 21)
    env = compose_env(place.state, team_app(tmp_path / "team"), place.app_port)
    staged = subprocess.run([PYTHON, "-m", "lab.stack.app_image"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert "docker compose up" in staged.stdout
    derived = {**images.compose_env("local"), "SERVICE": "app", "APP_CONTEXT": str(place.state / "app-image"),
               "APP_ENV_TEXT": "GREETING=from-app-env"}  # fmt: skip
    compose = ["docker", "compose", "--project-directory", str(ROOT), "-p", "concurrency-lab-apptest"]
    try:
        up = subprocess.run([*compose, "up", "--detach", "--wait", "--build", "--pull", "never", "app"],
                            env={**env, **derived}, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert up.returncode == 0, up.stderr[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{place.app_port}/hello", timeout=30) as reply:
            body, headers = reply.read().decode(), reply.headers
        assert "/hello" in body and "from-app-env" in body  # tabulate from the image, GREETING from APP_ENV
        assert headers["X-Worker-Pid"] and headers["X-Request-Start"]  # the lab's middleware around it
        with urllib.request.urlopen(f"http://127.0.0.1:{place.app_port}/__lab__/healthz", timeout=30) as reply:
            assert json.loads(reply.read())["server"]["program"] == "gunicorn"
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans", "--timeout", "5"], env={**env, **derived},
                       capture_output=True, timeout=120)  # fmt: skip


def test_the_app_image_reads_included_requirements_in_place_and_refuses_files_of_this_host(tmp_path: Path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.txt").write_text("httpx==0.28.1\n-r ../requirements.txt\n")  # a loop, read once
    main = tmp_path / "requirements.txt"
    main.write_text("# the app\n-r base/common.txt\npsycopg[binary]==3.3.9\n")
    text = flattened(main)
    assert "httpx==0.28.1" in text and "psycopg[binary]==3.3.9" in text and "\n-r " not in text
    for local in ("-e ./pkg", "./wheels/pkg.whl", "-c constraints.txt", "file:///tmp/pkg"):
        main.write_text(f"httpx==0.28.1\n{local}\n")
        with pytest.raises(LabError, match=rf"requirements.txt:2 \({re.escape(local)}\) names a file of this host"):
            flattened(main)
