"""The locked supply chain: each environment's lock (requirements/NAME.lock, made by `make lock` from the short list
of direct requirements beside it, requirements/NAME.txt) pins every package to one version with its hashes, pip
included, holds every third-party module that environment's code imports, and is what the Makefile, CI and the
servers' image install, hashes required. Pure: it reads files and this venv's metadata; nothing starts."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lab.stack.app_venv import requirement_lines
from lab.stack.checkout import ROOT

REQUIREMENTS = ROOT / "requirements"
LOCKS = ("dev", "lab", "services", "standins", "kubectl", "installer")
ENVIRONMENTS = ("dev", "lab", "services")  # what a venv or an image is made of: pip and setuptools pinned too
# The lock that installs each folder's code where it runs: the servers' images run services/ and contract/, the lab
# runs lab/ and locust/ (the Locust workers import the locustfile), the tests run in .venv, made of dev.lock.
RUNS_FROM = {"lab": "lab", "locust": "lab", "contract": "services", "services": "services", "tests": "dev"}
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}$")


def lock_entries(name: str) -> dict[str, tuple[str, list[str]]]:
    """A lock's packages by canonical name: (its requirement, the options after it), continuation lines joined."""
    text = (REQUIREMENTS / f"{name}.lock").read_text(encoding="utf-8").replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *options = line.split()
        assert not requirement.startswith("-"), f"{name}.lock: {line.strip()}: a lock holds packages and hashes alone"
        parsed = Requirement(requirement)
        assert canonicalize_name(parsed.name) not in entries, f"{name}.lock names {parsed.name} twice"
        entries[canonicalize_name(parsed.name)] = (requirement, options)
    return entries


def pinned(name: str) -> dict[str, str]:
    """A lock's version of each package, by canonical name."""
    return {package: requirement.split("==", 1)[1] for package, (requirement, _) in lock_entries(name).items()}


@pytest.mark.parametrize("name", LOCKS)
def test_every_package_of_a_lock_is_one_version_with_its_hashes(name):
    entries = lock_entries(name)
    assert entries, f"{name}.lock pins nothing"
    for package, (requirement, options) in entries.items():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][A-Za-z0-9.+!]*", requirement), (
            f"{name}.lock: {requirement} is not one exact version (no extras, markers or URLs in a lock)"
        )
        assert options and all(HASH.match(option) for option in options), (
            f"{name}.lock: {package} has options other than sha256 hashes, or none: {options}"
        )


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_pip_and_setuptools_are_pinned_in_each_environment(name):
    versions = pinned(name)
    assert "pip" in versions and "setuptools" in versions, f"{name}.lock pins pip and setuptools (make lock)"


@pytest.mark.parametrize("name", LOCKS)
def test_each_lock_holds_its_direct_requirements(name):
    """A requirement added to NAME.txt without `make lock` fails here, before an install misses it."""
    versions = pinned(name)
    for pin in requirement_lines(REQUIREMENTS / f"{name}.txt"):
        package = canonicalize_name(pin.requirement.name)
        assert package in versions, f"{pin.where}: {pin.text} is not in {name}.lock: run make lock"
        assert pin.requirement.specifier.contains(versions[package], prereleases=True), (
            f"{pin.where}: {pin.text}, but {name}.lock pins {package}=={versions[package]}: run make lock"
        )


def test_every_environment_runs_the_versions_of_dev():
    """The servers' image, the stand-ins and the lab run what .venv (dev.lock) runs: the backends measure one thing."""
    dev = pinned("dev")
    for name in ("lab", "services", "standins"):
        differ = {package: (mine, dev.get(package)) for package, mine in pinned(name).items() if dev.get(package) != mine}
        assert not differ, f"{name}.lock differs from dev.lock (run make lock): {differ}"


def local_module(name: str, path: Path) -> bool:
    """A module of the project's own, found where its file runs: beside it or in a folder above it, up to the root."""
    for folder in path.parents:
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            return True
        if folder == ROOT:
            return False
    return False


def optional(node: ast.Try) -> bool:
    """A try whose import may fail: it catches ImportError (or ModuleNotFoundError)."""
    caught = [h.type for h in node.handlers if h.type is not None]
    names = {n.id for t in caught for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def imports(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Each absolute import's top-level module and line, but those inside a try that catches ImportError."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Try) and optional(node):
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name.partition(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno
        yield from imports(node)


def third_party(folder: str) -> Iterator[tuple[str, str]]:
    """(module, file:line) of every third-party module a folder's code imports."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module, line in imports(tree):
            if module in sys.stdlib_module_names or module == "__future__" or local_module(module, path):
                continue
            yield module, f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("folder", list(RUNS_FROM))
def test_every_module_the_code_imports_is_in_its_lock(folder):
    lock = RUNS_FROM[folder]
    versions = pinned(lock)
    providers = packages_distributions()
    missing = []
    for module, where in third_party(folder):
        dists = {canonicalize_name(dist) for dist in providers.get(module, [])}
        if not dists & set(versions):
            said = ", ".join(sorted(dists)) or "no installed distribution"
            missing.append(f"{where} imports {module} ({said}), which requirements/{lock}.lock does not pin")
    assert not missing, "\n".join(missing)


def test_the_scan_sees_the_imports_it_checks():
    """The scan itself: it finds the servers' and the lab's real dependencies, and leaves the project's own alone."""
    assert {"django", "fastapi", "psycopg", "gunicorn"} <= {module for module, _ in third_party("services")}
    assert {"numpy", "yaml", "scipy", "matplotlib"} <= {module for module, _ in third_party("lab")}
    assert {"flask", "gevent", "jinja2", "locust"} <= {module for module, _ in third_party("locust")}
    assert not {"lab", "contract", "banksite", "currency", "api", "lab_ui", "tests"} & {
        module for folder in RUNS_FROM for module, _ in third_party(folder)
    }


INSTALLS = {
    "Makefile": r"pip install\b.*-r requirements/(dev|installer)\.lock",
    ".ci/run": r"pip install\b.*-r requirements/kubectl\.lock",
    "services/Dockerfile": r"pip install\b.*-r requirements/services\.lock",
}


@pytest.mark.parametrize("path", list(INSTALLS))
def test_installs_require_hashes_and_never_float_pip(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if re.search(INSTALLS[path], line)]
    assert lines, f"{path} installs its lock"
    assert all("--require-hashes" in line and "--no-deps" in line for line in lines), lines
    assert not re.search(r"pip install\b[^\n]*(--upgrade|-U)\b[^\n]*\bpip\b", text), f"{path} upgrades pip unpinned"
    assert not re.search(r"pip install\b[^\n]*-r requirements/\w+\.txt", text), f"{path} installs an unlocked input"
    # where PYTHONDONTWRITEBYTECODE is set nothing writes bytecode later: each process would compile its imports anew
    assert all("--compile-bytecode" in line for line in lines if "uv pip install" in line), lines
