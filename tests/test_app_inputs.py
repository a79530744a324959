"""Your app's inputs, checked before anything starts: APP_ENV's lines, APP_REQUIREMENTS against the lab's server pins,
the team's LOCUSTFILE, and what compose is told to build and serve the app. No server, database or engine runs here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.knobs import KnobError, check_app_files, env_file, env_lines, parse
from contract.serve import server_plan
from lab.stack import app_image
from lab.stack.app_venv import check_locustfile, conflicts, error_tail, server_pins, venv_key
from lab.stack.backends.compose import CONTAINER_LOCUSTFILE
from lab.stack.backends.compose import locust_argv as compose_locust_argv
from lab.stack.backends.native import NativeBackend
from lab.stack.checkout import ROOT

from .conftest import lab_env, make_place
from .test_compose import render


def test_app_env_reads_key_value_lines_with_comments_and_quotes(tmp_path: Path):
    path = tmp_path / "app.env"
    path.write_text("# the app's own\n\nDATABASE_URL=postgresql://me@db/app\nexport GREETING=\"hello there\"\nEMPTY=\nQ='a=b'\n")
    assert env_file(str(path)) == {"DATABASE_URL": "postgresql://me@db/app", "GREETING": "hello there", "EMPTY": "", "Q": "a=b"}


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("just words", "is not KEY=VALUE"),
        ("1ABC=x", "is not KEY=VALUE"),
        ("WORKERS=8", "WORKERS is the lab's own setting"),
        ("APP_PORT=9000", "APP_PORT is the lab's own setting"),
    ],
)
def test_a_bad_app_env_line_is_refused_with_its_file_and_line(tmp_path: Path, line: str, said: str):
    path = tmp_path / "app.env"
    path.write_text(f"GOOD=1\n{line}\n")
    with pytest.raises(KnobError, match=rf"APP_ENV {path}:2: .*{said}"):
        env_file(str(path))


def test_app_files_must_exist_and_locustfile_replaces_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("APP_REQUIREMENTS", "APP_ENV", "LOCUSTFILE"):
        monkeypatch.setenv(name, str(tmp_path / "missing"))
        with pytest.raises(KnobError, match=f"{name}=.* is not a file"):
            check_app_files()
        monkeypatch.delenv(name)
    (tmp_path / "users.py").write_text("")
    monkeypatch.setenv("LOCUSTFILE", str(tmp_path / "users.py"))
    monkeypatch.setenv("PATHS", "/a")
    with pytest.raises(KnobError, match="LOCUSTFILE and PATHS were both given"):
        check_app_files()


def test_a_server_pinned_apart_from_the_labs_pin_is_a_conflict_naming_both(tmp_path: Path):
    lab = server_pins()
    assert set(lab) == {"gunicorn", "uvicorn", "granian"}
    (tmp_path / "more.txt").write_text("uvicorn[standard]<0.1  # too old\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tabulate==0.9.0\nGunicorn==20.1.0\ngranian>=1\n-r more.txt\n--index-url https://example.org\n")
    found = conflicts(requirements)
    assert len(found) == 2, found
    assert f"{requirements}:2 pins Gunicorn==20.1.0" in found[0] and lab["gunicorn"].text in found[0]
    assert f"{tmp_path / 'more.txt'}:1 pins uvicorn[standard]<0.1" in found[1] and lab["uvicorn"].text in found[1]
    requirements.write_text("tabulate==0.9.0\ngunicorn\nuvicorn>=0.30\n")  # the lab's pins satisfy these: no conflict
    assert conflicts(requirements) == []


def test_the_venv_key_follows_the_requirements_and_the_interpreter(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tabulate==0.9.0\n")
    first = venv_key(requirements, "/usr/bin/python3.11")
    assert venv_key(requirements, "/usr/bin/python3.11") == first
    assert venv_key(requirements, "/usr/bin/python3.12") != first
    requirements.write_text("tabulate==0.8.10\n")
    assert venv_key(requirements, "/usr/bin/python3.11") != first


def test_error_tail_is_pips_own_error_tail():
    said = ["Collecting nope==9", "ERROR: Could not find a version that satisfies the requirement nope==9",
            "ERROR: No matching distribution found for nope==9", ""]  # fmt: skip
    assert error_tail(said) == " ".join(said[1:3])
    assert error_tail(["something odd", "the last words"]) == "the last words"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("import nowhere_to_be_found\n", "does not import: ModuleNotFoundError: No module named 'nowhere_to_be_found'"),
        ("def broken(:\n", "does not import: SyntaxError"),
        ("from locust import HttpUser\nVALUE = 1\n", "defines no User class"),
    ],
)
def test_a_locustfile_that_cannot_send_traffic_is_refused_in_one_line(tmp_path: Path, source: str, said: str):
    path = tmp_path / "team_users.py"
    path.write_text(source)
    with pytest.raises(KnobError, match=f"LOCUSTFILE={path} {said}") as raised:
        check_locustfile(str(path))
    assert "\n" not in str(raised.value)


def test_a_locustfile_with_users_names_them(tmp_path: Path):
    path = tmp_path / "locustfile.py"  # the name of the lab's own too: Locust loads both side by side
    path.write_text("from locust import FastHttpUser, task\n\nclass Shopper(FastHttpUser):\n    @task\n"
                    "    def home(self):\n        self.client.get('/')\n")  # fmt: skip
    assert check_locustfile(str(path)) == ["Shopper"]


def test_the_app_server_gets_the_apps_environment_over_the_labs(tmp_path: Path):
    path = tmp_path / "app.env"
    path.write_text("DATABASE_URL=postgresql://me@elsewhere/app\nGREETING=hi\n")
    base = {"APP": "shop:app", "APP_INTERFACE": "wsgi", "DATABASE_URL": "postgresql://lab@127.0.0.1/lab"}
    native = server_plan(parse({"MODE": "gunicorn"}), host="127.0.0.1", port=8000, base_env={**base, "APP_ENV": str(path)})
    container = server_plan(parse({"MODE": "gunicorn"}), host="0.0.0.0", port=8000,
                            base_env={**base, "APP_ENV_TEXT": path.read_text()})  # fmt: skip
    for plan in (native, container):
        assert plan.env["DATABASE_URL"] == "postgresql://me@elsewhere/app" and plan.env["GREETING"] == "hi"
        assert plan.argv[-1] == "contract.app_entry:app"
    assert env_lines("A=1\n", "x") == {"A": "1"}


def test_compose_builds_the_app_image_from_the_staged_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    assert app_image.compose_env() == {}
    env = tmp_path / "app.env"
    env.write_text("GREETING=hi\n")
    monkeypatch.setenv("APP", "shop:app")
    monkeypatch.setenv("APP_ENV", str(env))
    monkeypatch.setenv("APP_INTERFACE", "wsgi")
    derived = app_image.compose_env()
    assert derived == {"SERVICE": "app", "APP_CONTEXT": str(tmp_path / "state" / "app-image"), "APP_INTERFACE": "wsgi",
                       "APP_ENV_TEXT": "GREETING=hi"}  # fmt: skip
    config = render(IMAGES="local", APP="shop:app", PATHS="/a", **derived)
    app = config["services"]["app"]
    assert app["build"]["context"] == derived["APP_CONTEXT"] and app["image"] == "concurrency-lab-app:local"
    assert app["environment"]["APP"] == "shop:app" and app["environment"]["APP_ENV_TEXT"] == "GREETING=hi"
    assert config["services"]["locust-master"]["environment"]["PATHS"] == "/a"


def test_app_setup_runs_in_the_apps_folder_with_its_environment(tmp_path: Path):
    (tmp_path / "app.env").write_text("DATABASE_URL=postgresql://me@elsewhere/app\n")
    env = {**os.environ, "APP_DIR": str(tmp_path), "APP_ENV": str(tmp_path / "app.env"), "DATABASE_URL": "lab's",
           "APP_SETUP": 'echo "$DATABASE_URL" > said.txt; exit 3'}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "contract.serve", "setup"], env=env, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 3 and (tmp_path / "said.txt").read_text() == "postgresql://me@elsewhere/app\n"


def test_the_teams_locustfile_is_loaded_beside_the_labs_on_both_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    team = tmp_path / "locustfile.py"
    monkeypatch.setenv("LOCUSTFILE", str(team))
    native_argv = NativeBackend(make_place(tmp_path / "state")).locust_argv({}, tmp_path)
    assert native_argv[native_argv.index("-f") + 1] == f"{ROOT / 'locust' / 'locustfile.py'},{team}"
    argv = compose_locust_argv({}, tmp_path)
    assert argv[argv.index("-f") + 1] == f"/lab/locust/locustfile.py,{CONTAINER_LOCUSTFILE}"
    assert f"{team}:{CONTAINER_LOCUSTFILE}:ro" in argv and f"LOCUSTFILE={CONTAINER_LOCUSTFILE}" in argv


def test_capacity_refuses_a_locustfile_before_anything_starts(tmp_path: Path):
    (tmp_path / "locustfile.py").write_text("")
    place = make_place(tmp_path / "state", 9)
    # with a MODE: a capacity search of the app (without one, `make capacity APP=...` decides how to serve it)
    env = lab_env(place, APP="shop:app", MODE="gunicorn", LOCUSTFILE=str(tmp_path / "locustfile.py"))
    done = subprocess.run([sys.executable, "-m", "lab", "capacity", "--backend", "native"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 2 and "LOCUSTFILE is not run by `make capacity`" in done.stderr
    assert not place.state.exists() or not any(place.state.iterdir())
