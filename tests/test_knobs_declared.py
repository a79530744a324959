"""Each knob is declared once (contract/declared.py); the lists the lab reads, the Makefile's exports, the command
line's flags, `make knobs` and the tables of the README and docs/knobs.md follow from it, or a test here fails.
Pure: nothing is started but `make` and `python -m lab` printing."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from contract import flags
from contract.declared import DECLARED, Knob, Who, declared
from contract.knob_tables import COMPOSE, TABLES, listing, markdown, write, written
from contract.knobs import DERIVED, KNOBS, LAB_OWNED, NOT_IN_COMPOSE, SETTINGS, KnobError, Knobs, env_lines
from contract.parsers import number
from contract.serve import SERVER_SETTINGS
from lab.__main__ import command_line
from lab.live.switch import LOCUST_ONLY
from lab.stack import backends
from lab.stack.backends import compose_cli, remote
from lab.stack.checkout import ROOT


def test_the_readme_docs_and_compose_hold_what_the_declaration_writes():
    for where, text in written(ROOT).items():
        assert (ROOT / where).read_text() == text, f"{where} differs from contract/declared.py: run `lab knobs --write`"
    assert markdown(declared(Who.RUN)) in (ROOT / "README.md").read_text()
    for who in (Who.MACHINE, Who.COMPARE, Who.COMMAND, Who.LAB):
        assert markdown(declared(who)) in (ROOT / "docs" / "knobs.md").read_text()


def test_a_new_knob_is_one_row_and_the_lab_writes_it_everywhere_it_is_listed(tmp_path: Path, monkeypatch):
    for where in {*TABLES.values(), COMPOSE}:
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text((ROOT / where).read_text())
    row = Knob("KEEPALIVE_SECONDS", "5", number(float, 0, 300), "seconds a server keeps an idle connection", compose=True)
    monkeypatch.setitem(DECLARED, row.name, row)
    assert sorted(write(tmp_path)) == ["README.md", "compose.yaml"]
    assert "| `KEEPALIVE_SECONDS` | `5` | seconds a server keeps an idle connection |" in (tmp_path / "README.md").read_text()
    assert "  KEEPALIVE_SECONDS: ${KEEPALIVE_SECONDS:-5}\n\n" in (tmp_path / "compose.yaml").read_text()
    assert "KEEPALIVE_SECONDS" in listing(declared(Who.RUN))[-1]  # make knobs
    assert write(tmp_path) == []  # written once, nothing left to write


def test_the_makefile_exports_every_knob_and_setting_a_user_may_set(tmp_path: Path):
    shown = tmp_path / "show.mk"
    shown.write_text(f"include {ROOT}/Makefile\nshow-env:\n\t@env\n")
    result = subprocess.run(["make", "--no-print-directory", "-f", str(shown), "show-env", f"PYTHON={sys.executable} -S"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    exported = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    settable = {name for name, knob in DECLARED.items() if knob.who in (Who.RUN, Who.MACHINE, Who.COMPARE)}
    assert settable <= exported, sorted(settable - exported)


def test_make_knobs_lists_the_declared_knobs():
    result = subprocess.run(["make", "--no-print-directory", "knobs", f"PYTHON={sys.executable} -S"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.stdout.splitlines() == listing(KNOBS)


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for each in action.choices.values():
                found |= _dests(each)
        found.add(action.dest)
    return found


def test_every_option_of_a_command_is_declared_and_every_declared_option_reaches_a_command():
    named = {dest for dest in _dests(command_line()) if dest.isupper()}
    assert named <= set(DECLARED)
    assert set(declared(Who.COMMAND)) <= named


def test_an_option_is_its_flag_else_the_make_variable_else_its_default(monkeypatch: pytest.MonkeyPatch):
    parser = command_line()
    monkeypatch.delenv("REPEATS", raising=False)
    monkeypatch.delenv("RESUME", raising=False)
    args = parser.parse_args(["bench", "smoke"])
    assert flags.resolve(args) == {"EXPERIMENT"} and (args.repeats, args.resume, args.backend) == (None, False, "auto")
    monkeypatch.setenv("REPEATS", "3")
    monkeypatch.setenv("RESUME", "yes")
    args = parser.parse_args(["bench", "--repeats", "5"])
    assert flags.resolve(args) == {"REPEATS", "RESUME"} and (args.repeats, args.resume, args.experiment) == (5, True, "quick")
    monkeypatch.setenv("RESUME", "maybe")  # once ignored in silence by make's $(filter 1 yes true,...)
    with pytest.raises(KnobError, match=r"^RESUME='maybe' is not valid: RESUME takes one of 1, yes, true, 0, no, false$"):
        flags.resolve(parser.parse_args(["bench"]))


def test_backend_auto_is_compose_where_an_engine_answers_and_target_takes_remote(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TARGET", raising=False)
    for answers, backend in ((True, "compose"), (False, "native")):
        monkeypatch.setattr(compose_cli, "engine_answers", lambda timeout=30, answers=answers: answers)
        assert backends.resolve("auto") == backend and backends.resolve("native") == "native"
    monkeypatch.setenv("TARGET", "http://lab-server:8000")
    assert backends.resolve("auto") == backends.resolve("remote") == "remote"
    with pytest.raises(KnobError, match=r"TARGET=http://lab-server:8000 is a server the lab did not start: it takes "
                                        r"BACKEND=remote \(or none\), not BACKEND=compose"):  # fmt: skip
        backends.resolve("compose")


def test_the_lists_derived_from_the_declaration_hold_what_the_lab_held_by_hand():
    """Each list as it was written out before the declaration (a new row may add to them, never take away)."""
    assert set(KNOBS) >= {"MODE", "WORKLOAD", "CPUS", "WORKERS", "THREADS", "IO_SECONDS", "PRIMES_LIMIT", "USERS",
                          "SPAWN_RATE", "RUN_TIME", "DB_POOL", "CPU_OFFLOAD", "MIX_CPU_SHARE"}  # fmt: skip
    assert set(remote.SERVER_KNOBS) >= {"MODE", "WORKLOAD", "CPUS", "WORKERS", "THREADS", "IO_SECONDS", "PRIMES_LIMIT",
                                        "DB_POOL", "CPU_OFFLOAD"}  # fmt: skip
    assert set(SERVER_SETTINGS) >= {"DB_POOL_SIZE", "DJANGO_SECRET_KEY"}
    assert LOCUST_ONLY.issuperset({"mix_cpu_share", "run_time", "spawn_rate", "users", "workload"})
    assert LAB_OWNED.issuperset({"APP_ENV_TEXT", "APP_INTERFACE", "APP_PYTHON", "HOST", "SERVICE"}) and "OFFLINE" not in LAB_OWNED
    assert DERIVED.issuperset({"APP_CONTEXT", "APP_ENV_TEXT", "APP_INTERFACE", "LOCUST_IMAGE", "OFFLINE", "POSTGRES_IMAGE",
                               "PYTHON_IMAGE", "SERVICE"})  # fmt: skip
    assert NOT_IN_COMPOSE.issuperset({"APP_DIR", "APP_ENV", "APP_REQUIREMENTS", "APP_SETUP", "ARRIVALS", "BIND", "BUILD",
                                      "LAB_CONTROL_PORT", "LOCUSTFILE", "LOCUST_BIND", "LOCUST_MASTER_PORT",
                                      "LOCUST_REMOTE_WORKERS", "MEMORY", "PG_PORT", "SLO_P95_MS", "TARGET"})  # fmt: skip
    assert SETTINGS["APP_PORT"] == "8000" and SETTINGS["LOCUST_MASTER_PORT"] == "5557"


def test_each_knob_of_a_run_has_its_typed_field():
    assert [f.name for f in fields(Knobs)] == [name.lower() for name in KNOBS], "add the knob's field to contract.knobs.Knobs"


def test_an_app_s_environment_may_not_move_a_knob_or_what_the_lab_tells_its_server_but_keeps_its_own_names():
    for name in ("PRIMES_LIMIT", "DB_POOL_SIZE", "SERVICE", "HOST"):
        with pytest.raises(KnobError, match=f"{name} is the lab's own setting"):
            env_lines(f"{name}=1\n", "app.env")
    assert env_lines("OFFLINE=1\nGATE=yes\n", "app.env") == {"OFFLINE": "1", "GATE": "yes"}  # compose's, make compare's


def test_a_refusal_names_the_variable_and_what_it_takes_in_the_declaration_s_words():
    assert DECLARED["PRIMES_LIMIT"].accepts == "an integer from 2 to 50000000"  # not 5e+07
    with pytest.raises(KnobError, match=r"^MEMORY='lots' is not valid: MEMORY takes an integer from 0 to 10000000$"):
        DECLARED["MEMORY"].read("lots")
    with pytest.raises(KnobError, match=r"^PATHS has 'a': PATHS takes paths that start with /"):
        DECLARED["PATHS"].read("a")
