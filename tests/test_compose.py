"""The compose backend, checked without a Docker engine: schema, lint, and parity with native.

Parity is read from the files themselves: what compose passes to a container, run through the
image's entrypoint (contract.serve), must start the command the native backend starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from contract.knobs import DERIVED, KNOBS, NOT_IN_COMPOSE, SETTINGS, parse
from contract.modes import MODES, SERVICES
from contract.pools import PG_MAX_CONNECTIONS
from contract.serve import SERVICES_DIR, server_plan
from lab.stack.checkout import ROOT
from lab.stack.images import IMAGES

SITE = Path(__import__("compose").__file__).parent
DOCKER_COMPOSE = SITE / "docker-compose"  # the real binary; the pip entry point always exits 0
BIN = ROOT / ".venv" / "bin"
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()


def render(**env: str) -> dict:
    result = subprocess.run(
        [str(DOCKER_COMPOSE), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


DOCKERFILES = ["services/Dockerfile", *(image.dockerfile for image in IMAGES)]


def dockerfile() -> str:
    return (ROOT / "services" / "Dockerfile").read_text()


def image_env(service: str) -> dict[str, str]:
    """The app image's environment, with its SERVICE build argument set to `service`."""
    block = re.search(r"^ENV (.*?)(?=^\S)", dockerfile(), re.M | re.S).group(1)
    env = dict(part.split("=", 1) for part in shlex.split(block.replace("\\\n", " ")))
    return {k: v.replace("${SERVICE}", service) for k, v in env.items()}


def test_compose_file_passes_docker_compose_config():
    for service in SERVICES:
        render(SERVICE=service)


def test_a_plain_docker_compose_up_needs_no_variable_and_runs_the_default_mode():
    config = render()
    assert config["services"]["app"]["environment"]["MODE"] == KNOBS["MODE"].default
    assert config["services"]["app"]["build"]["args"]["SERVICE"] == MODES[KNOBS["MODE"].default].service


def test_base_images_come_from_variables_defaulting_to_the_official_ones():
    official = render()
    assert official["services"]["postgres"]["image"] == "postgres:18"
    assert official["services"]["app"]["build"]["args"]["PYTHON_IMAGE"] == IMAGES[0].official
    local = render(**{image.variable: image.standin for image in IMAGES}, OFFLINE="1", IMAGES="local")
    assert local["services"]["postgres"]["image"] == IMAGES[1].standin
    assert local["services"]["locust-worker"]["image"] == IMAGES[2].standin
    assert local["services"]["app"]["build"]["args"] == {"SERVICE": "django", "PYTHON_IMAGE": IMAGES[0].standin, "OFFLINE": "1"}
    for name, service in official["services"].items():
        assert service.get("init") is True, name  # a stop takes seconds, not a kill after the grace period


def test_compose_file_validates_against_the_compose_spec():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_passes_hadolint(path):
    # DL3008: the stand-ins install Debian's python3 as the release ships it (pinning a Debian
    # version would break with each point release); DL3006: their base is a local tag
    argv = [str(BIN / "hadolint"), "--ignore", "DL3008", "--ignore", "DL3006", str(ROOT / path)]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_lab_serve_as_non_root_with_the_native_requirements(service):
    text = dockerfile()
    assert 'ENTRYPOINT ["python", "-m", "contract.serve"]' in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert 'pip install --no-cache-dir "$@" --find-links /wheels --require-hashes --no-deps -r requirements/services.lock' in text
    assert "-r services.txt" in (ROOT / "requirements" / "lab.txt").read_text()
    assert image_env(service)["SERVICE"] == service
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim", text, re.M)


KNOB_CASES = [
    {},
    {"WORKLOAD": "cpu", "CPUS": "0.5", "IO_SECONDS": "0.2", "PRIMES_LIMIT": "5000"},
    {"WORKERS": "3", "THREADS": "4"},
]


@pytest.mark.parametrize("extra", KNOB_CASES, ids=["defaults", "workload", "workers-threads"])
@pytest.mark.parametrize("mode", list(MODES))
def test_container_runs_what_native_runs(mode, extra):
    m = MODES[mode]
    # each mode gets only the knobs it has
    extra = {k: v for k, v in extra.items() if not (k == "WORKERS" and m.default_workers is None)
             and not (k == "THREADS" and m.default_threads is None)}  # fmt: skip
    knob_env = {"MODE": mode, **extra}
    config = render(SERVICE=m.service, **knob_env)
    app = config["services"]["app"]
    assert app["build"]["dockerfile"] == "services/Dockerfile" and app["build"]["args"]["SERVICE"] == m.service
    assert app.get("command") is None and app.get("entrypoint") is None  # the image's contract.serve decides

    image = image_env(m.service)
    container_env = {**image, **{k: v for k, v in app["environment"].items() if v is not None}}
    in_container = server_plan(parse(container_env), host=image["HOST"], port=int(image["APP_PORT"]), base_env=container_env)
    native_knobs = parse(knob_env)
    native = server_plan(native_knobs, host="127.0.0.1", port=8000, base_env={}, services=ROOT / SERVICES_DIR)

    def normal(argv: list[str], host: str) -> list[str]:
        return [part.replace(host, "{host}") for part in argv]

    assert normal(in_container.argv, image["HOST"]) == normal(native.argv, "127.0.0.1")
    assert in_container.cwd == SERVICES_DIR / m.service and native.cwd == ROOT / SERVICES_DIR / m.service
    for name in ("WORKLOAD", "CPUS", "WORKERS", "THREADS", "IO_SECONDS", "PRIMES_LIMIT"):
        assert in_container.env[name] == native.env[name], name
    assert float(app["cpus"]) == native_knobs.cpus


def test_compose_reads_exactly_the_lab_knobs_with_the_same_defaults():
    # every ${NAME:-default} of the file, each place it stands: a knob written twice is checked twice
    used = re.findall(r"\$\{(\w+)(?::[-?]([^}]*))?\}", COMPOSE_TEXT)
    expected = set(KNOBS) | (set(SETTINGS) - NOT_IN_COMPOSE) | DERIVED
    assert {name for name, _ in used} == expected
    for name, default in used:
        if name in KNOBS:
            assert default == KNOBS[name].default, name
        elif name in SETTINGS:
            assert default == SETTINGS[name], name
        elif name.endswith("_IMAGE"):
            assert default == next(i.official for i in IMAGES if i.variable == name), name


def test_ports_are_published_on_loopback_only():
    config = render(SERVICE="django")
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name


def test_locust_image_is_the_pinned_locust():
    pinned = re.search(r"^locust==(\S+)", (ROOT / "requirements" / "lab.txt").read_text(), re.M).group(1)
    config = render(SERVICE="django")
    for name in ("locust-master", "locust-worker"):
        assert config["services"][name]["image"] == f"locustio/locust:{pinned}"
    assert f"locust=={pinned}" in (ROOT / "images" / "locust.Dockerfile").read_text()


def test_postgres_is_initialised_from_the_native_seed_and_healthchecked():
    pg = render(SERVICE="django")["services"]["postgres"]
    assert re.match(r"postgres:\d+$", pg["image"])
    assert any(
        v["source"].endswith("db/init.sql") and v["target"].startswith("/docker-entrypoint-initdb.d/") for v in pg["volumes"]
    )
    assert "pg_isready -h 127.0.0.1" in " ".join(pg["healthcheck"]["test"])  # TCP: not the init server's socket
    # the servers open their pools whole within a share of these (contract.pools), as natively
    assert f"max_connections={PG_MAX_CONNECTIONS}" in pg["command"]


@pytest.mark.parametrize("mode", list(MODES))
def test_make_up_runs_the_lab_on_the_chosen_backend(mode):
    # make passes MODE and BACKEND in the environment, where `lab up` reads them (tests/test_command_line.py)
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "up", f"MODE={mode}", "BACKEND=compose"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ".venv/bin/lab up"


def test_make_refuses_a_bad_mode_for_compose():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "up", "MODE=nope", "BACKEND=compose"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "MODE='nope' is not valid" in result.stderr
    assert "lab up" not in result.stdout


def test_compose_bench_runs_the_same_locust_as_native(tmp_path):
    from lab.bench.measure import locust_options
    from lab.results.experiments import load
    from lab.results.folder import RESULTS
    from lab.stack.backends import compose
    from lab.stack.backends.native import NativeBackend

    config = load("quick").runs[0]
    folder = RESULTS / "quick-test"
    options = locust_options(config, "http://127.0.0.1:8000", folder)
    native = NativeBackend().locust_argv(options, RESULTS)
    contained = compose.locust_argv(options, RESULTS)
    assert contained[:2] == ["docker", "compose"]
    flags = lambda argv: {a: argv[i + 1] for i, a in enumerate(argv) if a.startswith("--") and i + 1 < len(argv)}  # noqa: E731
    native_flags, container_flags = flags(native), flags(contained)
    assert container_flags["--host"] == "http://app:8000"
    for flag, value in native_flags.items():
        if flag in ("--host", "--project-directory"):
            continue
        if value.startswith(str(RESULTS)):
            assert container_flags[flag] == "/results/" + str(Path(value).relative_to(RESULTS))
        else:
            assert container_flags[flag] == value, flag


@pytest.mark.parametrize("mode", list(MODES))
def test_compose_bench_environment_names_the_mode_and_its_service(mode):
    from lab.stack.backends import compose

    env = compose.compose_env(parse({"MODE": mode}))
    assert env["SERVICE"] == MODES[mode].service
    assert all(name in env for name in KNOBS)


def test_make_bench_passes_the_backend():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "bench", "BACKEND=compose", "EXPERIMENT=smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.stdout.splitlines()[-1] == ".venv/bin/lab bench"  # BACKEND and EXPERIMENT in its environment
    refused = subprocess.run(
        ["make", "--no-print-directory", "-n", "bench", "BACKEND=docker"], cwd=ROOT, capture_output=True, text=True
    )
    assert "BACKEND='docker' is not valid: BACKEND takes one of auto, native, compose, remote" in refused.stderr


def readme_knobs(readme: str) -> dict[str, tuple[str, str]]:
    """The README's table of knobs: each knob of a row (a row may name several), its default there and
    the row's meaning."""
    section = readme.split("\n## Knobs\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue  # the header, its rule and the prose around the table
        name_cell, default_cell, meaning = (cell.strip() for cell in line.strip().strip("|").split("|")[:3])
        names = re.findall(r"`(\w+)`", name_cell)
        # "`10`, `10`, `1m`" gives each knob of its row its own default; "per mode" is the whole row's
        defaults = re.findall(r"`([^`]*)`", default_cell) or [default_cell] * len(names)
        found |= {name: (default, meaning) for name, default in zip(names, defaults, strict=True)}
    return found


def test_readme_lists_every_mode_knob_and_target():
    readme = (ROOT / "README.md").read_text()
    for mode in MODES:
        assert f"`{mode}`" in readme, mode
    # the table of knobs is contract/knobs.py's: a row for every knob, with its own default ("per mode"
    # where the mode decides), and no row for a knob that is gone
    documented = readme_knobs(readme)
    assert set(documented) == set(KNOBS)
    for knob in KNOBS:
        assert documented[knob][0] == (KNOBS[knob].default or "per mode"), knob
    # CPU_OFFLOAD's row names the modes that take it, as the mode table says
    named = {mode for mode in MODES if f"`{mode}`" in documented["CPU_OFFLOAD"][1]}
    assert named == {m.name for m in MODES.values() if m.offloads_cpu}
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^([a-z]+):.*## ", makefile, re.M):
        if target not in ("help", "setup", "lint", "clean", "knobs", "modes", "logs", "ps"):
            assert f"make {target}" in readme, target


def test_a_stand_in_s_inputs_are_the_files_its_dockerfile_copies_from_the_context(tmp_path: Path):
    from lab.stack.images import copied

    (tmp_path / "wheels").mkdir()
    for name in ("b.whl", "a.whl"):
        (tmp_path / "wheels" / name).write_text(name)
    (tmp_path / "entry.sh").write_text("exec postgres")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x AS w\nCOPY wheels/ /wheels/\nRUN pip install\nFROM y\nCOPY --from=w /opt/pg /opt/pg\n"
                          "COPY --chmod=755 entry.sh /usr/local/bin/\n")  # fmt: skip
    assert copied(dockerfile, tmp_path) == [tmp_path / "wheels" / "a.whl", tmp_path / "wheels" / "b.whl", tmp_path / "entry.sh"]


def test_postgres_started_again_by_the_backend_runs_on_the_images_the_runs_do(monkeypatch):
    """CI found it: PostgreSQL's container, found stopped after a run and started again, was asked of compose
    without the images, so under IMAGES=local compose pulled the official image from a registry."""
    from lab.stack.backends.compose import ComposeBackend

    monkeypatch.setenv("IMAGES", "local")
    env = ComposeBackend().env
    assert {image.variable: env.get(image.variable) for image in IMAGES} == {image.variable: image.standin for image in IMAGES}
    monkeypatch.setenv("IMAGES", "official")
    assert not {image.variable for image in IMAGES} & set(ComposeBackend().env) - set(os.environ)
