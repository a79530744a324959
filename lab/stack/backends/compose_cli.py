"""`docker compose` for the lab's project (compose.yaml): its commands built and run in one place, a failure
said in words. The compose backend runs its stack through it, and what a stack file left on this backend is
stopped through it (lab.stack.backends.leftovers)."""

from __future__ import annotations

import os
import subprocess

from lab.stack.checkout import ROOT
from lab.stack.procs import LabError

REGISTRY_WORDS = ("pull", "registry", "manifest", "resolve", "docker.io", "no such host", "TLS handshake")


def compose(*args: str) -> list[str]:
    return ["docker", "compose", "--project-directory", str(ROOT), *args]


def run(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    """A compose command; a failure raises with its output, and names IMAGES=local where the
    registry was the problem."""
    result = subprocess.run(compose(*args), env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        # compose's warnings (buildx missing, ...) come first; a failure's own words are the lines after them
        said = "\n".join(line for line in result.stderr.strip().splitlines() if "level=warning" not in line)[-1500:]
        if not engine_answers():
            raise LabError("the Docker engine stopped answering: start one with `make engine`")
        if env.get("IMAGES", "official") == "official" and any(word in said for word in REGISTRY_WORDS):
            last = said.splitlines()[-1] if said else ""
            raise LabError(f"docker compose could not get the official images ({last}): on a machine with no image "
                           "registry, use IMAGES=local (stand-ins built here from Debian)")  # fmt: skip
        raise LabError(f"docker compose {' '.join(args[:2])} failed: {said}")
    return result.stdout


def engine_answers(timeout: float = 30) -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):  # no docker here, or an engine that does not answer
        return False


def down(env: dict[str, str] | None = None) -> None:
    """Every container, network and volume of the project; raises when compose cannot."""
    run(["down", "--volumes", "--remove-orphans", "--timeout", "5"], env or dict(os.environ))
