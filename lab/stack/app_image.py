"""Your app under compose: its folder and requirements built into an image with the lab's servers.

The lab stages a build context under its state folder (`app-image/`): the app's folder, its requirements, the lab's
server pins, the contract package, Gunicorn's settings, and every wheel they need, downloaded here by the host (so
a build with IMAGES=local reaches no index, as the stand-ins do). compose.yaml builds the app service from it when
APP_CONTEXT names it, and the image runs `python -m contract.serve` as the built-in images do.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from contract.knobs import KnobError, env_file, from_environ, setting
from contract.serve import APP_SERVES
from lab.stack.app_venv import CONTRACT, INCLUDE_RE, SERVER_PINS, WHEELS, error_tail, prepare, server_pins
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.procs import LabError

SETUPTOOLS = "setuptools==80.9.0"  # what builds the contract package (its pyproject's pin)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".venv", ".git", ".lab", "node_modules")


def context(place: Place | None = None) -> Path:
    return (place or Place()).state / "app-image"


def compose_env(place: Place | None = None) -> dict[str, str]:
    """What compose.yaml reads to build and serve the app (nothing without APP): the staged context, the image's
    name (SERVICE=app), the interface found before anything started, and the app's environment as text."""
    if not setting("APP"):
        return {}
    env = {"SERVICE": "app", "APP_CONTEXT": str(context(place)), "APP_INTERFACE": os.environ.get("APP_INTERFACE", "")}
    if path := setting("APP_ENV"):
        env["APP_ENV_TEXT"] = "\n".join(f"{key}={value}" for key, value in env_file(path).items())
    return env


def _download(folder: Path, requirements: Path, say: Callable[[str], None]) -> None:
    """Every wheel the image installs, once per requirements and server pins (a stamp keeps their hash)."""
    wheels = folder / "wheels"
    key = hashlib.sha256(requirements.read_bytes() + SERVER_PINS.read_bytes()).hexdigest()
    stamp = wheels / ".complete"
    if stamp.exists() and stamp.read_text() == key:
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    say("downloading the app's wheels and the lab's servers on the host...")
    links = ["--find-links", str(WHEELS)] if WHEELS.is_dir() else []
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(wheels), *links,
            "-r", str(requirements), "-r", str(folder / "servers.txt"), SETUPTOOLS]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise LabError(f"the app's wheels could not be downloaded for its image: {error_tail(done.stderr.splitlines())}")
    stamp.write_text(key)


# a requirement on a path of the host, or a file of constraints beside it: neither reaches the image's build
LOCAL = re.compile(r"^(?:-e|--editable|-c|--constraint)\b|^(?:\.{1,2}/|/|file:)")


def flattened(path: Path, seen: frozenset[Path] = frozenset()) -> str:
    """The requirements file as the image's pip reads it, alone in the build context: each `-r` file it includes
    (relative to it, as pip reads them) written in its place; a local path or constraints file refused, by its line."""
    if path.resolve() in seen:
        return ""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split(" #", 1)[0].strip()
        if included := INCLUDE_RE.match(text):
            lines += [f"# from {included.group(1)}", flattened(path.parent / included.group(1), seen | {path.resolve()})]
        elif LOCAL.match(text):
            raise LabError(f"APP_REQUIREMENTS: {path}:{number} ({text}) names a file of this host, which the app's "
                           "image cannot read: require packages by name and version (a local package built into a "
                           "wheel, or its folder inside APP_DIR)")  # fmt: skip
        else:
            lines.append(raw)
    return "\n".join(lines) + "\n"


def stage(place: Place | None = None, say: Callable[[str], None] = print) -> Path:
    """The app image's build context, made anew but for its wheels (kept while the requirements stay the same)."""
    folder = context(place)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("app", "contract", "services"):
        shutil.rmtree(folder / part, ignore_errors=True)
    app_dir = setting("APP_DIR")
    if app_dir:
        shutil.copytree(app_dir, folder / "app", ignore=IGNORED)
    else:  # an app installed from its requirements alone
        (folder / "app").mkdir()
    requirements = folder / "requirements.txt"
    source = setting("APP_REQUIREMENTS")
    requirements.write_text(flattened(Path(source)) if source else "")
    (folder / "servers.txt").write_text("".join(f"{pin.text}\n" for pin in server_pins().values()))
    shutil.copytree(CONTRACT, folder / "contract", ignore=IGNORED)
    shutil.copy(ROOT / "services" / "django" / "gunicorn.conf.py", folder / "gunicorn.conf.py")
    (folder / "services").mkdir()
    shutil.copy(ROOT / "services" / "app.Dockerfile", folder / "services" / "Dockerfile")  # compose's dockerfile path
    _download(folder, requirements, say)
    return folder


def main() -> int:
    """`python -m lab.stack.app_image`: the app checked as for any command (its venv here, its interface), its image's
    context staged, and the `docker compose` line that builds and serves it."""
    if not setting("APP"):
        print("error: APP is not set: the app image is built for APP=package.module:app", file=sys.stderr)
        return 2
    try:
        from_environ()
        kind = prepare() or ""
        folder = stage(say=lambda text: print(f"app image: {text}", flush=True))
    except (KnobError, LabError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mode = next(name for name, serves in APP_SERVES.items() if kind in serves)
    env = " ".join(f"{key}={value}" for key, value in compose_env().items() if key != "APP_ENV_TEXT")
    text = f' APP_ENV_TEXT="$(cat {setting("APP_ENV")})"' if setting("APP_ENV") else ""
    print(f"app image: context ready in {folder}; serve it ({kind.upper()}: MODE= any of "
          f"{', '.join(name for name, serves in APP_SERVES.items() if kind in serves)}) with:\n"
          f"  APP={setting('APP')} MODE={mode} {env}{text} docker compose up --build app")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
