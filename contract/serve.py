"""Start the server of one MODE: the entrypoint of the compose images and of the native backend.

`python -m contract.serve` reads the knobs from the environment, looks MODE up in the mode table
and execs its command, so a container and a native run start the very same thing.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from contract.knobs import SETTINGS, KnobError, Knobs, from_environ, setting

SERVICES_DIR = Path("services")  # where the services are, from the folder it runs in (the images' /lab)
# What a server reads beside the knobs; the lab passes them, so a server never falls back on a default of its own.
SERVER_SETTINGS = ("DB_POOL_SIZE", "DJANGO_SECRET_KEY")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerPlan:
    cwd: Path
    argv: list[str]
    env: dict[str, str]


def server_plan(
    knobs: Knobs, *, host: str, port: int, base_env: dict[str, str] | None = None, services: Path = SERVICES_DIR
) -> ServerPlan:
    """The folder, command and environment that serve `knobs.mode` on host:port."""
    mode = knobs.server
    env = dict(os.environ if base_env is None else base_env)
    env.update({name: env.get(name) or setting(name) for name in SERVER_SETTINGS if name in SETTINGS})
    env.update(knobs.as_env())
    env.update(mode.env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "banksite.settings")
    if host not in LOOPBACK:  # reached from other hosts, by names the lab cannot know (unless DJANGO_ALLOWED_HOSTS says)
        env.setdefault("DJANGO_ALLOWED_HOSTS", "*")
    argv = mode.command(host=host, port=port, workers=knobs.workers, threads=knobs.threads)
    return ServerPlan(services / mode.service, argv, env)


def resolve(argv: list[str], bin_dir: Path) -> list[str]:
    """Run the command's program from `bin_dir` (the lab's virtual environment) when it is there."""
    program = shutil.which(argv[0], path=str(bin_dir)) or argv[0]
    return [program, *argv[1:]]


def main() -> int:
    try:
        knobs = from_environ()
    except KnobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    image_service = os.environ.get("SERVICE")
    if image_service and image_service != knobs.server.service:
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
