"""Start the server of one MODE: the entrypoint of the compose images and of the native backend.

`python -m contract.serve` reads the knobs from the environment, looks MODE up in the mode table
and execs its command, so a container and a native run start the very same thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from contract.declared import Who, declared
from contract.knobs import KnobError, Knobs, env_file, env_lines, from_environ, setting
from contract.modes import MODES, Mode

SERVICES_DIR = Path("services")  # where the services are, from the folder it runs in (the images' /lab)
# What a server reads beside the knobs; the lab passes them, so a server never falls back on a default of its own.
SERVER_SETTINGS = tuple(name for name, knob in declared(Who.MACHINE).items() if knob.server)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerPlan:
    cwd: Path
    argv: list[str]
    env: dict[str, str]


# Your own app (APP=): the production modes serve it by their server, through the lab's entry module (the app
# inside the lab's middleware) in place of the currency app. Which interfaces each serves, and how it serves them
# (the currency app's summaries in the mode table name Django and FastAPI, which an app need not be).
APP_ENTRY = "contract.app_entry:app"
APP_SERVES: dict[str, dict[str, str]] = {
    "gunicorn": {
        "wsgi": "Gunicorn, WORKERS processes, each one request at a time (its sync worker)",
        "asgi": "Gunicorn managing WORKERS processes, each Uvicorn's worker: an event loop",
    },
    "gthread": {"wsgi": "Gunicorn, WORKERS processes x THREADS threads (its gthread worker)"},
    "async": {"asgi": "Uvicorn, one process, one event loop"},
    "async-workers": {"asgi": "Uvicorn, WORKERS processes, each an event loop"},
    "granian": {"wsgi": "Granian (a Rust HTTP server) over WSGI, WORKERS processes x THREADS threads"},
    "granian-asgi": {"asgi": "Granian (a Rust HTTP server) over ASGI, WORKERS processes, each an event loop"},
}
GUNICORN_ASGI_WORKER = "uvicorn.workers.UvicornWorker"


def app_skip(mode: Mode, kind: str) -> str | None:
    """Why `mode` cannot serve an app of this interface (wsgi or asgi), or None when it can."""
    serves = APP_SERVES.get(mode.name)
    if serves is None:
        return f"MODE={mode.name} serves the lab's own currency app only ({mode.program})"
    if kind not in serves:
        served = " and ".join(s.upper() for s in serves)
        return f"MODE={mode.name} ({mode.program}) serves {served} apps, and APP is {kind.upper()}"
    return None


def app_summary(mode: str, kind: str) -> str:
    """How `mode` serves an app of this interface, for reports (the mode table's summary where it cannot)."""
    return APP_SERVES.get(mode, {}).get(kind) or MODES[mode].summary


def with_app_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with the app's own environment (its DATABASE_URL, ...) over the lab's defaults: APP_ENV's file on the
    lab's host, its text (APP_ENV_TEXT) in a container."""
    if env.get("APP_ENV"):
        return {**env, **env_file(env["APP_ENV"])}
    if env.get("APP_ENV_TEXT"):
        return {**env, **env_lines(env["APP_ENV_TEXT"], "APP_ENV_TEXT")}
    return env


def setup(command: str) -> int:
    """`python -m contract.serve setup`: APP_SETUP in the app's folder with the environment its server gets; under
    compose the lab runs it in the app's container, beside the containers' database."""
    env = with_app_env(dict(os.environ))
    return subprocess.run(command, shell=True, cwd=env.get("APP_DIR") or None, env=env, check=False).returncode


def _app_plan(plan: ServerPlan, mode: Mode, kind: str) -> ServerPlan:
    """The mode's own command with the lab's entry module as its app."""
    if reason := app_skip(mode, kind):
        raise KnobError(reason)
    argv = [*plan.argv[:-1], APP_ENTRY]  # every mode's command ends with the app it serves
    env = with_app_env({**plan.env, "APP_INTERFACE": kind})
    if env.get("APP_DIR"):  # the server runs from its service's folder: APP_DIR is the user's, from where they are
        env["APP_DIR"] = str(Path(env["APP_DIR"]).resolve())
    if mode.program == "gunicorn" and kind == "asgi":
        env["GUNICORN_WORKER_CLASS"] = GUNICORN_ASGI_WORKER
    return ServerPlan(plan.cwd, argv, env)


def server_plan(
    knobs: Knobs, *, host: str, port: int, base_env: dict[str, str] | None = None, services: Path = SERVICES_DIR
) -> ServerPlan:
    """The folder, command and environment that serve `knobs.mode` on host:port."""
    mode = knobs.server
    env = dict(os.environ if base_env is None else base_env)
    env.update({name: env.get(name) or setting(name) for name in SERVER_SETTINGS})
    env.update(knobs.as_env())
    env.update(mode.env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "banksite.settings")
    if host not in LOOPBACK:  # reached from other hosts, by names the lab cannot know (unless DJANGO_ALLOWED_HOSTS says)
        env.setdefault("DJANGO_ALLOWED_HOSTS", "*")
    argv = mode.command(host=host, port=port, workers=knobs.workers, threads=knobs.threads)
    plan = ServerPlan(services / mode.service, argv, env)
    if env.get("APP"):  # the interface was found before anything started (lab.results.experiments) and passed on
        return _app_plan(plan, mode, env.get("APP_INTERFACE") or app_interface(env))
    return plan


def app_interface(env: dict[str, str]) -> str:
    """The app's interface, asked of a fresh interpreter so that importing it leaves this process as it was."""
    python = env.get("APP_PYTHON") or sys.executable  # the app's own venv (APP_REQUIREMENTS), where it has one
    done = subprocess.run([python, "-m", "contract.app_entry"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KnobError(done.stderr.strip().removeprefix("error: "))
    return done.stdout.strip()


def resolve(argv: list[str], bin_dir: Path) -> list[str]:
    """Run the command's program from `bin_dir` (the lab's virtual environment) when it is there."""
    program = shutil.which(argv[0], path=str(bin_dir)) or argv[0]
    return [program, *argv[1:]]


def main() -> int:
    if sys.argv[1:] == ["setup"]:
        return setup(os.environ.get("APP_SETUP", ""))
    try:
        knobs = from_environ()
    except KnobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    image_service = os.environ.get("SERVICE")
    if image_service and image_service != knobs.server.service and not os.environ.get("APP"):  # an app's image serves any
        print(
            f"error: MODE={knobs.mode} is served by the {knobs.server.service} service, "
            f"but this is the {image_service} image (set SERVICE={knobs.server.service})",
            file=sys.stderr,
        )
        return 2
    plan = server_plan(knobs, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("APP_PORT", "8000")))
    print(f"contract.serve: MODE={knobs.mode} {' '.join(plan.argv)}", file=sys.stderr, flush=True)
    os.chdir(plan.cwd)
    os.execvpe(plan.argv[0], plan.argv, plan.env)


if __name__ == "__main__":
    sys.exit(main())
