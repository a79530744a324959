"""Your app's own environment (APP_REQUIREMENTS): its requirements with the lab's pinned servers, in a venv of its own.

The venv is cached under the lab's state folder (`apps/<key>`), keyed by a hash of the requirements file, the
lab's server pins and the interpreter, so it is built once and rebuilt only when one of them changes. The app's
pins win for its own dependencies, the lab's for the servers it measures: an app that pins a server at a version
the lab does not measure stops before anything starts, with both pins named.

`prepare()` is what every command runs before it starts anything for an app: the conflict check, the venv, the
team's locustfile checked, and the app's interface asked of the interpreter that will serve it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from contract.knobs import KnobError, env_file, setting
from contract.serve import SERVER_SETTINGS, app_interface
from lab.stack.checkout import ROOT
from lab.stack.place import Place

SERVER_PINS = ROOT / "requirements" / "services.txt"
SERVERS = ("gunicorn", "uvicorn", "granian")  # what the lab measures: its pins of these win
WHEELS = ROOT / "images" / "wheels"  # the lab's pinned wheels, when downloaded: no need to fetch them again
CONTRACT = ROOT / "contract"
INCLUDE_RE = re.compile(r"^(?:-r|--requirement)[=\s]*(\S+)$")
PROGRESS = ("Collecting", "Installing collected", "Successfully installed", "Building")  # pip's lines worth showing


@dataclass(frozen=True)
class Pin:
    """One requirement line: where it stands (file:line) and what it says."""

    where: str
    text: str
    requirement: Requirement


def requirement_lines(path: Path, seen: frozenset[Path] = frozenset()) -> Iterator[Pin]:
    """The requirements of a file, following `-r other.txt`; options and what packaging cannot read are left to
    pip, which says what is wrong with them."""
    if path.resolve() in seen:
        return
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split(" #", 1)[0].strip()
        if included := INCLUDE_RE.match(text):
            yield from requirement_lines(path.parent / included.group(1), seen | {path.resolve()})
            continue
        if not text or text.startswith(("#", "-")):
            continue
        try:
            yield Pin(f"{path}:{number}", text, Requirement(text))
        except InvalidRequirement:
            continue


def server_pins(path: Path = SERVER_PINS) -> dict[str, Pin]:
    """The lab's pins of the servers it measures, by canonical name."""
    return {canonicalize_name(p.requirement.name): p for p in requirement_lines(path)
            if canonicalize_name(p.requirement.name) in SERVERS}  # fmt: skip


def conflicts(requirements: Path, pins: dict[str, Pin] | None = None) -> list[str]:
    """Each line of the app's requirements that asks for a server at a version other than the lab's pin, naming both."""
    pins = server_pins() if pins is None else pins
    found = []
    for app_pin in requirement_lines(requirements):
        name = canonicalize_name(app_pin.requirement.name)
        lab_pin = pins.get(name)
        if lab_pin is None:
            continue
        version = next(iter(lab_pin.requirement.specifier)).version
        if app_pin.requirement.url or not app_pin.requirement.specifier.contains(version, prereleases=True):
            found.append(f"{app_pin.where} pins {app_pin.text}, but the lab measures {lab_pin.text} ({lab_pin.where}): "
                         f"the lab's pins win for the servers it measures; drop {name} from the app's requirements or "
                         f"allow {version}")  # fmt: skip
    return found


def check_conflicts(requirements: Path) -> None:
    if found := conflicts(requirements):
        raise KnobError(f"APP_REQUIREMENTS: {found[0]}")


def base_python() -> str:
    """The interpreter the lab's venv was made from (Debian's python3.11 where there is one), so the app's servers
    run on the same build as the lab's."""
    return getattr(sys, "_base_executable", "") or sys.executable


def venv_key(requirements: Path, python: str) -> str:
    """What the app's venv is built from: its requirements, the lab's server pins, the interpreter, the contract."""
    parts = [requirements.read_bytes(), *(p.text.encode() for p in server_pins().values()), python.encode(),
             str(CONTRACT).encode()]  # fmt: skip
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def error_tail(lines: Iterable[str]) -> str:
    """A tool's own words for why it failed (pip's ERROR lines), else its last line."""
    stripped = [line.strip() for line in lines if line.strip()]
    said = [line for line in stripped if line.startswith("ERROR:")][-2:] or stripped[-1:] or ["no output"]
    return " ".join(said)


def _run_pip(argv: list[str], cwd: Path, say: Callable[[str], None]) -> None:
    """pip, its progress said as it goes (an install can take minutes); a failure is one KnobError with pip's tail."""
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            tail.append(line)
            if line.startswith(PROGRESS):
                say(line.strip()[:160])
    if pip.returncode != 0:
        raise KnobError(f"APP_REQUIREMENTS={setting('APP_REQUIREMENTS')} does not install (pip exited with code "
                        f"{pip.returncode}): {error_tail(tail)}")  # fmt: skip


def app_venv(requirements: Path, place: Place, say: Callable[[str], None] = print) -> Path:
    """The app's venv (its folder), built when its key is new; a failed build leaves nothing behind."""
    python = base_python()
    folder = place.state / "apps" / venv_key(requirements, python)
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    say(f"installing APP_REQUIREMENTS={requirements} with the lab's servers into {folder} (once; it can take a while)...")
    made = subprocess.run([python, "-m", "venv", str(folder)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        raise KnobError(f"cannot make the app's venv with {python}: {error_tail(made.stderr.splitlines())}")
    pins = [p.text for p in server_pins().values()]
    links = ["--find-links", str(WHEELS)] if WHEELS.is_dir() else []
    argv = [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
            *links, "-r", str(requirements.resolve()), *pins, "--editable", str(CONTRACT)]  # fmt: skip
    try:
        _run_pip(argv, requirements.resolve().parent, say)  # `-e ./pkg` lines are relative to the file's folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    done.write_text(requirements.read_text(encoding="utf-8"))
    say(f"the app's venv is ready in {time.monotonic() - started:.0f} s")
    return folder


LOCUSTFILE_CHECK = """
import importlib.util, inspect, sys
from pathlib import Path
from locust import User
path = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(path.parent))
spec = importlib.util.spec_from_file_location(path.stem, path)
module = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(module)
except BaseException as error:
    said = f"{type(error).__name__}: {error}".splitlines()[0]
    sys.exit(f"LOCUSTFILE={sys.argv[1]} does not import: {said}")
users = [n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, User) and not v.abstract]
if not users:
    sys.exit(f"LOCUSTFILE={sys.argv[1]} defines no User class (a subclass of locust's User, HttpUser or FastHttpUser)")
print(" ".join(users))
"""


def check_locustfile(path: str) -> list[str]:
    """The User classes of the team's locustfile, imported in a fresh interpreter of the lab's (which has Locust),
    or KnobError in one line: it does not import, or defines no User class."""
    done = subprocess.run([sys.executable, "-c", LOCUSTFILE_CHECK, path], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise KnobError((done.stderr.strip().splitlines() or [f"LOCUSTFILE={path} could not be checked"])[-1])
    return done.stdout.split()


class AppFacts(TypedDict, total=False):
    """What a run's record keeps of an app's inputs: where its traffic came from, its requirements and its
    environment's names (never their values: they may be secrets)."""

    app: str
    traffic: str
    requirements: str
    env_names: list[str]


def facts() -> AppFacts:
    if not setting("APP"):
        return {}
    found: AppFacts = {"app": setting("APP")}
    if locustfile := setting("LOCUSTFILE"):
        found["traffic"] = f"LOCUSTFILE={locustfile}: the team's own locustfile, run by the lab's Locust"
    else:
        found["traffic"] = "PATHS=" + (setting("PATHS") or "/")
    if requirements := setting("APP_REQUIREMENTS"):
        found["requirements"] = requirements
    if env := setting("APP_ENV"):
        found["env_names"] = sorted(env_file(env))
    return found


def _say(text: str) -> None:
    print(f"app: {text}", flush=True)


def prepare(place: Place | None = None, say: Callable[[str], None] = _say) -> str | None:
    """Before anything starts for APP: its requirements installed (or refused), its locustfile checked, and its
    interface (wsgi or asgi) asked of the interpreter that serves it; None without APP."""
    if not setting("APP"):
        return None
    inputs = tuple(setting(name) for name in ("APP", "APP_DIR", "APP_REQUIREMENTS", "LOCUSTFILE"))
    if inputs in _prepared:  # `make capacity EXPERIMENT=...` asks twice: before its command, and as it loads the file
        return _prepared[inputs]
    if locustfile := setting("LOCUSTFILE"):
        check_locustfile(locustfile)
    if requirements := setting("APP_REQUIREMENTS"):
        check_conflicts(Path(requirements))
        folder = app_venv(Path(requirements), place or Place(), say)
        os.environ["APP_PYTHON"] = str(folder / "bin" / "python")  # every server, APP_SETUP and the check below
    own = env_file(setting("APP_ENV")) if setting("APP_ENV") else {}  # an app may read its environment as it imports
    # ... what the lab gives its servers among it (a Django project's settings read them on import)
    given = {"DATABASE_URL": (place or Place()).postgres().url, **{name: setting(name) for name in SERVER_SETTINGS}}
    # make exports every knob, an unset one empty (its default): an empty one never hides what the lab gives
    kind = app_interface({**given, **{k: v for k, v in os.environ.items() if v or k not in given}, **own})
    os.environ["APP_INTERFACE"] = kind
    _prepared[inputs] = kind
    return kind


_prepared: dict[tuple[str, ...], str] = {}
