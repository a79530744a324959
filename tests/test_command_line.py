"""`lab <command>` is `make <command>`: the console script `make setup` installs, each make target of the lab a thin
call to it, and the policy that was the Makefile's (when bench decides how to serve an app) the lab's own. Pure:
nothing is started but `make -n`."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from lab.__main__ import command_line, main, route
from lab.stack.checkout import ROOT

MAKEFILE = (ROOT / "Makefile").read_text()


def routed(argv: list[str]) -> str:
    from contract import flags

    args = command_line().parse_args(argv)
    args.given = flags.resolve(args)
    return str(route(args).command)


@pytest.mark.parametrize(
    ("argv", "env", "command"),
    [
        (["bench"], {}, "bench"),
        (["bench"], {"APP": "shop:app"}, "decide"),  # an app alone: which mode, workers and threads to deploy
        (["bench", "examples/apps/experiment.toml"], {"APP": "shop:app"}, "bench"),  # an experiment of the user's
        (["bench"], {"APP": "shop:app", "EXPERIMENT": "my.toml"}, "bench"),  # given as make gives it
        (["capacity"], {"APP": "shop:app"}, "decide"),
        (["capacity"], {"APP": "shop:app", "MODE": "gunicorn"}, "capacity"),  # that mode's capacity for the app
        (["capacity", "--experiment", "capacity"], {"APP": "shop:app"}, "capacity"),
        (["up"], {"APP": "shop:app"}, "up"),
    ],
)
def test_bench_and_capacity_decide_how_to_serve_an_app_given_alone(argv, env, command, monkeypatch):
    for name in ("APP", "EXPERIMENT", "MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert routed(argv) == command


def test_make_passes_an_empty_variable_for_one_it_was_not_given_and_that_is_not_given(monkeypatch):
    monkeypatch.setenv("APP", "shop:app")
    monkeypatch.setenv("EXPERIMENT", "")  # as `export` leaves a variable make was not given
    monkeypatch.setenv("MODE", "")
    assert routed(["bench"]) == routed(["capacity"]) == "decide"


def test_the_console_script_is_the_lab_s_main_and_make_setup_installs_it_without_fetching_anything():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"lab": "lab.__main__:main"}
    assert project["build-system"]["requires"] == ["setuptools==80.9.0"]  # the lock's, which builds it
    assert "setuptools==80.9.0" in (ROOT / "requirements" / "dev.lock").read_text()
    installs = [line.strip() for line in MAKEFILE.splitlines() if re.search(r"pip install\b.*--editable", line)]
    assert installs == [f"$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable {where}"
                        for where in ("./contract", ".")]  # fmt: skip


def test_each_make_target_of_the_lab_is_the_lab_command_of_its_name():
    recipes = dict(re.findall(r"^([a-z0-9-]+):[^\n]*## [^\n]*\n\t(?:@)?([^\n]*)", MAKEFILE, re.M))
    commands = set(command_line()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for target, recipe in recipes.items():
        if target in commands - {"down"}:
            assert recipe in (f"$(LAB) {target}", f"$(PYTHON) -m lab {target}"), (target, recipe)
    assert recipes["down"].endswith('then $(PY) -m lab down; else echo "lab: nothing to stop (no .venv)"; fi')


def test_make_bench_is_a_thin_call_whatever_the_variables(tmp_path):
    for variables in ([], ["RESUME=1", "DETACH=yes", "REPEATS=3"], ["APP=shop:app", "MINUTES=5"], ["TARGET=http://h:1"]):
        result = subprocess.run(
            ["make", "--no-print-directory", "-n", "bench", *variables], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and result.stdout.splitlines()[-1] == ".venv/bin/lab bench", result.stderr


def test_a_bad_option_is_refused_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("REPEATS", "lots")
    assert main(["bench", "smoke"]) == 2
    assert capsys.readouterr().err == "error: REPEATS='lots' is not valid: REPEATS takes an integer from 1 to 20\n"
