"""The images the compose backend runs on, and stand-ins for machines with no image registry.

IMAGES=official (the default) uses the registry's python, postgres and locust images, as any
Compose project does. IMAGES=local never reaches for a registry: it builds stand-ins here from
Debian (debootstrap into .lab/, `docker import`, then the ordinary Dockerfiles in images/), with
the locked wheels downloaded by the host (hashes checked) and installed with `pip --no-index`.
`python -m lab images` builds the stand-ins and prints their build times and sizes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from lab.stack.checkout import ROOT
from lab.stack.procs import LabError

WHEELS = ROOT / "images" / "wheels"
ROOTFS = ROOT / ".lab" / "rootfs"
BASE = "concurrency-lab/debian:bookworm"
STANDIN_LABEL = "org.concurrency-lab.standin"
INPUTS_LABEL = "org.concurrency-lab.inputs"  # the hash of what a stand-in was built from: the same inputs, no build
# The servers' lock (pip and setuptools, which builds contract/, included) and what the stand-ins add to it: Locust
# and the embedded PostgreSQL at the lab's versions. Every file of both is downloaded with its hash checked.
LOCKS = (ROOT / "requirements" / "services.lock", ROOT / "requirements" / "standins.lock")


@dataclass(frozen=True)
class Image:
    variable: str  # what compose.yaml reads
    official: str  # compose.yaml's default (a test keeps the two equal)
    standin: str
    dockerfile: str


IMAGES = (
    Image("PYTHON_IMAGE", "python:3.11.14-slim-bookworm", "concurrency-lab/python:3.11-standin", "images/python.Dockerfile"),
    Image("POSTGRES_IMAGE", "postgres:18", "concurrency-lab/postgres:18-standin", "images/postgres.Dockerfile"),
    Image("LOCUST_IMAGE", "locustio/locust:2.47.0", "concurrency-lab/locust:2.47.0-standin", "images/locust.Dockerfile"),
)
BUILD_ARGS = (f"--build-arg=BASE_IMAGE={BASE}", f"--build-arg=PYTHON_IMAGE={IMAGES[0].standin}")


def docker(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-1500:]}")
    return result


def exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


def _mirror() -> str:
    """The Debian mirror this machine's apt uses, for debootstrap."""
    for source in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if source.exists():
            found = re.search(r"(?:URIs:|deb)\s+(http\S+/debian)\b", source.read_text())
            if found:
                return found.group(1)
    return "http://deb.debian.org/debian"


def _base(say: Callable[[str], None]) -> None:
    if exists(BASE):
        return
    if not shutil.which("debootstrap"):
        raise LabError("IMAGES=local builds its base from Debian with debootstrap: apt-get install debootstrap")
    started = time.monotonic()
    complete = ROOTFS.with_name(ROOTFS.name + ".complete")  # debootstrap writes debian_version early: not a sign
    if not complete.exists():
        shutil.rmtree(ROOTFS, ignore_errors=True)
        say(f"debootstrap: a minimal Debian bookworm into {ROOTFS.relative_to(ROOT)} (about half a minute)...")
        result = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(ROOTFS), _mirror()],
                                capture_output=True, text=True, timeout=900)  # fmt: skip
        if result.returncode != 0:
            raise LabError(f"debootstrap failed: {(result.stderr or result.stdout).strip()[-1500:]}")
        complete.touch()
    tar = subprocess.Popen(["tar", "-C", str(ROOTFS), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(["docker", "import", "-", BASE], stdin=tar.stdout, capture_output=True, text=True)
    tar.wait()
    if imported.returncode != 0:
        raise LabError(f"docker import failed: {imported.stderr.strip()}")
    say(f"built {BASE} from Debian in {time.monotonic() - started:.0f} s")


def locked(locks: tuple[Path, ...] = LOCKS) -> set[tuple[str, str]]:
    """The (canonical name, version) of every package the locks pin."""
    pins = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)
    return {
        (canonicalize_name(name), str(Version(version))) for lock in locks for name, version in pins.findall(lock.read_text())
    }


def download_wheels(say: Callable[[str], None]) -> None:
    """The host downloads every file of the locks once, each hash checked, and keeps no other wheel there: builds
    install them with --no-index, so a stand-in resolving by name finds the locked versions alone."""
    stamp = WHEELS / ".complete"
    key = hashlib.sha256(b"".join(lock.read_bytes() for lock in LOCKS)).hexdigest()
    if stamp.exists() and stamp.read_text() == key and any(WHEELS.glob("*.whl")):
        return
    say("downloading the locked wheels on the host into images/wheels (hashes checked)...")
    for lock in LOCKS:
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--require-hashes", "--no-deps",
                "-d", str(WHEELS), "-r", str(lock)]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise LabError(f"pip download failed: {result.stderr.strip()[-1500:]}")
    wanted = locked()
    for wheel in WHEELS.glob("*.whl"):
        name, version, *_ = parse_wheel_filename(wheel.name)
        if (name, str(version)) not in wanted:
            wheel.unlink()  # a version of an earlier lock
    stamp.write_text(key)


def copied(dockerfile: Path, context: Path = ROOT) -> list[Path]:
    """The files a Dockerfile copies from its context (not from another stage), every file of a folder."""
    found: list[Path] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() not in ("COPY", "ADD") or any(w.startswith("--from") for w in words):
            continue
        for source in (context / w for w in words[1:-1] if not w.startswith("--")):
            found += sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    return found


def inputs_key(image: Image) -> str:
    """What a stand-in is made of: its Dockerfile, the files it copies, its build arguments and the images it
    starts from (by id). Docker's layer cache would reuse every layer too, but only after reading the whole
    context (tens of MB of wheels) for each image on each start: several seconds."""
    digest = hashlib.sha256()
    for path in [ROOT / image.dockerfile, *copied(ROOT / image.dockerfile)]:
        digest.update(f"{path.relative_to(ROOT)}\0".encode() + path.read_bytes())
    for name in (BASE, *(other.standin for other in IMAGES[: IMAGES.index(image)])):
        digest.update(docker("image", "inspect", "-f", "{{.Id}}", name, check=False).stdout.encode())
    digest.update("\0".join(BUILD_ARGS).encode())
    return digest.hexdigest()


def built_from(name: str) -> str:
    return docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{INPUTS_LABEL}"}}}}', name, check=False).stdout.strip()


def build_standins(say: Callable[[str], None] = print) -> dict[str, float | None]:
    """Build every stand-in whose inputs changed since it was built: the seconds each build took, None where
    the image was built from the same inputs already."""
    _base(say)
    download_wheels(say)
    took: dict[str, float | None] = {}
    for image in IMAGES:
        key = inputs_key(image)
        if built_from(image.standin) == key:
            took[image.standin] = None
            continue
        started = time.monotonic()
        docker("build", "--quiet", "--label", f"{STANDIN_LABEL}=true", "--label", f"{INPUTS_LABEL}={key}",
               "-t", image.standin, "-f", image.dockerfile, *BUILD_ARGS, str(ROOT))  # fmt: skip
        took[image.standin] = time.monotonic() - started
    return took


def compose_env(images: str) -> dict[str, str]:
    """What compose.yaml reads to run on `images` (official or local)."""
    if images == "official":
        return {}
    return {**{image.variable: image.standin for image in IMAGES}, "OFFLINE": "1"}


class ImageFacts(TypedDict):
    """A record's account of one image; id and standin are None for an image that is not there."""

    name: str
    id: str | None
    size_mb: NotRequired[int]
    standin: bool | None


def describe(names: list[str]) -> list[ImageFacts]:
    """Name, id, size and whether each image is a local stand-in, for the records."""
    found: list[ImageFacts] = []
    for name in names:
        result = docker("image", "inspect", name, check=False)
        if result.returncode != 0:
            found.append({"name": name, "id": None, "standin": None})
            continue
        info = json.loads(result.stdout)[0]
        labels = (info.get("Config") or {}).get("Labels") or {}
        found.append({"name": name, "id": info["Id"], "size_mb": round(info["Size"] / 1e6),
                      "standin": labels.get(STANDIN_LABEL) in ("true", "1")})  # fmt: skip
    return found


def summary(rows: list[ImageFacts]) -> str:
    return ", ".join(f"{row['name']}{' (a local stand-in)' if row.get('standin') else ''}" for row in rows)


def main() -> int:
    try:
        took = build_standins(lambda text: print(f"images: {text}", flush=True))
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for row in describe(list(took)):
        seconds = took[row["name"]]
        built = "its inputs unchanged: not built" if seconds is None else f"built in {seconds:.1f} s"
        print(f"images: {row['name']}: {built}, {row['size_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
